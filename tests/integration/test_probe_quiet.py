"""The quiet period after a member's probing starts (issue 13 item 3, mpathd.conf(5)
`probe-quiet-period`; in.mpathd's 40 s for spanning tree): a member whose switch port
passes nothing when mpathd starts (carrier up, so only probes can tell) stays ok for
the quiet period and fails as soon as it ends; a member that is answered ends its
quiet period at once and fails within the FDT when it is cut later. Without the
setting, the cut-off member fails within the FDT of the start (the default).

Probing is the lab default (ARP to the router), FDT 1 s; the quiet period is 5 s, far
longer than the FDT, so that "within the FDT" and "after the quiet period" cannot be
confused whatever the machine's load.
"""

from __future__ import annotations

import time

from mpathd_helpers import START_TIMEOUT, member_is, start_group

FDT = 1.0
QUIET = 5.0
MEMBERS = ["m0", "m1", "m2"]


def test_a_member_cut_off_at_start_fails_only_after_the_quiet_period(lab, need_mpathd):
    lab.silent_fail(1)  # m1's port left the bridge before mpathd starts
    t0 = time.monotonic()
    d = start_group(lab, MEMBERS, failure_detection_time="1s",
                    extra_global=f'probe-quiet-period = "{QUIET:g}s"')
    # The answered members end their quiet period with their first answer.
    d.wait_status(lambda s: all(d.member(n, s)["probe"] == "ok" for n in ("m0", "m2")),
                  START_TIMEOUT, "m0 and m2 probed")
    # m1 loses every probe, but stays ok until the quiet period is over: its probing
    # started after t0, so it cannot end before t0 + QUIET (1 s margin for sampling).
    left = t0 + QUIET - 1 - time.monotonic()
    assert left > 1, f"the daemon took {time.monotonic() - t0:.1f}s to start"
    d.hold_status(member_is(d, "m1", state="ok"), left, "m1 ok in its quiet period")
    # Then its losses count at once (they went on all along).
    d.wait_status(member_is(d, "m1", state="failed", reason="probe-loss"), START_TIMEOUT,
                  "m1 failed after its quiet period")
    failed_after = time.monotonic() - t0
    assert failed_after >= QUIET - 1, failed_after
    # m0 was answered: a cut now fails it within the FDT, not after a quiet period.
    lab.silent_restore(1)
    d.wait_status(member_is(d, "m1", state="ok"), START_TIMEOUT, "m1 repaired")
    lab.silent_fail(0)
    cut = time.monotonic()
    d.wait_status(member_is(d, "m0", state="failed", reason="probe-loss"), 3 * FDT + 2,
                  "m0 failed within the FDT")
    print(f"m1 failed {failed_after:.2f}s after start (quiet {QUIET:g}s); "
          f"m0 {time.monotonic() - cut:.2f}s after its cut")


def test_without_a_quiet_period_a_member_cut_off_at_start_fails_at_once(lab, need_mpathd):
    lab.silent_fail(1)
    t0 = time.monotonic()
    d = start_group(lab, MEMBERS, failure_detection_time="1s")
    d.wait_status(member_is(d, "m1", state="failed", reason="probe-loss"), START_TIMEOUT,
                  "m1 failed")
    took = time.monotonic() - t0
    # Start-up plus the FDT (and the cautious first intervals), far below QUIET.
    assert took < QUIET, took
