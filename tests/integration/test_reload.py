"""Reload (SIGHUP) applies only the difference: a no-op reload touches no address, an
added data address appears without disturbing the others, a removed member gets its
ARP settings back, and a broken configuration is rejected as a whole."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time

import pytest

from lab.bus import Bus, Lines
from lab.lab import AddressMonitor, Proc, group_config, mpathd_bin, wait_until
from mpathd_helpers import DATA, MOVE_TIMEOUT, START_TIMEOUT, member_is, start_group
# The private bus and the CLI, as the ipmpctl suite uses them.
from test_ipmpctl import ipmpctl, need_ipmpctl, ok  # noqa: F401

MEMBERS = [{"name": "m0"}, {"name": "m1"}, {"name": "m2", "standby": True}]


def reload_with(d, text: str | None) -> None:
    """Writes the new configuration (None: leaves it) and sends SIGHUP; waits until the
    daemon logged the outcome (accepted or rejected)."""
    before = d.log().count("configuration reloaded") + d.log().count("reload rejected")
    if text is not None:
        d.config_path.write_text(text)
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: d.log().count("configuration reloaded") + d.log().count("reload rejected") > before,
               START_TIMEOUT, "the reload to be processed")


def address_events(lab, fn) -> list[str]:
    """Runs fn while `ip monitor address` watches the host namespace; returns the event
    lines about data addresses."""
    mon = AddressMonitor(lab)
    fn()
    mon.settle()
    mon.stop()
    return mon.events("198.18.1.", "2001:db8:1::")


def test_noop_reload_touches_nothing(lab, need_mpathd):
    d = start_group(lab, members=MEMBERS)
    text = d.config_path.read_text()
    events = address_events(lab, lambda: reload_with(d, text))
    assert events == [], events
    assert "configuration reloaded" in d.log()


def test_added_address_and_removed_member(lab, need_mpathd):
    d = start_group(lab, members=MEMBERS)
    placed = {a: lab.holders(a) for a in DATA.values()}
    assert lab.member_sysctl(2, "arp_ignore") == "1"
    new_text = group_config([{"name": "m0"}, {"name": "m1"}],
                            data_addresses=("198.18.1.10/24", "2001:db8:1::10/64", "198.18.1.11/24"))

    def change():
        reload_with(d, new_text)
        wait_until(lambda: len(lab.holders("198.18.1.11")) == 1, MOVE_TIMEOUT, "198.18.1.11 placed")

    events = address_events(lab, change)
    assert all("198.18.1.11" in e for e in events), events
    assert {a: lab.holders(a) for a in DATA.values()} == placed
    s = d.status()
    assert [m["name"] for m in d.group("g0", s)["members"]] == ["m0", "m1"]
    # m2 left the group: its ARP settings are back to the namespace defaults.
    assert lab.member_sysctl(2, "arp_ignore") == "0"
    assert lab.member_sysctl(2, "arp_announce") == "0"


def test_broken_config_is_rejected_and_state_stays(lab, need_mpathd):
    d = start_group(lab, members=MEMBERS)
    before = d.status()
    good = d.config_path.read_text()
    reload_with(d, good + "\n[[group]]\nname = \"g1\"\nbogus-key = 1\n")
    assert "reload rejected" in d.log()
    assert "bogus-key" in d.log()
    after = d.status()
    assert [g["name"] for g in after["groups"]] == [g["name"] for g in before["groups"]]
    assert {a["address"]: a["holder"] for a in d.group("g0", after)["addresses"]} == \
        {a["address"]: a["holder"] for a in d.group("g0", before)["addresses"]}
    # The daemon still works: a link failure is still handled.
    old = lab.holder_of(DATA["ipv4"])
    lab.link_down(int(old[1:]))
    d.wait_status(member_is(d, old, state="failed"), MOVE_TIMEOUT, f"{old} failed")


def check_config(d) -> subprocess.CompletedProcess:
    return subprocess.run([mpathd_bin(), "--check-config", str(d.config_path)],
                          capture_output=True, text=True, timeout=30)


def test_drop_in_added_changed_and_removed_by_reload(lab, need_mpathd):
    """mpathd.conf.d/*.conf is read at reload like the main file: a new drop-in's group
    comes up, a broken drop-in is rejected naming its file:line:column (also by
    --check-config) and changes nothing, a removed drop-in's group goes away."""
    d = start_group(lab, members=[{"name": "m0"}, {"name": "m1"}])
    placed = {a: lab.holders(a) for a in DATA.values()}
    drop_ins = d.config_path.parent / (d.config_path.name + ".d")
    drop_ins.mkdir()
    g1 = drop_ins / "50-g1.conf"
    g1.write_text('[[group]]\nname = "g1"\ninterface = "ipmp1"\n'
                  'data-addresses = ["198.18.1.20/24"]\n\n[[group.member]]\nname = "m2"\n')
    r = check_config(d)
    assert r.returncode == 0, r.stderr
    assert "valid (2 groups, 1 drop-in)" in r.stdout

    reload_with(d, None)
    assert "configuration reloaded" in d.log()
    wait_until(lambda: lab.holders("198.18.1.20") == ["m2"], MOVE_TIMEOUT, "g1's address on m2")
    assert [g["name"] for g in d.status()["groups"]] == ["g0", "g1"]
    assert {a: lab.holders(a) for a in DATA.values()} == placed  # g0 untouched

    bad = drop_ins / "60-bad.conf"
    bad.write_text("failback = true\nbogus = 1\n")
    expected = f"{bad}:2:1: bogus: unknown key"
    r = check_config(d)
    assert r.returncode == 78, r
    assert r.stderr.strip() == expected
    reload_with(d, None)
    assert "reload rejected" in d.log() and expected in d.log()
    assert [g["name"] for g in d.status()["groups"]] == ["g0", "g1"]
    assert lab.holders("198.18.1.20") == ["m2"]

    bad.unlink()
    g1.unlink()
    reload_with(d, None)
    wait_until(lambda: lab.holders("198.18.1.20") == [], MOVE_TIMEOUT, "g1's address removed")
    assert [g["name"] for g in d.status()["groups"]] == ["g0"]
    assert {a: lab.holders(a) for a in DATA.values()} == placed


# As on the real system bus, root may become a monitor.
ROOT_MAY_MONITOR = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
</busconfig>
"""


@pytest.fixture
def monitored_bus(monkeypatch, tmp_path):
    """The private system bus of the ipmpctl suite, which root may also monitor."""
    if shutil.which("dbus-daemon") is None or shutil.which("busctl") is None:
        pytest.skip("dbus-daemon or busctl not installed")
    policy = tmp_path / "monitor.conf"
    policy.write_text(ROOT_MAY_MONITOR)
    b = Bus(policies=[policy])
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", b.address)  # mpathd and ipmpctl inherit it
    try:
        yield b
    finally:
        b.close()


class PropertiesMonitor:
    """`busctl monitor` on the private bus: the daemon's PropertiesChanged signals, and
    the Peer.Ping round trips that mark how far the daemon's output has been read.
    Stopped by its pid."""

    MATCHES = ["type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'",
               "type='method_call',interface='org.freedesktop.DBus.Peer',member='Ping'",
               "type='method_return'"]

    def __init__(self, bus):
        self.address = bus.address
        cmd = ["busctl", f"--address={bus.address}", "monitor", "--json=short"]
        cmd += [f"--match={m}" for m in self.MATCHES]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, text=True)
        self.err = Lines(self.proc.stderr)
        ready = self.err.next_line(10)
        assert ready and "Monitoring" in ready, ready
        self.out = Lines(self.proc.stdout)

    def changes_until_synced(self, timeout: float = START_TIMEOUT) -> list[str]:
        """Pings the daemon and returns the PropertiesChanged read before its answer (the
        daemon sends in order, so everything it announced before is in), as sorted
        "path interface property=value" lines; values that differ between runs
        (counters, times) are left out."""
        subprocess.run(["busctl", f"--address={self.address}", "call", "org.ipmp.Mpathd1", "/org/ipmp/Mpathd1",
                        "org.freedesktop.DBus.Peer", "Ping"], check=True, capture_output=True, timeout=timeout)
        changes: list[str] = []
        ping = None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            line = self.out.next_line(left) if left > 0 else None
            if line is None:
                rc = self.proc.poll()
                why = f"busctl monitor ended ({rc}): {self.err.next_line(1)}" if rc is not None else "timed out"
                raise AssertionError(f"no answer to the Ping seen ({why}); so far {changes}")
            m = json.loads(line)
            if m["type"] == "method_call":
                ping = (m.get("sender"), m.get("cookie"))
            elif m["type"] == "method_return":
                if ping and m.get("destination") == ping[0] and m.get("reply_cookie") == ping[1]:
                    return sorted(changes)
            elif m.get("path", "").startswith("/org/ipmp/Mpathd1"):
                iface, props, _ = m["payload"]["data"]
                for name, value in props.items():
                    if name not in ("Counters", "LastChangeUsec"):
                        changes.append(f"{m['path']} {iface} {name}={json.dumps(value['data'])}")

    def stop(self) -> None:
        Proc(self.proc, "busctl monitor").stop(sig=signal.SIGINT)


def test_sighup_and_dbus_reload_announce_the_same(lab, monitored_bus, need_mpathd, need_ipmpctl):
    """Issue 9 item 1: `systemctl reload` (SIGHUP) and `ipmpctl reload` (the D-Bus Reload
    method) announce the same PropertiesChanged, for exactly the settings that changed
    (they used to come from the method alone). A raised FDT is covered at the adapter
    tier (DbusReload.RaisedFailureDetectionTimeIsAnnounced): the lab cannot make probe
    RTTs large enough (no netem)."""
    d = start_group(lab, members=MEMBERS)
    wait_until(lambda: ipmpctl("show", "groups").returncode == 0, START_TIMEOUT, "mpathd on the bus")
    before = d.config_path.read_text()
    after = group_config(MEMBERS, failback=False, notification_count=5, failure_detection_time="2s")
    mon = PropertiesMonitor(monitored_bus)
    try:
        assert mon.changes_until_synced() == []
        reload_with(d, after)
        by_sighup = mon.changes_until_synced()
        reload_with(d, before)
        back = mon.changes_until_synced()
        d.config_path.write_text(after)
        ok("reload")
        by_method = mon.changes_until_synced()
        ok("reload")
        unchanged = mon.changes_until_synced()
    finally:
        mon.stop()
    root, group = "/org/ipmp/Mpathd1 org.ipmp.Mpathd1.Manager", "/org/ipmp/Mpathd1/group/g0 org.ipmp.Mpathd1.Group"
    assert f"{root} Failback=false" in by_sighup, by_sighup
    assert f"{root} NotificationCount=5" in by_sighup, by_sighup
    assert f"{group} FailureDetectionTime=2000" in by_sighup, by_sighup
    assert f"{group} Failback=false" in by_sighup, by_sighup
    assert f"{group} FailureDetectionTime=1000" in back, back
    assert by_method == by_sighup
    assert unchanged == [], "a reload that changes nothing announces nothing"
