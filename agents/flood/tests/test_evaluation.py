"""The live evaluation going on from what the worker kept of its previous run (the core's carry): it reads
only the readings after each series' last kept one, and says what one replay of all the readings says;
readings backfilled among the kept ones, a tracker reset or another worker's runs are noticed."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from agents.flood.domain import AlertTracker, readings_replay
from agents.flood.models import AlertEvent, Reading, Series, TrackerState
from agents.flood.selectors import evaluation_setup, readings_window
from agents.flood.services import evaluation as evaluation_service

from .conftest import T0, evaluate, ingest, series_rows
from .test_agent_rules import FLOOD, STORM

pytestmark = pytest.mark.django_db

LEVEL = [3.0 + 0.1 * i for i in range(36)]
LEVEL[14] = 1000.0  # a spike: flagged, never alerts
ROWS = (
    series_rows("R-1", "rainfall", STORM)
    + series_rows("L-1", "level", LEVEL)
    + series_rows("D-1", "depth", FLOOD, minutes=5)
)


def _upto(hours: float) -> list:
    return [r for r in ROWS if r[2] <= T0 + dt.timedelta(hours=hours)]


def _stored() -> list[tuple]:
    return [
        (e.seq, e.kind, e.zone.code, e.hazard, e.time, e.level, tuple(e.evidence))
        for e in AlertEvent.objects.select_related("zone").order_by("seq")
    ]


def _whole():
    setup = evaluation_setup()
    return readings_replay(
        readings=readings_window(setup=setup, start=None), sensors=setup.configs, tracker=AlertTracker()
    )


def _one_replay() -> list[tuple]:
    return [
        (e.seq, e.kind, e.zone, e.hazard, e.time, int(e.level), tuple(e.evidence)) for e in _whole().events
    ]


def _flags() -> list[tuple]:
    return list(
        Reading.objects.exclude(qc=0)
        .order_by("series__sensor__code", "time")
        .values_list("series__sensor__code", "time", "value")
    )


@pytest.fixture(autouse=True)
def _fresh_worker():
    evaluation_service._kept.clear()  # each test starts as a fresh worker
    yield
    evaluation_service._kept.clear()


def test_runs_go_on_from_the_previous_one_and_say_what_one_replay_says(world):
    outs = []
    for hours in (1, 2.5, 3, 3.25, 3.5, 3.75, 4, 6, 24):  # the spike stays open across runs
        ingest(_upto(hours))
        outs.append(evaluate())
    assert [o.carried for o in outs] == [False] + [True] * 8
    # a carried run reads the new readings only, not the context
    assert outs[3].readings_loaded == outs[3].readings_new < 10
    assert _stored() == _one_replay() and len(_stored()) > 10
    assert (
        _flags()
        == [(q.sensor, q.time, q.value) for q in _whole().qc]
        == [("L-1", T0 + dt.timedelta(hours=3.5), 1000.0)]
    )


def test_a_backfilled_reading_among_the_kept_ones_makes_the_run_read_the_context_again(world):
    rows = _upto(4)
    gap = rows.pop(30)  # a reading the gateway sends late
    ingest(rows)
    evaluate()
    ingest(_upto(4.5))  # the late one among them
    assert Series.objects.get(sensor__code=gap[0], parameter=gap[1]).backfills == 1
    backfilled = evaluate()
    assert not backfilled.carried
    ingest(_upto(6))
    assert evaluate().carried


def test_a_resent_batch_keeps_the_carry(world):
    ingest(_upto(3))
    evaluate()
    assert ingest(_upto(3)).accepted == 0  # nothing stored: no backfill
    ingest(_upto(3.5))  # new readings with the old ones again: counted, then checked and found complete
    assert Series.objects.filter(backfills__gt=0).exists()
    out = evaluate()
    assert out.carried and out.readings_new > 0
    ingest(_upto(24))
    evaluate()
    assert _stored() == _one_replay()


def test_another_worker_moving_the_tracker_on_is_caught_up_with(world):
    ingest(_upto(2))
    evaluate()
    behind = dict(evaluation_service._kept)  # this worker's carry after the first run
    ingest(_upto(3))
    evaluate()  # "another worker" ran this one
    evaluation_service._kept.clear()
    evaluation_service._kept.update(behind)
    ingest(_upto(24))
    out = evaluate()  # the first worker again: steps through 2 h..3 h as context, then evaluates the rest
    assert out.carried
    assert _stored() == _one_replay()
    assert _flags() == [(q.sensor, q.time, q.value) for q in _whole().qc]


def test_a_reset_tracker_or_a_rolled_back_run_is_not_gone_on_from(world):
    ingest(_upto(0.5))  # calm so far: no alerts
    evaluate()
    TrackerState.objects.all().delete()  # a new tracker row: a new generation
    assert not evaluate().carried
    ingest(_upto(1))  # the underpass floods
    with pytest.raises(RuntimeError), transaction.atomic():
        assert evaluate().counts["raised"]
        raise RuntimeError("the commit failed")
    again = evaluate()  # the worker kept the rolled-back run's carry: the tracker row is behind it
    assert not again.carried and again.counts["raised"]
    assert _stored() == _one_replay()


def test_a_dispatcher_action_between_runs_is_not_lost(world, users):
    from agents.flood.models import Alert
    from agents.flood.services import alert_acknowledge

    ingest(_upto(2.5))  # the rain gauge's zone is orange by now, and stays so until 3 h
    evaluate()
    alert = Alert.objects.get(zone__code="LOW", hazard="rainstorm", status="open")
    alert_acknowledge(
        alert=alert, user=users.dispatcher
    )  # writes the tracker row: the worker's copy is stale
    ingest(_upto(3))
    assert evaluate().carried
    [key] = [
        k
        for k in TrackerState.objects.get().state["keys"]
        if (k["zone"], k["hazard"]) == ("LOW", "rainstorm")
    ]
    assert key["alert"]["acknowledged_by"] == "dispatcher" and key["alert"]["level"] == "orange"
    assert AlertEvent.objects.filter(kind="acknowledged", alert=alert).count() == 1
