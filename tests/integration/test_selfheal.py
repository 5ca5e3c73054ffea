"""The data plane heals itself (issue 8, item 1).

- Removing an IPv4 address that is the primary of its subnet on a member while another
  mpathd address of that subnet is a secondary there must not take the secondary with
  it (members get promote_secondaries=1), nor the routes through the member: with
  `ipmpctl move`, `ipmpctl address remove` and a reload that removes a test address.
  Afterwards the group's routes are in main and in the holders' tables, every member
  probes the router again, and the client reaches the data addresses.
- Whatever is removed behind mpathd's back (by hand here: a route in main or in a
  member's table, a "from <address>" rule, a data address, which makes the kernel flush
  the member's routes without telling anyone; or by the kernel's secondary flush where
  an administrator turned promotion off) is noticed and put back, and the probe
  targets (routers from the main table) come back with it.
- The routes of a member that was taken down and up again come back (the kernel
  flushed them silently), and what it refused meanwhile is not retried in a busy loop.

ipmpctl runs on a private system bus (the fixtures of test_ipmpctl).
"""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from lab.lab import ROUTER_LAN4, AddressMonitor, Daemon, group_config, tail, wait_until
from mpathd_helpers import MOVE_TIMEOUT, START_TIMEOUT, start_group
from test_ipmpctl import bus, ipmpctl, ipmpctl_bin, need_ipmpctl, ok, show_json  # noqa: F401 (fixtures)

A10, A11 = "198.18.1.10", "198.18.1.11"
HEAL_TIMEOUT = 10.0  # generous: the daemon restores within milliseconds when idle
MEMBERS = [{"name": "m0"}, {"name": "m1"}, {"name": "m2", "standby": True}]
TABLE_BASE = 40000  # routing-table-base's default


# ---------------------------------------------------------------- observations

def table_of(d, member: str) -> int:
    return TABLE_BASE + d.member(member)["ifindex"]


def defaults(lab, table: int | str) -> list[dict]:
    return [r for r in lab.ip_json(lab.host, "-4", "route", "show", "table", str(table))
            if r.get("dst") == "default"]


def has_default_via(lab, table: int | str, dev: str) -> bool:
    return any(r.get("gateway") == ROUTER_LAN4 and r.get("dev") == dev for r in defaults(lab, table))


def rule_tables(lab, addr: str) -> list[str]:
    """Tables of the rules "from <addr>/32" in the host namespace."""
    out = []
    for r in lab.ip_json(lab.host, "-4", "rule", "show"):
        if r.get("src") == addr and r.get("srclen", 32) == 32:
            out.append(str(r.get("table")))
    return out


def dataplane_problems(lab, d, addrs: list[str]) -> list[str]:
    """What is missing from the group's data plane (empty when all is in place): each
    address on exactly its holder, the rule into the holder's table, the default route
    in that table, and the default route in main via the holder of the first address."""
    problems = []
    s = d.status()
    holders = {}
    for a in addrs:
        want = d.address(a, s)["holder"]
        holders[a] = want
        if lab.holders(a) != [want]:
            problems.append(f"{a} on {lab.holders(a)}, status says {want}")
        if rule_tables(lab, a) != [str(table_of(d, want))]:
            problems.append(f"rule from {a}: tables {rule_tables(lab, a)}")
        if not has_default_via(lab, table_of(d, want), want):
            problems.append(f"no default via {want} in table {table_of(d, want)}")
    if not has_default_via(lab, "main", holders[addrs[0]]):
        problems.append(f"no default via {holders[addrs[0]]} in main: {defaults(lab, 'main')}")
    return problems


def wait_dataplane(lab, d, addrs: list[str], timeout: float = HEAL_TIMEOUT) -> None:
    last: list[list[str]] = [[]]

    def whole():
        last[0] = dataplane_problems(lab, d, addrs)
        return not last[0]
    try:
        wait_until(whole, timeout, "the group's addresses, rules and routes")
    except AssertionError as e:
        raise AssertionError(f"{e}\nstill missing: {last[0]}\n{lab.describe()}") from None


def targets_probed(d, s) -> bool:
    """Every member finds the router in the routing table again."""
    return all(m["target_mode"] == "routes" and
               ROUTER_LAN4 in [t["address"] for t in m["targets"]]
               for g in s["groups"] for m in g["members"])


def wait_targets(d, timeout: float = HEAL_TIMEOUT) -> None:
    d.wait_status(lambda s: targets_probed(d, s), timeout, "every member probing the router")


def probes_acked(count: int = 3) -> None:
    """`ipmpctl probes` sees acknowledged probes (a group that lost its targets sends
    none and this times out)."""
    try:
        cp = subprocess.run([ipmpctl_bin(), "probes", "--count", str(count), "-o", "json"],
                            capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError("no probes for 20 s") from None
    assert cp.returncode == 0, cp.stderr
    rows = [json.loads(l) for l in cp.stdout.splitlines() if l.strip()]
    assert any(r["acked"] for r in rows), rows


def is_secondary(lab, dev: str, addr: str) -> bool:
    for link in lab.ip_json(lab.host, "-4", "addr", "show", "dev", dev):
        for a in link.get("addr_info", []):
            if a.get("local") == addr:
                return bool(a.get("secondary"))
    raise AssertionError(f"{addr} not on {dev}")


def deleted(mon: AddressMonitor, addr: str) -> list[str]:
    mon.settle()
    return [e for e in mon.events(addr + "/") if e.startswith("Deleted")]


# ---------------------------------------------------------------- the secondary flush

def secondary_behind_primary(lab) -> Daemon:
    """The issue's set-up: 198.18.1.11 the primary of the subnet on m1 and 198.18.1.10 a
    secondary behind it, both mpathd's data addresses."""
    d = start_group(lab, MEMBERS, data_addresses=(f"{A10}/24",))
    wait_until(lambda: ipmpctl("show", "groups").returncode == 0, START_TIMEOUT,
               "mpathd to answer on the bus")
    ok("address", "add", "g0", f"{A11}/24")
    wait_until(lambda: len(lab.holders(A11)) == 1, MOVE_TIMEOUT, f"{A11} placed")
    for addr, to in ((A10, "m0"), (A11, "m1"), (A10, "m1")):
        ok("move", addr, to)
        wait_until(lambda a=addr, t=to: lab.holders(a) == [t], MOVE_TIMEOUT, f"{addr} on {to}")
    assert is_secondary(lab, "m1", A10) and not is_secondary(lab, "m1", A11), lab.describe()
    wait_dataplane(lab, d, [A10, A11])
    wait_targets(d)
    return d


def assert_healthy_after(lab, d, addrs: list[str], mon: AddressMonitor) -> None:
    assert deleted(mon, A10) == [], f"{A10} was removed from its member: {lab.describe()}"
    mon.stop()
    wait_dataplane(lab, d, addrs)
    wait_targets(d)
    # What the issue saw: `ipmpctl show targets` said disabled, no targets, every member.
    assert all(t["target_mode"] == "routes" and t["targets"] for t in show_json("targets")), \
        show_json("targets")
    probes_acked()
    for a in addrs:
        wait_until(lambda a=a: lab.client_reaches(a), HEAL_TIMEOUT, f"client reaches {a}")
    # Nothing had to be restored: mpathd's own changes are never mistaken for losses.
    assert "disappeared" not in d.log(), tail(d.log(), 40)


def test_move_of_the_primary_keeps_the_secondary_and_routes(lab, bus, need_mpathd, need_ipmpctl):
    d = secondary_behind_primary(lab)
    mon = AddressMonitor(lab)
    ok("move", A11, "m0")
    wait_until(lambda: lab.holders(A11) == ["m0"], MOVE_TIMEOUT, f"{A11} on m0")
    assert_healthy_after(lab, d, [A10, A11], mon)
    assert lab.holders(A10) == ["m1"]


def test_secondary_flush_heals_without_promotion(lab, bus, need_mpathd, need_ipmpctl):
    """An administrator turned promotion off again on m1: the kernel takes 198.18.1.10
    and every route through m1 along when 198.18.1.11 leaves, and mpathd puts all of
    it back."""
    d = secondary_behind_primary(lab)
    lab.sh(lab.host, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/conf/m1/promote_secondaries")
    mon = AddressMonitor(lab)
    ok("move", A11, "m0")
    wait_until(lambda: lab.holders(A11) == ["m0"], MOVE_TIMEOUT, f"{A11} on m0")
    assert deleted(mon, A10) != [], "the kernel kept the secondary: the test tests nothing"
    mon.stop()
    wait_dataplane(lab, d, [A10, A11])
    assert lab.holders(A10) == ["m1"]
    wait_targets(d)
    probes_acked()
    for a in (A10, A11):
        wait_until(lambda a=a: lab.client_reaches(a), HEAL_TIMEOUT, f"client reaches {a}")
    assert "disappeared; restoring it" in d.log()


def test_address_remove_of_the_primary_keeps_the_secondary_and_routes(lab, bus, need_mpathd,
                                                                     need_ipmpctl):
    d = secondary_behind_primary(lab)
    mon = AddressMonitor(lab)
    ok("address", "remove", "g0", A11)
    wait_until(lambda: lab.holders(A11) == [], MOVE_TIMEOUT, f"{A11} removed")
    assert_healthy_after(lab, d, [A10], mon)
    assert lab.holders(A10) == ["m1"]


def test_reload_removing_test_addresses_keeps_data_address_and_routes(lab, bus, need_mpathd,
                                                                       need_ipmpctl):
    with_tests = [{"name": "m0", "test_addresses": ["198.18.1.101/24"]},
                  {"name": "m1", "test_addresses": ["198.18.1.102/24"]},
                  {"name": "m2", "standby": True}]
    d = start_group(lab, with_tests, data_addresses=(f"{A10}/24",))
    holder = lab.holder_of(A10)
    assert is_secondary(lab, holder, A10), lab.describe()  # behind its test address
    wait_dataplane(lab, d, [A10])
    wait_targets(d)
    mon = AddressMonitor(lab)
    before = d.log().count("configuration reloaded")
    d.config_path.write_text(group_config(MEMBERS, data_addresses=(f"{A10}/24",)))
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: d.log().count("configuration reloaded") > before, START_TIMEOUT, "the reload")
    wait_until(lambda: lab.holders("198.18.1.101") == lab.holders("198.18.1.102") == [],
               MOVE_TIMEOUT, "the test addresses removed")
    assert_healthy_after(lab, d, [A10], mon)
    assert lab.holders(A10) == [holder]


def test_members_promote_secondaries(lab, need_mpathd):
    assert lab.member_sysctl(2, "promote_secondaries") == "0"  # the kernel's default
    d = start_group(lab, MEMBERS)
    for i in range(lab.n):
        assert lab.member_sysctl(i, "promote_secondaries") == "1", f"m{i}"
    # A member that leaves its group gets its own value back.
    before = d.log().count("configuration reloaded")
    d.config_path.write_text(group_config(MEMBERS[:2]))
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: d.log().count("configuration reloaded") > before, START_TIMEOUT, "the reload")
    wait_until(lambda: lab.member_sysctl(2, "promote_secondaries") == "0", MOVE_TIMEOUT,
               "m2's promote_secondaries restored")
    assert lab.member_sysctl(0, "promote_secondaries") == "1"
    assert "disappeared" not in d.log(), tail(d.log(), 40)


# ---------------------------------------------------------------- removed by hand

def remove_route_main(lab, d, holder):
    lab.sh(lab.host, "ip", "route", "del", "default", "via", ROUTER_LAN4, "table", "main")


def remove_route_member_table(lab, d, holder):
    lab.sh(lab.host, "ip", "route", "del", "default", "via", ROUTER_LAN4,
           "table", str(table_of(d, holder)))


def remove_rule(lab, d, holder):
    lab.sh(lab.host, "ip", "rule", "del", "from", A10, "lookup", str(table_of(d, holder)))


def remove_address(lab, d, holder):
    # The member's last IPv4 address: the kernel also flushes every IPv4 route through
    # it, and sends no notification for those.
    lab.sh(lab.host, "ip", "addr", "del", f"{A10}/24", "dev", holder)


@pytest.mark.parametrize("remove", [remove_route_main, remove_route_member_table, remove_rule,
                                    remove_address],
                         ids=["route-main", "route-member-table", "rule", "address"])
def test_removed_by_hand_is_restored(lab, need_mpathd, remove):
    d = start_group(lab, MEMBERS)
    wait_dataplane(lab, d, [A10])
    wait_targets(d)
    holder = lab.holder_of(A10)
    remove(lab, d, holder)
    wait_dataplane(lab, d, [A10])
    assert lab.holders(A10) == [holder]  # restored in place, not moved
    wait_targets(d)
    wait_until(lambda: lab.client_reaches(A10), HEAL_TIMEOUT, f"client reaches {A10}")
    assert d.running()


def test_singleton_member_down_and_up_gets_its_routes_back(lab, need_mpathd):
    """Taking the only member down flushes its IPv4 routes without a notification (the
    addresses stay: there is nowhere to move them); once it is up again they are back,
    and what the kernel refused meanwhile ("Network is down") was not retried in a
    busy loop."""
    d = start_group(lab, [{"name": "m0"}])
    wait_dataplane(lab, d, [A10])
    wait_targets(d)
    lab.sh(lab.host, "ip", "link", "set", "m0", "down")
    wait_until(lambda: not has_default_via(lab, "main", "m0"), MOVE_TIMEOUT, "the kernel's flush")
    d.wait_status(lambda s: d.member("m0", s)["link"] == "down", MOVE_TIMEOUT, "m0 down")
    lab.sh(lab.host, "ip", "link", "set", "m0", "up")
    wait_dataplane(lab, d, [A10], timeout=HEAL_TIMEOUT)
    wait_targets(d, timeout=30)
    wait_until(lambda: lab.client_reaches(A10), 30, f"client reaches {A10}")
    refused = d.log().count("Network is down")
    assert refused < 100, f"{refused} refused restores while m0 was down"
