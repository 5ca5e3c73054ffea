"""Faults of the state directory cannot stop a failover (issue 13 item 4, issue 14 item 1).

mpathd writes what must survive a restart of the daemon to its runtime directory (a
rename, no fsync) before it acts, and the durable copy in its state directory from a
writer thread that the event loop never waits for. With the state directory full,
read-only, or hanging (a FIFO where the writer opens its temporary file: open(2)
blocks until a reader comes, as a write to a dead disk or NFS server would), a link
failure still moves the data address within the usual time; the error is logged once
with its cause and shown in status.json ("persistence") and on D-Bus (Manager
StateProblem); and the state is written once
the directory works again. Real daemon, real kernel, a real (small) tmpfs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from lab.bus import Bus
from lab.lab import binary, wait_until
from mpathd_helpers import DATA, MOVE_TIMEOUT, START_TIMEOUT, start_group, wait_moved_away

V4 = DATA["ipv4"]
SAVED_AGAIN_TIMEOUT = 20.0  # retries back off to 5 s


@pytest.fixture
def state_tmpfs(lab):
    """A 1 MiB tmpfs as mpathd's state directory (mounted on a directory of the lab's,
    unmounted after the test)."""
    workdir = lab.tmp / "mpathd-faults"
    state = workdir / "state"
    state.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "mpathd-faults", str(state)], check=True)
    try:
        yield workdir
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def holder_in(path) -> str | None:
    try:
        s = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for g in s["state"]:
        for a in g["addresses"]:
            if a["address"].split("/")[0] == V4:
                return a["holder"]
    return None


def fail_over(lab, d) -> tuple[str, str, float]:
    """Cuts the link of V4's holder; returns (old, new, seconds until moved)."""
    old = lab.holder_of(V4)
    t0 = time.monotonic()
    lab.link_down(int(old[1:]))
    new = wait_moved_away(lab, d, V4, old, MOVE_TIMEOUT)
    return old, new, time.monotonic() - t0


def problem_lines(d, cause: str) -> list[str]:
    return [line for line in d.log().splitlines() if "state not saved" in line and cause in line]


def check_fault(lab, d, cause: str) -> str:
    """With the fault in place: failover in the usual time, the runtime copy follows
    (written before the move), the cause logged once and shown in status.json."""
    old, new, took = fail_over(lab, d)
    assert took < MOVE_TIMEOUT
    assert holder_in(d.runtime_dir / "state.json") == new, "the runtime copy is written before acting"
    s = d.wait_status(lambda s: cause in s["persistence"]["problem"], START_TIMEOUT, f"persistence problem: {cause}")
    assert s["persistence"]["ok"] is False
    # A second failover (the old member back, the new one cut) with the fault still there.
    lab.link_up(int(old[1:]))
    d.wait_status(lambda s: d.member(old, s)["state"] == "ok", START_TIMEOUT, f"{old} repaired")
    _, newer, took = fail_over(lab, d)
    assert took < MOVE_TIMEOUT
    assert holder_in(d.runtime_dir / "state.json") == newer
    assert len(problem_lines(d, cause)) == 1, "reported once:\n" + "\n".join(problem_lines(d, cause))
    return newer


def check_recovered(d, holder: str) -> None:
    d.wait_status(lambda s: s["persistence"]["ok"], SAVED_AGAIN_TIMEOUT, "the state saved again")
    wait_until(lambda: holder_in(d.state_dir / "state.json") == holder, SAVED_AGAIN_TIMEOUT,
               "the durable copy to follow")
    assert "state saved again" in d.log()


def ipmpctl_bin() -> str:
    return binary("IPMPCTL_BIN", "build/ipmpctl/ipmpctl")


@pytest.fixture
def bus(monkeypatch):
    if shutil.which("dbus-daemon") is None or shutil.which("busctl") is None:
        pytest.skip("dbus-daemon or busctl not installed")
    b = Bus()
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", b.address)  # mpathd inherits it
    try:
        yield b
    finally:
        b.close()


def state_problem(bus) -> str:
    """Manager.StateProblem over D-Bus (busctl prints: s "...")."""
    cp = subprocess.run(["busctl", f"--address={bus.address}", "get-property", "org.ipmp.Mpathd1",
                         "/org/ipmp/Mpathd1", "org.ipmp.Mpathd1.Manager", "StateProblem"],
                        capture_output=True, text=True, timeout=10)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def test_full_state_dir(lab, need_mpathd, state_tmpfs, bus):
    d = start_group(lab, daemon={"workdir": state_tmpfs})
    wait_until(lambda: state_problem(bus).strip() == 's ""', START_TIMEOUT, "mpathd on the bus, saving fine")
    filler = d.state_dir / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    holder = check_fault(lab, d, "No space left on device")
    assert "No space left on device" in state_problem(bus)  # the health field on D-Bus too
    filler.unlink()
    check_recovered(d, holder)
    assert state_problem(bus).strip() == 's ""'


def test_read_only_state_dir(lab, need_mpathd, state_tmpfs):
    d = start_group(lab, daemon={"workdir": state_tmpfs})
    subprocess.run(["mount", "-o", "remount,ro", str(d.state_dir)], check=True)
    try:
        holder = check_fault(lab, d, "Read-only file system")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(d.state_dir)], check=False)
    check_recovered(d, holder)


def test_hanging_state_dir(lab, need_mpathd, bus):
    d = start_group(lab)
    wait_until(lambda: state_problem(bus).strip() == 's ""', START_TIMEOUT, "mpathd on the bus")
    fifo = d.state_dir / "state.json.tmp"
    os.mkfifo(fifo)  # the writer's open(2) blocks here until a reader opens it
    reader = None
    try:
        holder = check_fault(lab, d, "has not finished")
        # An admin command is answered (the loop never waited) once the write has
        # stalled: done, but not saved, and only a reboot would lose it.
        t0 = time.monotonic()
        cp = subprocess.run([ipmpctl_bin(), "offline", "m2"], capture_output=True, text=True, timeout=30)
        assert cp.returncode == 1, (cp.returncode, cp.stderr)
        assert "done, but state not saved" in cp.stderr and "has not finished" in cp.stderr, cp.stderr
        assert "lost when the machine restarts" in cp.stderr, cp.stderr
        assert time.monotonic() - t0 < 10
        d.wait_status(lambda s: d.member("m2", s)["state"] == "offline", MOVE_TIMEOUT, "m2 offline")
        holder = lab.holder_of(V4)
        # Unblock: a reader lets the open through; the write lands in the pipe and fails
        # (no fsync on a FIFO), the writer removes its temporary file and tries again.
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        wait_until(lambda: not fifo.exists() or not fifo.is_fifo(), SAVED_AGAIN_TIMEOUT, "the FIFO to be removed")
        check_recovered(d, holder)
        saved = json.loads((d.state_dir / "state.json").read_text())
        assert any(m["name"] == "m2" and m["offline"] for g in saved["state"] for m in g["members"])
    finally:
        if reader is not None:
            os.close(reader)
        if fifo.is_fifo():
            fifo.unlink()
    assert d.running()
