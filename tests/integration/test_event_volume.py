"""What mpathd says must match what happens: an AddressMoved signal (and a move counter)
for every real kernel move and for nothing else, and a flapping link does not flood
the log while its final state is still logged (issue 8, items 3 and 9)."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from lab.bus import Lines
from lab.lab import AddressMonitor, wait_until
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
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


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
