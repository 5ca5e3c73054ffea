"""Restart without disruption, as systemd would do it: the daemon is killed with
SIGKILL at random moments — also in the middle of failovers — and started again on
the same state directory. After every restart each data address exists exactly once,
on an active member whose link is up; no member with its link down is active; and
both copies of state.json (runtime and durable) are valid. A link failure that happens while the daemon is down is handled
right after it starts. The watchdog pings come from the event loop and stop when the
loop is stuck."""

from __future__ import annotations

import json
import random
import signal
import socket
import time

from lab.lab import wait_until
from mpathd_helpers import DATA, MOVE_TIMEOUT, START_TIMEOUT, start_group

MEMBERS = [{"name": "m0"}, {"name": "m1"}, {"name": "m2", "standby": True}]
ITERATIONS = 50
SETTLE_TIMEOUT = 10.0  # detection (FDT 300 ms) or repair (10 probes) after a restart


def consistent(lab, d, down: set[int]):  # down: members cut by link or silently
    """The invariants after a restart; returns a description of what is wrong or None."""
    s = d.status()
    if not s or s.get("pid") != d.pid or not s.get("started"):
        return "daemon not started"
    members = {m["name"]: m for m in s["groups"][0]["members"]}
    for i in range(lab.n):
        m = members[f"m{i}"]
        if i in down and (m["active"] or m["state"] != "failed"):
            return f"m{i} has no link but is {m['state']} active={m['active']}"
        if i not in down and m["state"] != "ok":
            return f"m{i} has its link but is {m['state']}"
    if len(down) == lab.n:
        return None  # group failed: addresses have nowhere to go
    for addr in DATA.values():
        holders = lab.holders(addr)
        if len(holders) != 1:
            return f"{addr} on {holders}"
        h = holders[0]
        if int(h[1:]) in down or not members[h]["active"]:
            return f"{addr} on {h}, which is not an active member with link"
    return None


class KillTorture:
    """kill -9 at random moments during failovers (this test, and bench/torture.py for
    1 000 kills): each kill() is one iteration."""

    def __init__(self, lab, seed: int):
        self.lab = lab
        self.rng = random.Random(seed)
        # Probing by ARP at a short FDT: silent failures are detected in ~0.3 s, repairs
        # (10 good probes) take ~0.5 s, and members FAILED before a restart must earn them.
        self.d = start_group(lab, members=MEMBERS, extra_global="link-flap-limit = 100",
                             failure_detection_time="300ms")
        self.workdir, self.config = self.d.workdir, self.d.config_path.read_text()
        self.down: set[int] = set()    # members cut by link or silently
        self.silent: set[int] = set()  # the subset of `down` cut silently (carrier up)

    def kill(self):
        """A failure or a repair — of the link or silent — sometimes while mpathd is
        down; mpathd killed in the middle of its reaction and started again. Returns
        the new daemon (not yet settled)."""
        lab, rng, d, down, silent = self.lab, self.rng, self.d, self.down, self.silent
        i = rng.randrange(lab.n)
        while_down = rng.random() < 0.25
        if while_down:
            d.proc_kill()
        if i in down:
            lab.silent_restore(i) if i in silent else lab.link_up(i)
            down.discard(i)
            silent.discard(i)
        elif len(down) < lab.n - 1 or rng.random() < 0.2:
            if rng.random() < 0.5:
                lab.silent_fail(i)
                silent.add(i)
            else:
                lab.link_down(i)
            down.add(i)
        if not while_down:
            # Kill at a random moment of the daemon's reaction: after 0..3 more log lines.
            lines = d.log().count("\n")
            more = rng.randrange(4)
            if more:
                try:
                    wait_until(lambda: d.log().count("\n") >= lines + more, 1.0, "daemon activity")
                except AssertionError:
                    pass  # it had less to say: kill it now
            d.proc_kill()
        assert_state_files_valid(self.workdir)  # never torn by the kill
        self.d = lab.start_mpathd(self.config, workdir=self.workdir, timeout=30)
        return self.d

    def settle(self, what: str) -> None:
        why = None

        def ok():
            nonlocal why
            why = consistent(self.lab, self.d, self.down)
            return why is None
        wait_until(ok, SETTLE_TIMEOUT, f"{what}: consistent state after restart ({why})")
        assert_state_files_valid(self.workdir)


def test_kill9_at_random_moments(lab, need_mpathd):
    t = KillTorture(lab, 20261122)
    for it in range(ITERATIONS):
        t.kill()
        t.settle(f"iteration {it}")


def assert_state_files_valid(workdir) -> None:
    """Both copies of state.json, where they exist, are complete (never torn by a kill)."""
    copies = [p for p in (workdir / "run" / "state.json", workdir / "state" / "state.json") if p.exists()]
    assert copies, "no state.json at all"
    for p in copies:
        state = json.loads(p.read_text())
        assert state["version"] == 1, p


def test_failure_while_down_is_handled_at_start(lab, need_mpathd):
    d = start_group(lab, members=MEMBERS)
    old = lab.holder_of(DATA["ipv4"])
    d.proc_kill()
    lab.link_down(int(old[1:]))
    d2 = lab.start_mpathd(d.config_path.read_text(), workdir=d.workdir)
    wait_until(lambda: lab.holders(DATA["ipv4"]) not in ([old], []), MOVE_TIMEOUT,
               "the address to leave the member that failed while mpathd was down")
    assert d2.member(old)["state"] == "failed"


def test_watchdog(lab, need_mpathd):
    """READY=1 and STATUS= after start; WATCHDOG=1 from the loop while it runs; none
    once the loop is stuck (SIGSTOP), which a supervisor detects and answers with a
    restart."""
    path = lab.tmp / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    msgs: list[tuple[float, str]] = []

    def drain():
        try:
            while True:
                msgs.append((time.monotonic(), sock.recv(4096).decode()))
        except OSError:
            pass
        return msgs

    env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "300000"}
    d = start_group(lab, members=MEMBERS)
    d.stop(timeout=10)
    d = lab.start_mpathd(d.config_path.read_text(), workdir=d.workdir, env=env)
    wait_until(lambda: any("READY=1" in m for _, m in drain()), START_TIMEOUT, "READY=1")
    assert any("STATUS=1 groups: 1 ok" in m for _, m in msgs), msgs
    n = len(msgs)
    wait_until(lambda: sum("WATCHDOG=1" in m for _, m in drain()[n:]) >= 3, 3.0, "three watchdog pings")

    # Stuck loop: no pings any more. The supervisor notices within the watchdog period.
    d.send_signal(signal.SIGSTOP)
    drain()
    stopped_at = time.monotonic()
    wait_until(lambda: time.monotonic() - stopped_at > 0.9, 2.0, "three watchdog periods to pass")
    late = [m for t, m in drain() if t > stopped_at + 0.05 and "WATCHDOG=1" in m]
    assert late == [], late
    d.proc_kill()
    d2 = lab.start_mpathd(d.config_path.read_text(), workdir=d.workdir, env=env)
    wait_until(lambda: any("READY=1" in m for t, m in drain() if t > stopped_at), START_TIMEOUT,
               "READY=1 after the supervisor's restart")
    assert lab.holders(DATA["ipv4"]) and d2.status()["started"]
    sock.close()
