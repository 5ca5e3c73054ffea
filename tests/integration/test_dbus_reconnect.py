"""D-Bus reconnect (issue 13 item 5): when the system bus goes away (dbus-daemon is
restarted by a package upgrade, or crashes), mpathd keeps failing over; when the bus is
back it connects again with back-off, owns its name again and announces its state, so
that ipmpctl works again and signals arrive. Real daemon, real private dbus-daemon
(killed by its pid and started again on the same socket), real ipmpctl."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time

import pytest

from lab.bus import Bus, Lines
from lab.lab import binary, wait_until
from mpathd_helpers import DATA, MOVE_TIMEOUT, START_TIMEOUT, start_group, wait_moved_away

RECONNECT_TIMEOUT = 15.0  # back-off 100 ms doubling to 10 s: the bus is back within 1-2 s here


def ipmpctl(*args: str, timeout: float = 10) -> subprocess.CompletedProcess:
    return subprocess.run([ipmpctl_bin(), *args], capture_output=True, text=True,
                          timeout=timeout)


def ipmpctl_bin() -> str:
    return binary("IPMPCTL_BIN", "build/ipmpctl/ipmpctl")


@pytest.fixture
def need_ipmpctl():
    if not os.access(ipmpctl_bin(), os.X_OK):
        pytest.fail(f"ipmpctl not found at {ipmpctl_bin()}; build it or set IPMPCTL_BIN")


@pytest.fixture
def restartable_bus(monkeypatch):
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon not installed")
    b = Bus()
    # Without the guid: the restarted bus has a new one.
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", b.socket_address)
    try:
        yield b
    finally:
        b.close()


def test_bus_restart(lab, need_mpathd, need_ipmpctl, restartable_bus):
    d = start_group(lab)
    wait_until(lambda: ipmpctl("show", "groups").returncode == 0, START_TIMEOUT, "mpathd on the bus")
    restartable_bus.kill()
    wait_until(lambda: "connection to the system bus lost" in d.log(), START_TIMEOUT, "the loss noticed")
    assert ipmpctl("show", "groups").returncode != 0
    # No bus: failover as usual.
    old = lab.holder_of(DATA["ipv4"])
    t0 = time.monotonic()
    lab.link_down(int(old[1:]))
    new = wait_moved_away(lab, d, DATA["ipv4"], old)
    assert time.monotonic() - t0 < MOVE_TIMEOUT
    # The bus is back: the name is owned again and the API answers.
    restartable_bus.start_again()
    wait_until(lambda: ipmpctl("show", "groups").returncode == 0, RECONNECT_TIMEOUT, "ipmpctl to work again")
    assert "reconnected to the system bus" in d.log()
    cp = ipmpctl("-o", "json", "show", "addresses")
    assert cp.returncode == 0 and new in cp.stdout, cp.stdout
    # Signals: `ipmpctl monitor` sees the next change.
    mon = subprocess.Popen([ipmpctl_bin(), "monitor"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=os.environ.copy())
    try:
        lines = Lines(mon.stdout)
        seen: list[str] = []

        def saw_failure():
            line = lines.next_line(0.2)
            if line:
                seen.append(line)
            return any(new in x and "failed" in x for x in seen)
        # The monitor subscribes while the old member is repaired (seconds); the
        # signal of the next failure then has a generous bound.
        lab.link_up(int(old[1:]))
        d.wait_status(lambda s: d.member(old, s)["state"] == "ok", START_TIMEOUT, f"{old} repaired")
        lab.link_down(int(new[1:]))
        wait_until(saw_failure, START_TIMEOUT, f"a signal for {new} failing; seen {seen}")
    finally:
        mon.kill()
        mon.wait(timeout=10)
    assert d.running()


def test_bus_that_starts_after_mpathd(lab, need_mpathd, need_ipmpctl, restartable_bus):
    """No bus when mpathd starts: it starts and fails over without one, and serves
    the API once the bus is there."""
    restartable_bus.kill()
    d = start_group(lab)
    assert "D-Bus API unavailable for now" in d.log()
    old = lab.holder_of(DATA["ipv4"])
    lab.link_down(int(old[1:]))
    new = wait_moved_away(lab, d, DATA["ipv4"], old)
    restartable_bus.start_again()
    wait_until(lambda: ipmpctl("show", "groups").returncode == 0, RECONNECT_TIMEOUT, "ipmpctl to work")
    cp = ipmpctl("-o", "json", "show", "addresses")
    assert cp.returncode == 0 and new in cp.stdout, cp.stdout


def test_direct_socket_works_without_the_bus(lab, need_mpathd, need_ipmpctl, restartable_bus):
    """mpathd's direct socket (<runtime-dir>/private, peer-to-peer D-Bus, root only):
    ipmpctl's one-shot verbs work with dbus-daemon gone, also after mpathd was killed
    -9 and started again on the stale socket file; the verbs that follow signals need
    the bus and say so; a caller that is not root is not served there."""
    d = start_group(lab)
    sock = d.runtime_dir / "private"
    mode = sock.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600, oct(mode)
    direct = {**os.environ, "MPATHD_SOCKET": str(sock)}

    def run(*args: str, env=direct) -> subprocess.CompletedProcess:
        return subprocess.run([ipmpctl_bin(), *args], capture_output=True, text=True, timeout=10, env=env)

    restartable_bus.kill()
    wait_until(lambda: "connection to the system bus lost" in d.log(), START_TIMEOUT, "the loss noticed")
    assert run("show", "groups", env=os.environ.copy()).returncode == 5  # over the bus: unreachable
    cp = run("-o", "json", "show", "interfaces")
    assert cp.returncode == 0, cp.stderr
    members = [i["name"] for i in json.loads(cp.stdout)]
    assert len(members) >= 2, cp.stdout
    # A change and its effect, without a bus.
    victim = lab.holder_of(DATA["ipv4"])
    cp = run("offline", victim)
    assert cp.returncode == 0, cp.stderr
    new = wait_moved_away(lab, d, DATA["ipv4"], victim)
    cp = run("-o", "json", "show", "addresses")
    assert cp.returncode == 0 and new in cp.stdout, cp.stdout
    # Signals are the bus': monitor says it cannot reach mpathd, it does not hang.
    cp = run("monitor", "--count", "1")
    assert cp.returncode == 5 and "system bus" in cp.stderr, (cp.returncode, cp.stderr)
    # Not root: not served on the socket (and no bus to fall back to).
    cp = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                         ipmpctl_bin(), "show", "groups"],
                        capture_output=True, text=True, timeout=10, env=direct)
    assert cp.returncode == 5, (cp.returncode, cp.stderr)

    # kill -9 leaves the socket file; the next mpathd replaces it and serves at once.
    d.proc_kill()
    assert sock.exists()
    d = lab.start_mpathd((d.workdir / "mpathd.conf").read_text(), workdir=d.workdir, timeout=START_TIMEOUT)
    cp = run("-o", "json", "show", "interfaces")
    assert cp.returncode == 0, cp.stderr
    cp = run("online", victim)
    assert cp.returncode == 0, cp.stderr
    d.wait_status(lambda s: d.member(victim, s)["state"] == "ok", START_TIMEOUT, f"{victim} online")
    d.stop()
    assert not sock.exists()  # removed on a clean exit
