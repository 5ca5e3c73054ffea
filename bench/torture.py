#!/usr/bin/python3
"""Torture bench (issue 13 item 7): kill -9 at random moments during failovers, many
times, and after every restart check what a crash must never cause.

One lab (3 members, m2 standby), one mpathd probing by ARP at FDT 300 ms. Each kill is
one iteration of the integration test tests/integration/test_restart.py (which runs 50
of them in CI): a random link or silent failure or repair, sometimes while mpathd is
down, the daemon killed with SIGKILL after 0..3 more log lines of its reaction (that is,
in the middle of the failover: between writing the state and changing the kernel, or
between the address's removal and its addition), then started again on the same
runtime and state directories. Counted after every restart, once the daemon has settled
(bounded wait):
  - addresses lost (on no member while a member could hold them) and doubled (on two);
  - other inconsistencies (a member without link active, a healthy one not ok);
  - state.json copies (runtime and durable) that are not valid JSON of version 1.
Target for each: 0. Also printed: the time from restart to the consistent state.

    sudo MPATHD_BIN=build/mpathd/mpathd /usr/bin/python3 bench/torture.py --kills 1000
(about 1-2 s per kill.)
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from lab.lab import Lab  # noqa: E402
from mpathd_helpers import DATA  # noqa: E402
from test_restart import KillTorture  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(1, math.ceil(p / 100 * len(s))) - 1] if s else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20261202)
    args = ap.parse_args()
    lost = doubled = other = invalid = 0
    settle: list[float] = []
    problems: list[str] = []
    t_start = time.monotonic()
    with Lab(members=3) as lab:
        t = KillTorture(lab, args.seed)
        for it in range(args.kills):
            try:
                t.kill()
            except (AssertionError, ValueError) as e:  # a torn state file (or none)
                invalid += 1
                problems.append(f"kill {it}: {e}")
                continue
            t0 = time.monotonic()
            try:
                t.settle(f"kill {it}")
                settle.append((time.monotonic() - t0) * 1000)
            except (AssertionError, ValueError) as e:
                holders = {a: lab.holders(a) for a in DATA.values()}
                if any(len(h) > 1 for h in holders.values()):
                    doubled += 1
                elif any(not h for h in holders.values()) and len(t.down) < lab.n:
                    lost += 1
                else:
                    other += 1
                problems.append(f"kill {it}: {str(e).splitlines()[0]}; holders {holders}")
            if (it + 1) % 50 == 0:
                print(f"  {it + 1} kills, {time.monotonic() - t_start:.0f} s", file=sys.stderr)
        t.d.stop(timeout=10)
    took = time.monotonic() - t_start
    print(f"\nkill -9 torture: {args.kills} kills at random moments during failovers ({took:.0f} s, seed {args.seed})")
    print(f"{'measure':44} {'result':>10} {'target':>8}")
    for name, v in (("addresses lost", lost), ("addresses doubled", doubled),
                    ("other inconsistent restarts", other), ("kills leaving an invalid state.json", invalid)):
        print(f"{name:44} {v:>10} {0:>8}")
    if settle:
        print(f"{'restart -> consistent, median (ms)':44} {statistics.median(settle):>10.0f} {'-':>8}")
        print(f"{'restart -> consistent, p99 (ms)':44} {percentile(settle, 99):>10.0f} {'-':>8}")
    for p in problems[:20]:
        print("  " + p)
    return 0 if lost == doubled == other == invalid == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
