"""mpathd changes nothing outside the namespace it runs in; it stops cleanly on SIGTERM
and leaves the addresses where they are."""

from __future__ import annotations

import signal

from lab.lab import AddressMonitor, Lab, root_snapshot, snapshot_diff
from mpathd_helpers import DATA, MOVE_TIMEOUT, member_is, start_group, wait_moved_away


def test_root_namespace_untouched(need_mpathd):
    before = root_snapshot()
    with Lab(members=3) as lab:
        d = start_group(lab)
        old = lab.holder_of(DATA["ipv4"])
        lab.link_down(int(old[1:]))
        wait_moved_away(lab, d, DATA["ipv4"], old)
        lab.link_up(int(old[1:]))
        assert d.stop(timeout=10) == 0, d.log()[-3000:]
    diff = snapshot_diff(before, root_snapshot())
    assert not diff, f"the root namespace changed:\n{diff}"


def test_sigterm_keeps_addresses(lab, need_mpathd):
    d = start_group(lab)
    placed = {addr: lab.holders(addr) for addr in DATA.values()}
    rc = d.stop(timeout=10, sig=signal.SIGTERM)
    assert rc == 0, d.log()[-3000:]
    assert {addr: lab.holders(addr) for addr in DATA.values()} == placed


def test_restart_adopts_placement(lab, need_mpathd):
    """A restarted daemon adopts what the kernel has: no address removed and re-added,
    and a member that failed stays out of service."""
    d = start_group(lab)
    old = lab.holder_of(DATA["ipv4"])
    lab.link_down(int(old[1:]))
    new = wait_moved_away(lab, d, DATA["ipv4"], old)
    assert d.stop(timeout=10) == 0
    mon = AddressMonitor(lab)
    d2 = lab.start_mpathd(d.config_path.read_text(), workdir=d.workdir)
    s = d2.wait_status(lambda s: member_is(d2, old, state="failed")(s) and
                       all(a.get("holder") for a in s["groups"][0]["addresses"]),
                       MOVE_TIMEOUT, f"{old} still failed after restart, addresses adopted")
    assert d2.address(DATA["ipv4"], s)["holder"] == new
    assert lab.holders(DATA["ipv4"]) == [new]
    mon.settle()
    mon.stop()
    for addr in DATA.values():
        touched = mon.events(addr + "/")
        assert not touched, f"{addr} was touched on restart:\n{touched}"
