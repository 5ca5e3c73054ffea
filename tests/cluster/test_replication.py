"""Association replication over a REAL Corosync CPG (issue 12 item 3).

tests/lab/cluster.py in corosync-only mode (pacemaker=False) builds three nodes once
for this file: each a netns plus private mount/pid/uts/ipc namespaces with its own
corosync (knet on a Corosync switch of its own), and the real mpathd inside the node's
namespaces (nsenter into the node's init: libqb's abstract socket is per netns, its shm
per mount namespace). No Pacemaker: the tests take the address over by hand with
`ipmpctl shared takeover`, as the OCF agent would.

    every mpathd joins the process group "mpathd" (status.json replication.state joined)
    n1 holds the shared address, a client behind the router connects (TCP + UDP)
        -> n2 and n3 list n1's associations (imported) within REPLICATION_BOUND
    n3's mpathd restarts (a joiner) -> it receives the full tables again
    n1 dies silently (its members' switch ports down, then its mpathd and corosync
    killed: the group sees it leave) -> n2 keeps n1's tables; `ipmpctl shared takeover`
    on n2 resets the client's idle connection at once (tickle) and the client reconnects
    to n2; n3 drops n1's tables (the takeover announcement)

Figures for docs/scale.md (messages and bytes per second at steady state and during a
connection storm) are printed (pytest -s) and written to $MPATHD_BENCH_OUT if set.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from lab.cluster import SHARED4, Client, Cluster, hold, require_lab, start_server
from lab.lab import CLIENT4, wait_until

REPLICATION_BOUND = 3.0  # s, a new association on the holder -> listed on the others (design: <= 1 s)
RESET_BOUND = 3.0        # s, `ipmpctl shared takeover` -> the client's ECONNRESET (tickle: ms)
STORM = 200              # connections opened and closed for the rate figures


@pytest.fixture(scope="module")
def cluster():
    require_lab(("corosync", "nsenter", "unshare", "dbus-daemon"))
    with Cluster(nodes=3, pacemaker=False) as c:
        c.wait_online(60)
        for n in c.nodes:
            n.start_mpathd(n.config(extra_global=""), wait=False)
        for n in c.nodes:
            n.daemon.wait_status(lambda s: s.get("started") is True, 30, f"{n.name}: mpathd started")
            n.wait_group_ok(30)
        yield c


def replication(node) -> dict:
    return (node.daemon.status() or {}).get("replication", {})


def associations(node) -> list[dict]:
    return json.loads(node.ipmpctl("-o", "json", "show", "associations", SHARED4).stdout)


def knows(node, client, imported: bool | None = None) -> bool:
    for e in associations(node):
        if e["proto"] == "tcp" and e["remote"] == CLIENT4 and e["remote_port"] == client.info["port"]:
            return imported is None or e["imported"] == imported
    return False


def counters(node) -> tuple[int, int]:
    r = replication(node)
    return r.get("messages_sent", 0), r.get("bytes_sent", 0)


def test_replication(cluster):
    n1, n2, n3 = cluster.nodes
    for n in cluster.nodes:
        n.daemon.wait_status(lambda s: s.get("replication", {}).get("state") == "joined", 30,
                             f"{n.name}: replication joined the process group")
        n.daemon.wait_status(lambda s: s["replication"]["members"] == 3, 30, f"{n.name}: 3 members")
    assert "joined process group \"mpathd\"" in n1.daemon.log()
    shown = json.loads(n1.ipmpctl("-o", "json", "show", "registry").stdout)
    assert (shown["replication"], shown["replication_reason"]) == ("joined", ""), shown

    n1.ipmpctl("shared", "takeover", SHARED4)
    n1.daemon.wait_status(lambda s: n1.shared()["state"] == "held", 10, f"n1 holds {SHARED4}")
    server, _ = start_server(n1)
    client = Client(cluster)
    client.ping()
    t0 = time.monotonic()
    wait_until(lambda: knows(n1, client, imported=False), 5, "n1's registry lists the client")
    t_local = time.monotonic() - t0
    for n in (n2, n3):
        wait_until(lambda n=n: knows(n, client, imported=True), REPLICATION_BOUND, f"{n.name} lists n1's client")
    lag = time.monotonic() - t0
    print(f"replication: n1 saw the client after {t_local:.2f} s, n2 and n3 after {lag:.2f} s")

    # Steady state: nothing changes, nothing is sent.
    # (status.json has the counters within a second: the takeover's table and the client's delta)
    m0, b0 = wait_until(lambda: counters(n1) if counters(n1)[0] >= 2 else None, 5, "n1's counters")
    hold(lambda: counters(n1)[0] == m0, 3, "no replication message at steady state")
    m1, b1 = counters(n1)
    idle = (m1 - m0) / 3.0, (b1 - b0) / 3.0

    # A storm: STORM connections opened at once, held, then closed at once.
    m0, b0 = counters(n1)
    t0 = time.monotonic()
    storm = subprocess.Popen(
        ["ip", "netns", "exec", cluster.lab.cl, sys.executable, "-c",
         "import socket, sys\n"
         f"s = [socket.create_connection(('{SHARED4}', 5080), timeout=5) for _ in range({STORM})]\n"
         "print('open', flush=True); sys.stdin.readline()\n"
         "for c in s: c.close()\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert storm.stdout.readline().strip() == "open"
        wait_until(lambda: len(associations(n2)) >= STORM + 1, 10, f"n2 lists the {STORM} new connections")
        opened = time.monotonic() - t0
        m_open, b_open = wait_until(lambda: counters(n1) if counters(n1)[0] > m0 else None, 10, "counters (open)")
        storm.stdin.write("close\n")
        storm.stdin.flush()
    finally:
        storm.stdin.close()
        storm.wait(30)
    wait_until(lambda: len(associations(n2)) == len(associations(n1)) == 1, 10, "n2 in line with n1 after the storm")
    took = time.monotonic() - t0
    m1, b1 = wait_until(lambda: counters(n1) if counters(n1)[0] > m_open else None, 10, "counters (closed)")
    figures = {"idle_msgs_per_s": idle[0], "idle_bytes_per_s": idle[1], "storm_connections": STORM,
               "open_seconds_until_replicated": round(opened, 2), "open_msgs": m_open - m0,
               "open_bytes": b_open - b0, "storm_seconds": round(took, 2), "storm_msgs": m1 - m0,
               "storm_bytes": b1 - b0, "storm_msgs_per_s": round((m1 - m0) / took, 1),
               "storm_bytes_per_s": round((b1 - b0) / took, 1), "lag_seconds": round(lag, 2)}
    print("replication figures:", json.dumps(figures))
    if out := os.environ.get("MPATHD_BENCH_OUT"):
        with open(out, "a") as f:
            f.write(json.dumps(figures) + "\n")
    assert m1 - m0 <= 20, f"{2 * STORM} changes are batched into a few messages, not {m1 - m0}"

    # A joiner gets the full tables: n3's mpathd restarts (its tables are gone with it).
    n3.stop_mpathd()
    j0 = counters(n1)
    n3.start_mpathd(wait=False)
    n3.daemon.wait_status(lambda s: s.get("replication", {}).get("state") == "joined", 30, "n3 joined again")
    wait_until(lambda: knows(n3, client, imported=True), REPLICATION_BOUND + 2, "n3 got n1's table on joining")
    j1 = wait_until(lambda: counters(n1) if counters(n1)[0] > j0[0] else None, 10, "counters (join)")
    print(f"state transfer to a joiner: {j1[0] - j0[0]} message(s), {j1[1] - j0[1]} bytes from n1")

    # n1 dies without a word: no frame leaves its members, then its mpathd and corosync
    # are gone (the group sees it leave; its tables stay on n2 and n3).
    n1.cut_group()
    n1.kill_mpathd()
    corosync = n1.exec("pidof", "corosync").stdout.split()
    assert corosync, "n1's corosync"
    n1.exec("kill", "-9", *corosync)
    n2.daemon.wait_status(lambda s: s["replication"]["members"] == 2, 20, "n2 sees n1 leave the group")
    assert knows(n2, client, imported=True), "n1's tables are kept when n1 leaves"
    assert client.ended() is None, "nothing told the client yet"

    start_server(n2)
    t0 = time.time()
    k0 = counters(n2)
    n2.ipmpctl("shared", "takeover", SHARED4)
    ended = wait_until(client.ended, RESET_BOUND, "the client's idle connection reset by n2's tickle")
    assert ended["event"] == "tcp_error" and ended["errno"] == errno.ECONNRESET, ended
    print(f"takeover on n2 -> client reset after {ended['t'] - t0:.3f} s")
    assert "TCP client(s) tickled" in n2.daemon.log()
    again = wait_until(lambda: client.connections()[1:], 15, "the client reconnected")
    assert again[0]["node"] == "n2", again
    # n3 drops n1's tables once n2 announced the takeover; n2 replicates its own.
    wait_until(lambda: not knows(n3, client, imported=True) or None, REPLICATION_BOUND, "n3 dropped n1's table")
    wait_until(lambda: any(e["remote_port"] == again[0]["port"] for e in associations(n3)), REPLICATION_BOUND,
               "n3 lists n2's client")
    k1 = counters(n2)
    print(f"takeover announcement and n2's table: {k1[0] - k0[0]} message(s), {k1[1] - k0[1]} bytes")
    server.stop()


def test_corosync_restart_is_survived(cluster):
    """corosync dies under a running mpathd: replication goes off (saying why), mpathd
    keeps running, and it joins again by itself (back-off) once corosync is back, and
    gets the holder's tables whole again."""
    n2, n3 = cluster.node("n2"), cluster.node("n3")
    n3.daemon.wait_status(lambda s: s.get("replication", {}).get("state") == "joined", 30, "n3 joined")
    received = replication(n3)["messages_received"]
    n3.exec("kill", "-9", *n3.exec("pidof", "corosync").stdout.split())
    n3.daemon.wait_status(lambda s: s["replication"]["state"] == "off", 10, "n3: replication off")
    assert "lost" in replication(n3)["reason"] or "corosync" in replication(n3)["reason"], replication(n3)
    assert n3.daemon.running()
    n3.exec("corosync")  # daemonizes inside the node
    n3.daemon.wait_status(lambda s: s["replication"]["state"] == "joined", 60, "n3 joined again")
    n3.daemon.wait_status(lambda s: s["replication"]["messages_received"] > received, 15,
                          "n3 got n2's tables again")
    assert "joined process group" in n3.daemon.log()
    n2.daemon.wait_status(lambda s: s["replication"]["members"] == 2, 30, "n2 sees n3 back")


def test_replication_off_says_why(cluster):
    """replication = false: mpathd runs as before and says replication is off."""
    n3 = cluster.node("n3")
    n3.stop_mpathd()
    n3.start_mpathd(n3.config(extra_global="replication = false"))
    r = replication(n3)
    assert r["state"] == "off" and not r["enabled"], r
    assert "replication = false" in r["reason"], r
    assert "association replication is off" in n3.daemon.log()
    busctl = subprocess.run(["busctl", "--address", n3.bus.address, "get-property", "org.ipmp.Mpathd1",
                             "/org/ipmp/Mpathd1", "org.ipmp.Mpathd1.Manager", "ReplicationReason"],
                            capture_output=True, text=True, timeout=10)
    if busctl.returncode == 0:
        assert "replication = false" in busctl.stdout, busctl.stdout
