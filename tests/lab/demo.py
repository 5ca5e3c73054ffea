#!/usr/bin/python3
"""mpathd failover demo: a lab in network namespaces, the real daemon, a client flow,
a cut cable and the address moving. Run as root (scripts/demo.sh builds first).

Everything happens in namespaces the demo makes and removes again, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ -> "lab" package

from lab.bus import Bus  # noqa: E402
from lab.lab import (CLIENT4, Daemon, Lab, LabError, flowtool_bin, group_config,  # noqa: E402
                     mpathd_bin, wait_until)

V4 = "198.18.1.10"
V6 = "2001:db8:1::10"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def table(rows: list[list[str]], header: list[str]) -> str:
    rows = [header] + [[str(c) if c not in (None, "") else "--" for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def ipmpctl_bin() -> str | None:
    p = os.environ.get("IPMPCTL_BIN") or str(Path(mpathd_bin()).parents[1] / "ipmpctl/ipmpctl")
    return p if os.access(p, os.X_OK) else None


def show_state(lab: Lab, d: Daemon) -> None:
    s = d.status()
    if s is None:
        print("(no status yet)")
        return
    ctl = ipmpctl_bin()
    if ctl:  # the CLI reads the daemon over D-Bus (a private bus); else status.json
        views = [lab.ns_exec(lab.host, ctl, "show", v) for v in ("groups", "interfaces", "addresses")]
        if all(cp.returncode == 0 for cp in views):
            for cp in views:
                print(cp.stdout.rstrip() + "\n")
            return
    groups = [[g["interface"], g["name"], g["state"], f"{g.get('fdt_ms', 0) / 1000:.2f}s",
               " ".join(m["name"] if m["active"] else
                        (f"({m['name']})" if m["state"] == "ok" else f"[{m['name']}]")
                        for m in g["members"])] for g in s["groups"]]
    print(table(groups, ["GROUP", "GROUPNAME", "STATE", "FDT", "INTERFACES"]))
    print()
    members = []
    for g in s["groups"]:
        for m in g["members"]:
            members.append([m["name"], "yes" if m["active"] else "no", g["interface"],
                            " ".join(m.get("flags", [])), m["link"], m.get("probe"),
                            m["state"], m.get("reason"), m.get("mac")])
    print(table(members, ["INTERFACE", "ACTIVE", "GROUP", "FLAGS", "LINK", "PROBE", "STATE",
                          "REASON", "MAC"]))
    print()
    addrs = []
    for g in s["groups"]:
        for a in g["addresses"]:
            addrs.append([a["address"], "up" if a.get("holder") else "down", g["interface"],
                          a.get("inbound") or a.get("holder"), " ".join(a.get("outbound", [])),
                          a.get("home")])
    print(table(addrs, ["ADDRESS", "STATE", "GROUP", "INBOUND", "OUTBOUND", "HOME"]))
    print("\nkernel (host namespace):")
    for a in lab.host_addrs():
        if a["scope"] == "global":
            print(f"  {a['dev']}: {a['address']}/{a['prefixlen']}")
    print("router neighbour entries:")
    for addr in (V4, V6):
        print(f"  {addr} -> {lab.router_neigh(addr) or '--'}")


def run(args) -> int:
    for path, what in ((mpathd_bin(), "mpathd"), (flowtool_bin(), "flowtool")):
        if not os.access(path, os.X_OK):
            print(f"demo: {what} not found at {path}; run scripts/demo.sh (it builds)",
                  file=sys.stderr)
            return 1
    say("building the lab: switch, router, client and a host with members m0 m1 m2")
    # A private D-Bus system bus for mpathd's API, which ipmpctl reads.
    with Bus() as bus, Lab(members=3) as lab:
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.address
        print(f"namespaces: {' '.join(lab.namespaces)}")
        conf = group_config([{"name": "m0"}, {"name": "m1"}, {"name": "m2", "standby": True}],
                            failback=True)
        say("mpathd.conf")
        print(conf.rstrip())
        say("starting mpathd in the host namespace")
        d = lab.start_mpathd(conf)
        d.wait_status(lambda s: all(a.get("holder") for a in s["groups"][0]["addresses"]),
                      15, "addresses placed")
        show_state(lab, d)

        wait_until(lambda: lab.client_reaches(V4) and lab.client_reaches(V6), 10,
                   "client reaches the data addresses")
        holder = lab.holder_of(V4)
        mac_before = lab.router_neigh(V4)
        _, port = lab.start_server()
        say(f"client {CLIENT4} sends UDP to {V4} at {args.rate:.0f} Hz; "
            f"a TCP connection stays open")
        udp = lab.start_flow("udp", V4, port, duration=args.seconds, rate=args.rate)
        tcp = lab.start_flow("tcp", V4, port, duration=args.seconds, interval_ms=20)
        udp.wait_flowing()
        tcp.wait_flowing()

        say(f"cutting the cable of {holder} (the member holding {V4})")
        cut_at = udp.elapsed_ms()
        lab.link_down(int(holder[1:]))
        new = wait_until(lambda: (lambda h: h if h not in (None, holder) else None)(
            lab.holder_of(V4)), 10, f"{V4} to move")
        print(f"{V4} moved {holder} -> {new}")
        wait_until(lambda: lab.router_neigh(V4) == lab.member_mac(int(new[1:])), 10,
                   "router neighbour update")
        print(f"router's neighbour entry: {mac_before} -> {lab.router_neigh(V4)} "
              f"({new}'s MAC is {lab.member_mac(int(new[1:]))})")
        udp.wait_replies_after(cut_at + 1, 10, count=int(args.rate))  # ~1 s of replies
        show_state(lab, d)

        u = udp.result(stop=True)
        t = tcp.result(stop=True)
        say("the client's view")
        print(f"UDP: sent {u['sent']}, received {u['received']}, lost {u['lost']}, "
              f"longest outage {u['longest_outage_ms']:.1f} ms")
        print(f"TCP: connection {'BROKEN' if t['broken'] else 'survived'}, "
              f"{t['echoed']} echoes, longest gap {t['longest_gap_ms']:.1f} ms")

        say(f"restoring the cable of {holder}")
        lab.link_up(int(holder[1:]))
        d.wait_status(lambda s: d.member(holder, s)["state"] == "ok", 30, f"{holder} repaired")
        wait_until(lambda: lab.holder_of(V4) == holder, 10, f"{V4} back on {holder}")
        show_state(lab, d)
        say("stopping mpathd and removing the lab")
        d.stop()
    print("done: nothing left behind")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=500, help="UDP packets per second")
    ap.add_argument("--seconds", type=float, default=30, help="flow length limit")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("demo: needs root (network namespaces)", file=sys.stderr)
        return 1
    if not shutil.which("ip"):
        print("demo: iproute2 missing (scripts/setup.sh installs it)", file=sys.stderr)
        return 1
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted; the lab was removed", file=sys.stderr)
        return 130
    except (LabError, AssertionError, subprocess.SubprocessError) as e:
        print(f"demo failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
