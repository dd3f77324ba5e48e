"""The fill model on simulated history: it learns each bin's rate (weekday pattern included), its day-ahead
error falls as history grows, a full bin's reading is treated as censored, and bins without data borrow
their neighbours' rates."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from agents.sanitation.domain.fill import (
    FillObservation,
    fill_fit,
    fill_forecast,
    fill_state_new,
    fill_state_update,
    fill_states_observe,
    rates_knn,
    weekday_split,
)
from agents.sanitation.domain.simulation import FillSimulator, SimBin

MONDAY = dt.date(2026, 3, 2).toordinal()


def history(sim: FillSimulator, *, days: int, start: int = MONDAY, every: int = 3) -> list[list[FillObservation]]:
    """`days` of sensor readings and pickups: every bin emptied every `every` days at 09:00."""
    obs: list[list[FillObservation]] = [[] for _ in sim.bins]
    for day in range(start, start + days):
        empt = {i: day + 0.375 for i in range(len(sim.bins)) if (day - start + i) % every == 0}
        for i, seen in enumerate(sim.day_run(day=day, emptyings=empt).observations(n=len(sim.bins))):
            obs[i] += seen
    return obs


def test_weekday_split_follows_the_local_calendar():
    split = weekday_split(MONDAY + 0.5, MONDAY + 2.25)  # Monday noon to Wednesday 06:00
    assert split == pytest.approx([0.5, 1.0, 0.25, 0, 0, 0, 0])
    assert weekday_split(MONDAY + 6.0, MONDAY + 7.0)[6] == pytest.approx(1.0)  # Sunday


def test_it_learns_the_rate_and_the_weekday_pattern():
    weekend_heavy = (0.15, 0.15, 0.15, 0.15, 0.15, 0.3, 0.35)
    bins = [SimBin(capacity_l=660, rates=weekend_heavy, noise=0.15, sensor=True) for _ in range(6)]
    sim = FillSimulator(bins=bins, seed=11, initial_levels=np.zeros(6))
    obs = history(sim, days=56)
    states, fallback = fill_fit(observations=obs, xy=np.arange(12.0).reshape(6, 2) * 1000)
    assert not fallback.any()
    for s in states:
        # The weekly mean within 10 %; the weekend clearly above the weekdays, as simulated.
        assert s.mean_rate == pytest.approx(np.mean(weekend_heavy), rel=0.10)
        assert s.rates[5:].mean() > s.rates[:5].mean() + 0.08
    # A fresh bin starts from the flat prior, which is far from the truth.
    assert abs(fill_state_new().mean_rate - np.mean(weekend_heavy)) > 0.02


def test_forecast_error_falls_with_more_history():
    """Fitted on one week, then on six weeks of the same bins; both forecast the same following week."""
    rates = [(0.3, 0.1, 0.1, 0.3, 0.1, 0.45, 0.05), (0.1, 0.3, 0.2, 0.1, 0.35, 0.1, 0.2)]
    bins = [SimBin(capacity_l=1100, rates=r, noise=0.1, sensor=True) for r in rates for _ in range(3)]
    sim = FillSimulator(bins=bins, seed=5, initial_levels=np.zeros(len(bins)))
    obs = history(sim, days=49)  # six weeks to learn from, the seventh to test on
    cut = MONDAY + 42

    def held_out_mae(learn_from: int) -> float:
        errors = []
        for series in obs:
            state = fill_state_update(state=fill_state_new(),
                                      observations=[o for o in series if learn_from <= o.at < cut])
            (new,) = fill_states_observe(states=[state], observations=[[o for o in series if o.at >= cut]])
            errors += [e.abs_error for e in new]
        return float(np.mean(errors))

    one_week, six_weeks = held_out_mae(cut - 7), held_out_mae(MONDAY)
    assert six_weeks < one_week * 0.85, (one_week, six_weeks)
    # Within one long series the day-ahead error also shrinks from the first week to the last.
    state = fill_state_update(state=fill_state_new(), observations=obs[0])
    first = np.mean([e.abs_error for e in state.errors if e.at < MONDAY + 8])
    last = np.mean([e.abs_error for e in state.errors if e.at >= MONDAY + 35])
    assert last < first


def test_a_full_reading_is_censored():
    """A sensor stuck at 'full' must not teach the model that the bin stopped filling."""
    state = fill_state_update(state=fill_state_new(prior_rates=[0.5] * 7), observations=[
        FillObservation(at=MONDAY, level=0.0),
        FillObservation(at=MONDAY + 2.0, level=1.0),  # true level would be 1.0 after two days at 0.5
        FillObservation(at=MONDAY + 4.0, level=1.0),  # still 'full': it overflowed, not stopped
    ])
    assert state.mean_rate > 0.4
    assert fill_forecast(state=state, at=MONDAY + 5.0) > 1.2  # overflow beyond the sensor's top


def test_crew_pickups_alone_teach_the_rate():
    """A bin without a sensor: only the levels crews saw when emptying it, twice a week."""
    obs = []
    for week in range(6):
        for day, gap in ((0, 4), (4, 3)):  # Monday and Friday
            t = MONDAY + 7 * week + day + 0.4
            obs.append(FillObservation(at=t, level=round(0.2 * gap, 1), emptied=True, sd=0.08, source="crew"))
    state = fill_state_update(state=fill_state_new(), observations=obs)
    assert state.mean_rate == pytest.approx(0.2, abs=0.03)
    assert state.last_level == 0.0  # emptied at the last pickup


def test_neighbours_give_a_new_bin_its_prior():
    xy = np.array([[0, 0], [50, 0], [0, 60], [5000, 5000], [20, 20]], dtype=float)
    rates = np.array([[0.3] * 7, [0.3] * 7, [0.3] * 7, [0.05] * 7, [0.0] * 7])
    trusted = np.array([True, True, True, True, False])
    prior = rates_knn(xy=xy, rates=rates, trusted=trusted, k=3)
    assert prior[4] == pytest.approx([0.3] * 7)  # the three close bins, not the far one
    groups = ["mixed", "mixed", "mixed", "bio", "bio"]
    prior = rates_knn(xy=xy, rates=rates, trusted=trusted, groups=groups, k=3)
    assert prior[4] == pytest.approx([0.05] * 7)  # only bins of its own waste type count


def test_fit_falls_back_on_neighbours_for_bins_without_data():
    bins = [SimBin(capacity_l=240, rates=(0.25,) * 7, noise=0.1, sensor=True) for _ in range(4)]
    sim = FillSimulator(bins=bins, seed=3, initial_levels=np.zeros(4))
    obs = history(sim, days=21)
    obs.append([FillObservation(at=MONDAY + 20.5, level=None, emptied=True, sd=0.08)])  # emptied, never seen
    xy = np.array([[0, 0], [30, 0], [0, 30], [30, 30], [15, 15]], dtype=float)
    states, fallback = fill_fit(observations=obs, xy=xy)
    assert list(fallback) == [False, False, False, False, True]
    assert states[4].mean_rate == pytest.approx(0.25, rel=0.15)
    assert fill_forecast(state=states[4], at=MONDAY + 22.5) == pytest.approx(0.5, rel=0.2)


def test_similar_means_same_size_before_same_waste_type():
    """A new 3,000 L container learns from the containers nearby, not from the 240 L bins next to it; with
    no trusted container anywhere it falls back on its waste type."""
    small = [SimBin(capacity_l=240, rates=(0.4,) * 7, noise=0.1, sensor=True) for _ in range(3)]
    big = [SimBin(capacity_l=3000, rates=(0.1,) * 7, noise=0.1, sensor=True) for _ in range(2)]
    sim = FillSimulator(bins=small + big, seed=9, initial_levels=np.zeros(5))
    obs = history(sim, days=21) + [[FillObservation(at=MONDAY + 20.5, level=None, emptied=True)]]
    xy = np.array([[0, 0], [20, 0], [0, 20], [900, 900], [950, 900], [10, 10]], dtype=float)
    groups = ["mixed:240"] * 3 + ["mixed:3000"] * 2 + ["mixed:3000"]
    states, fallback = fill_fit(observations=obs, xy=xy, groups=groups)
    assert fallback[5] and states[5].mean_rate == pytest.approx(0.1, abs=0.03)
    states, _ = fill_fit(observations=obs, xy=xy, groups=groups[:5] + ["mixed:5000"])
    assert states[5].mean_rate > 0.2  # no 5,000 L container: all mixed bins, the near small ones weigh most
