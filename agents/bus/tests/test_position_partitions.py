"""The vehicle position history partitioned by UTC day (migration 0003, services/realtime.py): positions land
in their day's partition or, without one, in the default; making a day's partition moves its positions out of
the default; the prune drops whole old days, keeps the recent ones, says how many positions went and changes
nothing run twice.

The tests use days of 2025, long before the clock's (the database has partitions only from today on), and
roll everything back, partitions included."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from agents.bus.domain.realtime import VehiclePosition as CorePosition
from agents.bus.models import HeadwaySnapshot, VehiclePosition
from agents.bus.services.realtime import history_prune, positions_partitions_ensure, positions_store
from city_ops.core.partitions import partition_create, partitions_dated

pytestmark = pytest.mark.django_db

TABLE = "agent_bus_vehicleposition"
DEFAULT = f"{TABLE}_default"
UTC = dt.UTC
SOURCE = "parttest"


def _store(**times: dt.datetime | None) -> None:
    """One position per vehicle, observed at its time (None: no timestamp, stored as observed now)."""
    positions_store(positions=[CorePosition(vehicle_id=vid, lat=60.17, lon=24.94,
                                            timestamp=int(t.timestamp()) if t else None)
                               for vid, t in times.items()], feed=None, source=SOURCE)


def _where(vehicle_id: str) -> str:
    """The partition holding the test's position of a vehicle."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT tableoid::regclass::text FROM {TABLE} WHERE vehicle_id = %s AND source = %s",
                    [vehicle_id, SOURCE])
        return cur.fetchone()[0]


def _days(*days: dt.date) -> list[str]:
    return [f"{TABLE}_p{day:%Y%m%d}" for day in days]


def _absent(*days: dt.date) -> None:
    """The days a test makes partitions for have none yet (nothing but the rolled-back tests make them)."""
    assert not set(_days(*days)) & set(partitions_dated(table=TABLE, period="day")), days


def _mine() -> list[tuple[str, dt.datetime]]:
    return list(VehiclePosition.objects.filter(source=SOURCE).order_by("observed_at")
                .values_list("vehicle_id", "observed_at"))


def test_the_table_is_partitioned_by_day_with_a_default_and_the_days_ahead():
    with connection.cursor() as cur:
        cur.execute("SELECT pg_get_partkeydef(partrelid), partdefid::regclass::text FROM pg_partitioned_table "
                    "WHERE partrelid = %s::regclass", [TABLE])
        assert cur.fetchone() == ("RANGE (observed_at)", DEFAULT)
        # The key takes the partition key; the foreign key and the four indexes are the parent's.
        cur.execute("SELECT contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass "
                    "AND contype IN ('p', 'f') ORDER BY contype", [TABLE])
        assert cur.fetchall() == [
            ("f", "FOREIGN KEY (feed_id) REFERENCES agent_bus_feed(id) DEFERRABLE INITIALLY DEFERRED"),
            ("p", "PRIMARY KEY (id, observed_at)")]
        cur.execute("SELECT c.relname, c.relkind FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
                    "WHERE x.indrelid = %s::regclass ORDER BY 1", [TABLE])
        assert cur.fetchall() == [
            ("agent_bus_v_observe_dc2b72_idx", "I"), ("agent_bus_v_vehicle_43e857_idx", "I"),
            (f"{TABLE}_feed_id_d0c8b7e5", "I"), (f"{TABLE}_geom_8c1883a2_id", "I"), (f"{TABLE}_pkey", "I")]
        cur.execute("SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", [DEFAULT])
        assert cur.fetchone()[0] == 5
        cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])  # the identity went on with the table
        assert cur.fetchone()[0] == f"public.{TABLE}_id_seq"
    # After migrate: today (UTC) and BUS_POSITION_PARTITIONS_AHEAD (3) days after it.
    today = timezone.now().date()
    assert set(_days(*(today + dt.timedelta(days=n) for n in range(4)))) <= set(
        partitions_dated(table=TABLE, period="day"))


def test_positions_land_in_their_days_partition_and_other_days_in_the_default():
    day = dt.date(2025, 7, 4)
    _absent(day)
    assert partition_create(table=TABLE, start=day, period="day") == 0
    _store(first=dt.datetime(2025, 7, 4, tzinfo=UTC), last=dt.datetime(2025, 7, 4, 23, 59, 59, tzinfo=UTC),
           next=dt.datetime(2025, 7, 5, tzinfo=UTC), live=None)
    assert [_where(v) for v in ("first", "last", "next")] == [*_days(day) * 2, DEFAULT]
    assert _where("live") == _days(timezone.now().date())[0]  # today's partition, made after migrate
    ids = list(VehiclePosition.objects.filter(source=SOURCE).values_list("id", flat=True))
    assert len(set(ids)) == 4 and min(ids) > 0
    assert VehiclePosition.objects.get(pk=min(ids)).source == SOURCE  # Django's pk is still `id` alone


def test_making_a_day_moves_its_positions_out_of_the_default(settings):
    days = [dt.date(2025, 8, 1), dt.date(2025, 8, 2)]
    _absent(*days, dt.date(2025, 8, 3))
    times = {"a": dt.datetime(2025, 8, 1, tzinfo=UTC), "b": dt.datetime(2025, 8, 1, 23, 59, tzinfo=UTC),
             "c": dt.datetime(2025, 8, 2, 12, tzinfo=UTC), "d": dt.datetime(2025, 8, 5, tzinfo=UTC)}
    _store(**times)
    before = list(VehiclePosition.objects.filter(source=SOURCE).order_by("id").values())
    assert {_where(v) for v in times} == {DEFAULT}

    settings.BUS_POSITION_PARTITIONS_AHEAD = 1
    assert positions_partitions_ensure(today=days[0]) == dict(zip(_days(*days), [2, 1]))
    assert [_where(v) for v in times] == [*_days(days[0]) * 2, *_days(days[1]), DEFAULT]  # the 5th: no partition
    assert list(VehiclePosition.objects.filter(source=SOURCE).order_by("id").values()) == before  # ids kept
    assert positions_partitions_ensure(today=days[0]) == {}


def test_the_prune_drops_whole_old_days_keeps_recent_ones_and_a_second_run_removes_nothing():
    today, keep_days = dt.date(2025, 9, 10), 3  # positions before the 7th go
    old = [dt.date(2025, 9, 5), dt.date(2025, 9, 6)]
    _absent(*old, dt.date(2025, 9, 7), *(today + dt.timedelta(days=n) for n in range(4)))
    for day in (*old, dt.date(2025, 9, 7)):
        partition_create(table=TABLE, start=day, period="day")
    gone = {"history": dt.datetime(2003, 1, 1, tzinfo=UTC), "fifth": dt.datetime(2025, 9, 5, 12, tzinfo=UTC),
            "sixth": dt.datetime(2025, 9, 6, 23, 59, 59, tzinfo=UTC)}
    kept = {"seventh": dt.datetime(2025, 9, 7, tzinfo=UTC), "eighth": dt.datetime(2025, 9, 8, 8, tzinfo=UTC),
            "tenth": dt.datetime(2025, 9, 10, 9, tzinfo=UTC)}
    _store(**gone, **kept)
    with connection.cursor() as cur:
        # The feed key's checks of rows written in this transaction wait for its end, and PostgreSQL refuses
        # to drop a table with checks pending: run them now (a real prune drops days written long before).
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    snapshots = [HeadwaySnapshot.objects.create(evaluated_at=timezone.now() - dt.timedelta(days=d), route_id="P",
                                                vehicles=2) for d in (4, 2)]
    older = VehiclePosition.objects.filter(observed_at__lt=dt.datetime(2025, 9, 7, tzinfo=UTC)).count()

    assert history_prune(keep_days=keep_days, today=today) == older >= len(gone)
    assert _mine() == sorted(kept.items(), key=lambda item: item[1])
    partitions = partitions_dated(table=TABLE, period="day")
    assert not set(_days(*old)) & set(partitions)
    # The 7th on are kept, today and the 3 days ahead made (the 10th's position moved in), the 8th in the default.
    assert set(_days(dt.date(2025, 9, 7), *(today + dt.timedelta(days=n) for n in range(4)))) <= set(partitions)
    assert [_where(v) for v in kept] == [*_days(dt.date(2025, 9, 7)), DEFAULT, *_days(today)]
    # Snapshots keep their own cutoff: older than `keep_days` days before now.
    assert list(HeadwaySnapshot.objects.filter(route_id="P")) == snapshots[1:]

    assert history_prune(keep_days=keep_days, today=today) == 0
    assert partitions_dated(table=TABLE, period="day") == partitions and len(_mine()) == len(kept)
