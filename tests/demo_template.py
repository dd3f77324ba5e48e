"""The demo city for tests, loaded once per test run and copied into each test that asks for it.

`demo_city_load` takes tens of seconds (the OSM import, a GTFS feed, sensor histories, road photos through the
vision pipeline); the copy takes well under a second. The template is taken in the test database itself: the
load runs inside a transaction, every table it changed is read out with binary COPY, together with the media
files its rows name, and the transaction is rolled back, so the database is as it was for the tests that do
not ask for the city. A test that asks for it gets those tables emptied (with whatever still pointed at their
rows: left-overs of an earlier copy) and refilled, in its own transaction or, for a transactional test (a live
server, a Celery worker), committed so that other processes see it.

Rollback alone cannot serve those transactional tests, and a `CREATE DATABASE ... TEMPLATE` copy would have to
drop the test database under the live server's and worker's connections; COPY into the open connection needs
neither.
"""
from __future__ import annotations

import fcntl
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.core.files.storage import default_storage
from django.db import connection, models, transaction

# PostGIS's own table, and the migration record (the template never changes the schema).
_NOT_DATA = ("spatial_ref_sys", "django_migrations")


@dataclass(frozen=True)
class DemoTemplate:
    tables: dict[str, bytes]  # table -> its rows in COPY's binary format
    sequences: dict[str, str]  # table -> the sequence of its `id` column
    media: dict[str, bytes]  # storage name -> content, for the files the rows name


def _data_tables(cur) -> list[str]:
    """The tables, a partitioned table as one (its partitions' rows are read and written through it)."""
    cur.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
                "AND NOT c.relname = ANY(%s) ORDER BY c.relname", [list(_NOT_DATA)])
    return [t for (t,) in cur.fetchall()]


def _fingerprints(cur, tables: list[str]) -> dict[str, tuple[int, str]]:
    out = {}
    for t in tables:
        cur.execute(f'SELECT count(*), md5(coalesce(string_agg(r::text, \'|\' ORDER BY r::text), \'\')) '
                    f'FROM "{t}" r')
        out[t] = cur.fetchone()
    return out


def _truncate(cur, tables: list[str]) -> None:
    """Empty `tables`, skipping those already empty: the usual case (the test before rolled back or flushed),
    and TRUNCATE costs a few milliseconds a table even then."""
    cur.execute(" UNION ALL ".join(f"SELECT '{t}' WHERE EXISTS (SELECT FROM \"{t}\")" for t in tables))
    held = [t for (t,) in cur.fetchall()]
    if held:
        # Rows written earlier in this transaction leave deferred foreign-key checks pending, and TRUNCATE
        # refuses a table with pending checks: run them now, then defer again (Django's FKs are deferred).
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in held) + " CASCADE")
        cur.execute("SET CONSTRAINTS ALL DEFERRED")


def _copy_out(cur, table: str) -> bytes:
    # A query, not the table: COPY TO refuses a partitioned table (the flood readings).
    with cur.cursor.copy(f'COPY (SELECT * FROM "{table}") TO STDOUT (FORMAT binary)') as copy:
        return b"".join(bytes(chunk) for chunk in copy)


def _id_sequences(cur, tables: list[str]) -> dict[str, str]:
    cur.execute("SELECT table_name, pg_get_serial_sequence(quote_ident(table_name), 'id') "
                "FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'id' "
                "AND table_name = ANY(%s)", [tables])
    return {t: seq for t, seq in cur.fetchall() if seq}


def _read(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def _media_names(tables: set[str]) -> list[str]:
    """Names in the file fields of the models stored in `tables` (road photos, pickup photos, ...)."""
    names = []
    for model in apps.get_models():
        if model._meta.db_table not in tables:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, models.FileField):
                names += [n for n in model._default_manager.values_list(field.attname, flat=True) if n]
    return names


def demo_template_take(load) -> DemoTemplate:
    """Run `load()` in a transaction that is rolled back, keeping what it wrote: the rows of every table it
    changed, their id sequences, and the media files those rows name.

    The template must hold the loader's rows alone. Where a table it writes already held rows (a road
    network an earlier test committed, a kept `--reuse-db` database), those tables are emptied and the city
    loaded a second time."""
    with transaction.atomic(), connection.cursor() as cur:
        tables = _data_tables(cur)
        before = _fingerprints(cur, tables)
        load()
        after = _fingerprints(cur, tables)
        changed = [t for t in tables if after[t] != before[t]]
        if any(before[t][0] for t in changed):
            _truncate(cur, changed)
            load()
        template = DemoTemplate(
            tables={t: _copy_out(cur, t) for t in changed},
            sequences=_id_sequences(cur, changed),
            media={name: _read(name) for name in _media_names(set(changed))},
        )
        transaction.set_rollback(True)
    return template


def demo_template_once(take: Callable[[], DemoTemplate], *, shared: Path | None) -> DemoTemplate:
    """`take()` once per test run. With pytest-xdist (`shared`: a file in the run's own temporary folder) the
    first worker to need the template takes it and leaves it there; the others wait for it and read it, since
    their databases have the same migrations, so the same tables, columns and sequences."""
    if shared is None:
        return take()
    with shared.with_name(shared.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also when `take()` raises
        if shared.is_file():
            return pickle.loads(shared.read_bytes())
        template = take()
        partial = shared.with_name(shared.name + ".partial")
        partial.write_bytes(pickle.dumps(template, protocol=pickle.HIGHEST_PROTOCOL))
        partial.replace(shared)
        return template


def demo_template_restore(template: DemoTemplate) -> None:
    """Replace the template's tables with its rows (in the caller's transaction, else committed).

    CASCADE also empties the tables that point at them (closures' segments, plans' stops): rows there can
    only be left over from an earlier copy. Foreign keys are deferred, so the order of the copies is free."""
    with transaction.atomic(), connection.cursor() as cur:
        _truncate(cur, list(template.tables))
        for table, data in template.tables.items():
            with cur.cursor.copy(f'COPY "{table}" FROM STDIN (FORMAT binary)') as copy:
                copy.write(data)
        # Never backwards: setval is not undone by a rollback, so in a rolled-back test a lower value would
        # outlive the copy while rows committed before it (a module's network) come back with higher ids.
        for table, seq in template.sequences.items():
            cur.execute(f'SELECT setval(%s, GREATEST((SELECT max(id) FROM "{table}"), '
                        'COALESCE(pg_sequence_last_value(%s::regclass), 1)))', [seq, seq])
    for name, content in template.media.items():
        # Written in place under the name the rows hold (a test may have deleted or damaged the file, or
        # pointed MEDIA_ROOT elsewhere); `save` would pick a new name beside an existing file.
        path = Path(default_storage.path(name))
        if not path.is_file() or path.read_bytes() != content:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
