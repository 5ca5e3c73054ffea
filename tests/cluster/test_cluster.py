"""Cross-node failover on a REAL 3-node Corosync + Pacemaker cluster (issue 12).

tests/lab/cluster.py builds it once for this file: three nodes (netns + private mount,
pid, uts, ipc namespaces), each with a group of 2 public members on the lab's switch and
a Corosync link on a switch of its own; the real mpathd in every node with
`node-attributes = true`; the shared address 198.18.1.50 as Pacemaker resource `vip`
(ocf:mpathd:SharedAddress, monitor every 1 s) with the ethmonitor-style location rule on
`mpathd-g0`; a TCP server on the shared address in every node and a client behind the
router. Before each test the CIB is reset to its seed, every link healed, and `vip`
started afresh (resource-stickiness 100 keeps it where it starts).

    member failure on the holder    -> moved inside the node, no failure, nothing moves
    whole group fails (link cut; silent probe loss at FDT 1 s)
                                    -> serving from another node within FDT + 1 s
                                       (bound here FAILOVER_BOUND; figures: bench/cluster)
    crm_resource --move             -> released on the old node (the restarter's stop of
                                       the data service ends first, then its sockets are
                                       destroyed and the client reset; an exec [[hook]]
                                       sees the events), held and the service started on
                                       the new one (the systemd hook against a stand-in
                                       for systemd's Manager on every node's bus:
                                       lab/standin.py; it is not systemd)
    mpathd kill -9 + restart        -> Pacemaker sees nothing, nothing moves or is lost
    Corosync link of the holder cut -> Pacemaker's quorum rules: the address on exactly
                                       one node once membership settles
    a client's idle TCP connection after a silent whole-group failure is reset at once
    by the new holder, which knows the client's UDP socket too: from replicated
    associations (Corosync CPG) and from associations
    handed over by ipmpctl shared import.
"""

from __future__ import annotations

import errno
import json
import os
import time

import pytest

from lab.cluster import MEMBERS, SHARED4, Client, Cluster, hold, require_lab, start_server
from lab.lab import CLIENT4, wait_until

FDT = 1.0              # s, the groups' failure-detection-time
FAILOVER_BOUND = 10.0  # s, whole-group failure -> serving elsewhere (issue: FDT + 1 s; generous)
RESET_BOUND = 10.0     # s, whole-group failure -> the client's ECONNRESET
HOLD = 4.0             # s, how long "nothing happens" is watched (4 monitors at 1 s)
STOP_JOB = 0.5         # s, the systemd stand-in's delay of web.service's stop job


# An exec [[hook]] standing for a data service's restarter: it records each shared
# address event (a restarter stops the service before the release and starts it after
# the takeover).
SERVICE_HOOK = """#!/bin/sh
echo "$(date +%s.%N) $MPATHD_EVENT $MPATHD_ADDRESS $MPATHD_REASON" >> "$1"
"""


def hook_events(node, since: float) -> list[str]:
    """The shared address events node's exec hook saw after `since` (time.time())."""
    try:
        lines = (node.dir / "service-hook.log").read_text().splitlines()
    except OSError:
        return []
    return [l.split()[1] for l in lines if len(l.split()) >= 3 and float(l.split()[0]) >= since
            and l.split()[2].split("/")[0] == SHARED4]


@pytest.fixture(scope="module")
def cluster():
    require_lab()
    t0 = time.monotonic()
    with Cluster(standin_units=(f"web.service=done:{int(STOP_JOB * 1000)}",)) as c:
        script = c.lab.tmp / "service-hook.sh"
        script.write_text(SERVICE_HOOK)
        os.chmod(script, 0o755)
        for n in c.nodes:
            hook = (f'node-attributes = true\n\n[[hook]]\nname = "service"\ntype = "exec"\n'
                    f'command = ["{script}", "{n.dir / "service-hook.log"}"]\n'
                    'events = ["takeover-before", "takeover-after", "release-before", "release-after"]\n'
                    f'\n[[hook]]\nname = "web"\ntype = "systemd"\naddress = "{SHARED4}"\n'
                    'stop = ["web.service"]\nstart = ["web.service"]\ntimeout = "5s"\n')
            n.start_mpathd(n.config(extra_global=hook), wait=False)
        for n in c.nodes:
            n.daemon.wait_status(lambda s: s.get("started") is True, 30, f"{n.name}: mpathd started")
            n.wait_group_ok(30)
        print(f"cluster up with mpathd on 3 nodes: {time.monotonic() - t0:.1f} s")
        yield c


@pytest.fixture
def vip(cluster):
    """A clean cluster with `vip` started, a server on every node; yields the holder."""
    cluster.reset()
    cluster.add_shared_address("vip")
    holder = cluster.node(cluster.wait_running("vip", timeout=30))
    holder.daemon.wait_status(lambda s: holder.shared()["state"] == "held", 10, f"{holder.name} holds {SHARED4}")
    wait_until(lambda: cluster.holders() == {holder.name: [holder.shared()["holder"]]}, 10,
               f"{SHARED4} in {holder.name}'s kernel only")
    servers = {n.name: start_server(n) for n in cluster.nodes}
    holder.servers = servers
    yield holder
    for proc, _ in servers.values():
        proc.stop()


def others(cluster: Cluster, node) -> list:
    return [n for n in cluster.nodes if n is not node]


def serving_elsewhere(cluster: Cluster, old) -> str | None:
    """The node that has the address in its kernel, if that is one node other than `old`
    and the client reaches the address."""
    h = cluster.holders()
    if len(h) == 1 and old.name not in h and cluster.lab.client_reaches(SHARED4):
        return next(iter(h))
    return None


def starts_and_stops(cluster: Cluster) -> list[tuple[str, str]]:
    """The last start or stop of vip on each node (the CIB keeps one), sorted; every one
    succeeded."""
    ops = [(node, task, rc) for node, task, rc, _ in cluster.ops("vip") if task in ("start", "stop")]
    assert all(rc == "0" for _, _, rc in ops), ops
    return sorted((node, task) for node, task, _ in ops)


def test_member_failure_moves_the_address_inside_the_node(cluster, vip):
    holder = vip
    client = Client(cluster)
    assert client.info["node"] == holder.name
    client.ping()
    dev = holder.shared()["holder"]
    holder.cut_member(MEMBERS.index(dev))
    holder.daemon.wait_status(lambda s: holder.shared()["holder"] not in ("", dev), 5,
                              f"{SHARED4} to move to the other member of {holder.name}")
    moved_to = holder.shared()["holder"]
    wait_until(lambda: cluster.holders() == {holder.name: [moved_to]}, 5, "the kernel to follow")
    wait_until(lambda: holder.attribute("mpathd-g0") == "1", 5, "mpathd-g0=1 in Pacemaker")
    client.ping(timeout=10)  # the connection survives (the socket is bound to the address)
    # Pacemaker over 4 monitors: no failure, still on the holder, no other node has it.
    hold(lambda: cluster.running_on("vip") == [holder.name] and not cluster.failures()
         and cluster.holders() == {holder.name: [moved_to]}, HOLD, "vip running on the holder, no failure")
    assert starts_and_stops(cluster) == [(holder.name, "start")], cluster.ops("vip")
    assert holder.shared()["state"] == "held"
    assert client.ended() is None


def _whole_group_fails(cluster, holder, fail) -> tuple[str, float]:
    client = Client(cluster)
    client.ping()
    t0 = time.monotonic()
    fail()
    new = wait_until(lambda: serving_elsewhere(cluster, holder), FAILOVER_BOUND,
                     f"{SHARED4} serving from another node than {holder.name}", step=0.05)
    elapsed = time.monotonic() - t0
    assert cluster.wait_running("vip", on=new, timeout=10) == new
    wait_until(lambda: holder.attribute("mpathd-g0") == "0", 5, f"mpathd-g0=0 on {holder.name}")
    assert holder.holders() == []
    assert holder.shared()["state"] == "released"
    # The new holder serves new connections.
    fresh = Client(cluster)
    assert fresh.info["node"] == new
    fresh.ping()
    hold(lambda: list(cluster.holders()) == [new], 2, f"{SHARED4} on {new} only")
    return new, elapsed


def test_whole_group_link_failure_moves_the_address_to_another_node(cluster, vip):
    holder = vip
    new, elapsed = _whole_group_fails(cluster, vip, holder.cut_group)
    print(f"group of {holder.name} cut -> {SHARED4} serving from {new}: {elapsed:.2f} s "
          f"(bound {FAILOVER_BOUND} s)")
    s = holder.daemon.status()
    assert all(m["state"] == "failed" for m in s["groups"][0]["members"]), s["groups"][0]["members"]


def test_whole_group_silent_failure_moves_the_address_to_another_node(cluster, vip):
    """Carriers stay up; the switch drops every frame of the node's members: probes
    find it in FDT (1 s)."""
    holder = vip
    new, elapsed = _whole_group_fails(cluster, vip, holder.drop_group)
    print(f"group of {holder.name} silent (FDT {FDT} s) -> {SHARED4} serving from {new}: {elapsed:.2f} s "
          f"(bound {FAILOVER_BOUND} s)")
    # Found by the probes: every member failed, every carrier up.
    s = holder.daemon.status()
    assert all(m["state"] == "failed" for m in s["groups"][0]["members"]), s["groups"][0]["members"]
    links = {l["ifname"]: l["operstate"] for l in cluster.lab.ip_json(holder.ns, "link", "show")}
    assert all(links[m] == "UP" for m in MEMBERS), links


def test_planned_move_releases_on_the_old_node_and_takes_over_on_the_new(cluster, vip):
    holder = vip
    target = others(cluster, holder)[0]
    client = Client(cluster)
    client.ping()
    assert client.info["node"] == holder.name
    server = holder.servers[holder.name][1]
    t0, m0 = time.time(), time.monotonic()

    def since(standin, method):  # the stand-in's calls of web.service after the move began
        return [c for c in standin.calls(method, "web.service") if c["t"] >= m0]

    cluster.move("vip", target.name)
    cluster.wait_running("vip", on=target.name, timeout=30)
    assert holder.shared()["state"] == "released" and holder.holders() == []
    assert target.shared()["state"] == "held"
    # The old node's sockets on the address were destroyed ...
    aborted = wait_until(lambda: [e for e in server.of("tcp_error") if e["errno"] == errno.ECONNABORTED], 5,
                         f"{holder.name}'s accepted socket destroyed (ECONNABORTED)")[0]
    # ... only after the restarter's stop of the data service ended (seed 003: stop before
    # the address goes), and the new holder started it (systemd stand-in: lab/standin.py).
    stop = wait_until(lambda: since(holder.standin, "StopUnit"), 5, "StopUnit web.service")[0]
    done = wait_until(lambda: holder.standin.removed(stop["job"]), 5, "the stop job's JobRemoved")[0]
    wall = time.time() - time.monotonic()  # the stand-in's times are CLOCK_MONOTONIC
    assert done["result"] == "done" and aborted["t"] >= done["t"] + wall - 0.05, (done, aborted)
    wait_until(lambda: since(target.standin, "StartUnit"), 5, f"StartUnit web.service on {target.name}")
    assert since(target.standin, "StopUnit") == [] and since(holder.standin, "StartUnit") == []
    wait_until(lambda: server.of("listen_error"), 5, f"{holder.name}'s listener destroyed")
    # ... so the client's connection was reset, and it reconnected to the new node.
    ended = wait_until(client.ended, RESET_BOUND, "the client's connection reset")
    assert ended["event"] == "tcp_error" and ended["errno"] == errno.ECONNRESET, ended
    again = wait_until(lambda: client.connections()[1:], 15, "the client reconnected")
    assert again[0]["node"] == target.name, again
    client.ping()
    print(f"crm_resource --move {holder.name} -> {target.name}: client reset after {ended['t'] - t0:.2f} s, "
          f"reconnected to {again[0]['node']} after {again[0]['t'] - t0:.2f} s")
    assert starts_and_stops(cluster) == sorted([(holder.name, "stop"), (target.name, "start")]), cluster.ops("vip")
    # The service hook: stopped on the old node around the release, started on the new
    # one around the takeover, in that order on each.
    wait_until(lambda: hook_events(holder, t0) == ["release-before", "release-after"], 5,
               f"{holder.name}'s hook: release-before, release-after (saw {hook_events(holder, t0)})")
    wait_until(lambda: hook_events(target, t0) == ["takeover-before", "takeover-after"], 5,
               f"{target.name}'s hook: takeover-before, takeover-after (saw {hook_events(target, t0)})")
    third = next(n for n in cluster.nodes if n not in (holder, target))
    assert hook_events(third, t0) == []
    assert cluster.failures() == []
    cluster.clear("vip")
    hold(lambda: cluster.running_on("vip") == [target.name], 2, "vip stays on the new node after --clear")


def test_mpathd_kill_and_restart_on_the_holder_changes_nothing(cluster, vip):
    holder = vip
    client = Client(cluster)
    client.ping()
    dev = holder.shared()["holder"]
    holder.kill_mpathd()  # SIGKILL
    # The agent's monitors find the address in the kernel: no failure, nothing moves.
    hold(lambda: cluster.running_on("vip") == [holder.name] and not cluster.failures()
         and cluster.holders() == {holder.name: [dev]}, HOLD, "nothing changes while mpathd is down")
    client.ping()
    holder.start_mpathd()  # the same state directory
    holder.daemon.wait_status(lambda s: holder.shared()["state"] == "held", 10, "the address adopted as held")
    assert holder.shared()["holder"] == dev
    # Nothing lost: the new mpathd's registry knows the client again (its start walk).
    wait_until(lambda: knows_client(holder, client, udp=False), 5, "the restarted mpathd knows the client")
    hold(lambda: cluster.running_on("vip") == [holder.name] and not cluster.failures()
         and cluster.holders() == {holder.name: [dev]}, 2, "nothing changes after the restart")
    assert starts_and_stops(cluster) == [(holder.name, "start")], cluster.ops("vip")
    assert holder.attribute("mpathd-g0") == "2"
    client.ping()
    assert client.ended() is None and len(client.connections()) == 1


def test_corosync_link_loss_is_pacemakers_and_the_address_ends_on_one_node(cluster, vip):
    """The holder loses its Corosync link only (its public members are fine): the two
    others keep quorum and start vip, the isolated node loses quorum and stops its copy
    (no-quorum-policy=stop). mpathd does not fight it: once membership settles the
    address is on one node, also after the link heals and the node rejoins."""
    holder = vip
    t0 = time.monotonic()
    holder.cut_corosync()
    majority = others(cluster, holder)

    def settled():
        h = cluster.holders()
        return next(iter(h)) if len(h) == 1 and holder.name not in h else None
    new = wait_until(settled, 30, f"{SHARED4} on one node of the majority, not on {holder.name}", step=0.05)
    elapsed = time.monotonic() - t0
    # Pacemaker records the start once the agent's start returned: a moment after the kernel has it.
    wait_until(lambda: cluster.running_on("vip", mon=cluster.mon(via=majority[0])) == [new], 10,
               f"Pacemaker records vip running on {new}")
    hold(lambda: list(cluster.holders()) == [new], 3, f"{SHARED4} on {new} only")
    assert holder.shared()["state"] == "released"  # released by the agent's stop, not taken back
    print(f"Corosync link of {holder.name} cut -> {SHARED4} on {new} only: {elapsed:.2f} s")
    holder.heal_corosync()
    cluster.wait_online(60)
    hold(lambda: list(cluster.holders()) == [new] and cluster.running_on("vip") == [new], 3,
         f"{SHARED4} on {new} only after the rejoin")


def _silent_failure_resets_the_client(cluster, holder, before_failure=lambda client: None) -> None:
    client = Client(cluster)
    client.ping()
    client.udp()
    wait_until(lambda: knows_client(holder, client), 5, f"{holder.name}'s registry lists the client (TCP, UDP)")
    before_failure(client)
    t0 = time.time()
    holder.drop_group()  # the old holder can tell nobody anything
    ended = wait_until(client.ended, RESET_BOUND, "the client's idle connection reset by the new holder")
    new = cluster.wait_running("vip", not_on=holder.name, timeout=10)
    assert ended["event"] == "tcp_error" and ended["errno"] == errno.ECONNRESET, ended
    again = wait_until(lambda: client.connections()[1:], 15, "the client reconnected")
    assert again[0]["node"] == new, again
    client.ping()
    assert "TCP client(s) tickled" in cluster.node(new).daemon.log()
    assert knows_client(cluster.node(new), client, tcp=False), "the UDP client is known on the new node"
    client.udp()
    print(f"silent failure of {holder.name}'s group -> client reset after {ended['t'] - t0:.2f} s, "
          f"reconnected to {new} after {again[0]['t'] - t0:.2f} s")


def knows_client(node, client, tcp: bool = True, udp: bool = True) -> bool:
    """node's association registry of the shared address lists the client's TCP
    connection and the client as a UDP client (one entry per client address), as far as
    asked."""
    entries = json.loads(node.ipmpctl("-o", "json", "show", "associations", SHARED4).stdout)
    has_tcp = any(e["proto"] == "tcp" and e["remote"] == CLIENT4 and e["remote_port"] == client.info["port"]
                  for e in entries)
    has_udp = any(e["proto"] == "udp" and e["remote"] == CLIENT4 for e in entries)
    return (has_tcp or not tcp) and (has_udp or not udp)


def test_client_reset_at_once_from_replicated_associations(cluster, vip):
    """Nothing handed over by hand: the other nodes learn the holder's associations over
    Corosync CPG (<= 1 s lag), and the node Pacemaker picks tickles them on takeover."""
    holder = vip
    if any("replication" not in (n.daemon.status() or {}) for n in cluster.nodes):
        pytest.skip("association replication over Corosync CPG is not in this "
                    "build: status.json has no \"replication\"")
    for n in cluster.nodes:
        n.daemon.wait_status(lambda s: s["replication"]["state"] == "joined", 40,
                             f"{n.name}: replication joined the process group")

    def replicated(client):
        for n in others(cluster, holder):
            wait_until(lambda n=n: knows_client(n, client), 5, f"{n.name} knows {holder.name}'s client")
    _silent_failure_resets_the_client(cluster, holder, replicated)


def test_client_reset_at_once_after_a_handover_by_import(cluster, vip):
    """The manual hand-over: the holder's associations (ipmpctl show associations -o
    json) imported on the other nodes (ipmpctl shared import) before the failure; the
    node Pacemaker picks tickles them on takeover."""
    holder = vip

    def hand_over(client):
        path = cluster.lab.tmp / "exported.json"
        path.write_text(holder.ipmpctl("-o", "json", "show", "associations", SHARED4).stdout)
        for n in others(cluster, holder):
            assert "association(s) held" in n.ipmpctl("shared", "import", SHARED4, str(path)).stdout
            assert knows_client(n, client)
    _silent_failure_resets_the_client(cluster, holder, hand_over)
