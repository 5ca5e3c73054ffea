#!/usr/bin/python3
"""Cluster bench (issue 12): a node's whole group fails -> how long until the shared
address serves from another node, the outage a client sees, and how long until a
client's TCP connection is reset, side by side on one lab for

  mpathd     mpathd + Pacemaker: ocf:mpathd:SharedAddress and the location rule on the
             node attribute mpathd-<group> that mpathd sets on every group change
  ipaddr2    Pacemaker's stock pieces: ocf:heartbeat:IPaddr2 on the node's first NIC and
             a clone of ocf:heartbeat:ethmonitor with the same kind of location rule
  keepalived 3 VRRP nodes (priorities 100/90/80), the address on the first NIC, both
             NICs tracked (track_interface)

each at its default settings and at the fastest its documentation allows (mpathd has
one setting: the attribute is set at once, whatever the FDT, for a link failure).

Every run cuts the whole group of the node holding the address: both of its public
NICs lose carrier (their switch ports go down); Corosync keeps its own link, so the
node stays in the cluster (the case mpathd is for: the node is fine, its network is
not). Measured from the cut:

  serving elsewhere  the address is added on another node (`ip -ts monitor address` in
                     every node's namespace)
  client outage      the longest gap between two UDP echoes, client at 500 Hz to the
                     address (flowtool), through the lab's router
  client reset       an idle TCP connection to the address (nothing to send, as most
                     keep-alive connections are) until the client's kernel reports it
                     reset; without a tickle it is never reset (shown as "none in W s")
  active reset       a TCP connection that sends 1 byte every 100 ms, until reset: the
                     new holder answers the client's retransmission with a RST, so
                     without a tickle this follows the client's RTO back-off

The machine is shared: note the load (printed) beside the figures.

    sudo MPATHD_BIN=build/mpathd/mpathd FLOWTOOL_BIN=build/tests/tools/flowtool \\
        IPMPCTL_BIN=build/ipmpctl/ipmpctl /usr/bin/python3 bench/cluster.py --runs 3
    ... --systems keepalived                 # VRRP only (no Corosync/Pacemaker needed)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from lab.lab import (CLIENT4, ROUTER_LAN4, Lab, LabError, Proc, WaitTimeout,  # noqa: E402
                     flowtool_bin, wait_until)

VIP = "198.18.1.50"
PREFIX = 24
MEMBERS = ("m0", "m1")
UDP_RATE = 500
IDLE_WINDOW = 20.0  # how long a client without a tickle is watched for a reset

# The target/expectation column (issue 12 and the anchors of
# shared/reference/linux-anchors.md §3, §6, §10; pacemaker-lab.md for Pacemaker).
EXPECT = {
    ("mpathd", "default"): "<= FDT + 1 s serving (issue); reset at once (tickle of replicated associations)",
    ("ipaddr2", "default"): "ethmonitor: monitor 10 s + repeat 5 x 10 s -> up to ~50 s; no reset (no tickle)",
    ("ipaddr2", "fastest"): "monitor 1 s, repeat_count 1, link_status_only -> ~1-1.5 s; no reset",
    ("keepalived", "default"): "3 x advert 1 s + skew (prio 90) ~ 3.65 s; no reset (no tickle)",
    ("keepalived", "fastest"): "VRRPv3 advert 0.01 s: 3 x 0.01 + skew ~ 37 ms; no reset",
}


# ---------------------------------------------------------------- the lab's nodes

class Nodes:
    """Three cluster nodes on one switch, each with the public NICs m0, m1, and the
    lab's client behind its router. Built from tests/lab/lab.py (the host namespace
    is node 1, add_host() makes nodes 2 and 3); the Pacemaker systems run on the
    cluster lab, which provides the same interface (see ClusterNodes)."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.ns = [lab.host, lab.add_host("n2", len(MEMBERS), "q"), lab.add_host("n3", len(MEMBERS), "r")]
        self.ports = [[f"p{k}" for k in range(len(MEMBERS))], [f"q{k}" for k in range(len(MEMBERS))],
                      [f"r{k}" for k in range(len(MEMBERS))]]
        for i, ns in enumerate(self.ns):
            for k, m in enumerate(MEMBERS):
                lab.sh(ns, "ip", "addr", "add", f"198.18.1.{20 + 10 * i + k}/{PREFIX}", "dev", m)
            lab.sh(ns, "ip", "route", "add", "default", "via", ROUTER_LAN4, "dev", MEMBERS[0])

    def cut(self, i: int) -> None:
        """Both public NICs of node i lose carrier, at once (one ip -batch in the switch)."""
        subprocess.run(["ip", "-n", self.lab.sw, "-batch", "-"], check=True, text=True,
                       input="".join(f"link set {p} down\n" for p in self.ports[i]))

    def heal(self, i: int) -> None:
        subprocess.run(["ip", "-n", self.lab.sw, "-batch", "-"], check=True, text=True,
                       input="".join(f"link set {p} up\n" for p in self.ports[i]))

    def holders(self) -> list[int]:
        out = []
        for i, ns in enumerate(self.ns):
            for a in self.lab.ip_json(ns, "-4", "addr", "show"):
                if any(x.get("local") == VIP for x in a.get("addr_info", [])):
                    out.append(i)
        return out


# ---------------------------------------------------------------- measurement helpers

class AddMonitor:
    """`ip -ts -o monitor address` in every node's namespace: when VIP was added where."""

    def __init__(self, nodes: Nodes):
        self.nodes = nodes
        self.logs = []
        self.procs = []
        for i, ns in enumerate(nodes.ns):
            log = nodes.lab.tmp / f"addmon-{i}.log"
            with open(log, "w") as out:
                self.procs.append(nodes.lab.spawn(ns, "ip", "-ts", "-o", "monitor", "address",
                                                  name=f"addmon-{i}", stdout=out))
            self.logs.append(log)

    def added_after(self, t_wall: float, exclude: int) -> tuple[int, float] | None:
        """(node, time) of the first addition of VIP after t_wall on a node other than exclude."""
        best = None
        for i, log in enumerate(self.logs):
            if i == exclude:
                continue
            for line in log.read_text().splitlines():
                if line.startswith("[") and f" {VIP}/" in line and "Deleted" not in line:
                    ts = datetime.fromisoformat(line[1:line.index("]")]).timestamp()
                    if ts > t_wall and (best is None or ts < best[1]):
                        best = (i, ts)
        return best


CLIENT = textwrap.dedent("""
    import json, socket, sys, time, select
    addr, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    def say(**kw):
        with open(out, "a") as f:
            f.write(json.dumps(kw) + "\\n")
    idle = socket.create_connection((addr, port), timeout=5)
    active = socket.create_connection((addr, port), timeout=5)
    for s in (idle, active):
        s.setblocking(False)
    say(ev="connected", t=time.monotonic())
    alive = {"idle": idle, "active": active}
    nxt = time.monotonic()
    while alive:
        now = time.monotonic()
        if "active" in alive and now >= nxt:
            try:
                active.send(b"x")
            except OSError as e:
                say(ev="reset", which="active", t=time.monotonic(), err=e.errno)
                del alive["active"]
            nxt = now + 0.1
        r, _, _ = select.select(list(alive.values()), [], [], 0.02)
        for s in r:
            which = "idle" if s is idle else "active"
            try:
                data = s.recv(4096)
                if data:
                    continue
                err = 0
            except BlockingIOError:
                continue
            except OSError as e:
                err = e.errno
            say(ev="reset", which=which, t=time.monotonic(), err=err)
            alive.pop(which, None)
""")


class Clients:
    """The lab client's idle and active TCP connections to VIP (CLIENT above)."""

    def __init__(self, lab: Lab, port: int, tag: str):
        self.lab = lab
        self.out = lab.tmp / f"client-{tag}.jsonl"
        self.proc = lab.spawn(lab.cl, "/usr/bin/python3", "-c", CLIENT, VIP, str(port), str(self.out),
                              name=f"client-{tag}")
        wait_until(lambda: self.events("connected"), 10, "the TCP clients connected")

    def events(self, ev: str, which: str | None = None) -> list[dict[str, Any]]:
        try:
            lines = self.out.read_text().splitlines()
        except OSError:
            return []
        evs = [json.loads(l) for l in lines if l.strip()]
        return [e for e in evs if e["ev"] == ev and (which is None or e.get("which") == which)]

    def reset_at(self, which: str) -> float | None:
        e = self.events("reset", which)
        return e[0]["t"] if e else None

    def stop(self) -> None:
        self.proc.stop(timeout=2)


def fmt_s(v: float | None) -> str:
    return "-" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


# ---------------------------------------------------------------- systems

class System:
    name = ""
    setting = ""

    def __init__(self, nodes: Nodes):
        self.nodes = nodes
        self.lab = nodes.lab

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def settled(self) -> bool:
        """The address is held by exactly one node and the system is ready for a cut."""
        return len(self.nodes.holders()) == 1


class Keepalived(System):
    name = "keepalived"

    def __init__(self, nodes: Nodes, fast: bool):
        super().__init__(nodes)
        self.fast = fast
        self.setting = ("fastest: VRRPv3, advert_int 0.01 s" if fast else "default: VRRPv2, advert_int 1 s")
        self.procs: list[Proc] = []

    def conf(self, i: int) -> str:
        advert = "advert_int 0.01\n    version 3" if self.fast else "advert_int 1"
        return textwrap.dedent(f"""\
            global_defs {{
                router_id n{i + 1}
            }}
            vrrp_instance VI_1 {{
                state BACKUP
                interface {MEMBERS[0]}
                virtual_router_id 51
                priority {100 - 10 * i}
                {advert}
                track_interface {{
                    {MEMBERS[0]}
                    {MEMBERS[1]}
                }}
                virtual_ipaddress {{
                    {VIP}/{PREFIX} dev {MEMBERS[0]}
                }}
            }}
            """)

    def start(self) -> None:
        if shutil.which("keepalived") is None:
            raise LabError("keepalived is not installed")
        d = self.lab.tmp / f"keepalived-{'fast' if self.fast else 'default'}"
        d.mkdir(exist_ok=True)
        for i, ns in enumerate(self.nodes.ns):
            conf = d / f"n{i + 1}.conf"
            conf.write_text(self.conf(i))
            log = d / f"n{i + 1}.log"
            # Only inside the node's namespace, with its own config and pid files; -n: no
            # daemon (the lab ends it by its pid), -P: VRRP only, -G: no syslog.
            with open(log, "w") as out:
                self.procs.append(self.lab.spawn(
                    ns, "keepalived", "-n", "-l", "-D", "-P", "-G", "-f", str(conf),
                    "-p", str(d / f"n{i + 1}.pid"), "-r", str(d / f"n{i + 1}.vrrp.pid"),
                    name=f"keepalived-n{i + 1}", stdout=out, stderr=subprocess.STDOUT))
        wait_until(lambda: self.nodes.holders() == [0], 30, "keepalived: node 1 MASTER with the address")

    def stop(self) -> None:
        for p in self.procs:
            p.stop(timeout=10)
        self.procs.clear()
        wait_until(lambda: self.nodes.holders() == [], 10, "keepalived removed the address")


# ---------------------------------------------------------------- one run

def one_run(nodes: Nodes, system: System, port: int, tag: str) -> dict[str, Any]:
    lab = nodes.lab
    wait_until(system.settled, 60, f"{system.name}: settled before the cut")
    holder = nodes.holders()[0]
    clients = Clients(lab, port, tag)
    flow = lab.start_flow("udp", VIP, port, duration=120, rate=UDP_RATE)
    flow.wait_flowing(10)
    t_mono, t_wall = time.monotonic(), time.time()
    nodes.cut(holder)
    res: dict[str, Any] = {"holder": holder + 1}
    try:
        mon = system.monitor
        found = wait_until(lambda: mon.added_after(t_wall, holder), 90, f"{system.name}: address added elsewhere")
        res["to"] = found[0] + 1
        res["serving_s"] = found[1] - t_wall
        flow.wait_replies_after(flow.elapsed_ms(), 30, count=50)
        # A client without a tickle is never reset: watched for IDLE_WINDOW after serving.
        try:
            wait_until(lambda: clients.reset_at("idle") and clients.reset_at("active"), IDLE_WINDOW,
                       "client resets", step=0.05)
        except WaitTimeout:
            pass
        for which in ("idle", "active"):
            t = clients.reset_at(which)
            res[f"{which}_reset_s"] = None if t is None else t - t_mono
    finally:
        r = flow.result(stop=True)
        res["outage_s"] = r["longest_outage_ms"] / 1000
        clients.stop()
        nodes.heal(holder)
    return res


def summarize(runs: list[dict[str, Any]], key: str) -> str:
    vals = [r.get(key) for r in runs]
    got = [v for v in vals if v is not None]
    missing = len(vals) - len(got)
    if not got:
        return f"none in {IDLE_WINDOW:.0f} s" if key.endswith("reset_s") else "-"
    s = f"{fmt_s(statistics.median(got))} ({fmt_s(min(got))}-{fmt_s(max(got))})" if len(got) > 1 else fmt_s(got[0])
    if missing:
        s += f", {missing}/{len(vals)} none in {IDLE_WINDOW:.0f} s"
    return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--systems", default="mpathd,ipaddr2,keepalived")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("cluster bench: needs root (network namespaces)", file=sys.stderr)
        return 77
    wanted = args.systems.split(",")
    results = []
    load0 = os.getloadavg()[0]
    with Lab(members=len(MEMBERS)) as lab:
        nodes = Nodes(lab)
        serve = [lab.start_server(ns=ns)[1] for ns in nodes.ns[:1]]
        port = serve[0]
        for ns in nodes.ns[1:]:
            lab.start_server(port=port, ns=ns)
        systems: list[System] = []
        if "keepalived" in wanted:
            systems += [Keepalived(nodes, fast=False), Keepalived(nodes, fast=True)]
        for k, system in enumerate(systems):
            system.monitor = AddMonitor(nodes)
            system.start()
            runs = []
            try:
                for r in range(args.runs):
                    res = one_run(nodes, system, port, f"{k}-{r}")
                    res["load"] = os.getloadavg()[0]
                    runs.append(res)
                    if not args.json:
                        print(f"  {system.name} {system.setting} run {r + 1}: {res}", file=sys.stderr)
            finally:
                system.stop()
                for p in system.monitor.procs:
                    p.stop(timeout=2)
            results.append({"system": system.name, "setting": system.setting, "runs": runs,
                            "expect": EXPECT.get((system.name, "fastest" if "fastest" in system.setting else "default"), "")})
    load1 = os.getloadavg()[0]
    if args.json:
        print(json.dumps({"load": [load0, load1], "results": results}, indent=2))
        return 0
    print(f"\nbench/cluster: whole-group link failure of the holder, {args.runs} runs each, "
          f"load {load0:.1f} -> {load1:.1f} (2 cores shared)\n")
    head = ["system, setting", "serving elsewhere", "client outage", "idle client reset", "active client reset",
            "target / expectation"]
    rows = [head]
    for res in results:
        rows.append([f"{res['system']}, {res['setting']}", summarize(res["runs"], "serving_s"),
                     summarize(res["runs"], "outage_s"), summarize(res["runs"], "idle_reset_s"),
                     summarize(res["runs"], "active_reset_s"), res["expect"]])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows[1:]:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
