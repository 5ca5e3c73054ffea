"""Link failure of the member holding a data address: the address moves within a few
seconds to another active member (exactly once), the router's neighbour entry follows,
outbound traffic leaves through the new holder, a client's UDP flow continues and an
open TCP connection survives. IPv4 and IPv6."""

from __future__ import annotations

import pytest

from lab.lab import wait_until
from mpathd_helpers import (CLIENT, DATA, MOVE_TIMEOUT, REPAIR_TIMEOUT, idx, member_is,
                            prime_neighbours, start_group, wait_moved_away)

FLOW_SECONDS = 8.0
MAX_UDP_OUTAGE_MS = 2000.0
MAX_TCP_GAP_MS = 3000.0


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_link_failure_moves_address(lab, need_mpathd, need_flowtool, family):
    addr = DATA[family]
    d = start_group(lab)
    prime_neighbours(lab)
    old = lab.holder_of(addr)
    assert old is not None
    assert lab.router_neigh(addr) == lab.member_mac(idx(old))

    _, port = lab.start_server()
    udp = lab.start_flow("udp", addr, port, duration=FLOW_SECONDS, rate=200)
    tcp = lab.start_flow("tcp", addr, port, duration=FLOW_SECONDS, interval_ms=50)
    udp.wait_flowing()
    tcp.wait_flowing()

    cut_at = udp.elapsed_ms()
    lab.link_down(idx(old))
    new = wait_moved_away(lab, d, addr, old)
    s = d.wait_status(member_is(d, old, state="failed"), MOVE_TIMEOUT, f"{old} failed")
    assert d.member(old, s)["reason"] == "link-down", d.member(old, s)
    assert "FAILED" in d.member(old, s)["flags"]
    assert d.member(new, s)["active"] is True, d.member(new, s)
    assert d.group("g0", s)["state"] == "degraded", d.group("g0", s)
    assert lab.holders(addr) == [new]

    # Neighbours are told (gratuitous ARP / unsolicited NA with override).
    wait_until(lambda: lab.router_neigh(addr) == lab.member_mac(idx(new)), MOVE_TIMEOUT,
               f"router neighbour entry of {addr} -> {new}'s MAC")
    # Traffic sourced from the data address leaves through the new holder.
    wait_until(lambda: lab.route_get(CLIENT[family], addr).get("dev") == new, MOVE_TIMEOUT,
               f"route get from {addr} via {new}")

    udp.wait_replies_after(cut_at + 1, MOVE_TIMEOUT, count=20)
    tcp.wait_replies_after(cut_at + 1, MOVE_TIMEOUT + MAX_TCP_GAP_MS / 1000, count=2)
    u = udp.result()
    t = tcp.result()
    assert u["received"] > 0 and u["longest_outage_ms"] < MAX_UDP_OUTAGE_MS, u
    assert t["connected"] and not t["broken"] and t["errors"] == 0, t
    assert t["longest_gap_ms"] < MAX_TCP_GAP_MS, t

    # Repair: the member comes back (where its address goes is test_standby's business).
    lab.link_up(idx(old))
    d.wait_status(member_is(d, old, state="ok", link="up"), REPAIR_TIMEOUT, f"{old} repaired")
    wait_until(lambda: len(lab.holders(addr)) == 1, MOVE_TIMEOUT, f"{addr} exactly once")


def test_failure_of_non_holder_moves_nothing(lab, need_mpathd):
    d = start_group(lab, members=["m0", "m1", "m2"], data_addresses=["198.18.1.10/24"])
    old = lab.holder_of(DATA["ipv4"])
    other = next(m for m in ("m0", "m1", "m2") if m != old)
    lab.link_down(idx(other))
    d.wait_status(member_is(d, other, state="failed"), MOVE_TIMEOUT, f"{other} failed")
    assert lab.holders(DATA["ipv4"]) == [old]
    assert d.address(DATA["ipv4"])["holder"] == old


def test_all_members_fail_is_group_failure(lab, need_mpathd):
    d = start_group(lab, members=["m0", "m1", "m2"])
    for i in range(lab.n):
        lab.link_down(i)
    s = d.wait_status(lambda s: s["groups"][0]["state"] == "failed", MOVE_TIMEOUT,
                      "group failed")
    for name in ("m0", "m1", "m2"):
        assert d.member(name, s)["state"] == "failed", d.member(name, s)
    for addr in DATA.values():  # never on two members, whatever the policy does with it
        assert len(lab.holders(addr)) <= 1, lab.describe()
    lab.link_up(1)
    d.wait_status(lambda s: s["groups"][0]["state"] in ("ok", "degraded") and
                  d.member("m1", s)["state"] == "ok", REPAIR_TIMEOUT, "m1 repaired")
    for addr in DATA.values():
        wait_until(lambda a=addr: lab.holders(a) == ["m1"], MOVE_TIMEOUT,
                   f"{addr} on the only usable member m1")
