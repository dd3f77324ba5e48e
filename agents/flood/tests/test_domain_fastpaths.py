"""The live agent's fast paths give the same answers as the plain ones: readings given as arrays
(SeriesReadings) instead of Reading objects, the context before `since` settled in bulk (silent, stuck and
pending sensors across the boundary), and the vectorised calm stretches of the spike test."""

from __future__ import annotations

import datetime as dt
import json
import random

import numpy as np

from agents.flood.domain import (
    AlertTracker,
    GaugeSettings,
    Reading,
    SensorConfig,
    SeriesReadings,
    qc_settings_default,
    readings_replay,
)
from agents.flood.domain.qc import ns_datetime, series_qc_run, times_ns

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
        # The reference runs every prefix (n runs per series): 15 series of up to 12.5 h per parameter hold
        # spikes, late readings and calm stretches, in a fifth of the time that 40 of up to 200 readings took.
        for _ in range(15):
            n = rng.randint(5, 150)
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


def _carried_runs(readings, configs, cuts, *, as_series: bool):
    """Live runs that keep the previous run's carry: each is given only the readings after each sensor's
    last one. Returns the event log, the QC flags as the runs left them, and the tracker's state."""
    log, flags, state, since, carry = [], {}, None, None, None
    for cut in cuts:
        last = {s: ns_datetime(t) for s, t in carry.last_times().items()} if carry else {}
        part = [r for r in readings if r.time <= cut and (r.sensor not in last or r.time > last[r.sensor])]
        tracker = AlertTracker.state_load(json.loads(json.dumps(state))) if state else None
        kwargs = {"series": _as_series(part)} if as_series else {"readings": part}
        result = readings_replay(sensors=configs, tracker=tracker, since=since, carry=carry,
                                 auto_confirm_after=dt.timedelta(minutes=20), **kwargs)
        log += result.event_log()
        for sensor, start in result.qc_from.items():  # what the run says about its part replaces the old
            flags = {k: v for k, v in flags.items() if not (k[0] == sensor and k[1] >= start)}
        flags.update({(q.sensor, q.time): (q.kind, q.key) for q in result.qc})
        state, since, carry = result.tracker.state_dump(), result.evaluated_at, result.carry
    return log, flags, state


def test_runs_with_a_carry_give_the_one_replay_log_flags_and_state():
    for seed in (1, 2, 3, 5):
        readings, configs = _scenario(seed)
        end = max(r.time for r in readings)
        whole = readings_replay(readings=readings, sensors=configs, auto_confirm_after=dt.timedelta(minutes=20))
        flags = {(q.sensor, q.time): (q.kind, q.key) for q in whole.qc}
        assert flags and any(kind == "spike" for kind, _ in flags.values())
        times = sorted({r.time for r in readings})
        cuts = sorted(random.Random(seed).sample(times, 40)) + [end]  # runs close together, as the live loop's
        for as_series in (False, True):
            log, carried_flags, state = _carried_runs(readings, configs, cuts, as_series=as_series)
            assert log == whole.event_log(), (seed, as_series)
            assert carried_flags == flags, (seed, as_series)
            assert state == whole.tracker.state_dump()


def test_a_carry_keeps_only_what_later_readings_look_back_to():
    """A week of readings every 5 minutes, a run a day: the carry holds about a day of them (the step
    scale's window), not the week, and a run of one value longer than what is held still counts from its
    real start (a blocked gauge at 0 for a week while its neighbour fills up)."""
    configs = [SensorConfig(sensor="RG-1", parameter="rainfall", zone="Z1", neighbours=("RG-2",)),
               SensorConfig(sensor="RG-2", parameter="rainfall", zone="Z1", neighbours=("RG-1",))]
    times = [T0 + dt.timedelta(minutes=5 * i) for i in range(7 * 288)]
    wet = [0.0] * (len(times) - 12) + [3.0, 3.2, 2.8, 3.1] * 3  # 36 mm in the last hour: below every signal
    readings = [Reading(sensor=s, parameter="rainfall", time=t, value=0.0 if s == "RG-1" else w, unit="mm",
                        row=i + 1) for s in ("RG-1", "RG-2") for i, (t, w) in enumerate(zip(times, wet))]
    whole = readings_replay(readings=readings, sensors=configs)
    [fault] = whole.events
    assert fault.kind == "sensor_fault" and fault.sensor == "RG-1" and "unchanged for 167" in fault.detail["reason"]
    carry, tracker, events = None, None, []
    for day in range(7):
        part = [r for r in readings if day * 288 <= (r.time - T0) // dt.timedelta(minutes=5) < (day + 1) * 288]
        result = readings_replay(readings=part, sensors=configs, carry=carry, tracker=tracker)
        carry, tracker, events = result.carry, result.tracker, events + result.events
        assert max(n for _, _, n in carry.held().values()) <= 300, day
    assert [e.as_dict() for e in events] == [e.as_dict() for e in whole.events]


def test_resumed_qc_intervals_and_gaps_match_the_whole_series():
    from agents.flood.domain.qc import _step_scale, _typical_gaps
    from agents.flood.domain.replay import _intervals

    rng = random.Random(11)
    for parameter in ("level", "depth", "discharge"):
        settings = qc_settings_default(parameter=parameter)
        for _ in range(25):
            n = rng.randint(30, 400)
            t, times = T0, []
            regular = rng.random() < 0.5  # evenly spaced (the lean path), or not
            for _ in range(n):
                t += dt.timedelta(minutes=5 if regular else rng.choice([5, 5, 5, 7, 15, 60]))
                times.append(t)
            v, values = 2.0, []
            for _ in range(n):
                v += rng.gauss(0, 0.05)
                values.append(v + (rng.choice([-1, 1]) * rng.uniform(1, 60) if rng.random() < 0.06 else 0.0))
            whole = series_qc_run(times=times, values=values, settings=settings)
            cut = rng.randint(1, n - 1)
            part = series_qc_run(times=times[:cut], values=values[:cut], settings=settings)
            resumed = series_qc_run(times=times, values=values, settings=settings, resume=part)
            for name in ("flagged_now", "flagged", "resolved_at"):
                assert list(getattr(resumed, name)) == list(getattr(whole, name)), (parameter, name)
            assert resumed.kinds == whole.kinds and resumed.reasons == whole.reasons
            # one reading at a time, as the live loop's runs mostly go (the lean path where it applies)
            stepped = series_qc_run(times=times[:1], values=values[:1], settings=settings)
            for k in range(2, n + 1):
                stepped = series_qc_run(times=times[:k], values=values[:k], settings=settings, resume=stepped)
            for name in ("flagged_now", "flagged", "resolved_at"):
                assert list(getattr(stepped, name)) == list(getattr(whole, name)), (parameter, name, "stepped")
            assert stepped.kinds == whole.kinds and stepped.good == whole.good and stepped.pending == whole.pending
            t_ns = times_ns(times)
            ok = np.ones(n, dtype=bool)
            _, gap = _step_scale(t_ns, np.array(values), ok, settings.scale_window)
            assert list(_typical_gaps(t_ns, np.arange(n), cut, settings.scale_window)[cut:]) == list(gap[cut:])
            assert list(_intervals(t_ns, settings, start=cut)) == list(_intervals(t_ns, settings)[cut:])


def test_a_jittery_series_takes_the_lean_path_with_the_general_paths_flags():
    """Sensors whose clocks jitter by seconds are never evenly spaced: their usual new reading is judged on
    the lean path too (the typical gap as the median of the window's gaps), with the flags, good readings and
    typical gaps the general path gives."""
    from agents.flood.domain.qc import _qc_one_more

    rng = random.Random(5)
    settings = qc_settings_default(parameter="depth")
    times = [T0 + dt.timedelta(minutes=5 * k, seconds=rng.randint(0, 20)) for k in range(400)]
    values = [rng.choice([0.0, 0.0, 0.5]) for _ in times]
    values[390] = 90.0  # a spike: flagged; while it is in their window, the readings after it go the general way
    lean = 0
    stepped = series_qc_run(times=times[:50], values=values[:50], settings=settings)
    for k in range(51, len(times) + 1):
        t, x = times_ns(times[:k]), np.asarray(values[:k], dtype=float)
        lean += _qc_one_more(resume=stepped, t=t, x=x, settings=settings) is not None
        stepped = series_qc_run(times=times[:k], values=values[:k], settings=settings, resume=stepped)
    whole = series_qc_run(times=times, values=values, settings=settings)
    for name in ("flagged_now", "flagged", "resolved_at"):
        assert list(getattr(stepped, name)) == list(getattr(whole, name)), name
    assert stepped.kinds == whole.kinds and stepped.good == whole.good and stepped.pending == whole.pending
    assert whole.flagged[390] and stepped.regular_step == 0
    assert lean == 390 - 50  # every reading before the spike
