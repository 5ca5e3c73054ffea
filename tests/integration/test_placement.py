"""Initial placement: data addresses on active members round-robin in member order, a
standby starts INACTIVE, members get the ARP-flux sysctls, traffic from a data address
leaves through its holder."""

from __future__ import annotations

from lab.lab import wait_until
from mpathd_helpers import CLIENT, DATA, START_TIMEOUT, start_group


def test_initial_placement(lab, need_mpathd):
    d = start_group(lab)
    s = d.wait_status(lambda s: s["groups"][0]["state"] == "ok", START_TIMEOUT, "group ok")
    g = d.group("g0", s)
    assert g["interface"] == "ipmp0"
    assert [m["name"] for m in g["members"]] == ["m0", "m1", "m2"]

    m0, m1, m2 = (d.member(n, s) for n in ("m0", "m1", "m2"))
    for m in (m0, m1):
        assert m["state"] == "ok" and m["active"] is True and m["inactive"] is False, m
        assert m["link"] == "up" and "RUNNING" in m["flags"], m
    assert m2["state"] == "ok" and m2["standby"] is True, m2
    assert m2["active"] is False and m2["inactive"] is True, m2
    assert "STANDBY" in m2["flags"] and "INACTIVE" in m2["flags"], m2

    # Round-robin over the non-standby members in member order, each address family on
    # its own (the engine balances per family); holder == home at start.
    active = ["m0", "m1"]
    for i, addr in enumerate(("198.18.1.10/24", "2001:db8:1::10/64")):
        a = d.address(addr, s)
        assert a["home"] == active[0], a
        assert a["holder"] == a["home"], a
        assert lab.holders(addr) == [a["holder"]], lab.describe()
    assert all(a["dev"] != "m2" or a["scope"] == "link" for a in lab.host_addrs()), \
        "the standby must carry no data address"
    for a in lab.host_addrs():
        if a["address"] == DATA["ipv6"]:
            assert "tentative" not in a["flags"] and "dadfailed" not in a["flags"], a


def test_round_robin_per_family(lab, need_mpathd):
    addrs = ["198.18.1.10/24", "198.18.1.11/24", "198.18.1.12/24",
             "2001:db8:1::10/64", "2001:db8:1::11/64", "2001:db8:1::12/64"]
    d = start_group(lab, data_addresses=addrs)
    s = d.status()
    homes = [d.address(a, s)["home"] for a in addrs]
    assert homes == ["m0", "m1", "m0", "m0", "m1", "m0"], homes
    for a in addrs:
        assert lab.holders(a) == [d.address(a, s)["holder"]] == [d.address(a, s)["home"]]


def test_reachable_and_routed_via_holder(lab, need_mpathd):
    d = start_group(lab)
    for fam, addr in DATA.items():
        holder = d.address(addr)["holder"]
        wait_until(lambda a=addr: lab.client_reaches(a), 10, f"client reaches {addr}")
        r = lab.route_get(CLIENT[fam], addr)
        assert r.get("dev") == holder, (fam, r, lab.describe())
        # The router learnt the holder's MAC (no ARP flux from the other members).
        assert lab.router_neigh(addr) == lab.member_mac(int(holder[1:])), lab.describe()


def test_member_sysctls(lab, need_mpathd):
    start_group(lab)
    for i in range(lab.n):
        got = {k: lab.member_sysctl(i, k) for k in ("arp_ignore", "arp_announce", "rp_filter")}
        assert got == {"arp_ignore": "1", "arp_announce": "2", "rp_filter": "2"}, (f"m{i}", got)
