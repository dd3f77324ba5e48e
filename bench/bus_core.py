"""Bus core benchmark: read and plan the feeds we have, minimum fleet against its lower bound, the feed's
own blocks and a first-fit dispatcher's plan (the reference), measured side by side in one run; then the
holding simulation without and with control.

    .venv/bin/python bench/bus_core.py [--json] [--routes 13] [--big-routes 20]

Feeds: ../shared/benchmarks/gtfs (King County route 1 subset, USF Bull Runner) when present, and
synthetic feeds written on the spot (13 routes ~ 2,000 trips / 40,000 stop_times; 20 routes ~ 3,100 trips).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.bus.domain.blocking import blocks_first_fit, blocks_optimise, plan_check, plan_measure
from agents.bus.domain.gtfs import feed_read, feed_validate, service_trips
from agents.bus.domain.simulation import holding_compare
from agents.bus.domain.synthetic import feed_synthetic_write

SHARED = Path(os.environ.get("CITY_OPS_SHARED", ROOT.parent / "shared")) / "benchmarks" / "gtfs"


def feed_bench(name: str, path: Path, day: dt.date) -> dict:
    """Import, plan (window and no window), first-fit reference, and a plan check for one feed and day."""
    t0 = time.perf_counter()
    feed = feed_read(path=path)
    feed_validate(feed=feed)
    trips = service_trips(feed=feed, service_date=day)
    import_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    plan = blocks_optimise(trips=trips)
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    unbounded = blocks_optimise(trips=trips, max_wait_s=None)
    unbounded_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    greedy = blocks_first_fit(trips=trips)
    greedy_s = time.perf_counter() - t0
    greedy_km = plan_measure(trips=trips, blocks=greedy)["deadhead_m"] / 1000
    violations = plan_check(trips=trips, blocks=plan.blocks)
    return {
        "feed": name,
        "date": day.isoformat(),
        "stop_times": len(feed.stop_times),
        "trips": len(trips),
        "import_s": round(import_s, 3),
        "plan_s": round(plan_s, 3),
        "vehicles": plan.vehicles,
        "lower_bound": plan.lower_bound,
        "vehicles_over_bound": round(plan.vehicles / plan.lower_bound, 3) if plan.lower_bound else None,
        "feed_vehicles": plan.feed_vehicles,
        "deadhead_km": round(plan.deadhead_km, 1),
        "links": plan.links_considered,
        "no_window_vehicles": unbounded.vehicles,
        "no_window_links": unbounded.links_considered,
        "no_window_plan_s": round(unbounded_s, 3),
        "first_fit_vehicles": len(greedy),
        "first_fit_deadhead_km": round(greedy_km, 1),
        "first_fit_s": round(greedy_s, 3),
        "plan_violations": len(violations),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routes", type=int, default=13, help="routes in the synthetic feed (13 ~ 2,000 trips)")
    ap.add_argument("--big-routes", type=int, default=20, help="routes in the larger synthetic feed (0 = skip)")
    ap.add_argument("--seed", type=int, default=0, help="simulation seed")
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args()

    rows = []
    if SHARED.is_dir():
        rows.append(feed_bench("kcm_subset (route 1)", SHARED / "kcm_gtfs_subset.zip", dt.date(2016, 5, 4)))
        rows.append(feed_bench("bullrunner (frequencies)", SHARED / "bullrunner_gtfs.zip", dt.date(2017, 9, 13)))
    else:
        print(f"no shared feeds at {SHARED}: synthetic only", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        for routes in (args.routes, args.big_routes):
            if routes <= 0:
                continue
            path = feed_synthetic_write(path=Path(tmp) / f"synthetic_{routes}.zip", routes=routes, seed=1)
            rows.append(feed_bench(f"synthetic {routes} routes", path, dt.date(2024, 3, 6)))

    t0 = time.perf_counter()
    sim = holding_compare(seed=args.seed)
    sim_s = time.perf_counter() - t0
    simulation = {
        "seed": args.seed,
        "buses": sim.config.buses,
        "stops": sim.config.stops,
        "headway_s": sim.config.headway_s,
        "cv_without": round(sim.without.cv, 3),
        "grade_without": sim.without.grade,
        "cv_with_holding": round(sim.with_holding.cv, 3),
        "grade_with_holding": sim.with_holding.grade,
        "median_hold_s": round(sim.with_holding.median_hold_s, 1),
        "held_share": round(sim.with_holding.held_share, 3),
        "ewt_without_s": round(sim.without.ewt_s, 1),
        "ewt_with_holding_s": round(sim.with_holding.ewt_s, 1),
        "lap_without_s": round(sim.without.mean_lap_s, 1),
        "lap_with_holding_s": round(sim.with_holding.mean_lap_s, 1),
        "run_s": round(sim_s, 3),
    }
    if args.json:
        print(json.dumps({"feeds": rows, "simulation": simulation}))
        return 0
    head = (f"{'feed':26} {'trips':>6} {'st':>7} {'import':>7} {'plan':>6} {'veh':>4} {'LB':>4} {'veh/LB':>6} "
            f"{'feed':>5} {'dh km':>7} {'1st-fit':>7} {'ff dh km':>8} {'no-win':>6} {'no-win s':>8}")
    print(head)
    for r in rows:
        print(f"{r['feed']:26} {r['trips']:6d} {r['stop_times']:7d} {r['import_s']:6.2f}s {r['plan_s']:5.2f}s "
              f"{r['vehicles']:4d} {r['lower_bound']:4d} {r['vehicles_over_bound'] or 0:6.3f} "
              f"{r['feed_vehicles'] if r['feed_vehicles'] is not None else '-':>5} {r['deadhead_km']:7.1f} "
              f"{r['first_fit_vehicles']:7d} {r['first_fit_deadhead_km']:8.1f} {r['no_window_vehicles']:6d} "
              f"{r['no_window_plan_s']:7.2f}s")
    s = simulation
    print(f"\nholding simulation ({s['buses']} buses, {s['stops']} stops, headway {s['headway_s']:.0f} s, seed {s['seed']}):"
          f" cv {s['cv_without']} ({s['grade_without']}) -> {s['cv_with_holding']} ({s['grade_with_holding']}),"
          f" median hold {s['median_hold_s']} s, EWT {s['ewt_without_s']} -> {s['ewt_with_holding_s']} s,"
          f" lap {s['lap_without_s']} -> {s['lap_with_holding_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
