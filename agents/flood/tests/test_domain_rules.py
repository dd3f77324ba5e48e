"""Rules on series built for the purpose (the real samples never reach rainstorm levels), plus the EA rain
sample's own published accumulations."""

from __future__ import annotations

import datetime as dt

import pytest

from agents.flood.domain.parsers import readings_parse
from agents.flood.domain.rules import (
    DepthSettings,
    GaugeSettings,
    RainfallSettings,
    RainThreshold,
    depth_evaluate,
    level_evaluate,
    rainfall_evaluate,
)
from agents.flood.domain.vocabulary import Level, Reading

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


def _series(
    sensor: str, parameter: str, values: list[float], minutes: int = 15, unit: str = ""
) -> list[Reading]:
    return [
        Reading(
            sensor=sensor,
            parameter=parameter,
            time=T0 + dt.timedelta(minutes=minutes * i),
            value=v,
            unit=unit,
            row=i + 1,
        )
        for i, v in enumerate(values)
    ]


# ----------------------------------------------------------------------------------------------- rainfall


@pytest.mark.parametrize(
    ("mm_per_15min", "hours_of_rain", "level", "rule"),
    [
        (1.0, 12, Level.NONE, ""),  # 48 mm: below blue, within its 5 mm hold margin
        (1.1, 12, Level.BLUE, "rain_12h>=50mm"),  # 52.8 mm in 12 h, 26.4 in 6 h
        (2.2, 6, Level.YELLOW, "rain_6h>=50mm"),  # 52.8 mm in 6 h
        (4.5, 3, Level.ORANGE, "rain_3h>=50mm"),  # 54 mm in 3 h
        (8.5, 3, Level.RED, "rain_3h>=100mm"),  # 102 mm in 3 h
    ],
)
def test_rainfall_maps_accumulations_to_cma_signals(mm_per_15min, hours_of_rain, level, rule):
    values = [0.0] * 8 + [mm_per_15min] * (hours_of_rain * 4)
    result = rainfall_evaluate(readings=_series("RG", "rainfall", values))
    total = mm_per_15min * hours_of_rain * 4
    if total < 50:
        assert result.level == Level.NONE and result.hold_level == Level.BLUE  # within the 5 mm margin
        return
    assert (result.level, result.rule) == (level, rule)
    assert result.hazard == "rainstorm"
    assert result.detail[f"rain_{hours_of_rain}h_mm"] == pytest.approx(total)
    # evidence: the wet readings of the deciding window
    window_h = 3 if level >= Level.ORANGE else (6 if level == Level.YELLOW else 12)
    assert len(result.evidence) == min(hours_of_rain, window_h) * 4


def test_rainfall_windows_are_half_open_on_reading_times():
    values = [10.0] + [0.0] * 12  # 10 mm at 00:00, then dry; 3 h after it, it drops out of the 3 h window
    readings = _series("RG", "rainfall", values)
    at_2h45 = rainfall_evaluate(readings=readings, at=T0 + dt.timedelta(hours=2, minutes=45))
    at_3h = rainfall_evaluate(readings=readings, at=T0 + dt.timedelta(hours=3))
    assert at_2h45.detail["rain_3h_mm"] == 10.0
    assert at_3h.detail["rain_3h_mm"] == 0.0 and at_3h.detail["rain_6h_mm"] == 10.0


def test_rainfall_thresholds_are_configurable_per_city():
    city = RainfallSettings(
        thresholds=(RainThreshold(Level.BLUE, 1, 20.0), RainThreshold(Level.RED, 1, 60.0))
    )
    readings = _series("RG", "rainfall", [0.0, 6.0, 6.0, 6.0, 6.0])  # 24 mm in the last hour
    assert rainfall_evaluate(readings=readings, settings=city).level == Level.BLUE
    assert rainfall_evaluate(readings=readings).level == Level.NONE


@pytest.mark.shared
def test_rolling_accumulations_match_the_ea_sample_own_totals(shared_dir):
    """The EA rain document publishes its own latest 1 h / 6 h / 24 h totals at latestDateTime."""
    import json

    path = shared_dir / "benchmarks/flood/timeseries/ea_rainfall_15min_2023-07.json"
    document = json.loads(path.read_bytes())
    readings = readings_parse(data=path.read_bytes(), sensor="RG-EA").readings
    at = dt.datetime.fromisoformat(document["latestDateTime"])
    result = rainfall_evaluate(readings=readings, at=at)
    assert result.detail["rain_1h_mm"] == pytest.approx(document["latest1hr"])
    assert result.detail["rain_6h_mm"] == pytest.approx(document["latest6hr"])
    assert result.detail["rain_24h_mm"] == pytest.approx(document["latest24hr"])
    assert result.level == Level.NONE  # a wet English July is no rainstorm


# ----------------------------------------------------------------------------------------------- river level

GAUGE = GaugeSettings(warning=5.0, guaranteed=7.0)


@pytest.mark.parametrize(
    ("latest", "level", "rule"),
    [
        (4.0, Level.NONE, "level_below_warning"),
        (5.0, Level.YELLOW, "level>=warning"),
        (5.99, Level.YELLOW, "level>=warning"),
        (6.0, Level.ORANGE, "level>=orange"),
        (7.0, Level.RED, "level>=guaranteed"),
    ],
)
def test_level_thresholds_on_a_flat_gauge(latest, level, rule):
    readings = _series("WL", "level", [latest] * 6)
    result = level_evaluate(readings=readings, gauge=GAUGE)
    assert (result.level, result.rule) == (level, rule)
    assert not result.forecast
    assert result.evidence == (readings[-1].key,)


def test_rate_of_rise_forecasts_the_warning_crossing_and_raises_blue():
    # rising 0.4 m/h from 3.8 m: 4.6 m after 2 h; the warning level (5.0) is 1 h ahead
    values = [3.8 + 0.1 * i for i in range(9)]
    result = level_evaluate(readings=_series("WL", "level", values), gauge=GAUGE)
    assert result.level == Level.BLUE and result.rule == "rise_forecast" and result.forecast
    assert result.detail["rate_m_per_h"] == pytest.approx(0.4, abs=1e-6)
    assert result.detail["eta_minutes"] == pytest.approx(60.0, abs=0.5)
    assert result.detail["next_level"] == "yellow"
    assert len(result.evidence) == 4  # the readings of the fit window (1 h, half-open)


def test_slow_rise_beyond_the_lead_time_is_not_blue_and_falling_water_has_no_forecast():
    slow = [3.0 + 0.05 * i for i in range(9)]  # 0.2 m/h, 3.4 m now: 8 h to the warning level
    assert level_evaluate(readings=_series("WL", "level", slow), gauge=GAUGE).level == Level.NONE
    falling = [4.9 - 0.1 * i for i in range(9)]
    result = level_evaluate(readings=_series("WL", "level", falling), gauge=GAUGE)
    assert result.level == Level.NONE and "eta_minutes" not in result.detail


def test_level_hold_keeps_yellow_within_the_margin():
    result = level_evaluate(readings=_series("WL", "level", [4.97] * 6), gauge=GAUGE)
    assert result.level == Level.NONE and result.hold_level == Level.YELLOW


# ----------------------------------------------------------------------------------------------- waterlogging


def test_depth_levels_and_closure_needs_two_consecutive_readings():
    settings = DepthSettings()
    cases = [
        ([0, 10], Level.NONE, False),
        ([0, 16], Level.BLUE, False),
        ([10, 26], Level.BLUE, False),  # one reading at closure depth: caution only
        ([26, 27], Level.YELLOW, True),  # two in a row: yellow + close the road
        ([27, 41], Level.ORANGE, True),
        ([41, 61], Level.RED, True),
    ]
    for values, level, closure in cases:
        result = depth_evaluate(
            readings=_series("D", "depth", [float(v) for v in values], minutes=5), settings=settings
        )
        assert (result.level, result.closure_needed) == (level, closure), values
    two = depth_evaluate(readings=_series("D", "depth", [26.0, 27.0], minutes=5))
    assert two.rule == "depth>=closure_x2" and len(two.evidence) == 2


def test_closure_lift_needs_depth_below_closure_minus_margin_for_the_hold_time():
    # 30 cm, then 19 cm (below 25 - 5) every 5 min; 21 cm would not count as clear
    values = [30.0, 30.0] + [19.0] * 7
    readings = _series("D", "depth", values, minutes=5)
    not_yet = depth_evaluate(readings=readings[:8])  # clear for 25 min
    ready = depth_evaluate(readings=readings)  # clear for 30 min
    assert not not_yet.lift_ready and not_yet.detail["clear_minutes"] == 25.0
    assert ready.lift_ready and ready.level == Level.BLUE
    interrupted = _series("D", "depth", [30.0, 30.0, 19.0, 19.0, 21.0, 19.0, 19.0, 19.0, 19.0], minutes=5)
    assert not depth_evaluate(readings=interrupted).lift_ready
