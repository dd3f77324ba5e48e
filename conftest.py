"""Project-wide pytest fixtures.

`shared_dir` points at `../shared/` beside the checkout (public data for tests and benchmarks). A user's
fresh clone does not have it, so tests that read it carry `@pytest.mark.shared` and skip with a reason.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# One registration of the platform fixtures (demo_city, users, celery_worker_proc, browser, ...) for every
# folder: conftests that imported them each made their own session browser, and Playwright allows one.
pytest_plugins = ["tests.fixtures"]

REPO_ROOT = Path(__file__).resolve().parent
SHARED_DIR = Path(os.environ.get("CITY_OPS_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The `../shared/` folder, or a skip when this checkout has none beside it."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"../shared/ is absent (looked in {SHARED_DIR}); it holds the public data this test reads")
    return SHARED_DIR
