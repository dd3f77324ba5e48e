"""Flood agent benchmark: ingest throughput, evaluation time and reading-commit-to-alert latency, each next to
a reference measured in the same run.

    .venv/bin/python bench/flood.py [--sensors 1000] [--minutes 1440] [--trials 20] [--json] [--drop]
                                    [--only ingest|file|evaluation|latency] [--skip PART] [--ticks 5]

- Ingest (1,000 sensors x 1 day of minute data = 1.44 M readings): the project's idempotent path
  (`readings_store`: binary COPY into a staging table, INSERT ... ON CONFLICT DO NOTHING, latest value per
  series), the same readings again (all duplicates), the ORM's `bulk_create(ignore_conflicts=True)`, and the
  floors: a plain COPY into the staging table, and PostgreSQL's own COPY + INSERT ... ON CONFLICT into a
  bare table with only the primary key. Also the whole file path (CSV bytes parsed by the core, resolved and
  stored) for a tenth of the sensors.
- Evaluation: the first evaluation of a day of history, then the live agent's evaluation of all sensors
  after one new reading each (the steady state of the every-minute beat): `tick_ms` as a worker runs it
  when it kept its previous run (only the new readings are read), `cold_tick_ms` as a fresh worker does
  (reading the context back: FLOOD_CONTEXT_HOURS, 24 h the exact default, and a shorter one), next to the
  reference of the database read of that context alone. Wall and CPU time (this process's) of the best
  tick: on a shared machine the wall time also counts waiting for a core.
- Latency: a real Celery worker (subprocess, realtime queue); each trial ingests readings that flood one
  underpass and times the commit to the alert row appearing, p50/p95 over the trials.

Everything runs in its own database (`<name>_bench_flood`, created and migrated on first use, kept for the
next run unless --drop) and its own Redis database, so the demo's data and workers are never touched.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
T0 = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _env_file() -> dict[str, str]:
    values = {}
    path = ROOT / ".run" / "env"
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


def bench_env() -> dict[str, str]:
    """DATABASE_URL and REDIS_URL of the benchmark's own database and Redis database."""
    base = {**_env_file(), **os.environ}
    url = base.get("DATABASE_URL", "postgis://cityops@127.0.0.1:55432/cityops")
    head, name = url.rsplit("/", 1)
    redis = base.get("REDIS_URL", "redis://127.0.0.1:56379/0").rsplit("/", 1)[0] + "/8"
    name = name.split("?")[0]
    name = name if name.endswith("_bench_flood") else f"{name}_bench_flood"
    return {"DATABASE_URL": f"{head}/{name}", "REDIS_URL": redis,
            "DJANGO_SETTINGS_MODULE": "city_ops.settings.local"}


def database_ensure(url: str, *, drop: bool = False) -> None:
    """Create the benchmark database (with PostGIS) unless it exists."""
    import psycopg

    head, name = url.rsplit("/", 1)
    admin = head.replace("postgis://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and drop:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def django_ready(args) -> None:
    env = bench_env()
    database_ensure(env["DATABASE_URL"], drop=args.drop)
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    t = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"bench database ready ({time.perf_counter() - t:.1f} s)", file=sys.stderr)


# --------------------------------------------------------------------------------------------- world


def world_build(*, sensors: int, zones: int, minutes: int, step_min: int, seed: int = 3):
    """`zones` zones in a grid, each with depth sensors inside and rain/level gauges assigned; returns the
    series ids by kind and the readings rows (series id, time, value) of `minutes` of data every
    `step_min` minutes (calm: dry roads, light rain, a gentle tide)."""
    import math

    from django.contrib.gis.geos import Point, Polygon
    from django.db import connection

    from agents.flood.models import Alert, AlertEvent, FloodZone, Sensor, Series, TrackerState

    with connection.cursor() as cur:
        cur.execute("TRUNCATE agent_flood_reading")
    AlertEvent.objects.all().delete()
    Alert.objects.all().delete()
    Series.objects.all().delete()
    Sensor.objects.all().delete()
    FloodZone.objects.all().delete()
    TrackerState.objects.all().delete()
    side = math.ceil(math.sqrt(zones))
    zone_objs = []
    for i in range(zones):
        lon, lat = 24.90 + (i % side) * 0.004, 60.15 + (i // side) * 0.002
        zone_objs.append(FloodZone(code=f"Z{i:04d}", name=f"Bench zone {i}", kind="underpass",
                                   geom=Polygon.from_bbox((lon, lat, lon + 0.001, lat + 0.001))))
    FloodZone.objects.bulk_create(zone_objs)
    zone_objs = list(FloodZone.objects.order_by("code"))
    sensor_objs, kinds = [], []
    for i in range(sensors):
        zone = zone_objs[i % zones]
        kind = ("depth", "depth", "depth", "depth", "rain", "rain", "rain", "sea", "sea", "sea")[(i // zones) % 10]
        x0, y0, _, _ = zone.geom.extent
        sensor_objs.append(Sensor(code=f"S{i:05d}", name=f"bench {kind} {i}", kind=kind,
                                  geom=Point(x0 + 0.0005 + 1e-6 * (i // zones), y0 + 0.0005, srid=4326),
                                  expected_interval_s=step_min * 60, metadata={"bench": True}))
        kinds.append(kind)
    Sensor.objects.bulk_create(sensor_objs)
    sensor_objs = list(Sensor.objects.order_by("code"))
    parameter = {"depth": "depth", "rain": "rainfall", "sea": "level"}
    unit = {"depth": "cm", "rainfall": "mm", "level": "m"}
    series_objs = []
    for sensor, kind in zip(sensor_objs, kinds):
        p = parameter[kind]
        series_objs.append(Series(sensor=sensor, parameter=p, unit=unit[p],
                                  **({"warning_level": 2.0, "guaranteed_level": 3.0} if p == "level" else {})))
    Series.objects.bulk_create(series_objs)
    series = list(Series.objects.select_related("sensor").order_by("sensor__code"))
    rng = random.Random(seed)
    times = [T0 + dt.timedelta(minutes=m) for m in range(0, minutes, step_min)]
    rows = []
    for s in series:
        phase = rng.random() * 6.28
        for k, t in enumerate(times):
            if s.parameter == "depth":
                value = 0.0
            elif s.parameter == "rainfall":
                value = rng.choice((0.0,) * 20 + (0.1, 0.2))
            else:
                value = round(0.2 + 0.1 * math.sin(phase + k * step_min / 60 / 12.4 * 6.28) + rng.gauss(0, 0.003), 4)
            rows.append((s.pk, t, value))
    return series, rows, times


# --------------------------------------------------------------------------------------------- ingest


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def ingest_bench(rows, series) -> dict:
    from django.db import connection, transaction

    from agents.flood.models import Reading
    from agents.flood.services.ingest import readings_copy_stage, readings_store

    n = len(rows)

    def truncate():
        with connection.cursor() as cur:
            cur.execute("TRUNCATE agent_flood_reading")

    def floor_copy():
        with transaction.atomic():
            readings_copy_stage(rows=rows)

    def pg_reference():
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS bench_bare_reading")
            cur.execute("CREATE TABLE bench_bare_reading (series_id bigint NOT NULL, time timestamptz NOT NULL, "
                        "value float8 NOT NULL, PRIMARY KEY (series_id, time))")
        t = time.perf_counter()
        with transaction.atomic():
            readings_copy_stage(rows=rows)
            with connection.cursor() as cur:
                cur.execute("INSERT INTO bench_bare_reading SELECT series_id, time, value FROM flood_reading_stage "
                            "ON CONFLICT DO NOTHING")
        elapsed = time.perf_counter() - t
        with connection.cursor() as cur:
            cur.execute("DROP TABLE bench_bare_reading")
        return elapsed

    def orm():
        Reading.objects.bulk_create([Reading(series_id=s, time=t, value=v) for s, t, v in rows], batch_size=20000,
                                    ignore_conflicts=True)

    out = {"readings": n}
    truncate()
    out["floor_plain_copy_per_s"] = round(n / _timed(floor_copy))
    out["ref_pg_copy_on_conflict_per_s"] = round(n / pg_reference())
    truncate()
    inserted = []
    out["copy_path_per_s"] = round(n / _timed(lambda: inserted.append(readings_store(rows=rows))))
    out["copy_path_inserted"] = inserted[0]
    out["copy_path_duplicates_per_s"] = round(n / _timed(lambda: inserted.append(readings_store(rows=rows))))
    out["copy_path_duplicates_inserted"] = inserted[1]
    truncate()
    out["orm_bulk_create_per_s"] = round(n / _timed(orm))
    truncate()
    out["copy_path_over_orm"] = round(out["copy_path_per_s"] / out["orm_bulk_create_per_s"], 2)
    out["copy_path_over_pg_reference"] = round(out["copy_path_per_s"] / out["ref_pg_copy_on_conflict_per_s"], 2)
    return out


def file_bench(rows, series) -> dict:
    """The whole path from CSV bytes: core parse, sensor resolution, store, for a tenth of the sensors."""
    from django.db import connection

    from agents.flood.services import readings_ingest

    code = {s.pk: s.sensor.code for s in series}
    param = {s.pk: s.parameter for s in series}
    keep = {s.pk for s in series[: max(1, len(series) // 10)]}
    lines = ["sensor,parameter,time,value"]
    lines += [f"{code[s]},{param[s]},{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{v}" for s, t, v in rows if s in keep]
    data = ("\n".join(lines) + "\n").encode()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE agent_flood_reading")
    t = time.perf_counter()
    result = readings_ingest(data=data, evaluate=False)
    elapsed = time.perf_counter() - t
    from agents.flood.domain import readings_parse

    t = time.perf_counter()
    readings_parse(data=data)
    parse = time.perf_counter() - t
    return {"file_readings": len(lines) - 1, "file_path_per_s": round((len(lines) - 1) / elapsed),
            "ref_core_parse_only_per_s": round((len(lines) - 1) / parse), "file_accepted": result.accepted}


# --------------------------------------------------------------------------------------------- evaluation


def evaluation_bench(*, series, rows, times, step_min: int, context_hours: list[float], ticks: int = 5) -> dict:
    """The first evaluation (a day of history, every reading evaluated), then steady-state ticks: one new
    reading per sensor, then the live evaluation, as a worker that kept its previous run and as a fresh one,
    for each context length."""
    import gc

    from django.conf import settings
    from django.db import connection

    from agents.flood.selectors import context_window, evaluation_setup, series_window
    from agents.flood.services import evaluation as evaluation_service
    from agents.flood.services import evaluation_run
    from agents.flood.services.ingest import readings_store

    with connection.cursor() as cur:
        cur.execute("TRUNCATE agent_flood_reading")
    readings_store(rows=rows)
    evaluation_service._kept.clear()
    t = time.perf_counter()
    first = evaluation_run()
    out = {"sensors": len(series), "step_min": step_min, "first_evaluation_s": round(time.perf_counter() - t, 2),
           "first_evaluation_readings": first.readings_loaded, "ticks": {}}
    calm = {"depth": 0.0, "rainfall": 0.0, "level": 0.2}
    state = {"at": times[-1]}

    def tick(*, fresh_worker: bool):
        state["at"] += dt.timedelta(minutes=step_min)
        readings_store(rows=[(s.pk, state["at"], calm[s.parameter]) for s in series])
        if fresh_worker:
            evaluation_service._kept.clear()  # as a worker that just started (or found a backfill) runs it
        gc.collect()
        t, c = time.perf_counter(), time.process_time()
        result = evaluation_run()
        return time.perf_counter() - t, time.process_time() - c, result

    def best(results) -> dict:
        wall, cpu, result = min(results, key=lambda r: r[0])
        if len({r[2].carried for r in results}) != 1:
            raise RuntimeError("ticks of one kind went different ways (kept run / context read back)")
        return {"tick_ms": round(wall * 1000, 1), "tick_cpu_ms": round(cpu * 1000, 1),
                "tick_ms_all": [round(r[0] * 1000, 1) for r in results],
                "carried": result.carried, "readings_loaded": result.readings_loaded,
                "readings_new": result.readings_new, "parts_ms": {k: round(v * 1000, 1) for k, v in result.seconds.items()}}

    for hours in context_hours:
        settings.FLOOD_CONTEXT_HOURS = hours
        tick(fresh_worker=True)  # a run that keeps its carry, for the steady state to go on from
        warm = best([tick(fresh_worker=False) for _ in range(ticks)])
        cold = best([tick(fresh_worker=True) for _ in range(ticks)])
        setup = evaluation_setup()
        t = time.perf_counter()
        context = series_window(setup=setup, start=state["at"] - dt.timedelta(minutes=step_min) - context_window())
        read_s = time.perf_counter() - t
        out["ticks"][f"{hours:g}h"] = {
            **warm, **{f"cold_{k}": v for k, v in cold.items()},
            "ref_context_read_ms": round(read_s * 1000, 1), "ref_context_readings": sum(len(c.times_ns) for c in context),
            "tick_over_ref_context_read": round(warm["tick_ms"] / (read_s * 1000), 2),
        }
    settings.FLOOD_CONTEXT_HOURS = 24
    return out


# --------------------------------------------------------------------------------------------- latency


def latency_bench(*, series, trials: int, step_min: int, last: dt.datetime) -> dict:
    """Commit of a flooding reading to its alert row, through a real worker on the realtime queue."""
    from celery import current_app

    from agents.flood.models import Alert
    from agents.flood.services import evaluation_run
    from agents.runtime.models import AgentRun

    AgentRun.objects.filter(agent="flood").delete()
    evaluation_run()  # the live state the worker resumes (a first run evaluates the whole day it reads)
    env = {**os.environ, **bench_env(), "PYTHONUNBUFFERED": "1"}
    log = ROOT / ".run" / "bench-flood-worker.log"
    log.parent.mkdir(exist_ok=True)
    with current_app.connection_for_write() as conn:
        for q in ("default", "realtime"):
            conn.default_channel.queue_purge(q)
    log_file = open(log, "w")  # noqa: SIM115  (the worker writes to it until it stops, below)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "city_ops", "worker", "-P", "solo", "-Q", "realtime",
         "-n", f"bench-flood-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start: {log.read_text()[-2000:]}")
            if worker.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            time.sleep(0.2)
        from django.db import transaction

        from agents.flood.services.ingest import evaluation_request, readings_store

        depth = [s for s in series if s.parameter == "depth"]
        calm = {"depth": 0.0, "rainfall": 0.0, "level": 0.2}
        latencies = []
        at = last
        for trial in range(trials):
            flooded = depth[trial % len(depth)]  # a different zone each trial
            at = at + dt.timedelta(minutes=step_min)
            # the whole city reports (as a gateway's batch would), one underpass floods past closure depth
            rows = [(s.pk, at, calm[s.parameter]) for s in series if s.pk != flooded.pk]
            rows += [(flooded.pk, at + dt.timedelta(seconds=10 * k), v) for k, v in enumerate((9.0, 18.0, 26.0, 27.0))]
            marks = []
            with transaction.atomic():
                readings_store(rows=rows)
                transaction.on_commit(lambda marks=marks: marks.append(time.perf_counter()))  # first after commit
                evaluation_request(reason="bench")
            alert = Alert.objects.filter(sensor=flooded.sensor, hazard="waterlogging", status="open")
            while not alert.exists():
                if time.perf_counter() - marks[0] > 60:
                    raise RuntimeError(f"no alert 60 s after the commit (trial {trial}); see {log}")
                time.sleep(0.025)  # a gentle poll: this box has two cores, the worker needs one
            latencies.append(time.perf_counter() - marks[0])
            at = at + dt.timedelta(seconds=30)
        latencies.sort()
        return {"trials": trials, "p50_s": round(statistics.median(latencies), 3),
                "p95_s": round(latencies[max(0, round(0.95 * len(latencies)) - 1)], 3),
                "max_s": round(latencies[-1], 3)}
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log_file.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=1000)
    ap.add_argument("--zones", type=int, default=100)
    ap.add_argument("--minutes", type=int, default=1440, help="minutes of data per sensor")
    ap.add_argument("--eval-step-min", type=int, default=5,
                    help="reporting interval of the sensors in the evaluation and latency parts")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--ticks", type=int, default=5, help="evaluation ticks per kind (the best is reported)")
    ap.add_argument("--context-hours", type=float, action="append", default=[],
                    help="context read back per evaluation (repeatable; default 24 = exact, and 3)")
    parts = ["ingest", "file", "evaluation", "latency"]
    ap.add_argument("--skip", action="append", default=[], choices=parts)
    ap.add_argument("--only", action="append", default=[], choices=parts, help="run only these parts")
    ap.add_argument("--drop", action="store_true", help="drop and recreate the benchmark database first")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.only:
        args.skip = [p for p in parts if p not in args.only]
    django_ready(args)
    out: dict = {"machine": "2 CPU cores shared with a CPU training job and other work: figures are noisy"}
    if "ingest" not in args.skip or "file" not in args.skip:
        series, rows, times = world_build(sensors=args.sensors, zones=args.zones, minutes=args.minutes, step_min=1)
        if "ingest" not in args.skip:
            print(f"ingest: {len(rows):,} readings ...", file=sys.stderr)
            out["ingest"] = ingest_bench(rows, series)
        if "file" not in args.skip:
            out["file"] = file_bench(rows, series)
        del rows
    series, rows, times = world_build(sensors=args.sensors, zones=args.zones, minutes=args.minutes,
                                      step_min=args.eval_step_min)
    if "evaluation" not in args.skip:
        print("evaluation ...", file=sys.stderr)
        out["evaluation"] = evaluation_bench(series=series, rows=rows, times=times, step_min=args.eval_step_min,
                                             context_hours=args.context_hours or [24.0, 3.0], ticks=args.ticks)
    else:
        from agents.flood.services.ingest import readings_store

        readings_store(rows=rows)
    if "latency" not in args.skip:
        print("latency through celery ...", file=sys.stderr)
        from agents.flood.models import Series

        last = max(Series.objects.exclude(last_time=None).values_list("last_time", flat=True))
        out["latency"] = latency_bench(series=series, trials=args.trials, step_min=args.eval_step_min, last=last)
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
