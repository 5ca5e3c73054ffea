"""The state directory: state.json is versioned and follows every change; a corrupt or
truncated file is reported and set aside, and the daemon starts from the configuration
and the kernel without disturbing the placement."""

from __future__ import annotations

import json

import pytest

from lab.lab import wait_until
from mpathd_helpers import DATA, MOVE_TIMEOUT, start_group, wait_moved_away


def saved(d) -> dict:
    return json.loads((d.workdir / "state" / "state.json").read_text())


def saved_holder(d, addr: str) -> str | None:
    for g in saved(d)["state"]:
        for a in g["addresses"]:
            if a["address"].split("/")[0] == addr:
                return a["holder"]
    return None


def test_state_follows_failover(lab, need_mpathd):
    d = start_group(lab)
    s = saved(d)
    assert s["version"] == 1
    assert [g["name"] for g in s["groups"]] == ["g0"]
    old = lab.holder_of(DATA["ipv4"])
    assert saved_holder(d, DATA["ipv4"]) == old
    lab.link_down(int(old[1:]))
    new = wait_moved_away(lab, d, DATA["ipv4"], old)
    assert saved_holder(d, DATA["ipv4"]) == new
    member = next(m for g in saved(d)["state"] for m in g["members"] if m["name"] == old)
    assert member["failed"] is True


@pytest.mark.parametrize("content", ["{\"version\": 1, \"groups\": [", "not json at all", "{\"version\": 99}", ""])
def test_corrupt_state_is_set_aside(lab, need_mpathd, content):
    d = start_group(lab)
    placed = {a: lab.holders(a) for a in DATA.values()}
    assert d.stop(timeout=10) == 0
    state = d.workdir / "state" / "state.json"
    state.write_text(content)
    d2 = lab.start_mpathd(d.config_path.read_text(), workdir=d.workdir)
    d2.wait_status(lambda s: all(a.get("holder") for a in s["groups"][0]["addresses"]), MOVE_TIMEOUT,
                   "addresses placed after a start with a bad state file")
    if content:
        assert "set aside" in d2.log(), d2.log()[-2000:]
        assert list((d.workdir / "state").glob("state.json.corrupt-*")), "the bad file is kept for inspection"
    assert {a: lab.holders(a) for a in DATA.values()} == placed
    wait_until(lambda: json.loads(state.read_text())["version"] == 1, MOVE_TIMEOUT, "a fresh state.json")
