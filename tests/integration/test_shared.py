"""Shared addresses end to end (issue 10): two cluster nodes A and B (host namespaces,
3 members each, on the same switch), the lab's router and client; a real mpathd on
each node with its own private system bus, real ipmpctl, real sockets.

    A takes the shared address over -> the client reaches it, opens a TCP connection
    and UDP flows; a member failure on A moves the address inside A and the TCP
    connection survives; A's associations are exported (ipmpctl show associations
    -o json); A's whole group fails -> A releases by itself (its server sockets see
    ECONNABORTED, the address is gone); B imports A's associations and takes over ->
    the client's idle TCP connection gets ECONNRESET at once (tickle ACK).

The module runs twice, once per registry level: eBPF (each node's programs attached to
a cgroup this test made, where its servers run) and the sock_diag fallback
(association-ebpf = false). The lab is built once per level (module-scoped fixture).
Both daemons run with exactly the capability bounding set of units/mpathd.service.in
(CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF). Bad input is refused with its exit code and
changes nothing; a restart of mpathd on the holding node changes nothing (the address
is adopted, not touched, and a client's connection lives on).

Binaries: $MPATHD_BIN, $IPMPCTL_BIN (default build/... under the repo root).
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest

from lab.bus import Bus
from lab.echo import Client as EchoClient
from lab.echo import Events, server_argv
from lab.lab import (CGROUP2_IN_NS, CLIENT4, CLIENT6, Lab, Proc, binary, cgroup2_mount, group_config, remove_cgroup,
                     require_daemon_lab, wait_until)

SHARED4 = "198.18.1.50"
SHARED6 = "2001:db8:1::50"
TCP_PORT = 5080
UDP_PORT = 5081
EXIT_OK, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_REFUSED = 0, 2, 3, 4
START_TIMEOUT = 20.0
# The capability bounding set of units/mpathd.service.in.
UNIT_CAPS = "+net_admin,+net_raw,+bpf"
RESET_BOUND = 3.0  # s from `ipmpctl shared takeover` to the client's ECONNRESET (bench: ms)

def ipmpctl_bin() -> str:
    return binary("IPMPCTL_BIN", "build/ipmpctl/ipmpctl")


class Node:
    """One cluster node: a host namespace, its mpathd, bus, cgroup and server."""

    def __init__(self, world: "World", name: str, ns: str, data: str):
        self.world, self.name, self.ns, self.data = world, name, ns, data
        self.bus = Bus()
        self.env = {"DBUS_SYSTEM_BUS_ADDRESS": self.bus.address}
        # `ip netns exec` gives its command a fresh /sys without the cgroup2 mount, so
        # mpathd and the server mount the cgroup2 hierarchy again at /sys/fs/cgroup in
        # that private mount namespace (CGROUP2_IN_NS) and see the test's cgroup there.
        self.cgroup = ""
        self.cgroup_in_ns = ""
        root = cgroup2_mount()
        if world.ebpf and root:
            leaf = f"mpathd-test-{world.lab.prefix}-{name}"
            self.cgroup = f"{root}/{leaf}"
            self.cgroup_in_ns = f"/sys/fs/cgroup/{leaf}"
            os.mkdir(self.cgroup)
        self.daemon = None
        self.server_events = {a: Events(world.lab.tmp / f"server-{name}-{a}.jsonl") for a in (SHARED4, SHARED6)}

    def config(self) -> str:
        extra = [f'association-cgroup = "{self.cgroup_in_ns}"' if self.cgroup else "",
                 "association-ebpf = false" if not self.world.ebpf else ""]
        return group_config(["m0", "m1", "m2"], data_addresses=(f"{self.data}/24",),
                            extra_global="\n".join(e for e in extra if e),
                            extra_group=f'shared-addresses = ["{SHARED4}/24", "{SHARED6}/64"]')

    def start(self, workdir: Path | None = None) -> None:
        # Exactly the capabilities the units grant (units/mpathd.service.in): the whole
        # scenario must work with them alone.
        caps = ["setpriv", f"--bounding-set=-all,{UNIT_CAPS}", f"--inh-caps=-all"]
        wrap = (["sh", "-c", f'{CGROUP2_IN_NS} && exec "$@"', "sh"] if self.cgroup else []) + caps
        self.daemon = self.world.lab.start_mpathd(self.config(), ns=self.ns, env=self.env, wrap=wrap,
                                                  timeout=START_TIMEOUT, workdir=workdir)
        self.daemon.wait_status(lambda s: all(a.get("holder") for a in s["groups"][0]["addresses"]),
                                START_TIMEOUT, f"{self.name}: data address placed")

    def restart(self) -> None:
        assert self.daemon.stop() == 0
        self.start(workdir=self.daemon.workdir)

    def start_servers(self) -> None:
        """A server on each shared address (IPv4, IPv6)."""
        # Joins the node's cgroup (where the eBPF programs watch) before it runs.
        join = f"{CGROUP2_IN_NS} && echo $$ > {self.cgroup_in_ns}/cgroup.procs && " if self.cgroup else ""
        for addr, events in self.server_events.items():
            argv = " ".join(server_argv(self.world.lab, self.name, addr, TCP_PORT, UDP_PORT, events))
            self.world.lab.spawn(self.ns, "sh", "-c", f"{join}exec {argv}", name=f"server-{self.name}-{addr}")
            wait_until(lambda e=events: e.of("listening"), 10, f"{self.name}: server on {addr} listening")

    def ctl(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([ipmpctl_bin(), *args], capture_output=True, text=True, timeout=30,
                              env={**os.environ, **self.env}, input=input)

    def ok(self, *args: str) -> str:
        cp = self.ctl(*args)
        assert cp.returncode == EXIT_OK, f"{self.name}: ipmpctl {' '.join(args)}: rc {cp.returncode}\n{cp.stderr}"
        return cp.stdout

    def shared(self, addr: str = SHARED4) -> dict:
        for a in self.daemon.status()["groups"][0]["shared"]:
            if a["address"].split("/")[0] == addr:
                return a
        raise KeyError(addr)

    def holders(self, addr: str = SHARED4) -> list[str]:
        return self.world.lab.holders(addr, ns=self.ns)

    def associations(self, addr: str = SHARED4) -> list[dict]:
        return json.loads(self.ok("-o", "json", "show", "associations", addr))

    def ports_down(self) -> None:
        for i in range(3):
            self.world.lab.sh(self.world.lab.sw, "ip", "link", "set", f"{self.world.ports}{i}"
                              if self.name == "A" else f"q{i}", "down")

    def port(self, member: str) -> str:
        i = int(member.removeprefix("m"))
        return f"p{i}" if self.name == "A" else f"q{i}"

    def close(self) -> None:
        self.bus.close()
        if self.cgroup:
            # Its processes were stopped with the lab; the programs went with mpathd.
            remove_cgroup(self.cgroup)


class Client(EchoClient):
    """The echo client to addr: two UDP sockets, the run ends with the TCP connection."""

    def __init__(self, world: "World", addr: str = SHARED4):
        super().__init__(world.lab, addr, TCP_PORT, UDP_PORT, udp_sockets=2, server=world.a.server_events[addr])


class World:
    def __init__(self, lab: Lab, ebpf: bool):
        self.lab, self.ebpf = lab, ebpf
        self.ports = "p"
        b_ns = lab.add_host("b")
        self.a = Node(self, "A", lab.host, "198.18.1.10")
        self.b = Node(self, "B", b_ns, "198.18.1.20")

    def close(self) -> None:
        for n in (self.a, self.b):
            n.close()


@pytest.fixture(scope="module", params=["ebpf", "sock-diag"])
def world(request):
    require_daemon_lab(("mpathd", binary("MPATHD_BIN", "build/mpathd/mpathd")), ("ipmpctl", ipmpctl_bin()))
    ebpf = request.param == "ebpf"
    if ebpf and cgroup2_mount() is None:
        pytest.skip("no cgroup2 mount for the eBPF level")
    w = None
    try:
        with Lab(members=3) as lab:
            w = World(lab, ebpf)
            for n in (w.a, w.b):
                n.start()
                n.start_servers()
            yield w
    finally:
        if w is not None:
            w.close()


def level_of(node: Node) -> dict:
    return node.daemon.status()["registry"]


# ---------------------------------------------------------------- the tests

def test_mpathd_runs_with_the_units_capabilities_only(world):
    want = (1 << 12) | (1 << 13) | (1 << 39)  # CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF
    for n in (world.a, world.b):
        status = Path(f"/proc/{n.daemon.pid}/status").read_text()
        caps = {k: int(v, 16) for k, v in (l.split(":\t") for l in status.splitlines() if l.startswith("Cap"))}
        assert caps["CapEff"] == want and caps["CapBnd"] == want, caps


def test_registry_level_is_reported(world):
    for n in (world.a, world.b):
        reg = level_of(n)
        if world.ebpf:
            if "built without" in reg["reason"]:
                pytest.skip(reg["reason"])
            assert reg == {"level": "ebpf", "reason": ""}, reg
        else:
            assert reg == {"level": "sock-diag", "reason": "eBPF disabled by configuration"}, reg
        shown = n.ok("-P", "-o", "level,reason", "show", "registry").strip()
        assert shown.split(":")[0] == reg["level"]
        shown = json.loads(n.ok("-o", "json", "show", "registry"))
        assert shown["registry_level"] == reg["level"]
        # No Corosync in this lab: replication is off and ipmpctl says why.
        assert shown["replication"] == "off" and shown["replication_reason"], shown
        assert n.ok("-P", "-o", "replication", "show", "registry").strip() == "off"
    print(f"registry level in force: {level_of(world.a)['level']}")


def test_bad_input_changes_nothing(world):
    a = world.a
    before = a.daemon.status()["groups"][0]["shared"]
    cases = [
        (("shared", "takeover", "198.18.1.10"), EXIT_NOT_FOUND, "not a shared address"),  # a data address
        (("shared", "takeover", "198.18.9.99"), EXIT_NOT_FOUND, "not a shared address"),
        (("shared", "takeover", "not-an-address"), EXIT_USAGE, "invalid address"),
        (("shared", "release", SHARED4), EXIT_REFUSED, "not held here"),
        (("show", "associations", "198.18.9.99"), EXIT_NOT_FOUND, "not a shared address"),
    ]
    for args, code, text in cases:
        cp = a.ctl(*args)
        assert cp.returncode == code, f"{args}: rc {cp.returncode}, stderr {cp.stderr}"
        assert text in cp.stderr, f"{args}: {cp.stderr}"
    for bad, text in (('[{"proto": "tcp"', "not JSON"),
                      ('[{"proto": "sctp", "local": "198.18.1.50", "local_port": 1, "remote": "198.19.0.2",'
                       ' "remote_port": 2, "direction": "incoming"}]', "proto"),
                      ('[{"proto": "tcp", "local": "198.18.1.51", "local_port": 1, "remote": "198.19.0.2",'
                       ' "remote_port": 2, "state": "established", "direction": "incoming"}]', "198.18.1.51")):
        cp = a.ctl("shared", "import", SHARED4, "-", input=bad)
        assert cp.returncode == EXIT_USAGE, cp.stderr
        assert text in cp.stderr, cp.stderr
    assert a.associations() == []
    assert a.daemon.status()["groups"][0]["shared"] == before
    assert a.holders() == []


def test_takeover_failover_release_and_handover(world):
    lab, a, b = world.lab, world.a, world.b
    # A takes over: held on a member, reachable from the client (IPv4 and IPv6).
    a.ok("shared", "takeover", SHARED4)
    a.ok("shared", "takeover", SHARED6)
    a.daemon.wait_status(lambda s: a.shared()["state"] == a.shared(SHARED6)["state"] == "held", 5,
                         "A holds the addresses")
    holder = a.shared()["holder"]
    wait_until(lambda: a.holders() == [holder], 5, f"{SHARED4} on {holder} in A's kernel (status: {a.shared()})")
    assert b.holders() == []
    assert "nodad" in next(x["flags"] for x in lab.host_addrs(ns=a.ns) if x["address"] == SHARED6)
    wait_until(lambda: lab.client_reaches(SHARED4), 10, "client reaches the shared address on A")
    wait_until(lambda: lab.client_reaches(SHARED6), 10, "client reaches the IPv6 shared address on A")
    # Already held: refused, nothing changes.
    cp = a.ctl("shared", "takeover", SHARED4)
    assert cp.returncode == EXIT_REFUSED and "already held" in cp.stderr, cp.stderr
    assert a.shared()["holder"] == holder
    table = a.ok("-P", "-o", "address,state,holder", "show", "shared")
    assert f"{SHARED4}:held:{holder}" in table.splitlines()

    clients = {addr: Client(world, addr) for addr in (SHARED4, SHARED6)}
    for c in clients.values():
        c.ping()
        c.udp()
        c.udp()

    # The registry sees each connection and each UDP client (once, for two sockets).
    def registered(addr):
        entries = a.associations(addr)
        tcp = [e for e in entries if e["proto"] == "tcp" and e["remote_port"] == clients[addr].info["port"]]
        udp = [e for e in entries if e["proto"] == "udp"]
        return (tcp, udp) if tcp and udp else None
    for addr, client_addr in ((SHARED4, CLIENT4), (SHARED6, CLIENT6)):
        tcp, udp = wait_until(lambda: registered(addr), 5, f"A's registry of {addr} to list the client")
        assert tcp[0]["state"] == "established" and tcp[0]["direction"] == "incoming", tcp
        assert tcp[0]["remote"] == client_addr and tcp[0]["local_port"] == TCP_PORT
        assert len(udp) == 1 and udp[0]["remote"] == client_addr, udp

    # A member failure on A: the address moves inside A; the connections survive.
    lab.sh(lab.sw, "ip", "link", "set", a.port(holder), "down")
    a.daemon.wait_status(lambda s: a.shared()["holder"] not in ("", holder), 5, "the address to move inside A")
    moved_to = a.shared()["holder"]
    assert a.shared()["state"] == "held"
    wait_until(lambda: a.holders() == [moved_to], 5, "the kernel to follow")
    for c in clients.values():
        c.ping(timeout=10)
        assert not c.events.of("tcp_error")

    # Export (the hand-over API), then A's whole group fails.
    exported = {addr: a.ok("-o", "json", "show", "associations", addr) for addr in clients}
    for addr, c in clients.items():
        assert any(e["proto"] == "tcp" and e["remote_port"] == c.info["port"] for e in json.loads(exported[addr]))
    monitor_log = lab.tmp / "monitor-a.jsonl"
    with open(monitor_log, "w") as out:
        monitor = subprocess.Popen([ipmpctl_bin(), "-o", "json", "monitor"], stdout=out, stderr=subprocess.DEVNULL,
                                   env={**os.environ, **a.env})
    lab.procs.append(Proc(monitor, "ipmpctl-monitor"))
    a.ctl("show", "shared")  # a round trip: the monitor's matches are in place once it answers too
    wait_until(lambda: monitor.poll() is None and a.ctl("show", "registry").returncode == 0, 5, "monitor running")
    for m in ("m0", "m1", "m2"):
        lab.sh(lab.sw, "ip", "link", "set", a.port(m), "down")
    for addr in clients:
        a.daemon.wait_status(lambda s, x=addr: a.shared(x)["state"] == "released", 10, f"A releases {addr} by itself")
        assert a.shared(addr)["reason"] == "group-failure" and "no active member" in a.shared(addr)["detail"]
        wait_until(lambda x=addr: a.holders(x) == [], 5, f"{addr} gone from A")
        # Its server sockets on the address were destroyed: ECONNABORTED.
        wait_until(lambda x=addr: [e for e in a.server_events[x].of("tcp_error") if e["errno"] == errno.ECONNABORTED],
                   5, f"A's accepted socket on {addr} to see ECONNABORTED")
        # The listener on the address was destroyed too: a blocked accept() fails.
        listen_error = wait_until(lambda x=addr: a.server_events[x].of("listen_error"), 5,
                                  f"A's listener on {addr} to be destroyed")
        assert listen_error[0]["errno"] in (errno.ECONNABORTED, errno.EINVAL), listen_error
        assert f"release {addr}: new packets dropped" in a.daemon.log()
    for c in clients.values():
        assert not c.events.of("tcp_error")  # A could not tell the clients: its links are down
    # Each release was a D-Bus signal (ipmpctl monitor shows it).
    def released_events():
        lines = [json.loads(l) for l in monitor_log.read_text().splitlines() if l.strip()]
        ev = [e for e in lines if e.get("event") == "shared_address_changed" and e["new_state"] == "released"]
        return ev if len(ev) == 2 else None
    for e in wait_until(released_events, 5, "two shared_address_changed events"):
        assert e["reason"] == "group-failure" and e["old_state"] == "held" and e["group"] == "g0", e

    # B imports A's associations and takes over: each idle client is reset at once.
    for addr, c in clients.items():
        path = lab.tmp / f"exported-{addr}.json"
        path.write_text(exported[addr])
        out = b.ok("shared", "import", addr, str(path))
        assert "association(s) held" in out
        imported = b.associations(addr)
        assert any(e["imported"] and e["remote_port"] == c.info["port"] for e in imported), imported
        t0 = time.time()
        b.ok("shared", "takeover", addr)
        reset = wait_until(lambda: (c.events.of("tcp_error") or c.events.of("tcp_eof") or [None])[0],
                           RESET_BOUND + 2, f"the client's connection to {addr} to be reset")
        assert reset["event"] == "tcp_error" and reset["errno"] == errno.ECONNRESET, reset
        assert reset["t"] - t0 < RESET_BOUND, f"reset {reset['t'] - t0:.3f}s after the takeover"
        print(f"takeover of {addr} -> client ECONNRESET: {1000 * (reset['t'] - t0):.1f} ms "
              f"(level {level_of(b)['level']})")
        assert b.shared(addr)["state"] == "held" and b.holders(addr) == [b.shared(addr)["holder"]]
        wait_until(lambda: lab.client_reaches(addr), 10, f"client reaches {addr} on B")
    assert "TCP client(s) tickled" in b.daemon.log()


def test_restart_of_the_holder_changes_nothing(world):
    lab, b = world.lab, world.b
    if b.shared()["state"] != "held":
        b.ok("shared", "takeover", SHARED4)
    b.daemon.wait_status(lambda s: b.shared()["state"] == "held", 5, "B holds the address")
    holder = b.shared()["holder"]
    client = Client(world)  # a new connection, to B's server
    client.ping()
    # Watch B's addresses while mpathd restarts: the shared address is not touched.
    log = lab.tmp / f"monitor-{secrets.token_hex(3)}.log"
    with open(log, "w") as f:
        mon = lab.spawn(b.ns, "ip", "-o", "monitor", "address", name="ip-monitor-b", stdout=f)
    marker = "198.18.7.8"
    wait_until(lambda: lab.ns_exec(b.ns, "ip", "addr", "replace", f"{marker}/32", "dev", "lo") and
               marker in log.read_text(), 5, "the monitor to listen")
    b.restart()
    b.daemon.wait_status(lambda s: b.shared()["state"] == "held", 5, "B holds it after the restart")
    assert b.shared()["holder"] == holder and b.shared()["reason"] == "adopted", b.shared()
    lab.ns_exec(b.ns, "ip", "addr", "del", f"{marker}/32", "dev", "lo")
    wait_until(lambda: "Deleted" in log.read_text() and marker in log.read_text().split("Deleted", 1)[1], 5,
               "the monitor to catch up")
    mon.stop()
    touched = [l for l in log.read_text().splitlines() if SHARED4 in l]
    assert touched == [], touched
    client.ping()
    assert not client.events.of("tcp_error") and not client.events.of("tcp_eof")
    assert b.holders() == [holder]
