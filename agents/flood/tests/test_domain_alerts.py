"""The alert state machine on rule results built for the purpose: escalation, hysteresis, acknowledgement,
several sensors per key, closures, faults, persistence."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from agents.flood.domain.alerts import AlertStateError, AlertTracker, TrackerSettings
from agents.flood.domain.qc import SensorFault
from agents.flood.domain.rules import RuleResult
from agents.flood.domain.vocabulary import Level

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


def _at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _result(
    minutes: float,
    level: Level,
    hold: Level | None = None,
    *,
    sensor: str = "WL-1",
    hazard: str = "river_flood",
    **extra: object,
) -> RuleResult:
    return RuleResult(
        hazard=hazard,
        sensor=sensor,
        rule=f"rule_{level.label}",
        level=level,
        hold_level=hold if hold is not None else level,
        time=_at(minutes),
        evidence=(f"{sensor}@{minutes}",),
        **extra,
    )


def _kinds(tracker: AlertTracker) -> list[tuple[str, str]]:
    return [(e.kind, e.level.label) for e in tracker.events]


def test_raise_and_escalate_immediately_with_evidence():
    tracker = AlertTracker()
    tracker.observe(zone="Z1", result=_result(0, Level.NONE))
    raised = tracker.observe(zone="Z1", result=_result(15, Level.YELLOW))
    escalated = tracker.observe(zone="Z1", result=_result(30, Level.RED))
    assert [e.kind for e in raised] == ["raised"] and [e.kind for e in escalated] == ["escalated"]
    assert escalated[0].previous_level == Level.YELLOW and escalated[0].level == Level.RED
    assert (
        raised[0].time == _at(15) and raised[0].evidence == ("WL-1@15",) and raised[0].rule == "rule_yellow"
    )
    assert escalated[0].alert_id == raised[0].alert_id
    assert [e.seq for e in tracker.events] == [1, 2]


def test_oscillating_value_does_not_chatter_and_clears_after_the_hold_time():
    """A level wobbling around the warning level within the margin: one alert, no raise-clear-raise."""
    tracker = AlertTracker()
    for i in range(40):
        above = i % 2 == 0
        # just below the threshold the rule still holds yellow (margin), so only one `raised`
        tracker.observe(
            zone="Z1", result=_result(i * 15, Level.YELLOW if above else Level.NONE, Level.YELLOW)
        )
    assert _kinds(tracker) == [("raised", "yellow")]
    # clearly below (outside the margin): cleared only after 30 min of reading time
    start = 40 * 15
    for i in range(2):
        tracker.observe(zone="Z1", result=_result(start + i * 15, Level.NONE))
    assert _kinds(tracker) == [("raised", "yellow")]
    tracker.observe(zone="Z1", result=_result(start + 30, Level.NONE))
    assert _kinds(tracker) == [("raised", "yellow"), ("cleared", "none")]
    assert tracker.events[-1].detail["below_for_minutes"] == 30.0
    assert tracker.open_alerts() == []


def test_brief_dip_below_the_margin_resets_the_hold():
    tracker = AlertTracker()
    tracker.observe(zone="Z1", result=_result(0, Level.ORANGE))
    tracker.observe(zone="Z1", result=_result(15, Level.NONE))
    tracker.observe(zone="Z1", result=_result(30, Level.ORANGE))  # back up before 30 min: hold resets
    tracker.observe(zone="Z1", result=_result(45, Level.NONE))
    tracker.observe(zone="Z1", result=_result(60, Level.NONE))
    assert _kinds(tracker) == [("raised", "orange")]
    tracker.observe(zone="Z1", result=_result(75, Level.NONE))
    assert _kinds(tracker)[-1] == ("cleared", "none")


def test_de_escalation_steps_to_the_highest_level_seen_during_the_hold():
    tracker = AlertTracker(settings=TrackerSettings(hold=dt.timedelta(minutes=30)))
    tracker.observe(zone="Z1", result=_result(0, Level.RED))
    tracker.observe(zone="Z1", result=_result(15, Level.BLUE))
    tracker.observe(zone="Z1", result=_result(30, Level.YELLOW))
    tracker.observe(zone="Z1", result=_result(45, Level.BLUE))
    assert _kinds(tracker) == [("raised", "red"), ("de-escalated", "yellow")]


def test_acknowledgement_records_the_actor_and_resets_on_escalation():
    tracker = AlertTracker()
    with pytest.raises(AlertStateError, match="no open"):
        tracker.acknowledge(zone="Z1", hazard="river_flood", actor="li.wei", time=_at(0))
    tracker.observe(zone="Z1", result=_result(0, Level.YELLOW))
    events = tracker.acknowledge(zone="Z1", hazard="river_flood", actor="li.wei", time=_at(5))
    assert events[0].kind == "acknowledged" and events[0].actor == "li.wei" and events[0].time == _at(5)
    assert tracker.alert_get(zone="Z1", hazard="river_flood").acknowledged_by == "li.wei"
    tracker.observe(zone="Z1", result=_result(15, Level.ORANGE))
    assert tracker.alert_get(zone="Z1", hazard="river_flood").acknowledged_by is None


def test_several_sensors_the_highest_fresh_result_decides():
    tracker = AlertTracker()
    tracker.observe(zone="Z1", result=_result(0, Level.RED, sensor="RG-A", hazard="rainstorm"))
    # a dry gauge in the same district must not stand the red signal down
    for minutes in range(15, 120, 15):
        tracker.observe(zone="Z1", result=_result(minutes, Level.NONE, sensor="RG-B", hazard="rainstorm"))
        tracker.observe(zone="Z1", result=_result(minutes, Level.RED, sensor="RG-A", hazard="rainstorm"))
    assert _kinds(tracker) == [("raised", "red")]
    assert tracker.events[0].sensor == "RG-A"


def test_missing_data_never_clears_an_alert_but_stale_results_stop_counting():
    tracker = AlertTracker(settings=TrackerSettings(stale_after=dt.timedelta(hours=2)))
    tracker.observe(zone="Z1", result=_result(0, Level.RED, sensor="RG-A", hazard="rainstorm"))
    # RG-A falls silent; RG-B keeps reporting nothing. After 2 h RG-A's red no longer counts.
    for minutes in range(15, 300, 15):
        tracker.observe(zone="Z1", result=_result(minutes, Level.NONE, sensor="RG-B", hazard="rainstorm"))
    kinds = _kinds(tracker)
    assert kinds[0] == ("raised", "red") and kinds[-1] == ("cleared", "none")
    cleared = tracker.events[-1]
    # counts up to 2 h old (the 2:00 result still does), below from 2:15, cleared 30 min later
    assert cleared.time == _at(135 + 30)
    # with no other sensor, the alert just holds
    lonely = AlertTracker()
    lonely.observe(zone="Z1", result=_result(0, Level.RED))
    assert lonely.observe(zone="Z1", result=_result(600, Level.RED, Level.RED, sensor="WL-1")) == []


def test_waterlogging_closure_lifecycle():
    tracker = AlertTracker()
    z = {"zone": "Road-7"}

    def obs(minutes, level, closure=False, lift=False, hold=None):
        return tracker.observe(
            result=_result(
                minutes,
                level,
                hold,
                sensor="D-1",
                hazard="waterlogging",
                closure_needed=closure,
                lift_ready=lift,
                detail={"depth_cm": 30.0, "clear_minutes": 30.0 if lift else 0.0},
            ),
            **z,
        )

    obs(0, Level.BLUE)
    obs(5, Level.YELLOW, closure=True)
    assert _kinds(tracker) == [("raised", "blue"), ("escalated", "yellow"), ("closure_requested", "yellow")]
    with pytest.raises(AlertStateError, match="no closure lift proposed"):
        tracker.closure_lift_confirm(zone="Road-7", actor="dispatcher", time=_at(6))
    obs(10, Level.NONE)
    obs(40, Level.NONE, lift=True)
    assert tracker.events[-1].kind == "closure_lift_proposed"
    obs(45, Level.BLUE)  # water back above closure - margin: proposal withdrawn
    assert tracker.events[-1].kind == "closure_lift_withdrawn"
    obs(50, Level.NONE)
    obs(80, Level.NONE, lift=True)
    assert tracker.events[-1].kind == "closure_lift_proposed"
    # the alert is not cleared while the road is closed, even though the level is long gone
    obs(90, Level.NONE, lift=True)
    assert tracker.alert_get(zone="Road-7", hazard="waterlogging") is not None
    lifted = tracker.closure_lift_confirm(zone="Road-7", actor="wang.fang", time=_at(92))
    assert lifted[0].kind == "closure_lifted" and lifted[0].actor == "wang.fang"
    obs(95, Level.NONE, lift=True)
    assert tracker.events[-1].kind == "cleared"


def test_a_result_with_its_own_validity_counts_that_long_also_after_a_state_dump():
    tracker = AlertTracker(settings=TrackerSettings(stale_after=dt.timedelta(hours=2)))
    # a daily mean (dated 00:00 of its day) arriving 30 h later, behind an instantaneous gauge of the key
    tracker.observe(zone="Z1", result=_result(30 * 60, Level.NONE, sensor="WL-1"))
    daily = _result(0, Level.YELLOW, sensor="WL-1/00003", valid_for=dt.timedelta(days=2))
    assert [e.kind for e in tracker.observe(zone="Z1", result=daily)] == ["raised"]
    # stored and resumed, it still counts beside the calm gauge until two days after its time
    resumed = AlertTracker.state_load(json.loads(json.dumps(tracker.state_dump())))
    for hours in (36, 47):
        assert resumed.observe(zone="Z1", result=_result(hours * 60, Level.NONE, sensor="WL-1")) == []
    # past its validity it no longer counts: the calm gauge alone clears the alert after the hold
    for minutes in range(48 * 60 + 15, 49 * 60, 15):
        resumed.observe(zone="Z1", result=_result(minutes, Level.NONE, sensor="WL-1"))
    assert resumed.events[-1].kind == "cleared"
    # without a validity of its own, the same late result is stale at once and decides nothing
    plain = AlertTracker(settings=TrackerSettings(stale_after=dt.timedelta(hours=2)))
    plain.observe(zone="Z1", result=_result(30 * 60, Level.NONE, sensor="WL-1"))
    assert plain.observe(zone="Z1", result=_result(0, Level.YELLOW, sensor="WL-1/00003")) == []


def test_sensor_fault_is_emitted_once_and_removes_the_sensor_result():
    tracker = AlertTracker()
    tracker.observe(zone="Z1", result=_result(0, Level.YELLOW, sensor="WL-1"))
    fault = SensorFault(kind="stuck", since=_at(0), at=_at(60), reason="unchanged")
    first = tracker.sensor_fault(zone="Z1", hazard="river_flood", sensor="WL-1", fault=fault)
    again = tracker.sensor_fault(zone="Z1", hazard="river_flood", sensor="WL-1", fault=fault)
    assert [e.kind for e in first] == ["sensor_fault"] and again == []
    assert first[0].detail["fault"] == "stuck" and first[0].sensor == "WL-1"
    assert tracker.faults() == {("Z1", "river_flood", "WL-1"): "stuck"}
    restored = tracker.sensor_restored(zone="Z1", hazard="river_flood", sensor="WL-1", time=_at(90))
    assert [e.kind for e in restored] == ["sensor_restored"]


def test_state_dump_and_load_continue_the_same_event_log():
    def feed(tracker, start, stop):
        for i in range(start, stop):
            level = [Level.NONE, Level.YELLOW, Level.ORANGE, Level.ORANGE, Level.BLUE, Level.NONE][
                min(i // 4, 5)
            ]
            tracker.observe(zone="Z1", result=_result(i * 15, level))
            if i == 6:
                tracker.acknowledge(zone="Z1", hazard="river_flood", actor="li.wei", time=_at(i * 15 + 1))

    whole = AlertTracker()
    feed(whole, 0, 30)
    first = AlertTracker()
    feed(first, 0, 9)
    state = json.loads(json.dumps(first.state_dump()))  # through JSON, as a task would store it
    resumed = AlertTracker.state_load(state)
    feed(resumed, 9, 30)
    assert [e.as_dict() for e in first.events + resumed.events] == [e.as_dict() for e in whole.events]
    assert [e.kind for e in whole.events] == [
        "raised",
        "acknowledged",
        "escalated",
        "de-escalated",
        "cleared",
    ]


def test_results_older_than_the_key_time_are_ignored():
    tracker = AlertTracker()
    tracker.observe(zone="Z1", result=_result(30, Level.YELLOW))
    assert tracker.observe(zone="Z1", result=_result(15, Level.RED)) == []
    assert _kinds(tracker) == [("raised", "yellow")]
