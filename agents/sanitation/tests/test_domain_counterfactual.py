"""The fixed schedule replayed on given fills (`domain.counterfactual`): which bins it empties on which days,
what it collects, which bins overflow, and that it is the simulator's own day when fed the simulator's
fills."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from agents.sanitation.domain.baseline import FixedBin, fixed_schedule_build
from agents.sanitation.domain.counterfactual import (
    MAX_LEVEL,
    DayFills,
    ReplayBin,
    day_fills,
    day_levels,
    fixed_day_choices,
    fixed_day_replay,
    fixed_schedule_replay,
    shift_spread,
    visits_replay,
)
from agents.sanitation.domain.fill import FillObservation as Obs
from agents.sanitation.domain.simulation import FillSimulator, SimBin

MONDAY = dt.date(2026, 3, 2).toordinal()


def test_day_levels_empty_at_the_visit_and_flag_overflows():
    start = np.array([0.5, 0.95, 1.1, 0.2])
    growth = np.array([0.2, 0.2, 0.1, 0.9])
    got = day_levels(start=start, growth=growth, visits={0: MONDAY + 0.5, 1: MONDAY + 0.5}, day=MONDAY)
    assert got.at_visit == pytest.approx({0: 0.6, 1: 1.05})
    assert got.end == pytest.approx([0.1, 0.1, 1.2, 1.1])  # emptied at noon: half a day's fill since
    # Bin 1 went over full before its truck came, bin 2 started over full, bin 3 ends the day over full.
    assert list(got.overflowed) == [False, True, True, True]
    assert list(start) == [0.5, 0.95, 1.1, 0.2]  # the caller's levels are left as they were


def test_the_schedule_empties_its_bins_on_their_weekdays_only():
    bins = [ReplayBin(id="a", capacity_l=660, mean_rate=0.2), ReplayBin(id="b", capacity_l=240, mean_rate=0.1)]
    schedule = {"a": (0, 3), "b": (2,)}  # a: Monday and Thursday, b: Wednesday
    growth = [np.array([0.2, 0.1])] * 7
    week = fixed_schedule_replay(bins=bins, schedule=schedule, first_day=MONDAY, start_levels=np.array([0.3, 0.5]),
                                 growth=growth)
    assert [sorted(d.collected_l) for d in week] == [["a"], [], ["b"], ["a"], [], [], []]
    assert [d.bins_emptied for d in week] == [1, 0, 1, 1, 0, 0, 0]
    monday = week[0]
    # Emptied at the first (only) slot of the shift: 06:15 + 3:45 = 10:00.
    assert monday.visits["a"] == pytest.approx(MONDAY + 10 / 24)
    assert monday.collected_l["a"] == pytest.approx((0.3 + 0.2 * 10 / 24) * 660)
    # Bin b, 0.5 on Monday morning, grows 0.1 a day: 0.7 on Wednesday at ten.
    assert week[2].collected_l["b"] == pytest.approx((0.7 + 0.1 * 10 / 24) * 240)
    assert not any(d.overflowed for d in week)
    # The days follow on: Sunday ends where Saturday left off plus a day.
    assert week[6].levels_end == pytest.approx(week[5].levels_end + growth[6])


def test_a_schedule_too_sparse_for_the_waste_overflows_and_collects_at_most_the_cap():
    bins = [ReplayBin(id=7, capacity_l=1000, mean_rate=0.1)]
    week = fixed_schedule_replay(bins=bins, schedule={7: (4,)}, first_day=MONDAY, start_levels=np.array([0.0]),
                                 growth=[np.array([0.3])] * 7)  # three times the rate the schedule was drawn for
    assert [d.overflowed for d in week] == [[], [], [], [7], [7], [], []]  # Thursday 1.2 at night; Friday till ten
    assert week[4].collected_l == {7: pytest.approx(MAX_LEVEL * 1000)}  # 1.2 + 0.125 found: what a crew can take


def test_planned_loads_come_from_the_level_and_half_a_day_at_the_mean_rate():
    bins = [ReplayBin(id=1, capacity_l=1000, mean_rate=0.4, density_kg_l=0.2), ReplayBin(id=2, capacity_l=240,
                                                                                      mean_rate=0.1)]
    choices = fixed_day_choices(bins=bins, schedule={1: (0,), 2: (1,)}, weekday=0, levels=np.array([0.5, 0.9]))
    (c,) = choices
    assert (c.id, c.required, c.reason) == (1, True, "fixed")
    assert c.level == pytest.approx(0.7)
    assert (c.demand_l, c.demand_kg) == (700, 140)
    (full,) = fixed_day_choices(bins=bins, schedule={1: (0,)}, weekday=0, levels=np.array([1.5, 0.0]))
    assert full.level == MAX_LEVEL


def test_visits_come_from_the_router_when_given_one():
    bins = [ReplayBin(id=i, capacity_l=240, mean_rate=0.2) for i in range(3)]
    asked = []

    def router(day, choices):
        asked.append((day, [c.id for c in choices]))
        return {c.id: day + 0.25 + 0.1 * k for k, c in enumerate(reversed(choices))}

    day = fixed_day_replay(bins=bins, schedule={0: (0,), 1: (0,), 2: (1,)}, day=MONDAY, levels=np.zeros(3),
                           growth=np.full(3, 0.4), visit_at=router)
    assert asked == [(MONDAY, [0, 1])]
    assert day.visits == pytest.approx({1: MONDAY + 0.25, 0: MONDAY + 0.35})
    assert day.collected_l == pytest.approx({0: 0.35 * 0.4 * 240, 1: 0.25 * 0.4 * 240})
    # Sunday: no service, the router is not asked.
    sunday = fixed_day_replay(bins=bins, schedule={0: (0,), 1: (0,), 2: (1,)}, day=MONDAY + 6, levels=np.zeros(3),
                              growth=np.full(3, 0.4), visit_at=router)
    assert len(asked) == 1 and sunday.collected_l == {}


def test_the_replay_on_the_simulators_fills_is_the_simulators_day():
    """Fed the simulator's fills and visiting when the simulator's crews do, the replay collects and overflows
    exactly what the simulator says (the bench runs its fixed schedule through the replay)."""
    rates = [(0.1,) * 7, (0.3,) * 7, (0.5, 0.5, 0.5, 0.5, 0.5, 0.9, 0.9), (0.05,) * 7]
    sims = [SimBin(capacity_l=660, rates=r, noise=0.4) for r in rates]
    sim = FillSimulator(bins=sims, seed=4)
    start = sim.levels.copy()
    bins = [ReplayBin(id=i, capacity_l=660, mean_rate=float(np.mean(r))) for i, r in enumerate(rates)]
    schedule = fixed_schedule_build(bins=[FixedBin(id=b.id, mean_rate=b.mean_rate, capacity_l=660) for b in bins])
    days = range(MONDAY, MONDAY + 14)
    replay = fixed_schedule_replay(bins=bins, schedule=schedule, first_day=MONDAY, start_levels=start,
                                   growth=[sim.day_rates(d) for d in days])
    for day, replayed in zip(days, replay, strict=True):
        out = sim.day_run(day=day, emptyings=shift_spread(day=day, ids=[c.id for c in replayed.choices]))
        assert replayed.collected_l == pytest.approx(out.collected_l)
        assert replayed.overflowed == [int(i) for i in np.flatnonzero(out.overflowed)]
        assert replayed.levels_end == pytest.approx(sim.levels)
    assert sum(len(d.overflowed) for d in replay) > 0  # the bin drawn up for 0.5 a day overflows at weekends


def test_day_fills_are_measured_between_observations_and_estimated_elsewhere():
    """Bin 0: a sensor reads 0.2 at Monday 00:00 and 0.6 at Tuesday 00:00 (0.4 on Monday), a crew sees 0.9
    at Wednesday noon and empties it (0.3 over 36 h: 0.2 on Tuesday, 0.1 on Wednesday morning), the sensor
    reads 0.1 at Thursday 00:00 (0.1 on Wednesday afternoon); Thursday is not covered: the estimate. Bin 1
    has no observation: the estimate alone. A fall with no emptying recorded measures nothing."""
    observed = [
        [Obs(at=MONDAY, level=0.2), Obs(at=MONDAY + 1, level=0.6),
         Obs(at=MONDAY + 2.5, level=0.9, emptied=True), Obs(at=MONDAY + 3, level=0.1)],
        [],
        [Obs(at=MONDAY, level=0.8), Obs(at=MONDAY + 1, level=0.3)],  # emptied without a record: not read
    ]
    estimate = np.full((4, 3), 0.25)
    fills = day_fills(observed=observed, estimate=estimate, first_day=MONDAY)
    assert fills.growth[:, 0] == pytest.approx([0.4, 0.2, 0.1 + 0.1, 0.25])
    assert fills.measured[:, 0] == pytest.approx([1.0, 1.0, 1.0, 0.0])
    assert fills.growth[:, 1] == pytest.approx([0.25] * 4) and not fills.measured[:, 1].any()
    assert fills.growth[:, 2] == pytest.approx([0.25] * 4)


def test_recorded_collections_replayed_on_the_same_fills_as_the_schedule():
    """The same fills and start levels: a bin emptied every morning never overflows; left alone it does."""
    fills = DayFills(first_day=MONDAY, growth=np.full((4, 2), 0.45), measured=np.ones((4, 2)))
    days = visits_replay(start_levels=np.array([0.5, 0.5]), fills=fills,
                         visits=[{0: MONDAY + k + 0.3} for k in range(4)])
    assert [bool(d.overflowed[0]) for d in days] == [False] * 4
    assert [bool(d.overflowed[1]) for d in days] == [False, True, True, True]
