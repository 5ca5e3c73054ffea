"""Reload (SIGHUP) applies only the difference: a no-op reload touches no address, an
added data address appears without disturbing the others, a removed member gets its
ARP settings back, and a broken configuration is rejected as a whole."""

from __future__ import annotations

import signal
import subprocess

from lab.lab import AddressMonitor, group_config, mpathd_bin, wait_until
from mpathd_helpers import DATA, MOVE_TIMEOUT, START_TIMEOUT, member_is, start_group

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
