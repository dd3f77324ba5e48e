"""Bus agent benchmark on the loaded city (Django, PostGIS): GTFS import and vehicle-plan time for the
largest feed we have, and plan quality against the lower bound, each next to a reference measured in the
same run.

    .venv/bin/python bench/bus.py [--json] [--routes 10] [--headway-factor 0.7] [--keep]

- Import: `import_gtfs` end to end (zip check, partridge read, validation, COPY into PostGIS, route lines)
  against the reference of partridge reading + validating the same zip alone (what any importer pays).
- Plan: `plan_buses` end to end (feed read back from PostGIS, service-day expansion, road-network
  deadhead matrix, exact min-fleet matching, storing blocks) against the reference of the dispatcher's
  first-fit rule on the same trips and deadheads.
- Quality: buses planned vs the lower bound (peak trips in progress with layover) vs first-fit, and
  vs the feed's own blocks where it has block_id (the shared King County subset).
- Holding: a loop route replayed with random delays without and with the agent's headway-based holding
  (the same rule as the live advice), headway cv and TCQSM grade before and after, median hold.

The big feed is generated on the demo city's real streets (fixtures/bus_demo.py: routes along road-network
paths, stops every 250 m, a weekday and a weekend timetable) and deleted afterwards unless --keep.
Needs a loaded city (make demo, or manage.py load_demo_city).
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

from _django import ROOT, django_setup

SHARED = Path(os.environ.get("CITY_OPS_SHARED", ROOT.parent / "shared")) / "benchmarks" / "gtfs"


def _plan_bench(feed, day: dt.date) -> dict:
    from agents.bus.domain.blocking import blocks_first_fit, plan_measure
    from agents.bus.selectors import feed_frames_clear
    from agents.bus.services.plans import _context, plan_create

    feed_frames_clear()
    t0 = time.perf_counter()
    plan = plan_create(feed=feed, service_date=day, reason="bench/bus.py")
    plan_s = time.perf_counter() - t0
    ctx = _context(feed=feed, service_date=day, use_depot=plan.depot_id is not None)
    t0 = time.perf_counter()
    greedy = blocks_first_fit(trips=ctx.trips, layover_s=plan.layover_s, deadhead=ctx.deadhead)
    greedy_s = time.perf_counter() - t0
    greedy_km = plan_measure(trips=ctx.trips, blocks=greedy, deadhead=ctx.deadhead, depot=ctx.depot)["deadhead_m"] / 1000
    return {
        "date": day.isoformat(), "trips": plan.trips, "plan_s": round(plan_s, 2), "solve_s": plan.solve_s,
        "vehicles": plan.vehicles, "lower_bound": plan.lower_bound, "feed_vehicles": plan.feed_vehicles,
        "vehicles_over_bound": round(plan.vehicles / plan.lower_bound, 3) if plan.lower_bound else None,
        "deadhead_km": plan.deadhead_km, "deadhead_source": plan.deadhead_source,
        "depot": plan.depot.name if plan.depot_id else None,
        "ref_first_fit_vehicles": len(greedy), "ref_first_fit_deadhead_km": round(greedy_km, 2),
        "ref_first_fit_s": round(greedy_s, 2), "plan_id": plan.pk,
    }


def _import_bench(path: Path) -> tuple[dict, object]:
    from agents.bus.domain.gtfs import feed_read, feed_validate
    from agents.bus.services.feeds import feed_import

    t0 = time.perf_counter()
    core = feed_read(path=path)
    feed_validate(feed=core)
    read_s = time.perf_counter() - t0
    result = feed_import(path=path)
    return {"stop_times": result.counts["stop_times"], "trips_in_feed": result.counts["trips"],
            "import_s": round(result.seconds, 2), "ref_read_validate_s": round(read_s, 2),
            "import_over_read": round(result.seconds / read_s, 2) if read_s else None,
            "created": result.created}, result.feed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--routes", type=int, default=10, help="routes in the generated city feed (3 are named)")
    ap.add_argument("--via", type=int, default=3, help="junctions each generated route passes through")
    ap.add_argument("--headway-factor", type=float, default=0.7, help="< 1: buses more often (bigger feed)")
    ap.add_argument("--keep", action="store_true", help="keep the generated feed and plans in the database")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    django_setup()
    import logging

    logging.getLogger("agents.bus").setLevel(logging.WARNING)
    from agents.bus.models import Feed
    from agents.bus.services.feeds import feed_delete
    from city_ops.city.models import CityProfile, RoadSegment
    from fixtures.bus_demo import bus_demo_feed_write

    if not RoadSegment.objects.exists():
        print("no city loaded: run `make demo` or manage.py load_demo_city first", file=sys.stderr)
        return 1
    out: dict = {"city": CityProfile.objects.first().name, "segments": RoadSegment.objects.count(), "feeds": []}
    made: list = []
    before = set(Feed.objects.values_list("pk", flat=True))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = bus_demo_feed_write(path=Path(tmp) / "city_big.zip", routes=args.routes, via=args.via,
                                   spacing_m=250.0, headway_factor=args.headway_factor, seed=3)
        gen_s = time.perf_counter() - t0
        row, feed = _import_bench(path)
        made.append(feed)
        weekday = dt.date(2026, 12, 2)
        out["feeds"].append({"feed": f"demo city x{args.routes} routes (generated in {gen_s:.1f} s)", **row,
                             **_plan_bench(feed, weekday)})
    for name, day in (("kcm_gtfs_subset.zip", dt.date(2016, 5, 4)), ("bullrunner_gtfs.zip", dt.date(2017, 9, 13))):
        if (SHARED / name).exists():
            row, feed = _import_bench(SHARED / name)
            if feed.pk not in before:
                made.append(feed)
            out["feeds"].append({"feed": name, **row, **_plan_bench(feed, day)})
    if not args.keep:
        for feed in made:
            feed_delete(feed=feed)
    out["holding"] = _holding_bench(seeds=range(5))
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{out['city']} ({out['segments']} road segments)")
    head = (f"{'feed':44s} {'stop_times':>10s} {'import s':>8s} {'ref read':>8s} {'trips':>6s} {'plan s':>7s} "
            f"{'buses':>5s} {'bound':>5s} {'ref FF':>6s} {'feed':>5s} {'dh km':>7s} {'ref FF km':>9s}  deadhead")
    print(head)
    for r in out["feeds"]:
        print(f"{r['feed'][:44]:44s} {r['stop_times']:>10d} {r['import_s']:>8.2f} {r['ref_read_validate_s']:>8.2f} "
              f"{r['trips']:>6d} {r['plan_s']:>7.2f} {r['vehicles']:>5d} {r['lower_bound']:>5d} "
              f"{r['ref_first_fit_vehicles']:>6d} {r['feed_vehicles'] or '-'!s:>5s} {r['deadhead_km']:>7.1f} "
              f"{r['ref_first_fit_deadhead_km']:>9.1f}  {r['deadhead_source']}")
    print("holding simulation (loop route, 10 buses, 8-minute headway, random run times and boardings):")
    for h in out["holding"]:
        print(f"  seed {h['seed']}: cv {h['cv_without']:.2f} ({h['grade_without']}) -> {h['cv_with']:.2f} "
              f"({h['grade_with']}), EWT {h['ewt_without_s']:.0f} s -> {h['ewt_with_s']:.0f} s, "
              f"median hold {h['median_hold_s']:.0f} s on {100 * h['held_share']:.0f}% of control stops")
    return 0


def _holding_bench(seeds) -> list[dict]:
    from agents.bus.domain.simulation import holding_compare

    rows = []
    for seed in seeds:
        r = holding_compare(seed=seed)
        rows.append({"seed": seed, "cv_without": round(r.without.cv, 3), "grade_without": r.without.grade,
                     "cv_with": round(r.with_holding.cv, 3), "grade_with": r.with_holding.grade,
                     "ewt_without_s": round(r.without.ewt_s, 1), "ewt_with_s": round(r.with_holding.ewt_s, 1),
                     "median_hold_s": round(r.with_holding.median_hold_s, 1),
                     "held_share": round(r.with_holding.held_share, 3)})
    return rows


if __name__ == "__main__":
    sys.exit(main())
