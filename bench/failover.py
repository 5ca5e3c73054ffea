#!/usr/bin/python3
"""Failover bench: the outage a client sees when the member holding a data address
loses its link.

One lab, one mpathd (failback = false, so the address stays where it moved). Each run:
start `flowtool udp` from the client at >= 1000 Hz to the data address, cut the link of
the member holding it, wait for the move, let the flow recover, stop it and record its
longest outage; restore the link and wait until the member is usable again. Holders
alternate between the members from run to run. IPv4 and IPv6.

    sudo MPATHD_BIN=build/mpathd/mpathd FLOWTOOL_BIN=build/tests/tools/flowtool \\
        /usr/bin/python3 bench/failover.py --runs 20
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from lab.lab import (Lab, LabError, WaitTimeout, flowtool_bin, group_config,  # noqa: E402
                     mpathd_bin, wait_until)

ADDRS = {"ipv4": "198.18.1.10", "ipv6": "2001:db8:1::10"}
TARGET_P99_MS = 20.0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(1, math.ceil(p / 100 * len(s)))
    return s[k - 1]


def one_run(lab: Lab, d, addr: str, port: int, rate: float, settle_dad: bool) -> dict:
    old = lab.holder_of(addr)
    if old is None:
        raise LabError(f"{addr} is on no member")
    flow = lab.start_flow("udp", addr, port, duration=60, rate=rate)
    flow.wait_flowing(10)
    # Some steady traffic first, so the outage is measured from a running flow.
    base = flow.progress()["received"]
    wait_until(lambda: flow.progress()["received"] >= base + rate / 10, 10, "steady flow")

    # Members whose IPv6 link-local is still in DAD (just repaired) at the moment of the cut.
    tentative = sorted({a["dev"] for a in lab.host_addrs()
                        if a["scope"] == "link" and "tentative" in a["flags"]})
    cut_at = flow.elapsed_ms()
    t0 = time.monotonic()
    lab.link_down(int(old[1:]))

    def moved():
        devs = lab.holders(addr)
        return devs[0] if len(devs) == 1 and devs[0] != old else None
    new = wait_until(moved, 10, f"{addr} to move off {old}")
    move_s = time.monotonic() - t0
    # The flow has recovered: a good number of replies after the cut.
    flow.wait_replies_after(cut_at + 1, 10, count=int(rate / 4))
    res = flow.result(stop=True)

    lab.link_up(int(old[1:]))
    d.wait_status(lambda s: d.member(old, s)["state"] == "ok" and
                  d.member(old, s)["link"] == "up", 60, f"{old} usable again")
    if settle_dad:
        # ... and usable for IPv6 too: its link-local address has finished DAD.
        wait_until(lambda: not [a for a in lab.host_addrs(old)
                                if a["scope"] == "link" and "tentative" in a["flags"]]
                   and [a for a in lab.host_addrs(old) if a["scope"] == "link"],
                   10, f"{old}'s IPv6 link-local to finish DAD")
    return {**res, "from": old, "to": new, "move_s": move_s, "tentative_at_cut": tentative}


def main() -> int:
    ap = argparse.ArgumentParser(description="failover outage bench (root)")
    ap.add_argument("--runs", type=int, default=20, help="runs per address family (>= 1)")
    ap.add_argument("--rate", type=float, default=1000, help="client packets per second")
    ap.add_argument("--members", type=int, default=2, help="members in the group")
    ap.add_argument("--family", choices=["ipv4", "ipv6", "both"], default="both")
    ap.add_argument("--json", help="write every run's result to this file")
    ap.add_argument("--check", action="store_true",
                    help=f"exit 1 unless p99 < {TARGET_P99_MS:.0f} ms for every family")
    ap.add_argument("--no-settle-dad", action="store_true",
                    help="start the next run as soon as mpathd reports the member ok, "
                         "without waiting for its IPv6 link-local to finish DAD (shows "
                         "occasional 300-800 ms IPv6 outages when the new holder came up "
                         "less than ~1 s before: the host's neighbour entry for the "
                         "gateway stays INCOMPLETE; under investigation)")
    ap.add_argument("--extra-config", default="", help="extra top-level mpathd.conf lines")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("failover.py: needs root (network namespaces)", file=sys.stderr)
        return 1
    for path, what in ((mpathd_bin(), "MPATHD_BIN"), (flowtool_bin(), "FLOWTOOL_BIN")):
        if not os.access(path, os.X_OK):
            print(f"failover.py: {path} missing (set {what} or build)", file=sys.stderr)
            return 1
    if args.rate < 1000:
        print("failover.py: note: rates below 1000 Hz blur outages shorter than 1 ms",
              file=sys.stderr)

    families = ["ipv4", "ipv6"] if args.family == "both" else [args.family]
    members = [f"m{i}" for i in range(args.members)]
    # failback = false: the address stays where it moved; a generous flap limit: every
    # member's link comes up many times a minute here, on purpose.
    extra = "link-flap-limit = 100\n" + args.extra_config
    conf = group_config(members, failback=False, extra_global=extra,
                        data_addresses=[f"{ADDRS['ipv4']}/24", f"{ADDRS['ipv6']}/64"])
    results: dict[str, list[dict]] = {f: [] for f in families}
    with Lab(members=args.members) as lab:
        d = lab.start_mpathd(conf)
        d.wait_status(lambda s: all(a.get("holder") for a in s["groups"][0]["addresses"]),
                      15, "addresses placed")
        _, port = lab.start_server()
        for fam in families:
            wait_until(lambda: lab.client_reaches(ADDRS[fam]), 10, f"{ADDRS[fam]} reachable")
        for fam in families:
            for i in range(args.runs):
                try:
                    r = one_run(lab, d, ADDRS[fam], port, args.rate, not args.no_settle_dad)
                except (LabError, WaitTimeout) as e:
                    print(f"{fam} run {i + 1}: FAILED: {e}", file=sys.stderr)
                    print(lab.logs_text(80), file=sys.stderr)
                    return 1
                results[fam].append(r)
                print(f"{fam} run {i + 1:2}/{args.runs}: {r['from']} -> {r['to']}  "
                      f"outage {r['longest_outage_ms']:8.2f} ms  lost {r['lost']:5}  "
                      f"(move seen after {r['move_s'] * 1000:.0f} ms)"
                      + (f"  [link-local in DAD at cut: {' '.join(r['tentative_at_cut'])}]"
                         if r["tentative_at_cut"] else ""), flush=True)
        d.stop()

    print()
    hdr = f"{'family':8} {'runs':>5} {'median':>9} {'p90':>9} {'p99':>9} {'max':>9}  target p99 < {TARGET_P99_MS:.0f} ms"
    print(hdr)
    print("-" * len(hdr))
    ok = True
    for fam in families:
        v = [r["longest_outage_ms"] for r in results[fam]]
        p99 = percentile(v, 99)
        met = p99 < TARGET_P99_MS
        ok &= met
        print(f"{fam:8} {len(v):5} {statistics.median(v):9.2f} {percentile(v, 90):9.2f} "
              f"{p99:9.2f} {max(v):9.2f}  {'met' if met else 'NOT met'}")
    print("(outage in ms = longest time between two consecutive UDP replies at the client)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
