"""Shared helpers for the integration tests that run mpathd."""

from __future__ import annotations

from typing import Any

from lab.lab import CLIENT4, CLIENT6, Daemon, Lab, group_config, wait_until

V4 = "198.18.1.10"
V6 = "2001:db8:1::10"
DATA = {"ipv4": V4, "ipv6": V6}
CLIENT = {"ipv4": CLIENT4, "ipv6": CLIENT6}

# Generous bounds: the lab is fast, CI machines are not always.
START_TIMEOUT = 15.0
MOVE_TIMEOUT = 5.0       # "within a few seconds"
REPAIR_TIMEOUT = 30.0    # repair may wait for probes (FDT 10 s, 10 good probes)

# The brief's example group: m0, m1 and a standby m2.
EXAMPLE_MEMBERS = [{"name": "m0"}, {"name": "m1"}, {"name": "m2", "standby": True}]


def start_group(lab: Lab, members=None, daemon: dict[str, Any] | None = None, **kw) -> Daemon:
    """Starts mpathd with one group and waits until every data address is placed.
    daemon: more arguments of Lab.start_mpathd; kw: those of group_config."""
    members = members if members is not None else EXAMPLE_MEMBERS
    d = lab.start_mpathd(group_config(members, **kw), timeout=START_TIMEOUT, **(daemon or {}))
    d.wait_status(lambda s: all(a.get("holder") for a in s["groups"][0]["addresses"]),
                  START_TIMEOUT, "every data address placed")
    return d


def idx(member: str) -> int:
    return int(member.removeprefix("m"))


def holder_is(lab: Lab, d: Daemon, addr: str, member: str) -> bool:
    """The address is on exactly `member` in the kernel and in status.json."""
    return lab.holders(addr) == [member] and d.address(addr)["holder"] == member


def wait_moved_away(lab: Lab, d: Daemon, addr: str, old: str,
                    timeout: float = MOVE_TIMEOUT) -> str:
    """Waits until addr is on exactly one member other than `old` (kernel and status);
    returns the new holder."""
    def moved():
        devs = lab.holders(addr)
        if len(devs) == 1 and devs[0] != old and d.address(addr)["holder"] == devs[0]:
            return devs[0]
        return None
    return wait_until(moved, timeout, f"{addr} to move off {old}")


def member_is(d: Daemon, name: str, **want: Any):
    """A status predicate: member `name` has all the given field values."""
    def pred(s):
        m = d.member(name, s)
        return all(m.get(k) == v for k, v in want.items())
    return pred


def prime_neighbours(lab: Lab) -> None:
    """Client pings both data addresses so the router has neighbour entries to update."""
    for addr in DATA.values():
        wait_until(lambda a=addr: lab.client_reaches(a), 10, f"client reaches {addr}")
