"""The agent and the node attributes under a REAL Pacemaker + Corosync (issue 12): one
cluster node of tests/lab/cluster.py (corosync and pacemakerd under `unshare` with
private /run, /dev/shm and state directories, corosync on a link of its own), mpathd
inside the node's namespaces (as Pacemaker's clients must be) with
`node-attributes = true`, the real attrd_updater, and ocf:mpathd:SharedAddress run by
pacemaker-execd.

    Pacemaker starts the address through the agent; a member failure moves it inside
    the node, the attribute drops to 1 and Pacemaker records no failure and restarts
    nothing; the whole group fails -> the attribute is 0 and the ethmonitor-style
    location rule stops the address.

One node: cross-node failover on 3 nodes is tests/cluster/test_cluster.py.
"""

from __future__ import annotations

import time

import pytest

from lab.cluster import MEMBERS, SHARED4, Cluster, hold, require_lab
from lab.lab import wait_until

SHARED = SHARED4


@pytest.fixture(scope="module")
def cluster():
    require_lab()
    with Cluster(nodes=1) as c:
        c.nodes[0].start_mpathd()
        yield c


def test_pacemaker_runs_the_agent_and_follows_group_health(cluster):
    node = cluster.nodes[0]
    d = node.daemon
    wait_until(lambda: node.attribute("mpathd-g0") == "2", 10, "mpathd-g0=2 in Pacemaker")
    cluster.add_shared_address("vip", SHARED)
    cluster.wait_running("vip", on="n1", timeout=30)
    holders = node.holders(SHARED)
    assert len(holders) == 1, ("the agent's start returns once the address is in the kernel\n"
                               + str(cluster.ops("vip")) + "\n" + str(d.status()["groups"][0]["shared"]))
    shared = node.shared(SHARED)
    assert shared["state"] == "held" and shared["reason"] == "admin-takeover"

    # A member failure: the address moves inside the node, the attribute drops, and
    # Pacemaker sees no failure over several monitors (interval 1 s).
    node.cut_member(MEMBERS.index(holders[0]))
    wait_until(lambda: len(node.holders(SHARED)) == 1 and node.holders(SHARED) != holders, 5,
               "moved inside the node")
    wait_until(lambda: node.attribute("mpathd-g0") == "1", 5, "mpathd-g0=1")
    hold(lambda: not cluster.failures() and cluster.running_on("vip") == ["n1"], 4,
         "vip running, no failure")
    ops = [(task, rc) for _, task, rc, _ in cluster.ops("vip")]
    assert ("start", "0") in ops and not [t for t, _ in ops if t == "stop"], ops

    # The whole group fails: attribute 0, the location rule stops the address.
    t0 = time.monotonic()
    node.cut_group()
    wait_until(lambda: node.attribute("mpathd-g0") == "0", 5, "mpathd-g0=0")
    wait_until(lambda: ("n1", "stop", "0") in [o[:3] for o in cluster.ops("vip")]
               and not cluster.running_on("vip"), 10, "vip stopped")
    print(f"whole group failure -> vip stopped by Pacemaker: {time.monotonic() - t0:.2f} s (bound 10 s)")
    assert node.holders(SHARED) == []
    assert node.shared(SHARED)["state"] == "released"
    assert cluster.failures() == []
