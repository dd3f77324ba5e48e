"""Which bins a day visits (mandatory before they overflow, optional with prizes growing with fill), the
fixed-schedule baseline, and the city instance built from them solved and checked."""

from __future__ import annotations

import numpy as np
import pytest

from agents.sanitation.domain.baseline import (
    FixedBin,
    fixed_due,
    fixed_schedule_build,
    visits_per_week,
)
from agents.sanitation.domain.choice import BinOutlook, ChoicePolicy, bin_prize, bins_choose
from agents.sanitation.domain.routing import (
    BinSpec,
    SiteSpec,
    TruckSpec,
    city_instance_build,
    routes_summarise,
)
from agents.sanitation.vrp import LunchBreak, instance_solve, plan_check

H = 3600


def outlook(bid, level_end, level_next, sd=0.0, overflow_s=None, capacity=660):
    return BinOutlook(
        id=bid,
        capacity_l=capacity,
        density_kg_l=0.12,
        level_end=level_end,
        level_next=level_next,
        sd_next=sd,
        overflow_s=overflow_s,
    )


def test_mandatory_optional_and_left_out():
    policy = ChoicePolicy(min_fill=0.35, safety_z=1.5)
    chosen = {
        c.id: c
        for c in bins_choose(
            outlooks=[
                outlook("full", 1.1, 1.3, overflow_s=9 * H),  # overflows today at 09:00
                outlook("tomorrow", 0.8, 1.05),  # would overflow before tomorrow's first visit
                outlook("risky", 0.7, 0.85, sd=0.12),  # 0.85 + 1.5 x 0.12 > 1: the margin makes it a must
                outlook("half", 0.6, 0.75, sd=0.05),  # optional
                outlook("empty", 0.1, 0.2),  # not worth a stop
            ],
            policy=policy,
            shift_start_s=6 * H,
        )
    }
    assert set(chosen) == {"full", "tomorrow", "risky", "half"}
    assert chosen["full"].required and chosen["full"].deadline_s == 9 * H
    assert chosen["tomorrow"].required and chosen["tomorrow"].deadline_s is None
    assert chosen["risky"].required and chosen["risky"].reason == "would overflow before the next visit"
    assert not chosen["half"].required and chosen["half"].prize > 0
    assert all(c.prize == 0 for c in chosen.values() if c.required)
    # Demand is the end-of-day forecast, capped at 120 % of the bin.
    assert chosen["full"].demand_l == round(1.1 * 660) and chosen["full"].demand_kg == round(1.1 * 660 * 0.12)


def test_an_early_overflow_gets_a_deadline_no_earlier_than_an_hour_into_the_shift():
    (c,) = bins_choose(outlooks=[outlook("b", 1.4, 1.6, overflow_s=2 * H)], shift_start_s=6 * H)
    assert c.deadline_s == 7 * H


def test_prize_grows_with_forecast_fill():
    policy = ChoicePolicy(min_fill=0.3, prize_full=2000, prize_power=2.0)
    prizes = [bin_prize(level=x, policy=policy) for x in (0.2, 0.3, 0.5, 0.7, 0.9, 1.0, 1.2)]
    assert prizes[0] == prizes[1] == 0
    assert prizes[2] < prizes[3] < prizes[4] < prizes[5] == 2000
    assert prizes[6] == 2000  # capped at a full bin


def test_fixed_schedule_visits_as_often_as_the_mean_rate_needs():
    assert visits_per_week(mean_rate=0.1) == 1  # 7 days x 0.1 = 0.7
    assert visits_per_week(mean_rate=0.2) == 2  # 4-day gap
    assert visits_per_week(mean_rate=0.28) == 3
    assert visits_per_week(mean_rate=0.5) == 6
    bins = [FixedBin(id=i, mean_rate=r, capacity_l=660) for i, r in enumerate([0.2] * 30 + [0.28] * 20)]
    schedule = fixed_schedule_build(bins=bins)
    assert all(len(schedule[i]) == 2 for i in range(30)) and all(len(schedule[i]) == 3 for i in range(30, 50))
    per_day = [len(fixed_due(schedule=schedule, weekday=d)) for d in range(7)]
    assert per_day[6] == 0  # no Sunday collections
    assert max(per_day[:6]) - min(per_day[:6]) <= 4  # balanced over the week


def test_city_instance_prize_collecting_solve_is_checked():
    """Required bins always served; a far, barely full optional bin skipped; a near, full one taken."""
    rng = np.random.default_rng(1)
    xy = np.vstack([[0, 0], [2000, 0], rng.uniform(200, 800, (12, 2)), [[500, 500], [9000, 9000]]])
    metres = np.rint(1.3 * np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))).astype(int)
    seconds = np.rint(metres / 8.0).astype(int)
    bins = {f"bin:{i}": BinSpec(id=f"bin:{i}", loc=2 + i, service=60) for i in range(14)}
    outlooks = [outlook(f"bin:{i}", 0.9, 1.2) for i in range(12)]
    outlooks += [outlook("bin:12", 0.95, 0.99), outlook("bin:13", 0.4, 0.5)]
    choices = bins_choose(outlooks=outlooks, policy=ChoicePolicy(min_fill=0.35, prize_full=1500))
    lunch = LunchBreak(earliest=int(10.5 * H), latest=12 * H, duration=1800)
    trucks = [
        TruckSpec(
            id=f"T{k}",
            depot="depot:1",
            capacity_l=9000,
            capacity_kg=1200,
            shift_start=6 * H,
            shift_end=int(14.5 * H),
            daily_cap_kg=1500,
            lunch=lunch,
            fixed_cost=15000,
        )
        for k in range(2)
    ]
    inst = city_instance_build(
        name="test",
        depots=[SiteSpec(id="depot:1", loc=0, tw_early=5 * H, tw_late=20 * H)],
        sites=[SiteSpec(id="site:1", loc=1, tw_early=6 * H, tw_late=18 * H, service=900)],
        trucks=trucks,
        bins=bins,
        choices=choices,
        duration=seconds,
        distance=metres,
    )
    result = instance_solve(instance=inst, time_limit=2, seed=1, max_iterations=2000)
    assert result.feasible and not plan_check(instance=inst, routes=result.routes)
    visited = {v for r in result.routes for v in r.visits}
    assert {f"bin:{i}" for i in range(12)} <= visited
    assert "bin:12" in visited and "bin:13" not in visited
    assert result.vehicles == 1  # the fixed cost consolidates the day onto one truck (with unloads)
    (summary,) = routes_summarise(instance=inst, routes=result.routes)
    assert summary.visits[-1] == "site:1" and summary.stops[-1].load_l == 0
    assert max(s.load_l for s in summary.stops) <= 9000
    assert summary.distance_m == pytest.approx(result.cost, abs=1)


def test_a_deadline_no_truck_can_meet_is_dropped_not_fatal():
    from agents.sanitation.domain.routing import choices_relaxed, day_solve, deadlines_missed

    xy = np.array([[0, 0], [100, 0], [30000, 0], [200, 0]])
    metres = np.rint(np.abs(xy[:, None, 0] - xy[None, :, 0])).astype(int)
    seconds = metres // 5
    bins = {"bin:far": BinSpec(id="bin:far", loc=2), "bin:near": BinSpec(id="bin:near", loc=3)}
    choices = bins_choose(
        outlooks=[outlook("bin:far", 1.3, 1.5, overflow_s=6 * H + 600), outlook("bin:near", 0.9, 1.1)],
        shift_start_s=6 * H,
        policy=ChoicePolicy(min_deadline_s=60),
    )
    truck = TruckSpec(
        id="T1", depot="depot:1", capacity_l=9000, capacity_kg=900, shift_start=6 * H, shift_end=14 * H
    )
    spec = {
        "name": "d",
        "depots": [SiteSpec(id="depot:1", loc=0)],
        "sites": [SiteSpec(id="site:1", loc=1)],
        "trucks": [truck],
        "bins": bins,
        "duration": seconds,
        "distance": metres,
    }
    inst = city_instance_build(choices=choices, **spec)
    day = day_solve(
        instance=inst,
        truck_types=[["mixed"]],
        client_stream={"bin:far": "mixed", "bin:near": "mixed"},
        time_limit=1,
        max_iterations=500,
    )
    missed = deadlines_missed(violations=day.violations, choices=choices)
    assert missed == {"bin:far"}  # 30 km away: no truck is there by 06:10
    relaxed = city_instance_build(choices=choices_relaxed(choices=choices, ids=missed), **spec)
    day = day_solve(
        instance=relaxed,
        truck_types=[["mixed"]],
        client_stream={"bin:far": "mixed", "bin:near": "mixed"},
        time_limit=1,
        max_iterations=500,
    )
    assert day.violations == [] and {v for r in day.routes for v in r.visits} >= {"bin:far", "bin:near"}


def test_a_sparse_streams_bins_are_worth_more():
    from agents.sanitation.domain.choice import stream_prize_scales

    streams = ["mixed"] * 18 + ["bio"] * 2
    scales = stream_prize_scales(streams=streams, policy=ChoicePolicy(stream_boost=1.0))
    assert scales[0] == pytest.approx(20 / 18) and scales[-1] == pytest.approx(10.0)
    assert stream_prize_scales(streams=streams, policy=ChoicePolicy(stream_boost=0.0)) == [1.0] * 20
    (mixed, bio) = bins_choose(
        outlooks=[
            BinOutlook(
                id="m",
                capacity_l=240,
                density_kg_l=0.12,
                level_end=0.6,
                level_next=0.7,
                prize_scale=scales[0],
            ),
            BinOutlook(
                id="b",
                capacity_l=240,
                density_kg_l=0.4,
                level_end=0.6,
                level_next=0.7,
                prize_scale=scales[-1],
            ),
        ]
    )
    assert bio.prize == pytest.approx(mixed.prize * 9, rel=0.01)


def test_loads_forecast_at_the_service_time_fill_the_trucks():
    """Twelve bins that hold 900 L each by the end of the shift but 400 L when the truck gets there: the
    first pass plans two trips of 9,000 L, the second (demand re-forecast at each planned start) one
    trip, and the plan is checked against the loads it was made with."""
    from agents.sanitation.domain.routing import day_plan_solve

    xy = np.array([[0, 0], [3000, 0]] + [[500 + 30 * k, 400] for k in range(12)])
    metres = np.rint(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1))).astype(int)
    seconds = np.rint(metres / 8.0).astype(int)
    bins = {f"bin:{i}": BinSpec(id=f"bin:{i}", loc=2 + i, service=60) for i in range(12)}
    choices = bins_choose(outlooks=[outlook(f"bin:{i}", 0.9, 1.2, capacity=1000) for i in range(12)])
    truck = TruckSpec(
        id="T1",
        depot="depot:1",
        capacity_l=9000,
        capacity_kg=9000,
        shift_start=6 * H,
        shift_end=14 * H,
        fixed_cost=15000,
        second_cost=1,
    )
    spec = {
        "name": "d",
        "depots": [SiteSpec(id="depot:1", loc=0)],
        "trucks": [truck],
        "bins": bins,
        "sites": [SiteSpec(id="site:1", loc=1, service=900)],
        "duration": seconds,
        "distance": metres,
    }
    seen = []

    def demand_at(node, at):
        seen.append((node, at))
        return 400, 48

    def build(ch):
        return city_instance_build(choices=ch, **spec)

    common = {
        "build": build,
        "choices": choices,
        "truck_types": [["mixed"]],
        "client_stream": dict.fromkeys(bins, "mixed"),
        "time_limit": 2,
        "max_iterations": 300,
    }
    plain = day_plan_solve(**common)
    assert (
        plain.solution.violations == []
        and sum(v == "site:1" for r in plain.solution.routes for v in r.visits) == 2
    )
    refined = day_plan_solve(**common, demand_at=demand_at)
    assert (
        refined.solution.violations == []
        and plan_check(instance=refined.instance, routes=refined.solution.routes) == []
    )
    assert sum(v == "site:1" for r in refined.solution.routes for v in r.visits) == 1
    assert {c.demand_l for c in refined.choices} == {400}
    assert {c.demand for c in refined.instance.clients} == {(400, 48)}
    # Asked at each bin's planned start in the first pass (seconds after midnight, within the shift).
    assert {n for n, _ in seen} == set(bins) and all(6 * H < at < 14 * H for _, at in seen)


def test_demand_at_a_time_is_the_forecast_then_plus_a_reserve():
    from agents.sanitation.domain.choice import bin_demand_at
    from agents.sanitation.domain.fill import (
        FillObservation,
        fill_forecast,
        fill_forecast_sd,
        fill_state_new,
        fill_state_update,
    )

    state = fill_state_update(
        state=fill_state_new(prior_rates=[0.24] * 7),
        observations=[
            FillObservation(at=739000.25, level=0.0, emptied=True),
            FillObservation(at=739001.25, level=0.24),
        ],
    )
    early, late = 739002.30, 739002.60
    for at in (early, late):
        expected = fill_forecast(state=state, at=at) + 0.3 * fill_forecast_sd(state=state, at=at)
        litres, kg = bin_demand_at(
            state=state, capacity_l=660, density_kg_l=0.12, at=at, policy=ChoicePolicy(demand_z=0.3)
        )
        assert litres == round(expected * 660) and kg == round(litres * 0.12)
    assert (
        bin_demand_at(state=state, capacity_l=660, density_kg_l=0.12, at=early)[0]
        < bin_demand_at(state=state, capacity_l=660, density_kg_l=0.12, at=late)[0]
    )
    # Never more than a bin holds with waste beside it.
    assert bin_demand_at(state=state, capacity_l=660, density_kg_l=0.12, at=739010.0)[0] == round(1.2 * 660)
