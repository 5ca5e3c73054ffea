#!/usr/bin/python3
"""False-failure bench (issue 13): members probing through random loss with every CPU
busy must not fail, and a real failure under the same conditions must still be
detected within the bound.

One lab, one mpathd, one group of `--members` members probing the router by ICMP from
test addresses at `--fdt` (default 1 s). After every member is ok, the CPUs are hogged
(one busy loop per CPU, processes this bench starts and stops by pid) and the switch
drops `--loss` percent (default 10) of the ICMP frames it forwards between the router
and the members, in each direction, at random (nftables `numgen random` in a bridge
table inside the lab's switch namespace; the machine's own namespace is untouched).

Phase 1, for `--duration` seconds (default 600): counted are the members' failures
(status.json counters, and any sample of a member not ok). Target: 0.
Phase 2, `--runs` times (default 10), same loss and load: one member's switch port
leaves the bridge (carrier up, nothing passes: only probes can tell); the detection
time is from the cut to the daemon's log line of the member failing; then the port
comes back and the member must be repaired by its probes. Target: every run within
FDT + one probe interval (FDT/7), the bound in.mpathd's algorithm promises.

    sudo MPATHD_BIN=build/mpathd/mpathd /usr/bin/python3 bench/probe_loss.py
    ... --duration 120 --runs 5                          # a quick look
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from failover import (TEST_ADDRESSES, fdt_text, log_failure_time, parse_fdt,  # noqa: E402
                      percentile)
from lab.lab import Lab, group_config, wait_until  # noqa: E402


def cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of all CPUs (namespaces share /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def failures(d) -> dict[str, int]:
    s = d.status()
    return {m["name"]: m["counters"]["failures"] for m in d.group("g0", s)["members"]}


def observe(d, seconds: float, names: list[str]) -> dict:
    """Samples status.json every 0.2 s for `seconds`; members seen not ok."""
    before = failures(d)
    not_ok: dict[str, int] = {n: 0 for n in names}
    samples = 0
    end = time.monotonic() + seconds
    next_report = time.monotonic() + 60
    while time.monotonic() < end:
        s = d.status()
        if s:
            samples += 1
            for m in d.group("g0", s)["members"]:
                if m["state"] != "ok" or m["probe"] != "ok":
                    not_ok[m["name"]] += 1
        if time.monotonic() >= next_report:
            left = end - time.monotonic()
            print(f"  ... {seconds - left:.0f} s observed, failures so far "
                  f"{sum(failures(d).values()) - sum(before.values())}", file=sys.stderr)
            next_report += 60
        time.sleep(0.2)
    after = failures(d)
    return {"failed": sum(after[n] - before[n] for n in names), "samples": samples,
            "not_ok_samples": sum(not_ok.values()),
            "per_member": {n: after[n] - before[n] for n in names}}


def real_failure(lab: Lab, d, i: int, fdt: float) -> float:
    """Cuts member i silently; seconds from the cut to the daemon's failure log line."""
    name = f"m{i}"
    log_mark = len(d.log())
    lab.silent_fail(i)
    w1 = time.time()
    wait_until(lambda: d.member(name, d.status())["state"] == "failed", 3 * fdt + 10,
               f"{name} failed", step=0.01)
    t_log = log_failure_time(d.log()[log_mark:], name)
    lab.silent_restore(i)
    d.wait_status(lambda s: d.member(name, s)["state"] == "ok" and d.member(name, s)["probe"] == "ok",
                  3 * fdt + 30, f"{name} repaired")
    if t_log is None:
        raise RuntimeError(f"no failure log line for {name}")
    return t_log - w1


def main() -> int:
    ap = argparse.ArgumentParser(description="false-failure bench (root)")
    ap.add_argument("--duration", type=float, default=600, help="seconds of loss and load (default 600)")
    ap.add_argument("--fdt", type=parse_fdt, default=1.0, help="failure detection time (default 1s)")
    ap.add_argument("--loss", type=float, default=10.0,
                    help="percent of ICMP frames dropped in each direction (default 10)")
    ap.add_argument("--members", type=int, default=3, help="members probing (default 3)")
    ap.add_argument("--runs", type=int, default=10, help="real failures to detect afterwards (default 10)")
    ap.add_argument("--no-load", action="store_true", help="do not hog the CPUs")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("probe_loss.py needs root (network namespaces)", file=sys.stderr)
        return 77
    if not 0 < args.loss < 100 or not 1 <= args.members <= len(TEST_ADDRESSES) or args.runs < 0:
        ap.error("--loss takes (0, 100), --members 1..8, --runs >= 0")

    fdt = args.fdt
    names = [f"m{i}" for i in range(args.members)]
    members = [{"name": n, "test_addresses": [TEST_ADDRESSES[i]]} for i, n in enumerate(names)]
    per_probe = 1 - (1 - args.loss / 100) ** 2
    with Lab(members=args.members) as lab:
        d = lab.start_mpathd(group_config(members, failure_detection_time=fdt_text(fdt),
                                          probe_method="icmp"))
        every_ok = lambda s: all(d.member(n, s)["state"] == "ok" and  # noqa: E731
                                 d.member(n, s)["probe"] == "ok" for n in names)
        d.wait_status(every_ok, 15 + 3 * fdt, "every member ok by its probes")
        d.hold_status(every_ok, 3 * fdt, "every member ok before the loss")

        hogs = [] if args.no_load else lab.cpu_hog(args.duration + args.runs * (4 * fdt + 30) + 120)
        loss = lab.switch_drop(iif="router", both_ways=True, protocols=["icmp"], percent=args.loss)
        idle0, total0 = cpu_times()
        print(f"probe_loss.py: observing {args.duration:.0f} s, then {args.runs} real failures",
              file=sys.stderr)
        obs = observe(d, args.duration, names)
        idle1, total1 = cpu_times()
        busy = 1 - (idle1 - idle0) / max(1, total1 - total0)
        counts = lab.switch_drop_counts(loss)

        detect = []
        for r in range(args.runs):
            t = real_failure(lab, d, r % args.members, fdt)
            detect.append(t * 1000)
            print(f"  real failure {r + 1}/{args.runs}: m{r % args.members} detected in {t * 1000:.0f} ms",
                  file=sys.stderr)
        hogs_ok = all(h.running() for h in hogs)
        lab.stop_procs(hogs)
        lab.switch_undrop(loss)

    bound = (fdt + fdt / 7) * 1000
    dropped = counts["dropped"] / max(1, counts["seen"])
    print()
    print(f"false-failure bench: FDT {fdt_text(fdt)}, {args.members} members probing by ICMP, "
          f"{args.loss:g} % random ICMP loss each way ({100 * per_probe:.1f} % of probes), "
          f"{'CPUs hogged' if hogs else 'no load'} (busy {busy:.0%}{'' if hogs_ok else ', a hog ended early'})")
    hdr = f"{'':44} {'figure':>14} {'target':>14}"
    print(hdr)
    print("-" * len(hdr))
    print(f"{'members failed in ' + f'{args.duration:.0f} s':44} {obs['failed']:>14} {0:>14}")
    print(f"{'status samples with a member not ok':44} {obs['not_ok_samples']:>14} {0:>14}")
    print(f"{'ICMP frames dropped at the switch':44} {f'{dropped:.1%}':>14} {f'{args.loss:g} %':>14}")
    if detect:
        print(f"{'real failures detected':44} {f'{len(detect)}/{args.runs}':>14} {'all':>14}")
        print(f"{'detection median (ms)':44} {statistics.median(detect):>14.0f} {f'<= {bound:.0f}':>14}")
        print(f"{'detection max (ms)':44} {max(detect):>14.0f} {f'<= {bound:.0f}':>14}")
        if len(detect) >= 10:
            print(f"{'detection p99 (ms)':44} {percentile(detect, 99):>14.0f} {f'<= {bound:.0f}':>14}")
    print(f"(frames seen {counts['seen']}, dropped {counts['dropped']}; {obs['samples']} status samples; "
          f"bound = FDT + FDT/7; detection from the cut to the daemon's log line)")
    ok = obs["failed"] == 0 and obs["not_ok_samples"] == 0 and all(x <= bound for x in detect)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
