"""Readings to alert events end to end: spikes never alert, faults instead of alerts, closures, replay
determinism, and the lead time of forecast alerts before threshold crossings (a KPI)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random

import pytest

from agents.flood.domain.alerts import AlertTracker
from agents.flood.domain.parsers import readings_parse
from agents.flood.domain.replay import InputEvent, SensorConfig, readings_replay
from agents.flood.domain.rules import GaugeSettings
from agents.flood.domain.vocabulary import Level, Reading

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
GAUGE = GaugeSettings(warning=5.0, guaranteed=7.0)


def _readings(
    sensor: str, parameter: str, values: list[float], minutes: int = 15, start: dt.datetime = T0
) -> list[Reading]:
    return [
        Reading(
            sensor=sensor,
            parameter=parameter,
            time=start + dt.timedelta(minutes=minutes * i),
            value=v,
            unit="",
            row=i + 1,
        )
        for i, v in enumerate(values)
    ]


def _kinds(result) -> list[tuple[str, str]]:
    return [(e.kind, e.level.label) for e in result.events]


def test_spike_inside_a_normal_series_raises_no_alert():
    values = [3.0 + 0.01 * i for i in range(60)]
    values[30] = 1000.0
    result = readings_replay(
        readings=_readings("WL-1", "level", values),
        sensors=[SensorConfig(sensor="WL-1", parameter="level", zone="Z1", gauge=GAUGE)],
    )
    assert result.events == []
    assert [(q.value, q.kind) for q in result.qc] == [(1000.0, "spike")]


@pytest.mark.shared
def test_real_spike_does_not_alert_though_1000_m_is_far_above_every_threshold(shared_dir):
    folder = shared_dir / "benchmarks/flood/timeseries"
    gauge = GaugeSettings(warning=3.0, guaranteed=4.0)  # the series itself peaks at 1.35 m
    config = SensorConfig(sensor="E9140", parameter="level", zone="Adur", gauge=gauge)
    for name in (
        "ea_beeding_bridge_level_15min_2020-10.json",
        "ea_beeding_bridge_level_15min_2020-10_with_spike.json",
    ):
        readings = readings_parse(data=(folder / name).read_bytes(), sensor="E9140").readings
        result = readings_replay(readings=readings, sensors=[config])
        assert result.events == [], name
    assert [(q.time.isoformat(), q.value) for q in result.qc] == [("2020-10-13T16:00:00+00:00", 1000.0)]


@pytest.mark.shared
def test_lead_time_of_forecast_alerts_on_the_real_tidal_series(shared_dir):
    """With a warning level of 1.0 m the real Beeding Bridge tides cross it three times; every crossing is
    preceded by a blue alert raised from the rate-of-rise forecast."""
    path = shared_dir / "benchmarks/flood/timeseries/ea_beeding_bridge_level_15min_2020-10.json"
    readings = readings_parse(data=path.read_bytes(), sensor="E9140").readings
    config = SensorConfig(
        sensor="E9140", parameter="level", zone="Adur", gauge=GaugeSettings(warning=1.0, guaranteed=2.5)
    )
    result = readings_replay(readings=readings, sensors=[config])
    ordered = sorted(readings, key=lambda r: r.time)
    crossings = [b.time for a, b in itertools.pairwise(ordered) if a.value < 1.0 <= b.value]
    assert len(result.lead_times) == len(crossings) == 3
    assert [lt.crossed_at for lt in result.lead_times] == crossings
    assert all(lt.by_forecast and 60 <= lt.minutes <= 150 for lt in result.lead_times)


def test_lead_time_kpi_on_a_steady_rise():
    # 3.0 m rising 0.4 m/h: the warning (5.0 m) is crossed at 5 h; blue should come about 2 h before
    values = [3.0 + 0.1 * i for i in range(36)]
    result = readings_replay(
        readings=_readings("WL-1", "level", values),
        sensors=[SensorConfig(sensor="WL-1", parameter="level", zone="Z1", gauge=GAUGE)],
    )
    assert _kinds(result)[:3] == [("raised", "blue"), ("escalated", "yellow"), ("escalated", "orange")]
    raised = result.events[0]
    assert raised.rule == "rise_forecast" and raised.detail["forecast"] is True
    [lead] = result.lead_times
    assert lead.crossed_at == T0 + dt.timedelta(hours=5)
    assert lead.by_forecast and lead.minutes == pytest.approx(120, abs=15)


def test_stuck_rain_logger_gives_a_fault_notice_not_a_rainstorm_alert():
    values = [0.0] * 8 + [12.7] * 12  # a logger repeating its last packet: 50.8 mm/h if believed
    result = readings_replay(
        readings=_readings("RG-1", "rainfall", values),
        sensors=[SensorConfig(sensor="RG-1", parameter="rainfall", zone="Z1")],
    )
    assert _kinds(result) == [("sensor_fault", "none")]
    fault = result.events[0]
    assert fault.sensor == "RG-1" and fault.detail["fault"] == "stuck"
    assert fault.time == T0 + dt.timedelta(minutes=15 * 11)  # the fourth identical reading


def test_frozen_level_gauge_while_its_neighbour_rises_is_a_fault():
    rising = [3.0 + 0.05 * i for i in range(40)]
    frozen = [3.0 + 0.01 * i for i in range(10)] + [3.09] * 30
    sensors = [
        SensorConfig(
            sensor="WL-UP", parameter="level", zone="Z-up", gauge=GaugeSettings(warning=9.0, guaranteed=10.0)
        ),
        SensorConfig(sensor="WL-1", parameter="level", zone="Z1", gauge=GAUGE, neighbours=("WL-UP",)),
    ]
    result = readings_replay(
        readings=_readings("WL-UP", "level", rising) + _readings("WL-1", "level", frozen), sensors=sensors
    )
    assert [(e.kind, e.sensor) for e in result.events] == [("sensor_fault", "WL-1")]
    assert "neighbours" in result.events[0].detail["reason"]


def test_silent_sensor_is_reported_at_the_time_of_the_latest_reading():
    sensors = [
        SensorConfig(sensor="D-1", parameter="depth", zone="Road-1"),
        SensorConfig(sensor="D-2", parameter="depth", zone="Road-2"),
    ]
    readings = _readings("D-1", "depth", [0.0] * 6, minutes=5) + _readings(
        "D-2", "depth", [0.0] * 20, minutes=5
    )
    result = readings_replay(readings=readings, sensors=sensors)
    assert [(e.kind, e.sensor) for e in result.events] == [("sensor_fault", "D-1")]
    event = result.events[0]
    # D-1's last reading is at 0:25; 3 x 5 min later (past 0:40) the next reading of D-2 (0:45) reveals it
    assert event.time == T0 + dt.timedelta(minutes=45)
    assert event.detail["since"] == (T0 + dt.timedelta(minutes=25)).isoformat()
    assert result.evaluated_at == T0 + dt.timedelta(minutes=95)
    # D-1 reporting again restores it
    more = readings + _readings("D-1", "depth", [0.0], start=T0 + dt.timedelta(minutes=100))
    again = readings_replay(readings=more, sensors=sensors)
    assert [e.kind for e in again.events] == ["sensor_fault", "sensor_restored"]


def _storm_scenario() -> tuple[list[Reading], list[SensorConfig]]:
    # 108.2 mm in 3 h (no two 15-min totals alike, as real gauges report), then drizzle
    rain = [0.0] * 4 + [6.2, 8.4, 9.6, 11.0, 10.2, 9.4, 8.8, 9.9, 10.6, 8.1, 7.6, 8.4] + [0.2, 0.4] * 20
    level = [3.0 + 0.08 * i for i in range(28)] + [5.2 - 0.1 * i for i in range(28)]
    depth = (
        [0.0] * 6
        + [8.0, 18.0, 27.0, 31.0, 36.0, 42.0, 38.0, 30.0, 26.0, 22.0]
        + [19.0, 15.0, 10.0]
        + [4.0] * 37
    )
    depth_readings = _readings("D-7", "depth", depth, minutes=5, start=T0 + dt.timedelta(hours=2))
    readings = _readings("RG-1", "rainfall", rain) + _readings("WL-1", "level", level) + depth_readings
    sensors = [
        SensorConfig(sensor="RG-1", parameter="rainfall", zone="District-3"),
        SensorConfig(sensor="WL-1", parameter="level", zone="River-A", gauge=GAUGE),
        SensorConfig(sensor="D-7", parameter="depth", zone="Underpass-7"),
    ]
    return readings, sensors


def test_replay_is_deterministic_in_any_input_order():
    readings, sensors = _storm_scenario()
    inputs = [
        InputEvent(
            time=T0 + dt.timedelta(hours=3, minutes=2),
            kind="acknowledge",
            zone="District-3",
            hazard="rainstorm",
            actor="li.wei",
        )
    ]
    first = readings_replay(
        readings=readings, sensors=sensors, inputs=inputs, auto_confirm_after=dt.timedelta(minutes=10)
    )
    second = readings_replay(
        readings=readings, sensors=sensors, inputs=inputs, auto_confirm_after=dt.timedelta(minutes=10)
    )
    shuffled = list(readings)
    random.Random(7).shuffle(shuffled)
    third = readings_replay(
        readings=shuffled,
        sensors=list(reversed(sensors)),
        inputs=inputs,
        auto_confirm_after=dt.timedelta(minutes=10),
    )
    assert first.event_log() == second.event_log() == third.event_log()
    kinds = {e["kind"] for e in first.event_log()}
    assert {
        "raised",
        "escalated",
        "acknowledged",
        "closure_requested",
        "closure_lift_proposed",
        "closure_lifted",
        "cleared",
    } <= kinds
    # every event carries a reading time from the data (or the input's own time), never the clock
    data_times = {r.time for r in readings} | {i.time for i in inputs}
    auto_times = {e.time for e in first.events if e.actor == "replay:auto-confirm"}
    assert {e.time for e in first.events} <= data_times | auto_times


def test_rainstorm_escalates_to_red_and_steps_down_with_hysteresis():
    readings, sensors = _storm_scenario()
    result = readings_replay(readings=readings, sensors=sensors[:1])
    # so much rain so fast that 50 mm in 3 h is the first signal reached, then 100 mm in 3 h
    assert _kinds(result)[:2] == [("raised", "orange"), ("escalated", "red")]
    red = next(e for e in result.events if e.level == Level.RED)
    assert red.rule == "rain_3h>=100mm" and len(red.evidence) >= 11
    steps = [e for e in result.events if e.kind in ("de-escalated", "cleared")]
    assert steps and all(b.time - a.time >= dt.timedelta(minutes=30) for a, b in itertools.pairwise(steps))


def test_waterlogging_closure_is_lifted_only_after_confirmation():
    readings, sensors = _storm_scenario()
    depth_only = [r for r in readings if r.sensor == "D-7"]
    unconfirmed = readings_replay(readings=depth_only, sensors=sensors[2:])
    kinds = [e.kind for e in unconfirmed.events]
    assert "closure_requested" in kinds and "closure_lift_proposed" in kinds
    assert "closure_lifted" not in kinds and "cleared" not in kinds  # the road stays closed, the alert open
    requested = next(e for e in unconfirmed.events if e.kind == "closure_requested")
    assert requested.time == T0 + dt.timedelta(hours=2, minutes=45)  # the second reading >= 25 cm
    proposed = next(e for e in unconfirmed.events if e.kind == "closure_lift_proposed")
    below = T0 + dt.timedelta(hours=2, minutes=80)  # first reading below 25 - 5 cm (19 cm)
    assert proposed.time == below + dt.timedelta(minutes=30)

    confirm = InputEvent(
        time=proposed.time + dt.timedelta(minutes=7),
        kind="closure_lift_confirm",
        zone="Underpass-7",
        actor="wang.fang",
    )
    confirmed = readings_replay(readings=depth_only, sensors=sensors[2:], inputs=[confirm])
    lifted = next(e for e in confirmed.events if e.kind == "closure_lifted")
    assert lifted.actor == "wang.fang" and lifted.time == confirm.time
    assert confirmed.events[-1].kind == "cleared"
    # a confirmation nobody asked for is reported, not applied
    early = InputEvent(time=T0, kind="closure_lift_confirm", zone="Underpass-7", actor="x")
    assert readings_replay(readings=depth_only, sensors=sensors[2:], inputs=[early]).input_errors


def test_runs_one_after_another_emit_exactly_the_events_of_one_replay():
    """The live agent runs every few minutes on the latest readings with the tracker state of the run
    before; together the runs must say exactly what one replay over all the readings says."""
    readings, sensors = _storm_scenario()
    inputs = [
        InputEvent(
            time=T0 + dt.timedelta(hours=3, minutes=2),
            kind="acknowledge",
            zone="District-3",
            hazard="rainstorm",
            actor="li.wei",
        ),
        InputEvent(
            time=T0 + dt.timedelta(hours=4, minutes=1),
            kind="closure_lift_confirm",
            zone="Underpass-7",
            actor="wang.fang",
        ),
    ]
    whole = readings_replay(readings=readings, sensors=sensors, inputs=inputs)
    assert {"closure_lifted", "acknowledged", "sensor_fault"} <= {e.kind for e in whole.events}

    events, state, since = [], None, None
    for cut in (
        dt.timedelta(hours=2, minutes=50),
        dt.timedelta(hours=3, minutes=52),
        dt.timedelta(hours=6),
        dt.timedelta(hours=7, minutes=3),
        dt.timedelta(days=1),
    ):
        upto = [r for r in readings if r.time <= T0 + cut]
        tracker = AlertTracker.state_load(json.loads(json.dumps(state))) if state else None
        run = readings_replay(readings=upto, sensors=sensors, inputs=inputs, tracker=tracker, since=since)
        events += run.event_log()
        state, since = run.tracker.state_dump(), run.evaluated_at
    assert events == whole.event_log()
