#!/usr/bin/python3
"""Scale bench: mpathd probing many members at once.

A host namespace with GROUPS x MEMBERS interfaces (default 256 x 4 = 1024 veth pairs,
made with `ip -batch` by tests/lab), one IPv4 data address per group, every member
probing the router at a failure detection time of --fdt (default 1 s): by ARP (default;
ARP probes create no neighbour entries), or by ICMP echo from a test address of its own
(--method icmp, up to ~250 members: see --help). Measured:
  - with --method auto, the default probing instead (targets from a default route via
    the router in each group; ARP, as there are no test addresses);
  - start -> every member probed ok: from the process start to the first status.json in
    which every member's probe state is ok;
  - steady state, over --window seconds after --settle seconds: mpathd's CPU split into
    user and system time (% of one core, /proc/PID/stat), its RSS (VmRSS, and the peak
    VmHWM), the probes sent (echo or ARP requests the router received, by an nft counter
    in the router's namespace), and user-space CPU per probe (user time / probes);
  - false failures: failures counted by the members from the start to the end of the
    window (no link is cut and nothing is dropped, so each is a false one; target 0 on
    a quiet machine);
  - with --strace S (default 5): `strace -f -c` on mpathd for S seconds after the window,
    and the per-second rate of the syscalls that the probe path must not make
    (socket, ioctl, getrandom: target 0) and of all syscalls per probe. strace slows
    mpathd down, so it runs after the CPU window, never during it.

  - with --minutes M, a soak: the window is M minutes long, and every 10 s the
    false failures so far, the RSS and the CPU since the window began are printed (to
    stderr), so that a failure is seen when it happens; the peak RSS is the window's.

    sudo MPATHD_BIN=build/mpathd/mpathd /usr/bin/python3 bench/scale.py
    ... --groups 64 --members 4 --window 10      # a quicker, smaller run
    ... --minutes 5 --strace 0                   # the 5-minute zero-false-failure soak
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from lab.lab import ROUTER_LAN4, Lab, LabError, wait_until  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Targets (issue 14): false failures 0; RSS <= 32 MiB at 1024 members; no socket(),
# ioctl() or getrandom() while probing.
TARGET_RSS_MIB = 32.0
FORBIDDEN = ("socket", "ioctl", "getrandom")


# ICMP probing: the router gets an address in a /21 of its own, each member a test
# address in it (room for 2045 members).
ICMP_ROUTER = "198.18.8.1"
ICMP_PREFIX = 21


def test_address(k: int) -> str:
    n = 2 + k
    return f"198.18.{8 + n // 256}.{n % 256}/{ICMP_PREFIX}"


def config(groups: int, members: int, fdt: str, method: str) -> str:
    lines = ['notification-count = 1']
    for g in range(groups):
        lines += ["", "[[group]]", f'name = "g{g}"', f'interface = "ipmp{g}"',
                  f'data-addresses = ["198.18.{2 + g // 200}.{1 + g % 200}/16"]',
                  f'failure-detection-time = "{fdt}"']
        if method == "icmp":
            lines += ['probe-method = "icmp"', f'targets = ["{ICMP_ROUTER}"]']
        elif method == "arp":
            lines += ['probe-method = "arp"', f'targets = ["{ROUTER_LAN4}"]']
        else:  # the default: targets found from the group's routes (the router)
            lines += [f'routes = [ {{ to = "default", via = "{ROUTER_LAN4}" }} ]']
        for m in range(members):
            k = g * members + m
            lines += ["[[group.member]]", f'name = "m{k}"']
            if method == "icmp":
                lines += [f'test-addresses = ["{test_address(k)}"]']
    return "\n".join(lines) + "\n"


def cpu_ticks(pid: int) -> tuple[int, int]:
    """(utime, stime) of a process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def vm_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise LabError(f"no {key} in /proc/{pid}/status")


def members_of(status: dict) -> list[dict]:
    return [m for g in status["groups"] for m in g["members"]]


def strace_counts(pid: int, seconds: float) -> dict[str, int]:
    """Calls per syscall of `pid` (all threads) during `seconds`, by strace -c."""
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        p = subprocess.Popen(["strace", "-f", "-c", "-o", out.name, "-p", str(pid)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(seconds)  # the measuring interval itself, not a wait for a condition
        p.send_signal(2)
        p.wait(timeout=30)
        counts = {}
        for line in out.read().splitlines():
            # % time  seconds  usecs/call  calls  [errors]  syscall
            m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
            if m and m.group(2) != "total":
                counts[m.group(2)] = int(m.group(1))
        return counts


def soak_progress(d, w0: float, window: float, u0: int, s0: int, every: float = 10.0) -> None:
    """Until `window` seconds after w0: every `every` seconds, prints the false failures
    so far, the RSS and the CPU since w0 (stderr). Stops early if mpathd exits."""
    mark = [w0]

    def tick():
        now = time.monotonic()
        if not d.running():
            raise AssertionError("mpathd exited during the soak")
        if now - mark[0] >= every or now - w0 >= window:
            mark[0] = now
            s = d.status() or {}
            fails = sum(m["counters"]["failures"] for m in members_of(s)) if s else -1
            u, st = cpu_ticks(d.pid)
            el = now - w0
            print(f"soak {el:6.0f} s: false failures {fails}, RSS {vm_kib(d.pid, 'VmRSS') / 1024:.1f} MiB, "
                  f"CPU user {100 * (u - u0) / CLK_TCK / el:.1f} % sys {100 * (st - s0) / CLK_TCK / el:.1f} %",
                  file=sys.stderr, flush=True)
        return now - w0 >= window
    wait_until(tick, window + 30, "the soak window", step=1.0)


class ProbeCounter:
    """An nft counter of the probes the router receives: ARP requests, or ICMP echo
    requests."""

    def __init__(self, lab: Lab, method: str):
        self.lab = lab
        self.table = f"mpathd_bench_{os.getpid()}"
        self.family = "ip" if method == "icmp" else "arp"
        match = "icmp type echo-request" if method == "icmp" else "arp operation request"
        lab.nft(lab.rt, f"table {self.family} {self.table} {{\n chain in {{\n"
                        f" type filter hook input priority 0;\n {match} counter\n }}\n}}\n")

    def packets(self) -> int:
        out = self.lab.sh(self.lab.rt, "nft", "-j", "list", "table", self.family, self.table)
        for item in json.loads(out)["nftables"]:
            for e in item.get("rule", {}).get("expr", []):
                if "counter" in e:
                    return int(e["counter"]["packets"])
        raise LabError("the nft probe counter is missing")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=256)
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--fdt", default="1s", help="failure detection time (default 1s)")
    ap.add_argument("--method", choices=["arp", "icmp", "auto"], default="arp",
                    help="arp (default): ARP to the router (broadcasts: the bridge floods "
                         "each to every port, in the sender's context); icmp: ICMP echo "
                         "from a test address per member (unicast, but each member and the "
                         "router need a neighbour entry: above ~250 members the kernel's "
                         "global neighbour table (gc_thresh3, 1024 by default, shared by "
                         "all namespaces) overflows and probes are lost); auto: the default "
                         "target selection, from a default route via the router")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after all are ok, before the window")
    ap.add_argument("--window", type=float, default=20.0, help="steady-state seconds measured")
    ap.add_argument("--minutes", type=float, default=None,
                    help="soak: a window of this many minutes (overrides --window), "
                         "with progress every 10 s")
    ap.add_argument("--strace", type=float, default=5.0, help="seconds of strace -c after the window (0: none)")
    ap.add_argument("--start-timeout", type=float, default=None,
                    help="seconds to wait for every member probed ok (default 60 + members/2: "
                         "a cold start writes the sysctl originals once per member, ~0.2 s each "
                         "on a loaded machine)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.minutes is not None:
        if args.minutes <= 0:
            ap.error("--minutes must be positive")
        args.window = 60 * args.minutes
    n = args.groups * args.members
    t_begin = time.monotonic()
    print(f"building a lab with {n} members ...", file=sys.stderr)
    with Lab(members=n) as lab:
        if args.method == "icmp":
            lab.router_add_address(f"{ICMP_ROUTER}/{ICMP_PREFIX}")
        arp = ProbeCounter(lab, args.method)
        t0 = time.monotonic()
        d = lab.start_mpathd(config(args.groups, args.members, args.fdt, args.method), wait_started=False, timeout=120)

        def all_probed_ok():
            s = d.status()
            return (s and s.get("pid") == d.pid and len(members_of(s)) == n and
                    all(m["probe"] == "ok" for m in members_of(s)))
        start_timeout = args.start_timeout if args.start_timeout is not None else 60 + n / 2
        wait_until(all_probed_ok, start_timeout, "every member probed ok")
        probed_ok_ms = (time.monotonic() - t0) * 1000
        print(f"every member probed ok after {probed_ok_ms:.0f} ms", file=sys.stderr)

        # The settle time before the window is part of the measurement's definition.
        wait_until(lambda: time.monotonic() - t0 >= probed_ok_ms / 1000 + args.settle,
                   args.settle + 5, "the settle time")
        u0, s0 = cpu_ticks(d.pid)
        p0, w0 = arp.packets(), time.monotonic()
        if args.minutes is None:
            wait_until(lambda: time.monotonic() - w0 >= args.window, args.window + 5, "the window")
        else:
            soak_progress(d, w0, args.window, u0, s0)
        u1, s1 = cpu_ticks(d.pid)
        p1, w1 = arp.packets(), time.monotonic()
        rss, hwm = vm_kib(d.pid, "VmRSS"), vm_kib(d.pid, "VmHWM")
        # Before strace, which slows mpathd down enough to lose probes.
        false_failures = sum(m["counters"]["failures"] for m in members_of(d.status()))
        counts = strace_counts(d.pid, args.strace) if args.strace > 0 else {}
        p2 = arp.packets()
        d.stop(timeout=20)
    secs = w1 - w0
    probes = p1 - p0
    user_s, sys_s = (u1 - u0) / CLK_TCK, (s1 - s0) / CLK_TCK
    rows = [
        ("start -> every member probed ok (ms)", probed_ok_ms, "-"),
        ("steady CPU, user (% of a core)", 100 * user_s / secs, "-"),
        ("steady CPU, system (% of a core)", 100 * sys_s / secs, "-"),
        ("probes sent per second", probes / secs, "-"),
        ("user CPU per probe (us)", 1e6 * user_s / probes if probes else float("nan"), "-"),
        ("RSS (MiB)", rss / 1024, f"<= {TARGET_RSS_MIB:.0f} at 1024 members"),
        ("peak RSS (MiB)", hwm / 1024, f"<= {TARGET_RSS_MIB:.0f} at 1024 members"),
        ("false failures", float(false_failures), "0"),
    ]
    if counts:
        st_probes = p2 - p1
        for name in FORBIDDEN:
            rows.append((f"{name}() per second while probing", counts.get(name, 0) / args.strace, "0"))
        rows.append(("syscalls per probe (under strace)",
                     sum(counts.values()) / st_probes if st_probes else float("nan"), "-"))
    if args.json:
        print(json.dumps({"groups": args.groups, "members": args.members, "fdt": args.fdt,
                          "window_s": secs, "syscalls": counts,
                          **{name: value for name, value, _ in rows}}))
    else:
        print(f"\nmpathd scale, {args.groups} groups x {args.members} members, probing ({args.method}) "
              f"at FDT {args.fdt}, {secs:.0f} s window")
        print(f"{'measure':42} {'value':>10}   target")
        for name, value, target in rows:
            print(f"{name:42} {value:>10.1f}   {target}")
        print("CPU is mpathd's own (/proc/PID/stat)." + (
            " Its system time includes the lab's packet path: a\nbroadcast ARP probe is "
            "flooded by the bridge to every port in the sender's context."
            if args.method != "icmp" else ""))
        if counts:
            top = sorted(counts.items(), key=lambda kv: -kv[1])[:8]
            print("syscalls under strace (calls in " + f"{args.strace:.0f} s): " +
                  ", ".join(f"{k} {v}" for k, v in top))
    print(f"total run time {time.monotonic() - t_begin:.1f} s", file=sys.stderr)
    ok = false_failures == 0 and all(counts.get(f, 0) == 0 for f in FORBIDDEN)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
