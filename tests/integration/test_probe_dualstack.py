"""Dual-stack members (issue 13 item 3; in.mpathd's "both families must fail"): members
with an IPv4 and an IPv6 test address are probed by ICMP from the IPv4 one and by
ICMPv6 from their link-local (static targets: the router's 198.18.1.1 and fe80::1).

- Dropping only the member's ICMPv6 at the switch (nftables, both ways) fails its IPv6
  probes, which status.json shows (probe_families.ipv6 "failed") and the log reports,
  but not the member: it stays ok and keeps its data address.
- Dropping its ICMP (IPv4) too fails it (reason probe-loss) within a generous bound of
  the FDT and the address moves away.
- Letting ICMPv6 through again repairs it by IPv6 alone (IPv4 still failed), then
  IPv4 comes back too.

Real daemon, real packets through the lab's bridge; timings are generous bounds.
"""

from __future__ import annotations

import time

from lab.lab import ROUTER_LAN4, wait_until
from mpathd_helpers import MOVE_TIMEOUT, START_TIMEOUT, V4, idx, member_is, start_group, wait_moved_away

ROUTER_LL = "fe80::1"
FDT = 1.0
DETECT_BOUND = 3 * FDT + 2     # expected FDT + FDT/7
REPAIR_BOUND = 2 * FDT + 3     # expected ~10/7 FDT
MEMBERS = [{"name": f"m{i}", "test_addresses": [f"198.18.1.10{i + 1}/24", f"2001:db8:1::10{i + 1}/64"]}
           for i in range(3)]


def families(d, name, s=None):
    return d.member(name, s).get("probe_families")


def test_a_member_fails_only_when_both_families_fail(lab, need_mpathd):
    lab.router_add_address(f"{ROUTER_LL}/64")
    d = start_group(lab, MEMBERS, failure_detection_time="1s", probe_method="icmp",
                    targets=[ROUTER_LAN4, ROUTER_LL])
    names = [m["name"] for m in MEMBERS]
    d.wait_status(lambda s: all(d.member(n, s)["state"] == "ok" and
                                families(d, n, s) == {"ipv4": "ok", "ipv6": "ok"} for n in names),
                  START_TIMEOUT + 30, "every member ok on both families")
    s = d.status()
    for n in names:
        targets = sorted(t["address"] for t in d.member(n, s)["targets"])
        assert targets == sorted([ROUTER_LAN4, ROUTER_LL]), d.member(n, s)
    old = lab.holder_of(V4)
    i = idx(old)

    # IPv6 alone lost: the family fails, the member does not.
    v6_drop = lab.switch_drop(iif=i, oif="router", both_ways=True, protocols=["icmpv6"])
    d.wait_status(lambda s: families(d, old, s).get("ipv6") == "failed", DETECT_BOUND,
                  f"{old}'s IPv6 probes failed")
    d.hold_status(lambda s: d.member(old, s)["state"] == "ok" and d.member(old, s)["probe"] == "ok"
                  and families(d, old, s) == {"ipv4": "ok", "ipv6": "failed"}
                  and d.address(V4, s)["holder"] == old,
                  3 * FDT, f"{old} ok on IPv4 alone")
    assert lab.holders(V4) == [old]
    assert f"{old}: probes IPv4 ok, IPv6 failed; one family still answers" in d.log()
    assert lab.switch_drop_counts(v6_drop)["dropped"] > 0

    # IPv4 lost too: the member fails within the bound, the address moves.
    v4_drop = lab.switch_drop(iif=i, oif="router", both_ways=True, protocols=["icmp"])
    cut = time.monotonic()
    d.wait_status(member_is(d, old, state="failed", reason="probe-loss"), DETECT_BOUND,
                  f"{old} failed with both families lost")
    took = time.monotonic() - cut
    assert families(d, old) == {"ipv4": "failed", "ipv6": "failed"}
    wait_moved_away(lab, d, V4, old)
    print(f"{old} failed {took * 1000:.0f} ms after its IPv4 probes were cut too (FDT {FDT * 1000:.0f} ms)")

    # IPv6 back: repaired by IPv6 alone while IPv4 is still lost.
    lab.switch_undrop(v6_drop)
    t_back = time.monotonic()
    d.wait_status(member_is(d, old, state="ok", probe="ok"), REPAIR_BOUND, f"{old} repaired by IPv6")
    print(f"{old} repaired {1000 * (time.monotonic() - t_back):.0f} ms after IPv6 came back")
    assert families(d, old) == {"ipv4": "failed", "ipv6": "ok"}

    # IPv4 back: both ok; the other members never failed.
    lab.switch_undrop(v4_drop)
    d.wait_status(lambda s: families(d, old, s) == {"ipv4": "ok", "ipv6": "ok"}, REPAIR_BOUND,
                  f"{old} ok on both families")
    s = d.status()
    for n in names:
        if n != old:
            assert d.member(n, s)["counters"]["failures"] == 0, d.member(n, s)
    wait_until(lambda: lab.holders(V4) and d.address(V4)["holder"], MOVE_TIMEOUT, f"{V4} placed")
