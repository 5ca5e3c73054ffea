"""The hooks tier: the real mpathd runs hook plugins (examples/hooks, and deliberately
broken ones from tests/hooks/plugins) and exec hooks in mpathd-hookhost processes, in a
lab brought up once for the module. A good plugin sees exactly the expected events in
order; each broken plugin is refused or contained, and in every case a link failure
during the fault still moves the data address within the usual time."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from lab.bus import Bus
from lab.lab import CLIENT4, Lab, binary, group_config, wait_until
from mpathd_helpers import MOVE_TIMEOUT, START_TIMEOUT, idx, member_is, start_group, wait_moved_away

ADDR = "198.18.1.10"
MEMBERS = ["m0", "m1", "m2"]
BUILD = Path(__file__).resolve().parents[2] / "build"
HOOKHOST = os.environ.get("MPATHD_HOOKHOST", str(BUILD / "hookhost" / "mpathd-hookhost"))
PLUGINS = Path(os.environ.get("HOOK_PLUGIN_DIR", BUILD / "tests" / "hooks" / "plugins"))
EXAMPLES = Path(os.environ.get("HOOK_EXAMPLE_DIR", BUILD / "examples" / "hooks"))


@pytest.fixture(scope="module")
def mlab():
    """One lab for the module; every test starts its own daemon and leaves the links up."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    with Lab(members=3) as lab:
        yield lab


@pytest.fixture
def lab(mlab):
    yield mlab
    mlab.stop_procs(list(mlab.daemons))  # each daemon has a workdir of its own
    for i in range(mlab.n):
        mlab.link_up(i)
    for i in range(mlab.n):
        wait_until(lambda i=i: mlab._oper_up(mlab.host, f"m{i}"), 10, f"m{i} up again")


def hook_toml(name: str, **kw) -> str:
    lines = ["[[hook]]", f'name = "{name}"']
    for k, v in kw.items():
        if isinstance(v, list):
            lines.append(f"{k} = [" + ", ".join(f'"{x}"' for x in v) + "]")
        else:
            lines.append(f'{k} = "{v}"')
    return "\n".join(lines) + "\n"


def start(lab: Lab, hooks: str, **kw):
    for p in [HOOKHOST]:
        assert os.access(p, os.X_OK), f"{p} not built (cmake --build build --target mpathd-hookhost)"
    d = start_group(lab, MEMBERS, data_addresses=[f"{ADDR}/24"], extra_global=hooks,
                    daemon={"extra_args": ["--hook-host", HOOKHOST]}, **kw)
    d.wait_status(lambda s: s["groups"][0]["state"] == "ok", START_TIMEOUT, "every member ok")
    return d


def hook_status(d, name: str) -> dict:
    s = d.status() or {}
    return next((h for h in s.get("hooks", []) if h["name"] == name), {})


def wait_hook(d, name: str, pred, what: str, timeout: float = 10.0) -> dict:
    return wait_until(lambda: (h := hook_status(d, name)) and pred(h) and h, timeout, f"hook {name}: {what}")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def fail_holder_and_time(lab: Lab, d) -> tuple[str, str, float]:
    """Cuts the holder's link; returns (old, new, seconds until the address moved)."""
    old = lab.holder_of(ADDR)
    t0 = time.monotonic()
    lab.link_down(idx(old))
    new = wait_moved_away(lab, d, ADDR, old, MOVE_TIMEOUT)
    return old, new, time.monotonic() - t0


def strip(line: str) -> str:
    """The event part of a log_events line (without netns, seq and lost)."""
    return re.sub(r"^netns=\d+ seq=\d+ lost=\d+ ", "", line)


def test_good_plugin_sees_the_scenario_in_order(lab, need_mpathd):
    out = lab.tmp / "events-good.txt"
    d = start(lab, hook_toml("log", type="plugin", path=str(EXAMPLES / "log_events.so"), args=[str(out)]))
    wait_hook(d, "log", lambda h: h["state"] == "running" and h["queued"] == 0, "running, queue empty")
    netns = os.stat(f"/run/netns/{lab.host}").st_ino
    base = len(lines(out))
    assert base > 0, "the start-up's events were delivered"

    # Link failure of the holder: the member fails, the group degrades, the address moves.
    old, new, _ = fail_holder_and_time(lab, d)
    d.wait_status(member_is(d, old, state="failed"), MOVE_TIMEOUT, f"{old} failed")
    wait_hook(d, "log", lambda h: h["queued"] == 0 and h["delivered"] >= base + 3, "delivered the failover")
    # Group failure: the other two fail as well, one after the other.
    others = [m for m in MEMBERS if m != old]
    for m in others:
        lab.link_down(idx(m))
        d.wait_status(member_is(d, m, state="failed"), MOVE_TIMEOUT, f"{m} failed")
    d.wait_status(lambda s: s["groups"][0]["state"] == "failed", MOVE_TIMEOUT, "group failed")
    wait_hook(d, "log", lambda h: h["queued"] == 0, "queue drained")

    got = lines(out)
    for line in got:
        assert line.startswith(f"netns={netns} "), line  # the namespace id: its inode
    seqs = [int(re.search(r"seq=(\d+)", l).group(1)) for l in got]
    assert seqs == list(range(1, len(got) + 1)), "in order, none lost"
    assert all(" lost=0 " in l for l in got)
    events = [re.sub(r" flags=\S+", "", strip(l)) for l in got[base:]]
    expected = [
        f"member-changed g0/{old} ok->failed reason=link-down",
        f"address-moved g0 {ADDR}/24 {old}->{new} reason=failover",
        "group-changed g0 ok->degraded reason=link-down",
        f"member-changed g0/{others[0]} ok->failed reason=link-down",
    ]
    if others[0] == new:
        expected.append(f"address-moved g0 {ADDR}/24 {new}->{others[1]} reason=failover")
    expected += [
        f"member-changed g0/{others[1]} ok->failed reason=link-down",
        "group-changed g0 degraded->failed reason=group-failure",
    ]
    assert events == expected
    st = hook_status(d, "log")
    assert st["dropped"] == 0 and st["lost"] == 0 and st["restarts"] == 0, st


REFUSED = {
    "no_symbol": "has no symbol mpathd_hook_init_v1",
    "wrong_major": "built for hook ABI major 2",
    "init_fails": "init failed",
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_bad_library_is_refused_and_named(lab, need_mpathd, kind):
    lib = PLUGINS / f"broken_{kind}.so"
    d = start(lab, hook_toml("bad", type="plugin", path=str(lib)))
    h = wait_hook(d, "bad", lambda h: h["state"] == "disabled", "disabled")
    assert REFUSED[kind] in h["last_error"] and str(lib) in h["last_error"], h
    assert re.search(rf"hook bad: disabled: .*{re.escape(str(lib))}", d.log()), d.log()[-2000:]
    _, _, took = fail_holder_and_time(lab, d)
    assert took < MOVE_TIMEOUT


def test_newer_minor_loads(lab, need_mpathd):
    out = lab.tmp / "events-minor.txt"
    d = start(lab, hook_toml("minor", type="plugin", path=str(PLUGINS / "broken_newer_minor.so"), args=[str(out)]))
    wait_hook(d, "minor", lambda h: h["state"] == "running", "running")
    assert "newer than this mpathd's 1.0" in d.log()
    old, new, took = fail_holder_and_time(lab, d)
    wait_until(lambda: any(f"address-moved {new}" in l for l in lines(out)), MOVE_TIMEOUT, "plugin saw the move")
    assert any(f"member-changed {old}" in l for l in lines(out))


def test_segfault_in_callback_is_contained(lab, need_mpathd):
    out = lab.tmp / "events-segv.txt"
    d = start(lab, hook_toml("segv", type="plugin", path=str(PLUGINS / "broken_segv.so"), args=[str(out)]))
    wait_hook(d, "segv", lambda h: h["state"] == "running", "running")
    old, new, took = fail_holder_and_time(lab, d)
    assert took < MOVE_TIMEOUT
    h = wait_hook(d, "segv", lambda h: h["restarts"] >= 1 and h["state"] == "running", "restarted")
    assert "SIGSEGV" in h["last_error"] and "member-changed" in h["last_error"], h
    assert h["lost"] >= 1, h  # the event it died on is not delivered again
    # The restarted host gets the events that follow, in order.
    wait_until(lambda: any(f"address-moved {new}" in l for l in lines(out)), MOVE_TIMEOUT, "later events delivered")


def test_endless_loop_in_callback_is_killed(lab, need_mpathd):
    d = start(lab, hook_toml("loop", type="plugin", path=str(PLUGINS / "broken_loop.so"), timeout="500ms"))
    wait_hook(d, "loop", lambda h: h["state"] == "running", "running")
    _, _, took = fail_holder_and_time(lab, d)
    assert took < MOVE_TIMEOUT
    h = wait_hook(d, "loop", lambda h: h["restarts"] >= 1, "killed and restarted")
    assert "budget of 500 ms" in h["last_error"], h
    assert "killing its host" in d.log()


def test_exception_across_the_boundary_is_contained(lab, need_mpathd):
    out = lab.tmp / "events-throw.txt"
    d = start(lab, hook_toml("throws", type="plugin", path=str(PLUGINS / "broken_throws.so"), args=[str(out)]))
    wait_hook(d, "throws", lambda h: h["state"] == "running", "running")
    old, new, took = fail_holder_and_time(lab, d)
    assert took < MOVE_TIMEOUT
    h = wait_hook(d, "throws", lambda h: h["errors"] >= 1, "error counted")
    assert "thrown on purpose" in h["last_error"] and h["restarts"] == 0 and h["state"] == "running", h
    wait_until(lambda: any(f"address-moved {new}" in l for l in lines(out)), MOVE_TIMEOUT, "later events delivered")


def test_log_flood_is_limited(lab, need_mpathd):
    d = start(lab, hook_toml("flood", type="plugin", path=str(PLUGINS / "broken_flood.so"), timeout="20s"))
    wait_hook(d, "flood", lambda h: h["state"] == "running", "running")
    _, _, took = fail_holder_and_time(lab, d)
    assert took < MOVE_TIMEOUT
    wait_hook(d, "flood", lambda h: h["queued"] == 0, "queue drained", timeout=30)
    log = d.log()
    assert log.count("hook flood: flood") < 2000, "rate-limited"
    assert re.search(r"hook flood: \d+ log lines suppressed", log)


def test_plugin_that_keeps_failing_is_disabled(lab, need_mpathd):
    d = start(lab, hook_toml("crash", type="plugin", path=str(PLUGINS / "broken_crashloop.so")))
    h = wait_hook(d, "crash", lambda h: h["state"] == "disabled", "disabled", timeout=20)
    assert "failures within 60 s" in h["last_error"], h
    assert "hook crash: disabled:" in d.log()
    _, _, took = fail_holder_and_time(lab, d)
    assert took < MOVE_TIMEOUT


def test_exec_hook_runs_in_order_with_environment(lab, need_mpathd):
    out = lab.tmp / "exec.txt"
    script = lab.tmp / "hook.sh"
    script.write_text("#!/bin/sh\n[ -e /proc/self/fd/3 ] && echo fd3-inherited >> " + str(out) + "\n"
                      "echo \"$MPATHD_EVENT $MPATHD_GROUP $MPATHD_MEMBER $MPATHD_ADDRESS "
                      "$MPATHD_FROM $MPATHD_TO $MPATHD_REASON $MPATHD_SEQ\" >> " + str(out) + "\n"
                      "[ \"$MPATHD_EVENT\" = address-moved ] && exit 3\nexit 0\n")
    script.chmod(0o755)
    d = start(lab, hook_toml("run", type="exec", command=[str(script)],
                             events=["group-changed", "address-moved"], timeout="2s"))
    wait_hook(d, "run", lambda h: h["state"] == "running" and h["queued"] == 0, "running")
    base = len(lines(out))
    old, new, _ = fail_holder_and_time(lab, d)
    wait_until(lambda: len(lines(out)) >= base + 2, MOVE_TIMEOUT, "commands ran")
    got = lines(out)[base:]
    # The Engine's order: the address moves, then the group degrades.
    assert got[0].startswith(f"address-moved g0  {ADDR}/24 {old} {new} failover "), got
    assert got[1].startswith("group-changed g0     link-down "), got
    assert "fd3-inherited" not in lines(out), "the host's socket is not the command's"
    seqs = [int(l.split()[-1]) for l in lines(out)]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "one at a time, in order"
    assert re.search(r"hook run: .*hook.sh for address-moved #\d+: exit status 3", d.log())
    assert re.search(r"hook run: .*hook.sh for group-changed #\d+: exit status 0", d.log())


SHARED = "198.18.1.50"
SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen()
while True:
    c, _ = s.accept()
    while c.recv(100):
        pass
    c.close()
"""
# Holds one connection until the test ends the process (its exit closes the socket).
CLIENT = """
import signal, socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
signal.pause()
"""


def test_shared_address_takeover_connections_and_release(lab, need_mpathd):
    """Takeover, a client connecting and disconnecting (the registry's sock_diag level),
    release: a plugin sees them in that order."""
    ipmpctl = binary("IPMPCTL_BIN", "build/ipmpctl/ipmpctl")
    out = lab.tmp / "events-shared.txt"
    with Bus() as bus:
        env = {"DBUS_SYSTEM_BUS_ADDRESS": bus.address}
        d = lab.start_mpathd(
            group_config(
                MEMBERS, data_addresses=[f"{ADDR}/24"], extra_group=f'shared-addresses = ["{SHARED}/24"]',
                extra_global="association-ebpf = false\n" + hook_toml(
                    "log", type="plugin", path=str(EXAMPLES / "log_events.so"), args=[str(out)])),
            env=env, extra_args=["--hook-host", HOOKHOST], timeout=START_TIMEOUT)
        wait_hook(d, "log", lambda h: h["state"] == "running", "running")
        # The hook's state on D-Bus too (Manager.Hooks).
        prop = subprocess.run(["busctl", f"--address={bus.address}", "get-property", "org.ipmp.Mpathd1",
                               "/org/ipmp/Mpathd1", "org.ipmp.Mpathd1.Manager", "Hooks"],
                              capture_output=True, text=True, timeout=30)
        assert prop.stdout.strip() == 'a(ssstts) 1 "log" "plugin" "running" 0 0 ""', prop

        def ctl(*args):
            cp = subprocess.run([ipmpctl, *args], capture_output=True, text=True, timeout=30,
                                              env={**os.environ, **env})
            assert cp.returncode == 0, cp.stderr
        ctl("shared", "takeover", SHARED)
        wait_until(lambda: lab.holders(SHARED), MOVE_TIMEOUT, "shared address held")
        (lab.tmp / "server.py").write_text(SERVER)
        (lab.tmp / "client.py").write_text(CLIENT)
        lab.spawn(lab.host, "python3", str(lab.tmp / "server.py"), SHARED, "7777", name="server")
        wait_until(lambda: lab.ns_exec(lab.host, "ss", "-Hltn", f"src {SHARED}").stdout.strip(), 10, "listening")
        client = lab.spawn(lab.cl, "python3", str(lab.tmp / "client.py"), SHARED, "7777", name="client")
        wait_until(lambda: any(" connect tcp " in l for l in lines(out)), 10, "connect event")
        client.stop()  # the client's exit closes its connection
        wait_until(lambda: any(" disconnect tcp " in l for l in lines(out)), 10, "disconnect event")
        ctl("shared", "release", SHARED)
        wait_until(lambda: any(" release-after " in l for l in lines(out)), 10, "release-after event")
        events = [strip(l) for l in lines(out)]
        kinds = [e.split()[0] for e in events if e.split()[0] in (
            "takeover-before", "takeover-after", "connect", "disconnect", "release-before", "release-after")]
        assert kinds == ["takeover-before", "takeover-after", "connect", "disconnect", "release-before",
                         "release-after"], events
        conn = next(e for e in events if e.startswith("connect "))
        assert re.match(rf"connect tcp {re.escape(SHARED)}:7777 <- {CLIENT4}:\d+$", conn), conn
        assert any(e.startswith(f"takeover-before g0 {SHARED} ") for e in events), events
        assert any(e.startswith(f"release-after g0 {SHARED} ") for e in events), events
        lab.stop_procs([d])


def test_reload_replaces_hooks_and_retries_disabled_ones(lab, need_mpathd):
    import signal
    d = start(lab, hook_toml("h", type="plugin", path=str(PLUGINS / "broken_init_fails.so")))
    wait_hook(d, "h", lambda h: h["state"] == "disabled", "disabled")
    out = lab.tmp / "events-reload.txt"
    conf = d.workdir / "mpathd.conf"
    conf.write_text(conf.read_text().replace(str(PLUGINS / "broken_init_fails.so"), str(EXAMPLES / "log_events.so"))
                    .replace('name = "h"', f'name = "h"\nargs = ["{out}"]'))
    d.send_signal(signal.SIGHUP)
    wait_hook(d, "h", lambda h: h["state"] == "running", "running after the reload")
    old, new, took = fail_holder_and_time(lab, d)
    wait_until(lambda: any(f"address-moved g0 {ADDR}/24 {old}->{new}" in l for l in lines(out)), MOVE_TIMEOUT,
               "the new plugin sees the failover")
    # A configuration error is rejected as a whole: the running hook stays.
    conf.write_text(conf.read_text().replace('type = "plugin"', 'type = "dll"'))
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload rejected" in d.log(), 10, "reload rejected")
    assert re.search(r'mpathd.conf:\d+:\d+: hook\[0\].type: "dll" is not one of plugin, exec', d.log())
    assert hook_status(d, "h")["state"] == "running"
