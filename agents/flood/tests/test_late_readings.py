"""Late readings (issue 3): a gauge on a slow link uploads its last minutes in a batch after other sensors'
newer readings were evaluated. Each series keeps its own evaluation mark, so such readings are judged once,
when they arrive; a real backfill (before the series' own judged readings) stays context. Through ingest
and `evaluation_run` on the real database, as a worker that kept its previous run and as a fresh one."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.gis.geos import Point

from agents.flood.models import Alert, AlertEvent, FloodZone, Sensor, Series, TrackerState
from agents.flood.services import evaluation as evaluation_service

from .conftest import T0, evaluate, ingest, readings_clear, series_rows, square

pytestmark = pytest.mark.django_db

NINE = T0 + dt.timedelta(hours=9)


def _at(minutes: int) -> dt.datetime:
    """09:00 + minutes (reading time)."""
    return NINE + dt.timedelta(minutes=minutes)


def _depth(sensor: str, values: list[float], start: int) -> list:
    """One-minute depth readings of `sensor` from 09:00 + `start` minutes."""
    return series_rows(sensor, "depth", values, minutes=1, start=_at(start))


@pytest.fixture
def late_world(world):
    """The test world plus a second underpass UND2 (depth sensor D-2) and a second depth sensor D-3 in UND,
    next to D-1 (one zone and hazard fed by two sensors)."""
    zone = FloodZone.objects.create(code="UND2", name="Second underpass", kind="underpass",
                                    geom=square(24.930, 60.170))
    for code, lon in (("D-2", 24.930), ("D-3", 24.9402)):
        sensor = Sensor.objects.create(code=code, name=f"depth {code}", kind="depth",
                                       geom=Point(lon, 60.170, srid=4326))
        Series.objects.create(sensor=sensor, parameter="depth", unit="cm")
    world.zones["UND2"] = zone
    return world


@pytest.fixture(autouse=True)
def _fresh_worker():
    evaluation_service._kept.clear()
    yield
    evaluation_service._kept.clear()


def _mark(code: str) -> dt.datetime | None:
    return Series.objects.get(sensor__code=code, parameter="depth").evaluated_until


def _log(zone: str | None = None) -> list[tuple]:
    events = AlertEvent.objects.select_related("zone").order_by("seq")
    if zone:
        events = events.filter(zone__code=zone)
    return [(e.seq, e.kind, e.zone.code, e.hazard, e.time, e.level, tuple(e.evidence), e.sensor_code,
             tuple(sorted(e.detail.items()))) for e in events]


def test_a_late_batch_in_another_zone_raises_its_alert_at_its_reading_times(late_world):
    ingest(_depth("D-1", [2.0] * 66, 0) + _depth("D-2", [2.0] * 60, 0))  # D-1 to 10:05, D-2 to 09:59
    first = evaluate()
    assert first.evaluated_at == _at(65) and not Alert.objects.exists()
    assert _mark("D-1") == _at(65) and _mark("D-2") == _at(59)
    # D-2 was judged silent at 10:03 (D-1's readings went on): its silence is part of the record
    assert [(e[1], e[2], e[4]) for e in _log()] == [("sensor_fault", "UND2", _at(63))]
    und_before = TrackerState.objects.get().state

    ingest(_depth("D-2", [2.0, 20.0, 45.0, 62.0, 70.0], 60))  # 10:00-10:04, after 10:05 was evaluated
    late = evaluate()
    assert not late.nothing_new and late.readings_new == 5
    assert late.evaluated_at == _at(65)  # the newest reading judged so far: the late ones are older
    assert _mark("D-2") == _at(64) and _mark("D-1") == _at(65)
    alert = Alert.objects.get(zone__code="UND2", status="open")
    assert alert.raised_at == _at(61) and alert.level_label == "red" and alert.closure_state == "requested"
    log = [(e[1], e[4], e[5]) for e in _log("UND2")][1:]
    assert log == [("sensor_restored", _at(60), 0), ("raised", _at(61), 1), ("escalated", _at(64), 4),
                   ("closure_requested", _at(64), 4)]
    # the other zone is untouched: no alert, its key where it stood
    assert not Alert.objects.filter(zone__code="UND").exists()
    [und] = [k for k in TrackerState.objects.get().state["keys"] if k["zone"] == "UND"]
    assert und == next(k for k in und_before["keys"] if k["zone"] == "UND")
    assert evaluate().nothing_new  # judged once


def test_a_late_batch_of_a_second_sensor_in_the_zone_escalates_without_chatter(late_world):
    # D-1 and D-3 watch UND; both read 18 cm (blue) and D-3's link is slow
    ingest(_depth("D-1", [18.0] * 66, 0) + _depth("D-3", [18.0] * 60, 0))
    evaluate()
    assert Alert.objects.get(zone__code="UND").level_label == "blue"
    ingest(_depth("D-3", [18.0, 30.0, 45.0, 62.0, 70.0], 60))  # 10:00-10:04: the water rose at D-3
    evaluate()
    escalated = list(AlertEvent.objects.filter(kind="escalated").order_by("seq"))
    # stamped with the readings' times, with where the zone's clock stood and how late they were judged
    assert [(e.time, e.level, e.sensor_code, e.detail["key_time"], e.detail["late_minutes"]) for e in escalated] == [
        (_at(62), 3, "D-3", _at(65).isoformat(), 3.0), (_at(63), 4, "D-3", _at(65).isoformat(), 2.0)]
    assert Alert.objects.get(zone__code="UND", status="open").level_label == "red"
    # then both report on time: D-3's water drains, D-1 stays at 18 cm
    for start, end in ((66, 80), (80, 100), (100, 130)):
        ingest(_depth("D-1", [18.0] * (end - start), start) + _depth("D-3", [2.0] * (end - start), start - 1))
        evaluate()
    log = _log("UND")
    levels = [e[5] for e in log if e[1] in ("raised", "escalated", "de-escalated", "cleared")]
    assert levels == [1, 3, 4, 1]  # raised blue, escalated orange and red (late), back to blue once: no chatter
    [down] = [e for e in log if e[1] == "de-escalated"]
    held = dict(down[8])["below_for_minutes"]
    assert 30 <= held < 40  # on the zone's clock, from D-3's first low reading: never negative
    assert down[4] >= _at(65) + dt.timedelta(minutes=30)
    assert Alert.objects.filter(zone__code="UND").count() == 1


def test_a_backfill_before_the_series_own_judged_readings_stays_context(late_world):
    rows = _depth("D-2", [2.0] * 65, 0)
    gap = rows.pop(30)  # 09:30, which the gateway sends much later
    ingest(rows)
    evaluate()
    ingest([(gap[0], gap[1], gap[2], 70.0)])  # before D-2's own last judged reading (10:04): a backfill
    assert Series.objects.get(sensor__code="D-2").backfills == 1
    assert evaluate().nothing_new  # no series has a reading past its own mark
    ingest(_depth("D-2", [2.0] * 5, 65))
    again = evaluate()
    assert not again.carried and again.readings_new == 5  # the context read back, the backfill in it
    assert not Alert.objects.exists()
    assert not any("09:30" in key for e in AlertEvent.objects.all() for key in e.evidence)


BATCHES = [
    # D-1 to 10:05 (09:30 missing), D-2 and D-3 to 09:59
    [r for r in _depth("D-1", [2.0] * 66, 0) if r[2] != _at(30)] + _depth("D-2", [2.0] * 60, 0)
    + _depth("D-3", [18.0] * 60, 0),
    # late: D-2 floods (another zone), D-3 rises (same zone as D-1)
    _depth("D-2", [2.0, 20.0, 45.0, 62.0, 70.0], 60) + _depth("D-3", [18.0, 30.0, 45.0, 62.0], 60),
    # on time again, and D-3 still a minute behind
    _depth("D-1", [2.0] * 15, 66) + _depth("D-2", [70.0] * 5 + [10.0] * 11, 65) + _depth("D-3", [50.0] * 15, 64),
    # D-1's 09:30 at last (a backfill), with new readings
    [(*_depth("D-1", [2.0], 30)[0][:3], 2.0)] + _depth("D-1", [2.0] * 40, 81) + _depth("D-2", [10.0] * 40, 81)
    + _depth("D-3", [2.0] * 42, 79),
    # a long silence of D-2 ends with a late batch
    _depth("D-1", [2.0] * 60, 121) + _depth("D-3", [2.0] * 60, 121),
    _depth("D-2", [3.0] * 60, 121),
]


def _batches_log(*, fresh_worker: bool) -> tuple[list[tuple], list[bool]]:
    carried = []
    for rows in BATCHES:
        ingest(rows)
        if fresh_worker:
            evaluation_service._kept.clear()
        carried.append(evaluate().carried)
    return _log(), carried


def test_a_worker_going_on_from_its_carry_and_a_fresh_one_say_the_same(late_world):
    kept, carried = _batches_log(fresh_worker=False)
    assert carried == [False, True, True, False, True, True]  # the backfill makes it read the context again
    assert {"raised", "escalated", "closure_requested", "sensor_fault", "sensor_restored"} <= {e[1] for e in kept}
    # the same batches again on a clean slate, every run as a fresh worker reading the context back
    readings_clear()
    AlertEvent.objects.all().delete()
    Alert.objects.all().delete()
    Series.objects.update(evaluated_until=None, backfills=0)
    Sensor.objects.update(status=Sensor.Status.ACTIVE, fault="")
    evaluation_service._kept.clear()
    fresh, carried = _batches_log(fresh_worker=True)
    assert not any(carried)
    assert fresh == kept
