"""Interface renames. The kernel keeps an interface's index when it is renamed;
mpathd follows interfaces by index and members by name (the configuration names
them): a member whose interface is renamed away leaves service as if the interface
had been removed, and an interface renamed to a member's name joins as if it had been
created, both with reason interface-renamed and a log line naming old and new name.
Nothing stays behind under a vanished name: no test or data address on the renamed
interface, no index or hardware address on the member, its ARP settings restored."""

from __future__ import annotations

import re

from lab.lab import wait_until
from mpathd_helpers import MOVE_TIMEOUT, START_TIMEOUT, V4, V6, member_is, start_group

TEST_ADDRESSES = {"m0": "198.18.1.101/24", "m1": "198.18.1.102/24"}
MEMBERS = [{"name": n, "test_addresses": [a]} for n, a in TEST_ADDRESSES.items()]


def rename(lab, old: str, new: str) -> None:
    # A veth must be down to be renamed, as most interfaces must.
    lab.sh(lab.host, "ip", "link", "set", old, "down")
    lab.sh(lab.host, "ip", "link", "set", old, "name", new)
    lab.sh(lab.host, "ip", "link", "set", new, "up")


def link(lab, dev: str) -> dict:
    return lab.link_info(lab.host, dev)


def addrs_on(lab, dev: str) -> set[str]:
    return {f"{a['address']}/{a['prefixlen']}" for a in lab.host_addrs(dev)
            if a.get("scope") != "link"}


def sysctl(lab, dev: str, key: str) -> str:
    return lab.sh(lab.host, "cat", f"/proc/sys/net/ipv4/conf/{dev}/{key}").strip()


def test_rename_member_away_and_non_member_in(lab, need_mpathd):
    d = start_group(lab, MEMBERS, failure_detection_time="1s")
    d.wait_status(lambda s: all(d.member(n, s)["state"] == "ok" for n in TEST_ADDRESSES),
                  START_TIMEOUT, "m0 and m1 ok")
    index = {f"m{i}": link(lab, f"m{i}")["ifindex"] for i in range(3)}
    mac2 = link(lab, "m2")["address"]
    assert sysctl(lab, "m1", "arp_ignore") == "1"

    # 1. The member m1 is renamed to x1: m1 has no interface any more.
    rename(lab, "m1", "x1")
    s = d.wait_status(member_is(d, "m1", state="unknown", reason="interface-renamed", probe="disabled"),
                      MOVE_TIMEOUT, "m1 gone by rename, its probing stopped")
    m1 = d.member("m1", s)
    assert m1["ifindex"] == 0 and m1["link"] == "unknown" and not m1["active"], m1
    assert m1["mac"] != link(lab, "x1")["address"], m1
    assert d.group("g0", s)["state"] == "degraded"
    for addr in (V4, V6):
        wait_until(lambda a=addr: lab.holders(a) == ["m0"] and d.address(a)["holder"] == "m0",
                   MOVE_TIMEOUT, f"{addr} on m0 only")
    # Nothing of mpathd's stays on the renamed interface.
    wait_until(lambda: addrs_on(lab, "x1") == set(), MOVE_TIMEOUT, "x1 without mpathd's addresses")
    wait_until(lambda: sysctl(lab, "x1", "arp_ignore") == "0" and sysctl(lab, "x1", "arp_announce") == "0",
               MOVE_TIMEOUT, "x1's ARP settings restored")
    wait_until(lambda: "interface m1 (index %d) renamed to x1" % index["m1"] in d.log(),
               MOVE_TIMEOUT, "the rename in the log")

    # 2. The non-member m2 is renamed to m1: it joins as member m1.
    rename(lab, "m2", "m1")
    s = d.wait_status(member_is(d, "m1", state="ok", ifindex=index["m2"]),
                      MOVE_TIMEOUT + 5, "m1 back by rename")
    # It joined by the rename (the link came up only afterwards).
    assert re.search(r"g0/m1: unknown -> \w+ .*\(interface-renamed\)", d.log()), d.log()[-3000:]
    m1 = d.member("m1", s)
    assert m1["ifindex"] == index["m2"] and m1["mac"] == mac2 and m1["link"] == "up", m1
    assert not any(m["hwaddr_dup"] for m in d.group("g0", s)["members"]), d.group("g0", s)
    # Its test address is on the interface that is m1 now, and nowhere else.
    wait_until(lambda: TEST_ADDRESSES["m1"] in addrs_on(lab, "m1"), MOVE_TIMEOUT,
               "m1's test address on the new m1")
    assert TEST_ADDRESSES["m1"] not in addrs_on(lab, "x1")
    wait_until(lambda: sysctl(lab, "m1", "arp_ignore") == "1", MOVE_TIMEOUT, "the new m1's ARP settings")
    d.wait_status(lambda s: d.group("g0", s)["state"] == "ok", START_TIMEOUT, "group ok again")
    # Every data address on exactly one member that exists under that name.
    for addr in (V4, V6):
        holders = lab.holders(addr)
        assert len(holders) == 1 and holders[0] in ("m0", "m1"), (addr, holders)
        assert d.address(addr)["holder"] == holders[0]
    assert "renamed to m1; it joins group g0 as member m1" in d.log()
    assert d.running()
