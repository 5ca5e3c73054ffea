#!/usr/bin/python3
"""Link-flap torture bench (issue 13 item 7): one member's link flapping at 100 Hz for
N minutes, then checked: mpathd's RSS stayed bounded, and once the flapping stops the
state is right (the member back in service after the damping window, each data address
on exactly one active member, status.json and the kernel agreeing).

One lab (3 members, m2 standby), mpathd with link-flap damping (window 5 s here, so
that the final check does not wait a minute). The flapping member is the holder of the
IPv4 data address. Its switch port goes down and up 100 times a second, from one
`ip -batch` process fed at that pace (no process per flap). RSS (VmRSS) is sampled
every 5 s; "growth" is the last sample minus the one after the first minute (the
allocator's working set is reached by then).

    sudo MPATHD_BIN=build/mpathd/mpathd /usr/bin/python3 bench/flap.py --minutes 10
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from lab.lab import Lab, wait_until  # noqa: E402
from mpathd_helpers import DATA, EXAMPLE_MEMBERS, START_TIMEOUT, start_group  # noqa: E402

RSS_GROWTH_TARGET_KIB = 1024


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--hz", type=float, default=100)
    args = ap.parse_args()
    with Lab(members=3) as lab:
        d = start_group(lab, members=EXAMPLE_MEMBERS, extra_global='link-flap-window = "5s"')
        i = int(lab.holder_of(DATA["ipv4"])[1:])
        feeder = subprocess.Popen(["ip", "-n", lab.sw, "-force", "-batch", "-"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        samples: list[tuple[float, int]] = []
        flaps = 0
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        next_sample = t0
        # Paced by an interval timer (a flap rate, not a wait for a condition), as
        # tests/integration/arp_forger.py: bounded by --minutes, no drift.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        signal.setitimer(signal.ITIMER_REAL, 1.0 / args.hz, 1.0 / args.hz)
        try:
            while (now := time.monotonic()) < end:
                feeder.stdin.write(f"link set p{i} down\nlink set p{i} up\n")
                feeder.stdin.flush()
                flaps += 1
                if now >= next_sample:
                    if not d.running():
                        raise AssertionError("mpathd exited during the flapping")
                    samples.append((now - t0, rss_kib(d.pid)))
                    next_sample += 5
                signal.sigwait({signal.SIGALRM})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            feeder.stdin.close()
            feeder.wait(timeout=30)
        took = time.monotonic() - t0
        lab.link_up(i)  # the last line was "up"; make sure
        member = f"m{i}"
        t_stop = time.monotonic()
        s = d.wait_status(lambda s: d.member(member, s)["state"] == "ok", 60 + START_TIMEOUT,
                          f"{member} in service after the flapping")
        back = time.monotonic() - t_stop

        def placed():
            for addr in DATA.values():
                h = lab.holders(addr)
                if len(h) != 1 or d.address(addr)["holder"] != h[0] or not d.member(h[0])["active"]:
                    return False
            return True
        wait_until(placed, START_TIMEOUT, "each data address on one active member")
        final_rss = rss_kib(d.pid)
        flaps_seen = d.member(member)["counters"]["link_downs"]
        d.stop(timeout=10)
    base = next((r for t, r in samples if t >= 60), samples[0][1] if samples else 0)
    peak = max(r for _, r in samples) if samples else 0
    growth = final_rss - base
    print(f"\nlink flap: member {member} at {args.hz:.0f} Hz for {took / 60:.1f} min ({flaps} down/up cycles sent, "
          f"{flaps_seen} link-downs counted by mpathd)")
    print(f"{'measure':40} {'result':>10} {'target':>12}")
    print(f"{'RSS after 1 min (KiB)':40} {base:>10} {'-':>12}")
    print(f"{'RSS peak (KiB)':40} {peak:>10} {'-':>12}")
    print(f"{'RSS at the end (KiB)':40} {final_rss:>10} {'-':>12}")
    print(f"{'RSS growth after the first minute (KiB)':40} {growth:>10} {'<= ' + str(RSS_GROWTH_TARGET_KIB):>12}")
    print(f"{'flapping stopped -> member ok (s)':40} {back:>10.1f} {'<= 5 + FDT':>12}")
    print(f"{'state correct afterwards':40} {'yes':>10} {'yes':>12}")
    return 0 if growth <= RSS_GROWTH_TARGET_KIB else 1


if __name__ == "__main__":
    sys.exit(main())
