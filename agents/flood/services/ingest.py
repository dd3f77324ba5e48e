"""Readings in: parse any supported file (the core detects the format), resolve sensors and series, store
through COPY into a staging table and one `INSERT ... ON CONFLICT DO NOTHING` (idempotent: a reading is
stored once per series and time), keep the series' latest values, and ask for an evaluation after commit.

A reading re-sent with another value is a revision (agencies revise provisional data): the series takes
the new value, the old one is kept in `ReadingRevision` with when it was replaced, and a revised reading
the evaluation had already judged moves its series' evaluation mark back to just before it, so the next
run judges the series again from there with the new value (the normal path for readings not yet judged).

A physically impossible value (`reading_impossible`: negative rain, rain above the world record for its
interval, a level, discharge or depth outside the sensor's measuring range or the parameter's hard
limits) is stored flagged `impossible` and reported; it is never read back for the rules. Readings dated
before the sensor's `installed_on`, or more than FUTURE_TOLERANCE ahead of the clock, are rejected.

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

from ..domain import Reading, RowError, Station, readings_parse
from ..domain.qc import reading_impossible
from ..domain.vocabulary import CANONICAL_UNITS
from ..models import Reading as ReadingRow
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
    """What one ingest did: readings newly stored, readings already there with the same value (re-sent or
    repeated in the file), readings that replaced a stored value (revised), rejected rows with reasons,
    stored readings flagged impossible, and any sensors it registered. `recognised` counts the rows the
    parser read from the file, as readings or as rejected rows (the commands' exit status: none is a
    failure, and `notes` then say what was skipped)."""

    accepted: int = 0
    duplicates: int = 0
    revised: int = 0
    rejected: list[RowError] = field(default_factory=list)
    flagged: list[RowError] = field(default_factory=list)
    format: str = ""
    sensors_created: list[str] = field(default_factory=list)
    recognised: int = 0
    notes: list[str] = field(default_factory=list)  # the parser's: what it skipped and why

    def as_dict(self) -> dict:
        """The JSON the command and the API print: accepted, duplicates, revised, rejected and flagged rows."""
        return {"accepted": self.accepted, "duplicates": self.duplicates, "revised": self.revised,
                "rejected": [{"row": e.row, "reason": e.reason} for e in self.rejected],
                "flagged": [{"row": e.row, "reason": e.reason} for e in self.flagged]}


@dataclass(frozen=True)
class SeriesRef:
    """What the ingest checks a reading against: its series, the sensor's installation day and measuring
    range, the series' latest time and the sensor's reporting interval (a rainfall total's span)."""

    id: int
    parameter: str
    installed_on: dt.date | None
    range_low: float | None
    range_high: float | None
    last_time: dt.datetime | None
    interval: dt.timedelta | None


def series_index() -> tuple[dict[tuple[str, str, str], SeriesRef], dict[str, str]]:
    """((sensor code, parameter, statistic) -> series, sensor code -> its only instantaneous parameter) for
    resolving rows."""
    index: dict[tuple[str, str, str], SeriesRef] = {}
    params: dict[str, list[str]] = {}
    rows = Series.objects.values_list("id", "sensor__code", "parameter", "statistic", "sensor__installed_on",
                                      "range_low", "range_high", "last_time", "sensor__expected_interval_s")
    for series_id, code, parameter, statistic, installed, low, high, last, interval_s in rows:
        index[(code, parameter, statistic)] = SeriesRef(
            series_id, parameter, installed, low, high, last,
            dt.timedelta(seconds=interval_s) if interval_s else None)
        if not statistic:
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
    """Register the stations a file names (code, name, position where given) and the series they report
    (instantaneous and summary ones); existing sensors gain missing series and keep everything else.
    Returns the codes created."""
    created = []
    for station in stations:
        series = [(parameter, "") for parameter in station.parameters] + list(station.statistics)
        if not series:
            continue
        sensor = Sensor.objects.filter(code=station.code).first()
        if sensor is None:
            geom, position_problem = _station_point(station)
            sensor = Sensor.objects.create(
                code=station.code, name=station.name or station.code, geom=geom,
                kind=KIND_FOR_PARAMETER[series[0][0]],
                metadata={"source": source, "registered_from_file": True,
                          **({"record_high": station.record_high} if station.record_high is not None else {})})
            created.append(station.code)
            audit_record(action="flood.sensor_registered", obj=sensor, actor_label=f"ingest:{source}",
                         changes={"code": station.code, "parameters": list(station.parameters),
                                  "statistics": [list(s) for s in station.statistics],
                                  **({"position_refused": position_problem} if position_problem else {})})
        for parameter, statistic in series:
            Series.objects.get_or_create(
                sensor=sensor, parameter=parameter, statistic=statistic,
                defaults={"unit": CANONICAL_UNITS[parameter], "typical_low": station.typical_low,
                          "typical_high": station.typical_high})
    return created


def _stage_create(cursor) -> None:
    # ON COMMIT DELETE ROWS: one staging table per connection, emptied by every commit, no catalog churn.
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} "
        "(series_id bigint NOT NULL, time timestamptz NOT NULL, value float8 NOT NULL, qc int2 NOT NULL) "
        "ON COMMIT DELETE ROWS"
    )


def readings_copy_stage(*, rows: Iterable[tuple]) -> int:
    """COPY (series id, aware time, value[, qc]) rows into this connection's staging table (binary COPY;
    qc 0 where a row has none); returns the count. Call inside a transaction."""
    n = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3 under Django's wrapper: joins the caller's transaction
        _stage_create(raw)
        raw.execute(f"TRUNCATE {STAGE_TABLE}")
        with raw.copy(f"COPY {STAGE_TABLE} (series_id, time, value, qc) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "timestamptz", "float8", "int2"])
            for row in rows:
                copy.write_row(row if len(row) == 4 else (*row, 0))
                n += 1
    return n


# The stored readings whose staged value differs (one row per key: the ingest stages each key once).
_CHANGED = f"""
    SELECT r.series_id, r.time, r.value, r.qc, s.value AS new_value, s.qc AS new_qc
      FROM {STAGE_TABLE} s JOIN agent_flood_reading r ON r.series_id = s.series_id AND r.time = s.time
     WHERE r.value <> s.value
"""


def _revisions_apply(cursor) -> int:
    """Staged readings that change a stored value: keep the old value (ReadingRevision), store the new one
    with its flag, and move the mark of a series whose revised reading was already judged back to just
    before it (the next evaluation judges the series again from there). Returns how many were revised."""
    cursor.execute(
        f"""
        WITH changed AS ({_CHANGED}),
        kept AS (
            INSERT INTO agent_flood_readingrevision (series_id, time, value, qc, replaced_at)
            SELECT series_id, time, value, qc, now() FROM changed
        ),
        marks AS (
            UPDATE agent_flood_series se SET evaluated_until = c.first - interval '1 microsecond'
              FROM (SELECT series_id, min(time) AS first FROM changed GROUP BY series_id) c
             WHERE se.id = c.series_id AND se.evaluated_until >= c.first
        )
        UPDATE agent_flood_reading r SET value = c.new_value, qc = c.new_qc
          FROM changed c WHERE r.series_id = c.series_id AND r.time = c.time
        """
    )
    return int(cursor.rowcount)


def readings_merge_stage(*, staged: int | None = None) -> tuple[int, int]:
    """Move the staged readings into the readings table: new (series, time) pairs are inserted, stored ones
    with another value revised (`_revisions_apply`; only looked for when some staged readings were there
    already, `staged` being how many were staged), the rest left alone; each series' latest time and value
    follow its newest stored reading that is not impossible, and a series that got readings at or before
    its latest time counts a backfill. Returns (inserted, revised)."""
    with connection.cursor() as cursor:
        # In time order: the table grows at its end in time, so its BRIN index on time keeps each block range
        # to a few minutes and the live reads of the last minutes touch a few blocks. A batch inserted as
        # staged (a file or a loader goes sensor by sensor) spreads every block range over the batch's whole
        # span: a week loaded a day at a time left the carried tick reading a whole day's blocks (4,031).
        cursor.execute(
            f"INSERT INTO agent_flood_reading (series_id, time, value, qc) "
            f"SELECT series_id, time, value, qc FROM {STAGE_TABLE} ORDER BY time, series_id "
            f"ON CONFLICT (series_id, time) DO NOTHING"
        )
        inserted = cursor.rowcount
        # Writers of many series rows at once (ingests, the live evaluation's marks) take turns: two that each
        # lock rows in their own order could wait on each other for ever. One lock till commit (milliseconds
        # away) costs less than locking a thousand rows in id order first.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SERIES_WRITE_LOCK])
        revised = _revisions_apply(cursor) if staged is None or inserted < staged else 0
        # The newest and oldest staged time per series (one hash aggregate, no sort), the newest one's value
        # read back from the table: the value stored, whichever copy of a repeated reading won. SET reads the
        # row as it was, so the backfill test sees the latest time before this ingest. A re-sent batch that
        # stored nothing is no backfill; one that stored something may be (the live run checks). Readings
        # after the series' own latest time are no backfill, however late they come after other series'
        # newer ones: the evaluation judges them (each series has its own evaluation mark) and its kept
        # carry goes on, as they follow the readings it holds of that series. Impossible readings are
        # never judged, so they move nothing.
        advances = "s.last_time IS NULL OR m.time > s.last_time"
        backfill = "m.first <= s.last_time AND %s"
        latest = f"({advances} OR (m.time = s.last_time AND %s))"  # a revision of the latest reading too
        cursor.execute(
            f"""
            UPDATE agent_flood_series s
               SET last_time = CASE WHEN {advances} THEN m.time ELSE s.last_time END,
                   last_value = CASE WHEN {latest} THEN r.value ELSE s.last_value END,
                   backfills = s.backfills + CASE WHEN {backfill} THEN 1 ELSE 0 END
              FROM (SELECT series_id, max(time) AS time, min(time) AS first FROM {STAGE_TABLE}
                     WHERE qc <> {int(ReadingRow.QC.IMPOSSIBLE)} GROUP BY series_id) m
              JOIN agent_flood_reading r ON r.series_id = m.series_id AND r.time = m.time
             WHERE s.id = m.series_id AND ({latest} OR ({backfill}))
            """,
            [revised > 0, inserted > 0, revised > 0, inserted > 0],
        )
    return int(inserted), revised


@transaction.atomic
def readings_write(*, rows: Sequence[tuple]) -> tuple[int, int]:
    """Store (series id, time, value[, qc]) rows idempotently (COPY + ON CONFLICT DO NOTHING, other values
    as revisions); returns (new, revised). Series ids must exist (the callers resolve them from the series
    table); each (series, time) once (a repeated one with another value counts as a revision)."""
    if not rows:
        return 0, 0
    staged = readings_copy_stage(rows=rows)
    return readings_merge_stage(staged=staged)


def readings_store(*, rows: Sequence[tuple]) -> int:
    """`readings_write`, returning how many readings were new (loaders and benchmarks)."""
    return readings_write(rows=rows)[0]


def _rows_checked(*, readings: Sequence[Reading], index: dict[tuple[str, str, str], SeriesRef],
                  horizon: dt.datetime, result: IngestResult) -> list[tuple[int, dt.datetime, float, int]]:
    """The parsed readings as storable (series id, time, value, qc) rows, each (series, time) once (the
    file's last copy wins: a file that lists a reading twice corrects itself); rows of unknown series, in
    the future or before the sensor's installation are rejected, impossible values flagged (`result`)."""
    known_sensors = {code for code, _, _ in index}
    keyed: dict[tuple[int, dt.datetime], tuple[int, dt.datetime, float, int]] = {}
    previous: dict[int, dt.datetime] = {}  # per series, the time of the reading before (a rain total's span)
    for reading in sorted(readings, key=lambda r: r.time):
        ref = index.get((reading.sensor, reading.parameter, reading.statistic))
        reason = None
        if ref is None:
            what = reading.parameter + (f" (statistic {reading.statistic})" if reading.statistic else "")
            reason = (f"sensor {reading.sensor!r} does not measure {what}" if reading.sensor in known_sensors
                      else f"unknown sensor {reading.sensor!r} (register it first, or ingest with --create-sensors)")
        elif reading.time > horizon:
            reason = f"time {reading.time.isoformat()} is in the future (device clock wrong?)"
        elif ref.installed_on is not None and reading.time.date() < ref.installed_on:
            reason = f"time {reading.time.isoformat()} is before the sensor was installed ({ref.installed_on})"
        if reason is not None:
            result.rejected.append(RowError(row=reading.row, reason=reason))
            continue
        before = previous.get(ref.id, ref.last_time if ref.last_time and ref.last_time < reading.time else None)
        previous[ref.id] = reading.time
        interval = reading.time - before if before is not None and before < reading.time else ref.interval
        impossible = reading_impossible(parameter=ref.parameter, value=reading.value, interval=interval,
                                        low=ref.range_low, high=ref.range_high)
        if impossible is not None:
            result.flagged.append(RowError(row=reading.row, reason=f"{reading.sensor} {reading.parameter}: {impossible}"))
        qc = int(ReadingRow.QC.IMPOSSIBLE if impossible else ReadingRow.QC.OK)
        keyed[(ref.id, reading.time)] = (ref.id, reading.time, reading.value, qc)
    result.flagged.sort(key=lambda e: e.row)
    return list(keyed.values())


def readings_ingest(
    *, data: bytes, fmt: str | None = None, tz: str | None = None, sensor: str | None = None,
    create_sensors: bool = False, source: str = "", now: dt.datetime | None = None, evaluate: bool = True,
) -> IngestResult:
    """Parse, check, resolve and store a readings file; ask for an evaluation once it is committed.

    Rows naming a sensor (or a sensor's parameter) that is not registered are rejected unless
    `create_sensors` registers the stations the file names. Raises ReadingsFormatError for a file that
    cannot be read at all (unknown format, broken JSON/XML, no CSV header, no value column it reads)."""
    index, default_parameter = series_index()
    parsed = readings_parse(data=data, fmt=fmt, tz=tz, default_parameter_for=default_parameter.get, sensor=sensor)
    result = IngestResult(format=parsed.format, rejected=list(parsed.rejected), notes=list(parsed.notes),
                          recognised=len(parsed.readings) + len(parsed.rejected))
    if create_sensors and parsed.stations:
        result.sensors_created = sensors_register(stations=parsed.stations, source=parsed.format)
        index, _ = series_index()
    rows = _rows_checked(readings=parsed.readings, index=index, horizon=(now or timezone.now()) + FUTURE_TOLERANCE,
                         result=result)
    result.rejected.sort(key=lambda e: e.row)
    checked = len(parsed.readings) - (len(result.rejected) - len(parsed.rejected))  # not refused by the checks
    with transaction.atomic():
        result.accepted, result.revised = readings_write(rows=rows)
        result.duplicates = checked - result.accepted - result.revised
        if (result.accepted or result.revised) and evaluate:
            evaluation_request(reason=f"{result.accepted} readings ingested, {result.revised} revised"
                               + (f" ({source})" if source else ""))
    log.info("ingest %s: %s accepted, %s duplicates, %s revised, %s rejected, %s flagged impossible", parsed.format,
             result.accepted, result.duplicates, result.revised, len(result.rejected), len(result.flagged))
    return result


# Any 64-bit number unique to this purpose: the lock that makes "is an evaluation already pending?" and
# "enqueue one" a single step across concurrent ingests.
_EVALUATION_LOCK = 0x466C6F6F64455661  # "FloodEva"


def evaluation_request(*, reason: str) -> None:
    """After the current transaction commits, enqueue an evaluation on the realtime queue unless one is
    already waiting: a burst of ingest requests is evaluated by one run, not one run each."""

    def _enqueue() -> None:
        from agents.runtime.models import AgentRun
        from agents.runtime.services import agent_run_create

        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EVALUATION_LOCK])
            if AgentRun.objects.filter(agent="flood", status=AgentRun.Status.PENDING).exists():
                return
            agent_run_create(agent="flood", trigger=AgentRun.Trigger.MONITOR, reason=reason)

    transaction.on_commit(_enqueue)
