"""The live agent's fast paths give the same answers as the plain ones: readings given as arrays
(SeriesReadings) instead of Reading objects, the context before `since` settled in bulk (silent, stuck and
pending sensors across the boundary), and the vectorised calm stretches of the spike test."""

from __future__ import annotations

import datetime as dt
import json
import random

import numpy as np

from agents.flood.core import (
    AlertTracker,
    GaugeSettings,
    Reading,
    SensorConfig,
    SeriesReadings,
    qc_settings_default,
    readings_replay,
)
from agents.flood.core.qc import series_qc_run, times_ns

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


def _scenario(seed: int) -> tuple[list[Reading], list[SensorConfig]]:
    """Sensors that go silent, stick, spike and flood, with gaps, around several evaluation boundaries."""
    rng = random.Random(seed)
    configs = [
        SensorConfig(sensor="RG-1", parameter="rainfall", zone="Z1", neighbours=("RG-2",)),
        SensorConfig(sensor="RG-2", parameter="rainfall", zone="Z1", neighbours=("RG-1",)),
        SensorConfig(sensor="WL-1", parameter="level", zone="Z2", gauge=GaugeSettings(warning=4.0, guaranteed=6.0)),
        SensorConfig(sensor="D-1", parameter="depth", zone="Z3"),
        SensorConfig(sensor="Q-1", parameter="discharge", zone="Z2"),
    ]
    readings: list[Reading] = []
    for config in configs:
        t, value = T0, rng.uniform(0, 3)
        for i in range(160):
            t += dt.timedelta(minutes=15 * rng.choice([1, 1, 1, 1, 2, 8]))
            if config.parameter == "rainfall":
                v = rng.choice([0.0, 0.0, 0.2, 4.0, 12.7, 12.7, 30.0])
            elif config.parameter == "depth":
                value = max(0.0, value + rng.gauss(0, 5))
                v = round(value, 1) if rng.random() > 0.05 else 400.0
            else:
                value += rng.gauss(0.03, 0.2)
                v = round(value, 2) if rng.random() > 0.04 else 900.0
            readings.append(Reading(sensor=config.sensor, parameter=config.parameter, time=t, value=v, unit="",
                                    row=i + 1))
    return readings, configs


def _as_series(readings: list[Reading]) -> list[SeriesReadings]:
    by_sensor: dict[str, list[Reading]] = {}
    for r in readings:
        by_sensor.setdefault(r.sensor, []).append(r)
    return [SeriesReadings(sensor=s, parameter=rs[0].parameter, times_ns=times_ns([r.time for r in rs]),
                           values=np.array([r.value for r in rs])) for s, rs in by_sensor.items()]


def _runs(readings, configs, cuts, *, as_series: bool):
    """Live runs: each resumes the saved tracker with a day of context before the previous run."""
    log, qc, state, since = [], [], None, None
    for cut in cuts:
        part = [r for r in readings if r.time <= cut and (since is None or r.time > since - dt.timedelta(days=1))]
        tracker = AlertTracker.state_load(json.loads(json.dumps(state))) if state else None
        kwargs = {"series": _as_series(part)} if as_series else {"readings": part}
        result = readings_replay(sensors=configs, tracker=tracker, since=since,
                                 auto_confirm_after=dt.timedelta(minutes=20), **kwargs)
        log += result.event_log()
        qc += [(q.sensor, q.time, q.kind, q.key) for q in result.qc if since is None or q.time > since]
        state, since = result.tracker.state_dump(), result.evaluated_at
    return log, qc, state


def test_series_input_and_bulk_context_give_the_one_replay_log():
    for seed in (1, 2, 3):
        readings, configs = _scenario(seed)
        end = max(r.time for r in readings)
        whole = _runs(readings, configs, [end], as_series=False)
        kinds = {e["kind"] for e in whole[0]}
        assert {"raised", "sensor_fault", "sensor_restored"} <= kinds, kinds
        cuts = sorted(random.Random(seed).sample(sorted({r.time for r in readings}), 6)) + [end]
        for as_series in (False, True):
            log, _, state = _runs(readings, configs, cuts, as_series=as_series)
            assert log == whole[0], (seed, as_series)
            assert state == whole[2]


def test_series_input_cites_the_same_evidence_and_qc_as_readings():
    readings, configs = _scenario(4)
    plain = readings_replay(readings=readings, sensors=configs)
    arrays = readings_replay(series=_as_series(readings), sensors=configs)
    assert arrays.event_log() == plain.event_log()
    assert [(q.sensor, q.time, q.kind, q.reason, q.key) for q in arrays.qc] == \
        [(q.sensor, q.time, q.kind, q.reason, q.key) for q in plain.qc]
    assert any(e["evidence"] for e in plain.event_log())
    # a zone's copy of a sensor cites the real sensor in its evidence
    copy = SensorConfig(sensor="D-1@Z9", parameter="depth", zone="Z9")
    depth = next(s for s in _as_series(readings) if s.sensor == "D-1")
    twin = readings_replay(series=[SeriesReadings(sensor="D-1@Z9", parameter="depth", times_ns=depth.times_ns,
                                                  values=depth.values, key_sensor="D-1")], sensors=[copy])
    cited = [key for e in twin.event_log() for key in e["evidence"]]
    assert cited and all(key.startswith("D-1:depth:") for key in cited)


def test_vectorised_spike_test_matches_reading_by_reading():
    """Calm stretches are checked in one vectorised step; the flags must be those of the reading-by-reading
    test, which `series_qc_run` still runs wherever a reading departs."""
    rng = random.Random(9)
    for parameter in ("level", "depth", "discharge"):
        settings = qc_settings_default(parameter=parameter)
        for _ in range(40):
            n = rng.randint(5, 200)
            times, t = [], T0
            for _ in range(n):  # mostly every 5 min, sometimes late (an irregular series takes the slow path)
                t += dt.timedelta(minutes=5 + (7 if rng.random() < 0.1 else 0))
                times.append(t)
            values, v = [], 2.0
            for _ in range(n):
                v += rng.gauss(0, 0.05)
                values.append(v + (rng.choice([-1, 1]) * rng.uniform(1, 60) if rng.random() < 0.06 else 0.0))
            fast = series_qc_run(times=times, values=values, settings=settings)
            slow = [series_qc_run(times=times[: k + 1], values=values[: k + 1], settings=settings).flagged_now[k]
                    for k in range(n)]
            # a reading's flag on arrival depends only on the readings before it
            assert list(fast.flagged_now) == slow
