"""A roads run reports on the time since the previous run that finished before it."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from agents.roads.services.agent_run import run_window
from agents.runtime.models import AgentRun
from agents.runtime.services import agent_run_create

pytestmark = pytest.mark.django_db


def _finished(*, at: dt.datetime) -> AgentRun:
    run, _ = agent_run_create(agent="roads", run_date=at.date(), enqueue=False)
    AgentRun.objects.filter(pk=run.pk).update(status=AgentRun.Status.SUCCEEDED, finished_at=at)
    return run


def test_a_replayed_past_day_ignores_runs_that_finished_after_it():
    now = timezone.now()
    day_before, past, later = now - dt.timedelta(days=11), now - dt.timedelta(days=10), now - dt.timedelta(days=1)
    _finished(at=day_before)
    _finished(at=later)
    run, _ = agent_run_create(agent="roads", run_date=past.date(), enqueue=False)
    assert run_window(run=run, now=past) == (day_before, past)
    # today's run starts where the latest one ended
    assert run_window(run=run, now=now) == (later, now)
