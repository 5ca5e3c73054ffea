"""Probe-based failure detection (issue 3): failures the link state cannot see.

- A silent failure (the switch port leaves the bridge, carrier stays up) of the member
  holding a data address fails it (reason probe-loss) within a generous bound of the
  failure detection time (FDT; the expected time is FDT + one probe interval) and the
  address moves: at FDT 1 s and 100 ms, with ICMP from test addresses, with ARP probing
  and no test address at all, and in an IPv6-only group (ICMPv6 from link-locals).
- One-way loss (an nftables rule in the switch, each direction) does the same.
- A target that alone stops answering fails no member (and is dropped from the list).
- All members losing their probes together is a group failure: every member failed
  (reason group-failure), the group failed, no address moves; each member repairs by
  itself once probes come back.
- Repair needs 10 good probes, also after the link comes back; then FAILBACK applies.
- The targets are visible (status.json or `ipmpctl show targets -o json`).

Timings are asserted as generous bounds only; bench/failover.py measures them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest

from lab.bus import Bus
from lab.lab import ROUTER_LAN4, ROUTER_LAN6, WaitTimeout, binary, wait_until
from mpathd_helpers import (CLIENT, MOVE_TIMEOUT, START_TIMEOUT, V4, V6, idx,
                            member_is, prime_neighbours, start_group, wait_moved_away)

TEST_ADDRESSES = {"m0": "198.18.1.101/24", "m1": "198.18.1.102/24", "m2": "198.18.1.103/24"}
SECOND_TARGET = "198.18.1.2"
ROUTER_LL = "fe80::1"

FDT_SECONDS = {"10s": 10.0, "1s": 1.0, "100ms": 0.1}
DETECT_FACTOR = 3.0   # detection bound: 3 x FDT (expected: FDT + FDT/7)
REPAIR_FACTOR = 2.0   # repair bound: 2 x FDT + REPAIR_MARGIN (expected: ~10/7 x FDT)
REPAIR_MARGIN = 1.0
FINE_STEP = 0.005     # status.json polling step when a time is measured


def probed(names, test_addresses: bool = True, standby=()) -> list[dict]:
    return [{"name": n, "standby": n in standby,
             "test_addresses": [TEST_ADDRESSES[n]] if test_addresses else []} for n in names]


def start_probed(lab, members, fdt: str = "1s", **kw):
    """mpathd with one probed group; waits until every member is ok by its probes."""
    d = start_group(lab, members, failure_detection_time=fdt, **kw)
    names = [m["name"] for m in members]
    d.wait_status(lambda s: all(d.member(n, s)["state"] == "ok" and
                                d.member(n, s)["probe"] == "ok" for n in names),
                  START_TIMEOUT + 3 * FDT_SECONDS[fdt], "every member ok by its probes")
    return d


def timed_wait(d, pred, timeout: float, what: str):
    """Polls status.json finely until pred; returns (status, time of the sample)."""
    def check():
        if not d.running():
            raise AssertionError(f"mpathd exited ({d.popen.returncode}) waiting for {what}")
        s = d.status()
        return s if s is not None and pred(s) else None
    s = wait_until(check, timeout, what, step=FINE_STEP)
    return s, time.monotonic()


def cut_and_detect(lab, d, member: str, cut, fdt: float, reason: str = "probe-loss"):
    """Makes the failure with cut(), waits until `member` is failed and checks the reason
    and the bound. The time counts from the moment cut() returned (the failure is in
    effect by then). Returns the status at detection."""
    cut()
    t_cut = time.monotonic()
    s, t = timed_wait(d, member_is(d, member, state="failed"), DETECT_FACTOR * fdt + 10,
                      f"{member} failed")
    m = d.member(member, s)
    print(f"{member} failed {1000 * (t - t_cut):.0f} ms after the cut (FDT {fdt * 1000:.0f} ms, "
          f"bound {DETECT_FACTOR * fdt * 1000:.0f} ms)")
    assert m["reason"] == reason, m
    assert "FAILED" in m["flags"], m
    assert m["link"] == "up", m  # carrier stayed up: only probes could tell
    assert t - t_cut <= DETECT_FACTOR * fdt, \
        f"{member} failed {t - t_cut:.3f}s after the cut, bound {DETECT_FACTOR * fdt:.3f}s"
    return s


def wait_repaired(d, member: str, fdt: float, t_restore: float):
    s, t = timed_wait(d, member_is(d, member, state="ok", probe="ok"),
                      REPAIR_FACTOR * fdt + REPAIR_MARGIN + 10, f"{member} repaired")
    print(f"{member} repaired {1000 * (t - t_restore):.0f} ms after the restore")
    assert t - t_restore <= REPAIR_FACTOR * fdt + REPAIR_MARGIN, \
        f"{member} repaired {t - t_restore:.3f}s after the restore, bound " \
        f"{REPAIR_FACTOR * fdt + REPAIR_MARGIN:.3f}s"
    return s, t - t_restore


def addresses_of(d, member: str, s) -> list[str]:
    return [a["address"].split("/")[0] for a in d.group("g0", s)["addresses"]
            if a["holder"] == member]


def placement(lab, d) -> dict:
    """Where every data address is, in the kernel and in status.json."""
    s = d.status()
    return {a["address"].split("/")[0]: (tuple(lab.holders(a["address"])), a["holder"])
            for a in d.group("g0", s)["addresses"]}


def moves_counted(d, s=None) -> int:
    s = s or d.status()
    return sum(m["counters"]["addresses_in"] + m["counters"]["addresses_out"]
               for m in d.group("g0", s)["members"])


def no_probe_loss_in_log(d) -> None:
    lines = [ln for ln in d.log().splitlines() if "probe-loss" in ln]
    assert not lines, "unexpected probe-loss in the log:\n" + "\n".join(lines[:20])


# ---------------------------------------------------------------- target visibility

def ipmpctl_bin() -> str:
    return binary("IPMPCTL_BIN", "build/ipmpctl/ipmpctl")


@pytest.fixture
def maybe_bus(monkeypatch):
    """A private system bus when ipmpctl and dbus-daemon are there (else None), so that
    the targets can be read with `ipmpctl show targets -o json`."""
    if not os.access(ipmpctl_bin(), os.X_OK) or shutil.which("dbus-daemon") is None:
        yield None
        return
    b = Bus()
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", b.address)
    try:
        yield b
    finally:
        b.close()


def _addr(t) -> str:
    return (t.get("address") if isinstance(t, dict) else t).split("/")[0]


def target_views(d, bus) -> dict[str, dict[str, tuple[str, list[str]]]]:
    """The targets as each available source shows them: {"status.json": ..., "ipmpctl":
    ...}, each {member: (target mode, [targets])}. status.json counts when its members
    have a "targets" field; ipmpctl when a bus (and ipmpctl) is there."""
    views = {}
    s = d.status() or {}
    members = [m for g in s.get("groups", []) for m in g.get("members", [])]
    if members and all("targets" in m for m in members):
        views["status.json"] = {m["name"]: (m.get("target_mode"),
                                            [_addr(x) for x in m["targets"]])
                                for m in members}
    if bus is not None:
        def answer():
            cp = subprocess.run([ipmpctl_bin(), "show", "targets", "-o", "json"],
                                capture_output=True, text=True, timeout=30)
            return cp if cp.returncode == 0 else None
        cp = wait_until(answer, START_TIMEOUT, "ipmpctl show targets")
        views["ipmpctl"] = {t["name"]: (t.get("target_mode"),
                                        [_addr(x) for x in t.get("targets", [])])
                            for t in json.loads(cp.stdout)}
    return views


# ---------------------------------------------------------------- silent failure

@pytest.mark.parametrize("fdt", ["1s", "100ms"])
def test_silent_failure_moves_address(lab, need_mpathd, fdt):
    f = FDT_SECONDS[fdt]
    d = start_probed(lab, probed(["m0", "m1", "m2"]), fdt)
    prime_neighbours(lab)
    old = lab.holder_of(V4)
    moving = addresses_of(d, old, d.status())

    s = cut_and_detect(lab, d, old, lambda: lab.silent_fail(idx(old)), f)
    assert d.member(old, s)["probe"] == "failed", d.member(old, s)
    new = wait_moved_away(lab, d, V4, old)
    for a in moving:
        wait_moved_away(lab, d, a, old)
    s = d.wait_status(lambda s: d.group("g0", s)["state"] == "degraded", MOVE_TIMEOUT,
                      "group degraded")
    for m in ("m0", "m1", "m2"):
        if m != old:
            assert d.member(m, s)["state"] == "ok", d.member(m, s)

    # The address works from its new holder: neighbours told, outbound via it, reachable.
    wait_until(lambda: lab.router_neigh(V4) == lab.member_mac(idx(new)), MOVE_TIMEOUT,
               f"router neighbour entry of {V4} -> {new}'s MAC")
    wait_until(lambda: lab.route_get(CLIENT["ipv4"], V4).get("dev") == new, MOVE_TIMEOUT,
               f"route get from {V4} via {new}")
    wait_until(lambda: lab.client_reaches(V4), MOVE_TIMEOUT, f"client reaches {V4}")


@pytest.mark.parametrize("direction", ["to-router", "from-router"])
def test_one_way_loss_moves_address(lab, need_mpathd, direction):
    f = FDT_SECONDS["1s"]
    d = start_probed(lab, probed(["m0", "m1", "m2"]), "1s")
    old = lab.holder_of(V4)
    ways = {"to-router": (idx(old), "router"), "from-router": ("router", idx(old))}[direction]
    table = None

    def cut():
        nonlocal table
        table = lab.switch_drop(iif=ways[0], oif=ways[1])
    cut_and_detect(lab, d, old, cut, f)
    wait_moved_away(lab, d, V4, old)
    assert lab.switch_drop_counts(table)["dropped"] > 0

    lab.switch_undrop(table)
    wait_repaired(d, old, f, time.monotonic())


# ---------------------------------------------------------------- repair and failback

@pytest.mark.parametrize("failback", [True, False], ids=["failback", "no-failback"])
def test_repair_after_silent_failure(lab, need_mpathd, failback):
    f = FDT_SECONDS["1s"]
    d = start_probed(lab, probed(["m0", "m1", "m2"], standby=("m2",)), "1s",
                     failback=failback)
    assert lab.holders(V4) == ["m0"] and d.address(V4)["home"] == "m0", lab.describe()

    cut_and_detect(lab, d, "m0", lambda: lab.silent_fail(0), f)
    d.wait_status(member_is(d, "m2", active=True, inactive=False), MOVE_TIMEOUT,
                  "standby m2 activated")
    new = wait_moved_away(lab, d, V4, "m0")

    lab.silent_restore(0)
    s, _ = wait_repaired(d, "m0", f, time.monotonic())
    m0 = d.member("m0", s)
    assert m0["reason"] in (("repaired", "failback") if failback else ("repaired",)), m0
    assert m0["link"] == "up" and "FAILED" not in m0["flags"], m0
    if failback:
        d.wait_status(lambda s: member_is(d, "m0", active=True, inactive=False)(s) and
                      member_is(d, "m2", active=False, inactive=True)(s), MOVE_TIMEOUT,
                      "m0 active again, m2 inactive again")
        wait_until(lambda: lab.holders(V4) == ["m0"] and d.address(V4)["holder"] == "m0",
                   MOVE_TIMEOUT, f"{V4} back home on m0")
    else:
        s = d.wait_status(member_is(d, "m0", active=False, inactive=True), MOVE_TIMEOUT,
                          "m0 INACTIVE")
        assert "INACTIVE" in d.member("m0", s)["flags"], d.member("m0", s)
        # ... and the address stays where it is (a bounded look).
        d.hold_status(lambda s: d.address(V4, s)["holder"] == new, 2 * f,
                      f"{V4} staying on {new}")
        assert lab.holders(V4) == [new], lab.describe()


def test_link_up_alone_does_not_repair(lab, need_mpathd):
    """The link coming back is not enough: 10 good probes are (at least 8.5 intervals;
    a generous lower bound of 5 intervals is asserted)."""
    f = FDT_SECONDS["1s"]
    d = start_probed(lab, probed(["m0", "m1", "m2"]), "1s", failback=False)
    lab.link_down(0)
    d.wait_status(member_is(d, "m0", state="failed", link="down"), MOVE_TIMEOUT,
                  "m0 failed by its link")
    lab.link_up(0)
    t_up = time.monotonic()
    s, elapsed = wait_repaired(d, "m0", f, t_up)
    assert d.member("m0", s)["reason"] == "repaired", d.member("m0", s)
    assert elapsed >= 5 * f / 7, \
        f"m0 repaired {elapsed:.3f}s after its link came back: faster than 10 probes allow"


# ---------------------------------------------------------------- targets

@pytest.mark.parametrize("removed", [SECOND_TARGET, ROUTER_LAN4])
def test_target_failure_fails_no_member(lab, need_mpathd, maybe_bus, removed):
    f = FDT_SECONDS["1s"]
    lab.router_add_address(f"{SECOND_TARGET}/24")
    targets = [ROUTER_LAN4, SECOND_TARGET]
    d = start_probed(lab, probed(["m0", "m1", "m2"]), "1s", targets=targets)
    before = placement(lab, d)
    views = target_views(d, maybe_bus)
    for view in views.values():
        for name, (_, ts) in view.items():
            assert set(ts) == set(targets), views

    lab.router_del_address(f"{removed}/24")
    # Every member stays ok by its probes for 5 x FDT (the dead target is found by its
    # own losses while the other target keeps answering).
    d.hold_status(lambda s: all(m["state"] == "ok" and m["probe"] == "ok"
                                for m in d.group("g0", s)["members"]),
                  5 * f, "every member ok while one target is gone", step=0.05)
    s = d.status()
    assert all(m["counters"]["failures"] == 0 for m in d.group("g0", s)["members"]), s
    assert placement(lab, d) == before
    no_probe_loss_in_log(d)
    remaining = [t for t in targets if t != removed]
    try:
        wait_until(lambda: all(ts == remaining for view in target_views(d, maybe_bus).values()
                               for _, ts in view.values()),
                   5 * f, f"{removed} dropped from every member's targets")
    except WaitTimeout as e:
        raise AssertionError(f"{e}\ntargets as shown: {target_views(d, maybe_bus)}") from None


@pytest.mark.parametrize("mode", ["static", "routes"])
def test_targets_are_listed(lab, need_mpathd, maybe_bus, mode):
    members = probed(["m0", "m1"]) + probed(["m2"], test_addresses=False)  # m2: ARP
    kw = {"targets": [ROUTER_LAN4]} if mode == "static" else {}
    d = start_probed(lab, members, "1s", **kw)
    views = target_views(d, maybe_bus)
    if not views:
        pytest.skip("targets not visible: status.json has no targets and ipmpctl "
                    f"({ipmpctl_bin()}) or dbus-daemon is missing")
    print(f"targets read from {', '.join(views)}")
    for view in views.values():
        for name in ("m0", "m1", "m2"):
            assert view[name] == (mode, [ROUTER_LAN4]), views


# ---------------------------------------------------------------- group failure

@pytest.mark.parametrize("cut", ["target-removed", "router-port-isolated"])
def test_all_members_losing_probes_is_group_failure(lab, need_mpathd, cut):
    """Every member loses its probes at the same moment (one atomic change): group
    failure, no address moves; then each member repairs by itself."""
    f = FDT_SECONDS["1s"]
    d = start_probed(lab, probed(["m0", "m1", "m2"]), "1s", targets=[ROUTER_LAN4])
    before = placement(lab, d)
    moves = moves_counted(d)
    table = None
    if cut == "target-removed":
        lab.router_del_address(f"{ROUTER_LAN4}/24")
    else:
        table = lab.switch_drop(iif="router", both_ways=True)
    t_cut = time.monotonic()

    def no_interface_failure(s):
        bad = [m for m in d.group("g0", s)["members"] if m["reason"] == "probe-loss"]
        assert not bad, f"member failed alone although every member lost its probes: {bad}"
        return d.group("g0", s)["state"] == "failed"
    s, t = timed_wait(d, no_interface_failure, DETECT_FACTOR * f + 10, "group failed")
    print(f"group failed {1000 * (t - t_cut):.0f} ms after the cut")
    assert t - t_cut <= DETECT_FACTOR * f
    s = d.wait_status(lambda s: all(m["state"] == "failed" for m in d.group("g0", s)["members"]),
                      f + MOVE_TIMEOUT, "every member failed")
    for m in d.group("g0", s)["members"]:
        assert m["reason"] == "group-failure" and m["link"] == "up", m
    # No address moves: hold for 2 x FDT, then compare with the kernel.
    d.hold_status(lambda s: d.group("g0", s)["state"] == "failed" and moves_counted(d, s) == moves,
                  2 * f, "group failed and no address moved")
    assert placement(lab, d) == before, lab.describe()

    if table is not None:
        lab.switch_undrop(table)
    else:
        lab.router_add_address(f"{ROUTER_LAN4}/24")
    t_restore = time.monotonic()
    for name in ("m0", "m1", "m2"):
        wait_repaired(d, name, f, t_restore)
    d.wait_status(lambda s: d.group("g0", s)["state"] == "ok", MOVE_TIMEOUT, "group ok")
    # The members repair one by one, so an address may visit the first repaired member;
    # with failback every address ends up at home again.
    wait_until(lambda: placement(lab, d) == before, MOVE_TIMEOUT, "every address back home")
    no_probe_loss_in_log(d)


@pytest.mark.members(1)
def test_singleton_silent_failure_is_group_failure(lab, need_mpathd):
    f = FDT_SECONDS["1s"]
    d = start_probed(lab, probed(["m0"]), "1s")
    cut_and_detect(lab, d, "m0", lambda: lab.silent_fail(0), f, reason="group-failure")
    s = d.wait_status(lambda s: d.group("g0", s)["state"] == "failed", MOVE_TIMEOUT,
                      "group failed")
    assert all(a["holder"] == "m0" for a in d.group("g0", s)["addresses"]), s
    assert lab.holders(V4) == ["m0"] and lab.holders(V6) == ["m0"]
    lab.silent_restore(0)
    wait_repaired(d, "m0", f, time.monotonic())
    d.wait_status(lambda s: d.group("g0", s)["state"] == "ok", MOVE_TIMEOUT, "group ok")


# ---------------------------------------------------------------- without test addresses

@pytest.mark.parametrize("method", ["arp", "auto"])
def test_silent_failure_without_test_addresses(lab, need_mpathd, method):
    f = FDT_SECONDS["1s"]
    d = start_probed(lab, probed(["m0", "m1", "m2"], test_addresses=False), "1s",
                     probe_method=method)
    # Nothing but the data addresses (and link-locals) on the members.
    data = {V4, V6}
    extra = [a for a in lab.host_addrs() if a["dev"].startswith("m") and
             a["scope"] != "link" and a["address"] not in data]
    assert not extra, extra
    old = lab.holder_of(V4)
    cut_and_detect(lab, d, old, lambda: lab.silent_fail(idx(old)), f)
    wait_moved_away(lab, d, V4, old)
    wait_until(lambda: lab.client_reaches(V4), MOVE_TIMEOUT, f"client reaches {V4}")


@pytest.mark.parametrize("target", ["static-link-local", "router-from-routes"])
def test_ipv6_only_group_silent_failure(lab, need_mpathd, target):
    """ICMPv6 echo from the members' link-locals to the router's link-local fe80::1,
    given as a static target or found as the gateway of the group's route."""
    f = FDT_SECONDS["1s"]
    lab.router_add_address(f"{ROUTER_LL}/64")
    if target == "static-link-local":
        kw = {"targets": [ROUTER_LL],
              "extra_group": f'routes = [ {{ to = "default", via = "{ROUTER_LAN6}" }} ]'}
    else:
        kw = {"extra_group": f'routes = [ {{ to = "default", via = "{ROUTER_LL}" }} ]'}
    d = start_probed(lab, probed(["m0", "m1", "m2"], test_addresses=False), "1s",
                     data_addresses=[f"{V6}/64"], routes=False, **kw)
    wait_until(lambda: lab.client_reaches(V6), 10, f"client reaches {V6}")
    old = lab.holder_of(V6)
    cut_and_detect(lab, d, old, lambda: lab.silent_fail(idx(old)), f)
    new = wait_moved_away(lab, d, V6, old)
    wait_until(lambda: lab.route_get(CLIENT["ipv6"], V6).get("dev") == new, MOVE_TIMEOUT,
               f"route get from {V6} via {new}")
    wait_until(lambda: lab.client_reaches(V6), MOVE_TIMEOUT, f"client reaches {V6}")


def test_probe_method_none_sees_no_silent_failure(lab, need_mpathd):
    """The control: without probing a silent failure goes unnoticed (link state only)."""
    f = FDT_SECONDS["1s"]
    d = start_group(lab, probed(["m0", "m1", "m2"]), failure_detection_time="1s",
                    probe_method="none")
    s = d.status()
    for m in d.group("g0", s)["members"]:
        assert m["probe"] == "disabled" and m["state"] == "ok", m
    old = lab.holder_of(V4)
    lab.silent_fail(idx(old))
    d.hold_status(member_is(d, old, state="ok", probe="disabled"), DETECT_FACTOR * f,
                  f"{old} ok (nothing probes it)")
    assert lab.holders(V4) == [old]


# ---------------------------------------------------------------- forged ARP answers

FORGER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "arp_forger.py")


def test_forged_arp_replies_do_not_repair(lab, need_mpathd):
    """A cut-off member probed by ARP, and on its side of the cut a host that floods
    unsolicited "198.18.1.1 is-at <its MAC>" replies (to the member's MAC, as an
    answer to an ARP probe would be, and as gratuitous broadcasts) without seeing the
    probes: the member stays failed and the data address stays away from it. Once the
    forger is gone and the port is back, the member is repaired."""
    f = FDT_SECONDS["1s"]
    d = start_probed(lab, probed(["m0", "m1", "m2"], test_addresses=False), "1s",
                     probe_method="arp")
    old = lab.holder_of(V4)
    i = idx(old)
    cut_and_detect(lab, d, old, lambda: lab.silent_fail(i), f)
    wait_moved_away(lab, d, V4, old)

    # The forger's namespace, on the cut-off member's switch port (a bridge of its own
    # in the switch: the member reaches nobody else).
    fg = f"{lab.prefix}-fg"
    lab._netns_add(fg)
    lab.sh(lab.sw, "ip", "link", "add", "brx", "type", "bridge", "stp_state", "0",
           "forward_delay", "0")
    lab.sh(lab.sw, "ip", "link", "add", "pfg", "type", "veth", "peer", "name", "eth0", "netns", fg)
    lab.sh(lab.sw, "ip", "link", "set", f"p{i}", "master", "brx")
    lab.sh(lab.sw, "ip", "link", "set", "pfg", "master", "brx", "up")
    lab.sh(lab.sw, "ip", "link", "set", "brx", "up")
    lab.sh(fg, "ip", "link", "set", "eth0", "up")
    seconds = 8 * f
    out = lab.tmp / "arp-forger.out"
    with open(out, "w") as stdout:
        forger = lab.spawn(fg, "python3", FORGER, "eth0", lab.member_mac(i), ROUTER_LAN4,
                           str(seconds), name="arp-forger", stdout=stdout)
    wait_until(lambda: out.read_text().strip() != "", 10, "the forger to send")
    # Ten answered probes (about 1.4 s) would repair it: hold for 5 s of forgeries.
    d.hold_status(lambda s: d.member(old, s)["state"] == "failed" and
                  d.address(V4, s)["holder"] != old, 5 * f, f"{old} failed under forgery")
    assert forger.running(), "the forger stopped early: " + out.read_text()
    assert lab.holders(V4) != [old], lab.describe()
    assert int(out.read_text().split()[-1]) >= 500, out.read_text()
    forger.stop(timeout=10)
    # The administrator is told why the member does not come back.
    assert f"{old}: " in d.log() and "unsolicited ARP replies claiming a probe target" in d.log()

    # Back on the switch: genuine answers repair it.
    lab.sh(lab.sw, "ip", "link", "set", f"p{i}", "master", "br0")
    d.wait_status(member_is(d, old, state="ok", probe="ok"), 30, f"{old} repaired")
