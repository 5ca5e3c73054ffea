"""A real 3-node Corosync + Pacemaker cluster in namespaces, for mpathd (issue 12).

    from lab.cluster import Cluster, SHARED4
    with Cluster() as c:                          # up: ~6-10 s; c.nodes[0..2] = n1..n3
        for n in c.nodes:
            n.start_mpathd()                      # real mpathd, node-attributes = true
        c.add_shared_address("vip", SHARED4)      # ocf:mpathd:SharedAddress + location rule
        c.wait_running("vip")                     # -> "n1" (the node that holds it)
        c.node("n1").cut_group()                  # both members' switch ports down
        c.wait_running("vip", not_on="n1")
        c.reset()                                 # CIB back to its seed, links healed

Topology (python3 stdlib + iproute2, util-linux, corosync, pacemaker; root):

    public switch SW (tests/lab/lab.py's Lab): br0, the router RT (probe target, the
    client's gateway) and the client CL (198.19.0.2) behind it; node k has members m0,
    m1 on switch ports node.ports (n1: p0 p1, n2: n2p0 n2p1, n3: n3p0 n3p1), its data
    address 198.18.1.1k/24, the shared address 198.18.1.50/24 (SHARED4).
    Corosync switch CS: a bridge of its own; node k's `cl0` = 198.18.200.1k/24 on port
    c<k>. Corosync (knet, token 1000 ms, consensus 1200 ms) runs only there, so a
    public-member failure never touches membership, and cut_corosync() only membership.

Each node is a network namespace plus, under `unshare --mount --pid --uts --ipc
--fork --kill-child`, a PID 1 (NODE_INIT) with a private /run, /dev/shm, hostname and
bind-mounted per-node /etc/corosync, /var/lib/{corosync,pacemaker} and
/var/log/{corosync,pacemaker} (under node.dir), the OCF agent ocf/SharedAddress as
provider `mpathd`, corosync and (unless pacemaker=False) pacemakerd, started on a
seeded CIB (stonith-enabled=false, dc-deadtime=2s, resource-stickiness=100). Pacemaker's
clients and mpathd must share the node's mount namespace as well as its netns (libqb
shm), so everything runs by `nsenter -a -t <init pid>`: node.exec(...). Each node has
a private system bus (lab/bus.py), which is the node's /run/dbus/system_bus_socket, so
that the agent's ipmpctl (run by pacemaker-execd) reaches that node's mpathd.

Cluster API (one object per module; everything ends by pid, namespaces by name):
    Cluster(nodes=3, members=2, pacemaker=True, prefix=None, keep_logs=False,
            token_ms=1000, consensus_ms=1200, standin_units=())  context manager; close()
                                (nodes 1..9; pacemaker=False: corosync only, e.g. CPG;
                                standin_units: a stand-in for systemd's Manager on every
                                node's bus, lab/standin.py, answering as told per unit)
    .lab (the Lab: .sw .rt .cl .tmp, client_reaches, switch_drop, spawn ...)
    .nodes, .node("n2") / .node(2), .cs (Corosync switch netns)
    .wait_online(timeout)       every node online, a DC, quorum (or corosync members)
    .corosync_members(via)      Corosync's member count as node `via` sees it
    .crm(*cmd)                  a Pacemaker CLI on any node that answers
    .mon()                      crm_mon XML (ElementTree) with the operation history
    .running_on(rsc)            node names where rsc is Started (and not failed)
    .wait_running(rsc, on=None, not_on=None, timeout)  -> node name
    .failures()                 crm_mon's failed operations
    .ops(rsc)                   [(node, task, rc, call)] of rsc's operation history
    .add_shared_address(rsc, address, group_if="ipmp0", attribute="mpathd-g0")
    .move(rsc, node) / .clear(rsc)   crm_resource --move / --clear
    .holders(addr)              {node name: [devices]} where addr is in the kernel
    .settle()                   crm_resource --wait
    .reset()                    heal every link, CIB configuration back to the seed,
                                history cleaned, every mpathd running and group ok
    .logs(lines)                the tails of every node's pacemaker, corosync, mpathd log
Service and client (JSON-lines events with times, lab.cluster.Events):
    start_server(node, addr, port) -> (proc, events)   TCP+UDP echo server on the shared
                                address in the node (IP_FREEBIND), greets with its name
    Client(cluster, addr, port) in the client namespace: .ping(), .udp(), .ended()
                                (first reset or EOF), .connections() ({node, t, port,
                                udp_port, attempts}); it reconnects after a reset
Node API:
    .name .index .ns .ports .dir .init_pid .bus .daemon (lab.lab.Daemon) .data (its address)
    .standin                    its SystemdStandIn (.calls(method, unit), .removed(job)) or None
    .exec(*cmd, check=True)     nsenter into the node
    .config(extra_global=..., extra_group=...) -> the node's mpathd.conf text
    .start_mpathd(config=None) / .stop_mpathd() / .kill_mpathd(sig=SIGKILL)
                                (with --hook-host $MPATHD_HOOKHOST or the build's)
    .mpathd_pid()               host pid of the node's mpathd
    .ipmpctl(*args)             ipmpctl inside the node (its bus)
    .wait_group_ok(timeout)     every member of the node's group ok (status.json)
    .shared(addr) -> status.json entry; .attribute(name) -> str | None
    .holders(addr)              the node's devices with addr in the kernel
    .cut_member(i) / .heal_member(i)  the member's switch port down / up
    .cut_group() / .heal_group()       every member's port
    .drop_group() / .undrop_group()    silent: the switch drops every frame from and to
                                       the node's ports (nftables), carrier stays up
    .cut_corosync() / .heal_corosync() the node's Corosync switch port down / up
    .heal()                            all of the above undone
    .stop() + .wait_stopped() (graceful, SIGKILL after 30 s) / .kill() (the whole node)
hold(predicate, seconds, what)  a condition that must stay true (bounded samples)

Teardown (close(), also on failure, SIGTERM/SIGHUP and at exit; a SIGKILLed runner
still takes every node with it by PR_SET_PDEATHSIG on unshare): mpathd SIGTERM, each
node's init SIGTERM (stops pacemakerd, then corosync), SIGKILL of the unshare after 30 s
(--kill-child takes the pid namespace with it), then the Lab removes any leftover
process in its namespaces, the namespaces and its directory; the buses are stopped.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from .bus import Bus
from .echo import Client as EchoClient
from .echo import Events, server_argv
from .standin import SystemdStandIn, standin_policy
from .lab import (REPO_ROOT, Daemon, Lab, LabError, Proc, _run, binary, group_config, mpathd_bin,
                  tail, wait_until)

AGENT = REPO_ROOT / "ocf" / "SharedAddress"
SHARED4 = "198.18.1.50"
RING_NET = "198.18.200"
MEMBERS = ("m0", "m1")
CLUSTER_TOOLS = ("corosync", "pacemakerd", "attrd_updater", "crm_mon", "crm_resource", "cibadmin",
                 "corosync-quorumtool", "nsenter", "unshare", "dbus-daemon")


def ipmpctl_bin() -> str:
    return binary("IPMPCTL_BIN", "build/ipmpctl/ipmpctl")


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL when the process that started us dies (PR_SET_PDEATHSIG; it
    survives the exec). A test runner killed without a chance to clean up (a CTest
    timeout) still takes the nodes with it: unshare --kill-child ends each node. It is
    the starting *thread* that counts: build a Cluster in a thread that outlives it."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def hookhost_bin() -> str:
    return binary("MPATHD_HOOKHOST", "build/hookhost/mpathd-hookhost")


def missing_tools() -> list[str]:
    """The cluster tools this module needs that are not installed (scripts/setup.sh)."""
    return [t for t in CLUSTER_TOOLS if shutil.which(t) is None and not Path(f"/usr/sbin/{t}").exists()]


def unmet(tools: tuple[str, ...] = CLUSTER_TOOLS) -> tuple[str, str] | None:
    """What keeps a cluster lab from running here, or None: ("skip", why) when we are
    not root or one of `tools` is not installed, ("fail", why) when mpathd or ipmpctl is
    not built."""
    if os.geteuid() != 0:
        return "skip", "needs root"
    if missing := [t for t in missing_tools() if t in tools]:
        return "skip", f"not installed: {', '.join(missing)} (scripts/setup.sh installs the cluster packages)"
    for what, path in (("mpathd", mpathd_bin()), ("ipmpctl", ipmpctl_bin())):
        if not os.access(path, os.X_OK):
            return "fail", f"{what} not found at {path}; build it or set MPATHD_BIN/IPMPCTL_BIN"
    return None


def require_lab(tools: tuple[str, ...] = CLUSTER_TOOLS) -> None:
    """For a test module's cluster fixture: pytest.skip or pytest.fail as unmet() says."""
    import pytest  # the lab itself runs without pytest too (tests/lab/cluster_demo.py, bench/)
    if why := unmet(tools):
        (pytest.skip if why[0] == "skip" else pytest.fail)(why[1])


# PID 1 of a node: $1 = hostname, $2 = node dir, $3 = 1 to start pacemakerd.
NODE_INIT = r"""#!/bin/bash
set -u
NAME=$1 D=$2 PCMK=$3
hostname "$NAME"
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mkdir -p /run/lock /run/resource-agents /run/crm /run/dbus
chown hacluster:haclient /run/crm && chmod 750 /run/crm
ln -s "$BUS_SOCKET" /run/dbus/system_bus_socket   # the node's private bus is its system bus
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount --bind "$D/etc-corosync" /etc/corosync
mount --bind "$D/var-lib-corosync" /var/lib/corosync
mount --bind "$D/var-log-corosync" /var/log/corosync
mount --bind "$D/var-lib-pacemaker" /var/lib/pacemaker
mount --bind "$D/var-log-pacemaker" /var/log/pacemaker
for p in heartbeat pacemaker; do
  mkdir -p "$D/ocf/$p"
  if [ -d "/usr/lib/ocf/resource.d/$p" ]; then mount --bind "/usr/lib/ocf/resource.d/$p" "$D/ocf/$p"; fi
done
mkdir -p /usr/lib/ocf/resource.d 2>/dev/null
mount --rbind "$D/ocf" /usr/lib/ocf/resource.d   # adds provider mpathd, the host's tree untouched
export PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none
corosync -f &
if [ "$PCMK" = 1 ]; then
  read -r _ || exit 1  # "go" from the harness once corosync answers (Node.wait_ready polls it)
  pacemakerd &
fi
echo ready > "$D/init.ready"
# Each daemon is stopped and its end awaited (tail --pid also follows a corosync that a
# test restarted, which is not our child); the harness SIGKILLs the node after its timeout.
stop_one() {
  local pid
  for pid in $(pidof "$1"); do
    kill -TERM "$pid" 2>/dev/null
    tail -s 0.1 --pid="$pid" -f /dev/null
  done
}
stop() {
  stop_one pacemakerd
  stop_one corosync
  exit 0
}
trap stop TERM
while :; do wait; done
"""


def corosync_conf(nodes: int, token_ms: int, consensus_ms: int) -> str:
    nodelist = "".join(f"  node {{\n    name: n{k}\n    nodeid: {k}\n    ring0_addr: {RING_NET}.1{k}\n  }}\n"
                       for k in range(1, nodes + 1))
    two_node = "  two_node: 1\n" if nodes == 2 else ""
    return f"""totem {{
  version: 2
  cluster_name: mpathdlab
  transport: knet
  crypto_cipher: none
  crypto_hash: none
  token: {token_ms}
  token_coefficient: 0
  consensus: {consensus_ms}
  interface {{
    linknumber: 0
    knet_transport: udp
  }}
}}
system {{
  move_to_root_cgroup: no
}}
logging {{
  to_logfile: yes
  logfile: /var/log/corosync/corosync.log
  to_syslog: no
  to_stderr: no
  timestamp: hires
}}
quorum {{
  provider: corosync_votequorum
  wait_for_all: 0
{two_node}}}
nodelist {{
{nodelist}}}
"""


# The configuration section the CIB starts with and reset() restores.
BASE_CONFIGURATION = """<configuration>
    <crm_config><cluster_property_set id="cib-bootstrap-options">
      <nvpair id="opt-stonith" name="stonith-enabled" value="false"/>
      <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="2s"/>
    </cluster_property_set></crm_config>
    <nodes/><resources/><constraints/>
    <rsc_defaults><meta_attributes id="rsc-options">
      <nvpair id="rsc-stickiness" name="resource-stickiness" value="100"/>
    </meta_attributes></rsc_defaults>
  </configuration>"""

SEED_CIB = ('<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" '
            f'admin_epoch="0">\n  {BASE_CONFIGURATION}\n  <status/>\n</cib>\n')


def _child_of(pid: int) -> int | None:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


def hold(predicate, seconds: float, what: str, step: float = 0.2) -> int:
    """The opposite of wait_until: predicate() must be truthy in every sample, taken
    every `step` seconds for `seconds`; fails (AssertionError naming `what` and the
    value) at the first sample where it is not. Returns the number of samples."""
    end = time.monotonic() + seconds
    samples = 0

    def check():
        nonlocal samples
        value = predicate()
        samples += 1
        if not value:
            raise AssertionError(f"{what} stopped holding at sample {samples} ({value!r})")
        return time.monotonic() >= end
    wait_until(check, seconds + 30, f"{what} for {seconds:.1f}s", step=step)
    return samples


class Node:
    """One cluster node; see the module doc. Made by Cluster."""

    def __init__(self, cluster: "Cluster", index: int):
        self.cluster = cluster
        self.index = index
        self.name = f"n{index}"
        lab = cluster.lab
        if index == 1:
            self.ns = lab.host  # the Lab's host namespace, members m0.. on ports p0..
            self.ports = [f"p{i}" for i in range(cluster.members)]
        else:
            self.ns = lab.add_host(self.name, members=cluster.members, port_prefix=f"{self.name}p")
            self.ports = [f"{self.name}p{i}" for i in range(cluster.members)]
        self.data = f"198.18.1.1{index}"
        self.ring = f"{RING_NET}.1{index}"
        self.dir = lab.tmp / self.name
        self.bus = Bus(policies=[standin_policy(lab.tmp)] if cluster.standin_units else [])
        self.standin = (SystemdStandIn(lab, self.bus, lab.tmp / f"{self.name}-standin.out", *cluster.standin_units,
                                       name=f"{self.name}-systemd-standin") if cluster.standin_units else None)
        self.daemon: Daemon | None = None
        self.proc: Proc | None = None
        self.init_pid = 0
        self._drops: list[str] = []
        # The Corosync link: port c<k> of the Corosync switch, cl0 in the node.
        lab.sh(cluster.cs, "ip", "link", "add", f"c{index}", "type", "veth", "peer", "name", "cl0",
               "netns", self.ns)
        lab.sh(cluster.cs, "ip", "link", "set", f"c{index}", "master", "br0", "up")
        lab.sh(self.ns, "ip", "addr", "add", f"{self.ring}/24", "dev", "cl0")
        lab.sh(self.ns, "ip", "link", "set", "cl0", "up")

    # -- life
    def _prepare(self) -> None:
        d = self.dir
        for sub in ("etc-corosync", "var-lib-corosync", "var-log-corosync", "var-log-pacemaker",
                    "var-lib-pacemaker/cib", "var-lib-pacemaker/pengine", "var-lib-pacemaker/blackbox",
                    "var-lib-pacemaker/cores", "ocf/mpathd"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        c = self.cluster
        (d / "etc-corosync" / "corosync.conf").write_text(corosync_conf(c.n, c.token_ms, c.consensus_ms))
        (d / "var-lib-pacemaker" / "cib" / "cib.xml").write_text(SEED_CIB)
        shutil.copy(AGENT, d / "ocf" / "mpathd" / "SharedAddress")
        os.chmod(d / "ocf" / "mpathd" / "SharedAddress", 0o755)
        _run(["chown", "-R", "hacluster:haclient", str(d / "var-lib-pacemaker"), str(d / "var-log-pacemaker")])
        os.chmod(d / "var-lib-pacemaker" / "cib" / "cib.xml", 0o600)
        os.chmod(d / "var-log-pacemaker", 0o770)
        (d / "node-init.sh").write_text(NODE_INIT)

    def boot(self) -> None:
        """Starts the node's PID 1 (corosync, pacemakerd); does not wait for membership."""
        self._prepare()
        log = open(self.dir / "init.log", "w")
        popen = subprocess.Popen(["ip", "netns", "exec", self.ns, "unshare", "--mount", "--pid", "--fork",
                                  "--uts", "--ipc", "--mount-proc", "--kill-child", "--",
                                  "bash", str(self.dir / "node-init.sh"), self.name, str(self.dir),
                                  "1" if self.cluster.pacemaker else "0"],
                                 stdout=log, stderr=log, stdin=subprocess.PIPE,
                                 env={**os.environ, "BUS_SOCKET": str(self.bus.socket)},
                                 preexec_fn=_die_with_parent)
        log.close()
        self.proc = Proc(popen, f"cluster-node-{self.name}", self.dir / "init.log")
        self.cluster.lab.procs.append(self.proc)
        # The node's PID 1 (bash node-init.sh), the child of unshare: where clients enter.
        self.init_pid = wait_until(lambda: _child_of(self.proc.pid), 10, f"{self.name}: node init running")

    def wait_ready(self, timeout: float = 20) -> None:
        """Corosync answers; then the node's init is told to start pacemakerd."""
        wait_until(lambda: self.exec("corosync-cfgtool", "-s", check=False, timeout=10).returncode == 0, timeout,
                   f"{self.name}: corosync answers")
        if self.cluster.pacemaker:
            self.proc.popen.stdin.write(b"go\n")
            self.proc.popen.stdin.close()
        wait_until(lambda: (self.dir / "init.ready").exists(), timeout, f"{self.name}: node init ready")

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def stop(self, timeout: float = 30) -> None:
        """Graceful: mpathd, then SIGTERM to the node's init (pacemakerd, then corosync);
        SIGKILL of the whole node after `timeout`."""
        self.stop_mpathd()
        if self.running():
            try:
                os.kill(self.init_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait_stopped(self, timeout: float = 30) -> None:
        if self.proc is None:
            return
        try:
            wait_until(lambda: not self.proc.running(), timeout, f"{self.name} stopped")
        except AssertionError:
            print(f"cluster: {self.name} did not stop in {timeout:.0f}s, killing it", file=sys.stderr)
            self.kill()

    def kill(self) -> None:
        """SIGKILL to unshare: --kill-child takes the node's PID 1 and with it every
        process of its pid namespace."""
        if self.proc is not None:
            self.proc.proc_kill()

    # -- running things inside
    def exec(self, *cmd: str, check: bool = True, timeout: float = 60,
             input: str | None = None) -> subprocess.CompletedProcess:
        """cmd inside every namespace of the node (nsenter -a into its PID 1)."""
        cp = subprocess.run(["nsenter", "-t", str(self.init_pid), "-a", *cmd], capture_output=True, text=True,
                            timeout=timeout, input=input)
        if check and cp.returncode != 0:
            raise LabError(f"{self.name}: {' '.join(cmd)}: exit {cp.returncode}\n{cp.stdout}\n{cp.stderr}")
        return cp

    def ipmpctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.exec(ipmpctl_bin(), *args, check=check)

    def attribute(self, name: str) -> str | None:
        """A transient node attribute of this node (attrd), None when not set."""
        cp = self.exec("attrd_updater", "-Q", "-N", self.name, "-n", name, check=False)
        if cp.returncode != 0:
            return None
        # One line per node ('name="N" host="H" value="V"'): attrd answers for every node.
        for line in cp.stdout.splitlines():
            if f'host="{self.name}"' in line and 'value="' in line:
                return line.split('value="', 1)[1].split('"', 1)[0]
        return None

    # -- mpathd
    def config(self, shared: tuple[str, ...] = (f"{SHARED4}/24",), extra_global: str = "node-attributes = true",
               extra_group: str = "") -> str:
        """The node's mpathd.conf: group g0 (ipmp0) of m0, m1, its data address, the
        shared addresses, probing ARP to the router at FDT 1 s, node attributes on.
        extra_global goes before the group ([[hook]] tables, say: keep
        node-attributes = true in it if wanted)."""
        group_extra = "shared-addresses = [" + ", ".join(f'"{a}"' for a in shared) + "]"
        if extra_group:
            group_extra += "\n" + extra_group
        return group_config(list(MEMBERS[:self.cluster.members]), data_addresses=(f"{self.data}/24",),
                            extra_global=extra_global, extra_group=group_extra)

    def start_mpathd(self, config: str | None = None, wait: bool = True, timeout: float = 30) -> Daemon:
        """Starts the real mpathd inside the node on its private bus; a restart keeps the
        work dir (state). With wait: until started and every member ok."""
        work = self.dir / "mpathd"
        for sub in ("run", "state", "lock"):
            (work / sub).mkdir(parents=True, exist_ok=True)
        if config is not None or not (work / "mpathd.conf").exists():
            (work / "mpathd.conf").write_text(config if config is not None else self.config())
        exe = mpathd_bin()
        if not os.access(exe, os.X_OK):
            raise LabError(f"mpathd binary not found at {exe} (set MPATHD_BIN)")
        (work / "run" / "status.json").unlink(missing_ok=True)
        # [[hook]]s run in mpathd-hookhost: the build's, when there is one.
        hook_host = ["--hook-host", hookhost_bin()] if os.access(hookhost_bin(), os.X_OK) else []
        n = len(list(work.glob("mpathd-*.log")))
        log_path = work / f"mpathd-{n}.log"
        with open(log_path, "w") as log:
            popen = subprocess.Popen(["nsenter", "-t", str(self.init_pid), "-a", exe,
                                      "--config", str(work / "mpathd.conf"), "--runtime-dir", str(work / "run"),
                                      "--state-dir", str(work / "state"), "--lock-dir", str(work / "lock"),
                                      "--log-level", "debug", *hook_host],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.bus.address})
        d = Daemon(popen, work, log_path)
        d.name = f"mpathd-{self.name}"
        self.cluster.lab.procs.append(d)
        self.daemon = d
        if wait:
            d.wait_status(lambda s: s.get("started") is True, timeout, f"{self.name}: mpathd started")
            self.wait_group_ok(timeout)
        return d

    def wait_group_ok(self, timeout: float = 20) -> None:
        self.daemon.wait_status(lambda s: all(m["state"] == "ok" for m in s["groups"][0]["members"]), timeout,
                                f"{self.name}: every member ok")

    def mpathd_pid(self) -> int | None:
        """The host pid of mpathd (the child of nsenter), None when it does not run."""
        if self.daemon is None or not self.daemon.running():
            return None
        return _child_of(self.daemon.pid)

    def kill_mpathd(self, sig: int = signal.SIGKILL) -> None:
        """Sends sig to mpathd itself and waits until it (and its nsenter) ended."""
        pid = wait_until(self.mpathd_pid, 5, f"{self.name}: mpathd's pid")
        os.kill(pid, sig)
        d = self.daemon
        wait_until(lambda: not d.running(), 15, f"{self.name}: mpathd ended")

    def stop_mpathd(self) -> None:
        d = self.daemon
        if d is not None and d.running():
            pid = self.mpathd_pid()
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                    wait_until(lambda: not d.running(), 10, f"{self.name}: mpathd stopped")
                except (ProcessLookupError, AssertionError):
                    pass
            d.stop(timeout=5)

    def shared(self, addr: str = SHARED4) -> dict[str, Any]:
        """The shared address's entry of status.json (state, holder, reason ...)."""
        for g in (self.daemon.status() or {}).get("groups", []):
            for a in g.get("shared", []):
                if a["address"].split("/")[0] == addr:
                    return a
        raise KeyError(f"{self.name}: {addr} not in status.json")

    def holders(self, addr: str = SHARED4) -> list[str]:
        """The node's devices carrying addr in the kernel."""
        return self.cluster.lab.holders(addr, ns=self.ns)

    # -- failures
    def cut_member(self, i: int) -> None:
        self.cluster.lab.sh(self.cluster.lab.sw, "ip", "link", "set", self.ports[i], "down")

    def heal_member(self, i: int) -> None:
        self.cluster.lab.sh(self.cluster.lab.sw, "ip", "link", "set", self.ports[i], "up")

    def cut_group(self) -> None:
        _run(["ip", "-n", self.cluster.lab.sw, "-batch", "-"],
             input="".join(f"link set {p} down\n" for p in self.ports))

    def heal_group(self) -> None:
        _run(["ip", "-n", self.cluster.lab.sw, "-batch", "-"],
             input="".join(f"link set {p} up\n" for p in self.ports))

    def drop_group(self) -> None:
        """Silent failure of the whole group: the switch drops every frame from and to
        the node's ports (one nftables table, one transaction); carriers stay up."""
        lab = self.cluster.lab
        name = f"drop_{self.name}"
        ports = ", ".join(f'"{p}"' for p in self.ports)
        lab.nft(lab.sw, f"table bridge {name} {{\n  chain forward {{\n"
                        f"    type filter hook forward priority 0; policy accept;\n"
                        f"    iifname {{ {ports} }} counter drop\n"
                        f"    oifname {{ {ports} }} counter drop\n  }}\n}}\n")
        self._drops.append(name)

    def undrop_group(self) -> None:
        while self._drops:
            self.cluster.lab.switch_undrop(self._drops.pop())

    def cut_corosync(self) -> None:
        self.cluster.lab.sh(self.cluster.cs, "ip", "link", "set", f"c{self.index}", "down")

    def heal_corosync(self) -> None:
        self.cluster.lab.sh(self.cluster.cs, "ip", "link", "set", f"c{self.index}", "up")

    def heal(self) -> None:
        """Every link of the node up again, no frame dropped."""
        self.undrop_group()
        self.heal_group()
        self.heal_corosync()

    def logs(self, lines: int = 80) -> str:
        parts = []
        for what, path in (("pacemaker", self.dir / "var-log-pacemaker" / "pacemaker.log"),
                           ("corosync", self.dir / "var-log-corosync" / "corosync.log"),
                           ("init", self.dir / "init.log")):
            try:
                parts.append(f"===== {self.name} {what} =====\n{tail(path.read_text(errors='replace'), lines)}")
            except OSError:
                pass
        if self.daemon is not None:
            parts.append(f"===== {self.name} mpathd =====\n{tail(self.daemon.log(), lines)}")
        return "\n".join(parts)


class Cluster:
    """The 3-node lab; see the module doc."""

    def __init__(self, nodes: int = 3, members: int = 2, pacemaker: bool = True, prefix: str | None = None,
                 keep_logs: bool = False, token_ms: int = 1000, consensus_ms: int = 1200,
                 standin_units: tuple[str, ...] = ()):
        if not 1 <= nodes <= 9:
            raise ValueError("nodes must be 1..9")
        self.n, self.members, self.pacemaker = nodes, members, pacemaker
        self.standin_units = standin_units  # non-empty: a systemd stand-in on every node's bus
        self.token_ms, self.consensus_ms = token_ms, consensus_ms
        self.lab = Lab(members=members, prefix=prefix, keep_logs=keep_logs)
        self.cs = f"{self.lab.prefix}-cs"
        self.nodes: list[Node] = []
        self._closed = False

    def __enter__(self) -> "Cluster":
        self.lab.__enter__()
        atexit.register(self.close)  # runs before the Lab's own exit cleanup (LIFO)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            print(self.logs(), file=sys.stderr)
        self.close()

    def _build(self) -> None:
        lab = self.lab
        lab._netns_add(self.cs)
        lab._sysctl(self.cs, "net.ipv6.conf.all.disable_ipv6", 1)
        lab.sh(self.cs, "ip", "link", "add", "br0", "type", "bridge", "stp_state", "0", "forward_delay", "0")
        lab.sh(self.cs, "ip", "link", "set", "br0", "up")
        self.nodes = [Node(self, k) for k in range(1, self.n + 1)]
        for node in self.nodes:
            node.boot()
        for node in self.nodes:
            node.wait_ready()
        self.wait_online()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for node in self.nodes:
            try:
                node.stop()
            except Exception as e:  # noqa: BLE001 - best effort, the lab kills the rest
                print(f"cluster: stopping {node.name}: {e!r}", file=sys.stderr)
        for node in self.nodes:
            try:
                node.wait_stopped()
            except Exception as e:  # noqa: BLE001
                print(f"cluster: {node.name}: {e!r}", file=sys.stderr)
        self.lab.close()  # leftover processes, every namespace, the directory
        for node in self.nodes:
            node.bus.close()
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass

    # -- lookups
    def node(self, which: int | str) -> Node:
        """node(2) or node("n2")."""
        name = which if isinstance(which, str) else f"n{which}"
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def logs(self, lines: int = 60) -> str:
        return "\n".join(n.logs(lines) for n in self.nodes)

    def corosync_members(self, via: Node | None = None) -> int:
        """Corosync's member count as `via` (default n1) sees it."""
        out = (via or self.nodes[0]).exec("corosync-quorumtool", "-s", check=False).stdout
        for line in out.splitlines():
            if line.strip().startswith("Nodes:"):
                return int(line.split(":")[1])
        return 0

    def crm(self, *cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """A Pacemaker CLI on the first node that runs and answers (cibadmin, crm_resource ...)."""
        last: Exception | None = None
        for node in self.nodes:
            if not node.running():
                continue
            try:
                return node.exec(*cmd, check=check, timeout=timeout)
            except LabError as e:
                last = e
        raise last or LabError("no cluster node runs")

    def mon(self, via: Node | None = None) -> ET.Element:
        node = via or next(n for n in self.nodes if n.running())
        return ET.fromstring(node.exec("crm_mon", "-1", "--include=all", "--output-as=xml").stdout)

    def online(self) -> bool:
        """Every node online with a DC and quorum (pacemaker), or every node a Corosync
        member (pacemaker=False), seen from every node."""
        for node in self.nodes:
            if not self.pacemaker:
                if self.corosync_members(node) != self.n:
                    return False
                continue
            try:
                m = self.mon(node)
            except (LabError, ET.ParseError):
                return False
            dc = m.find("./summary/current_dc")
            if dc is None or dc.get("present") != "true" or dc.get("with_quorum") != "true":
                return False
            if any(m.find(f"./nodes/node[@name='{n.name}']") is None
                   or m.find(f"./nodes/node[@name='{n.name}']").get("online") != "true" for n in self.nodes):
                return False
        return True

    def wait_online(self, timeout: float = 60) -> None:
        wait_until(self.online, timeout, "every cluster node online (a DC with quorum)", step=0.2)

    def running_on(self, rsc: str, mon: ET.Element | None = None) -> list[str]:
        """Nodes where rsc is Started and not failed (a pending start does not count)."""
        m = mon if mon is not None else self.mon()
        r = m.find(f"./resources/resource[@id='{rsc}']")
        if r is None or r.get("role") != "Started" or r.get("failed") == "true":
            return []
        return [n.get("name") for n in r.findall("node")]

    def wait_running(self, rsc: str, on: str | None = None, not_on: str | None = None,
                     timeout: float = 30) -> str:
        """Waits until rsc is Started on exactly one node (`on`, or any but `not_on`);
        returns the node's name."""
        def check():
            where = self.running_on(rsc)
            if len(where) == 1 and (on is None or where[0] == on) and where[0] != not_on:
                return where[0]
            return None
        return wait_until(check, timeout, f"{rsc} started on {on or 'a node'}"
                          + (f" other than {not_on}" if not_on else ""), step=0.1)

    def failures(self) -> list[ET.Element]:
        return list(self.mon().iter("failure"))

    def ops(self, rsc: str) -> list[tuple[str, str, str, int]]:
        """rsc's operation history as the CIB keeps it: per node the last operation of
        each kind (a stop replaces the start), as (node, task, rc, call id); task is
        "probe" for a monitor of interval 0, a pending operation has rc 193. Call ids
        count per node."""
        out = []
        for node in self.mon().iter("node"):
            for r in node.findall("resource_history"):
                if r.get("id") != rsc:
                    continue
                for op in r.findall("operation_history"):
                    task = op.get("task")
                    if task == "monitor" and op.get("interval", "0ms") in ("0", "0ms"):
                        task = "probe"
                    out.append((node.get("name"), task, op.get("rc"), int(op.get("call", "0"))))
        return out

    def holders(self, addr: str = SHARED4) -> dict[str, list[str]]:
        """{node name: devices} of every node whose kernel has addr."""
        return {n.name: devs for n in self.nodes if (devs := n.holders(addr))}

    # -- configuration
    def add_shared_address(self, rsc: str, address: str = SHARED4, group_if: str = "ipmp0",
                           attribute: str | None = "mpathd-g0", monitor: str = "1s") -> None:
        """A primitive ocf:mpathd:SharedAddress and, with `attribute`, the ethmonitor-style
        location rule (-INFINITY where the attribute is undefined or <= 0)."""
        self.crm("cibadmin", "--create", "-o", "resources", "--xml-text",
                 f'<primitive id="{rsc}" class="ocf" provider="mpathd" type="SharedAddress">'
                 f'<instance_attributes id="{rsc}-ia">'
                 f'<nvpair id="{rsc}-address" name="address" value="{address}"/>'
                 f'<nvpair id="{rsc}-group" name="group" value="{group_if}"/>'
                 f'<nvpair id="{rsc}-ipmpctl" name="ipmpctl" value="{ipmpctl_bin()}"/>'
                 f'</instance_attributes><operations>'
                 f'<op id="{rsc}-monitor" name="monitor" interval="{monitor}" timeout="20s"/>'
                 f'</operations></primitive>')
        if attribute:
            self.crm("cibadmin", "--create", "-o", "constraints", "--xml-text",
                     f'<rsc_location id="{rsc}-on-healthy" rsc="{rsc}">'
                     f'<rule id="{rsc}-rule" score="-INFINITY" boolean-op="or">'
                     f'<expression id="{rsc}-undef" attribute="{attribute}" operation="not_defined"/>'
                     f'<expression id="{rsc}-zero" attribute="{attribute}" operation="lte" value="0" '
                     f'type="integer"/></rule></rsc_location>')

    def move(self, rsc: str, node: str) -> None:
        self.crm("crm_resource", "--move", "-r", rsc, "-N", node)

    def clear(self, rsc: str) -> None:
        self.crm("crm_resource", "--clear", "-r", rsc)

    def settle(self, timeout: int = 60) -> None:
        """crm_resource --wait: until the cluster has nothing more to do."""
        self.crm("crm_resource", "--wait", f"--timeout={timeout}s", timeout=timeout + 10)

    def reset(self, timeout: float = 60) -> None:
        """Back to a clean cluster for the next test: every node running and whole
        (links healed, nothing dropped), every resource stopped and removed (the CIB
        configuration is the seed's again), the failure history cleaned, every mpathd
        running with its group ok and releasing its shared addresses."""
        for node in self.nodes:
            node.heal()
        for node in self.nodes:
            if node.daemon is not None and not node.daemon.running():
                node.start_mpathd(wait=False)
        self.wait_online(timeout)
        for r in self.mon().iter("resource"):
            if r.get("id") and r.get("role") not in ("Stopped", None):
                self.crm("crm_resource", "--meta", "-r", r.get("id"), "-p", "target-role", "-v", "Stopped",
                         check=False)
        wait_until(lambda: all(r.get("role") in ("Stopped", None) for r in self.mon().iter("resource")), timeout,
                   "every resource stopped", step=0.1)
        self.crm("cibadmin", "--replace", "--scope", "configuration", "--xml-text", BASE_CONFIGURATION)
        self.crm("crm_resource", "--refresh")  # forget every operation and failure

        def clean():
            m = self.mon()
            return not list(m.iter("resource")) and not list(m.iter("failure")) and \
                not list(m.iter("resource_history"))
        wait_until(clean, timeout, "no resource, operation or failure left in the CIB", step=0.1)
        for node in self.nodes:
            if node.daemon is not None:
                node.wait_group_ok(timeout)
                wait_until(lambda n=node: n.attribute("mpathd-g0") == str(self.members), 10,
                           f"{node.name}: mpathd-g0={self.members}")
                for s in (node.daemon.status() or {"groups": []})["groups"][0]["shared"]:
                    if s["state"] != "released":
                        node.ipmpctl("shared", "release", s["address"].split("/")[0], check=False)
                node.daemon.wait_status(lambda st: all(s["state"] == "released" for s in st["groups"][0]["shared"]),
                                        10, f"{node.name}: every shared address released")


# ---------------------------------------------------------------- a service and its client
# The echo server (lab.echo.SERVER) greets with the node's name; the client reconnects
# whenever its TCP connection ends, and TCP and UDP share the port.


def start_server(node: Node, addr: str = SHARED4, port: int = 5080) -> tuple[Proc, Events]:
    """The echo SERVER in node's network namespace on addr:port (TCP and UDP); returns
    (proc, events) once it listens. Stopped by its pid with the lab (or proc.stop())."""
    lab = node.cluster.lab
    events = Events(lab.tmp / f"server-{node.name}-{secrets.token_hex(3)}.jsonl")
    proc = lab.spawn(node.ns, *server_argv(lab, node.name, addr, port, port, events), name=f"server-{node.name}")
    wait_until(lambda: events.of("listening") or events.of("listen_error"), 10, f"{node.name}: server on {addr}")
    if not events.of("listening"):
        raise LabError(f"{node.name}: the server could not listen: {events.all()}")
    return proc, events


class Client(EchoClient):
    """The echo CLIENT in the lab's client namespace (behind the router) to addr:port: one
    UDP socket, a new TCP connection whenever one ends."""

    def __init__(self, cluster: "Cluster", addr: str = SHARED4, port: int = 5080, timeout: float = 10):
        super().__init__(cluster.lab, addr, port, reconnect=True, timeout=timeout)
