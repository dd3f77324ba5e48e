"""A real Celery worker on the real Redis broker runs agent runs end to end, and a run whose worker dies is
detected and re-run."""
from __future__ import annotations

import time

import pytest
from django.db import transaction

from agents.core.models import AgentRun
from agents.core.services import agent_run_create, agent_run_reap
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
    from agents.core.tasks import run_agent

    run, _ = agent_run_create(agent="demo", trigger="manual", enqueue=False)
    run_agent.apply_async(args=[run.pk], queue="default")
    run_agent.apply_async(args=[run.pk], queue="default")  # the same message twice
    run = run_wait(run.pk)
    # Both deliveries handled (the second finds the run taken), however long the worker needs for them.
    celery_worker_proc.wait_finished(run_agent.name, 2)
    run.refresh_from_db()
    assert run.status == "succeeded" and run.attempts == 1
    assert run.kpis.filter(name="road_km").count() == 1


def test_dead_worker_run_is_reaped_and_rerun(demo_city, celery_worker_proc):
    run, _ = agent_run_create(agent="demo", trigger="manual", params={"sleep_s": 30})
    run_wait(run.pk, timeout=30, statuses=("running",))
    celery_worker_proc.kill()  # the machine dies mid-run
    AgentRun.objects.filter(pk=run.pk).update(params={"sleep_s": 0})
    time.sleep(0.5)
    assert AgentRun.objects.get(pk=run.pk).status == "running"  # nobody knows yet
    # The heartbeat stops; with a short staleness window the reaper frees and re-enqueues the run.
    time.sleep(2.0)
    assert agent_run_reap(stale_after_s=1) == [run.pk]
    second = WorkerProcess(name="second").start()
    try:
        run = run_wait(run.pk, timeout=60)
        assert run.status == "succeeded" and run.attempts == 2
    finally:
        second.stop()
