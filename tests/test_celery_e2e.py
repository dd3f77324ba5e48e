"""A real Celery worker on the real Redis broker runs agent runs end to end, and a run whose worker dies is
detected and re-run."""
from __future__ import annotations

import os
import signal
import time

import pytest
from django.db import transaction

from agents.runtime.models import AgentRun
from agents.runtime.services import agent_run_create, agent_run_reap
from city_ops.core.models import AuditEntry
from tests.fixtures import WorkerProcess, run_wait

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def test_enqueued_run_completes_with_kpis(demo_city, celery_worker_proc):
    with transaction.atomic():
        run, _ = agent_run_create(agent="demo", trigger="manual", reason="e2e")
        # Not sent before commit: the worker cannot see an uncommitted row.
        assert AgentRun.objects.get(pk=run.pk).enqueued_at is None
    run = run_wait(run.pk)
    assert run.status == "succeeded", run.error
    assert run.enqueued_at is not None and run.claimed_by
    assert {k.name for k in run.kpis.all()} >= {"road_km", "mean_travel_min"}


def test_duplicate_delivery_runs_once(demo_city, celery_worker_proc):
    from agents.runtime.tasks import run_agent

    run, _ = agent_run_create(agent="demo", trigger="manual", enqueue=False)
    run_agent.apply_async(args=[run.pk], queue="default")
    run_agent.apply_async(args=[run.pk], queue="default")  # the same message twice
    run = run_wait(run.pk)
    # Both deliveries handled (the second finds the run taken), however long the worker needs for them.
    celery_worker_proc.wait_finished(run_agent.name, 2)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.attempts == 1
    assert run.kpis.filter(name="road_km").count() == 1


# The dead-after window, shortened for the worker subprocesses (they read the environment) and for the
# reaper in this process; beat's interval is emulated by calling the reaper every REAP_EVERY_S.
DEAD_AFTER_S = 3
REAP_EVERY_S = 1.0


@pytest.fixture
def short_dead_window(monkeypatch, settings):
    monkeypatch.setenv("CITY_OPS_RUN_DEAD_AFTER_S", str(DEAD_AFTER_S))
    settings.CITY_OPS_RUN_DEAD_AFTER_S = DEAD_AFTER_S
    settings.CITY_OPS_RUN_STALE_AFTER_S = 1  # the old age limit, far below these runs' length


def _reap_until(predicate, *, timeout: float) -> float:
    """Tick the reaper like beat until `predicate()` holds; returns the monotonic time it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agent_run_reap()
        if predicate():
            return time.monotonic()
        time.sleep(REAP_EVERY_S)
    raise AssertionError(f"not reached in {timeout} s")


def _back_to_work(run_id: int, *, dead_worker: str) -> bool:
    run = AgentRun.objects.get(pk=run_id)
    return run.status == "pending" or run.claimed_by not in ("", dead_worker)


def test_dead_workers_run_is_back_within_the_window_and_redone_once(short_dead_window, celery_worker_proc):
    run, _ = agent_run_create(agent="demo", trigger="manual", params={"sleep_s": 30})
    run = run_wait(run.pk, statuses=("running",))
    host, pid = run.claimed_by.rsplit(":", 1)
    assert int(pid) == celery_worker_proc.proc.pid  # the claim names the process executing it
    AgentRun.objects.filter(pk=run.pk).update(params={"sleep_s": 1})  # the re-run need not sleep as long
    os.kill(int(pid), signal.SIGKILL)  # the machine dies mid-run
    killed = time.monotonic()
    celery_worker_proc.proc.wait(10)
    # Back in a queue within the window plus one reaper tick (and the tick's own time), not minutes.
    back = _reap_until(lambda: _back_to_work(run.pk, dead_worker=run.claimed_by), timeout=30)
    assert back - killed <= DEAD_AFTER_S + REAP_EVERY_S + 2, back - killed
    second = WorkerProcess(name="second").start()
    try:
        run = run_wait(run.pk)
        assert agent_run_reap() == []  # later ticks change nothing
        run.refresh_from_db()
        assert run.status == "succeeded" and run.attempts == 2
        assert AuditEntry.objects.filter(action="agent_run.reaped", object_id=str(run.pk)).count() == 1
        lost, redone = run.attempt_history.all()
        assert (lost.worker, lost.outcome) == (f"{host}:{pid}", "worker_lost")
        assert redone.outcome == "succeeded" and redone.worker.endswith(f":{second.proc.pid}")
        assert run.started_at == lost.started_at and lost.ended_at <= redone.started_at
    finally:
        second.stop()


def test_live_slow_run_is_never_reaped(short_dead_window, celery_worker_proc):
    run, _ = agent_run_create(agent="demo", trigger="manual", params={"sleep_s": 4 * DEAD_AFTER_S})
    run_wait(run.pk, statuses=("running",))
    _reap_until(lambda: AgentRun.objects.get(pk=run.pk).status != "running", timeout=60)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.attempts == 1, run.error
    assert run.duration_s > 4 * DEAD_AFTER_S
    assert [a.outcome for a in run.attempt_history.all()] == ["succeeded"]
