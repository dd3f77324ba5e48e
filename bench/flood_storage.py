"""Flood readings storage at city scale (issue 18): a week of 5-minute readings for the loaded sensors through
the project's own COPY path, the size it takes, and the reads the agent runs on it, timed as the table grows
and under three storage plans.

    createdb -T template0 cityops_floodstore && psql -d cityops_floodstore -c "CREATE EXTENSION postgis"
    DATABASE_URL=postgis://.../cityops_floodstore manage.py migrate
    (copy the sensors, series and zones of a loaded city: pg_dump --data-only -t 'agent_flood_sensor'
     -t 'agent_flood_series' -t 'agent_flood_floodzone*' cityops_scale250 | psql -d cityops_floodstore, then
     forget their readings: UPDATE agent_flood_series SET last_time = NULL, last_value = NULL,
     evaluated_until = NULL, backfills = 0)
    DATABASE_URL=postgis://.../cityops_floodstore .venv/bin/python bench/flood_storage.py [--days 7] [--json]

- load: `calm_day_load` (`readings_store`: binary COPY into the staging table, one merge) one day at a time,
  each day's wall and CPU time and rows per second; after each day the reads below are timed again, so the
  figures show whether they stay flat as the table grows.
- size: table (summed over its monthly partitions and the default one; the months loaded get their
  partitions first), primary key (series, time) and BRIN (time) index, bytes per reading, and the same
  extrapolated to a year of minute readings for the same sensors.
- reads (p50 of `--repeat`, with EXPLAIN ANALYZE's plan and buffers, on the table as it is: by month): the
  latest value per series as the agent reads it (`agent_flood_series.last_value`, kept by the ingest) and
  from the readings (LATERAL, one index probe per series); the context a fresh worker reads back
  (`series_window`: 24 h of every series); a carried tick's new readings (`series_after`); one sensor's
  hydrograph (24 h).
- plans: the reads again without the BRIN index (dropped inside a transaction that is rolled back), and
  on a copy of the table range-partitioned by day (a week in 7 partitions: the scale model of a year in
  monthly partitions), created and dropped by this script.

Refuses to run on a database whose name does not contain "floodstore" or "scratch" unless --any-database:
it writes a week of readings.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import sys
import time

from _django import django_setup

CONTEXT = dt.timedelta(hours=24)
READS = ("latest_series", "latest_lateral", "context_24h", "carried_tick", "hydrograph_24h")


def _usage() -> dict:
    import os

    return {"cpu_s": round(time.process_time(), 2), "peak_rss_mb": round(resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024), "load_avg": round(os.getloadavg()[0], 1)}


def _day_load(*, end: dt.datetime) -> dict:
    from fixtures.flood_demo import calm_day_load

    c, t = time.process_time(), time.perf_counter()
    new = calm_day_load(end=end, days=1)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"end": end.isoformat(), "rows": new, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "rows_per_s": round(new / wall)}


def _sizes(table: str = "agent_flood_reading") -> dict:
    """Rows and sizes of the partitioned `table`, summed over its partitions (each index under its name on
    the parent)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM " + table)
        rows = cur.fetchone()[0]
        cur.execute(
            """
            SELECT sum(pg_table_size(relid))::bigint, sum(pg_indexes_size(relid))::bigint,
                   coalesce((SELECT json_object_agg(i.relname, (SELECT sum(pg_relation_size(relid))::bigint
                                                                  FROM pg_partition_tree(i.oid)))
                               FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
                              WHERE x.indrelid = %(t)s::regclass), '{}'::json),
                   count(*) FILTER (WHERE isleaf)
              FROM pg_partition_tree(%(t)s::regclass)
            """,
            {"t": table},
        )
        heap, indexes, each, partitions = cur.fetchone()
    return {"rows": rows, "partitions": partitions, "table_mb": round(heap / 2**20, 1),
            "indexes_mb": round(indexes / 2**20, 1),
            "index_mb": {k: round(v / 2**20, 1) for k, v in each.items()},
            "bytes_per_row": round((heap + indexes) / rows, 1) if rows else None}


def _year_estimate(size: dict, series: int) -> dict:
    """A year of minute readings for `series` series at the measured bytes per reading."""
    rows = series * 60 * 24 * 365
    per_row = size["bytes_per_row"] or 0
    month_gb = rows / 12 * per_row / 2**30
    return {"series": series, "rows": rows, "total_gb": round(rows * per_row / 2**30), "month_gb": round(month_gb, 1),
            "pkey_month_gb": round(rows / 12 * size["index_mb"].get("agent_flood_reading_pkey", 0) * 2**20
                                   / max(size["rows"], 1) / 2**30, 1)}


def _read_sql(table: str) -> dict[str, str]:
    """The agent's reads (selectors' SQL, with the table name open), as the benchmark times them."""
    ok = "qc <> 3"
    return {
        "latest_series": "SELECT id, last_time, last_value FROM agent_flood_series",
        "latest_lateral": (
            "SELECT s.id, r.time, r.value FROM agent_flood_series s CROSS JOIN LATERAL "
            f"(SELECT time, value FROM {table} r WHERE r.series_id = s.id AND r.{ok} ORDER BY time DESC LIMIT 1) r"),
        "context_24h": (
            "SELECT series_id, array_agg((extract(epoch FROM time) * 1000000)::bigint ORDER BY time), "
            f"array_agg(value ORDER BY time) FROM {table} WHERE {ok} AND time > %(start)s GROUP BY series_id"),
        "carried_tick": (
            "SELECT array_agg(r.series_id ORDER BY r.series_id, r.time), array_agg(r.value ORDER BY r.series_id, "
            "r.time) FROM agent_flood_series s JOIN " + table + " r ON r.series_id = s.id AND r.time > %(tick)s "
            f"WHERE r.time > %(tick)s AND r.{ok}"),
        "hydrograph_24h": (
            f"SELECT time, value, qc FROM {table} WHERE series_id = %(one)s AND time > %(start)s "
            "AND time <= %(end)s ORDER BY time"),
    }


def _plan_summary(cur, sql: str, params: dict) -> dict:
    cur.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
    plan = cur.fetchone()[0][0]
    nodes, stack = [], [plan["Plan"]]
    while stack:  # the scan nodes name how the rows were found
        node = stack.pop()
        if "Scan" in node["Node Type"]:
            nodes.append(f"{node['Node Type']} on {node.get('Relation Name', '?')}"
                         + (f" using {node['Index Name']}" if node.get("Index Name") else ""))
        stack.extend(node.get("Plans", []))
    top = plan["Plan"]
    return {"exec_ms": round(plan["Execution Time"], 2), "scans": sorted(set(nodes)),
            "shared_hit": top.get("Shared Hit Blocks", 0), "shared_read": top.get("Shared Read Blocks", 0)}


def _reads(*, table: str, repeat: int, explain: bool) -> dict:
    """p50 wall (ms) of each read on `table`, with its plan when `explain`."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f"SELECT max(time), min(series_id) FROM {table}")
        latest, one = cur.fetchone()
        params = {"start": latest - CONTEXT, "end": latest, "tick": latest - dt.timedelta(minutes=5), "one": one}
        out = {}
        for name, sql in _read_sql(table).items():
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                cur.execute(sql, params)
                rows = cur.fetchall()
                times.append(time.perf_counter() - t)
            out[name] = {"p50_ms": round(statistics.median(times) * 1000, 1), "rows": len(rows)}
            if explain:
                out[name]["plan"] = _plan_summary(cur, sql, params)
    return out


def _without_brin(*, repeat: int) -> dict:
    """The reads with the BRIN index dropped (in a transaction, rolled back: the index stays)."""
    from django.db import connection, transaction

    out = {}
    try:
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute("DROP INDEX flood_reading_time_brin")
            out = _reads(table="agent_flood_reading", repeat=repeat, explain=True)
            raise _Rollback
    except _Rollback:
        pass
    return out


class _Rollback(Exception):
    pass


def _partitioned(*, repeat: int, days: int) -> dict:
    """The reads on a copy of the readings range-partitioned by day (primary key and BRIN per partition);
    the copy is dropped afterwards."""
    from django.db import connection

    copy = "bench_flood_reading_part"
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {copy}")
        cur.execute(f"CREATE TABLE {copy} (LIKE agent_flood_reading INCLUDING DEFAULTS) PARTITION BY RANGE (time)")
        cur.execute("SELECT date_trunc('day', min(time)), max(time) FROM agent_flood_reading")
        first, last = cur.fetchone()
        day = first
        while day <= last:
            cur.execute(f"CREATE TABLE {copy}_{day:%Y%m%d} PARTITION OF {copy} "
                        "FOR VALUES FROM (%s) TO (%s)", [day, day + dt.timedelta(days=1)])
            day += dt.timedelta(days=1)
        cur.execute(f"ALTER TABLE {copy} ADD PRIMARY KEY (series_id, time)")
        cur.execute(f"CREATE INDEX ON {copy} USING brin (time) WITH (pages_per_range = 32)")
        t = time.perf_counter()
        cur.execute(f"INSERT INTO {copy} SELECT * FROM agent_flood_reading ORDER BY time, series_id")
        copied_s = time.perf_counter() - t
        cur.execute(f"ANALYZE {copy}")
    try:
        out = _reads(table=copy, repeat=repeat, explain=True)
        out["partitions"] = (last - first).days + 1
        out["copy_s"] = round(copied_s, 1)
    finally:
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE {copy}")
    return out


def _months_make(*, first: dt.date, last: dt.date) -> None:
    """The monthly partitions of the days loaded, as an operator makes them before importing history (the
    upkeep makes only the current month's and those ahead: last month's days would go to the default)."""
    from city_ops.core.partitions import month_add, month_start, partition_create

    month = month_start(first)
    while month <= last:
        partition_create(table="agent_flood_reading", start=month)
        month = month_add(month, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7, help="days of 5-minute readings to load (0: use what is there)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--any-database", action="store_true", help="allow a database not named *floodstore*/*scratch*")
    args = ap.parse_args()
    django_setup()
    from django.db import connection

    from agents.flood.models import Series

    name = connection.settings_dict["NAME"]
    if not args.any_database and "floodstore" not in name and "scratch" not in name:
        print(f"refusing to write a week of readings into {name!r} (a scratch database only)", file=sys.stderr)
        return 2
    series = Series.objects.count()
    if not series:
        print("no flood series in this database: copy a loaded city's sensors first (see the docstring)",
              file=sys.stderr)
        return 1
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    _months_make(first=(end - dt.timedelta(days=args.days)).date(), last=end.date())
    growth = []
    for d in range(args.days):
        print(f"loading day {d + 1} of {args.days} ...", file=sys.stderr)
        day = _day_load(end=end - dt.timedelta(days=args.days - 1 - d))
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE agent_flood_reading")
        day["reads"] = _reads(table="agent_flood_reading", repeat=args.repeat, explain=False)
        day["table_rows"] = _sizes()["rows"]
        growth.append(day)
        print(f"  {day}", file=sys.stderr)
    size = _sizes()
    out = {"database": name, "series": series, "load": growth, "size": size,
           "year_of_minutes": _year_estimate(size, series),
           "reads": _reads(table="agent_flood_reading", repeat=args.repeat, explain=True)}
    print("without the BRIN index ...", file=sys.stderr)
    out["reads_without_brin"] = _without_brin(repeat=args.repeat)
    print("on a copy partitioned by day ...", file=sys.stderr)
    out["reads_partitioned_by_day"] = _partitioned(repeat=args.repeat, days=args.days)
    out["usage"] = _usage()
    if args.json:
        print(json.dumps(out, default=str))
    else:
        _print(out)
    return 0


def _print(out: dict) -> None:
    s, y = out["size"], out["year_of_minutes"]
    print(f"{out['database']}: {out['series']} series, {s['rows']:,} readings in {s['partitions']} partitions: "
          f"table {s['table_mb']} MB, indexes "
          f"{s['indexes_mb']} MB {s['index_mb']}, {s['bytes_per_row']} bytes a reading")
    print(f"a year of minute readings: {y['rows']:,} rows, about {y['total_gb']} GB ({y['month_gb']} GB a month, "
          f"of which the primary key {y['pkey_month_gb']} GB)")
    print("load, a day at a time (rows, rows/s, wall, cpu) and the reads after it (p50 ms):")
    for day in out["load"]:
        reads = ", ".join(f"{k} {v['p50_ms']}" for k, v in day["reads"].items())
        print(f"  {day['table_rows']:>10,} rows: +{day['rows']:,} at {day['rows_per_s']:,}/s "
              f"({day['wall_s']} s wall, {day['cpu_s']} s cpu); {reads}")
    print("reads on the whole table (p50 ms; exec ms in EXPLAIN ANALYZE; scans):")
    for plan in ("reads", "reads_without_brin", "reads_partitioned_by_day"):
        print(f"  {plan}:")
        for name in READS:
            r = out[plan].get(name)
            if r:
                print(f"    {name:16s} {r['p50_ms']:>9} ms  {r['rows']:>6} rows  exec {r['plan']['exec_ms']} ms, "
                      f"{r['plan']['shared_hit'] + r['plan']['shared_read']} buffers, {'; '.join(r['plan']['scans'])}")
    print(f"process: {out['usage']}")


if __name__ == "__main__":
    sys.exit(main())
