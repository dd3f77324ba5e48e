"""City-scale benchmark (issue 18): the operations a city of ten million leans on, timed on the loaded city
(`manage.py load_demo_city --synthetic --scale 250` into a database of its own), each beside a reference
measured in the same run.

    DATABASE_URL=postgis://.../cityops_scale .venv/bin/python bench/city_scale.py [--json] [--quick]
        [--reference-db cityops] [--points 2000] [--only snap,network,flood,bus,live,sanitation,sanitation_city,photos]

- snap: `segment_nearest` for 200 points a few metres off the roads, p50/p95, beside the plain PostGIS KNN
  query (`ORDER BY geom <-> point LIMIT 1`, the floor) and the previous implementation (`ST_DWithin` on
  geography, which no index serves; timed on a few points only), on this city and on the reference
  database's city (the demo, by default) read only.
- network: graph build, a travel-time matrix of `--points` points (`RoadNetwork.matrix`, which goes in
  source chunks: a Dijkstra's arrays span every junction), a route between two far corners, peak
  Python-tracked memory of each, beside networkx's Dijkstra on the same graph (matrix: a few
  sources timed and scaled); a closure applied (a new snapshot from the cached arrays) vs a cold build.
- flood: a monitor tick (`evaluation_run` after one new reading per series, every sensor reporting in the same
  minute, five minutes after the previous tick) for every sensor: wall, CPU and SQL statements; target 500 ms.
- bus: `plan_create` (what `plan_buses` runs) for the next weekday of the newest feed, cold (the road graph
  built in this process) and warm (a worker that has it), wall and CPU seconds, the process's peak RSS,
  buses against the lower bound and the first-fit reference; target 60 s, 2 GB.
- live: 2,000 buses' positions every 30 s (a synthetic snapshot on the feed's trips under way at 08:00),
  stored as the positions API stores them and evaluated as the realtime task does (headways, bunching and
  gap warnings, holding advice); target 2 s a snapshot.
- sanitation: a day plan for one district: its up to 2,000 bins (optional, with prizes) and 10 trucks
  (`problem_build` + `problem_solve`, as `plan_create` does for the whole city); target 120 s.
- photos: a patrol camera's survey run of `--photo-frames` frames (1,000) along a GPX track on the city's
  streets through `ingest_camera_run --sync` (upload, detection, snapping, merging) on the CPU, images/s end
  to end and ms per image by stage, beside the bare engine and the same run on the reference city
  (`--photo-reference-frames`); rolled back (bench/city_photos.py).
- sanitation_city: the whole city planned by district (`city_plan_start`: one `sanitation.plan_district`
  task per district) on `--planning-workers` Celery workers this bench starts on a broker database of its
  own (`--bench-redis-db`, so no other worker takes its tasks), up to `--city-bins` bins per district; the
  districts' km, trucks and bins summed, wall time, and each district's build, solve, CPU and peak memory.
  Runs alone (`--only sanitation_city`); needs the sanitation migrations on the database
  (`manage.py migrate agent_sanitation`).

Writes only into the database it runs on (a flood tick's readings and alerts, a bus plan draft): never run
it on a city people use. What it cannot measure is printed as "not measured: reason".
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import time
import tracemalloc
from contextlib import contextmanager

import numpy as np
from _django import ROOT, django_setup
from city_photos import photos_bench

PARTS = ("snap", "network", "flood", "bus", "live", "sanitation", "sanitation_city", "photos")


def _ms(seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 2)}


def _timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def _traced(fn, *args, **kwargs):
    """Result, seconds and peak Python-tracked memory (MB; numpy arrays included) of one call."""
    tracemalloc.start()
    try:
        out, secs = _timed(fn, *args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return out, secs, round(peak / 2**20, 1)


@contextmanager
def _database(name: str | None):
    """Run the block against another database of the same server (read only), then come back."""
    from django.db import connections

    from city_ops.city.network import network_cache_clear

    conn = connections["default"]
    if not name or name == conn.settings_dict["NAME"]:
        yield
        return
    own = conn.settings_dict["NAME"]
    conn.close()
    conn.settings_dict["NAME"] = name
    network_cache_clear()  # network versions of two databases are not comparable
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict["NAME"] = own
        network_cache_clear()


def _city() -> dict:
    from city_ops.city.models import CityProfile, RoadNode, RoadSegment

    profile = CityProfile.objects.first()
    return {"name": profile.name if profile else None, "segments": RoadSegment.objects.count(),
            "nodes": RoadNode.objects.count()}


# --------------------------------------------------------------------------------------------------- snap


def _snap_points(n: int, rng: np.random.Generator) -> list[tuple[float, float]]:
    """n points up to about 15 m off random road junctions (where photos and pins land)."""
    from city_ops.city.models import RoadNode

    ids = list(RoadNode.objects.order_by("id").values_list("id", flat=True))
    picks = set(rng.choice(ids, size=min(n, len(ids)), replace=False).tolist())
    nodes = [(p.x, p.y) for p in RoadNode.objects.filter(id__in=picks).values_list("geom", flat=True)]
    off = rng.uniform(-1.2e-4, 1.2e-4, size=(len(nodes), 2))
    return [(x + dx, y + dy * 0.5) for (x, y), (dx, dy) in zip(nodes, off)]


def _snap_one_city(points, previous_points: int) -> dict:
    from django.contrib.gis.geos import Point
    from django.db import connection

    from city_ops.city.selectors import segment_nearest

    ours, knn, previous, found = [], [], [], 0
    with connection.cursor() as cur:
        for x, y in points:
            seg, s = _timed(segment_nearest, point=Point(x, y, srid=4326))
            ours.append(s)
            found += seg is not None
            t = time.perf_counter()
            cur.execute("SELECT id FROM city_roadsegment ORDER BY geom <-> ST_SetSRID(ST_MakePoint(%s, %s), 4326) "
                        "LIMIT 1", [x, y])
            cur.fetchone()
            knn.append(time.perf_counter() - t)
        for x, y in points[:previous_points]:
            t = time.perf_counter()
            cur.execute("SELECT id FROM city_roadsegment WHERE ST_DWithin(geom::geography, "
                        "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, 30) ORDER BY ST_Distance(geom::geography, "
                        "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) LIMIT 1", [x, y, x, y])
            cur.fetchone()
            previous.append(time.perf_counter() - t)
    return {**_city(), "segment_nearest": _ms(ours), "snapped": found, "ref_knn_geometry": _ms(knn),
            "ref_previous_geography": _ms(previous) if previous else None}


def snap_bench(*, points: int, reference_db: str | None, previous_points: int) -> dict:
    rng = np.random.default_rng(3)
    out = {"target_p95_ms": 5.0, "city": _snap_one_city(_snap_points(points, rng), previous_points)}
    try:
        with _database(reference_db):
            from city_ops.city.models import RoadSegment

            if reference_db and RoadSegment.objects.exists():
                out["reference_city"] = _snap_one_city(_snap_points(points, rng), previous_points)
            else:
                out["reference_city"] = f"not measured: no city in database {reference_db!r}"
    except Exception as exc:  # an absent reference database is a note, not a failed benchmark
        out["reference_city"] = f"not measured: {type(exc).__name__}: {exc}"
    return out


# ------------------------------------------------------------------------------------------------ network


def network_bench(*, points: int, reference_sources: int) -> dict:
    import networkx as nx

    from city_ops.city.models import CityProfile
    from city_ops.city.network import RoadNetwork, _base_arrays, network_cache_clear, road_network

    profile = CityProfile.objects.first()
    network_cache_clear()
    net, build_s, build_mb = _traced(road_network)
    n_nodes = len(net.node_ids)
    x1, y1, x2, y2 = profile.bounds.extent
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(x1, x2, points), rng.uniform(y1, y2, points)])
    # what the matrix held at once before it went in source chunks: every source's arrays over every junction
    whole_gb = points * n_nodes * 48 / 2**30
    secs, matrix_s, matrix_mb = _traced(lambda: net.matrix(pts)[0])
    g = nx.DiGraph()
    coo = net.graph_time.tocoo()
    g.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist()))
    nodes, _ = net.snap(pts)
    k = min(reference_sources, len(nodes))
    _, ref_s = _timed(lambda: [nx.single_source_dijkstra_path_length(g, int(s), weight="weight") for s in nodes[:k]])
    far = ((x1, y1), (x2, y2))
    path, route_s, route_mb = _traced(net.path, *far)
    (a, b), _ = net.snap(list(far))
    ref_path, ref_route_s = _timed(nx.dijkstra_path_length, g, int(a), int(b), weight="weight")
    base = _base_arrays(profile.network_version)
    closed = frozenset(int(s) for s in rng.choice(net.seg_ids, size=min(50, len(net.seg_ids)), replace=False))
    _, closure_s = _timed(RoadNetwork, **base, metric_srid=profile.metric_srid, closed=closed)
    return {
        **_city(), "points": points, "graph_build_s": round(build_s, 2), "graph_build_peak_mb": build_mb,
        "matrix_s": round(matrix_s, 2), "matrix_peak_mb": matrix_mb,
        "matrix_unchunked_estimate_gb": round(whole_gb, 2), "all_pairs_routable": bool(np.isfinite(secs).all()),
        "ref_networkx_matrix_s": round(ref_s * len(nodes) / k, 2), "ref_networkx_sources_timed": k,
        "route_s": round(route_s, 3), "route_peak_mb": route_mb, "route_km": round(path.length_m / 1000, 2),
        "route_time_s": round(path.time_s, 1), "ref_networkx_route_s": round(ref_route_s, 3),
        "ref_networkx_route_time_s": round(ref_path, 1),
        "closure_50_segments_s": round(closure_s, 2), "ref_cold_build_s": round(build_s, 2),
    }


# -------------------------------------------------------------------------------------------------- flood


def _flood_tick_rows(series: list, at: dt.datetime) -> list[tuple]:
    """One calm reading per series at `at`: every sensor of the city reporting in the same minute (the worst
    tick; sensors on a longer interval report early, which no check minds)."""
    calm = {"depth": 0.0, "rainfall": 0.0, "level": 0.2}
    return [(s.pk, at, calm.get(s.parameter, 0.0)) for s in series]


def _flood_tick_sql(fn) -> tuple[float, float, int]:
    """Wall, CPU seconds and the SQL statements of one call (psycopg cursors, raw ones included)."""
    import psycopg

    count = [0]
    execute = psycopg.Cursor.execute

    def counted(self, *args, **kwargs):
        count[0] += 1
        return execute(self, *args, **kwargs)

    psycopg.Cursor.execute = counted
    try:
        c = time.process_time()
        _, wall = _timed(fn)
        return wall, time.process_time() - c, count[0]
    finally:
        psycopg.Cursor.execute = execute


def flood_bench(*, ticks: int) -> dict:
    import os

    from django.db.models import Max
    from django.utils import timezone

    from agents.flood.models import Sensor, Series
    from agents.flood.services import evaluation_run
    from agents.flood.services.ingest import readings_store

    series = list(Series.objects.only("pk", "parameter"))
    if not series:
        return {"skipped": "not measured: no flood sensors (load the synthetic city with its flood demo)"}
    # ticks five minutes apart (the depth sensors' interval) after the newest reading stored
    latest = max(Series.objects.aggregate(t=Max("last_time"))["t"] or timezone.now(), timezone.now())
    step = dt.timedelta(minutes=5)
    readings_store(rows=_flood_tick_rows(series, latest.replace(microsecond=0) + step))
    _, first_s = _timed(evaluation_run)  # a fresh worker: reads the context back, no carry
    walls, cpus, sql = [], [], []
    for i in range(ticks):
        readings_store(rows=_flood_tick_rows(series, latest.replace(microsecond=0) + (i + 2) * step))
        wall, cpu, n = _flood_tick_sql(evaluation_run)
        walls.append(wall)
        cpus.append(cpu)
        sql.append(n)
    return {"sensors": Sensor.objects.count(), "series": len(series), "target_ms": 500,
            "first_evaluation_s": round(first_s, 2), "tick": _ms(walls),
            "tick_cpu_ms": _ms(cpus), "tick_cpu_ms_best": round(min(cpus) * 1000, 1), "tick_sql": max(sql),
            "load_avg": round(os.getloadavg()[0], 1)}


# ---------------------------------------------------------------------------------------------------- bus


def _weekday() -> dt.date:
    """The next weekday after today: the feeds' busiest service."""
    from city_ops.core.timeutil import city_today

    day = city_today() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _cpu_timed(fn, *args, **kwargs):
    """Result, wall seconds and CPU seconds of this process (the 2 cores are shared: wall alone misleads)."""
    c0 = time.process_time()
    out, secs = _timed(fn, *args, **kwargs)
    return out, secs, time.process_time() - c0


def _rss_peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def bus_bench() -> dict:
    """`plan_create` twice: cold (this process builds the road graph, as a fresh worker does) and warm (a
    worker that has it), then the first-fit reference on the same trips and deadhead."""
    from agents.bus.domain.blocking import blocks_first_fit
    from agents.bus.models import Feed
    from agents.bus.selectors import feed_frames_clear
    from agents.bus.services.plans import _context, plan_create

    feed = Feed.objects.order_by("-imported_at").first()
    if feed is None:
        return {"skipped": "not measured: no bus feed"}
    day = _weekday()
    feed_frames_clear()
    plan, cold_s, cold_cpu = _cpu_timed(plan_create, feed=feed, service_date=day, reason="bench/city_scale.py")
    cold_rss = _rss_peak_mb()
    feed_frames_clear()
    warm, warm_s, warm_cpu = _cpu_timed(plan_create, feed=feed, service_date=day, reason="bench/city_scale.py warm")
    ctx = _context(feed=feed, service_date=day, use_depot=plan.depot_id is not None)
    greedy, greedy_s, greedy_cpu = _cpu_timed(blocks_first_fit, trips=ctx.trips, layover_s=plan.layover_s,
                                              deadhead=ctx.deadhead)
    return {"date": day.isoformat(), "routes": feed.routes.count(), "trips": plan.trips,
            "plan_s": round(cold_s, 1), "plan_cpu_s": round(cold_cpu, 1), "plan_rss_peak_mb": cold_rss,
            "warm_plan_s": round(warm_s, 1), "warm_plan_cpu_s": round(warm_cpu, 1), "rss_peak_mb": _rss_peak_mb(),
            "solve_s": plan.solve_s, "warm_solve_s": warm.solve_s, "vehicles": plan.vehicles,
            "lower_bound": plan.lower_bound, "deadhead_km": plan.deadhead_km, "baseline_rule": plan.baseline_rule,
            "baseline_vehicles": plan.baseline_vehicles, "load_avg": round(os.getloadavg()[0], 1),
            "target_s": 60, "target_mb": 2048, "ref_first_fit_s": round(greedy_s, 2),
            "ref_first_fit_cpu_s": round(greedy_cpu, 2), "ref_first_fit_vehicles": len(greedy)}


def live_bench(*, vehicles: int, ticks: int) -> dict:
    """Live positions: `ticks` snapshots of `vehicles` buses 30 s apart, each stored as the API stores it
    (`positions_ingest`, no evaluation) and evaluated as the realtime task does (`positions_evaluate` of the
    feed's fresh vehicle states): the first tick builds the route patterns (once per worker and feed)."""
    from django.utils import timezone

    from agents.bus.domain.synthetic import positions_synthetic
    from agents.bus.models import Feed, HeadwaySnapshot, HeadwayWarning, VehiclePosition, VehicleState
    from agents.bus.selectors import day_trips, feed_tz
    from agents.bus.services.realtime import patterns_for, positions_evaluate, positions_ingest
    feed = Feed.objects.order_by("-imported_at").first()
    if feed is None:
        return {"skipped": "not measured: no bus feed"}
    day = _weekday()
    trips = day_trips(feed=feed, service_date=day)
    (patterns, cold_s) = _timed(patterns_for, feed=feed)
    rng = np.random.default_rng(18)
    began = timezone.now()
    store, evaluate, cpu, summary = [], [], [], {}
    try:
        for tick in range(ticks):
            at = dt.datetime.combine(day, dt.time(8), tzinfo=feed_tz(feed=feed)) + dt.timedelta(seconds=30 * tick)
            data = json.dumps(positions_synthetic(patterns=patterns, trips=trips, at_s=8 * 3600 + 30 * tick,
                                                  epoch=int(at.timestamp()), vehicles=vehicles, rng=rng,
                                                  prefix="bench-")).encode()
            _res, secs, store_cpu = _cpu_timed(positions_ingest, data=data, feed=feed, source="bench", evaluate=False)
            store.append(secs)
            summary, secs, evaluate_cpu = _cpu_timed(positions_evaluate, feed=feed)
            evaluate.append(secs)
            cpu.append((store_cpu, evaluate_cpu))
        open_warnings = HeadwayWarning.objects.filter(feed=feed, status=HeadwayWarning.Status.OPEN).count()
    finally:  # the bench's buses are not the city's: leave no trace of them
        VehiclePosition.objects.filter(source="bench").delete()
        VehicleState.objects.filter(feed=feed, vehicle_id__startswith="bench-").delete()
        HeadwayWarning.objects.filter(feed=feed, follower__startswith="bench-").delete()
        HeadwaySnapshot.objects.filter(feed=feed, evaluated_at__gte=began).delete()
    total = [a + b for a, b in zip(store, evaluate)]
    return {"vehicles": vehicles, "placed": summary.get("placed"), "routes": len(summary.get("routes", [])),
            "ticks": ticks, "patterns_build_s": round(cold_s, 2), "store": _ms(store), "evaluate": _ms(evaluate),
            "tick": _ms(total), "tick_cpu_ms_p50": round(statistics.median(a + b for a, b in cpu) * 1000, 1),
            # The API stores (a web worker), the realtime worker evaluates: each process's own share.
            "store_cpu_ms_p50": round(statistics.median(a for a, _b in cpu) * 1000, 1),
            "evaluate_cpu_ms_p50": round(statistics.median(b for _a, b in cpu) * 1000, 1),
            "open_warnings": open_warnings, "rss_peak_mb": _rss_peak_mb(),
            "load_avg": round(os.getloadavg()[0], 1), "target_ms": 2000}


# --------------------------------------------------------------------------------------------- sanitation


def sanitation_bench(*, bins: int, trucks: int, seconds: float) -> dict:
    from agents.sanitation.domain.choice import BinChoice
    from agents.sanitation.domain.planner import next_service_day, problem_solve, summary_kpis
    from agents.sanitation.models import Bin, Truck
    from agents.sanitation.plan_selectors import network_for, problem_build
    from agents.sanitation.vrp.instance import InstanceError
    from city_ops.city.models import District
    from city_ops.core.timeutil import city_today

    district = District.objects.order_by("code").first()
    fleet = list(Truck.objects.order_by("code")[:trucks])
    if district is None or not fleet:
        return {"skipped": "not measured: no districts or no trucks"}
    centre = district.geom.centroid
    from django.contrib.gis.db.models.functions import Distance

    picked = list(Bin.objects.filter(active=True, geom__within=district.geom)
                  .annotate(d=Distance("geom", centre)).order_by("d")[:bins])
    # Every bin optional with a prize: ten trucks cannot empty 2,000 bins in a shift, so the plan picks the
    # fullest it can reach, as the agent's own plan does with its optional bins.
    choices = [BinChoice(id=f"bin:{b.pk}", required=False, prize=3000, demand_l=round(0.9 * b.capacity_l),
                         demand_kg=round(0.09 * b.capacity_l), level=0.9, reason="bench")
               for b in picked]
    date = next_service_day(city_today())
    network, network_s = _timed(network_for, date)  # cached per worker process: not part of a plan's time
    cpu = time.process_time()
    problem, build_s = _timed(problem_build, date=date, trucks=fleet, choices=choices, network=network)
    head = {"district": district.code, "bins": len(picked), "trucks": len(fleet), "target_s": 120,
            "network_s": round(network_s, 1), "build_s": round(build_s, 1),
            "build_cpu_s": round(time.process_time() - cpu, 1)}
    try:
        solved, solve_s = _timed(problem_solve, problem=problem, time_limit=seconds)
    except InstanceError as exc:  # a limit of the model at this size is a finding, not a crash
        return {**head, "skipped": f"not measured: the solver refused the instance: {exc}"}
    served = sum(sum(1 for v in r.visits if str(v).startswith("bin:")) for r in solved.routes)
    return {**head, "solve_s": round(solve_s, 1), "total_s": round(build_s + solve_s, 1),
            "cpu_s": round(time.process_time() - cpu, 1), "peak_rss_mb": _peak_rss_mb(),
            "load_avg": round(os.getloadavg()[0], 1), "routes": len(solved.routes), "bins_served": served,
            "km": summary_kpis(problem, solved)["km"],
            "violations": len(solved.violations), "solver_time_limit_s": seconds}


def _peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def sanitation_city_bench(*, workers: int, bins: int, seconds: float, redis_db: int, wait_s: float) -> dict:
    """The city planned by district on `workers` planning workers of this bench's own."""
    import subprocess
    from urllib.parse import urlsplit, urlunsplit

    from celery import current_app
    from django.conf import settings

    from agents.sanitation.domain.planner import next_service_day
    from agents.sanitation.models import CityPlan
    from agents.sanitation.services.city_plans import city_plan_start
    from city_ops.core.timeutil import city_today

    parts = urlsplit(settings.CELERY_BROKER_URL)
    broker = urlunsplit(parts._replace(path=f"/{redis_db}"))
    current_app.conf.broker_url = broker  # before this process's first message: its producer uses it
    env = {**os.environ, "REDIS_URL": broker, "DATABASE_URL": _database_url()}
    logs = [open(f"/tmp/city-scale-planning-{i}.log", "w") for i in range(workers)]
    procs = [subprocess.Popen([sys.executable, "-m", "celery", "-A", "city_ops", "worker", "-P", "solo", "-Q",
                               "planning", "-n", f"bench-{i}-{os.getpid()}@%h", "--without-gossip",
                               "--without-mingle", "--loglevel=INFO"], env=env, stdout=log, stderr=log, cwd=ROOT)
             for i, log in enumerate(logs)]
    try:
        started, load0 = time.perf_counter(), os.getloadavg()[0]
        plan = city_plan_start(date=next_service_day(city_today()), time_limit=seconds, max_bins=bins,
                               assume_level=0.9)
        while time.perf_counter() - started < wait_s and plan.status != CityPlan.Status.DONE:
            time.sleep(2)
            plan.refresh_from_db()
        wall = time.perf_counter() - started
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
    districts = [{"district": p.district.code, "status": p.status, "trucks_given": len(p.truck_ids),
                  **{k: p.kpis.get(k) for k in ("bins_offered", "bins_visited", "trucks_used", "km", "build_s",
                                                 "solve_s", "wall_s", "cpu_s", "peak_rss_mb", "feasible")},
                  "error": p.error[:200]}
                 for p in plan.districts.select_related("district").order_by("district__code")]
    return {"city_plan": plan.pk, "status": plan.status, "workers": workers, "bins_per_district_max": bins,
            "solver_time_limit_s": seconds, "wall_s": round(wall, 1), "load_avg": [round(load0, 1),
            round(os.getloadavg()[0], 1)], "summed": plan.kpis, "districts": districts}


def _database_url() -> str:
    """The database this bench runs on, for the workers it starts."""
    from django.db import connection

    s = connection.settings_dict
    return f"postgis://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


# ------------------------------------------------------------------------------------------------- output


def _print(out: dict) -> None:
    def row(label, value, ref=""):
        print(f"  {label:34s} {value:>22s}   {ref}")

    print(f"{out['city']['name']}: {out['city']['segments']:,} segments, {out['city']['nodes']:,} junctions")
    for part, res in out["parts"].items():
        print(f"{part}:")
        if isinstance(res, str) or "skipped" in res:
            print(f"  {res if isinstance(res, str) else res['skipped']}")
            if not isinstance(res, str) and "build_s" in res:
                print(f"  (built in {res['build_s']} s: {res['bins']} bins, {res['trucks']} trucks)")
            continue
        if part == "snap":
            for name in ("city", "reference_city"):
                c = res[name]
                if isinstance(c, str):
                    row(name, "", c)
                    continue
                prev = c["ref_previous_geography"]
                row(f"{name} ({c['segments']:,} segments)", f"p95 {c['segment_nearest']['p95_ms']} ms",
                    f"KNN floor p95 {c['ref_knn_geometry']['p95_ms']} ms; previous geography p95 "
                    f"{prev['p95_ms'] if prev else '-'} ms (target {res['target_p95_ms']} ms)")
        elif part == "network":
            row("graph build", f"{res['graph_build_s']} s", f"{res['graph_build_peak_mb']} MB peak")
            row(f"{res['points']} x {res['points']} matrix", f"{res['matrix_s']} s",
                f"networkx {res['ref_networkx_matrix_s']} s (scaled from {res['ref_networkx_sources_timed']} "
                f"sources); {res['matrix_peak_mb']} MB peak (unchunked it was "
                f"~{res['matrix_unchunked_estimate_gb']} GB)")
            row(f"route corner to corner ({res['route_km']} km)", f"{res['route_s']} s",
                f"networkx {res['ref_networkx_route_s']} s; {res['route_peak_mb']} MB peak")
            row("closure of 50 segments applied", f"{res['closure_50_segments_s']} s",
                f"cold build {res['ref_cold_build_s']} s")
        elif part == "flood":
            row(f"monitor tick, {res['sensors']} sensors", f"p50 {res['tick']['p50_ms']} ms",
                f"p95 {res['tick']['p95_ms']} ms, cpu p50 {res['tick_cpu_ms']['p50_ms']} ms, {res['tick_sql']} SQL "
                f"statements (target {res['target_ms']} ms); first evaluation {res['first_evaluation_s']} s; "
                f"load average {res['load_avg']}")
        elif part == "bus":
            row(f"plan_buses, {res['trips']} trips", f"{res['plan_s']} s",
                f"cpu {res['plan_cpu_s']} s, cold (graph built); warm {res['warm_plan_s']} s, cpu "
                f"{res['warm_plan_cpu_s']} s (solver {res['warm_solve_s']} s); peak RSS {res['plan_rss_peak_mb']} MB; "
                f"{res['vehicles']} buses (bound {res['lower_bound']}), {res['deadhead_km']} km empty; first-fit "
                f"reference {res['ref_first_fit_s']} s, {res['ref_first_fit_vehicles']} buses; load {res['load_avg']} "
                f"(target {res['target_s']} s, {res['target_mb']} MB)")
        elif part == "live":
            row(f"live positions, {res['vehicles']} buses", f"p50 {res['tick']['p50_ms']} ms",
                f"p95 {res['tick']['p95_ms']} ms (store p50 {res['store']['p50_ms']} ms + evaluate p50 "
                f"{res['evaluate']['p50_ms']} ms), cpu {res['tick_cpu_ms_p50']} ms (store {res['store_cpu_ms_p50']} + "
                f"evaluate {res['evaluate_cpu_ms_p50']}); {res['placed']} placed on "
                f"{res['routes']} route directions, {res['open_warnings']} open warnings; patterns built once in "
                f"{res['patterns_build_s']} s; load {res['load_avg']} (target {res['target_ms']} ms)")
        elif part == "sanitation":
            row(f"district {res['district']}: {res['bins']} bins, {res['trucks']} trucks", f"{res['total_s']} s",
                f"build {res['build_s']} s + solve {res['solve_s']} s, cpu {res['cpu_s']} s, "
                f"{res['peak_rss_mb']} MB RSS, load {res['load_avg']}; {res['bins_served']} bins on "
                f"{res['routes']} routes, {res['km']} km (target {res['target_s']} s; road network "
                f"{res['network_s']} s once per worker)")
        elif part == "sanitation_city":
            k = res["summed"]
            row(f"city by district, {res['workers']} workers", f"{res['wall_s']} s",
                f"{k.get('districts')} districts: {k.get('km')} km, {k.get('trucks_used')} trucks, "
                f"{k.get('bins_visited')} bins, district CPU summed {k.get('cpu_s')} s, load {res['load_avg']}")
            for d in res["districts"]:
                row(f"  {d['district']} ({d['trucks_given']} trucks)", f"{d['wall_s']} s",
                    f"{d['bins_visited']}/{d['bins_offered']} bins, {d['trucks_used']} trucks, {d['km']} km, "
                    f"build {d['build_s']} s, cpu {d['cpu_s']} s, {d['peak_rss_mb']} MB {d['error']}")
        elif part == "photos":
            _photos_print(res, row)


def _photos_print(res: dict, row) -> None:
    e = res["engine_alone"]
    row("engine alone", f"{e['images_per_s']} img/s", f"{e['cpu_ms_per_image']} ms CPU/img, {e['frames']} frames")
    for name in ("city", "reference_city"):
        c = res[name]
        if isinstance(c, str):
            row(name, "", c)
            continue
        row(f"{name} ({c['segments']:,} segments)", f"{c['images_per_s']} img/s",
            f"{c['processed']} frames, {c['drive_km']} km in {c['wall_s']} s wall, {c['cpu_s']} s CPU, "
            f"db {c['db_server_cpu_s']} s CPU; {c['queries_per_image']} queries/img; {c['defects_new']} defects, "
            f"{c['sightings']} sightings")
        for stage, t in c["stages_ms_per_image"].items():
            row(f"  {stage}", f"{t['wall_ms']} ms/img", f"cpu {t['cpu_ms']} ms" if "cpu_ms" in t else "")
    print(f"  ({res['frames_source']} frames; vision queue: {res['vision_queue']}; load {res['load_avg_1m']}, "
          f"peak RSS {res['peak_rss_mb']} MB)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true", help="small sizes everywhere (a smoke test)")
    ap.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    ap.add_argument("--reference-db", default="cityops", help="database of the demo-size city to compare snapping")
    ap.add_argument("--snap-points", type=int, default=200)
    ap.add_argument("--previous-points", type=int, default=10, help="the unindexed query is slow: time a few")
    ap.add_argument("--points", type=int, default=2000, help="matrix size")
    ap.add_argument("--reference-sources", type=int, default=20)
    ap.add_argument("--ticks", type=int, default=5)
    ap.add_argument("--vehicles", type=int, default=2000, help="buses in each live snapshot")
    ap.add_argument("--live-ticks", type=int, default=5, help="live snapshots, 30 s apart")
    ap.add_argument("--district-bins", type=int, default=2000)
    ap.add_argument("--trucks", type=int, default=10)
    ap.add_argument("--vrp-seconds", type=float, default=60.0)
    ap.add_argument("--photo-frames", type=int, default=1000)
    ap.add_argument("--photo-reference-frames", type=int, default=200,
                    help="frames on the reference city and for the bare engine")
    ap.add_argument("--planning-workers", type=int, default=2, help="sanitation_city: workers to start")
    ap.add_argument("--city-bins", type=int, default=2000, help="sanitation_city: most bins per district")
    ap.add_argument("--bench-redis-db", type=int, default=7, help="sanitation_city: the broker's Redis database")
    ap.add_argument("--city-wait", type=float, default=600.0, help="sanitation_city: most seconds to wait")
    args = ap.parse_args()
    if args.quick:
        args.snap_points, args.previous_points, args.points, args.reference_sources = 20, 2, 50, 2
        args.ticks, args.district_bins, args.trucks, args.vrp_seconds = 2, 40, 2, 2.0
        args.photo_frames, args.photo_reference_frames = 16, 8
        args.city_bins = 40
        args.vehicles, args.live_ticks = 200, 2
    django_setup()
    from city_ops.city.models import RoadSegment

    if not RoadSegment.objects.exists():
        print("no city loaded: run manage.py load_demo_city --synthetic --scale 250 first", file=sys.stderr)
        return 1
    only = [p for p in args.only.split(",") if p]
    runs = {
        "snap": lambda: snap_bench(points=args.snap_points, reference_db=args.reference_db,
                                   previous_points=args.previous_points),
        "network": lambda: network_bench(points=args.points, reference_sources=args.reference_sources),
        "flood": lambda: flood_bench(ticks=args.ticks),
        "bus": bus_bench,
        "live": lambda: live_bench(vehicles=args.vehicles, ticks=args.live_ticks),
        "sanitation": lambda: sanitation_bench(bins=args.district_bins, trucks=args.trucks, seconds=args.vrp_seconds),
        "photos": lambda: photos_bench(frames=args.photo_frames, reference_frames=args.photo_reference_frames,
                                       reference_db=args.reference_db, database=_database),
        # It points this process's Celery at a broker database of its own, which only holds before any
        # other part has sent a message: it runs alone.
        "sanitation_city": (lambda: sanitation_city_bench(workers=args.planning_workers, bins=args.city_bins,
                                                          seconds=args.vrp_seconds, redis_db=args.bench_redis_db,
                                                          wait_s=args.city_wait)) if only == ["sanitation_city"]
        else (lambda: {"skipped": "not measured: run it alone (--only sanitation_city)"}),
    }
    out = {"city": _city(), "parts": {}}
    for part in PARTS:
        if part not in only:
            out["parts"][part] = "not measured: not asked for (--only)"
            continue
        print(f"{part} ...", file=sys.stderr)
        out["parts"][part] = runs[part]()
    if args.json:
        print(json.dumps(out))
    else:
        _print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
