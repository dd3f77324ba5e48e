"""The shared fixtures live in tests/fixtures.py (a plugin the root conftest loads once). The helpers below are
plain functions that tests import by name."""
from tests.fixtures import WorkerProcess, browser_login, run_wait  # noqa: F401
