"""The systemd hook, the data-service restarter (issue 11 item 3), end to end: the real
mpathd in the lab (one host, 3 members, the router, the client), its real D-Bus client,
real sockets, real ipmpctl — and, on the test's private system bus, a STAND-IN for
systemd's Manager (tests/tools/systemd_standin.cpp: org.freedesktop.systemd1 with
systemd's object path, interface, method names and signatures and its JobRemoved
signal, answering as told per unit; it starts and stops nothing — it is not systemd).

    takeover -> the start and restart units are asked for once the address is in place;
    release  -> the stop unit is asked for, and the TCP connection of a client to the
                address lives until the stop job ended (the stand-in ends it 1.5 s
                later); then it is reset and the address is gone; ipmpctl's release
                returns after that;
    a stop job that never ends holds the release for the hook's timeout (2 s), no more;
    a link failure while a release waits for its stop still moves the data address at
    once; a whole-group failure releases at once, the stop asked for but not waited for.

Binaries: $MPATHD_BIN, $IPMPCTL_BIN, $SYSTEMD_STANDIN_BIN (defaults under build/).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.bus import Bus
from lab.lab import Lab, binary, group_config, require_daemon_lab, wait_until
from lab.standin import SystemdStandIn, lines, standin_bin, standin_policy

SLOW = "198.18.1.50"   # stop web.service: its job ends 1.5 s after the call
STUCK = "198.18.1.51"  # stop stuck.service: its job never ends (hook timeout 2 s)
DATA = "198.18.1.10"
PORT = 5090
STOP_DELAY = 1.5       # s, the stand-in's delay of web.service's JobRemoved
STUCK_TIMEOUT = 2.0    # s, the hook's timeout for STUCK
START_TIMEOUT = 20.0
FAILOVER_BOUND = 1.5   # s, link failure -> data address moved (generous; bench/ has figures)

HOOKS = f"""
[[hook]]
name = "web"
type = "systemd"
address = "{SLOW}"
stop = ["web.service"]
start = ["app.service"]
restart = ["cache.service"]
timeout = "10s"

[[hook]]
name = "stuck"
type = "systemd"
address = "{STUCK}"
stop = ["stuck.service"]
timeout = "{int(STUCK_TIMEOUT * 1000)}ms"
"""

# A TCP server on an address (IP_FREEBIND: before the address is here) that holds every
# connection and listens again after a release destroyed its listener; and a client that notes when (CLOCK_MONOTONIC, as the stand-in's lines)
# its connection ends.
SERVER = r'''
import socket, sys
held = []
while True:  # a release destroys the listener too: listen again (for the next takeover)
    s = socket.socket(); s.setsockopt(socket.SOL_IP, 15, 1); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
    try:
        while True:
            held.append(s.accept()[0])
    except OSError:
        s.close()
'''
CLIENT = r'''
import json, socket, sys, time
out = sys.argv[3]
def note(**kw):
    kw["t"] = time.monotonic()
    with open(out, "a") as f:
        f.write(json.dumps(kw) + "\n")
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); c.settimeout(None)
note(event="connected")
try:
    d = c.recv(10)
    note(event="eof" if not d else "data")
except OSError as e:
    note(event="error", errno=e.errno)
'''


def ipmpctl_bin() -> str:
    return binary("IPMPCTL_BIN", "build/ipmpctl/ipmpctl")


class World:
    def __init__(self, lab: Lab):
        self.lab = lab
        self.bus = Bus(policies=[standin_policy(lab.tmp)])
        self.env = {"DBUS_SYSTEM_BUS_ADDRESS": self.bus.address}
        self.standin = SystemdStandIn(lab, self.bus, lab.tmp / "standin.out", f"web.service=done:{int(STOP_DELAY * 1000)}",
                                      "app.service=done", "cache.service=failed", "stuck.service=never")
        self.calls, self.removed = self.standin.calls, self.standin.removed
        conf = group_config(["m0", "m1", "m2"], data_addresses=(f"{DATA}/24",),
                            extra_group=f'shared-addresses = ["{SLOW}/24", "{STUCK}/24"]') + HOOKS
        self.daemon = lab.start_mpathd(conf, env=self.env, timeout=START_TIMEOUT)
        self.daemon.wait_status(lambda s: s["groups"][0]["addresses"][0].get("holder"), START_TIMEOUT,
                                "data address placed")
        (lab.tmp / "server.py").write_text(SERVER)
        (lab.tmp / "client.py").write_text(CLIENT)
        for addr in (SLOW, STUCK):
            lab.spawn(lab.host, sys.executable, str(lab.tmp / "server.py"), addr, str(PORT), name=f"server-{addr}")

    def ctl(self, *args: str, popen: bool = False):
        cmd = [ipmpctl_bin(), *args]
        env = {**os.environ, **self.env}
        if popen:
            return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)

    def ok(self, *args: str) -> str:
        cp = self.ctl(*args)
        assert cp.returncode == 0, f"ipmpctl {' '.join(args)}: rc {cp.returncode}\n{cp.stderr}"
        return cp.stdout

    def shared(self, addr: str) -> dict:
        return next(a for a in self.daemon.status()["groups"][0]["shared"] if a["address"].split("/")[0] == addr)

    def hook(self, name: str) -> dict:
        return next(h for h in self.daemon.status()["hooks"] if h["name"] == name)

    def take(self, addr: str) -> None:
        self.ok("shared", "takeover", addr)
        wait_until(lambda: self.lab.holders(addr), 5, f"{addr} in the kernel")
        wait_until(lambda: self.lab.client_reaches(addr), 10, f"the client reaches {addr}")

    def connect(self, addr: str) -> Path:
        events = self.lab.tmp / f"client-{addr}-{time.monotonic_ns()}.jsonl"
        self.lab.spawn(self.lab.cl, sys.executable, str(self.lab.tmp / "client.py"), addr, str(PORT), str(events),
                       name=f"client-{addr}")
        wait_until(lambda: any('"connected"' in l for l in lines(events)), 10, f"client connected to {addr}")
        return events

    def close(self) -> None:
        self.bus.close()


def client_events(path: Path) -> list[dict]:
    return [json.loads(l) for l in lines(path) if l.strip()]


@pytest.fixture(scope="module")
def world():
    require_daemon_lab(("mpathd", binary("MPATHD_BIN", "build/mpathd/mpathd")), ("ipmpctl", ipmpctl_bin()),
                       ("systemd-standin", standin_bin()))
    w = None
    try:
        with Lab(members=3) as lab:
            w = World(lab)
            yield w
    finally:
        if w is not None:
            w.close()


def test_takeover_starts_and_restarts_units_once_the_address_is_in_place(world):
    world.take(SLOW)
    start = wait_until(lambda: world.calls("StartUnit", "app.service"), 5, "StartUnit app.service")
    restart = wait_until(lambda: world.calls("RestartUnit", "cache.service"), 5, "RestartUnit cache.service")
    assert len(start) == len(restart) == 1
    assert world.calls("StopUnit", "web.service") == []
    log = world.daemon.log()
    # After the takeover's kernel steps (the tickle follows the reconcile that added it).
    placed = log.index(f"takeover {SLOW}: ")
    assert placed < log.index("hook web: StartUnit app.service"), log[-3000:]
    assert placed < log.index("hook web: RestartUnit cache.service")
    # Each job's result is logged; the failed one is shown, not fatal.
    wait_until(lambda: "hook web: StartUnit app.service: done" in world.daemon.log(), 5, "StartUnit's result logged")
    h = wait_until(lambda: (lambda h: h if h["jobs_pending"] == 0 and h["jobs"] == 2 else None)(world.hook("web")),
                   5, "the hook's jobs counted")
    assert h["type"] == "systemd" and h["state"] == "running"
    assert h["jobs_failed"] == 1 and h["last_error"] == "RestartUnit cache.service: failed", h
    assert world.shared(SLOW)["state"] == "held"


def test_release_waits_for_the_stop_before_the_sockets_are_destroyed(world):
    lab = world.lab
    if world.shared(SLOW)["state"] != "held":
        world.take(SLOW)
    events = world.connect(SLOW)
    release = world.ctl("shared", "release", SLOW, popen=True)
    stop = wait_until(lambda: world.calls("StopUnit", "web.service"), 5, "StopUnit web.service")[-1]
    # While the stop job runs: the address is still here and the connection alive.
    assert lab.holders(SLOW), "the address left before the stop ended"
    assert [e["event"] for e in client_events(events)] == ["connected"]
    assert world.shared(SLOW)["state"] == "released"
    ended = wait_until(lambda: world.removed(stop["job"]), STOP_DELAY + 5, "the stop job's JobRemoved")[0]
    reset = wait_until(lambda: [e for e in client_events(events) if e["event"] != "connected"], 10,
                       "the client's connection ends")[0]
    assert reset["event"] == "error" and reset["errno"] == 104, reset  # ECONNRESET: the socket destroyed
    # The sockets went after the stop job ended, not before.
    assert reset["t"] >= ended["t"] - 0.05, (reset, ended, stop)
    assert reset["t"] - stop["t"] >= STOP_DELAY - 0.2, (reset, stop)
    wait_until(lambda: not lab.holders(SLOW), 5, f"{SLOW} gone from the kernel")
    # ipmpctl's release answered once the release was done.
    out, err = release.communicate(timeout=30)
    assert release.returncode == 0, err
    log = world.daemon.log()
    assert log.index("hook web: StopUnit web.service: done") < log.index(f"release {SLOW}: new packets dropped, ")


def test_a_stop_that_never_ends_holds_the_release_for_the_timeout_only(world):
    lab = world.lab
    world.take(STUCK)
    events = world.connect(STUCK)
    t0 = time.monotonic()
    cp = world.ctl("shared", "release", STUCK)
    took = time.monotonic() - t0
    assert cp.returncode == 0, cp.stderr
    assert world.calls("StopUnit", "stuck.service")
    assert STUCK_TIMEOUT - 0.3 <= took <= STUCK_TIMEOUT + 5, took
    wait_until(lambda: not lab.holders(STUCK), 5, f"{STUCK} gone from the kernel")
    reset = wait_until(lambda: [e for e in client_events(events) if e["event"] != "connected"], 10,
                       "the client's connection ends")[0]
    assert reset["event"] == "error", reset
    assert reset["t"] - t0 >= STUCK_TIMEOUT - 0.3
    h = world.hook("stuck")
    assert "no result within 2000 ms" in h["last_error"], h
    assert "StopUnit stuck.service: no result within 2000 ms" in world.daemon.log()


def test_a_link_failure_during_a_slow_stop_still_moves_the_data_address(world):
    lab = world.lab
    world.take(STUCK)
    holder = wait_until(lambda: world.daemon.address(DATA).get("holder"), 5, "data address held")
    release = world.ctl("shared", "release", STUCK, popen=True)
    wait_until(lambda: len(world.calls("StopUnit", "stuck.service")) >= 2, 5, "the second StopUnit stuck.service")
    assert lab.holders(STUCK), "the release did not wait"
    # Another command is not held up by a release it did not start.
    t0 = time.monotonic()
    world.ok("shared", "takeover", SLOW)
    assert time.monotonic() - t0 < STUCK_TIMEOUT - 0.5, "a takeover waited for another address's release"
    t0 = time.monotonic()
    lab.link_down(int(holder.removeprefix("m")))
    moved = wait_until(lambda: (lambda h: h if h and h != holder else None)(world.daemon.address(DATA).get("holder")),
                       FAILOVER_BOUND + 3, "the data address moved")
    took = time.monotonic() - t0
    assert lab.holders(DATA) == [moved]
    assert took <= FAILOVER_BOUND, f"data address moved after {took:.2f} s during a pending release"
    release.communicate(timeout=30)
    assert release.returncode == 0
    wait_until(lambda: not lab.holders(STUCK), 5, f"{STUCK} gone from the kernel")
    lab.link_up(int(holder.removeprefix("m")))
    print(f"data address moved {took * 1000:.0f} ms after the link failure, during a pending release")


def test_a_whole_group_failure_releases_without_waiting_for_the_stop(world):
    lab = world.lab
    wait_until(lambda: world.daemon.group()["state"] == "ok", 15, "the group repaired")
    if world.shared(SLOW)["state"] != "held":
        world.take(SLOW)
    wait_until(lambda: lab.client_reaches(SLOW), 10, f"the client reaches {SLOW}")
    world.connect(SLOW)  # a socket on the address to destroy (its reset cannot reach the client: no link)
    before = len(world.calls("StopUnit", "web.service"))
    mark = len(world.daemon.log())
    for i in range(3):
        lab.link_down(i)
    try:
        stop = wait_until(lambda: world.calls("StopUnit", "web.service")[before:], 5, "StopUnit web.service")[0]
        wait_until(lambda: not lab.holders(SLOW), 5, f"{SLOW} gone from the kernel")
        gone = time.monotonic()
        # Gone before the stop job ended (1.5 s after its call): the release did not wait.
        assert gone - stop["t"] < STOP_DELAY - 0.3, (gone, stop)
        assert world.shared(SLOW)["state"] == "released"
        assert world.shared(SLOW)["reason"] == "group-failure", world.shared(SLOW)
        wait_until(lambda: world.removed(stop["job"]), STOP_DELAY + 5, "the stop job's JobRemoved")
        log = world.daemon.log()[mark:]
        destroyed = log.index(f"release {SLOW}: new packets dropped, ")
        assert not log[destroyed:].split("\n")[0].split(", ")[1].startswith("0 "), log[destroyed:destroyed + 200]
        assert destroyed < wait_until(lambda: (world.daemon.log()[mark:].find("hook web: StopUnit web.service: done") + 1),
                                      5, "the stop's result logged") - 1
    finally:
        for i in range(3):
            lab.link_up(i)
    wait_until(lambda: world.daemon.group()["state"] == "ok", 15, "the group repaired")
