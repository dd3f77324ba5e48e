"""The readings table partitioned by UTC month (migration 0006, services/storage.py): readings land in their
month's partition or, without one, in the default (history from any year) and the ingest stays idempotent;
making a month's partition moves its rows out of the default; retention drops whole old months; the upkeep
run twice changes nothing; the agent's reads see one table across partitions.

The tests use months of 2025 and 2026 long before the clock's (the database has partitions only from the
current month on) and roll everything back, partitions included."""
from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from agents.flood.models import Reading, ReadingRevision, Series
from agents.flood.selectors import evaluation_setup, hydrograph, readings_window, series_window
from agents.flood.services.storage import readings_partitions_maintain, readings_retention_cutoff
from city_ops.core.models import AuditEntry
from city_ops.core.partitions import month_add, partition_create, partitions_dated, partitions_ensure

from .conftest import ingest

pytestmark = pytest.mark.django_db

TABLE = "agent_flood_reading"
UTC = dt.UTC


def _where(series_id: int, time: dt.datetime) -> str:
    """The partition holding a reading."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE series_id = %s AND time = %s",
                    [series_id, time])
        return cur.fetchone()[0]


def _exists(name: str) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cur.fetchone()[0]


def _absent(*names: str) -> None:
    """The months a test makes partitions for have none yet (nothing but the rolled-back tests make them)."""
    assert not any(_exists(n) for n in names), names


def _depth(world) -> Series:
    return world.sensors["D-1"].series.get()


def test_the_table_is_partitioned_by_month_with_a_default_and_the_months_ahead():
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT p.partstrat, a.attname, p.partdefid::regclass::text
              FROM pg_partitioned_table p JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
             WHERE p.partrelid = %s::regclass
            """, [TABLE])
        assert cur.fetchone() == ("r", "time", f"{TABLE}_default")
        # The primary key and the BRIN index are the parent's (partitioned indexes), each partition has its own.
        cur.execute("SELECT c.relname, c.relkind FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
                    "WHERE x.indrelid = %s::regclass ORDER BY 1", [TABLE])
        assert cur.fetchall() == [("agent_flood_reading_pkey", "I"), ("flood_reading_time_brin", "I")]
        cur.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", [f"{TABLE}_default"])
        assert cur.fetchone()[0] == 2
    # After migrate: the current UTC month and FLOOD_READING_PARTITIONS_AHEAD (2) after it.
    month = dt.datetime.now(UTC).date().replace(day=1)
    ahead = {f"{TABLE}_p{month_add(month, n):%Y%m}" for n in range(3)}
    assert ahead <= set(partitions_dated(table=TABLE))


def test_readings_land_in_their_months_partition_and_history_in_the_default(world):
    _absent(f"{TABLE}_p202607")
    assert partition_create(table=TABLE, start=dt.date(2026, 7, 1)) == 0
    series = _depth(world)
    july, old = dt.datetime(2026, 7, 1, tzinfo=UTC), dt.datetime(2003, 3, 5, 12, tzinfo=UTC)
    rows = [("D-1", "depth", july, 4.0), ("D-1", "depth", old, 1.0)]
    assert ingest(rows).accepted == 2
    assert _where(series.pk, july) == f"{TABLE}_p202607"
    assert _where(series.pk, old) == f"{TABLE}_default"
    # Re-sent: nothing new; re-sent with another value: a revision, in whichever partition it lies.
    again = ingest(rows)
    assert (again.accepted, again.duplicates, again.revised) == (0, 2, 0)
    revised = ingest([("D-1", "depth", old, 2.0)])
    assert (revised.accepted, revised.revised) == (0, 1)
    assert list(Reading.objects.filter(series=series).order_by("time").values_list("value", flat=True)) == [2.0, 4.0]
    assert ReadingRevision.objects.get(series=series, time=old).value == 1.0


def test_making_a_month_moves_its_readings_out_of_the_default(world):
    _absent(f"{TABLE}_p202507", f"{TABLE}_p202508")
    series = _depth(world)
    times = [dt.datetime(2025, 7, 1, tzinfo=UTC), dt.datetime(2025, 7, 31, 23, 59, tzinfo=UTC),
             dt.datetime(2025, 8, 15, tzinfo=UTC), dt.datetime(2025, 9, 1, tzinfo=UTC)]
    ingest([("D-1", "depth", t, float(i)) for i, t in enumerate(times)])
    assert {_where(series.pk, t) for t in times} == {f"{TABLE}_default"}

    created = partitions_ensure(table=TABLE, ahead=1, today=dt.date(2025, 7, 20))
    assert set(created) == {f"{TABLE}_p202507", f"{TABLE}_p202508"}
    assert created[f"{TABLE}_p202507"] >= 2 and created[f"{TABLE}_p202508"] >= 1
    assert [_where(series.pk, t) for t in times] == [
        f"{TABLE}_p202507", f"{TABLE}_p202507", f"{TABLE}_p202508", f"{TABLE}_default"]  # September: no partition
    assert list(Reading.objects.filter(series=series).order_by("time").values_list("value", flat=True)) == [
        0.0, 1.0, 2.0, 3.0]
    assert partitions_ensure(table=TABLE, ahead=1, today=dt.date(2025, 7, 20)) == {}


def test_retention_drops_whole_old_months_keeps_recent_ones_and_a_second_run_changes_nothing(world, settings):
    _absent(*(f"{TABLE}_p2025{m:02d}" for m in range(5, 12)))
    for month in (5, 6, 7):
        partition_create(table=TABLE, start=dt.date(2025, month, 1))
    series = _depth(world)
    kept = [dt.datetime(2025, 7, 1, tzinfo=UTC), dt.datetime(2025, 8, 10, tzinfo=UTC),  # August: in the default
            dt.datetime(2025, 9, 2, tzinfo=UTC)]
    gone = [dt.datetime(2003, 1, 1, tzinfo=UTC), dt.datetime(2025, 5, 15, tzinfo=UTC),
            dt.datetime(2025, 6, 30, 23, 59, tzinfo=UTC)]
    ingest([("D-1", "depth", t, 1.0) for t in gone + kept])
    today = dt.date(2025, 9, 10)
    assert readings_retention_cutoff(today=today) is None  # the default: keep every reading
    assert readings_partitions_maintain(today=today).dropped == []

    settings.FLOOD_READING_RETENTION_MONTHS = 2
    out = readings_partitions_maintain(today=today)
    assert out.before == dt.date(2025, 7, 1)
    assert {f"{TABLE}_p202505", f"{TABLE}_p202506"} <= set(out.dropped) and out.deleted >= 1
    assert not any(name >= f"{TABLE}_p202507" for name in out.dropped)
    assert sorted(Reading.objects.filter(series=series).values_list("time", flat=True)) == kept
    assert _where(series.pk, kept[0]) == f"{TABLE}_p202507" and _where(series.pk, kept[1]) == f"{TABLE}_default"
    audit = AuditEntry.objects.filter(action="flood.readings_dropped").latest("pk")
    assert audit.changes["before"] == "2025-07-01" and f"{TABLE}_p202505" in audit.changes["partitions"]

    partitions = partitions_dated(table=TABLE)
    second = readings_partitions_maintain(today=today)
    assert (second.created, second.dropped, second.deleted) == ({}, [], 0)
    assert partitions_dated(table=TABLE) == partitions
    assert AuditEntry.objects.filter(action="flood.readings_dropped").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_make_a_month_once_and_move_its_rows_once():
    month, name = dt.date(2024, 2, 1), f"{TABLE}_p202402"
    _absent(name)
    times = [dt.datetime(2024, 2, 1, tzinfo=UTC), dt.datetime(2024, 2, 29, 23, 59, tzinfo=UTC)]
    with connection.cursor() as cur:  # committed, in the default: series -7 is no real series (no FK)
        cur.executemany(f"INSERT INTO {TABLE} (series_id, time, value, qc) VALUES (-7, %s, 1, 0)", [[t] for t in times])
    start = threading.Barrier(2)

    def run(_):
        try:
            connection.ensure_connection()  # connected before the start, so the two overlap
            start.wait()
            return partition_create(table=TABLE, start=month)
        finally:
            connection.close()  # this thread's own connection

    try:
        with ThreadPoolExecutor(2) as pool:
            assert sorted(pool.map(run, range(2)), key=str) == [2, None]  # one made it and moved both rows
        assert [_where(-7, t) for t in times] == [name, name]
        assert Reading.objects.filter(series_id=-7).count() == 2
    finally:
        with connection.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            cur.execute(f"DELETE FROM {TABLE} WHERE series_id = -7")


def test_the_reads_see_one_table_across_partitions(world):
    _absent(f"{TABLE}_p202607")
    partition_create(table=TABLE, start=dt.date(2026, 7, 1))  # June stays in the default
    start = dt.datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
    times = [start + dt.timedelta(minutes=15 * i) for i in range(9)]  # 23:00 .. 01:00, across the month's edge
    values = [3.0 + i / 10 for i in range(9)]
    ingest([("L-1", "level", t, v) for t, v in zip(times, values)])
    level = world.sensors["L-1"].series.get(parameter="level")
    assert {_where(level.pk, t) for t in times} == {f"{TABLE}_default", f"{TABLE}_p202607"}

    level.refresh_from_db()
    assert (level.last_time, level.last_value) == (times[-1], values[-1])
    with connection.cursor() as cur:
        cur.execute(f"SELECT time, value FROM {TABLE} WHERE series_id = %s ORDER BY time DESC LIMIT 1", [level.pk])
        assert cur.fetchone() == (times[-1], values[-1])
    chart = next(s for s in hydrograph(sensor=world.sensors["L-1"])["series"] if s["parameter"] == "level")
    assert [p["v"] for p in chart["points"]] == values
    setup = evaluation_setup()
    name = setup.configs_of_series[level.pk][0]
    window = [r for r in readings_window(setup=setup, start=start - dt.timedelta(seconds=1))
              if r.parameter == "level" and r.sensor == name]
    assert [(r.time, r.value) for r in window] == list(zip(times, values))
    arrays = next(s for s in series_window(setup=setup, start=times[2]) if s.parameter == "level" and s.sensor == name)
    assert [int(ns) for ns in arrays.times_ns] == [int(t.timestamp()) * 10**9 for t in times[3:]]
    assert list(arrays.values) == values[3:]


def test_the_upkeep_is_a_daily_beat_entry_sending_its_task_on_the_default_queue():
    import json

    from django_celery_beat.models import PeriodicTask

    from agents.flood.tasks import readings_partitions_maintain as task
    from agents.runtime.schedules import schedules_sync

    schedules_sync()
    entry = PeriodicTask.objects.get(name="flood: readings partitions")
    assert (entry.task, entry.queue, json.loads(entry.kwargs)) == ("flood.readings_partitions_maintain", "default", {})
    assert (entry.crontab.hour, entry.crontab.minute) == ("3", "40") and entry.interval is None
    assert task.name == entry.task
    # After migrate the months ahead exist already: the task finds nothing to do (and drops nothing: no retention).
    assert task() == {"created": {}, "dropped": [], "default_rows_deleted": 0}
