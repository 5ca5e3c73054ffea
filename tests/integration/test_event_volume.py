"""What mpathd says must match what happens: an AddressMoved signal (and a move counter)
for every real kernel move and for nothing else, and a flapping link does not flood
the log while its final state is still logged (issue 8, items 3 and 9)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from lab.bus import Lines
from lab.lab import AddressMonitor, Proc, wait_until
from mpathd_helpers import MOVE_TIMEOUT, REPAIR_TIMEOUT, START_TIMEOUT, holder_is, member_is, start_group
# The private bus and the CLI, as the ipmpctl suite uses them.
from test_ipmpctl import bus, ipmpctl, ipmpctl_bin, need_ipmpctl, ok  # noqa: F401

MEMBERS = [{"name": "m0"}, {"name": "m1"}, {"name": "m2", "standby": True}]
A, B = "198.18.1.10", "198.18.1.11"


class Monitor:
    """`ipmpctl monitor -o json`, known to be subscribed; stopped by its pid."""

    def __init__(self):
        self.proc = subprocess.Popen([ipmpctl_bin(), "monitor", "-o", "json"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        ready = Lines(self.proc.stderr).next_line(10)
        assert ready and "Monitoring" in ready, ready
        self.out = Lines(self.proc.stdout)
        self.events: list[dict] = []

    def read_until(self, pred, timeout: float, what: str) -> list[dict]:
        """Reads events until pred(events) holds (bounded)."""
        deadline = time.monotonic() + timeout
        while not pred(self.events):
            left = deadline - time.monotonic()
            line = self.out.next_line(left) if left > 0 else None
            if line is None:
                raise AssertionError(f"timed out waiting for {what}; events: {self.events}")
            self.events.append(json.loads(line))
        return self.events

    def stop(self) -> None:
        Proc(self.proc, "ipmpctl monitor").stop(sig=signal.SIGINT)


def moves_counted(d) -> int:
    return sum(m["counters"]["addresses_in"] for m in d.group("g0")["members"])


def test_address_moved_only_for_real_moves(lab, bus, need_mpathd, need_ipmpctl):
    """Two data addresses homed on one member: policy runs (here: the standby's link
    bouncing) used to publish a failback and a rebalance move each time, 14 signals for
    2 kernel changes, and left one address off its healthy home."""
    d = start_group(lab, members=MEMBERS, data_addresses=(f"{A}/24", f"{B}/24"))
    wait_until(lambda: ipmpctl("show", "groups").returncode == 0, START_TIMEOUT, "mpathd on the bus")
    assert holder_is(lab, d, A, "m0") and holder_is(lab, d, B, "m1"), lab.describe()
    counted_before = moves_counted(d)
    kernel = AddressMonitor(lab)
    mon = Monitor()
    try:
        ok("move", A, "m1")  # both are homed on m1 now
        wait_until(lambda: holder_is(lab, d, A, "m1"), MOVE_TIMEOUT, f"{A} on m1")
        flaps = 3
        for _ in range(flaps):
            lab.link_down(2)
            d.wait_status(member_is(d, "m2", state="failed"), MOVE_TIMEOUT, "m2 failed")
            lab.link_up(2)
            d.wait_status(member_is(d, "m2", state="ok"), REPAIR_TIMEOUT, "m2 repaired")
        # The group is ok again after each repair; the moves of a policy run are
        # signalled before its group state.
        events = mon.read_until(
            lambda ev: sum(e["event"] == "group_state_changed" and e["new_state"] == "ok" for e in ev) >= flaps,
            MOVE_TIMEOUT, "the group to be ok after every flap")
        kernel.settle()
    finally:
        mon.stop()
        kernel.stop()
    signalled = [e for e in events if e["event"] == "address_moved"]
    added = [ln for ln in kernel.events(f"{A}/", f"{B}/") if not ln.startswith("Deleted")]
    assert len(signalled) == len(added) == 1, (signalled, added)
    assert signalled[0]["address"].startswith(A + "/") and signalled[0]["to_interface"] == "m1", signalled
    assert moves_counted(d) - counted_before == 1, d.group("g0")["members"]
    # failback = true: both stay on their healthy home.
    assert holder_is(lab, d, A, "m1") and holder_is(lab, d, B, "m1"), lab.describe()


def info_lines(d, skip: int) -> list[str]:
    """The daemon's log lines after the first `skip`, at level info and above (the lab
    runs mpathd with --log-level debug)."""
    return [ln for ln in d.log().splitlines()[skip:] if " debug: " not in ln and " trace: " not in ln]


def test_flapping_link_log_is_bounded_and_ends_with_the_final_state(lab, need_mpathd):
    """60 s of link flapping wrote about 44 000 info lines. Transitions are rate-limited
    per member, group and address: the first lines are logged, the rest summarised, and
    the member's last transition (its repair) is in the log once the flapping stops."""
    d = start_group(lab)
    assert holder_is(lab, d, "198.18.1.10", "m0"), lab.describe()
    d.wait_status(member_is(d, "m0", probe="ok"), REPAIR_TIMEOUT, "m0 probed")  # its start is logged
    skip = len(d.log().splitlines())
    seconds = 20
    port = lab.switch_port(0)
    out = lab.sh(lab.sw, "sh", "-c",
                 f"end=$(( $(date +%s) + {seconds} )); n=0; "
                 f"while [ $(date +%s) -lt $end ]; do ip link set {port} down; ip link set {port} up; "
                 f"n=$((n + 1)); done; echo $n",
                 timeout=seconds + 60)
    flaps = int(out.split()[-1])
    assert flaps >= 200, f"only {flaps} flaps in {seconds} s: the test would not show a flood"
    d.wait_status(member_is(d, "m0", state="ok", link="up"), REPAIR_TIMEOUT, "m0 repaired")

    # The last word about m0 is its repair: logged at once, or in the summary that a
    # timer writes when the limiter's interval (10 s) ends.
    def last_about_m0():
        about = [ln for ln in info_lines(d, skip) if "g0/m0:" in ln]
        return about and "failed -> ok" in about[-1] and "(repaired)" in about[-1] and about[-1]
    last = wait_until(last_about_m0, 30, "m0's repair in the log")
    lines = info_lines(d, skip)
    about = [ln for ln in lines if "g0/m0:" in ln and "probe targets" not in ln]
    assert "ok -> failed" in about[0] and "(link-down)" in about[0], about[:3]
    # 20 s is two or three intervals of at most 10 lines and a summary per subject
    # (m0, the group, each data address, the standby); without the limit it was
    # two lines per flap.
    assert len(lines) <= 120, f"{len(lines)} info lines for {flaps} flaps; last: {last}\n" + "\n".join(lines[:40])
    assert any("more transitions suppressed" in ln for ln in about), about
