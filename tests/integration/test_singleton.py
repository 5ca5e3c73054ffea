"""A one-member group whose link fails is a group failure."""

from __future__ import annotations

import pytest

from mpathd_helpers import MOVE_TIMEOUT, REPAIR_TIMEOUT, start_group


@pytest.mark.members(1)
def test_singleton_group_failure(lab, need_mpathd):
    d = start_group(lab, members=["m0"])
    s = d.wait_status(lambda s: s["groups"][0]["state"] == "ok", MOVE_TIMEOUT, "group ok")
    assert d.member("m0", s)["active"] is True

    lab.link_down(0)
    s = d.wait_status(lambda s: s["groups"][0]["state"] == "failed", MOVE_TIMEOUT,
                      "group failed")
    assert d.member("m0", s)["state"] == "failed", d.member("m0", s)
    assert d.member("m0", s)["link"] == "down", d.member("m0", s)

    lab.link_up(0)
    s = d.wait_status(lambda s: s["groups"][0]["state"] == "ok", REPAIR_TIMEOUT,
                      "group ok again")
    assert d.member("m0", s)["state"] == "ok"
    for a in d.group("g0", s)["addresses"]:
        assert a["holder"] == "m0", a
