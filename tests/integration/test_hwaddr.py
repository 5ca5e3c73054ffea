"""Duplicate MAC addresses in a group: the extra member goes offline until unique."""

from __future__ import annotations

from lab.lab import wait_until
from mpathd_helpers import MOVE_TIMEOUT, REPAIR_TIMEOUT, member_is, start_group


def test_duplicate_mac_offlines_member(lab, need_mpathd):
    d = start_group(lab, members=["m0", "m1", "m2"])
    own_mac = lab.member_mac(1)
    lab.set_member_mac(1, lab.member_mac(0))

    s = d.wait_status(member_is(d, "m1", state="offline", hwaddr_dup=True), MOVE_TIMEOUT,
                      "m1 offline with hwaddr_dup")
    m1 = d.member("m1", s)
    assert m1["active"] is False, m1
    assert d.member("m0", s)["state"] == "ok" and d.member("m0", s)["hwaddr_dup"] is False
    # m1 carries no data address while offline.
    wait_until(lambda: not [a for a in lab.host_addrs("m1") if a["scope"] == "global"],
               MOVE_TIMEOUT, "no data address on m1")
    for a in d.group("g0")["addresses"]:
        assert a["holder"] != "m1", a

    lab.set_member_mac(1, own_mac)
    s = d.wait_status(member_is(d, "m1", state="ok", hwaddr_dup=False), REPAIR_TIMEOUT,
                      "m1 back with a unique MAC")
    assert d.member("m1", s)["mac"] == own_mac
