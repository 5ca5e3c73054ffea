"""mpathd.conf(5) `realtime-priority` (issue 14): the event loop's thread runs SCHED_RR
at the configured priority (default 40) so that a failover never waits for a CPU; the
threads it starts get normal scheduling (SCHED_RESET_ON_FORK); after a failover the
loop steps down to normal scheduling until it waits again (kernel work it queued, such
as IPv6's DAD work, must not wait behind it) and is SCHED_RR again once idle; 0 keeps
normal scheduling; a reload applies a new value. Read from the kernel
(sched_getscheduler of each thread), the real daemon in the lab.
"""

from __future__ import annotations

import os

from lab.lab import wait_until
from mpathd_helpers import MOVE_TIMEOUT, START_TIMEOUT, holder_is, start_group
from test_reload import reload_with

DATA = "198.18.0.10"


def policy_of(tid: int) -> tuple[int, int, bool]:
    """(policy, priority, reset-on-fork) of one thread."""
    p = os.sched_getscheduler(tid)
    return p & ~os.SCHED_RESET_ON_FORK, os.sched_getparam(tid).sched_priority, bool(p & os.SCHED_RESET_ON_FORK)


def threads(pid: int) -> list[int]:
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


def test_the_event_loop_runs_sched_rr_and_nothing_else_does(lab, need_mpathd):
    d = start_group(lab, ["m0", "m1"], data_addresses=[f"{DATA}/24"])
    assert policy_of(d.pid) == (os.SCHED_RR, 40, True)
    assert d.status()["scheduling"] == {"realtime_priority": 40, "problem": ""}
    others = [t for t in threads(d.pid) if t != d.pid]
    assert others, "mpathd has a state writer thread"
    for t in others:
        assert policy_of(t)[0] == os.SCHED_OTHER, (t, policy_of(t))
    assert "event loop scheduled SCHED_RR, priority 40" in d.log()

    # A failover: the loop steps down while the kernel catches up, and is SCHED_RR
    # again once it waits.
    holder = d.address(DATA)["holder"]
    other = "m1" if holder == "m0" else "m0"
    lab.link_down(int(holder[1:]))
    wait_until(lambda: holder_is(lab, d, DATA, other), MOVE_TIMEOUT, f"{DATA} to move to {other}")
    wait_until(lambda: policy_of(d.pid) == (os.SCHED_RR, 40, True), START_TIMEOUT,
               "the loop back at SCHED_RR")


def test_priority_zero_keeps_normal_scheduling_and_a_reload_changes_it(lab, need_mpathd):
    d = start_group(lab, ["m0", "m1"], data_addresses=[f"{DATA}/24"], extra_global="realtime-priority = 0")
    assert policy_of(d.pid)[0] == os.SCHED_OTHER
    assert d.status()["scheduling"] == {"realtime_priority": 0, "problem": ""}

    text = d.config_path.read_text().replace("realtime-priority = 0", "realtime-priority = 20")
    reload_with(d, text)
    assert "configuration reloaded" in d.log()
    assert policy_of(d.pid) == (os.SCHED_RR, 20, True)
    d.wait_status(lambda s: s["scheduling"]["realtime_priority"] == 20, START_TIMEOUT, "status.json says 20")

    # Out of range: rejected with its place, the running value kept.
    reload_with(d, text.replace("realtime-priority = 20", "realtime-priority = 100"))
    assert "realtime-priority: 100 is out of range 0..99" in d.log()
    assert policy_of(d.pid) == (os.SCHED_RR, 20, True)
