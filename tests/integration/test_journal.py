"""journald-native logging: the records mpathd sends when its stderr is the journal.

The daemon calls libsystemd's sd_journal_sendv(), which writes to the fixed path
/run/systemd/journal/socket (sd-journal honours no override), and $JOURNAL_STREAM
names its stderr the way systemd does. Two ways to read the records back:
- frames: the daemon runs in a private mount namespace with a tmpfs on /run whose
  /run/systemd/journal/socket is a symlink to a datagram socket this test owns; the
  test decodes the native protocol frames (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/);
- a real systemd-journald in a private mount namespace (tmpfs on /run and
  /var/log/journal, volatile storage, no kmsg), the daemon joins that namespace, and
  `journalctl MESSAGE_ID=...` is asked as an administrator would.
They check priorities, fields and the MESSAGE_IDs that mpathd(8) documents.
"""

from __future__ import annotations

import array
import os
import re
import socket
import struct
import threading
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.lab import Lab, Proc, wait_until
from mpathd_helpers import MOVE_TIMEOUT, V4, start_group, wait_moved_away

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("need_mpathd")


def documented_ids() -> dict[str, str]:
    """MESSAGE_IDs as man/mpathd.8 lists them: {what: id}."""
    text = (REPO / "man" / "mpathd.8").read_text()
    ids = dict(re.findall(r"^\\fB([0-9a-f]{32})\\fR\s*\n(\w+):", text, re.M))
    return {what: mid for mid, what in ids.items()}


def decode(frame: bytes) -> list[tuple[str, str]]:
    """One native-protocol datagram: KEY=value\\n, or KEY\\n + 64-bit LE length + value + \\n."""
    items, i = [], 0
    while i < len(frame):
        nl = frame.index(b"\n", i)
        line = frame[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack_from("<Q", frame, nl + 1)
            v = frame[nl + 9:nl + 9 + n]
            assert frame[nl + 9 + n:nl + 10 + n] == b"\n", "binary field not closed by a newline"
            i = nl + 10 + n
        assert re.fullmatch(rb"[A-Z0-9_]+", k) and not k.startswith(b"_"), f"bad field name {k!r}"
        items.append((k.decode(), v.decode(errors="replace")))
    return items


class JournalSocket:
    """A datagram socket standing in for journald's, read by a thread as journald
    would (an unread socket fills up and blocks the sender); records are lists of
    (KEY, value)."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self._records: list[list[tuple[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, anc, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(4))
            except socket.timeout:
                continue
            try:
                for level, kind, payload in anc:  # a big record comes as a sealed memfd
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fd = array.array("i", payload[:4])[0]
                        with os.fdopen(fd, "rb") as f:
                            data = f.read()
                record = decode(data)
            except BaseException as e:  # noqa: BLE001 - reported by records()
                self._errors.append(e)
                continue
            with self._lock:
                self._records.append(record)

    def drain(self) -> list[list[tuple[str, str]]]:
        assert not self._errors, f"undecodable frames: {self._errors!r}"
        with self._lock:
            return list(self._records)

    def find(self, **want: str) -> list[dict[str, str]]:
        out = []
        for r in self.drain():
            d = dict(r)
            if all(d.get(k) == v for k, v in want.items()):
                out.append(d)
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def journal_wrap(target: Path) -> list[str]:
    """Runs mpathd in a private mount namespace whose /run/systemd/journal/socket is
    `target` (the pid stays mpathd's: unshare and sh exec)."""
    script = ('mount -t tmpfs -o mode=0755 mpathd-test /run && mkdir -p /run/systemd/journal && '
              f'ln -s {target} /run/systemd/journal/socket && exec "$@"')
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh"]


@pytest.fixture
def journal(lab: Lab):
    j = JournalSocket(lab.tmp / "journal.sock")
    yield j
    j.close()


@pytest.mark.members(2)
def test_failover_records_carry_priorities_fields_and_message_ids(lab: Lab, journal: JournalSocket):
    ids = documented_ids()
    assert set(ids) >= {"member", "group", "address"}, f"mpathd(8) lists {ids}"
    d = start_group(lab, members=["m0", "m1"], data_addresses=[f"{V4}/24"],
                    daemon={"wrap": journal_wrap(journal.path), "journal_stream": True})
    wait_until(lambda: journal.find(MESSAGE_ID=ids["address"], MPATHD_REASON="startup"), 10,
               "the start-up placement in the journal")
    old = d.address(V4)["holder"]
    lab.link_down(int(old.removeprefix("m")))
    new = wait_moved_away(lab, d, V4, old, MOVE_TIMEOUT)

    move = wait_until(lambda: journal.find(MESSAGE_ID=ids["address"], MPATHD_REASON="failover"), 10,
                      "the failover in the journal")
    assert len(move) == 1, move
    m = move[0]
    assert m["MPATHD_ADDRESS"] == V4 and m["MPATHD_GROUP"] == "g0", m
    assert (m["MPATHD_FROM"], m["MPATHD_TO"], m["INTERFACE"]) == (old, new, new), m
    assert m["PRIORITY"] == "6" and m["SYSLOG_IDENTIFIER"] == "mpathd", m
    assert m["MESSAGE"] == f"group g0: {V4}/24 {old} -> {new} (failover)", m

    member = journal.find(MESSAGE_ID=ids["member"], INTERFACE=old, MPATHD_REASON="link-down")
    assert len(member) == 1 and member[0]["PRIORITY"] == "4" and member[0]["MPATHD_GROUP"] == "g0", member
    group = journal.find(MESSAGE_ID=ids["group"], MPATHD_GROUP="g0", MPATHD_REASON="link-down")
    assert len(group) == 1 and group[0]["PRIORITY"] == "4", group
    assert "INTERFACE" not in group[0], group

    records = [dict(r) for r in journal.drain()]
    # Debug lines (the lab runs --log-level debug) are priority 7; every record is well-formed.
    assert all(r.get("PRIORITY") in {str(p) for p in range(8)} and r.get("MESSAGE") for r in records)
    assert any(r["PRIORITY"] == "7" for r in records)
    assert not any(r["MESSAGE"].startswith("<") for r in records)
    # No CODE_FILE= naming the sink instead of the line's origin.
    assert not any("CODE_FILE" in r for r in records), records[0]
    # Lines about a member carry its name: probing and member changes alike.
    assert all(r.get("INTERFACE") for r in records if r.get("MESSAGE_ID") == ids["member"])
    # Nothing of it went to stderr.
    assert "ok -> failed" not in d.log()


@pytest.mark.members(2)
def test_stderr_that_is_not_the_journal_gets_the_plain_format(lab: Lab, journal: JournalSocket):
    # Inherited from a parent whose stderr was the journal: ours is a file.
    d = start_group(lab, members=["m0", "m1"], data_addresses=[f"{V4}/24"],
                    daemon={"wrap": journal_wrap(journal.path), "env": {"JOURNAL_STREAM": "1:1"}})
    wait_until(lambda: "mpathd started" in d.log(), 10, "the start line on stderr")
    line = next(l for l in d.log().splitlines() if "mpathd started" in l)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} info: mpathd started", line), line
    assert journal.drain() == []


@pytest.mark.members(2)
def test_unreachable_journal_falls_back_to_numeric_priorities_on_stderr(lab: Lab):
    d = start_group(lab, members=["m0", "m1"], data_addresses=[f"{V4}/24"],
                    daemon={"wrap": journal_wrap(lab.tmp / "no-such-socket"), "journal_stream": True})
    wait_until(lambda: "mpathd started" in d.log(), 10, "the start line on stderr")
    assert re.search(r"^<6>mpathd started: 1 group\(s\)$", d.log(), re.M), d.log()
    assert "<info>" not in d.log()


JOURNALD = "/lib/systemd/systemd-journald"


class Journald:
    """A real systemd-journald in the lab's host namespace and its own mount namespace;
    its journal lives in a tmpfs there and vanishes with it (volatile storage: the
    machine's /var/log/journal is covered and never written)."""

    def __init__(self, lab: Lab):
        self.lab = lab
        # ip netns exec mounts a fresh /sys without cgroups, which journald needs.
        script = ("mount -t cgroup2 cgroup2 /sys/fs/cgroup && mount -t tmpfs -o mode=0755 mpathd-test /run && "
                  "mount -t tmpfs -o mode=0755 mpathd-test /var/log/journal && "
                  "mkdir -p /run/systemd/journald.conf.d /run/log/journal && "
                  "printf '[Journal]\\nStorage=volatile\\nReadKMsg=no\\nForwardToSyslog=no\\n"
                  "ForwardToWall=no\\nForwardToConsole=no\\n' > /run/systemd/journald.conf.d/test.conf && "
                  f"exec {JOURNALD}")
        self.log = lab.tmp / "journald.log"
        with open(self.log, "w") as out:
            popen = subprocess.Popen(["ip", "netns", "exec", lab.host, "unshare", "-m", "--propagation", "private",
                                      "sh", "-c", script], stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        self.proc = Proc(popen, "systemd-journald")
        lab.procs.append(self.proc)
        wait_until(lambda: self.proc.running() and self.inside("test", "-S", "/run/systemd/journal/socket")
                   .returncode == 0, 10, f"journald's socket\n{self.log.read_text()}")

    def inside(self, *cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m", "--", *cmd],
                              capture_output=True, text=True, timeout=30)

    def wrap(self) -> list[str]:
        """Runs mpathd in journald's mount namespace (nsenter execs: the pid stays)."""
        return ["nsenter", "-t", str(self.proc.pid), "-m", "--"]

    def query(self, *matches: str) -> list[dict]:
        cp = self.inside("journalctl", "-D", "/run/log/journal", "--no-pager", "-o", "json", *matches)
        assert cp.returncode == 0, cp.stderr
        return [json.loads(l) for l in cp.stdout.splitlines() if l.strip()]


@pytest.mark.skipif(not os.access(JOURNALD, os.X_OK) or not shutil.which("journalctl"),
                    reason="systemd-journald is not installed")
@pytest.mark.members(2)
def test_journalctl_lists_the_failover(lab: Lab):
    ids = documented_ids()
    jd = Journald(lab)
    d = start_group(lab, members=["m0", "m1"], data_addresses=[f"{V4}/24"],
                    daemon={"wrap": jd.wrap(), "journal_stream": True})
    old = d.address(V4)["holder"]
    lab.link_down(int(old.removeprefix("m")))
    new = wait_moved_away(lab, d, V4, old, MOVE_TIMEOUT)
    failovers = wait_until(lambda: jd.query(f"MESSAGE_ID={ids['address']}", "MPATHD_REASON=failover"), 10,
                           "journalctl to list the failover")
    assert len(failovers) == 1, failovers
    f = failovers[0]
    assert (f["MPATHD_ADDRESS"], f["MPATHD_FROM"], f["MPATHD_TO"], f["INTERFACE"]) == (V4, old, new, new), f
    assert f["PRIORITY"] == "6" and f["_PID"] == str(d.pid) and f["SYSLOG_IDENTIFIER"] == "mpathd", f
    # journalctl -p warning: the member's failure and the degraded group, not the move.
    warnings = [r["MESSAGE"] for r in jd.query("-p", "warning", f"_PID={d.pid}")]
    assert f"g0/{old}: ok -> failed" in " ".join(warnings), warnings
    assert "group g0: ok -> degraded (link-down)" in warnings, warnings
    assert not any("(failover)" in w for w in warnings), warnings
    # journalctl INTERFACE=m0: everything about one NIC.
    about_old = [r["MESSAGE"] for r in jd.query(f"INTERFACE={old}")]
    assert any("ok -> failed" in m for m in about_old), about_old
    assert all(old in m for m in about_old), about_old
