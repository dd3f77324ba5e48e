"""The agent runtime without a worker: idempotency, claiming, failures, the reaper, events, commands."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from agents.runtime.base import Agent
from agents.runtime.models import AgentRun, RunKpi
from agents.runtime.registry import UnknownAgentError, _agents, register
from agents.runtime.services import (
    _liveness_key,
    _run_release,
    agent_run_claim,
    agent_run_create,
    agent_run_execute,
    agent_run_reap,
    event_dispatch,
)
from city_ops.city.services import city_event_publish
from city_ops.core.testing import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def failing_agent():
    @register
    class Boom(Agent):
        name = "boom-test"
        events = ("demo.ping",)

        def run(self, ctx):
            raise ValueError("bad input row 7")

    yield "boom-test"
    _agents.pop("boom-test", None)


def test_scheduled_run_exists_once_per_day(demo_city):
    day = dt.date(2026, 7, 1)
    a, created_a = agent_run_create(agent="demo", run_date=day, trigger="schedule", enqueue=False)
    b, created_b = agent_run_create(agent="demo", run_date=day, trigger="schedule", enqueue=False)
    assert created_a and not created_b and a.pk == b.pk
    # A re-plan the same day is a new run with its reason.
    c, _ = agent_run_create(agent="demo", run_date=day, trigger="replan", reason="closure #3", enqueue=False)
    assert c.pk != a.pk and c.reason == "closure #3"


def test_executing_twice_produces_one_result(demo_city):
    run, _ = agent_run_create(agent="demo", trigger="manual", enqueue=False)
    first = agent_run_execute(run_id=run.pk, worker="w1")
    second = agent_run_execute(run_id=run.pk, worker="w2")  # a redelivered task
    assert first.status == "succeeded" and second is None
    assert RunKpi.objects.filter(run=run).count() == len({k.name for k in RunKpi.objects.filter(run=run)}) > 0
    run.refresh_from_db()
    assert run.attempts == 1 and run.claimed_by == "w1"
    kpis = {k.name: k.value for k in run.kpis.all()}
    assert kpis["road_km"] > 10  # central Helsinki's drivable network is tens of km


def test_failure_is_recorded_not_retried(db, failing_agent):
    run, _ = agent_run_create(agent=failing_agent, enqueue=False)
    out = agent_run_execute(run_id=run.pk)
    assert out.status == "failed" and "bad input row 7" in out.error


def _running(run, *, worker: str, heartbeat_age_s: float, attempts: int = 1) -> None:
    AgentRun.objects.filter(pk=run.pk).update(
        status="running", claimed_by=worker, attempts=attempts,
        heartbeat_at=timezone.now() - dt.timedelta(seconds=heartbeat_age_s))


def test_reaper_frees_a_dead_workers_run(db):
    run, _ = agent_run_create(agent="demo", enqueue=False)
    _running(run, worker="dead-host:41", heartbeat_age_s=60)
    fresh, _ = agent_run_create(agent="demo", enqueue=False)
    _running(fresh, worker="alive:42", heartbeat_age_s=0)
    reaped = agent_run_reap(dead_after_s=40)
    assert reaped == [run.pk]
    run.refresh_from_db()
    assert run.status == "pending" and "dead-host:41" in run.error
    assert AgentRun.objects.get(pk=fresh.pk).status == "running"
    assert agent_run_reap(dead_after_s=40) == []  # re-queued once, not again by the next tick
    # It then runs to completion like any pending run.
    assert agent_run_execute(run_id=run.pk).status == "succeeded"


def test_a_live_workers_run_is_never_reaped_however_old_its_heartbeat(db):
    """The liveness key alone keeps a run: a database that missed the heartbeat writes (a blip, a lock)
    does not make a live worker's run look dead."""
    run, _ = agent_run_create(agent="demo", enqueue=False)
    _running(run, worker="busy-host:43", heartbeat_age_s=3600)
    cache.set(_liveness_key(run_id=run.pk, worker="busy-host:43"), 1, timeout=30)
    try:
        assert agent_run_reap(dead_after_s=40) == []
        assert AgentRun.objects.get(pk=run.pk).status == "running"
    finally:
        cache.delete(_liveness_key(run_id=run.pk, worker="busy-host:43"))
    assert agent_run_reap(dead_after_s=40) == [run.pk]  # the key gone too: now it is dead


def test_reaper_gives_up_after_max_attempts(db):
    run, _ = agent_run_create(agent="demo", enqueue=False)
    _running(run, worker="dead-host:44", heartbeat_age_s=3600, attempts=3)
    assert agent_run_reap(dead_after_s=40) == []
    run.refresh_from_db()
    assert run.status == "failed" and "gave up" in run.error and run.finished_at


def test_attempts_keep_their_own_times_and_a_late_attempt_records_nothing(db):
    """A re-done run keeps every attempt (worker, start, end, outcome); the run's start is the first
    attempt's. An attempt taken back by the reaper that finishes late changes nothing: the run is the new
    attempt's."""
    run, _ = agent_run_create(agent="demo", enqueue=False)
    first = agent_run_claim(run_id=run.pk, worker="host-a:1")
    AgentRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - dt.timedelta(seconds=60))
    assert agent_run_reap(dead_after_s=40) == [run.pk]
    done = agent_run_execute(run_id=run.pk, worker="host-b:2")
    assert done.status == "succeeded" and done.attempts == 2
    assert done.started_at == first.started_at and done.duration_s >= 0
    history = list(done.attempt_history.values_list("number", "worker", "outcome"))
    assert history == [(1, "host-a:1", "worker_lost"), (2, "host-b:2", "succeeded")]
    assert all(a.ended_at and a.duration_s >= 0 for a in done.attempt_history.all())
    # host-a wakes up and reports a failure: ignored, the succeeded run stands.
    assert not _run_release(run_id=run.pk, worker="host-a:1", outcome="failed", when=timezone.now(),
                            status="failed", error="late")
    assert AgentRun.objects.get(pk=run.pk).status == "succeeded"


def test_run_detail_lists_its_attempts(db, users):
    run, _ = agent_run_create(agent="demo", enqueue=False)
    agent_run_claim(run_id=run.pk, worker="host-a:1")
    AgentRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - dt.timedelta(seconds=60))
    agent_run_reap(dead_after_s=40)
    agent_run_execute(run_id=run.pk, worker="host-b:2")
    body = client_for("dispatcher", users).get(f"/api/agents/runs/{run.pk}/").json()
    assert [(a["number"], a["worker"], a["outcome"]) for a in body["attempt_history"]] == [
        (1, "host-a:1", "worker_lost"), (2, "host-b:2", "succeeded")]
    assert all(a["duration_s"] is not None for a in body["attempt_history"])
    page = client_for("dispatcher", users).get("/runs/").content.decode()
    assert "host-a:1" in page and "Worker lost" in page


def test_recovery_bound_of_the_defaults_is_under_90_s(db):
    """What docs/operations.md promises: the dead-after window plus the reaper's interval, with room for
    the reaper's own queue wait."""
    from django.conf import settings
    from django_celery_beat.models import PeriodicTask

    from agents.runtime.schedules import REAPER_TASK_NAME, schedules_sync

    schedules_sync()
    every_s = PeriodicTask.objects.get(name=REAPER_TASK_NAME).interval.every
    assert settings.CITY_OPS_RUN_DEAD_AFTER_S + every_s <= 60


def test_event_dispatch_runs_reacting_agents_once(demo_city, failing_agent):
    ev = city_event_publish(kind="demo.ping", payload={"x": 1}, source_agent="flood")
    runs = event_dispatch(event_id=ev.pk)
    assert sorted(r.agent for r in runs) == ["boom-test", "demo"]
    assert all(r.trigger == "event" and r.event_id == ev.pk for r in runs)
    assert event_dispatch(event_id=ev.pk) == []  # dispatched once


def test_unknown_agent_and_bad_date(db):
    with pytest.raises(UnknownAgentError, match="registered: .*demo"):
        agent_run_create(agent="nope")
    with pytest.raises(CommandError, match="unknown agent 'nope'"):
        call_command("run_agent", "nope", "--sync")
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("run_agent", "demo", "--date", "29/11/2026", "--sync")
    assert AgentRun.objects.count() == 0


def test_run_agent_command_sync_json(demo_city, capsys):
    call_command("run_agent", "demo", "--sync", "--json", "--date", "2026-07-01")
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "succeeded" and out["run_date"] == "2026-07-01" and out["kpis"]["road_km"] > 10


def test_kpi_result_must_be_agent_result(db):
    @register
    class Wrong(Agent):
        name = "wrong-test"

        def run(self, ctx):
            return {"kpis": []}

    try:
        run, _ = agent_run_create(agent="wrong-test", enqueue=False)
        assert "AgentResult" in agent_run_execute(run_id=run.pk).error
    finally:
        _agents.pop("wrong-test", None)


def test_schedules_are_created_once_and_editable(db):
    from django_celery_beat.models import PeriodicTask

    from agents.runtime.schedules import schedules_sync

    schedules_sync()
    task = PeriodicTask.objects.get(name="demo: nightly network check")
    task.crontab.hour = "3"
    task.crontab.save()
    assert schedules_sync() == []  # nothing new, the admin's edit survives
    assert PeriodicTask.objects.get(name="demo: nightly network check").crontab.hour == "3"
    assert PeriodicTask.objects.filter(task="agents.reap_stuck_runs").exists()


@pytest.mark.parametrize(("before", "after"), [(60, 20), (45, 45)])
def test_upgrade_moves_the_reaper_from_the_old_default_only(db, before, after):
    """Existing databases had the reaper every 60 s: the migration moves it to 20 s, but an operator's
    own interval stays."""
    import importlib

    from django.apps import apps
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from agents.runtime.schedules import REAPER_TASK_NAME

    every, _ = IntervalSchedule.objects.get_or_create(every=before, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(name=REAPER_TASK_NAME, defaults={
        "task": "agents.reap_stuck_runs", "interval": every})
    importlib.import_module("agents.runtime.migrations.0003_reaper_every_20s").reaper_every_20s(apps, None)
    assert PeriodicTask.objects.get(name=REAPER_TASK_NAME).interval.every == after
