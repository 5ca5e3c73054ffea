"""The agent and the node attributes under a REAL Pacemaker + Corosync (issue 12): one
cluster node in the lab's host namespace (shared/reference/pacemaker-lab.md: corosync
and pacemakerd under `unshare` with private /run, /dev/shm and state directories,
corosync on an interface of its own), mpathd inside the node's mount namespace (as
Pacemaker's clients must be) with `node-attributes = true`, the real attrd_updater,
and ocf:mpathd:SharedAddress run by pacemaker-execd.

    Pacemaker starts the address through the agent; a member failure moves it inside
    the node, the attribute drops to 1 and Pacemaker records no failure and restarts
    nothing; the whole group fails -> the attribute is 0 and the ethmonitor-style
    location rule stops the address.

One node only: cross-node failover (3 nodes) is issue 12's cluster lab, not built yet.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.bus import Bus
from lab.lab import REPO_ROOT, Daemon, Lab, Proc, binary, group_config, mpathd_bin, wait_until

AGENT = REPO_ROOT / "ocf" / "SharedAddress"
SHARED = "198.18.1.50"
RING = "198.18.200.11"
MEMBERS = ["m0", "m1"]

NODE_INIT = r"""#!/bin/bash
# PID 1 of the cluster node: private mounts, corosync, pacemakerd; stops on SIGTERM.
set -u
D=$1
hostname n1
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mkdir -p /run/lock /run/resource-agents /run/crm /run/dbus
chown hacluster:haclient /run/crm && chmod 750 /run/crm
ln -s "$BUS_SOCKET" /run/dbus/system_bus_socket   # the test's bus is the node's system bus
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount --bind "$D/etc-corosync" /etc/corosync
mount --bind "$D/var-lib-corosync" /var/lib/corosync
mount --bind "$D/var-log-corosync" /var/log/corosync
mount --bind "$D/var-lib-pacemaker" /var/lib/pacemaker
mount --bind "$D/var-log-pacemaker" /var/log/pacemaker
for p in heartbeat pacemaker; do
  mkdir -p "$D/ocf/$p"
  [ -d "/usr/lib/ocf/resource.d/$p" ] && mount --bind "/usr/lib/ocf/resource.d/$p" "$D/ocf/$p"
done
mount --rbind "$D/ocf" /usr/lib/ocf/resource.d   # adds provider mpathd, host untouched
export PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none
corosync -f &
for _ in $(seq 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.1; done
pacemakerd &
stop() {
  kill -TERM $(pidof pacemakerd) 2>/dev/null
  for _ in $(seq 300); do pidof pacemakerd >/dev/null || break; sleep 0.2; done
  kill -TERM $(pidof corosync) 2>/dev/null
  exit 0
}
trap stop TERM
while :; do wait; done
"""

COROSYNC_CONF = """totem {
  version: 2
  cluster_name: mpathdlab
  transport: knet
  crypto_cipher: none
  crypto_hash: none
  token: 1000
  token_coefficient: 0
  consensus: 1200
  interface {
    linknumber: 0
    knet_transport: udp
  }
}
system {
  move_to_root_cgroup: no
}
logging {
  to_logfile: yes
  logfile: /var/log/corosync/corosync.log
  to_syslog: no
  to_stderr: no
}
quorum {
  provider: corosync_votequorum
  wait_for_all: 0
}
nodelist {
  node {
    name: n1
    nodeid: 1
    ring0_addr: %s
  }
}
""" % RING

# Seeded so that the first DC election does not wait the default 20 s.
CIB = """<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config><cluster_property_set id="cib-bootstrap-options">
      <nvpair id="opt-stonith" name="stonith-enabled" value="false"/>
      <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="2s"/>
    </cluster_property_set></crm_config>
    <nodes/><resources/><constraints/>
  </configuration>
  <status/>
</cib>
"""


def _child_of(pid: int) -> int | None:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def ipmpctl_bin() -> str:
    return binary("IPMPCTL_BIN", "build/ipmpctl/ipmpctl")


class Node:
    def __init__(self, lab: Lab, bus: Bus):
        self.lab = lab
        d = lab.tmp / "n1"
        self.dir = d
        for sub in ("etc-corosync", "var-lib-corosync", "var-log-corosync", "var-log-pacemaker",
                    "var-lib-pacemaker/cib", "var-lib-pacemaker/pengine", "var-lib-pacemaker/blackbox",
                    "var-lib-pacemaker/cores", "ocf/mpathd"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        (d / "etc-corosync" / "corosync.conf").write_text(COROSYNC_CONF)
        (d / "var-lib-pacemaker" / "cib" / "cib.xml").write_text(CIB)
        shutil.copy(AGENT, d / "ocf" / "mpathd" / "SharedAddress")
        for sub in ("var-lib-pacemaker", "var-log-pacemaker"):
            subprocess.run(["chown", "-R", "hacluster:haclient", str(d / sub)], check=True)
        os.chmod(d / "var-lib-pacemaker" / "cib" / "cib.xml", 0o600)
        os.chmod(d / "var-log-pacemaker", 0o770)
        (d / "node-init.sh").write_text(NODE_INIT)
        # Corosync's own link, which mpathd does not manage.
        lab.sh(lab.host, "ip", "link", "add", "cl0", "type", "veth", "peer", "name", "cl0p")
        lab.sh(lab.host, "ip", "addr", "add", f"{RING}/24", "dev", "cl0")
        for dev in ("cl0", "cl0p"):
            lab.sh(lab.host, "ip", "link", "set", dev, "up")
        socket = bus.address.split("path=", 1)[1].split(",", 1)[0]
        env = {**os.environ, "BUS_SOCKET": socket}
        log = open(d / "init.log", "w")
        popen = subprocess.Popen(["ip", "netns", "exec", lab.host, "unshare", "--mount", "--pid", "--fork",
                                  "--uts", "--ipc", "--mount-proc", "--kill-child", "--",
                                  "bash", str(d / "node-init.sh"), str(d)],
                                 stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        log.close()
        self.proc = Proc(popen, "cluster-node", d / "init.log")
        lab.procs.append(self.proc)
        # The node's PID 1 (bash node-init.sh), child of unshare: where clients enter.
        self.init_pid = wait_until(self._find_init, 10, "node-init running")

    def _find_init(self) -> int | None:
        return _child_of(self.proc.pid)

    def stop(self) -> None:
        """Graceful: mpathd first (SIGTERM to it, the child of nsenter), then the node's
        init stops pacemakerd and corosync; the lab kills what is left."""
        d = getattr(self, "daemon", None)
        if d is not None and d.running() and (pid := _child_of(d.pid)):
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not d.running(), 10, "mpathd stopped")
        if self.proc.running():
            os.kill(self.init_pid, signal.SIGTERM)
            wait_until(lambda: not self.proc.running(), 90, "the cluster node stopped")

    def run(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        cp = subprocess.run(["nsenter", "-t", str(self.init_pid), "-a", *cmd], capture_output=True, text=True,
                            timeout=timeout)
        if check and cp.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)}: exit {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
        return cp

    def mon(self) -> ET.Element:
        return ET.fromstring(self.run("crm_mon", "-1", "--output-as=xml").stdout)

    def online(self) -> bool:
        try:
            m = self.mon()
        except (AssertionError, ET.ParseError):
            return False
        n = m.find("./nodes/node[@name='n1']")
        return n is not None and n.get("online") == "true" and m.find("./summary/current_dc[@present='true']") is not None

    def attribute(self, name: str) -> str | None:
        cp = self.run("attrd_updater", "-Q", "-n", name, check=False)
        if cp.returncode != 0 or 'value="' not in cp.stdout:
            return None
        return cp.stdout.split('value="', 1)[1].split('"', 1)[0]

    def vip_running(self) -> bool:
        """Started and its start complete (--locate also says running while the start
        is still pending)."""
        out = self.run("crm_resource", "--locate", "-r", "vip", check=False).stdout
        ops = self.run("crm_resource", "--list-operations", "-r", "vip", check=False).stdout
        return "is running on: n1" in out and "pending" not in ops and any(
            "vip_start_0" in l and "rc=0," in l for l in ops.splitlines())

    def failures(self) -> list[ET.Element]:
        return list(self.mon().iter("failure"))


@pytest.fixture(scope="module")
def cluster():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for tool in ("corosync", "pacemakerd", "attrd_updater", "crm_mon", "nsenter", "unshare"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            pytest.skip(f"{tool} not installed (scripts/setup.sh installs the cluster packages)")
    bus = Bus()
    try:
        with Lab(members=len(MEMBERS)) as lab:
            node = Node(lab, bus)
            wait_until(node.online, 60, "the cluster node online with a DC")
            conf = group_config(MEMBERS, data_addresses=("198.18.1.10/24",), extra_global="node-attributes = true",
                                extra_group=f'shared-addresses = ["{SHARED}/24"]')
            # Inside the node's namespaces (its /dev/shm, /run and /proc): nsenter
            # forks, so the lab's process is nsenter; mpathd dies with the node.
            work = lab.tmp / "mpathd-n1"
            for sub in ("run", "state", "lock"):
                (work / sub).mkdir(parents=True)
            (work / "mpathd.conf").write_text(conf)
            log_path = work / "mpathd.log"
            with open(log_path, "w") as log:
                popen = subprocess.Popen(["nsenter", "-t", str(node.init_pid), "-a", mpathd_bin(),
                                          "--config", str(work / "mpathd.conf"), "--runtime-dir", str(work / "run"),
                                          "--state-dir", str(work / "state"), "--lock-dir", str(work / "lock"),
                                          "--log-level", "debug"],
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                         env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": bus.address})
            d = Daemon(popen, work, log_path)
            lab.procs.append(d)
            d.wait_status(lambda s: s.get("started") is True, 20, "mpathd started in the node")
            d.wait_status(lambda s: all(m["state"] == "ok" for m in s["groups"][0]["members"]), 20, "members ok")
            node.daemon = d
            try:
                yield node
            finally:
                node.stop()
    finally:
        bus.close()


def test_pacemaker_runs_the_agent_and_follows_group_health(cluster):
    node, lab, d = cluster, cluster.lab, cluster.daemon
    wait_until(lambda: node.attribute("mpathd-g0") == "2", 10, "mpathd-g0=2 in Pacemaker")
    node.run("cibadmin", "--create", "-o", "resources", "--xml-text",
             '<primitive id="vip" class="ocf" provider="mpathd" type="SharedAddress">'
             '<instance_attributes id="vip-ia">'
             f'<nvpair id="vip-address" name="address" value="{SHARED}"/>'
             '<nvpair id="vip-group" name="group" value="ipmp0"/>'
             f'<nvpair id="vip-ipmpctl" name="ipmpctl" value="{ipmpctl_bin()}"/>'
             '</instance_attributes><operations>'
             '<op id="vip-monitor" name="monitor" interval="1s" timeout="20s"/>'
             '</operations></primitive>')
    node.run("cibadmin", "--create", "-o", "constraints", "--xml-text",
             '<rsc_location id="vip-on-healthy-g0" rsc="vip">'
             '<rule id="vip-g0-rule" score="-INFINITY" boolean-op="or">'
             '<expression id="vip-g0-undef" attribute="mpathd-g0" operation="not_defined"/>'
             '<expression id="vip-g0-zero" attribute="mpathd-g0" operation="lte" value="0" type="integer"/>'
             '</rule></rsc_location>')
    wait_until(node.vip_running, 30, "vip started by Pacemaker")
    holders = lab.holders(SHARED)
    assert len(holders) == 1, ("the agent's start returns once the address is in the kernel\n"
                               + node.run("crm_resource", "--list-operations", "-r", "vip", check=False).stdout
                               + str(d.status()["groups"][0]["shared"]) + "\n"
                               + "\n".join(l for l in (node.dir / "var-log-pacemaker" / "pacemaker.log").read_text()
                                           .splitlines() if "SharedAddress" in l or "vip_" in l)[-4000:])
    shared = d.status()["groups"][0]["shared"][0]
    assert shared["state"] == "held" and shared["reason"] == "admin-takeover"

    # A member failure: the address moves inside the node, the attribute drops, and
    # Pacemaker sees no failure over several monitors (interval 1 s).
    lab.link_down(MEMBERS.index(holders[0]))
    wait_until(lambda: len(lab.holders(SHARED)) == 1 and lab.holders(SHARED) != holders, 5, "moved inside the node")
    wait_until(lambda: node.attribute("mpathd-g0") == "1", 5, "mpathd-g0=1")
    end = time.monotonic() + 4
    while time.monotonic() < end:  # a bounded hold: every sample must show no failure
        assert node.failures() == [], ET.tostring(node.mon()).decode()
        assert node.vip_running()
    ops = node.run("crm_resource", "--list-operations", "-r", "vip").stdout
    assert ops.count("vip_start_0") == 1 and "vip_stop_0" not in ops, ops

    # The whole group fails: attribute 0, the location rule stops the address.
    t0 = time.monotonic()
    for i in range(len(MEMBERS)):
        lab.link_down(i)
    wait_until(lambda: node.attribute("mpathd-g0") == "0", 5, "mpathd-g0=0")
    wait_until(lambda: "NOT running" in node.run("crm_resource", "--locate", "-r", "vip", check=False).stderr
               + node.run("crm_resource", "--locate", "-r", "vip", check=False).stdout
               and "pending" not in node.run("crm_resource", "--list-operations", "-r", "vip", check=False).stdout,
               10, "vip stopped")
    print(f"whole group failure -> vip stopped by Pacemaker: {time.monotonic() - t0:.2f} s (bound 10 s)")
    assert lab.holders(SHARED) == []
    assert d.status()["groups"][0]["shared"][0]["state"] == "released"
    assert node.failures() == []
