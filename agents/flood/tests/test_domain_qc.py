"""Quality control: range and spike flags, stuck and silent sensors, on built series and the real EA samples."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from agents.flood.domain.parsers import readings_parse
from agents.flood.domain.qc import qc_settings_default, sensor_health, series_qc, series_qc_run
from agents.flood.domain.vocabulary import Station

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


def _times(n: int, minutes: int = 15) -> list[dt.datetime]:
    return [T0 + dt.timedelta(minutes=minutes * i) for i in range(n)]


def _tide(n: int) -> list[float]:
    """A smooth tidal-looking level series (12.4 h period, 1 m amplitude, 15-min steps)."""
    return [1.0 + np.sin(2 * np.pi * i / (12.42 * 4)) for i in range(n)]


def test_isolated_spike_inside_a_series_is_flagged_and_neighbours_are_not():
    values = _tide(200)
    values[120] = 1000.0
    flags = series_qc(times=_times(200), values=values, settings=qc_settings_default(parameter="level"))
    assert [(f.index, f.kind, f.provisional) for f in flags] == [(120, "spike", False)]
    assert "1000" in flags[0].reason


def test_two_reading_spike_is_flagged():
    values = _tide(100)
    values[50] = values[51] = 7.5
    flags = series_qc(times=_times(100), values=values, settings=qc_settings_default(parameter="level"))
    assert [f.index for f in flags] == [50, 51]


def test_level_shift_and_rapid_rise_are_accepted_after_the_series_shows_it_stays():
    shift = [1.0] * 20 + [2.0 + 0.01 * i for i in range(20)]
    run = series_qc_run(times=_times(40), values=shift, settings=qc_settings_default(parameter="level"))
    assert not run.flagged.any()
    # suspect on arrival, settled as genuine two readings later
    assert list(np.flatnonzero(run.flagged_now)) == [20, 21, 22]
    assert run.flagged_as_of(20, 21) and not run.flagged_as_of(20, 22)

    rise = [1.0] * 20 + [1.0 + 0.6 * i for i in range(1, 21)]  # 2.4 m/h flash rise
    run = series_qc_run(times=_times(40), values=rise, settings=qc_settings_default(parameter="level"))
    assert not run.flagged.any()
    assert run.flagged_now.sum() <= 3  # only until the trend is established


def test_physical_limits_flag_out_of_range_values():
    values = [5.0, 5.0, -1.0, 5.0, 400.0]
    flags = series_qc(times=_times(5, 5), values=values, settings=qc_settings_default(parameter="rainfall"))
    assert [(f.index, f.kind) for f in flags] == [(2, "out_of_range"), (4, "out_of_range")]


def test_typical_range_widens_into_the_plausible_band():
    station = Station(code="S", typical_low=0.5, typical_high=2.5)
    settings = qc_settings_default(parameter="level", station=station)
    assert settings.plausible_band == (pytest.approx(-1.5), pytest.approx(4.5))
    values = [1.0, 1.1, 1.2, 4.4, 4.6]  # 4.4 is a record flood but plausible; 4.6 is not
    range_only = qc_settings_default(parameter="level", station=station, jump_min=None)
    flags = series_qc(times=_times(5), values=values, settings=range_only)
    assert [(f.index, f.kind) for f in flags] == [(4, "out_of_range")]


@pytest.mark.shared
def test_real_ea_series_clean_has_no_flags_and_injected_spike_is_flagged(shared_dir):
    folder = shared_dir / "benchmarks/flood/timeseries"
    clean = readings_parse(
        data=(folder / "ea_beeding_bridge_level_15min_2020-10.json").read_bytes(), sensor="E9140"
    )
    spiked = readings_parse(
        data=(folder / "ea_beeding_bridge_level_15min_2020-10_with_spike.json").read_bytes(), sensor="E9140"
    )
    settings = qc_settings_default(parameter="level")
    for result, expected in (
        (clean, []),
        (spiked, [(dt.datetime(2020, 10, 13, 16, 0, tzinfo=dt.UTC), 1000.0, "spike")]),
    ):
        readings = sorted(result.readings, key=lambda r: r.time)
        flags = series_qc(
            times=[r.time for r in readings], values=[r.value for r in readings], settings=settings
        )
        assert [(f.time, f.value, f.kind) for f in flags] == expected
    # the spike is the latest reading: it has not had the chance to come back, so it stays provisional
    readings = sorted(spiked.readings, key=lambda r: r.time)
    flags = series_qc(times=[r.time for r in readings], values=[r.value for r in readings], settings=settings)
    assert flags[0].provisional


@pytest.mark.shared
def test_station_record_typical_range_flags_the_spike_as_out_of_range(shared_dir):
    path = shared_dir / "benchmarks/flood/timeseries/ea_beeding_bridge_station_and_telemetry.json"
    result = readings_parse(data=path.read_bytes())
    settings = qc_settings_default(parameter="level", station=result.stations[0])
    readings = sorted(result.readings, key=lambda r: r.time)
    flags = series_qc(times=[r.time for r in readings], values=[r.value for r in readings], settings=settings)
    assert [(f.value, f.kind) for f in flags] == [(1000.0, "out_of_range")]


def test_stuck_level_sensor_is_a_fault():
    values = _tide(40) + [1.234] * 30
    times = _times(70)
    faults = sensor_health(
        times=times, values=values, at=times[-1], settings=qc_settings_default(parameter="level")
    )
    assert [f.kind for f in faults] == ["stuck"]
    assert faults[0].since == times[40]
    # the same run, shorter than the stuck duration, is fine
    assert (
        sensor_health(
            times=times[:60],
            values=values[:60],
            at=times[59],
            settings=qc_settings_default(parameter="level"),
        )
        == []
    )


def test_rain_gauge_at_zero_is_only_stuck_when_neighbours_fill_up():
    times = _times(24)
    zeros = [0.0] * 24
    settings = qc_settings_default(parameter="rainfall")
    assert sensor_health(times=times, values=zeros, at=times[-1], settings=settings) == []
    wet = [2.0] * 24  # neighbours: 8 mm per hour
    dry_neighbour = [0.0] * 24
    faults = sensor_health(
        times=times,
        values=zeros,
        at=times[-1],
        settings=settings,
        neighbours=[(times, wet), (times, wet), (times, dry_neighbour)],
    )
    assert [f.kind for f in faults] == ["stuck"]
    assert "neighbours" in faults[0].reason
    assert (
        sensor_health(
            times=times, values=zeros, at=times[-1], settings=settings, neighbours=[(times, dry_neighbour)]
        )
        == []
    )


def test_silent_sensor_is_judged_at_the_evaluation_time_not_the_clock():
    times = _times(10)
    values = _tide(10)
    settings = qc_settings_default(parameter="level")
    assert (
        sensor_health(times=times, values=values, at=times[-1] + dt.timedelta(minutes=40), settings=settings)
        == []
    )
    faults = sensor_health(
        times=times, values=values, at=times[-1] + dt.timedelta(minutes=50), settings=settings
    )
    assert [f.kind for f in faults] == ["silent"]
    assert faults[0].since == times[-1]


def test_flags_as_known_at_each_reading_match_a_live_run_on_the_prefix():
    """What the replay treats as flagged when reading k arrives is exactly what QC says on the readings up
    to k: no reading is judged with data that had not arrived yet."""
    rng = np.random.default_rng(3)
    values = list(np.cumsum(rng.normal(0, 0.03, 160)) + 2.0)
    values[40] = 9.0  # a one-reading spike
    values[90] = values[91] = -4.0  # a two-reading spike
    for i in range(120, 160):  # a real step up that stays
        values[i] += 1.5
    times = _times(160)
    settings = qc_settings_default(parameter="level")
    full = series_qc_run(times=times, values=values, settings=settings)
    assert full.flagged[[40, 90, 91]].all() and not full.flagged[120:].any()
    for k in range(1, 160):
        live = series_qc_run(times=times[: k + 1], values=values[: k + 1], settings=settings)
        for i in range(k + 1):
            assert full.flagged_as_of(i, k) == live.flagged_as_of(i, k), (i, k)
