#!/usr/bin/python3
"""mpathd cluster demo: a real 3-node Corosync + Pacemaker cluster in namespaces
(tests/lab/cluster.py), the real mpathd on every node, the shared address 198.18.1.50
as Pacemaker resource `vip` (ocf:mpathd:SharedAddress) on node n1, a client connected
to it; then n1's whole group fails (both member cables cut) and the demo shows
Pacemaker moving the address, the client's connection reset and its reconnect to
another node, with timings. Run as root (`scripts/demo.sh cluster` builds first).

Everything happens in namespaces the demo makes and removes again, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ -> "lab" package

from lab.cluster import SHARED4, Client, Cluster, ipmpctl_bin, start_server, unmet  # noqa: E402
from lab.lab import wait_until  # noqa: E402


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def show(node, *cmd: str) -> None:
    print(f"[{node.name}]# {' '.join(Path(c).name if c == ipmpctl_bin() else c for c in cmd)}")
    print(node.exec(*cmd, check=False).stdout.rstrip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--silent", action="store_true",
                    help="fail n1's group silently (the switch drops its frames) instead of cutting the cables")
    ap.add_argument("--keep-logs", action="store_true", help="keep the lab directory (logs) afterwards")
    args = ap.parse_args()
    if why := unmet():
        print(f"cluster demo: {why[1]}", file=sys.stderr)
        return 77 if why[0] == "skip" else 1

    say("building 3 nodes: netns + private mount/pid/uts/ipc, corosync on its own link, pacemakerd")
    t0 = time.monotonic()
    with Cluster(keep_logs=args.keep_logs) as c:
        print(f"cluster formed in {time.monotonic() - t0:.1f} s (lab directory {c.lab.tmp})")
        n1 = c.node("n1")
        show(n1, "crm_mon", "-1")
        say("mpathd on every node: group ipmp0 = m0 + m1, shared address 198.18.1.50, node-attributes = true")
        for n in c.nodes:
            n.start_mpathd(wait=False)
        for n in c.nodes:
            n.daemon.wait_status(lambda s: s.get("started") is True, 30, f"{n.name}: mpathd started")
            n.wait_group_ok(30)
        wait_until(lambda: all(n.attribute("mpathd-g0") == "2" for n in c.nodes), 10, "mpathd-g0=2 everywhere")
        show(n1, "attrd_updater", "-Q", "-A", "-n", "mpathd-g0")

        say("Pacemaker: vip = ocf:mpathd:SharedAddress, the location rule on mpathd-g0, a preference for n1")
        c.add_shared_address("vip", SHARED4, monitor="2s")
        c.crm("cibadmin", "--create", "-o", "constraints", "--xml-text",
              '<rsc_location id="vip-prefers-n1" rsc="vip" node="n1" score="50"/>')
        c.wait_running("vip", on="n1", timeout=30)
        n1.daemon.wait_status(lambda s: n1.shared()["state"] == "held", 10, "n1 holds the address")
        show(n1, ipmpctl_bin(), "show", "shared")

        say("a TCP server on 198.18.1.50 on every node; the client (198.19.0.2, behind the router) connects")
        servers = [start_server(n) for n in c.nodes]
        client = Client(c)
        client.ping()
        print(f"client connected to {client.info['node']} from port {client.info['port']}")

        def registered(node):
            entries = json.loads(node.ipmpctl("-o", "json", "show", "associations", SHARED4).stdout)
            return entries if any(e["remote_port"] == client.info["port"] for e in entries) else None
        entries = wait_until(lambda: registered(n1), 5, "the client in n1's association registry")
        show(n1, ipmpctl_bin(), "show", "associations", SHARED4)

        rep = (n1.daemon.status() or {}).get("replication")
        if isinstance(rep, dict) and rep.get("state") == "joined":
            t0 = time.monotonic()
            wait_until(lambda: all(registered(n) for n in c.nodes[1:]), 10, "n2 and n3 list n1's client (replicated)")
            print(f"association replication over Corosync CPG: n2 and n3 list n1's client "
                  f"{time.monotonic() - t0:.2f} s later (imported)")
        else:
            say("hand-over of n1's associations to n2 and n3 (ipmpctl show associations -o json | "
                "ipmpctl shared import); Corosync CPG replication does this by itself")
            path = c.lab.tmp / "n1-associations.json"
            path.write_text(json.dumps(entries))
            for n in c.nodes[1:]:
                print(f"[{n.name}] " + n.ipmpctl("shared", "import", SHARED4, str(path)).stdout.strip())

        how = "silently (the switch drops every frame of m0 and m1)" if args.silent else "(both cables cut)"
        say(f"n1's whole group fails {how}; the client sits idle")
        start = time.time()
        (n1.drop_group if args.silent else n1.cut_group)()
        seen: dict[str, float] = {}

        def watch():
            # Each time is taken when the look that saw it returned (an upper bound).
            if "released" not in seen and not n1.holders():
                seen["released"] = time.time()
            h = c.holders()
            if "serving" not in seen and len(h) == 1 and "n1" not in h:
                seen["serving"] = time.time()
                seen["where"] = next(iter(h))
            ended = client.ended()
            if ended and "reset" not in seen:
                seen["reset"] = ended["t"]  # the client's own clock reading
                seen["reset_errno"] = ended.get("errno", 0)
            again = client.connections()[1:]
            if again and "reconnect" not in seen:
                seen["reconnect"] = again[0]["t"]
                seen["reconnect_node"] = again[0]["node"]
            if "attribute" not in seen and n1.attribute("mpathd-g0") == "0":  # the slowest look last
                seen["attribute"] = time.time()
            return all(k in seen for k in ("attribute", "released", "serving", "reset", "reconnect"))
        try:
            wait_until(watch, 30, "the failover to complete", step=0.01)
        except AssertionError as e:
            print(f"not everything happened: {e}")
        where = seen.get("where") or c.wait_running("vip", not_on="n1", timeout=10)
        client.ping()

        say("timings (from the moment n1's group failed)")
        rows = [("mpathd-g0=0 on n1 (Pacemaker node attribute)", "attribute"),
                ("198.18.1.50 gone from n1", "released"),
                (f"198.18.1.50 in {where}'s kernel (agent start, takeover)", "serving"),
                ("client's connection reset" + (" (ECONNRESET)" if seen.get("reset_errno") == 104 else ""), "reset"),
                (f"client reconnected to {seen.get('reconnect_node', '?')}", "reconnect")]
        for label, key in rows:
            print(f"  {label:<52} " + (f"{seen[key] - start:6.3f} s" if key in seen else "   not seen"))
        print("  (the client's times are its own; the others are when a poll every ~10-50 ms saw them;\n"
              "   bench/cluster measures them properly)")
        show(c.node(where), "crm_mon", "-1")
        show(c.node(where), ipmpctl_bin(), "show", "shared")
        for proc, _ in servers:
            proc.stop()
        client.stop()
        say("removing the lab")
    print("done: every namespace, process and directory of the demo is gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
