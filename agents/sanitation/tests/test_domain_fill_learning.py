"""The fill model keeps learning under the agent's own choices: on a generated city (bins of every kind, some
with sensors, four weeks of the old fixed schedule as history), four more weeks in which the bins the model
says are due are emptied, and the day-ahead error week by week does not rise. This is bench/sanitation.py's
learning curve without the road network and the solver (the day's bins are emptied along the shift)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from agents.sanitation.domain.baseline import FixedBin, fixed_due, fixed_schedule_build
from agents.sanitation.domain.choice import ChoicePolicy, bin_outlook, bins_choose
from agents.sanitation.domain.counterfactual import shift_spread
from agents.sanitation.domain.fill import (
    KNOWN_RATES,
    FillError,
    FillObservation,
    FillParams,
    fill_fit,
    fill_state_known,
    fill_state_new,
    fill_states_observe,
    forecast_mae_by_week,
)
from agents.sanitation.domain.simulation import FillSimulator, sim_bins_draw

MONDAY = dt.date(2026, 3, 2).toordinal()
H = 3600


def city_learning_curve(seed: int, *, bins: int = 120, weeks: int = 4) -> dict[str, list[float | None]]:
    """Weekly day-ahead MAE of all bins and of the bins with sensors over `weeks` weeks of the agent's choices."""
    rng = np.random.default_rng([seed, 1])
    sims = sim_bins_draw(rng=rng, n=bins, sensor_share=0.4)
    sim = FillSimulator(bins=sims, seed=seed)
    schedule = fixed_schedule_build(
        bins=[FixedBin(id=i, mean_rate=float(np.mean(s.rates)), capacity_l=s.capacity_l) for i, s in enumerate(sims)]
    )
    history: list[list[FillObservation]] = [[] for _ in sims]
    for day in range(MONDAY - 28, MONDAY):
        weekday = (day - 1) % 7
        due = sorted(fixed_due(schedule=schedule, weekday=weekday)) if weekday < 6 else []
        for i, obs in enumerate(sim.day_run(day=day, emptyings=shift_spread(day=day, ids=due)).observations(n=bins)):
            history[i] += obs
    states, _ = fill_fit(
        observations=history, xy=rng.uniform(0, 3000, (bins, 2)), groups=[f"mixed:{s.capacity_l}" for s in sims]
    )
    policy = ChoicePolicy()
    known = [fill_state_known(rates=b.rates, like=s) for b, s in zip(sims, states, strict=True)]
    errors: list[FillError] = []
    sensor_errors: list[FillError] = []
    floor_errors: list[FillError] = []
    for day in range(MONDAY, MONDAY + 7 * weeks):
        weekday = (day - 1) % 7
        due = []
        if weekday != 6:
            outlooks = [
                bin_outlook(id=i, state=s, capacity_l=b.capacity_l, density_kg_l=0.1, day=day, shift_start_s=6 * H,
                            shift_end_s=int(14.5 * H), next_day=day + (2 if weekday == 5 else 1), policy=policy)
                for i, (s, b) in enumerate(zip(states, sims, strict=True))
            ]
            # The mandatory bins, and the optional ones a route would take in passing (the fuller ones).
            due = [c.id for c in bins_choose(outlooks=outlooks, policy=policy) if c.required or c.level >= 0.6]
        out = sim.day_run(day=day, emptyings=shift_spread(day=day, ids=due))
        observations = out.observations(n=bins)
        for b, new in zip(sims, fill_states_observe(states=states, observations=observations), strict=True):
            errors += new
            if b.sensor:
                sensor_errors += new
        for new in fill_states_observe(states=known, observations=observations, params=KNOWN_RATES):
            floor_errors += new
    return {
        "all": forecast_mae_by_week(errors=errors, start=MONDAY, weeks=weeks),
        "sensor": forecast_mae_by_week(errors=sensor_errors, start=MONDAY, weeks=weeks),
        "floor": forecast_mae_by_week(errors=floor_errors, start=MONDAY, weeks=weeks),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_weekly_forecast_error_does_not_rise(seed):
    curve = city_learning_curve(seed)
    for name, weekly in curve.items():
        assert all(m is not None for m in weekly), (name, weekly)  # every week measured, sensors included
    # Raw weekly errors move with how random each week's waste was (the floor, the error of knowing every
    # bin's true rates, moves by 5-10 % from week to week): what the model has left to learn is its error
    # above the floor. Four weeks of history already put it within a twentieth of the floor, so the weeks
    # after keep it there; a learning curve that lost the bins with sensors showed +0.04 by the fourth week.
    excess = [m - f for m, f in zip(curve["all"], curve["floor"], strict=True)]
    assert all(e > 0 for e in excess), excess  # no model beats knowing the true rates
    assert max(excess) <= excess[0] + 0.003, excess
    assert max(curve["all"]) <= curve["all"][0] * 1.1, curve["all"]
    assert max(curve["sensor"]) <= curve["sensor"][0] * 1.1, curve["sensor"]


def test_new_errors_are_counted_past_the_kept_ones():
    """A state keeps its last `max_errors` errors; what an update adds is still counted once it is full."""
    params = FillParams(max_errors=5)
    state = fill_state_new(prior_rates=[0.2] * 7, params=params)
    readings = [FillObservation(at=MONDAY + k / 4, level=0.05 * k) for k in range(24)]
    counted = []
    for day in range(6):
        (new,) = fill_states_observe(
            states=[state], observations=[[o for o in readings if MONDAY + day <= o.at < MONDAY + day + 1]],
            params=params,
        )
        counted += new
    assert len(state.errors) == 5
    assert len(counted) == state.n_errors == 20  # a day-ahead forecast for every reading after the first day
    assert [e.at for e in counted] == sorted(e.at for e in counted)
    assert counted[-5:] == state.errors


def test_forecast_mae_by_week_pools_each_week():
    errors = [FillError(at=MONDAY + 0.5, predicted=0.5, observed=0.4),
              FillError(at=MONDAY + 6.9, predicted=0.5, observed=0.2),
              FillError(at=MONDAY + 14.0, predicted=1.0, observed=0.9),
              FillError(at=MONDAY - 1.0, predicted=1.0, observed=0.0)]  # before the start: not counted
    assert forecast_mae_by_week(errors=errors, start=MONDAY, weeks=3) == pytest.approx([0.2, None, 0.1])
