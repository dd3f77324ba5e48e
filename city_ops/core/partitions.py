"""Range partitions by UTC month or day for tables that grow by time without a bound (flood readings by
month: 93 GB a year of minute data; bus positions by day: 5.8 million a day, kept a week). The table is
PARTITIONED BY RANGE on one timestamptz column, with a DEFAULT partition that takes a row of any period
without its own partition (agencies send history from any year), and one partition per period named
`<table>_pYYYYMM` (month) or `<table>_pYYYYMMDD` (day). Indexes are declared on the parent, so each
partition gets its own. Retention is dropping a whole partition (a catalog change) instead of deleting and
vacuuming millions of rows.

Both jobs are idempotent and safe to run twice at once: each partition is created or dropped in its own
transaction under an advisory lock per table, after checking the catalog again. Creating or dropping a
partition takes an ACCESS EXCLUSIVE lock on the parent; `LOCK_TIMEOUT` bounds the wait behind a long read
(every ingest would queue behind the waiting job), and a job that gives up succeeds on its next run (the
partitions are made periods ahead).
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction

LOCK_TIMEOUT = "5s"


def month_start(day: dt.date) -> dt.date:
    """The first day of `day`'s month."""
    return day.replace(day=1)


def month_add(month: dt.date, n: int) -> dt.date:
    """The first day of the month `n` months after (before, when negative) `month`'s."""
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """A partition's span: where the one holding a day starts, the start `n` periods on, and how its start
    is written in the partition's name (`digits` long)."""

    start: Callable[[dt.date], dt.date]
    add: Callable[[dt.date, int], dt.date]
    name_format: str
    digits: int


PERIODS = {
    "month": Period(start=month_start, add=month_add, name_format="%Y%m", digits=6),
    "day": Period(start=lambda day: day, add=lambda day, n: day + dt.timedelta(days=n), name_format="%Y%m%d",
                  digits=8),
}


def partition_name(*, table: str, start: dt.date, period: str = "month") -> str:
    return f"{table}_p{start.strftime(PERIODS[period].name_format)}"


def partition_start(day: dt.date) -> dt.datetime:
    """00:00 UTC of `day`: where a partition starting on `day` begins."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def _lock(cursor, table: str) -> None:
    """This transaction's turn at `table`'s partitions, with the wait for the table's lock bounded (till the
    end of the outermost transaction: a caller's own transaction keeps the bound)."""
    cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"partitions:{table}"])
    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [LOCK_TIMEOUT])
    # A table lock (the one every read takes) makes this backend's catalog caches catch up with what a run
    # beside this one committed while this one waited: without it, the check below could miss its partition.
    cursor.execute(f"LOCK TABLE {_quote(table)} IN ACCESS SHARE MODE")


def table_partitioned(*, table: str) -> bool:
    """Whether `table` exists and is partitioned (a database migrated back before the change is not)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT FROM pg_partitioned_table WHERE partrelid = to_regclass(%s))",
                       [table])
        return cursor.fetchone()[0]


def _partitioning(cursor, table: str) -> tuple[str, str | None]:
    """`table`'s partition key column and its default partition (None without one)."""
    cursor.execute(
        """
        SELECT a.attname, NULLIF(p.partdefid, 0)::regclass::text
          FROM pg_partitioned_table p
          JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
         WHERE p.partrelid = %s::regclass
        """,
        [table],
    )
    row = cursor.fetchone()
    if row is None:
        raise ValueError(f"{table} is not a partitioned table")
    return row[0], row[1]


def partition_create(*, table: str, start: dt.date, period: str = "month") -> int | None:
    """Create `table`'s partition of `period` holding the day `start` unless it exists. PostgreSQL refuses a
    partition whose range has rows in the default partition, so in the same transaction those rows are taken
    out of the default and put into the new partition. Returns how many rows moved, or None when the
    partition existed."""
    span = PERIODS[period]
    start = span.start(start)
    name = partition_name(table=table, start=start, period=period)
    low, high = partition_start(start), partition_start(span.add(start, 1))
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, table)
        cursor.execute("SELECT to_regclass(%s)", [name])
        if cursor.fetchone()[0] is not None:
            return None
        column, default = _partitioning(cursor, table)
        moved = 0
        if default:
            cursor.execute(
                f"CREATE TEMP TABLE partition_moving AS WITH moved AS (DELETE FROM {default} "
                f"WHERE {_quote(column)} >= %s AND {_quote(column)} < %s RETURNING *) SELECT * FROM moved",
                [low, high])
            moved = cursor.rowcount
        cursor.execute(f"CREATE TABLE {_quote(name)} PARTITION OF {_quote(table)} FOR VALUES FROM (%s) TO (%s)",
                       [low, high])
        if default:
            # In time order, as the ingest writes: the partition's BRIN index stays tight.
            cursor.execute(f"INSERT INTO {_quote(name)} SELECT * FROM partition_moving ORDER BY {_quote(column)}")
            cursor.execute("DROP TABLE partition_moving")
    return moved


def partitions_ensure(*, table: str, ahead: int, period: str = "month",
                      today: dt.date | None = None) -> dict[str, int]:
    """The partitions of the current UTC `period` (month or day) and the `ahead` after it, created where
    missing (rows of those periods waiting in the default partition moved in). Returns {created partition:
    rows moved}."""
    span = PERIODS[period]
    first = span.start(today or dt.datetime.now(dt.UTC).date())
    created = {}
    for n in range(max(ahead, 0) + 1):
        start = span.add(first, n)
        moved = partition_create(table=table, start=start, period=period)
        if moved is not None:
            created[partition_name(table=table, start=start, period=period)] = moved
    return created


def partitions_dated(*, table: str, period: str = "month") -> dict[str, dt.date]:
    """`table`'s partitions of `period` (those named `<table>_pYYYYMM` for months, `<table>_pYYYYMMDD` for
    days) and their starts, oldest first."""
    span = PERIODS[period]
    pattern = re.compile(re.escape(table) + rf"_p(\d{{{span.digits}}})")
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                       "WHERE i.inhparent = %s::regclass", [table])
        names = [row[0] for row in cursor.fetchall()]
    starts = {name: dt.datetime.strptime(m[1], span.name_format).date()
              for name in names if (m := pattern.fullmatch(name))}
    return dict(sorted(starts.items(), key=lambda item: item[1]))


def partitions_drop_before(*, table: str, before: dt.date, period: str = "month") -> tuple[list[str], int]:
    """Retention: drop `table`'s partitions of `period` that end on or before `before` (00:00 UTC), whole,
    and delete the default partition's rows older than it (the default itself is never dropped). Returns
    the partitions dropped and the default rows deleted."""
    dropped = []
    for name, start in partitions_dated(table=table, period=period).items():
        if PERIODS[period].add(start, 1) > before:
            break
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor, table)
            cursor.execute("SELECT to_regclass(%s)", [name])
            if cursor.fetchone()[0] is None:  # a run beside this one was first
                continue
            cursor.execute(f"DROP TABLE {_quote(name)}")
        dropped.append(name)
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor, table)
        column, default = _partitioning(cursor, table)
        deleted = 0
        if default:
            cursor.execute(f"DELETE FROM {default} WHERE {_quote(column)} < %s", [partition_start(before)])
            deleted = cursor.rowcount
    return dropped, deleted
