"""Fixtures shared by the test packages (helpers.py holds the plain functions behind them).

tests/ has no __init__.py: pytest puts this folder on sys.path (rootdir conftest, importmode
prepend), so `import helpers` works from every subfolder; test file names are unique across
the subfolders (tests/test_layout.py checks it), so no two test modules clash.
"""

from __future__ import annotations

import pytest

from helpers import TINY_TRAIN, build_tiny_run


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny phantom run (synth -> extract -> train -> evaluate), built once per process."""
    return build_tiny_run(tmp_path_factory)


@pytest.fixture
def tiny_config():
    """The tiny training options (a densenet121 at width 0.125), as a fresh dict."""
    return dict(TINY_TRAIN)
