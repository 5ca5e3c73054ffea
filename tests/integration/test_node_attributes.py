"""Group health as Pacemaker node attributes (issue 12, the built-in hook
`[[hook]] type = "node-attributes"` in mpathd.conf, or its older spelling
`node-attributes = true`): the real mpathd in the lab, real link failures, and a STAND-IN
attrd_updater on mpathd's PATH (a shell script that records its arguments with the
time and can be told to fail or hang). The real attrd_updater needs a running
Pacemaker in the node's namespaces; this tier checks what mpathd runs, when, and that
a failing or hanging Pacemaker never holds up the daemon.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from lab.lab import Lab, group_config, wait_until

MEMBERS = ["m0", "m1", "m2"]
START_TIMEOUT = 15.0
ATTR_BOUND = 1.0   # s from a link cut to the attribute update (issue: <= 100 ms; generous here)

STAND_IN = """#!/bin/sh
# A stand-in for Pacemaker's attrd_updater (test only): behaves as $STANDIN_DIR/mode
# says, ok (default), fail (exit 102) or hang, and records "TIME ARGS". The mode is read
# first: a test that sees a call and then changes the mode does not change that call.
mode=$(cat "$STANDIN_DIR/mode" 2>/dev/null)
echo "$(date +%s.%N) $*" >> "$STANDIN_DIR/calls"
case $mode in
fail) echo "Could not connect to attrd: Connection refused" >&2; exit 102 ;;
hang) echo $$ > "$STANDIN_DIR/hang.pid"; exec tail -f /dev/null ;;  # never answers: mpathd must kill it
esac
exit 0
"""


class StandIn:
    def __init__(self, lab: Lab):
        self.dir = lab.tmp / "standin"
        self.dir.mkdir()
        exe = self.dir / "attrd_updater"
        exe.write_text(STAND_IN)
        exe.chmod(0o755)
        self.env = {"PATH": f"{self.dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                    "STANDIN_DIR": str(self.dir)}

    def mode(self, m: str) -> None:
        (self.dir / "mode").write_text(m)

    def calls(self) -> list[tuple[float, str]]:
        try:
            lines = (self.dir / "calls").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [(float(t), args) for t, args in (l.split(" ", 1) for l in lines)]

    def last_after(self, t0: float, args: str) -> float | None:
        """The time of the first call with exactly `args` made after t0."""
        for t, a in self.calls():
            if t >= t0 and a == args:
                return t
        return None


HOOK = """
[[hook]]
name = "pacemaker"
type = "node-attributes"
"""


def config(on: bool | None, hook: bool = False) -> str:
    extra = "" if on is None or hook else f"node-attributes = {'true' if on else 'false'}"
    text = group_config(MEMBERS, data_addresses=("198.18.1.10/24",), extra_global=extra)
    return text + HOOK if hook and on else text


def start(lab: Lab, s: StandIn, on: bool | None, workdir: Path | None = None, hook: bool = False):
    d = lab.start_mpathd(config(on, hook), env=s.env, timeout=START_TIMEOUT, workdir=workdir)
    d.wait_status(lambda st: all(m["state"] == "ok" for m in st["groups"][0]["members"]),
                  START_TIMEOUT, "every member ok")
    return d


def attribute_retries(d):
    """The node-attribute retry warnings (replication, off without Corosync, has its own)."""
    return [line for line in d.log().splitlines() if "node attributes:" in line and "retrying with back-off" in line]


@pytest.fixture
def world(request):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with Lab(members=3) as lab:
        yield lab, StandIn(lab)


def test_attribute_follows_usable_members(world):
    lab, s = world
    d = start(lab, s, True)
    wait_until(lambda: s.last_after(0, "-n mpathd-g0 -U 3"), 5, "mpathd-g0=3 at start")
    lags = []
    for i, want in ((0, 2), (1, 1), (2, 0)):
        t0 = time.time()
        lab.link_down(i)
        t = wait_until(lambda: s.last_after(t0, f"-n mpathd-g0 -U {want}"), 5, f"mpathd-g0={want}")
        lags.append(t - t0)
    print("link cut -> attrd_updater run: " + ", ".join(f"{x * 1000:.0f} ms" for x in lags)
          + f" (bound {ATTR_BOUND * 1000:.0f} ms here; issue target 100 ms)")
    assert max(lags) < ATTR_BOUND, lags
    for i in range(3):
        lab.link_up(i)
    t0 = time.time()
    wait_until(lambda: s.last_after(t0, "-n mpathd-g0 -U 3"), 30, "mpathd-g0=3 after repair")
    assert not attribute_retries(d), d.log()
    # A reload that turns it off deletes the attribute; mpathd then runs nothing more.
    d.config_path.write_text(config(False))
    t0 = time.time()
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: s.last_after(t0, "-n mpathd-g0 -D"), 5, "mpathd-g0 deleted")
    n = len(s.calls())
    lab.link_down(0)
    d.wait_status(lambda st: d.member("m0", st)["state"] == "failed", 5, "m0 failed")
    assert len(s.calls()) == n
    # Stopping mpathd leaves the attributes alone (a restart moves nothing).
    d.config_path.write_text(config(True))
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: s.last_after(t0, "-n mpathd-g0 -U 2"), 5, "on again: mpathd-g0=2")
    n = len(s.calls())
    assert d.stop() == 0
    assert len(s.calls()) == n


def test_the_built_in_hook_sets_the_attribute_on_every_change(world):
    lab, s = world
    d = start(lab, s, True, hook=True)
    wait_until(lambda: s.last_after(0, "-n mpathd-g0 -U 3"), 5, "mpathd-g0=3 at start")
    t0 = time.time()
    lab.link_down(1)
    t = wait_until(lambda: s.last_after(t0, "-n mpathd-g0 -U 2"), 5, "mpathd-g0=2")
    assert t - t0 < ATTR_BOUND, t - t0
    print(f"built-in hook: link cut -> attrd_updater run: {(t - t0) * 1000:.0f} ms")
    hook = next(h for h in d.status()["hooks"] if h["name"] == "pacemaker")
    assert hook == {"name": "pacemaker", "type": "node-attributes", "state": "running", "last_error": ""}, hook
    # A reload without the hook deletes the attribute, as node-attributes = false does.
    d.config_path.write_text(config(None))
    t0 = time.time()
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: s.last_after(t0, "-n mpathd-g0 -D"), 5, "mpathd-g0 deleted")
    d.wait_status(lambda st: not any(h["name"] == "pacemaker" for h in st.get("hooks") or []), 5, "hook gone")


def test_off_by_default(world):
    lab, s = world
    d = start(lab, s, None)
    lab.link_down(0)
    d.wait_status(lambda st: d.member("m0", st)["state"] == "failed", 5, "m0 failed")
    assert s.calls() == []


def test_failing_pacemaker_is_logged_once_and_retried(world):
    lab, s = world
    s.mode("fail")
    d = start(lab, s, True)
    # Back-off 0.5, 1, 2 s: four calls within ~4 s.
    wait_until(lambda: len(s.calls()) >= 4, 10, "retries")
    times = [t for t, _ in s.calls()]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(g2 > g1 * 1.5 for g1, g2 in zip(gaps, gaps[1:])), f"back-off doubles: {gaps}"
    lab.link_down(0)  # meanwhile the group changes: the retry carries the latest value
    d.wait_status(lambda st: d.member("m0", st)["state"] == "failed", 5, "m0 failed")
    assert len(attribute_retries(d)) == 1, d.log()
    assert "exit 102: Could not connect to attrd" in d.log()
    s.mode("ok")
    t0 = time.time()
    wait_until(lambda: s.last_after(t0, "-n mpathd-g0 -U 2"), 10, "delivered once Pacemaker answers")
    wait_until(lambda: "attrd_updater works again" in d.log(), 5, "recovery logged")
    assert not any(a == "-n mpathd-g0 -U 3" for t, a in s.calls() if t >= t0), "the stale value is not sent"


def test_hanging_pacemaker_never_blocks_the_daemon(world):
    lab, s = world
    d = start(lab, s, True)
    wait_until(lambda: s.last_after(0, "-n mpathd-g0 -U 3"), 5, "mpathd-g0=3 at start")
    s.mode("hang")
    t0 = time.time()
    lab.link_down(0)
    # The next call hangs (whatever it carries: a probe may have changed a value too).
    wait_until(lambda: [c for c in s.calls() if c[0] >= t0], 5, "a call that hangs")
    # While it hangs, mpathd detects and fails over as before.
    d.wait_status(lambda st: d.member("m0", st)["state"] == "failed" and d.address("198.18.1.10", st)["holder"] != "m0",
                  5, "m0 failed, address elsewhere")
    holder = d.address("198.18.1.10")["holder"]
    lab.link_down(MEMBERS.index(holder))
    wait_until(lambda: len(lab.holders("198.18.1.10")) == 1 and lab.holders("198.18.1.10")[0] != holder, 5,
               "failover while attrd_updater hangs")
    s.mode("ok")
    # Killed after 5 s, retried with the latest value (one usable member left).
    t = wait_until(lambda: s.last_after(t0, "-n mpathd-g0 -U 1"), 15, "latest value after the hang")
    assert t - t0 >= 4.5, "the hanging child was given its 5 s"
    assert "no answer within 5" in d.log()
    pid = int((s.dir / "hang.pid").read_text())
    assert not Path(f"/proc/{pid}").exists(), "the hung child was killed and reaped"
