"""Each rule through the agent on real PostGIS: readings ingested, the live evaluation run, alerts, events,
notifications, work orders and city events checked in the database. Series are built for the purpose (the
real samples never reach rainstorm levels)."""
from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest

from agents.flood.domain import AlertTracker, readings_replay
from agents.flood.models import Alert, AlertEvent, Reading, Sensor, TrackerState
from agents.flood.selectors import evaluation_setup, readings_window
from city_ops.city.models import CityEvent
from city_ops.core.roles import Role
from city_ops.core.services import user_create
from city_ops.notifications.models import Notification, Subscription
from city_ops.workorders.models import WorkOrder

from .conftest import T0, evaluate, ingest, series_rows

pytestmark = pytest.mark.django_db

STORM = [0.0] * 4 + [6.2, 8.4, 9.6, 11.0, 10.2, 9.4, 8.8, 9.9, 10.6, 8.1, 7.6, 8.4] + [0.2, 0.4] * 20
FLOOD = [0.0] * 6 + [8.0, 18.0, 27.0, 31.0, 36.0, 42.0, 38.0, 30.0, 26.0, 22.0, 19.0, 15.0, 10.0] + [4.0, 3.0] * 18


def _events(zone: str, hazard: str) -> list[tuple[str, str]]:
    from agents.flood.domain.vocabulary import Level

    return [(e.kind, Level(e.level).label) for e in AlertEvent.objects.filter(zone__code=zone, hazard=hazard)
            .order_by("time", "id")]


@pytest.fixture
def dispatchers_subscribed(db):
    d = user_create(username="duty", password="x-pass-123", roles=[Role.DISPATCHER])
    Subscription.objects.create(role=Role.DISPATCHER.value, topic="flood", min_level=1, channels=["console"])
    return d


def test_rainfall_rule_raises_orange_then_red_and_steps_down_with_hysteresis(world, dispatchers_subscribed):
    rows = series_rows("R-1", "rainfall", STORM)
    ingest(rows[:10])  # two runs: the zone's level as each run leaves it is published
    first = evaluate()
    ingest(rows[10:])
    out = evaluate()
    assert _events("LOW", "rainstorm")[:2] == [("raised", "orange"), ("escalated", "red")]
    red = AlertEvent.objects.get(zone__code="LOW", kind="escalated")
    assert red.rule == "rain_3h>=100mm" and len(red.evidence) >= 11
    assert all(key.startswith("R-1:rainfall:") for key in red.evidence)  # which readings
    steps = list(AlertEvent.objects.filter(zone__code="LOW", kind__in=["de-escalated", "cleared"]).order_by("time"))
    assert steps and all(b.time - a.time >= dt.timedelta(minutes=30) for a, b in itertools.pairwise(steps))
    alert = Alert.objects.get(zone__code="LOW", hazard="rainstorm")
    assert alert.max_level == 4 and first.counts["raised"] == 1 and out.counts["escalated"] == 1
    # yellow and above reach the subscribed dispatchers, who must acknowledge (escalation otherwise)
    notes = Notification.objects.filter(recipient=dispatchers_subscribed, source_ref=f"flood-alert:{alert.pk}")
    assert {n.level for n in notes} >= {3, 4} and all(n.requires_ack for n in notes if n.level >= 2)
    levels = [e.payload["level"] for e in CityEvent.objects.filter(kind="zone.level_changed").order_by("id")]
    assert levels == ["orange", "blue"]  # where each run left the zone (red came and went in the second)
    assert CityEvent.objects.filter(kind="zone.level_changed").last().payload["zone_code"] == "LOW"


def test_level_rule_forecast_comes_before_the_crossing_and_counts_lead_time(world):
    ingest(series_rows("L-1", "level", [3.0 + 0.1 * i for i in range(36)]))
    evaluate()
    assert _events("RIV", "river_flood")[:3] == [("raised", "blue"), ("escalated", "yellow"), ("escalated", "orange")]
    alert = Alert.objects.get(zone__code="RIV")
    assert alert.forecast and alert.rule in ("level>=orange", "level>=guaranteed")
    raised = AlertEvent.objects.get(alert=alert, kind="raised")
    assert raised.rule == "rise_forecast" and raised.detail["forecast"] is True
    assert alert.lead_time_min == pytest.approx(120, abs=15)  # blue about 2 h before the 5 m crossing


def test_depth_rule_closes_and_reopens_only_after_a_dispatcher_confirms(world, users):
    ingest(series_rows("D-1", "depth", FLOOD, minutes=5))
    evaluate()
    alert = Alert.objects.get(zone__code="UND", hazard="waterlogging")
    kinds = [k for k, _ in _events("UND", "waterlogging")]
    assert kinds[:4] == ["raised", "escalated", "closure_requested", "escalated"]
    assert "closure_lift_proposed" in kinds and "cleared" not in kinds  # still closed: nobody confirmed
    assert alert.status == "open" and alert.closure_state == "lift_proposed"
    closure = alert.closure
    assert closure is not None and closure.valid_to is None and closure.source_ref == f"flood-alert:{alert.pk}"
    pump = WorkOrder.objects.get(source_agent="flood", source_ref=f"flood-alert:{alert.pk}:pump")
    assert pump.title.startswith("Deploy pump to underpass Test underpass") and pump.priority == WorkOrder.Priority.HIGH  # closed at yellow

    from agents.flood.services import closure_lift_confirm

    closure_lift_confirm(alert=alert, user=users.dispatcher)
    alert.refresh_from_db()
    closure.refresh_from_db()
    assert alert.closure_state == "lifted" and closure.valid_to is not None
    lifted = AlertEvent.objects.get(alert=alert, kind="closure_lifted")
    assert lifted.actor == users.dispatcher
    # the next readings (still dry) let the tracker clear the alert once the hold time has passed
    ingest(series_rows("D-1", "depth", [2.0, 1.0] * 8, minutes=5, start=T0 + dt.timedelta(minutes=5 * len(FLOOD))))
    evaluate()
    alert.refresh_from_db()
    assert alert.status == "cleared"
    assert json.loads(json.dumps(TrackerState.objects.get().state))["keys"]


def test_wobbling_depth_does_not_chatter(world):
    """Values around the caution depth: one alert, raised once, not raise-clear-raise."""
    values = [0.0] * 4 + [16.0, 14.5, 15.5, 14.0, 16.5, 14.8, 15.2, 14.1] * 4 + [0.0] * 16
    ingest(series_rows("D-1", "depth", values, minutes=5))
    evaluate()
    kinds = [k for k, _ in _events("UND", "waterlogging")]
    assert kinds.count("raised") == 1 and kinds[-1] == "cleared" and kinds.count("cleared") == 1


def test_spike_is_flagged_and_raises_no_alert(world):
    values = [3.0 + 0.01 * i for i in range(60)]
    values[30] = 1000.0
    ingest(series_rows("L-1", "level", values))
    evaluate()
    assert not Alert.objects.exists()
    flagged = list(Reading.objects.filter(qc=Reading.QC.SPIKE).values_list("value", flat=True))
    assert flagged == [1000.0]


def test_stuck_sensor_gives_a_fault_notice_not_an_alert(world, dispatchers_subscribed):
    ingest(series_rows("R-1", "rainfall", [0.0] * 8 + [12.7] * 12))  # a logger repeating its last packet
    evaluate()
    assert not Alert.objects.exists()
    [fault] = AlertEvent.objects.filter(kind="sensor_fault")
    assert fault.sensor_code == "R-1" and fault.detail["fault"] == "stuck" and fault.alert is None
    sensor = Sensor.objects.get(code="R-1")
    assert sensor.status == Sensor.Status.FAULT and sensor.fault.startswith("stuck")
    note = Notification.objects.get(recipient=dispatchers_subscribed, source_ref=f"flood-sensor:{sensor.pk}")
    assert "Sensor fault" in note.subject and not note.requires_ack
    assert WorkOrder.objects.filter(source_agent="flood", title__startswith="Inspect sensor R-1").exists()


def test_runs_one_after_another_say_what_one_replay_says(world):
    """Ingest in slices with an evaluation after each (as the live agent does): the stored events equal one
    replay of all the readings through the core."""
    rows = (series_rows("R-1", "rainfall", STORM) + series_rows("L-1", "level", [3.0 + 0.1 * i for i in range(36)])
            + series_rows("D-1", "depth", FLOOD, minutes=5))
    for cut in (dt.timedelta(hours=1, minutes=10), dt.timedelta(hours=2, minutes=50), dt.timedelta(hours=4),
                dt.timedelta(hours=6), dt.timedelta(days=1)):
        ingest([r for r in rows if r[2] <= T0 + cut])
        evaluate()
    stored = [(e.seq, e.kind, e.zone.code, e.hazard, e.time) for e in AlertEvent.objects.order_by("seq")]
    setup = evaluation_setup()
    whole = readings_replay(readings=readings_window(setup=setup, start=None), sensors=setup.configs,
                            tracker=AlertTracker())
    assert stored == [(e.seq, e.kind, e.zone, e.hazard, e.time) for e in whole.events]
    assert len(stored) > 10


def test_dispatcher_acknowledges_and_escalates_by_hand(world, users):
    from agents.flood.services import alert_acknowledge, alert_escalate

    ingest(series_rows("R-1", "rainfall", STORM[:10]))
    evaluate()
    alert = Alert.objects.get(zone__code="LOW")
    assert alert.level_label == "orange" and alert.acknowledged_at is None
    alert_acknowledge(alert=alert, user=users.dispatcher)
    alert.refresh_from_db()
    assert alert.acknowledged_by == users.dispatcher
    state = TrackerState.objects.get().state
    [key] = [k for k in state["keys"] if k["zone"] == "LOW"]
    assert key["alert"]["acknowledged_by"] == users.dispatcher.username  # the next run knows
    alert_escalate(alert=alert, user=users.dispatcher, note="roads filling up")
    alert.refresh_from_db()
    assert alert.level_label == "red" and alert.manual_level == 4 and alert.acknowledged_at is None
    assert world.zones["LOW"].__class__.objects.get(code="LOW").level == 4
    event = AlertEvent.objects.filter(alert=alert, kind="escalated").latest("id")
    assert event.actor == users.dispatcher and event.rule == "dispatcher_escalation"
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        alert_escalate(alert=alert, user=users.dispatcher)  # already red


def test_evaluation_without_new_readings_does_nothing(world):
    ingest(series_rows("L-1", "level", [3.0] * 4))
    first = evaluate()
    assert not first.nothing_new and first.readings_new == 4
    assert evaluate().nothing_new
