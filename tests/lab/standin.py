"""A stand-in for systemd's Manager on a test's private bus (tests/tools/systemd_standin.cpp:
org.freedesktop.systemd1 with systemd's object path, interface, method names and
signatures and its JobRemoved signal, answering as told per unit). It starts and stops
nothing: it is not systemd, and the tests that use it say so.

    bus = Bus(policies=[standin_policy(tmp)])
    s = SystemdStandIn(lab, bus, tmp / "standin.out", "web.service=done:1500", "stuck.service=never")
    s.calls("StopUnit", "web.service")   # [{"t": seconds, "job": path}, ...]
    s.removed(job)                       # [{"t": seconds, "result": "done"}, ...]

Each unit argument is UNIT=RESULT[:DELAY_MS], RESULT done|failed|never (JobRemoved never sent).
"""

from __future__ import annotations

from pathlib import Path

from .lab import Lab, binary, wait_until

POLICY = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <!-- the stand-in for systemd's Manager, as /usr/share/dbus-1/system.d has it for systemd -->
  <policy user="root"><allow own="org.freedesktop.systemd1"/></policy>
  <policy context="default"><allow send_destination="org.freedesktop.systemd1"/></policy>
</busconfig>
"""


def standin_bin() -> str:
    return binary("SYSTEMD_STANDIN_BIN", "build/tests/tools/systemd-standin")


def standin_policy(directory: Path) -> Path:
    """The bus policy file that lets the stand-in own org.freedesktop.systemd1."""
    path = directory / "standin-policy.conf"
    path.write_text(POLICY)
    return path


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


class SystemdStandIn:
    def __init__(self, lab: Lab, bus, out: Path, *units: str, name: str = "systemd-standin"):
        """Runs the stand-in on `bus` (a lab.bus.Bus started with standin_policy()) in the
        lab's host namespace, its log in `out`; returns once it owns its name."""
        self.out = out
        with open(out, "w") as f:
            lab.spawn(lab.host, "env", f"DBUS_SYSTEM_BUS_ADDRESS={bus.address}", standin_bin(), *units, name=name,
                      stdout=f)
        wait_until(lambda: "ready" in lines(out), 10, "the stand-in Manager owns its name")

    def calls(self, method: str, unit: str) -> list[dict]:
        """The calls of `method` for `unit`: time (s, CLOCK_MONOTONIC: compare with time.monotonic()) and the job's path."""
        out = []
        for l in lines(self.out):
            f = l.split()
            if len(f) >= 4 and f[1] == "call" and f[2] == method and f[3] == unit:
                out.append({"t": int(f[0]) / 1000.0, "job": f[5] if len(f) > 5 else ""})
        return out

    def removed(self, job: str) -> list[dict]:
        """The JobRemoved signals sent for `job`: time (s) and result."""
        out = []
        for l in lines(self.out):
            f = l.split()
            if len(f) >= 6 and f[1] == "removed" and f[3] == job:
                out.append({"t": int(f[0]) / 1000.0, "result": f[5]})
        return out
