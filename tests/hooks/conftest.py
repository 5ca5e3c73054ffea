"""The hooks tier uses the integration tier's fixtures and hooks (root check, lab logs
on failure): its conftest is loaded here under another name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_tests = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_tests))                  # the "lab" package
sys.path.insert(0, str(_tests / "integration"))  # mpathd_helpers
_spec = importlib.util.spec_from_file_location("integration_conftest", _tests / "integration" / "conftest.py")
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)

pytest_collection_modifyitems = _conftest.pytest_collection_modifyitems
pytest_sessionfinish = _conftest.pytest_sessionfinish
pytest_runtest_makereport = _conftest.pytest_runtest_makereport
pytest_configure = _conftest.pytest_configure
need_mpathd = _conftest.need_mpathd
