"""Readings in: parse any supported file (the core detects the format), resolve sensors and series, store
through COPY into a staging table and one `INSERT ... ON CONFLICT DO NOTHING` (idempotent: a reading is
stored once per series and time), keep the series' latest values, and ask for an evaluation after commit.

Bad rows are reported by row number (a reading's row: the CSV line number, or its 1-based index in a JSON
or XML list) and the good ones kept; a file that cannot be read at all raises ReadingsFormatError."""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.contrib.gis.geos import Point
from django.db import connection, transaction
from django.utils import timezone

from city_ops.city.geovalidate import GeometryInputError, lonlat_check
from city_ops.core.services import audit_record

from ..core import Reading, RowError, Station, readings_parse
from ..core.domain import CANONICAL_UNITS
from ..models import Sensor, Series

log = logging.getLogger(__name__)

STAGE_TABLE = "flood_reading_stage"
# A reading this far ahead of the server's clock is a device with a wrong clock: storing it would move the
# evaluation's reading time ahead and mute every other sensor until the real time caught up.
FUTURE_TOLERANCE = dt.timedelta(hours=1)

# Any 64-bit number unique to this purpose: held by a transaction that updates many series rows at once,
# from that update to its commit (see readings_merge_stage).
SERIES_WRITE_LOCK = 0x466C6F6F64536572  # "FloodSer"

KIND_FOR_PARAMETER = {"rainfall": Sensor.Kind.RAIN, "depth": Sensor.Kind.DEPTH, "level": Sensor.Kind.RIVER,
                      "discharge": Sensor.Kind.RIVER}


@dataclass
class IngestResult:
    """What one ingest did: readings newly stored, readings already there (re-sent or repeated in the
    file), rejected rows with reasons, and any sensors it registered."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[RowError] = field(default_factory=list)
    format: str = ""
    sensors_created: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The JSON the command and the API print: accepted, duplicates, rejected rows."""
        return {"accepted": self.accepted, "duplicates": self.duplicates,
                "rejected": [{"row": e.row, "reason": e.reason} for e in self.rejected]}


def series_index() -> tuple[dict[tuple[str, str], int], dict[str, str]]:
    """((sensor code, parameter) -> series id, sensor code -> its only parameter) for resolving rows."""
    index: dict[tuple[str, str], int] = {}
    params: dict[str, list[str]] = {}
    for series_id, code, parameter in Series.objects.values_list("id", "sensor__code", "parameter"):
        index[(code, parameter)] = series_id
        params.setdefault(code, []).append(parameter)
    return index, {code: p[0] for code, p in params.items() if len(p) == 1}


def _station_point(station: Station) -> tuple[Point | None, str | None]:
    """The station's position from its file, checked (geovalidate: finite, WGS84 range); a bad one is left off
    with the reason (the sensor and its readings are kept). Not checked against the city: replaying another
    basin's agency file registers stations abroad on purpose."""
    if station.lat is None or station.lon is None:
        return None, None
    try:
        lon, lat = lonlat_check(station.lon, station.lat, what=f"station {station.code}")
    except GeometryInputError as exc:
        log.warning("%s: registered without a position", exc)
        return None, str(exc)
    return Point(lon, lat, srid=4326), None


@transaction.atomic
def sensors_register(*, stations: Sequence[Station], source: str = "") -> list[str]:
    """Register the stations a file names (code, name, position where given) and the series they report;
    existing sensors gain missing series and keep everything else. Returns the codes created."""
    created = []
    for station in stations:
        if not station.parameters:
            continue
        sensor = Sensor.objects.filter(code=station.code).first()
        if sensor is None:
            geom, position_problem = _station_point(station)
            sensor = Sensor.objects.create(
                code=station.code, name=station.name or station.code, geom=geom,
                kind=KIND_FOR_PARAMETER[station.parameters[0]],
                metadata={"source": source, "registered_from_file": True,
                          **({"record_high": station.record_high} if station.record_high is not None else {})})
            created.append(station.code)
            audit_record(action="flood.sensor_registered", obj=sensor, actor_label=f"ingest:{source}",
                         changes={"code": station.code, "parameters": list(station.parameters),
                                  **({"position_refused": position_problem} if position_problem else {})})
        for parameter in station.parameters:
            Series.objects.get_or_create(
                sensor=sensor, parameter=parameter,
                defaults={"unit": CANONICAL_UNITS[parameter], "typical_low": station.typical_low,
                          "typical_high": station.typical_high})
    return created


def _stage_create(cursor) -> None:
    # ON COMMIT DELETE ROWS: one staging table per connection, emptied by every commit, no catalog churn.
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} "
        "(series_id bigint NOT NULL, time timestamptz NOT NULL, value float8 NOT NULL) ON COMMIT DELETE ROWS"
    )


def readings_copy_stage(*, rows: Iterable[tuple[int, dt.datetime, float]]) -> int:
    """COPY (series id, aware time, value) rows into this connection's staging table (binary COPY);
    returns the count. Call inside a transaction."""
    n = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3 under Django's wrapper: joins the caller's transaction
        _stage_create(raw)
        raw.execute(f"TRUNCATE {STAGE_TABLE}")
        with raw.copy(f"COPY {STAGE_TABLE} (series_id, time, value) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "timestamptz", "float8"])
            for row in rows:
                copy.write_row(row)
                n += 1
    return n


def readings_merge_stage() -> int:
    """Move the staged readings into the readings table: new (series, time) pairs are inserted, the rest
    left alone; each series' latest time and value follow its newest stored reading, and a series that got
    readings at or before its latest time counts a backfill. Returns how many were inserted."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO agent_flood_reading (series_id, time, value, qc) "
            f"SELECT series_id, time, value, 0 FROM {STAGE_TABLE} ON CONFLICT (series_id, time) DO NOTHING"
        )
        inserted = cursor.rowcount
        # Writers of many series rows at once (ingests, the live evaluation's marks) take turns: two that each
        # lock rows in their own order could wait on each other for ever. One lock till commit (milliseconds
        # away) costs less than locking a thousand rows in id order first.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SERIES_WRITE_LOCK])
        # The newest and oldest staged time per series (one hash aggregate, no sort), the newest one's value
        # read back from the table: the value stored, whichever copy of a repeated reading won. SET reads the
        # row as it was, so the backfill test sees the latest time before this ingest. A re-sent batch that
        # stored nothing is no backfill; one that stored something may be (the live run checks). Readings
        # after the series' own latest time are no backfill, however late they come after other series'
        # newer ones: the evaluation judges them (each series has its own evaluation mark) and its kept
        # carry goes on, as they follow the readings it holds of that series.
        advances = "s.last_time IS NULL OR m.time > s.last_time"
        backfill = "m.first <= s.last_time AND %s"
        cursor.execute(
            f"""
            UPDATE agent_flood_series s
               SET last_time = CASE WHEN {advances} THEN m.time ELSE s.last_time END,
                   last_value = CASE WHEN {advances} THEN r.value ELSE s.last_value END,
                   backfills = s.backfills + CASE WHEN {backfill} THEN 1 ELSE 0 END
              FROM (SELECT series_id, max(time) AS time, min(time) AS first FROM {STAGE_TABLE} GROUP BY series_id) m
              JOIN agent_flood_reading r ON r.series_id = m.series_id AND r.time = m.time
             WHERE s.id = m.series_id AND ({advances} OR ({backfill}))
            """,
            [inserted > 0, inserted > 0],
        )
    return int(inserted)


@transaction.atomic
def readings_store(*, rows: Sequence[tuple[int, dt.datetime, float]]) -> int:
    """Store (series id, time, value) rows idempotently (COPY + ON CONFLICT DO NOTHING); returns how many
    were new. Series ids must exist (the callers resolve them from the series table)."""
    if not rows:
        return 0
    readings_copy_stage(rows=rows)
    return readings_merge_stage()


def readings_ingest(
    *, data: bytes, fmt: str | None = None, tz: str | None = None, sensor: str | None = None,
    create_sensors: bool = False, source: str = "", now: dt.datetime | None = None, evaluate: bool = True,
) -> IngestResult:
    """Parse, resolve and store a readings file; ask for an evaluation once it is committed.

    Rows naming a sensor (or a sensor's parameter) that is not registered are rejected unless
    `create_sensors` registers the stations the file names. Raises ReadingsFormatError for a file that
    cannot be read at all (unknown format, broken JSON/XML, no CSV header)."""
    index, default_parameter = series_index()
    parsed = readings_parse(data=data, fmt=fmt, tz=tz, default_parameter_for=default_parameter.get, sensor=sensor)
    result = IngestResult(format=parsed.format, rejected=list(parsed.rejected))
    if create_sensors and parsed.stations:
        result.sensors_created = sensors_register(stations=parsed.stations, source=parsed.format)
        index, _ = series_index()
    known_sensors = {code for code, _ in index}
    horizon = (now or timezone.now()) + FUTURE_TOLERANCE
    rows: list[tuple[int, dt.datetime, float]] = []
    for reading in parsed.readings:
        series_id = index.get((reading.sensor, reading.parameter))
        if series_id is None:
            if reading.sensor in known_sensors:
                reason = f"sensor {reading.sensor!r} does not measure {reading.parameter}"
            else:
                reason = f"unknown sensor {reading.sensor!r} (register it first, or ingest with --create-sensors)"
            result.rejected.append(RowError(row=reading.row, reason=reason))
            continue
        if reading.time > horizon:
            result.rejected.append(RowError(
                row=reading.row, reason=f"time {reading.time.isoformat()} is in the future (device clock wrong?)"))
            continue
        rows.append((series_id, reading.time, reading.value))
    result.rejected.sort(key=lambda e: e.row)
    with transaction.atomic():
        result.accepted = readings_store(rows=rows)
        result.duplicates = len(rows) - result.accepted
        if result.accepted and evaluate:
            evaluation_request(reason=f"{result.accepted} readings ingested" + (f" ({source})" if source else ""))
    log.info("ingest %s: %s accepted, %s duplicates, %s rejected", parsed.format, result.accepted,
             result.duplicates, len(result.rejected))
    return result


def readings_from_core(*, readings: Sequence[Reading]) -> list[tuple[int, dt.datetime, float]]:
    """Core readings as storable rows (readings of unknown series are dropped): for tests and drills."""
    index, _ = series_index()
    return [(index[(r.sensor, r.parameter)], r.time, r.value) for r in readings
            if (r.sensor, r.parameter) in index]


# Any 64-bit number unique to this purpose: the lock that makes "is an evaluation already pending?" and
# "enqueue one" a single step across concurrent ingests.
_EVALUATION_LOCK = 0x466C6F6F64455661  # "FloodEva"


def evaluation_request(*, reason: str) -> None:
    """After the current transaction commits, enqueue an evaluation on the realtime queue unless one is
    already waiting: a burst of ingest requests is evaluated by one run, not one run each."""

    def _enqueue() -> None:
        from agents.core.models import AgentRun
        from agents.core.services import agent_run_create

        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EVALUATION_LOCK])
            if AgentRun.objects.filter(agent="flood", status=AgentRun.Status.PENDING).exists():
                return
            agent_run_create(agent="flood", trigger=AgentRun.Trigger.MONITOR, reason=reason)

    transaction.on_commit(_enqueue)
