"""One mpathd per network namespace: a second daemon in the same namespace refuses to
start (exit 75, naming the running pid) and changes nothing, whatever directories it
was given; a daemon in another namespace is not affected; and a daemon killed with
SIGKILL leaves no lock behind that would block its restart."""

from __future__ import annotations

from lab.lab import AddressMonitor, mpathd_bin, wait_until
from mpathd_helpers import DATA, START_TIMEOUT, start_group

EXIT_ALREADY_RUNNING = 75


def placement_and_states(d) -> dict:
    """What a fight would change (RTTs and counters of probes move by themselves)."""
    g = d.group("g0")
    return {"addresses": {a["address"]: a["holder"] for a in g["addresses"]},
            "members": {m["name"]: (m["state"], m["active"], m["reason"], m["counters"]["state_changes"])
                        for m in g["members"]}}


def test_second_daemon_in_namespace_refused(lab, need_mpathd):
    first = start_group(lab)
    first.wait_status(lambda s: all(m["probe"] == "ok" for m in first.group("g0", s)["members"]),
                      START_TIMEOUT, "every member ok by its probes")
    placed = {addr: lab.holders(addr) for addr in DATA.values()}
    before = placement_and_states(first)
    mon = AddressMonitor(lab)
    try:
        # Its own config, state and runtime directories: only the namespace is shared.
        second = lab.start_mpathd(first.config_path.read_text(), wait_started=False)
        wait_until(lambda: not second.running(), START_TIMEOUT, "the second mpathd to exit")
        assert second.popen.returncode == EXIT_ALREADY_RUNNING, second.log()[-3000:]
        log = second.log()
        assert "already running" in log and f"pid {first.pid}" in log, log[-3000:]
        assert second.status() is None, "the refused daemon wrote a status file"
        mon.settle()
        assert mon.events(*DATA.values()) == [], "the refused daemon touched the data addresses"
    finally:
        mon.stop()
    assert first.running()
    assert {addr: lab.holders(addr) for addr in DATA.values()} == placed
    assert placement_and_states(first) == before


def test_daemon_in_other_namespace_not_blocked(lab, need_mpathd, monkeypatch):
    """The lock is per network namespace, not per lock directory."""
    first = start_group(lab)
    # The second daemon needs no D-Bus: point it at a bus that does not exist.
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={lab.tmp}/no-bus")
    workdir = lab.tmp / "client-mpathd"
    (workdir / "run").mkdir(parents=True)
    (workdir / "state").mkdir()
    (workdir / "mpathd.conf").write_text("")
    other = lab.spawn(lab.cl, mpathd_bin(), "--config", str(workdir / "mpathd.conf"),
                      "--runtime-dir", str(workdir / "run"), "--state-dir", str(workdir / "state"),
                      "--lock-dir", str(lab.tmp / "lock"), name="mpathd-client")
    status = workdir / "run" / "status.json"

    def started():
        assert other.running(), f"mpathd in the client namespace exited with {other.popen.poll()}"
        return status.exists() and '"started": true' in status.read_text()
    wait_until(started, START_TIMEOUT, "mpathd in the client namespace to start")
    assert first.running()
    assert other.stop(timeout=10) == 0


def test_kill9_leaves_no_stale_lock(lab, need_mpathd):
    first = start_group(lab)
    placed = {addr: lab.holders(addr) for addr in DATA.values()}
    first.proc_kill()
    # The same directories, as systemd's Restart= would: it starts at once.
    again = lab.start_mpathd(first.config_path.read_text(), workdir=first.workdir,
                             timeout=START_TIMEOUT)
    assert again.running()
    assert {addr: lab.holders(addr) for addr in DATA.values()} == placed
    # And it is the one holding the namespace now.
    third = lab.start_mpathd(first.config_path.read_text(), wait_started=False)
    assert third.popen.wait(timeout=START_TIMEOUT) == EXIT_ALREADY_RUNNING
    assert f"pid {again.pid}" in third.log()
