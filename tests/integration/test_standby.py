"""Standby and failback (2 normal members + 1 standby): the standby becomes active only
when a non-standby active member fails; on repair, FAILBACK=yes makes the member active
again (standby INACTIVE again, the address back home), FAILBACK=no leaves it INACTIVE
and the address where it is."""

from __future__ import annotations

from lab.lab import wait_until
from mpathd_helpers import (DATA, MOVE_TIMEOUT, REPAIR_TIMEOUT, holder_is, member_is,
                            start_group, wait_moved_away)

V4 = DATA["ipv4"]


def test_standby_not_used_while_not_needed(lab, need_mpathd):
    d = start_group(lab)
    # Failing the standby itself changes nothing for the active members.
    lab.link_down(2)
    s = d.wait_status(member_is(d, "m2", state="failed"), MOVE_TIMEOUT, "m2 failed")
    assert d.member("m0", s)["active"] and d.member("m1", s)["active"]
    assert holder_is(lab, d, V4, "m0")
    lab.link_up(2)
    d.wait_status(member_is(d, "m2", state="ok", active=False, inactive=True), REPAIR_TIMEOUT,
                  "m2 back as an inactive standby")


def test_failback_true(lab, need_mpathd):
    d = start_group(lab, failback=True)
    assert holder_is(lab, d, V4, "m0")
    d.wait_status(member_is(d, "m2", active=False, inactive=True), MOVE_TIMEOUT, "m2 inactive")

    lab.link_down(0)
    s = d.wait_status(member_is(d, "m2", active=True, inactive=False), MOVE_TIMEOUT,
                      "standby m2 activated")
    assert d.member("m0", s)["state"] == "failed"
    new = wait_moved_away(lab, d, V4, "m0")
    assert new in ("m1", "m2")
    assert d.address(V4)["home"] == "m0"

    lab.link_up(0)
    s = d.wait_status(lambda s: member_is(d, "m0", state="ok", active=True, inactive=False)(s)
                      and member_is(d, "m2", active=False, inactive=True)(s),
                      REPAIR_TIMEOUT, "m0 active again and m2 inactive again")
    wait_until(lambda: holder_is(lab, d, V4, "m0"), MOVE_TIMEOUT, f"{V4} back home on m0")
    assert d.group("g0")["state"] == "ok"
    assert all(a["dev"] != "m2" or a["scope"] == "link" for a in lab.host_addrs()), \
        lab.describe()


def test_failback_false(lab, need_mpathd):
    d = start_group(lab, failback=False)
    assert holder_is(lab, d, V4, "m0")

    lab.link_down(0)
    d.wait_status(member_is(d, "m2", active=True, inactive=False), MOVE_TIMEOUT,
                  "standby m2 activated")
    new = wait_moved_away(lab, d, V4, "m0")

    lab.link_up(0)
    s = d.wait_status(member_is(d, "m0", state="ok", link="up"), REPAIR_TIMEOUT, "m0 repaired")
    m0 = d.member("m0", s)
    assert m0["inactive"] is True and m0["active"] is False, m0
    assert "INACTIVE" in m0["flags"], m0
    assert d.member("m2", s)["active"] is True, d.member("m2", s)
    assert holder_is(lab, d, V4, new), lab.describe()
    # ... and it stays that way (a bounded look, not a sleep: the holder must not change
    # while the daemon keeps publishing status).
    assert d.address(V4)["holder"] == new

    # The INACTIVE m0 takes over when the next active member fails.
    lab.link_down(int(new[1:]))
    wait_moved_away(lab, d, V4, new)
    d.wait_status(member_is(d, "m0", active=True, inactive=False), MOVE_TIMEOUT,
                  "inactive m0 activated")
