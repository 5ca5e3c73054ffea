#!/usr/bin/python3
"""Failover latency inside mpathd (issue 14 item 1): from the netlink link event to the
first gratuitous ARP / unsolicited NA that it caused, as mpathd measures it itself
(steady clock; logged at debug as "failover latency: ...", and kept as a histogram in
status.json "failover_latency": count, p50/p99/max over the last 1024 and buckets).

A host namespace with GROUPS x MEMBERS interfaces (default 64 x 2), one IPv4 data
address per group, failback on. Each round cuts, one group at a time, the link of the
member holding the group's address and waits until the address has moved (status.json),
then restores every cut link (the addresses fail back: link events too). Both the
failovers and the failbacks are samples. Target: p99 <= 1 ms.

    sudo MPATHD_BIN=build/mpathd/mpathd /usr/bin/python3 bench/failover_latency.py --rounds 4
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from lab.lab import Lab, wait_until  # noqa: E402
from restart import config  # noqa: E402

TARGET_P99_US = 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=64)
    ap.add_argument("--members", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--one-domain", action="store_true",
                    help="every member on one bridge (the lab before 2026-12-02): a GARP is then flooded to "
                         "every member's port inside mpathd's sendto")
    ap.add_argument("--keep-log", metavar="PATH", help="copy mpathd's log (debug: one line per failover) to PATH")
    args = ap.parse_args()
    n = args.groups * args.members
    print(f"building a lab with {n} members ...", file=sys.stderr)
    # One bridge per group (as a group is one network segment): a veth delivers a
    # broadcast to every port of its bridge inside the sender's sendto, which a NIC does
    # not (it queues the frame); with one domain that flood is a lab cost in the figure.
    with Lab(members=n, group_size=None if args.one_domain else args.members) as lab:
        # The runtime directory on a tmpfs, as /run is under systemd: the state's
        # runtime copy is written there before every move.
        workdir = lab.tmp / "mpathd-latency"
        (workdir / "run").mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "mpathd-latency", str(workdir / "run")],
                       check=True)
        try:
            lat = measure(lab, args, workdir)
        finally:
            subprocess.run(["umount", "-l", str(workdir / "run")], check=False)
    print(f"\nfailover latency inside mpathd (netlink link event -> first GARP/NA), "
          f"{args.groups} groups x {args.members} members "
          f"({'one bridge' if args.one_domain else 'a bridge per group'}), {lat['count']} samples "
          f"(quantiles over the last {min(lat['count'], 1024)}; runtime directory on a tmpfs)")
    print(f"{'measure':24} {'result (us)':>12} {'target (us)':>12}")
    print(f"{'p50':24} {lat['p50_us']:>12} {'-':>12}")
    print(f"{'p99':24} {lat['p99_us']:>12} {'<= ' + str(TARGET_P99_US):>12}")
    print(f"{'max':24} {lat['max_us']:>12} {'-':>12}")
    print("where the time went (from the debug lines; from the link event unless said):")
    print(f"{'  part':26} {'p50 (us)':>10} {'p99 (us)':>10}")
    for name, v in lat["parts"].items():
        print(f"{'  ' + name:26} {quantile(v, 0.5):>10} {quantile(v, 0.99):>10}")
    print("  (the send of a broadcast on a veth delivers it to every bridge port in the sender's context;")
    print("  CPU: the loop thread's from the event, to the end of the reconcile and to the send; the load")
    print("  does not change it)")
    print("histogram (cumulative): " + ", ".join(f"<= {b['le_us']} us: {b['count']}" for b in lat["buckets"]))
    return 0 if lat["p99_us"] <= TARGET_P99_US else 1


def measure(lab: Lab, args, workdir: Path) -> dict:
    """Starts mpathd on workdir, runs the rounds; status.json's failover_latency."""
    d = lab.start_mpathd(config(args.groups, args.members), timeout=60, workdir=workdir)

    def holders():
        s = d.status()
        return {g["name"]: g["addresses"][0]["holder"] for g in s["groups"]} if s else {}
    wait_until(lambda: len(holders()) == args.groups and all(holders().values()), 60, "every address placed")
    for r in range(args.rounds):
        cut = []
        for g in range(args.groups):
            name = f"g{g}"
            old = holders()[name]
            lab.link_down(int(old[1:]))
            cut.append(int(old[1:]))
            wait_until(lambda: holders()[name] not in ("", old), 10, f"{name} to fail over off {old}")
        for i in cut:
            lab.link_up(i)
        wait_until(lambda: all(m["state"] == "ok" for g in d.status()["groups"] for m in g["members"]), 60,
                   "every member back")
        print(f"  round {r + 1}: {d.status()['failover_latency']['count']} samples", file=sys.stderr)
    lat = d.status()["failover_latency"]
    d.stop(timeout=10)
    if args.keep_log:
        shutil.copyfile(d.log_path, args.keep_log)
    lat["parts"] = parts(d.log_path.read_text(errors="replace"))
    return lat


PART = re.compile(r"failover latency: link event to first announcement (\d+) us \(state written (-?\d+) us, "
                  r"announcement issued (\d+) us, sent (\d+) us; CPU (\d+) us, "
                  r"(\d+) us of it before the announcement\)")


def parts(log: str) -> dict[str, list[int]]:
    """The debug lines' split of each sample: where the time went."""
    out: dict[str, list[int]] = {"state written": [], "announcement issued": [], "its send (sendto)": [],
                                 "CPU of the input": [], "CPU before the announcement": []}
    for m in PART.finditer(log):
        _, written, issued, sent, cpu, cpu_before = (int(x) for x in m.groups())
        if written >= 0:
            out["state written"].append(written)
        out["announcement issued"].append(issued)
        out["its send (sendto)"].append(sent - issued)
        out["CPU of the input"].append(cpu)
        out["CPU before the announcement"].append(cpu_before)
    return out


def quantile(v: list[int], q: float) -> int:
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else -1


if __name__ == "__main__":
    sys.exit(main())
