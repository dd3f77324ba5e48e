"""The agent runtime without a worker: idempotency, claiming, failures, the reaper, events, commands."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from agents.core.base import Agent
from agents.core.models import AgentRun, RunKpi
from agents.core.registry import UnknownAgentError, _agents, register
from agents.core.services import agent_run_create, agent_run_execute, agent_run_reap, event_dispatch
from city_ops.city.services import city_event_publish

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


def test_reaper_frees_a_dead_workers_run(demo_city):
    run, _ = agent_run_create(agent="demo", enqueue=False)
    AgentRun.objects.filter(pk=run.pk).update(status="running", claimed_by="dead-host", attempts=1,
                                              heartbeat_at=timezone.now() - dt.timedelta(minutes=30))
    fresh, _ = agent_run_create(agent="demo", enqueue=False)
    AgentRun.objects.filter(pk=fresh.pk).update(status="running", claimed_by="alive", attempts=1,
                                                heartbeat_at=timezone.now())
    reaped = agent_run_reap(stale_after_s=300)
    assert reaped == [run.pk]
    run.refresh_from_db()
    assert run.status == "pending" and "dead-host" in run.error
    assert AgentRun.objects.get(pk=fresh.pk).status == "running"
    # It then runs to completion like any pending run.
    assert agent_run_execute(run_id=run.pk).status == "succeeded"


def test_reaper_gives_up_after_max_attempts(demo_city):
    run, _ = agent_run_create(agent="demo", enqueue=False)
    AgentRun.objects.filter(pk=run.pk).update(status="running", attempts=3,
                                              heartbeat_at=timezone.now() - dt.timedelta(hours=1))
    agent_run_reap(stale_after_s=60)
    run.refresh_from_db()
    assert run.status == "failed" and "gave up" in run.error


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

    from agents.core.schedules import schedules_sync

    schedules_sync()
    task = PeriodicTask.objects.get(name="demo: nightly network check")
    task.crontab.hour = "3"
    task.crontab.save()
    assert schedules_sync() == []  # nothing new, the admin's edit survives
    assert PeriodicTask.objects.get(name="demo: nightly network check").crontab.hour == "3"
    assert PeriodicTask.objects.filter(task="agents.reap_stuck_runs").exists()
