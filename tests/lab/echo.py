"""A TCP+UDP echo server and its client for the shared-address labs (tests/integration/
test_shared.py, tests/cluster/*, tests/lab/cluster_demo.py): the scripts (run as real
processes in the lab's namespaces) and the Python side (Events, Client, server_argv).

Every socket outcome is a JSON line (with the time) in an event file read by Events.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .lab import Proc, wait_until

if TYPE_CHECKING:
    from .lab import Lab

# A TCP and UDP echo server on an address (IP_FREEBIND: it may listen before the
# address is here). argv: name addr tcp_port udp_port out. It greets every TCP
# connection with its name and answers each UDP client from a socket connected to it
# from the same port (SO_REUSEADDR; the connected one wins for that client), as servers
# with a socket per client do, so that the sock_diag level of the registry sees the
# client. Events: listening, accepted {port}, tcp_eof, tcp_error {errno}, udp_error
# {errno}, listen_error {errno}; it keeps its sockets until ended.
SERVER = r'''
import json, select, signal, socket, sys, threading, time
name, addr, tport, uport, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
lock = threading.Lock()
def note(**kw):
    kw["t"] = time.time()
    with lock, open(out, "a") as f:
        f.write(json.dumps(kw) + "\n")
def serve(c):
    try:
        c.sendall(name.encode() + b"\n")
        while True:
            d = c.recv(100)
            if not d:
                note(event="tcp_eof"); return
            c.sendall(d)
    except OSError as e:
        note(event="tcp_error", errno=e.errno)
def fb(s):
    s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
def udp(u):
    peers = {}
    while True:
        # A known client's datagrams arrive on its connected socket from then on.
        for r in select.select([u] + list(peers.values()), [], [])[0]:
            try:
                d, peer = r.recvfrom(100)
                c = peers.get(peer)
                if c is None:
                    c = socket.socket(fam, socket.SOCK_DGRAM); fb(c); c.bind((addr, uport)); c.connect(peer)
                    peers[peer] = c
                c.send(d)
            except OSError as e:
                note(event="udp_error", errno=e.errno)
                peers = {p: c for p, c in peers.items() if c is not r}
                if r is u:
                    return
try:
    s = socket.socket(fam); fb(s)
    s.bind((addr, tport)); s.listen(64)
    u = socket.socket(fam, socket.SOCK_DGRAM); fb(u); u.bind((addr, uport))
    threading.Thread(target=udp, args=(u,), daemon=True).start()
    note(event="listening")
    while True:
        c, peer = s.accept()
        note(event="accepted", port=peer[1])
        threading.Thread(target=serve, args=(c,), daemon=True).start()
except OSError as e:
    note(event="listen_error", errno=e.errno)
signal.pause()  # keep the accepted sockets (and their events) until the test ends us
'''

# The client: one TCP connection, idle in select() so that a reset is seen at once, and
# N UDP sockets connected to the server's UDP port. argv: addr tcp_port udp_port N
# reconnect out. stdin: "ping" sends a line over TCP, "udp" a datagram from each UDP
# socket (each echo is an event); "" (EOF) ends it. It connects (one attempt at a time,
# 1 s connect timeout, 50 ms apart, waiting on stdin) until the server greets it. When
# the TCP connection ends it exits, or with reconnect=1 connects again. Events:
# connected {node, port, udp_port, udp_ports, attempts}, pong, udp_echo, udp_error
# {errno}, tcp_error {errno}, tcp_eof.
CLIENT = r'''
import json, select, socket, sys, time
addr, tport, uport, n, reconnect, out = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
                                         sys.argv[5] == "1", sys.argv[6])
us = [socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
for u in us:
    u.connect((addr, uport))
def note(**kw):
    kw["t"] = time.time()
    with open(out, "a") as f:
        f.write(json.dumps(kw) + "\n")
def connect():
    attempts = 0
    while True:
        attempts += 1
        try:
            s = socket.create_connection((addr, tport), timeout=1)
            f = s.makefile("rb")
            node = f.readline().decode().strip()
            if node:
                s.settimeout(None)
                ports = [u.getsockname()[1] for u in us]
                note(event="connected", node=node, port=s.getsockname()[1], udp_port=ports[0], udp_ports=ports,
                     attempts=attempts)
                return s
            s.close()
        except OSError:
            pass
        r, _, _ = select.select([sys.stdin], [], [], 0.05)
        if r and not sys.stdin.readline():
            sys.exit(0)
s = connect()
while True:
    r, _, _ = select.select([sys.stdin, s] + us, [], [])
    if sys.stdin in r:
        cmd = sys.stdin.readline().strip()
        if cmd == "ping":
            s.sendall(b"ping\n")
        elif cmd == "udp":
            for u in us:
                u.send(b"u")
        elif cmd == "":
            break
    for u in us:
        if u in r:
            try:
                u.recv(100); note(event="udp_echo")
            except OSError as e:
                note(event="udp_error", errno=e.errno)
    if s in r:
        try:
            d = s.recv(100)
        except OSError as e:
            note(event="tcp_error", errno=e.errno)
            if not reconnect:
                break
            s.close(); s = connect(); continue
        if not d:
            note(event="tcp_eof")
            if not reconnect:
                break
            s.close(); s = connect(); continue
        note(event="pong")
'''


class Events:
    """A JSON-lines event file written by SERVER or CLIENT."""

    def __init__(self, path: Path):
        self.path = path

    def all(self) -> list[dict[str, Any]]:
        try:
            return [json.loads(l) for l in self.path.read_text().splitlines() if l.strip()]
        except (OSError, ValueError):
            return []

    def of(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.all() if e["event"] == event]


def server_argv(lab: "Lab", name: str, addr: str, tcp_port: int, udp_port: int, events: Events) -> list[str]:
    """The command line of SERVER (written to the lab's tmp) named name on addr."""
    script = lab.tmp / "echo-server.py"
    script.write_text(SERVER)
    return [sys.executable, str(script), name, addr, str(tcp_port), str(udp_port), str(events.path)]


class Client(Proc):
    """CLIENT in the lab's client namespace (behind the router) to addr: udp_sockets UDP
    sockets, and with reconnect a new TCP connection whenever one ends. server (optional)
    is the server's Events, shown when an echo does not come back."""

    def __init__(self, lab: "Lab", addr: str, tcp_port: int, udp_port: int | None = None, *,
                 udp_sockets: int = 1, reconnect: bool = False, timeout: float = 10,
                 server: Events | None = None):
        self.addr, self.udp_sockets, self.server = addr, udp_sockets, server
        script = lab.tmp / "echo-client.py"
        script.write_text(CLIENT)
        self.events = Events(lab.tmp / f"client-{secrets.token_hex(3)}.jsonl")
        popen = subprocess.Popen(["ip", "netns", "exec", lab.cl, sys.executable, str(script), addr, str(tcp_port),
                                  str(tcp_port if udp_port is None else udp_port), str(udp_sockets),
                                  "1" if reconnect else "0", str(self.events.path)],
                                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 text=True)
        super().__init__(popen, "client")
        lab.procs.append(self)
        self.info = wait_until(lambda: (self.events.of("connected") or [None])[0], timeout,
                               f"client connected to {addr}")

    def send(self, cmd: str) -> None:
        self.popen.stdin.write(cmd + "\n")
        self.popen.stdin.flush()

    def ping(self, timeout: float = 5.0) -> None:
        """A line to the server and its echo back over the current connection."""
        n = len(self.events.of("pong"))
        self.send("ping")
        wait_until(lambda: len(self.events.of("pong")) > n, timeout, "the TCP echo")

    def udp(self, timeout: float = 5.0) -> None:
        """A datagram from each UDP socket to the server and every echo back."""
        n = len(self.events.of("udp_echo"))
        self.send("udp")
        wait_until(lambda: len(self.events.of("udp_echo")) >= n + self.udp_sockets, timeout,
                   f"the UDP echoes (server: {self.server.all()[-3:] if self.server else '-'}, "
                   f"client: {self.events.all()[-3:]})")

    def ended(self) -> dict[str, Any] | None:
        """The first end (tcp_error or tcp_eof) of the first connection, or None."""
        return (self.events.of("tcp_error") + self.events.of("tcp_eof") or [None])[0]

    def connections(self) -> list[dict[str, Any]]:
        return self.events.of("connected")

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int:
        if self.running():
            try:
                self.popen.stdin.close()
            except OSError:
                pass
        return super().stop(timeout, sig)
