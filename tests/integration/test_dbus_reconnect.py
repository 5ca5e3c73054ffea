"""D-Bus reconnect (issue 13 item 5): when the system bus goes away (dbus-daemon is
restarted by a package upgrade, or crashes), mpathd keeps failing over; when the bus is
back it connects again with back-off, owns its name again and announces its state, so
that ipmpctl works again and signals arrive. Real daemon, real private dbus-daemon
(killed by its pid and started again on the same socket), real ipmpctl."""

from __future__ import annotations

import os
import shutil
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
