"""A network lab for mpathd made of network namespaces (python3 stdlib only).

    with Lab(members=3) as lab:
        d = lab.start_mpathd(config_text)
        d.wait_status(lambda s: s["groups"][0]["state"] == "ok", 10, "group ok")
        lab.link_down(0)

Topology (every name below lives inside a namespace this module made; nothing is
created in, or changed in, the namespace the caller runs in):

    host  H: m0..mN-1  --veth--  SW: p0..pN-1 \\
                                              br0 (STP off, forward_delay 0, no snooping;
                                                   ports of m1000.. in br1.., chained to br0)
    router RT: eth0    --veth--  SW: pr       /
      198.18.1.1/24 2001:db8:1::1/64
    (Lab(group_size=K): one bridge per K members instead, brG holding m(G*K).., each
     with a router port of its own: pr in br0 (RT's eth0), prG in brG <-> RT's lanG,
     which has no address; the router answers ARP for 198.18.1.1 on every lanG.)
    router RT: eth1    --veth--  client CL: eth0
      198.19.0.1/24 2001:db8:2::1/64          198.19.0.2/24 2001:db8:2::2/64

Failures are made as on real networks: link_down(i) takes the switch port down (the
member loses carrier), silent_fail(i) unplugs the port from the bridge (carrier stays
up, nothing passes), switch_drop()/oneway_loss(i) drop some or all frames in the switch
with nftables (one-way loss, random loss), router_del_address() removes a probe target.
cpu_hog() loads the CPUs with busy loops that end by a deadline.

Namespace names are unique per lab ("mpd<6 hex>-sw", ...). Every namespace, process
and temporary file a lab made is removed on exit, also on failure, on SIGTERM/SIGHUP
(the guard turns them into SystemExit) and at interpreter exit (atexit).

Waits are bounded polls on a condition: wait_until(predicate, timeout, what).
"""

from __future__ import annotations

import atexit
import glob
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

REPO_ROOT = Path(__file__).resolve().parents[2]

# Addresses of the lab (RFC 2544 benchmarking range and the IPv6 documentation prefix).
ROUTER_LAN4 = "198.18.1.1"
ROUTER_LAN6 = "2001:db8:1::1"
ROUTER_WAN4 = "198.19.0.1"
ROUTER_WAN6 = "2001:db8:2::1"
CLIENT4 = "198.19.0.2"
CLIENT6 = "2001:db8:2::2"
LAN4_PREFIX = 24
LAN6_PREFIX = 64
PORTS_PER_BRIDGE = 1000  # a Linux bridge takes at most 1023 ports

POLL_STEP = 0.02

# nftables matches (bridge family) for the probe protocols.
_NFT_PROTO_MATCH = {"arp": "ether type arp", "icmp": "ip protocol icmp",
                    "icmpv6": "ip6 nexthdr icmpv6"}


class LabError(RuntimeError):
    pass


class WaitTimeout(AssertionError):
    """A bounded wait ran out. An AssertionError so pytest reports it as a failure."""


def wait_until(predicate: Callable[[], Any], timeout: float, what: str,
               step: float = POLL_STEP) -> Any:
    """Polls predicate until it returns a truthy value, which is returned.

    Raises WaitTimeout naming `what` (and the last value or exception seen) when
    `timeout` seconds pass first. The only place in the lab that sleeps.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    while True:
        try:
            last = predicate()
            last_exc = None
            if last:
                return last
        except (LabError, OSError, ValueError, KeyError, IndexError, TypeError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            detail = f"last exception: {last_exc!r}" if last_exc else f"last value: {last!r}"
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {what} ({detail})")
        time.sleep(step)


def binary(env: str, default: str) -> str:
    """The path of a binary under test: $env, else `default` under the repo root."""
    path = os.environ.get(env) or str(REPO_ROOT / default)
    return path


def require_daemon_lab(*binaries: tuple[str, str]) -> None:
    """For a test module's fixture that runs mpathd on a private bus: pytest.skip without
    root or dbus-daemon, pytest.fail when one of `binaries` ((what, path)) is not built."""
    import pytest  # the lab itself runs without pytest too (demos, benches)
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for what, path in binaries:
        if not os.access(path, os.X_OK):
            pytest.fail(f"{what} not found at {path}")
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon not installed")


# Inside `ip netns exec` (a private mount namespace with a fresh /sys): mounts the
# cgroup2 hierarchy again at /sys/fs/cgroup, where a test's cgroup is seen.
CGROUP2_IN_NS = "mount -t cgroup2 cgroup2 /sys/fs/cgroup"


def cgroup2_mount() -> str | None:
    """Where the cgroup2 hierarchy is mounted in our namespace, or None."""
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[2] == "cgroup2":
            return parts[1]
    return None


def remove_cgroup(path: str, timeout: float = 10) -> None:
    """Removes a test's (empty) cgroup; waits while its last processes leave it."""
    def gone() -> bool:
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass
        except OSError:
            return False
        return True
    wait_until(gone, timeout, f"cgroup {path} removed")


def mpathd_bin() -> str:
    return binary("MPATHD_BIN", "build/mpathd/mpathd")


def flowtool_bin() -> str:
    return binary("FLOWTOOL_BIN", "build/tests/tools/flowtool")


def _run(cmd: list[str], check: bool = True, timeout: float = 30,
         input: str | None = None) -> subprocess.CompletedProcess:
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    if check and cp.returncode != 0:
        raise LabError(f"command failed ({cp.returncode}): {' '.join(cmd)}\n"
                       f"stdout: {cp.stdout.strip()}\nstderr: {cp.stderr.strip()}")
    return cp


# ---------------------------------------------------------------- cleanup guard

_live_labs: list["Lab"] = []
_guard_installed = False
_guard_lock = threading.Lock()


def _cleanup_all() -> None:
    for lab in list(_live_labs):
        try:
            lab.close()
        except Exception as e:  # noqa: BLE001 - best effort at exit
            print(f"lab: cleanup of {lab.prefix} failed: {e}", file=sys.stderr)


def _on_signal(signum, frame):  # noqa: ARG001
    # Unwind through the context managers (they clean up), then exit.
    raise SystemExit(128 + signum)


def _install_guard() -> None:
    global _guard_installed
    with _guard_lock:
        if _guard_installed:
            return
        atexit.register(_cleanup_all)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) in (signal.SIG_DFL, None):
                    signal.signal(sig, _on_signal)
        _guard_installed = True


# ---------------------------------------------------------------- root snapshot

_VOLATILE_KEYS = {"valid_life_time", "preferred_life_time", "expires", "used", "updated",
                  "stats", "stats64", "lastused"}


def _scrub(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items() if k not in _VOLATILE_KEYS}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


def root_snapshot() -> dict[str, Any]:
    """Links, addresses, routes, rules (IPv4 and IPv6) and the member sysctls of the
    namespace this process runs in, scrubbed of counters and lifetimes, so that two
    snapshots compare equal when nothing was changed."""
    snap: dict[str, Any] = {}
    queries = {
        "link": ["ip", "-j", "link", "show"],
        "addr4": ["ip", "-j", "-4", "addr", "show"],
        "addr6": ["ip", "-j", "-6", "addr", "show"],
        "route4": ["ip", "-j", "-4", "route", "show", "table", "all"],
        "route6": ["ip", "-j", "-6", "route", "show", "table", "all"],
        "rule4": ["ip", "-j", "-4", "rule", "show"],
        "rule6": ["ip", "-j", "-6", "rule", "show"],
    }
    for key, cmd in queries.items():
        out = _run(cmd).stdout.strip()
        data = json.loads(out) if out else []
        if key == "link":  # operstate of unrelated links may flap; keep what we could change
            data = [{k: v for k, v in l.items() if k in ("ifindex", "ifname", "flags", "mtu",
                                                         "address", "master", "link_type")}
                    for l in data]
        snap[key] = _scrub(data)
    sysctls = {}
    for path in sorted(glob.glob("/proc/sys/net/ipv4/conf/*/arp_ignore")
                       + glob.glob("/proc/sys/net/ipv4/conf/*/arp_announce")
                       + glob.glob("/proc/sys/net/ipv4/conf/*/rp_filter")
                       + glob.glob("/proc/sys/net/ipv4/conf/*/promote_secondaries")
                       + ["/proc/sys/net/ipv4/ip_forward",
                          "/proc/sys/net/ipv6/conf/all/forwarding"]):
        try:
            sysctls[path] = Path(path).read_text().strip()
        except OSError:
            pass
    snap["sysctl"] = sysctls
    return snap


def snapshot_diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    """A readable description of what differs between two root snapshots ('' if none)."""
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            lines.append(f"--- {key} before:\n{json.dumps(a.get(key), indent=1)[:3000]}")
            lines.append(f"+++ {key} after:\n{json.dumps(b.get(key), indent=1)[:3000]}")
    return "\n".join(lines)


# ---------------------------------------------------------------- processes

class Proc:
    """A process the lab started inside one of its namespaces; ended by its pid."""

    def __init__(self, popen: subprocess.Popen, name: str, log_path: Path | None = None):
        self.popen = popen
        self.name = name
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def send_signal(self, sig: int) -> None:
        if self.running():
            os.kill(self.popen.pid, sig)

    def proc_kill(self) -> int:
        """SIGKILL to our own pid (a crash, as far as the daemon can tell); reaps it."""
        if self.running():
            os.kill(self.popen.pid, signal.SIGKILL)
        return self.popen.wait(timeout=10)

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int:
        """Sends `sig` to our own pid, waits up to `timeout`, then SIGKILL."""
        if self.running():
            try:
                os.kill(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                print(f"lab: {self.name} (pid {self.pid}) ignored signal {sig}, killing",
                      file=sys.stderr)
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=timeout)
        return self.popen.returncode


class Flow(Proc):
    """A running `flowtool udp|tcp`; result() stops it (if asked) and parses its JSON."""

    def __init__(self, popen: subprocess.Popen, name: str, progress_path: Path):
        super().__init__(popen, name)
        self.progress_path = progress_path
        self._result: dict[str, Any] | None = None
        self._stderr = ""

    def progress(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.progress_path.read_text())
        except (OSError, ValueError):
            return None

    def wait_flowing(self, timeout: float = 10.0) -> dict[str, Any]:
        """Waits until at least one reply/echo came back."""
        def check():
            if not self.running() and self._result is None:
                raise LabError(f"{self.name} exited early: {self.result()}")
            p = self.progress()
            return p if p and p["received"] > 0 else None
        return wait_until(check, timeout, f"{self.name}: first reply")

    def wait_replies_after(self, t_ms: float, timeout: float, count: int = 1) -> dict[str, Any]:
        """Waits until a reply arrived later than t_ms (flow time, see elapsed_ms)."""
        base = self.progress() or {"received": 0}

        def check():
            p = self.progress()
            return p if p and p["last_reply_ms"] > t_ms and \
                p["received"] >= base["received"] + count else None
        return wait_until(check, timeout, f"{self.name}: replies after {t_ms:.0f} ms")

    def elapsed_ms(self) -> float:
        p = self.progress()
        return p["elapsed_ms"] if p else 0.0

    def result(self, stop: bool = False, timeout: float = 30.0) -> dict[str, Any]:
        if self._result is not None:
            return self._result
        if stop:
            self.send_signal(signal.SIGINT)
        try:
            out, err = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(timeout=2)
            out, err = self.popen.communicate(timeout=5)
        self._stderr = err or ""
        line = (out or "").strip().splitlines()
        if not line:
            raise LabError(f"{self.name}: no result (rc {self.popen.returncode}); "
                           f"stderr: {self._stderr.strip()}")
        self._result = json.loads(line[-1])
        return self._result


class Daemon(Proc):
    """mpathd running in the host namespace with private config/runtime/state dirs."""

    def __init__(self, popen: subprocess.Popen, workdir: Path, log_path: Path):
        super().__init__(popen, "mpathd", log_path)
        self.workdir = workdir
        self.config_path = workdir / "mpathd.conf"
        self.runtime_dir = workdir / "run"
        self.state_dir = workdir / "state"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            return ""

    def status(self) -> dict[str, Any] | None:
        """runtime-dir/status.json parsed, or None until it exists."""
        try:
            return json.loads((self.runtime_dir / "status.json").read_text())
        except (OSError, ValueError):
            return None

    def wait_status(self, pred: Callable[[dict[str, Any]], Any], timeout: float = 10.0,
                    what: str = "status condition") -> dict[str, Any]:
        """Polls status.json until pred(status) is truthy; returns that status.
        Fails at once (with the log tail) if the daemon exits."""
        def check():
            if not self.running():
                raise AssertionError(f"mpathd exited with {self.popen.returncode} while waiting "
                                     f"for {what}; log tail:\n{tail(self.log(), 60)}")
            s = self.status()
            return s if s is not None and pred(s) else None
        try:
            return wait_until(check, timeout, what)
        except WaitTimeout as e:
            raise WaitTimeout(f"{e}\nlast status.json: {json.dumps(self.status(), indent=1)}")

    def hold_status(self, pred: Callable[[dict[str, Any]], Any], seconds: float,
                    what: str = "status condition", step: float = 0.1) -> int:
        """The opposite of wait_status: pred(status) must hold in every sample taken
        every `step` seconds for `seconds` (a bounded loop with a deadline). Fails at
        the first sample where it does not (or if the daemon exits); returns the number
        of samples."""
        start = time.monotonic()
        end = start + seconds
        samples = 0

        def check():
            nonlocal samples
            if not self.running():
                raise AssertionError(f"mpathd exited with {self.popen.returncode} while "
                                     f"holding {what}; log tail:\n{tail(self.log(), 60)}")
            s = self.status()
            if s is not None:
                samples += 1
                if not pred(s):
                    raise AssertionError(
                        f"{what} stopped holding after {time.monotonic() - start:.2f}s "
                        f"(sample {samples}); status.json:\n{json.dumps(s, indent=1)}")
            return time.monotonic() >= end
        wait_until(check, seconds + 10, f"{what} for {seconds:.1f}s", step=step)
        return samples

    # Convenience lookups on the current status.
    def group(self, name: str | None = None, status: dict | None = None) -> dict[str, Any]:
        s = status or self.status() or {}
        groups = s.get("groups", [])
        for g in groups:
            if name is None or g["name"] == name:
                return g
        raise KeyError(f"group {name} not in status")

    def member(self, name: str, status: dict | None = None) -> dict[str, Any]:
        s = status or self.status() or {}
        for g in s.get("groups", []):
            for m in g.get("members", []):
                if m["name"] == name:
                    return m
        raise KeyError(f"member {name} not in status")

    def address(self, addr: str, status: dict | None = None) -> dict[str, Any]:
        s = status or self.status() or {}
        for g in s.get("groups", []):
            for a in g.get("addresses", []):
                if a["address"].split("/")[0] == addr.split("/")[0]:
                    return a
        raise KeyError(f"address {addr} not in status")


def tail(text: str, n: int) -> str:
    return "\n".join(text.splitlines()[-n:])


# ---------------------------------------------------------------- the lab

class Lab:
    """Switch, router, client and host-under-test namespaces; see the module doc."""

    def __init__(self, members: int = 3, prefix: str | None = None, keep_logs: bool = False,
                 ageing_time: int | None = None, group_size: int | None = None):
        """group_size: one broadcast domain (bridge) per group_size members, each with
        a router port of its own (benches: a broadcast probe is flooded to
        group_size + 1 ports rather than to every member's)."""
        if not 1 <= members <= 1024:
            raise ValueError("members must be 1..1024")
        if group_size is not None and not 1 <= group_size <= PORTS_PER_BRIDGE:
            raise ValueError(f"group_size must be 1..{PORTS_PER_BRIDGE}")
        self.group_size = group_size
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces)")
        self.n = members
        self.prefix = prefix or f"mpd{secrets.token_hex(3)}"
        self.sw = f"{self.prefix}-sw"
        self.rt = f"{self.prefix}-rt"
        self.cl = f"{self.prefix}-cl"
        self.host = f"{self.prefix}-h"
        self.namespaces = [self.sw, self.rt, self.cl, self.host]
        self.ageing_time = ageing_time
        self.keep_logs = keep_logs
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-"))
        self.procs: list[Proc] = []
        self.daemons: list[Daemon] = []
        self._made: list[str] = []
        self._closed = False
        self._port = 7000
        self._nft_tables = 0

    # -- context manager
    def __enter__(self) -> "Lab":
        _install_guard()
        _live_labs.append(self)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self.daemons:
            print(self.logs_text(), file=sys.stderr)
        self.close()

    # -- construction
    def _netns_add(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._made.append(name)
        self.sh(name, "ip", "link", "set", "lo", "up")

    def _sysctl(self, ns: str, key: str, value: str | int) -> None:
        path = "/proc/sys/" + key.replace(".", "/")
        # Interface names never contain dots here, so the dotted form is unambiguous.
        self.sh(ns, "sh", "-c", f"echo {value} > {path}")

    def _build(self) -> None:
        for ns in self.namespaces:
            self._netns_add(ns)
        sw, rt, cl, h = self.sw, self.rt, self.cl, self.host

        # The switch: a bridge without STP delays or multicast snooping (the NS for a
        # moved IPv6 address must reach the new holder at once).
        self._sysctl(sw, "net.ipv6.conf.all.disable_ipv6", 1)  # the switch speaks nothing
        # A Linux bridge has at most 1023 ports: bigger labs (bench/scale.py) chain more
        # bridges to br0 by a veth pair each (upK in br0, dnK in brK). With group_size,
        # the bridges are not chained: each has a router port (prK <-> RT's lanK).
        # One `ip -batch` for all bridges (256 of them at 256 x 4).
        br_opts = "type bridge stp_state 0 forward_delay 0 mcast_snooping 0"
        if self.ageing_time is not None:
            br_opts += f" ageing_time {self.ageing_time}"
        batch = ""
        for k in range(self.bridges()):
            batch += f"link add br{k} {br_opts}\nlink set br{k} up\n"
            if k and self.group_size is not None:
                batch += (f"link add pr{k} type veth peer name lan{k} netns {rt}\n"
                          f"link set pr{k} master br{k} up\n")
            elif k:
                batch += (f"link add up{k} type veth peer name dn{k}\n"
                          f"link set up{k} master br0 up\nlink set dn{k} master br{k} up\n")
        if self.group_size is not None:
            # Before the router's lanK exist: they answer ARP without an address of
            # their own (arp_ignore 0), and no reverse-path check may refuse it.
            for key in ("all", "default"):
                self._sysctl(rt, f"net.ipv4.conf.{key}.rp_filter", 0)
                self._sysctl(rt, f"net.ipv4.conf.{key}.arp_ignore", 0)
            self._sysctl(rt, "net.ipv6.conf.default.disable_ipv6", 1)  # lanK: IPv4 only
        _run(["ip", "-n", sw, "-batch", "-"], input=batch)
        if self.group_size is not None:
            self._sysctl(rt, "net.ipv6.conf.default.disable_ipv6", 0)  # eth0, eth1: IPv6
        if self.group_size is not None and self.bridges() > 1:
            _run(["ip", "-n", rt, "-batch", "-"],
                 input="".join(f"link set lan{k} up\n" for k in range(1, self.bridges())))

        # Created from inside the switch namespace: no name ever appears outside it.
        # One `ip -batch` for all members keeps big labs (benches) quick to build.
        batch = "".join(f"link add p{i} type veth peer name m{i} netns {h}\n"
                        f"link set p{i} master {self.bridge_of(i)} up\n" for i in range(self.n))
        _run(["ip", "-n", sw, "-batch", "-"], input=batch)
        self.sh(sw, "ip", "link", "add", "pr", "type", "veth", "peer", "name", "eth0",
                "netns", rt)
        self.sh(sw, "ip", "link", "set", "pr", "master", "br0", "up")
        self.sh(rt, "ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth0",
                "netns", cl)

        # Router.
        self._sysctl(rt, "net.ipv4.ip_forward", 1)
        self._sysctl(rt, "net.ipv6.conf.all.forwarding", 1)
        for dev in ("eth0", "eth1"):
            self._sysctl(rt, f"net.ipv6.conf.{dev}.accept_dad", 0)
        self.sh(rt, "ip", "addr", "add", f"{ROUTER_LAN4}/{LAN4_PREFIX}", "dev", "eth0")
        self.sh(rt, "ip", "addr", "add", f"{ROUTER_LAN6}/{LAN6_PREFIX}", "dev", "eth0", "nodad")
        self.sh(rt, "ip", "addr", "add", f"{ROUTER_WAN4}/24", "dev", "eth1")
        self.sh(rt, "ip", "addr", "add", f"{ROUTER_WAN6}/64", "dev", "eth1", "nodad")
        self.sh(rt, "ip", "link", "set", "eth0", "up")
        self.sh(rt, "ip", "link", "set", "eth1", "up")

        # Client.
        self._sysctl(cl, "net.ipv6.conf.eth0.accept_dad", 0)
        self._sysctl(cl, "net.ipv6.conf.eth0.accept_ra", 0)
        self.sh(cl, "ip", "addr", "add", f"{CLIENT4}/24", "dev", "eth0")
        self.sh(cl, "ip", "addr", "add", f"{CLIENT6}/64", "dev", "eth0", "nodad")
        self.sh(cl, "ip", "link", "set", "eth0", "up")
        self.sh(cl, "ip", "route", "add", "default", "via", ROUTER_WAN4)
        self.sh(cl, "ip", "-6", "route", "add", "default", "via", ROUTER_WAN6)

        # Host under test: members up, no data addresses (mpathd places them).
        self._sysctl(h, "net.ipv6.conf.default.accept_ra", 0)
        self.sh(h, "sh", "-c", " ".join(f"echo 0 > /proc/sys/net/ipv6/conf/m{i}/accept_ra;"
                                        for i in range(self.n)))
        _run(["ip", "-n", h, "-batch", "-"], input="".join(f"link set m{i} up\n" for i in range(self.n)))

        def members_up():
            up = {l["ifname"] for l in self.ip_json(h, "link", "show") if l.get("operstate") == "UP"}
            return all(f"m{i}" in up for i in range(self.n))
        wait_until(members_up, 10 + self.n / 20, "host members to come up")
        wait_until(lambda: self._oper_up(rt, "eth0") and self._oper_up(cl, "eth0"), 10,
                   "router and client links to come up")

    def add_host(self, suffix: str, members: int = 3, port_prefix: str = "q") -> str:
        """Another host namespace on the same switch (a second cluster node): members
        m0..m{members-1} inside it, on switch ports <port_prefix>0.. (take one down with
        `sh(lab.sw, "ip", "link", "set", "<port>", "down")`). Removed with the lab.
        Returns the namespace's name."""
        ns = f"{self.prefix}-{suffix}"
        self._netns_add(ns)
        self._sysctl(ns, "net.ipv6.conf.default.accept_ra", 0)
        batch = "".join(f"link add {port_prefix}{i} type veth peer name m{i} netns {ns}\n"
                        f"link set {port_prefix}{i} master br0 up\n" for i in range(members))
        _run(["ip", "-n", self.sw, "-batch", "-"], input=batch)
        self.sh(ns, "sh", "-c", " ".join(f"echo 0 > /proc/sys/net/ipv6/conf/m{i}/accept_ra;"
                                         for i in range(members)))
        _run(["ip", "-n", ns, "-batch", "-"], input="".join(f"link set m{i} up\n" for i in range(members)))
        wait_until(lambda: all(self._oper_up(ns, f"m{i}") for i in range(members)), 10,
                   f"members of {ns} to come up")
        return ns

    def _oper_up(self, ns: str, dev: str) -> bool:
        info = self.link_info(ns, dev)
        return info.get("operstate") == "UP"

    # -- teardown
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for p in reversed(self.procs):
            try:
                p.stop(timeout=5)
            except Exception as e:  # noqa: BLE001
                print(f"lab: stopping {p.name} (pid {p.pid}) failed: {e}", file=sys.stderr)
        for ns in reversed(self._made):
            # Anything still running in a namespace this lab made was started by it.
            pids = _run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                print(f"lab: leftover process {pid} in {ns}, killing it", file=sys.stderr)
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            cp = _run(["ip", "netns", "del", ns], check=False)
            if cp.returncode != 0:
                print(f"lab: ip netns del {ns}: {cp.stderr.strip()}", file=sys.stderr)
        self._made.clear()
        if not self.keep_logs:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self in _live_labs:
            _live_labs.remove(self)

    # -- running things
    def ns_exec(self, ns: str, *cmd: str, check: bool = False, timeout: float = 30,
                input: str | None = None) -> subprocess.CompletedProcess:
        return _run(["ip", "netns", "exec", ns, *cmd], check=check, timeout=timeout, input=input)

    def sh(self, ns: str, *cmd: str, timeout: float = 30) -> str:
        """Runs cmd in namespace ns; raises LabError on failure; returns stdout."""
        return self.ns_exec(ns, *cmd, check=True, timeout=timeout).stdout

    def ip_json(self, ns: str, *args: str) -> Any:
        out = _run(["ip", "-n", ns, "-j", *args]).stdout.strip()
        return json.loads(out) if out else []

    def spawn(self, ns: str, *cmd: str, name: str | None = None,
              stdout=subprocess.DEVNULL, stderr=None) -> Proc:
        log_path = None
        if stderr is None:
            log_path = self.tmp / f"{name or Path(cmd[0]).name}-{len(self.procs)}.log"
            stderr = open(log_path, "w")
        popen = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=stdout,
                                 stderr=stderr, stdin=subprocess.DEVNULL,
                                 text=True)
        if hasattr(stderr, "close"):
            stderr.close()
        p = Proc(popen, name or cmd[0], log_path)
        self.procs.append(p)
        return p

    # -- failures
    def link_down(self, i: int) -> None:
        """The switch port of member i goes down: the member loses carrier."""
        self.sh(self.sw, "ip", "link", "set", f"p{i}", "down")

    def link_up(self, i: int) -> None:
        self.sh(self.sw, "ip", "link", "set", f"p{i}", "up")

    def silent_fail(self, i: int) -> None:
        """Member i's port leaves the bridge: carrier stays up, nothing passes."""
        self.sh(self.sw, "ip", "link", "set", f"p{i}", "nomaster")

    def silent_restore(self, i: int) -> None:
        self.sh(self.sw, "ip", "link", "set", f"p{i}", "master", self.bridge_of(i))

    def bridges(self) -> int:
        """How many bridges the switch has (br0..)."""
        return 1 + (self.n - 1) // (self.group_size or PORTS_PER_BRIDGE)

    def bridge_of(self, i: int) -> str:
        """The switch's bridge that member i's port is in."""
        return f"br{i // (self.group_size or PORTS_PER_BRIDGE)}"

    # -- frame filtering in the switch (nftables, bridge family)
    @staticmethod
    def switch_port(p: int | str) -> str:
        """A switch port: member index i -> "p{i}", "router" -> "pr", else the name."""
        if isinstance(p, int):
            return f"p{p}"
        return "pr" if p == "router" else p

    def nft(self, ns: str, script: str) -> None:
        """Runs an nft script (`nft -f -`) in namespace ns; one atomic transaction."""
        self.ns_exec(ns, "nft", "-f", "-", check=True, input=script)

    def switch_drop(self, *, iif: int | str | None = None, oif: int | str | None = None,
                    both_ways: bool = False, protocols: Iterable[str] | None = None,
                    percent: float | None = None, name: str | None = None) -> str:
        """Makes the switch drop frames it forwards from port `iif` to port `oif` (a
        member index, "router" or a port name; None: any port). With both_ways, also
        from `oif` to `iif`, in the same transaction. `protocols` limits it to some of
        "arp", "icmp", "icmpv6" (default: every frame). `percent` drops that share of
        the matching frames at random (nftables numgen), else all of them.

        Each call makes its own table `bridge <name>`; switch_undrop(name) removes it.
        Every rule counts what it matched and what it dropped (switch_drop_counts)."""
        if percent is not None and not 0 < percent <= 100:
            raise ValueError("percent must be in (0, 100]")
        self._nft_tables += 1
        name = name or f"drop{self._nft_tables}"
        protos = list(protocols) if protocols is not None else [None]
        bad = [p for p in protos if p is not None and p not in _NFT_PROTO_MATCH]
        if bad:
            raise ValueError(f"unknown protocols {bad}; known: {sorted(_NFT_PROTO_MATCH)}")
        ways = [(iif, oif)] + ([(oif, iif)] if both_ways else [])
        rules = []
        for i, o in ways:
            ports = ((f'iifname "{self.switch_port(i)}" ' if i is not None else "")
                     + (f'oifname "{self.switch_port(o)}" ' if o is not None else ""))
            for proto in protos:
                match = ports + (_NFT_PROTO_MATCH[proto] + " " if proto else "")
                if percent is None:
                    rules.append(f"{match}counter drop comment \"drop\"")
                else:
                    # The first rule counts every matching frame, the second drops a share.
                    rules.append(f"{match}counter comment \"seen\"")
                    rules.append(f"{match}numgen random mod 1000000 < "
                                 f"{round(percent * 10000)} counter drop comment \"drop\"")
        body = "\n".join(f"    {r}" for r in rules)
        self.nft(self.sw, f"table bridge {name} {{\n  chain forward {{\n"
                          f"    type filter hook forward priority 0; policy accept;\n"
                          f"{body}\n  }}\n}}\n")
        return name

    def switch_undrop(self, name: str) -> None:
        """Removes a table made by switch_drop: frames pass again."""
        self.ns_exec(self.sw, "nft", "delete", "table", "bridge", name, check=True)

    def switch_drop_counts(self, name: str) -> dict[str, int]:
        """Packets counted by a switch_drop table: {"seen": n, "dropped": n} ("seen" is
        only counted with `percent`; without it every matching frame is dropped)."""
        out = self.ns_exec(self.sw, "nft", "-j", "list", "table", "bridge", name,
                           check=True).stdout
        counts = {"seen": 0, "dropped": 0}
        for item in json.loads(out).get("nftables", []):
            rule = item.get("rule")
            if not rule:
                continue
            packets = sum(e["counter"]["packets"] for e in rule.get("expr", [])
                          if isinstance(e, dict) and "counter" in e)
            counts["dropped" if rule.get("comment") == "drop" else "seen"] += packets
        return counts

    def oneway_loss(self, i: int, towards: int | str = "router") -> str:
        """Member i's frames towards `towards` (default the router) are dropped at the
        switch; the other direction still passes. Returns the name for switch_undrop."""
        return self.switch_drop(iif=i, oif=towards)

    # -- the router's LAN addresses (probe targets)
    def router_add_address(self, addr: str, dev: str = "eth0") -> None:
        """Adds an address ("198.18.1.2/24", "fe80::1/64") to the router. IPv4 secondary
        addresses are promoted, so removing the router's first address keeps them."""
        if ":" in addr:
            self.sh(self.rt, "ip", "addr", "add", addr, "dev", dev, "nodad")
        else:
            self._sysctl(self.rt, f"net.ipv4.conf.{dev}.promote_secondaries", 1)
            self.sh(self.rt, "ip", "addr", "add", addr, "dev", dev)

    def router_del_address(self, addr: str, dev: str = "eth0") -> None:
        self.sh(self.rt, "ip", "addr", "del", addr, "dev", dev)

    # -- load
    def cpu_hog(self, seconds: float, count: int | None = None,
                ns: str | None = None) -> list[Proc]:
        """Busy loops, one per CPU by default, in the host namespace (default). Each
        ends by itself after `seconds` (a deadline, not a sleep) and is also stopped by
        its pid when the lab closes; stop them earlier with stop_procs()."""
        count = count or os.cpu_count() or 1
        code = ("import time\nend = time.monotonic() + float(__import__('sys').argv[1])\n"
                "while time.monotonic() < end:\n    pass\n")
        return [self.spawn(ns or self.host, sys.executable, "-c", code, str(seconds),
                           name=f"cpu-hog-{k}") for k in range(count)]

    def stop_procs(self, procs: Iterable[Proc]) -> None:
        for p in procs:
            p.stop(timeout=5)

    # -- observations
    def link_info(self, ns: str, dev: str) -> dict[str, Any]:
        data = self.ip_json(ns, "link", "show", "dev", dev)
        return data[0] if data else {}

    def member_mac(self, i: int) -> str:
        return self.link_info(self.host, f"m{i}")["address"]

    def set_member_mac(self, i: int, mac: str) -> None:
        self.sh(self.host, "ip", "link", "set", f"m{i}", "address", mac)

    def host_addrs(self, dev: str | None = None, ns: str | None = None) -> list[dict[str, Any]]:
        """`ip -j addr` of the host namespace (or one device; or another host, ns) as a
        list of {"dev", "address", "prefixlen", "family", "scope", "flags"} entries."""
        args = ["addr", "show"] + (["dev", dev] if dev else [])
        out = []
        for link in self.ip_json(ns or self.host, *args):
            for a in link.get("addr_info", []):
                out.append({"dev": link["ifname"], "address": a["local"],
                            "prefixlen": a["prefixlen"], "family": a["family"],
                            "scope": a.get("scope"),
                            "flags": [k for k in ("nodad", "tentative", "dadfailed",
                                                  "deprecated", "noprefixroute")
                                      if a.get(k)]})
        return out

    def holders(self, addr: str, ns: str | None = None) -> list[str]:
        """Every host device carrying addr (a data address must have exactly one)."""
        want = ipaddress.ip_address(addr.split("/")[0])
        return [a["dev"] for a in self.host_addrs(ns=ns)
                if ipaddress.ip_address(a["address"]) == want]

    def holder_of(self, addr: str) -> str | None:
        """The member carrying addr; None if none; LabError if more than one."""
        devs = self.holders(addr)
        if len(devs) > 1:
            raise LabError(f"{addr} is on several devices: {devs}")
        return devs[0] if devs else None

    def router_neigh(self, addr: str) -> str | None:
        """The MAC in the router's neighbour entry for addr, or None (no entry, or
        an entry without a link-layer address, e.g. FAILED/INCOMPLETE)."""
        addr = addr.split("/")[0]
        for n in self.ip_json(self.rt, "neigh", "show", "to", addr, "dev", "eth0"):
            if n.get("dst") == addr and n.get("lladdr"):
                return n["lladdr"]
        return None

    def route_get(self, dst: str, src: str | None = None, ns: str | None = None) -> dict:
        args = ["route", "get", dst] + (["from", src] if src else [])
        r = self.ip_json(ns or self.host, *args)
        return r[0] if r else {}

    def ping(self, ns: str, dst: str, count: int = 1, timeout: float = 1.0) -> bool:
        cmd = ["ping", "-c", str(count), "-W", str(timeout), "-i", "0.2", dst]
        return self.ns_exec(ns, *cmd, timeout=count * timeout + 10).returncode == 0

    def client_reaches(self, dst: str) -> bool:
        return self.ping(self.cl, dst, count=1, timeout=1)

    def member_sysctl(self, i: int, key: str) -> str:
        fam = "ipv6" if key in ("accept_ra", "accept_dad", "disable_ipv6") else "ipv4"
        return self.sh(self.host, "cat", f"/proc/sys/net/{fam}/conf/m{i}/{key}").strip()

    # -- traffic
    def next_port(self) -> int:
        self._port += 1
        return self._port

    def start_server(self, port: int | None = None, ns: str | None = None) -> tuple[Proc, int]:
        """flowtool serve in the host namespace (default); returns (proc, port)."""
        port = port or self.next_port()
        p = self.spawn(ns or self.host, flowtool_bin(), "serve", "--port", str(port),
                       name=f"flowtool-serve-{port}")

        def listening():
            if not p.running():
                raise LabError(f"flowtool serve exited: {p.popen.returncode}; "
                               f"{p.log_path.read_text() if p.log_path else ''}")
            out = self.ns_exec(ns or self.host, "ss", "-Hltn", f"sport = :{port}").stdout
            return out.strip() != ""
        wait_until(listening, 10, f"flowtool serve on port {port}")
        return p, port

    def start_flow(self, kind: str, to: str, port: int, duration: float,
                   rate: float = 200, interval_ms: float = 50, ns: str | None = None) -> Flow:
        """flowtool udp|tcp from the client namespace (default) to `to`."""
        progress = self.tmp / f"flow-{kind}-{len(self.procs)}.json"
        cmd = [flowtool_bin(), kind, "--to", to, "--port", str(port),
               "--duration", str(duration), "--progress-file", str(progress)]
        cmd += ["--rate", str(rate)] if kind == "udp" else ["--interval", str(interval_ms)]
        popen = subprocess.Popen(["ip", "netns", "exec", ns or self.cl, *cmd],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, text=True)
        f = Flow(popen, f"flowtool-{kind}-{to}", progress)
        self.procs.append(f)
        return f

    # -- the daemon
    def start_mpathd(self, config_text: str, wait_started: bool = True,
                     timeout: float = 15.0, extra_args: Iterable[str] = (),
                     workdir: Path | None = None, env: dict[str, str] | None = None,
                     wrap: Iterable[str] = (), journal_stream: bool = False,
                     ns: str | None = None) -> Daemon:
        """Runs mpathd in the host namespace with its own config/runtime/state dirs.
        With wait_started, waits until status.json says started (or the daemon dies).
        Pass the workdir of an earlier Daemon to restart on the same state. wrap: a
        command that execs its arguments, run inside the namespace before mpathd (it
        must keep the pid). journal_stream: $JOURNAL_STREAM names the log file, as
        systemd does when stderr is the journal. ns: another host namespace (add_host)."""
        if workdir is None:
            workdir = self.tmp / f"mpathd-{len(self.daemons)}"
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "run").mkdir(exist_ok=True)
        (workdir / "state").mkdir(exist_ok=True)
        (workdir / "mpathd.conf").write_text(config_text)
        log_path = workdir / f"mpathd-{len(self.daemons)}.log"
        exe = mpathd_bin()
        if not os.access(exe, os.X_OK):
            raise LabError(f"mpathd binary not found at {exe} (set MPATHD_BIN)")
        cmd = ["ip", "netns", "exec", ns or self.host, *wrap, exe,
               "--config", str(workdir / "mpathd.conf"),
               "--runtime-dir", str(workdir / "run"),
               "--state-dir", str(workdir / "state"),
               # One lock directory per lab: the daemons of one lab exclude each other
               # (one per namespace) and nothing is left in the machine's /run.
               "--lock-dir", str(self.tmp / "lock"),
               "--log-level", "debug", *extra_args]
        with open(log_path, "w") as log:
            env = {**os.environ, **(env or {})}
            if journal_stream:
                st = os.fstat(log.fileno())
                env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
            popen = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        d = Daemon(popen, workdir, log_path)
        self.procs.append(d)
        self.daemons.append(d)
        if wait_started:
            # status.json of an earlier run may still be there: wait for this one's.
            d.wait_status(lambda s: s.get("started") is True and s.get("pid") == d.pid, timeout,
                          "mpathd to start")
        return d

    def logs_text(self, lines: int = 200) -> str:
        parts = []
        for i, d in enumerate(self.daemons):
            parts.append(f"===== mpathd #{i} (pid {d.pid}, rc {d.popen.returncode}) log tail "
                         f"=====\n{tail(d.log(), lines)}")
            parts.append(f"===== mpathd #{i} status.json =====\n"
                         f"{json.dumps(d.status(), indent=1)}")
        return "\n".join(parts)

    def describe(self) -> str:
        """Addresses of the host namespace and the router's neighbours (for failures)."""
        addrs = "\n".join(f"  {a['dev']}: {a['address']}/{a['prefixlen']} {a['flags']}"
                          for a in self.host_addrs())
        neigh = self.ns_exec(self.rt, "ip", "neigh", "show", "dev", "eth0").stdout
        rules = self.ns_exec(self.host, "ip", "rule", "show").stdout
        rules6 = self.ns_exec(self.host, "ip", "-6", "rule", "show").stdout
        routes = self.ns_exec(self.host, "ip", "route", "show", "table", "all").stdout
        routes6 = self.ns_exec(self.host, "ip", "-6", "route", "show", "table", "all").stdout
        return (f"host addresses:\n{addrs}\nrouter neighbours:\n{neigh}"
                f"host rules:\n{rules}{rules6}host routes:\n{routes}{routes6}")


class AddressMonitor:
    """`ip -o monitor address` in the host namespace, known to be listening: a marker
    address on lo is set until the monitor reports it. `settle()` sets a second marker
    and waits for it, so every event before it has been read."""

    MARKER = "198.18.7.7"

    def __init__(self, lab: "Lab"):
        self.lab = lab
        self.log = lab.tmp / f"ip-monitor-{secrets.token_hex(3)}.log"
        with open(self.log, "w") as out:
            self.proc = lab.spawn(lab.host, "ip", "-o", "monitor", "address", name="ip-monitor", stdout=out)
        self._count = 0
        self.settle()

    def _marker_events(self) -> int:
        return self.log.read_text().count(self.MARKER + "/32")

    def settle(self, timeout: float = 5.0) -> None:
        before = self._marker_events()

        def seen():
            self.lab.ns_exec(self.lab.host, "ip", "addr", "replace", f"{self.MARKER}/32", "dev", "lo")
            return self._marker_events() > before
        wait_until(seen, timeout, "ip monitor to report the marker address")

    def events(self, *needles: str) -> list[str]:
        """Event lines that mention any of needles (the marker excluded)."""
        return [l for l in self.log.read_text().splitlines()
                if self.MARKER not in l and any(n in l for n in needles)]

    def stop(self) -> None:
        self.lab.ns_exec(self.lab.host, "ip", "addr", "del", f"{self.MARKER}/32", "dev", "lo")
        self.proc.stop()


def group_config(members: list[dict[str, Any]] | list[str], *, name: str = "g0",
                 interface: str = "ipmp0",
                 data_addresses: Iterable[str] = ("198.18.1.10/24", "2001:db8:1::10/64"),
                 routes: bool = True, failback: bool = True, notification_count: int = 3,
                 notification_interval: str = "1s", extra_global: str = "",
                 extra_group: str = "", failure_detection_time: str | None = "1s",
                 probe_method: str | None = None,
                 targets: Iterable[str] | None = None) -> str:
    """An mpathd.conf for one group. members: names, or dicts {"name", "standby",
    "test_addresses"}. failure_detection_time, probe_method and targets are group keys
    (left out when None). Probing is on by default (auto: ARP to the router, which the
    routes name) at an FDT of 1 s, so that a repair (10 good probes) takes about a
    second."""
    lines = [f"failback = {'true' if failback else 'false'}",
             f"notification-count = {notification_count}",
             f'notification-interval = "{notification_interval}"']
    if extra_global:
        lines.append(extra_global.strip())
    lines += ["", "[[group]]", f'name = "{name}"', f'interface = "{interface}"',
              "data-addresses = [" + ", ".join(f'"{a}"' for a in data_addresses) + "]"]
    if routes:
        lines.append(f'routes = [ {{ to = "default", via = "{ROUTER_LAN4}" }}, '
                     f'{{ to = "default", via = "{ROUTER_LAN6}" }} ]')
    if failure_detection_time is not None:
        lines.append(f'failure-detection-time = "{failure_detection_time}"')
    if probe_method is not None:
        lines.append(f'probe-method = "{probe_method}"')
    if targets is not None:
        lines.append("targets = [" + ", ".join(f'"{t}"' for t in targets) + "]")
    if extra_group:
        lines.append(extra_group.strip())
    for m in members:
        m = {"name": m} if isinstance(m, str) else m
        lines += ["", "[[group.member]]", f'name = "{m["name"]}"']
        if m.get("standby"):
            lines.append("standby = true")
        if m.get("test_addresses"):
            lines.append("test-addresses = [" + ", ".join(f'"{a}"' for a in m["test_addresses"])
                         + "]")
    return "\n".join(lines) + "\n"
