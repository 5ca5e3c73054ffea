"""The lab itself, without mpathd: an address placed by hand on one member is reachable
from the client, a link failure cuts it, and the lab leaves nothing behind."""

from __future__ import annotations

import subprocess

import pytest

from lab.lab import (CLIENT4, CLIENT6, ROUTER_LAN4, ROUTER_LAN6, Lab, root_snapshot,
                     snapshot_diff, wait_until)

V4 = "198.18.1.10"
V6 = "2001:db8:1::10"


def place_by_hand(lab: Lab, dev: str) -> None:
    h = lab.host
    for i in range(lab.n):  # what mpathd does against ARP flux, here by hand
        lab.sh(h, "sh", "-c", f"echo 1 > /proc/sys/net/ipv4/conf/m{i}/arp_ignore")
    lab.sh(h, "ip", "addr", "add", f"{V4}/24", "dev", dev)
    lab.sh(h, "ip", "addr", "add", f"{V6}/64", "dev", dev, "nodad")
    lab.sh(h, "ip", "route", "add", "default", "via", ROUTER_LAN4, "dev", dev)
    lab.sh(h, "ip", "-6", "route", "add", "default", "via", ROUTER_LAN6, "dev", dev)


def test_topology(lab):
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for ns in lab.namespaces:
        assert ns in names
    # Members are up, have no global addresses, and do not accept RAs.
    for i in range(lab.n):
        assert lab.link_info(lab.host, f"m{i}")["operstate"] == "UP"
        assert [a for a in lab.host_addrs(f"m{i}") if a["scope"] == "global"] == []
        assert lab.member_sysctl(i, "accept_ra") == "0"
    assert len({lab.member_mac(i) for i in range(lab.n)}) == lab.n
    # The router reaches the client and vice versa.
    assert lab.ping(lab.cl, ROUTER_LAN4)
    assert lab.ping(lab.cl, ROUTER_LAN6)


def test_hand_placed_address_reachable(lab):
    place_by_hand(lab, "m1")
    assert lab.holder_of(V4) == "m1" and lab.holder_of(V6) == "m1"
    wait_until(lambda: lab.client_reaches(V4), 10, "client reaches the IPv4 address")
    wait_until(lambda: lab.client_reaches(V6), 10, "client reaches the IPv6 address")
    assert lab.router_neigh(V4) == lab.member_mac(1)
    assert lab.router_neigh(V6) == lab.member_mac(1)
    assert lab.route_get(CLIENT4, V4)["dev"] == "m1"
    assert lab.route_get(CLIENT6, V6)["dev"] == "m1"


def test_failures_cut_traffic(lab):
    place_by_hand(lab, "m0")
    wait_until(lambda: lab.client_reaches(V4), 10, "client reaches the address")
    lab.link_down(0)
    wait_until(lambda: lab.link_info(lab.host, "m0")["operstate"] != "UP", 5, "m0 carrier loss")
    assert not lab.client_reaches(V4)
    lab.link_up(0)
    wait_until(lambda: lab.client_reaches(V4), 10, "client reaches the address after link up")
    lab.silent_fail(0)
    assert lab.link_info(lab.host, "m0")["operstate"] == "UP"  # carrier stays up
    assert not lab.client_reaches(V4)
    lab.silent_restore(0)
    wait_until(lambda: lab.client_reaches(V4), 10, "client reaches the address after restore")


def test_flowtool_through_lab(lab, need_flowtool):
    place_by_hand(lab, "m2")
    wait_until(lambda: lab.client_reaches(V4) and lab.client_reaches(V6), 10, "reachability")
    _, port = lab.start_server()
    for addr in (V4, V6):
        udp = lab.start_flow("udp", addr, port, duration=1.0, rate=500)
        tcp = lab.start_flow("tcp", addr, port, duration=1.0, interval_ms=20)
        u, t = udp.result(), tcp.result()
        assert u["sent"] > 300 and u["lost"] <= 2 and u["longest_outage_ms"] < 200, u
        assert t["connected"] and not t["broken"] and t["errors"] == 0 and t["echoed"] > 20, t


def test_lab_cleans_up():
    before = root_snapshot()
    with Lab(members=2) as lab:
        prefix = lab.prefix
        tmp = lab.tmp
        place_by_hand(lab, "m0")
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix not in names
    assert not tmp.exists()
    diff = snapshot_diff(before, root_snapshot())
    assert not diff, diff


def test_lab_cleans_up_on_error():
    with pytest.raises(RuntimeError):
        with Lab(members=1) as lab:
            prefix = lab.prefix
            raise RuntimeError("boom")
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert prefix not in names


def test_bridge_per_group():
    """Lab(group_size=K) (bench/scale.py): one bridge per K members, each with a router
    port of its own, and the router answers ARP for its LAN address in every one (from
    that port: each group sees its own router MAC)."""
    with Lab(members=4, group_size=2) as lab:
        assert lab.bridges() == 2 and [lab.bridge_of(i) for i in range(4)] == ["br0", "br0", "br1", "br1"]
        ports = {br: sorted(l["ifname"] for l in lab.ip_json(lab.sw, "link", "show", "master", br))
                 for br in ("br0", "br1")}
        assert ports == {"br0": ["p0", "p1", "pr"], "br1": ["p2", "p3", "pr1"]}
        macs = {}
        for i in (1, 2):
            # DAD mode (sender 0.0.0.0, as mpathd's probes): exit status 1 = answered.
            cp = lab.ns_exec(lab.host, "arping", "-D", "-c", "2", "-w", "3", "-I", f"m{i}", ROUTER_LAN4)
            assert cp.returncode == 1 and "Received 1 response" in cp.stdout, cp.stdout
            macs[i] = cp.stdout.split("[", 1)[1].split("]", 1)[0].lower()
        assert macs[1] == lab.link_info(lab.rt, "eth0")["address"]
        assert macs[2] == lab.link_info(lab.rt, "lan1")["address"]
        # The client path through eth0 is unchanged.
        assert lab.ping(lab.cl, ROUTER_LAN4)
        lab.silent_fail(3)
        lab.silent_restore(3)
        assert lab.sh(lab.sw, "ip", "-j", "link", "show", "p3").count('"master":"br1"') == 1
