"""The state: state.json is versioned and follows every change (its runtime copy before
the daemon acts, its durable copy in the state directory right after); a corrupt or
truncated file is reported and set aside, and the daemon starts from the configuration
and the kernel without disturbing the placement."""

from __future__ import annotations

import json

import pytest

from lab.lab import wait_until
from mpathd_helpers import DATA, MOVE_TIMEOUT, REPAIR_TIMEOUT, start_group, wait_moved_away


def saved(d, where=None) -> dict:
    """state.json: the durable copy (state directory) or, with where, another copy."""
    return json.loads(((where or d.state_dir) / "state.json").read_text())


def saved_holder(d, addr: str, where=None) -> str | None:
    for g in saved(d, where)["state"]:
        for a in g["addresses"]:
            if a["address"].split("/")[0] == addr:
                return a["holder"]
    return None


def test_state_follows_failover(lab, need_mpathd):
    d = start_group(lab)
    # The runtime copy is there before the addresses are placed; the durable copy comes
    # from the writer thread once the loop runs, which may be after status.json says so.
    assert saved(d, d.runtime_dir)["version"] == 1
    wait_until(lambda: (d.state_dir / "state.json").exists(), MOVE_TIMEOUT, "the durable copy")
    s = saved(d)
    assert s["version"] == 1
    assert [g["name"] for g in s["groups"]] == ["g0"]
    old = lab.holder_of(DATA["ipv4"])
    assert saved_holder(d, DATA["ipv4"]) == old
    lab.link_down(int(old[1:]))
    new = wait_moved_away(lab, d, DATA["ipv4"], old)
    # The runtime copy is written before the move; the durable copy by the writer
    # thread, a moment later.
    assert saved_holder(d, DATA["ipv4"], d.runtime_dir) == new
    wait_until(lambda: saved_holder(d, DATA["ipv4"]) == new, MOVE_TIMEOUT, "the durable copy to follow")
    for where in (d.runtime_dir, d.state_dir):
        member = next(m for g in saved(d, where)["state"] for m in g["members"] if m["name"] == old)
        assert member["failed"] is True


def test_clean_stop_leaves_the_durable_copy_only(lab, need_mpathd):
    """After SIGTERM the durable copy is complete and the runtime copy is gone, so the
    next start reads the state directory; after a kill -9 the runtime copy stays and is
    read first."""
    d = start_group(lab)
    old = lab.holder_of(DATA["ipv4"])
    lab.link_down(int(old[1:]))
    new = wait_moved_away(lab, d, DATA["ipv4"], old)
    assert d.stop(timeout=10) == 0
    assert not (d.runtime_dir / "state.json").exists()
    assert saved_holder(d, DATA["ipv4"]) == new
    d2 = lab.start_mpathd(d.config_path.read_text(), workdir=d.workdir)
    lab.link_up(int(old[1:]))  # a change: repaired (and failback)
    wait_until(lambda: saved_holder(d2, DATA["ipv4"], d2.runtime_dir) == lab.holder_of(DATA["ipv4"]) == old,
               REPAIR_TIMEOUT, "failback, in the runtime copy")
    d2.proc_kill()
    assert saved_holder(d2, DATA["ipv4"], d2.runtime_dir) == old, "kept after a kill -9"


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
