"""Shared by every test directory: a runtime the integration tests left running ends before a
test of another directory runs in the same process.

The integration tests keep one runtime per process alive from module to module
(``api_helpers.RUNTIMES``, session-scoped so that each mode's cluster starts once). A later test
elsewhere that starts p2pscoop in-process (``tests/unit/test_scoop_cli.py`` calls ``cli.main``)
would then fail with "a p2pscoop runtime is already running", so such a test first stops it.
"""

import sys
from pathlib import Path

INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_runtest_setup(item):
    helpers = sys.modules.get("api_helpers")
    if helpers is not None and INTEGRATION not in Path(item.path).resolve().parents:
        helpers.RUNTIMES.stop()
