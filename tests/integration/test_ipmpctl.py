"""ipmpctl against the real mpathd on a private system bus, in the lab's namespaces.

Each test starts its own dbus-daemon (a system-bus configuration that includes
units/org.ipmp.Mpathd1.conf) and points DBUS_SYSTEM_BUS_ADDRESS at it for mpathd and
ipmpctl. Views must show what the lab has; refusals and bad input give their message
and exit code and change nothing; a non-root caller can read but not change; `wait`
returns on a state change (by signals) and times out with 7; `monitor` sees a link
failure in order.

Binaries: $IPMPCTL_BIN (default build/ipmpctl/ipmpctl), $MPATHD_BIN, as the lab.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time

from pathlib import Path

import pytest

from lab.bus import Bus, Lines
from lab.lab import AddressMonitor, binary, wait_until
from mpathd_helpers import DATA, MOVE_TIMEOUT, START_TIMEOUT, idx, start_group

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_REFUSED = 0, 1, 2, 3, 4
EXIT_UNREACHABLE, EXIT_DENIED, EXIT_TIMEOUT = 5, 6, 7

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

GROUP_KEYS = {"name", "group_interface", "state", "reason", "failure_detection_time",
              "failback", "members", "data_addresses", "shared_addresses"}
INTERFACE_KEYS = {"name", "index", "group", "state", "active", "flags", "standby", "link",
                  "probe", "reason", "last_change_usec", "hardware_address", "link_flags",
                  "test_addresses", "target_mode", "targets", "counters"}
ADDRESS_KEYS = {"address", "state", "group", "group_interface", "inbound", "home", "outbound"}
TARGET_KEYS = {"name", "target_mode", "test_addresses", "targets"}


def ipmpctl_bin() -> str:
    return binary("IPMPCTL_BIN", "build/ipmpctl/ipmpctl")


# ---------------------------------------------------------------- the private bus

@pytest.fixture
def bus(monkeypatch):
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon not installed")
    b = Bus()
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", b.address)  # mpathd and ipmpctl inherit it
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def need_ipmpctl():
    if not os.access(ipmpctl_bin(), os.X_OK):
        pytest.fail(f"ipmpctl not found at {ipmpctl_bin()}; build it or set IPMPCTL_BIN")


# ---------------------------------------------------------------- helpers

def ipmpctl(*args: str, as_nobody: bool = False, timeout: float = 30) -> subprocess.CompletedProcess:
    cmd = (NOBODY if as_nobody else []) + [ipmpctl_bin(), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def ok(*args: str) -> str:
    cp = ipmpctl(*args)
    assert cp.returncode == 0, f"ipmpctl {' '.join(args)}: rc {cp.returncode}\n{cp.stderr}"
    return cp.stdout


def show_json(view: str):
    return json.loads(ok("show", view, "-o", "json"))


def unescape(v: str) -> str:
    out, esc = [], False
    for c in v:
        if esc:
            out.append(c)
            esc = False
        elif c == "\\":
            esc = True
        else:
            out.append(c)
    return "".join(out)


def split_parsable(line: str) -> list[str]:
    """Splits a -P line at unescaped ':' and unescapes the fields."""
    fields, cur, esc = [], "", False
    for c in line:
        if esc:
            cur += "\\" + c
            esc = False
        elif c == "\\":
            esc = True
        elif c == ":":
            fields.append(unescape(cur))
            cur = ""
        else:
            cur += c
    fields.append(unescape(cur))
    return fields


def start(lab, members=None):
    """mpathd with the example group, on the bus; returns the Daemon."""
    d = start_group(lab, members) if members is not None else start_group(lab)
    wait_until(lambda: ipmpctl("show", "groups").returncode == 0, START_TIMEOUT,
               "mpathd to answer on the bus")
    return d


def world(lab, d) -> dict:
    """What must not change when a command is refused: member states and flags, and
    where each data address is in the kernel."""
    s = d.status()
    members = {m["name"]: (m["state"], m["active"], tuple(sorted(m["flags"])))
               for g in s["groups"] for m in g["members"]}
    return {"members": members, "holders": {a: lab.holders(a) for a in DATA.values()}}


def expect(cp: subprocess.CompletedProcess, code: int, *words: str) -> None:
    assert cp.returncode == code, f"rc {cp.returncode} != {code}\nstdout: {cp.stdout}\nstderr: {cp.stderr}"
    assert cp.stderr.startswith("ipmpctl: "), cp.stderr
    for w in words:
        assert w in cp.stderr, f"{w!r} not in {cp.stderr!r}"


# ---------------------------------------------------------------- views

def test_views_show_the_lab(lab, bus, need_mpathd, need_ipmpctl):
    d = start(lab)
    s = d.status()
    g = d.group("g0", s)

    groups = show_json("groups")
    assert [x["name"] for x in groups] == ["g0"]
    j = groups[0]
    assert set(j) >= GROUP_KEYS, set(j)
    assert j["group_interface"] == "ipmp0"
    assert j["state"] == g["state"] == "ok"
    assert j["members"] == [m["name"] for m in g["members"]] == ["m0", "m1", "m2"]
    assert {a["address"]: a["inbound"] for a in j["data_addresses"]} == \
        {a["address"]: a["holder"] for a in g["addresses"]}
    for a in j["data_addresses"]:
        assert lab.holders(a["address"]) == [a["inbound"]]

    interfaces = show_json("interfaces")
    assert all(set(i) >= INTERFACE_KEYS for i in interfaces), interfaces
    by_name = {i["name"]: i for i in interfaces}
    for m in g["members"]:
        i = by_name[m["name"]]
        assert (i["state"], i["active"], i["group"], i["link"]) == \
            (m["state"], m["active"], "g0", m["link"]), (i, m)
        assert i["index"] == m["ifindex"]
        assert i["hardware_address"] == lab.member_mac(idx(m["name"]))
    assert by_name["m2"]["standby"] is True

    addresses = show_json("addresses")
    assert all(set(a) >= ADDRESS_KEYS for a in addresses), addresses
    targets = show_json("targets")
    assert all(set(t) >= TARGET_KEYS for t in targets), targets

    # The human tables: ipmpstat's header and columns.
    active = [m["name"] for m in g["members"] if m["active"]]
    inactive = [m["name"] for m in g["members"]
                if not m["active"] and m["state"] not in ("failed", "offline")]
    column = " ".join(active) + (f" ({' '.join(inactive)})" if inactive else "")
    assert column == "m0 m1 (m2)"
    lines = ok("show", "groups").splitlines()
    assert lines[0] == "GROUP       GROUPNAME   STATE     FDT       INTERFACES"
    assert lines[1].startswith("ipmp0       g0          ok        ")
    assert lines[1].endswith(column)

    lines = ok("show", "interfaces").splitlines()
    assert lines[0] == "INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE"
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    assert rows["m0"][1:3] == ["yes", "ipmp0"] and rows["m0"][4] == "up"
    assert rows["m2"][1] == "no" and rows["m2"][3].startswith("is")  # inactive standby

    lines = ok("show", "addresses").splitlines()
    assert lines[0].split() == ["ADDRESS", "STATE", "GROUP", "INBOUND", "OUTBOUND"]
    lines = ok("show", "targets").splitlines()
    assert lines[0].split() == ["INTERFACE", "MODE", "TESTADDR", "TARGETS"]
    assert {ln.split()[0] for ln in lines[1:]} >= {"m0", "m1", "m2"}

    # Parsable: escaped ':' in IPv6 addresses when more than one field.
    out = ok("show", "addresses", "-P", "-o", "address,state,inbound")
    parsed = {f[0]: f[1:] for f in map(split_parsable, out.splitlines())}
    for addr in DATA.values():
        assert parsed[addr] == ["up", lab.holder_of(addr)], parsed
    assert "2001\\:db8\\:1\\:\\:10" in out
    out = ok("show", "groups", "-P", "-o", "GROUPNAME,interfaces")
    assert out == f"g0:{column}\n"
    out = ok("show", "addresses", "-P", "-o", "address")
    assert DATA["ipv6"] + "\n" in out  # one field: not escaped

    # -P needs an explicit field list.
    expect(ipmpctl("show", "groups", "-P"), EXIT_USAGE, "-P requires")


# ---------------------------------------------------------------- wait

def test_wait_reaches_state_or_times_out(lab, bus, need_mpathd, need_ipmpctl):
    d = start(lab)
    assert ipmpctl("wait", "interface", "m0", "ok", "--timeout", "5").returncode == EXIT_OK
    assert ipmpctl("wait", "group", "g0", "ok").returncode == EXIT_OK

    t0 = time.monotonic()
    cp = ipmpctl("wait", "interface", "m1", "failed", "--timeout", "1")
    expect(cp, EXIT_TIMEOUT, "m1", "failed")
    assert 0.9 <= time.monotonic() - t0 < 10

    expect(ipmpctl("wait", "interface", "m9", "ok", "--timeout", "1"), EXIT_NOT_FOUND, "m9")
    expect(ipmpctl("wait", "group", "g0", "offline"), EXIT_USAGE, "offline")

    holder = lab.holder_of(DATA["ipv4"])
    procs = []
    try:
        w_if = subprocess.Popen([ipmpctl_bin(), "wait", "interface", holder, "failed",
                                 "--timeout", "20"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        procs.append(w_if)
        w_g = subprocess.Popen([ipmpctl_bin(), "-o", "json", "wait", "group", "g0", "degraded",
                                "--timeout", "20"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        procs.append(w_g)
        lab.link_down(idx(holder))
        out, err = w_if.communicate(timeout=25)
        assert w_if.returncode == EXIT_OK, err
        out, err = w_g.communicate(timeout=25)
        assert w_g.returncode == EXIT_OK, err
        j = json.loads(out)
        assert j["ok"] is True and j["state"] == "degraded" and j["name"] == "g0"
        d.wait_status(lambda s: d.member(holder, s)["state"] == "failed", MOVE_TIMEOUT,
                      f"{holder} failed in status.json")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=5)


# ---------------------------------------------------------------- refusals

@pytest.mark.members(2)
def test_refusals_change_nothing(lab, bus, need_mpathd, need_ipmpctl):
    d = start(lab, members=["m0", "m1"])
    before = world(lab, d)

    cases = [
        (("offline", "m9"), EXIT_NOT_FOUND, ["m9"]),
        (("online", "m9"), EXIT_NOT_FOUND, ["m9"]),
        (("online", "m1"), EXIT_REFUSED, ["m1", "not offline"]),
        (("address", "add", "g0", "198.18.1.300/24"), EXIT_USAGE, ["198.18.1.300"]),
        (("address", "add", "g0", "198.18.1.50"), EXIT_USAGE, ["198.18.1.50"]),
        (("address", "add", "g9", "198.18.1.50/24"), EXIT_NOT_FOUND, ["g9"]),
        (("address", "remove", "g0", "198.18.1.99"), EXIT_NOT_FOUND, ["198.18.1.99"]),
        (("move", "198.18.1.999", "m1"), EXIT_USAGE, ["198.18.1.999"]),
        (("move", DATA["ipv4"], "m9"), EXIT_NOT_FOUND, ["m9"]),
        (("group", "destroy", "g9"), EXIT_NOT_FOUND, ["g9"]),
        (("group", "create", "g0"), EXIT_REFUSED, ["g0"]),
        (("group", "create", "bad name"), EXIT_USAGE, ["bad name"]),
        (("frobnicate",), EXIT_USAGE, ["frobnicate"]),
    ]
    for args, code, words in cases:
        expect(ipmpctl(*args), code, *words)
        assert world(lab, d) == before, f"ipmpctl {' '.join(args)} changed something"

    # Offline one member: allowed. Then the last usable one: refused, nothing changes.
    ok("offline", "m0")
    d.wait_status(lambda s: d.member("m0", s)["state"] == "offline", MOVE_TIMEOUT, "m0 offline")
    wait_until(lambda: all(lab.holders(a) == ["m1"] for a in DATA.values()), MOVE_TIMEOUT,
               "addresses on m1")
    before = world(lab, d)
    expect(ipmpctl("offline", "m1"), EXIT_REFUSED,
           "cannot offline m1: no other functioning interface is in group g0")
    expect(ipmpctl("offline", "m0"), EXIT_REFUSED, "m0", "already offline")
    cp = ipmpctl("-o", "json", "offline", "m1")
    assert cp.returncode == EXIT_REFUSED
    j = json.loads(cp.stdout)
    assert j["ok"] is False and j["error"] == "last-usable-member"
    assert j["dbus_error"] == "org.ipmp.Mpathd1.Error.LastUsableMember"
    assert world(lab, d) == before

    ok("online", "m0")
    d.wait_status(lambda s: d.member("m0", s)["state"] == "ok", MOVE_TIMEOUT, "m0 back")


@pytest.mark.members(2)
def test_non_root_reads_but_cannot_change(lab, bus, need_mpathd, need_ipmpctl):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not installed")
    d = start(lab, members=["m0", "m1"])
    before = world(lab, d)
    cp = ipmpctl("show", "groups", as_nobody=True)
    assert cp.returncode == EXIT_OK, cp.stderr
    assert "g0" in cp.stdout
    cp = ipmpctl("show", "interfaces", "-o", "json", as_nobody=True)
    assert cp.returncode == EXIT_OK, cp.stderr
    expect(ipmpctl("offline", "m0", as_nobody=True), EXIT_DENIED, "m0", "permission denied")
    expect(ipmpctl("reload", as_nobody=True), EXIT_DENIED)
    assert world(lab, d) == before


@pytest.mark.members(2)
def test_non_root_with_cap_net_admin_cannot_change(lab, bus, need_mpathd, need_ipmpctl):
    """Changes need root (uid 0), as mpathd(8), ipmpctl(8) and docs/dbus-api.md say:
    CAP_NET_ADMIN without root is refused like any other user."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not installed")
    d = start(lab, members=["m0", "m1"])
    before = world(lab, d)
    cap = NOBODY + ["--inh-caps=+net_admin", "--ambient-caps=+net_admin"]
    probe = subprocess.run(cap + ["grep", "^CapEff", "/proc/self/status"], capture_output=True,
                           text=True, timeout=10)
    assert probe.returncode == 0, probe.stderr
    assert int(probe.stdout.split()[1], 16) & (1 << 12), f"CAP_NET_ADMIN not effective: {probe.stdout}"
    cp = subprocess.run(cap + [ipmpctl_bin(), "-o", "json", "offline", "m0"], capture_output=True,
                        text=True, timeout=30)
    assert cp.returncode == EXIT_DENIED, (cp.stdout, cp.stderr)
    j = json.loads(cp.stdout)
    assert j["ok"] is False and j["dbus_error"] == "org.freedesktop.DBus.Error.AccessDenied", j
    cp = subprocess.run(cap + [ipmpctl_bin(), "reload"], capture_output=True, text=True, timeout=30)
    assert cp.returncode == EXIT_DENIED, (cp.stdout, cp.stderr)
    assert "changes need root" in cp.stderr, cp.stderr
    assert world(lab, d) == before


def test_daemon_unreachable(bus, need_ipmpctl):
    expect(ipmpctl("show", "groups"), EXIT_UNREACHABLE, "cannot contact mpathd")
    expect(ipmpctl("offline", "m0"), EXIT_UNREACHABLE)


# ---------------------------------------------------------------- monitor

def test_monitor_sees_link_failure_in_order(lab, bus, need_mpathd, need_ipmpctl):
    d = start(lab)
    holder = lab.holder_of(DATA["ipv4"])
    mon = subprocess.Popen([ipmpctl_bin(), "monitor", "-o", "json"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        err = Lines(mon.stderr)
        ready = err.next_line(10)
        assert ready and "Monitoring" in ready, ready
        lab.link_down(idx(holder))

        out = Lines(mon.stdout)
        events = []
        deadline = time.monotonic() + 15

        def seen():
            i = next((k for k, e in enumerate(events)
                      if e["event"] == "interface_state_changed" and e["interface"] == holder
                      and e["new_state"] == "failed"), None)
            a = next((k for k, e in enumerate(events)
                      if e["event"] == "address_moved" and e["from_interface"] == holder), None)
            g = next((k for k, e in enumerate(events)
                      if e["event"] == "group_state_changed" and e["group"] == "g0"
                      and e["new_state"] == "degraded"), None)
            return i, a, g

        while None in seen() and time.monotonic() < deadline:
            line = out.next_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                break
            events.append(json.loads(line))
        i, a, g = seen()
        assert None not in (i, a, g), events
        assert i < a < g, events
        assert events[i]["reason"] == "link-down", events[i]
        assert "FAILED" in events[i]["new_flags"]
        assert events[a]["to_interface"] != holder
        assert all("time_usec" in e for e in events)
        d.wait_status(lambda s: d.group("g0", s)["state"] == "degraded", MOVE_TIMEOUT, "degraded")
    finally:
        if mon.poll() is None:
            mon.send_signal(signal.SIGINT)
            try:
                mon.wait(timeout=5)
            except subprocess.TimeoutExpired:
                mon.kill()
                mon.wait(timeout=5)
    assert mon.returncode == EXIT_OK


# ---------------------------------------------------------------- admin verbs

def test_group_and_address_verbs(lab, bus, need_mpathd, need_ipmpctl):
    d = start(lab)
    extra = "198.18.1.11"

    ok("address", "add", "g0", f"{extra}/24")
    wait_until(lambda: len(lab.holders(extra)) == 1, MOVE_TIMEOUT, f"{extra} placed")
    rows = {a["address"]: a for a in show_json("addresses")}
    assert rows[f"{extra}/24"]["inbound"] == lab.holder_of(extra)
    expect(ipmpctl("address", "add", "g0", f"{extra}/24"), EXIT_REFUSED, extra)
    ok("address", "remove", "g0", extra)
    wait_until(lambda: lab.holders(extra) == [], MOVE_TIMEOUT, f"{extra} removed")
    assert f"{extra}/24" not in {a["address"] for a in show_json("addresses")}

    out = json.loads(ok("-o", "json", "group", "create", "g1", "--interface", "ipmp1"))
    assert out["ok"] is True and out["path"] == "/org/ipmp/Mpathd1/group/g1"
    assert {g["name"]: g["group_interface"] for g in show_json("groups")}["g1"] == "ipmp1"
    expect(ipmpctl("group", "add", "g1", "m0"), EXIT_REFUSED, "m0")  # already in g0
    ok("group", "destroy", "g1")
    assert [g["name"] for g in show_json("groups")] == ["g0"]

    # move: to the standby (not active) is refused; to the other active member works.
    addr = DATA["ipv4"]
    holder = lab.holder_of(addr)
    other = "m1" if holder == "m0" else "m0"
    expect(ipmpctl("move", addr, "m2"), EXIT_REFUSED, addr, "m2")
    ok("move", addr, other)
    wait_until(lambda: lab.holders(addr) == [other], MOVE_TIMEOUT, f"{addr} on {other}")
    assert d.address(addr)["holder"] == other


# ---------------------------------------------------------------- probes and restarts

def test_probes_streams_results(lab, bus, need_mpathd, need_ipmpctl):
    """`ipmpctl probes` prints one line per acked probe of the live daemon (ARP probing
    of the router at the lab's FDT of 1 s: ~7 probes a second per member)."""
    start(lab)  # waits until mpathd answers on the bus
    cp = ipmpctl("probes", "--count", "6", "-o", "json", timeout=30)
    assert cp.returncode == EXIT_OK, cp.stderr
    rows = [json.loads(l) for l in cp.stdout.splitlines() if l.strip()]
    assert len(rows) == 6, cp.stdout
    assert all(r["target"] == "198.18.1.1" for r in rows), rows
    assert any(r["acked"] for r in rows), rows
    targets = show_json("targets")
    assert any(t["target_mode"] == "routes" and t["targets"] for t in targets), targets


def test_runtime_changes_survive_kill9(lab, bus, need_mpathd, need_ipmpctl):
    """Changes made with ipmpctl are on disk before they are acted on: after SIGKILL and
    a restart on the same state directory, an offlined member is still offline and a
    group created at runtime is still there, and nothing was re-added."""
    d = start(lab, members=["m0", "m1"])  # waits until mpathd answers on the bus
    ok("offline", "m1")
    ok("group", "create", "g1", "--interface", "ipmp1")
    ok("group", "add", "g1", "m2")
    ok("address", "add", "g1", "198.18.1.20/24")
    wait_until(lambda: lab.holders("198.18.1.20") == ["m2"], MOVE_TIMEOUT, "198.18.1.20 on m2")
    d.proc_kill()
    mon = AddressMonitor(lab)
    d2 = lab.start_mpathd(d.config_path.read_text(), workdir=d.workdir)
    s = d2.wait_status(lambda s: len(s["groups"]) == 2, START_TIMEOUT, "both groups after the restart")
    assert d2.member("m1", s)["state"] == "offline"
    assert d2.group("g1", s)["interface"] == "ipmp1"
    assert lab.holders("198.18.1.20") == ["m2"]
    assert lab.holders(DATA["ipv4"]) == ["m0"]
    mon.settle()
    mon.stop()
    assert mon.events("198.18.1.", "2001:db8:1::") == [], "a restart removed or re-added an address"



# ---------------------------------------------------------------- kernel flags

def test_flags_show_the_kernels_interface_flags(lab, bus, need_mpathd, need_ipmpctl):
    """FLAGS positions m b M d come from the kernel's interface flags (LinkFlags):
    the lab's veths are UP BROADCAST MULTICAST; `ip link set m1 down` shows d."""
    start(lab, members=["m0", "m1"])

    def flags():
        return dict(split_parsable(line) for line in
                    ok("show", "interfaces", "-P", "-o", "interface,flags").splitlines())
    assert flags()["m0"] == "--mbM--", flags()
    by_name = {i["name"]: i for i in show_json("interfaces")}
    assert by_name["m0"]["link_flags"] == ["UP", "BROADCAST", "RUNNING", "MULTICAST", "LOWER_UP"]

    lab.sh(lab.host, "ip", "link", "set", "m1", "down")
    wait_until(lambda: flags()["m1"] == "--mbMd-", MOVE_TIMEOUT, "m1 shown down")
    lab.sh(lab.host, "ip", "link", "set", "m1", "multicast", "off")
    wait_until(lambda: flags()["m1"] == "---b-d-", MOVE_TIMEOUT, "m1 without multicast")
    lab.sh(lab.host, "ip", "link", "set", "m1", "multicast", "on", "up")
    wait_until(lambda: flags()["m1"] == "--mbM--", MOVE_TIMEOUT, "m1 back up")


# ---------------------------------------------------------------- bash completion

COMPLETION = Path(__file__).resolve().parents[2] / "ipmpctl" / "completion" / "ipmpctl.bash"


def complete(*words: str) -> list[str]:
    """Runs the bash completion function on the command line `ipmpctl WORDS...`, the
    last word being completed, as bash would (COMP_WORDS, COMP_CWORD); returns COMPREPLY
    sorted. The function must print nothing."""
    line = " ".join(shlex.quote(w) for w in (ipmpctl_bin(), *words))
    script = (f"source {shlex.quote(str(COMPLETION))}\n"
              f"COMP_WORDS=({line}); COMP_CWORD={len(words)}\n"
              "_ipmpctl\n"
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    cp = subprocess.run(["bash", "--norc", "--noprofile", "-c", script],
                        capture_output=True, text=True, timeout=30)
    assert cp.returncode == 0 and cp.stderr == "", cp
    return sorted(w for w in cp.stdout.splitlines() if w)


def help_verbs(*verb: str) -> list[str]:
    """The subcommands `ipmpctl VERB --help` lists."""
    text = ok(*verb, "--help")
    section = text.split("Subcommands:\n", 1)[1].split("\n\n", 1)[0] if "Subcommands:" in text else ""
    return sorted(m.group(1) for m in re.finditer(r"^  (\S+)", section, re.M))


def test_completion_static(bus, need_ipmpctl):
    """Verbs and options complete from the script's lists, which match ipmpctl --help;
    with no daemon on the bus, names complete to nothing and nothing is printed."""
    assert complete("") == help_verbs()
    assert complete("sh") == ["shared", "show"]
    assert complete("show", "") == help_verbs("show") == ["addresses", "associations", "groups", "interfaces",
                                                          "registry", "shared", "targets"]
    assert complete("shared", "") == help_verbs("shared") == ["import", "release", "takeover"]
    assert complete("group", "") == help_verbs("group")
    assert complete("address", "") == help_verbs("address")
    assert complete("-o", "js") == ["json"]
    assert complete("show", "interfaces", "-o", "fl") == ["flags"]
    assert "--header-every" in complete("probes", "--")
    assert set(complete("probes", "--")) >= {"--count", "--output", "--parsable", "--help"}
    assert complete("monitor", "--p") == ["--parsable", "--probes"]
    assert complete("group", "add", "g0", "m0", "--s") == ["--standby"]
    assert complete("wait", "") == ["group", "interface"]
    assert complete("wait", "group", "g0", "") == ["degraded", "failed", "ok"]
    assert complete("wait", "interface", "m0", "o") == ["offline", "ok"]
    assert complete("wait", "--timeout", "") == []
    # Every option of the script exists: ipmpctl accepts it where it is offered.
    for verb in ("probes", "monitor", "wait"):
        for opt in complete(verb, "--"):
            assert opt in ok(verb, "--help") or opt in ok("--help"), (verb, opt)
    # No daemon: names complete to nothing, quietly (complete() checks stderr).
    assert complete("offline", "") == []
    assert complete("wait", "group", "") == []


def test_completion_live_names(lab, bus, need_mpathd, need_ipmpctl):
    """Group, interface and address names come from the running daemon."""
    start(lab)
    assert complete("offline", "") == ["m0", "m1", "m2"]
    assert complete("online", "m") == ["m0", "m1", "m2"]
    assert complete("wait", "interface", "m2") == ["m2"]
    assert complete("wait", "group", "") == ["g0"]
    assert complete("group", "destroy", "") == ["g0"]
    assert complete("group", "add", "g0", "") == ["m0", "m1", "m2"]
    assert complete("address", "remove", "g0", "") == sorted(DATA.values())
    assert complete("move", "198") == [DATA["ipv4"]]
    assert complete("move", DATA["ipv4"], "") == ["m0", "m1", "m2"]
    assert complete("-o", "json", "offline", "m1") == ["m1"]  # options before the verb
