"""The cluster tier uses the integration tier's hooks (root check, exit 77 when nothing
ran): its conftest is loaded here under another name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_tests = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_tests))  # the "lab" package
_spec = importlib.util.spec_from_file_location("integration_conftest", _tests / "integration" / "conftest.py")
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)

pytest_collection_modifyitems = _conftest.pytest_collection_modifyitems
pytest_sessionfinish = _conftest.pytest_sessionfinish
pytest_configure = _conftest.pytest_configure

import pytest  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure: the tail of every node's pacemaker, corosync and mpathd log."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("call", "setup"):
        cluster = item.funcargs.get("cluster") if hasattr(item, "funcargs") else None
        if cluster is not None and not cluster._closed:
            try:
                rep.sections.append(("cluster logs", cluster.logs(lines=60)))
            except Exception as e:  # noqa: BLE001
                rep.sections.append(("cluster logs", f"unavailable: {e!r}"))
