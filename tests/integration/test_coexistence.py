"""mpathd next to a real systemd-networkd: with the settings of docs/coexistence.md a
networkd reload and reconfigure of the members leave mpathd's data addresses, its
routes (protocol 77) and its policy rules in place; with networkd's defaults they are
removed (mpathd puts them back, but traffic breaks meanwhile): the settings matter.

networkd runs in the host namespace of the lab, inside a private mount namespace:
a tmpfs on /run/systemd (its state, and the networkd.conf drop-in), the test's
.network files bind-mounted on /etc/systemd/network, /sys read-only so that it does
not wait for udev (as in a container), and a private D-Bus for networkctl. The
machine's own networkd, if any, is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.bus import Bus
from lab.lab import Lab, Proc, wait_until
from mpathd_helpers import V4, V6, start_group

NETWORKD = "/lib/systemd/systemd-networkd"
NETWORKD_POLICY = Path("/usr/share/dbus-1/system.d/org.freedesktop.network1.conf")

pytestmark = [pytest.mark.usefixtures("need_mpathd"),
              pytest.mark.skipif(not os.access(NETWORKD, os.X_OK) or not shutil.which("networkctl"),
                                 reason="systemd-networkd is not installed")]

# docs/coexistence.md, verbatim.
DOCUMENTED_NETWORKD_CONF = """[Network]
ManageForeignRoutes=no
ManageForeignRoutingPolicyRules=no
"""
DOCUMENTED_MEMBER_NETWORK = """[Match]
Name={members}

[Network]
KeepConfiguration=static
LinkLocalAddressing=ipv6
IPv6AcceptRA=no
"""
# What an administrator would write without reading it.
PLAIN_MEMBER_NETWORK = DOCUMENTED_MEMBER_NETWORK.replace("KeepConfiguration=static\n", "")


class Networkd:
    def __init__(self, lab: Lab, bus: Bus, network: str, conf: str | None):
        self.lab, self.bus = lab, bus
        self.dir = lab.tmp / "networkd"
        (self.dir / "network").mkdir(parents=True)
        (self.dir / "network" / "50-mpathd-members.network").write_text(network)
        conf_cmd = ""
        if conf is not None:
            (self.dir / "mpathd.conf").write_text(conf)
            conf_cmd = (f"mkdir -p /run/systemd/networkd.conf.d && "
                        f"cp {self.dir / 'mpathd.conf'} /run/systemd/networkd.conf.d/ && ")
        script = ("mount -t tmpfs -o mode=0755 mpathd-test /run/systemd && "
                  "mkdir -p /run/systemd/netif && chown systemd-network:systemd-network /run/systemd/netif && "
                  f"{conf_cmd}mount --bind {self.dir / 'network'} /etc/systemd/network && "
                  "mount -o remount,bind,ro /sys && exec " + NETWORKD)
        self.log = self.dir / "networkd.log"
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": bus.address, "SYSTEMD_LOG_LEVEL": "debug",
               "SYSTEMD_LOG_TARGET": "console"}
        with open(self.log, "w") as out:
            popen = subprocess.Popen(["ip", "netns", "exec", lab.host, "unshare", "-m", "--propagation",
                                      "private", "sh", "-c", script], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL, env=env)
        self.proc = Proc(popen, "systemd-networkd")
        lab.procs.append(self.proc)

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        # In networkd's namespaces: networkctl reads link states from its /run/systemd.
        cp = subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m", "-n", "networkctl", "--no-pager", *args],
                            capture_output=True, text=True, timeout=30,
                            env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.bus.address})
        if check and cp.returncode != 0:
            raise AssertionError(f"networkctl {' '.join(args)}: {cp.stderr.strip()}\n{self.log.read_text()[-3000:]}")
        return cp

    def setup_states(self, links: list[str]) -> dict[str, str]:
        out = self.ctl("list", "--no-legend", check=False).stdout
        states = {}
        for line in out.splitlines():
            f = line.split()
            if len(f) >= 5 and f[1] in links:
                states[f[1]] = f[4]
        return states

    def wait_configured(self, links: list[str], since: float = 0.0) -> None:
        wait_until(lambda: self.proc.running() and all(
            s == "configured" for s in self.setup_states(links).values())
            and len(self.setup_states(links)) == len(links), 30,
            f"networkd to configure {links}\n{self.log.read_text()[-3000:]}")


def dataplane(lab: Lab) -> dict[str, list[str]]:
    """mpathd's part of the host namespace: data addresses, proto 77 routes, its rules."""
    addrs = [f"{a['dev']} {a['address']}" for a in lab.host_addrs() if a["address"] in (V4, V6)]
    routes = []
    for fam in ("-4", "-6"):
        routes += lab.sh(lab.host, "ip", fam, "route", "show", "table", "all", "proto", "77").splitlines()
    rules = [l for fam in ("-4", "-6") for l in lab.sh(lab.host, "ip", fam, "rule", "show").splitlines()
             if l.startswith("1000:")]
    return {"addresses": sorted(addrs), "routes": sorted(routes), "rules": sorted(rules)}


def mark_monitor(lab: Lab, log: Path, marker: str) -> None:
    """Sets a marker address until `ip monitor` reports it (as lab.AddressMonitor)."""
    def seen():
        lab.ns_exec(lab.host, "ip", "addr", "replace", f"{marker}/32", "dev", "lo")
        return marker in log.read_text()
    wait_until(seen, 10, f"ip monitor to report {marker}")


def run(lab: Lab, network: str, conf: str | None) -> tuple[dict, dict, list[str]]:
    """Starts mpathd and networkd, reloads and reconfigures the members; returns the
    data plane before and after, and the deletions `ip monitor` saw meanwhile."""
    d = start_group(lab, members=["m0", "m1"])
    before = dataplane(lab)
    assert len(before["addresses"]) == 2 and before["routes"] and len(before["rules"]) == 2, before
    with Bus(policies=[NETWORKD_POLICY]) as bus:
        mon_log = lab.tmp / "monitor.log"
        with open(mon_log, "w") as out:
            mon = lab.spawn(lab.host, "ip", "-o", "monitor", "address", "route", "rule", name="ip-monitor",
                            stdout=out)
        mark_monitor(lab, mon_log, "198.18.7.6")  # it listens
        nd = Networkd(lab, bus, network.format(members="m0 m1"), conf)
        wait_until(lambda: nd.ctl("list", check=False).returncode == 0, 20,
                   f"networkd on the bus\n{nd.log.read_text()[-3000:]}")
        nd.wait_configured(["m0", "m1"])
        mark = len(nd.log.read_text())
        nd.ctl("reload")
        nd.ctl("reconfigure", "m0", "m1")
        wait_until(lambda: all(f"{m}: State changed: configuring -> configured" in nd.log.read_text()[mark:]
                               for m in ("m0", "m1")), 30,
                   f"networkd to reconfigure m0 and m1\n{nd.log.read_text()[-3000:]}")
        mark_monitor(lab, mon_log, "198.18.7.7")  # it has seen what networkd did
        after = dataplane(lab)
        nd.proc.stop()
        mon.stop()
    assert d.running()
    deleted = [l for l in mon_log.read_text().splitlines() if l.startswith("Deleted")]
    return before, after, deleted


def ours(deleted: list[str]) -> list[str]:
    return [l for l in deleted if V4 in l or V6 in l or "proto 77" in l or l.startswith("Deleted 1000:")]


@pytest.mark.members(2)
def test_documented_settings_keep_mpathds_data_plane(lab: Lab):
    before, after, deleted = run(lab, DOCUMENTED_MEMBER_NETWORK, DOCUMENTED_NETWORKD_CONF)
    assert ours(deleted) == [], "\n".join(deleted)
    assert after == before


@pytest.mark.members(2)
def test_networkd_defaults_remove_it(lab: Lab):
    before, after, deleted = run(lab, PLAIN_MEMBER_NETWORK, None)
    gone = ours(deleted)
    assert any(V4 in l for l in gone), "\n".join(deleted)
    assert any("proto 77" in l for l in gone), "\n".join(deleted)
    assert any(l.startswith("Deleted 1000:") for l in gone), "\n".join(deleted)
