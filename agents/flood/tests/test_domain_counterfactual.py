"""The city's former rule replayed on readings: a call-out each time a zone goes over its threshold, one for
a zone however many of its sensors are over, none again until every sensor has held below for the hold."""
from __future__ import annotations

import datetime as dt

from agents.flood.domain.counterfactual import ThresholdSeries, threshold_callouts

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
HOLD = dt.timedelta(minutes=30)


def _series(values: list[float], *, zone: str = "RIV", hazard: str = "river_flood", minutes: int = 15,
            offset: int = 0) -> ThresholdSeries:
    times = [T0 + dt.timedelta(minutes=minutes * i + offset) for i in range(len(values))]
    return ThresholdSeries(zone=zone, hazard=hazard, threshold=5.0, times=times, values=values)


def test_a_crossing_is_a_call_out_and_a_dip_shorter_than_the_hold_is_not_a_new_one():
    # over, 15 min under (shorter than the hold), over again: one call-out; then 45 min under, over: a second
    values = [4.0, 5.1, 4.9, 5.2, 4.0, 4.0, 4.0, 4.0, 5.5]
    assert threshold_callouts(series=[_series(values)], start=T0, hold=HOLD) == 2


def test_a_single_spike_over_the_threshold_is_a_call_out_for_the_plain_rule():
    assert threshold_callouts(series=[_series([3.0, 3.0, 9.0, 3.0, 3.0])], start=T0, hold=HOLD) == 1


def test_sensors_of_one_zone_make_one_call_out_and_other_zones_their_own():
    a, b = _series([4.0, 5.1, 5.2, 4.0]), _series([4.0, 4.0, 5.3, 5.1], offset=5)
    other = _series([4.0, 5.1, 4.0, 4.0], zone="LOW")
    assert threshold_callouts(series=[a, b], start=T0, hold=HOLD) == 1
    assert threshold_callouts(series=[a, b, other], start=T0, hold=HOLD) == 2


def test_an_alert_running_when_the_period_starts_is_not_a_new_call_out():
    values = [5.5, 5.6, 5.4, 4.0, 4.0, 4.0, 4.0, 5.2]  # over before the start; over again after the hold
    start = T0 + dt.timedelta(minutes=20)
    assert threshold_callouts(series=[_series(values)], start=start, hold=HOLD) == 1
    assert threshold_callouts(series=[_series(values)], start=T0, hold=HOLD) == 2
    assert threshold_callouts(series=[], start=T0, hold=HOLD) == 0
