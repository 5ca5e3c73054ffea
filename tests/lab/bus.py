"""A private system bus for mpathd's tests and benches (python3 stdlib only).

    with Bus() as bus:
        env = {"DBUS_SYSTEM_BUS_ADDRESS": bus.address}   # for mpathd and its clients

A dbus-daemon with the defaults of the real system bus (connect yes, own and call no)
plus mpathd's policy, units/org.ipmp.Mpathd1.conf. It listens on a unix socket in a
temporary directory of its own (reachable from every network namespace: it is a path,
not a network address), runs in the caller's namespace, and is stopped by its pid on
close(), on exit from the `with` block and at interpreter exit.
"""

from __future__ import annotations

import atexit
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterable

from .lab import REPO_ROOT, Proc

SYSTEM_BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <!-- The defaults of the real system bus: connect yes, own and call no. -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""

_live_buses: list["Bus"] = []


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL when the process that started the bus dies (PR_SET_PDEATHSIG),
    so that a test runner killed without cleaning up (a CTest timeout) leaves no bus.
    It is the starting *thread* that counts: start a bus from a thread that outlives it."""
    import ctypes
    ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


def _close_all() -> None:
    for b in list(_live_buses):
        b.close()


atexit.register(_close_all)


class Bus:
    """A private dbus-daemon with the system bus policy; stopped by its pid."""

    def __init__(self, policies: Iterable[Path] = ()):
        """policies: more bus policy files to include (other services on this bus)."""
        self.dir = Path(tempfile.mkdtemp(prefix="mpathd-bus-"))
        os.chmod(self.dir, 0o755)  # non-root callers must reach the socket
        socket = self.dir / "system_bus_socket"
        conf = self.dir / "system.conf"
        text = SYSTEM_BUS_CONF.format(socket=socket, policy=REPO_ROOT / "units" / "org.ipmp.Mpathd1.conf")
        more = "".join(f"  <include>{p}</include>\n" for p in policies)
        conf.write_text(text.replace("</busconfig>", more + "</busconfig>"))
        self.conf = conf
        self.socket = socket
        # The address without the bus's guid: it stays valid across restart().
        self.socket_address = f"unix:path={socket}"
        _live_buses.append(self)
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            ["dbus-daemon", f"--config-file={self.conf}", "--print-address", "--nofork"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            preexec_fn=_die_with_parent)
        reader = Lines(self.proc.stdout)
        line = reader.next_line(10)
        if not line:
            self.close()
            raise AssertionError("dbus-daemon did not print its address")
        self.address = line.strip()

    def kill(self) -> None:
        """Kills dbus-daemon (SIGKILL, by its pid): every connection is dropped at once."""
        Proc(self.proc, "dbus-daemon").proc_kill()
        self.socket.unlink(missing_ok=True)

    def start_again(self) -> None:
        """A new dbus-daemon on the same socket (after kill()); clients must connect
        with socket_address, since the new bus has a new guid."""
        self._start()

    def __enter__(self) -> "Bus":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def close(self) -> None:
        Proc(self.proc, "dbus-daemon").stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self in _live_buses:
            _live_buses.remove(self)


class Lines:
    """Reads lines from a pipe with a deadline (no blocking read without bound)."""

    def __init__(self, stream):
        self.fd = stream.fileno()
        self.buf = ""
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.fd, selectors.EVENT_READ)

    def next_line(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while "\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk.decode(errors="replace")
        line, self.buf = self.buf.split("\n", 1)
        return line
