"""A run that asks for more memory than the worker's limit fails with that reason, and the worker, a real
Celery subprocess, lives on and runs the next run (issue 14: one runaway job must not take the machine)."""
from __future__ import annotations

import pytest

from agents.runtime.services import agent_run_create
from tests.fixtures import run_wait

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

LIMIT_MB = 2048  # well above an idle worker (~0.8 GB of address space), far below the ballast


@pytest.fixture
def memory_limited(monkeypatch):
    """The worker subprocess reads its limit from the environment it is started with."""
    monkeypatch.setenv("CITY_OPS_WORKER_MEMORY_LIMIT_MB", str(LIMIT_MB))


def test_a_run_over_the_memory_limit_fails_and_the_worker_runs_the_next(memory_limited, celery_worker_proc):
    hungry, _ = agent_run_create(agent="demo", trigger="manual", params={"allocate_mb": 4 * LIMIT_MB})
    hungry = run_wait(hungry.pk)
    assert hungry.status == "failed"
    assert hungry.error.startswith(
        f"out of memory: the run needed more than the worker's limit (CITY_OPS_WORKER_MEMORY_LIMIT_MB = {LIMIT_MB})"
    )
    assert "MemoryError" in hungry.error
    assert celery_worker_proc.proc.poll() is None  # the worker process is alive

    # Within the limit the same agent and worker succeed: a run that allocates less than it, then does its work.
    fine, _ = agent_run_create(agent="demo", trigger="manual", params={"allocate_mb": LIMIT_MB // 4})
    fine = run_wait(fine.pk)
    assert fine.status == "succeeded", fine.error
    assert celery_worker_proc.proc.poll() is None  # the same solo-pool process ran both
