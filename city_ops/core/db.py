"""Bulk loading through PostgreSQL COPY (psycopg 3). The ORM's bulk_create is 5-10x slower for the volumes
the agents load (sensor readings, GTFS stop_times, road networks), and COPY is still one transaction."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection


def copy_rows(*, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
    """COPY rows into `table`. Geometry columns take EWKT strings ('SRID=4326;POINT(x y)'). Returns the
    row count. Runs on Django's connection, so it joins the caller's transaction."""
    cols = ", ".join(f'"{c}"' for c in columns)
    n = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3 cursor under Django's wrapper
        with raw.copy(f'COPY "{table}" ({cols}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
    return n
