"""pytest fixtures for mpathd's integration tests (real binaries in network namespaces).

Run as root:  /usr/bin/python3 -m pytest -q tests/integration
Binaries:     $MPATHD_BIN, $FLOWTOOL_BIN (default build/mpathd/mpathd and
              build/tests/tools/flowtool under the repo root).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ -> "lab" package

from lab.lab import Lab, flowtool_bin, mpathd_bin, root_snapshot  # noqa: E402


def pytest_collection_modifyitems(config, items):
    reasons = []
    if os.geteuid() != 0:
        reasons.append("needs root (network namespaces)")
    for item in items:
        for r in reasons:
            item.add_marker(pytest.mark.skip(reason=r))


def pytest_sessionfinish(session, exitstatus):
    # Nothing ran without root: exit 77 so that CTest reports the file as skipped
    # (SKIP_RETURN_CODE) instead of passed.
    if os.geteuid() != 0 and exitstatus in (0, 5):
        session.exitstatus = 77


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    # On failure, attach the daemon logs, status.json and the lab's addresses.
    if rep.failed and rep.when in ("call", "setup"):
        lab = item.funcargs.get("lab") if hasattr(item, "funcargs") else None
        if lab is not None and not lab._closed:
            try:
                rep.sections.append(("lab state", lab.describe()))
            except Exception as e:  # noqa: BLE001
                rep.sections.append(("lab state", f"unavailable: {e!r}"))
            if lab.daemons:
                rep.sections.append(("mpathd log", lab.logs_text(lines=250)))


def _need(path: str, what: str) -> None:
    if not os.access(path, os.X_OK):
        pytest.fail(f"{what} not found at {path}; build it (cmake --build build) or set the env var")


@pytest.fixture
def need_mpathd():
    _need(mpathd_bin(), "mpathd (MPATHD_BIN)")


@pytest.fixture
def need_flowtool():
    _need(flowtool_bin(), "flowtool (FLOWTOOL_BIN)")


@pytest.fixture
def lab(request):
    """A lab with 3 members (m0..m2). A test can ask for another count with
    @pytest.mark.members(N)."""
    marker = request.node.get_closest_marker("members")
    members = marker.args[0] if marker else 3
    with Lab(members=members) as lab:
        yield lab


@pytest.fixture
def root_unchanged():
    """Asserts that the namespace pytest runs in is the same after the test."""
    from lab.lab import snapshot_diff
    before = root_snapshot()
    yield
    after = root_snapshot()
    diff = snapshot_diff(before, after)
    assert not diff, f"the root namespace changed:\n{diff}"


def pytest_configure(config):
    config.addinivalue_line("markers", "members(n): number of members of the lab fixture")
