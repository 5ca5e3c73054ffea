"""Issue 8 items 4, 7 and 8 against the real binaries: every way in applies the
configuration file's rules, a kernel refusal is reported, answers are clear, input is
bounded, and a change that cannot be saved says so.

Runs mpathd in the lab's host namespace on a private system bus (the fixtures of
test_ipmpctl.py); `--check-config` needs no namespace (it only reads a file).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from lab.lab import mpathd_bin, wait_until
from mpathd_helpers import MOVE_TIMEOUT, V4, V6
from test_ipmpctl import (EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, bus,  # noqa: F401
                          expect, ipmpctl, need_ipmpctl, start, world)

EXIT_CONFIG = 78


def manager_call(bus_address: str, method: str, *args: str) -> subprocess.CompletedProcess:
    """A Manager method with string arguments through dbus-send (package dbus): the
    D-Bus way in, without ipmpctl's own checks."""
    cmd = ["dbus-send", f"--bus={bus_address}", "--print-reply", "--dest=org.ipmp.Mpathd1",
           "/org/ipmp/Mpathd1", f"org.ipmp.Mpathd1.Manager.{method}", *(f"string:{a}" for a in args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


# ---------------------------------------------------------------- bounded input (item 8)

def check_config(path: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([mpathd_bin(), "--check-config", path], capture_output=True, text=True,
                          timeout=timeout)


def test_check_config_reads_only_bounded_regular_files(tmp_path, need_mpathd):
    # /dev/zero was read without limit; a FIFO hung for ever (timeout = test failure).
    for path in ("/dev/zero", str(tmp_path)):
        cp = check_config(path)
        assert cp.returncode == EXIT_CONFIG, cp
        assert cp.stderr.strip() == f"{path}: not a regular file", cp.stderr
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)
    cp = check_config(str(fifo))
    assert cp.returncode == EXIT_CONFIG and "not a regular file" in cp.stderr, cp
    big = tmp_path / "big.conf"
    with open(big, "wb") as f:
        f.truncate(64 * 1024 * 1024)
    cp = check_config(str(big))
    assert cp.returncode == EXIT_CONFIG and "larger than the limit of 1048576 bytes" in cp.stderr, cp
    # --check-config "" checked the default file.
    cp = check_config("")
    assert cp.returncode == EXIT_CONFIG, cp
    assert "configuration file name is empty" in cp.stderr, cp.stderr


def test_check_config_caps_errors_and_echoes(tmp_path, need_mpathd):
    dup = ", ".join(['"198.18.1.10/24"'] * 30000)
    conf = tmp_path / "dup.conf"
    conf.write_text(f'[[group]]\nname = "g0"\ndata-addresses = [{dup}]\n[[group.member]]\nname = "m0"\n')
    cp = check_config(str(conf))
    assert cp.returncode == EXIT_CONFIG
    lines = cp.stderr.splitlines()
    assert len(lines) == 21, lines[:3]
    assert lines[-1] == f"{conf}: 29979 more errors not shown"
    name = "g" * 500000
    conf.write_text(f'[[group]]\nname = "{name}"\n[[group.member]]\nname = "m0"\n')
    cp = check_config(str(conf))
    assert cp.returncode == EXIT_CONFIG
    assert len(cp.stderr) < 500 and "(500000 bytes) is not a valid group name" in cp.stderr, cp.stderr[:500]


# ---------------------------------------------------------------- one validator (item 4)

def test_dbus_applies_the_config_files_rules(lab, bus, need_mpathd, need_ipmpctl):
    d = start(lab)
    before = world(lab, d)
    for addr in ("127.0.0.2/8", "224.0.0.5/4", "255.255.255.255/32", "198.18.1.0/24",
                 "198.18.1.255/24", "::1/128", "::/0", "ff02::5/64", "0.0.0.0/0", "198.18.1.50"):
        cp = manager_call(bus.address, "AddDataAddress", "g0", addr)
        assert cp.returncode != 0, f"{addr} accepted"
        assert "org.ipmp.Mpathd1.Error.InvalidArgument" in cp.stderr, cp.stderr
        assert addr.split("/")[0] in cp.stderr, cp.stderr  # the answer names it
    cp = manager_call(bus.address, "CreateGroup", "g9", "m1")
    assert cp.returncode != 0 and "interface m1 is already a member of group g0" in cp.stderr, cp.stderr
    assert "org.ipmp.Mpathd1.Error.Exists" in cp.stderr, cp.stderr
    expect(ipmpctl("group", "add", "g0", "lo"), EXIT_USAGE, "lo is the loopback interface")
    expect(ipmpctl("group", "create", "g9", "--interface", "m0"), EXIT_REFUSED,
           "cannot create group g9: interface m0 is already a member of group g0")
    groups = json.loads(ipmpctl("show", "groups", "-o", "json").stdout)
    assert [g["name"] for g in groups] == ["g0"]
    assert {a["address"] for a in groups[0]["data_addresses"]} == {f"{V4}/24", f"{V6}/64"}
    assert [m["name"] for m in d.group("g0")["members"]] == ["m0", "m1", "m2"]
    assert world(lab, d) == before
    assert d.running()


def test_kernel_refusal_is_reported_not_shown_up(lab, bus, need_mpathd, need_ipmpctl):
    d = start(lab)
    # The kernel refuses IPv6 addresses on a member with IPv6 disabled (EACCES).
    for i in range(3):
        lab._sysctl(lab.host, f"net.ipv6.conf.m{i}.disable_ipv6", 1)
    cp = ipmpctl("address", "add", "g0", "2001:db8:1::20/64")
    expect(cp, EXIT_FAILURE, "the kernel refused the address", "2001:db8:1::20/64")
    addrs = {a["address"] for a in json.loads(ipmpctl("show", "addresses", "-o", "json").stdout)}
    assert "2001:db8:1::20/64" not in addrs
    assert lab.holders("2001:db8:1::20") == []
    # The configured IPv6 data address went with it; it is shown down, with the reason.
    wait_until(lambda: lab.holders(V6) == [] and d.address(V6)["state"] == "down", MOVE_TIMEOUT,
               f"{V6} down")
    assert "Permission denied" in d.address(V6)["refused"], d.address(V6)
    rows = {a["address"]: a for a in json.loads(ipmpctl("show", "addresses", "-o", "json").stdout)}
    assert rows[f"{V6}/64"]["state"] == "down", rows
    assert rows[f"{V4}/24"]["state"] == "up", rows
    # Logged once per member it was refused on, not after every input.
    lines = [ln for ln in d.log().splitlines() if f"the kernel refused an address: add {V6}/64" in ln]
    assert lines and len(lines) == len({ln.split(" on ")[1] for ln in lines}), lines
    # Once the kernel takes it again (its link-local addresses are events: mpathd tries
    # again), it is up.
    for i in range(3):
        lab._sysctl(lab.host, f"net.ipv6.conf.m{i}.disable_ipv6", 0)
    wait_until(lambda: len(lab.holders(V6)) == 1 and d.address(V6)["state"] == "up", MOVE_TIMEOUT,
               f"{V6} up again")
    assert d.address(V6)["refused"] == ""


def test_reload_and_start_check_members_against_the_kernel(lab, bus, need_mpathd, need_ipmpctl):
    from lab.lab import group_config
    from mpathd_helpers import EXAMPLE_MEMBERS
    d = start(lab)
    before = world(lab, d)
    conf = d.workdir / "mpathd.conf"
    good = conf.read_text()
    # A reload naming the loopback as a member, or a loopback data address, is refused
    # as a whole and changes nothing.
    for bad in (group_config(EXAMPLE_MEMBERS + [{"name": "lo"}]),
                group_config(EXAMPLE_MEMBERS, data_addresses=("198.18.1.10/24", "127.0.0.2/8"))):
        conf.write_text(bad)
        expect(ipmpctl("reload"), EXIT_FAILURE)
        assert world(lab, d) == before
        assert [m["name"] for m in d.group("g0")["members"]] == ["m0", "m1", "m2"]
    assert "group g0: lo is the loopback interface" in d.log()
    assert "127.0.0.2/8 is a loopback address" in d.log()
    conf.write_text(good)
    # At start: a configuration error (78) that names the member. One mpathd per
    # namespace: the first one is stopped, or the second would be refused (75) for that.
    d.stop()
    d2 = lab.start_mpathd(group_config(["m0", "lo"]), wait_started=False)
    wait_until(lambda: d2.popen.poll() is not None, 20, "mpathd to refuse to start")
    assert d2.popen.returncode == EXIT_CONFIG, d2.log()
    assert "lo is the loopback interface" in d2.log()


# ---------------------------------------------------------------- clear answers (item 7)

def test_clear_answers(lab, bus, need_mpathd, need_ipmpctl):
    d = start(lab)
    before = world(lab, d)
    for arg in (f"{V4}/abc", f"{V4}/33"):
        expect(ipmpctl("move", arg, "m1"), EXIT_USAGE, f'invalid address "{arg}"')
    assert world(lab, d) == before
    cp = ipmpctl("monitor", "--count", "0")
    assert cp.returncode == EXIT_USAGE and "at least 1" in cp.stderr and len(cp.stderr) < 200, cp.stderr
    # A member offline for a duplicate MAC: "not offline" was wrong.
    lab.set_member_mac(1, lab.member_mac(0))
    d.wait_status(lambda s: "offline" == d.member("m1", s)["state"], MOVE_TIMEOUT, "m1 offline (dup MAC)")
    expect(ipmpctl("online", "m1"), EXIT_REFUSED, "duplicates another member's", "comes back by itself")


@pytest.fixture
def state_tmpfs(lab):
    """A small tmpfs for mpathd's state directory, mounted before mpathd starts (it
    runs in a mount namespace of its own) and unmounted after the test."""
    workdir = lab.tmp / "mpathd-tmpfs"
    state = workdir / "state"
    state.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "mpathd-test", str(state)], check=True)
    try:
        yield workdir
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def test_offline_with_a_full_or_read_only_state_dir_says_so(lab, bus, need_mpathd, need_ipmpctl,
                                                            state_tmpfs):
    from lab.lab import group_config
    from mpathd_helpers import EXAMPLE_MEMBERS, START_TIMEOUT
    d = lab.start_mpathd(group_config(EXAMPLE_MEMBERS), timeout=START_TIMEOUT, workdir=state_tmpfs)
    wait_until(lambda: ipmpctl("show", "groups").returncode == 0, START_TIMEOUT, "mpathd on the bus")
    state = d.state_dir
    assert (state / "state.json").exists()
    # Full: fill the tmpfs.
    filler = state / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    cp = ipmpctl("offline", "m0")
    expect(cp, EXIT_FAILURE, "offline m0: done, but state not saved", "No space left on device",
           "lost when mpathd restarts")
    d.wait_status(lambda s: d.member("m0", s)["state"] == "offline", MOVE_TIMEOUT, "m0 offline")
    assert offline_marks(state) == set(), "the mark could not be saved"
    filler.unlink()
    expect_ok = ipmpctl("online", "m0")
    assert expect_ok.returncode == EXIT_OK, expect_ok.stderr
    # Read-only.
    subprocess.run(["mount", "-o", "remount,ro", str(state)], check=True)
    try:
        cp = ipmpctl("offline", "m1")
        expect(cp, EXIT_FAILURE, "offline m1: done, but state not saved", "Read-only file system")
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(state)], check=False)
    # Writable again: the next change is saved, and the answer is plain success.
    cp = ipmpctl("online", "m1")
    assert cp.returncode == EXIT_OK, cp.stderr
    assert offline_marks(state) == set()
    cp = ipmpctl("offline", "m1")
    assert cp.returncode == EXIT_OK, cp.stderr
    assert offline_marks(state) == {"m1"}
    assert d.running()


def offline_marks(state_dir) -> set[str]:
    """The members state.json keeps offline."""
    saved = json.loads((state_dir / "state.json").read_text())
    return {m["name"] for g in saved["state"] for m in g["members"] if m["offline"]}
