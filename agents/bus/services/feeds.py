"""GTFS import: check the zip, read and validate it with the core (partridge), then load every table into
PostGIS in one transaction, stop_times and the other large tables by COPY. A feed that fails validation
leaves the database untouched; re-importing a feed replaces its rows atomically."""
from __future__ import annotations

import hashlib
import logging
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from django.db import connection, transaction
from django.utils import timezone

from agents.bus.conf import conf
from city_ops.core.db import copy_rows
from city_ops.core.services import audit_record

from ..domain.gtfs import DAYS, FeedError, feed_read, feed_validate
from ..models import (
    Agency,
    Calendar,
    CalendarDate,
    Detour,
    Feed,
    Frequency,
    Route,
    Shape,
    Stop,
    StopTime,
    Trip,
)

log = logging.getLogger(__name__)

# A GTFS zip holds text tables only; anything else (or a bomb) is refused before partridge unpacks it.
MAX_UNCOMPRESSED_BYTES = 1024 * 1024 * 1024
MAX_RATIO = 200


class FeedImportError(Exception):
    """The file cannot be imported; `problems` lists every finding (as text), nothing was stored."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = list(problems or [])

    def __str__(self) -> str:
        detail = "".join(f"\n  - {p}" for p in self.problems)
        return f"{self.args[0]}{detail}"


@dataclass
class ImportResult:
    """What an import did: the feed row, whether it was new or replaced, rows per table and seconds."""

    feed: Feed
    created: bool
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"feed": self.feed.pk, "name": self.feed.name, "created": self.created, "sha256": self.feed.sha256,
                "agency_timezone": self.feed.agency_timezone, "counts": self.counts, "warnings": self.warnings,
                "seconds": round(self.seconds, 3)}


def file_sha256(*, path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def feed_zip_check(*, path: str | Path, max_bytes: int | None = None) -> None:
    """Refuse what is not a plain GTFS zip: too large, not a zip, damaged, entries with paths that climb out
    of the folder, or a decompression bomb. Raises FeedImportError with the reason."""
    path = Path(path)
    max_bytes = max_bytes or conf("BUS_FEED_MAX_UPLOAD_BYTES")
    size = path.stat().st_size
    if size == 0:
        raise FeedImportError(f"{path.name} is empty")
    if size > max_bytes:
        raise FeedImportError(f"{path.name} is {size} bytes; the limit is {max_bytes}")
    if not zipfile.is_zipfile(path):
        raise FeedImportError(f"{path.name} is not a zip file (a GTFS feed is a zip of .txt tables)")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            bad = [i.filename for i in infos if i.filename.startswith(("/", "\\")) or ".." in Path(i.filename).parts]
            if bad:
                raise FeedImportError(f"{path.name} holds entries with unsafe paths: {bad[:5]}")
            total = sum(i.file_size for i in infos)
            packed = sum(i.compress_size for i in infos) or 1
            if total > MAX_UNCOMPRESSED_BYTES or total / packed > MAX_RATIO:
                raise FeedImportError(f"{path.name} unpacks to {total} bytes ({total / packed:.0f}x): refused "
                                      "as a decompression bomb")
            damaged = archive.testzip()
            if damaged:
                raise FeedImportError(f"{path.name} is damaged: {damaged} fails its CRC check")
            if not any(i.filename.endswith(".txt") for i in infos):
                raise FeedImportError(f"{path.name} holds no .txt tables")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise FeedImportError(f"{path.name} is not a readable zip: {exc}") from None


# ------------------------------------------------------------------------------------------------ helpers


def _text(value, default: str = "") -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return default
    return str(value).strip()


def _int(value) -> int | None:
    if value is None or pd.isna(value):
        return None
    return int(value)


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)


def _feed_rows_delete(feed: Feed) -> None:
    """Delete a feed's GTFS rows (not the feed, its plans or positions), children first, by SQL: the ORM's
    cascade would load tens of thousands of stop_times into memory first."""
    Detour.objects.filter(feed=feed).delete()
    with connection.cursor() as cur:
        for model in (StopTime, Frequency, Trip, Shape, Stop, Route, Agency, Calendar, CalendarDate):
            cur.execute(f'DELETE FROM "{model._meta.db_table}" WHERE feed_id = %s', [feed.pk])


def _ids(model, feed: Feed, key: str) -> dict[str, int]:
    return dict(model.objects.filter(feed=feed).values_list(key, "id"))


def _rows_load(feed: Feed, core) -> dict[str, int]:
    """COPY every table of a validated core feed into the database under `feed`; returns rows per table.

    Parents first: trips and stop times refer to the ids the routes, shapes, trips and stops got."""
    fid = feed.pk
    counts = {
        "agency": _agency_load(fid, core.agency),
        "routes": _routes_load(fid, core.routes),
        "stops": _stops_load(fid, core.stops),
        "shapes": _shapes_load(fid, core.shapes),
    }
    route_ids, shape_ids = _ids(Route, feed, "route_id"), _ids(Shape, feed, "shape_id")
    counts["trips"] = _trips_load(fid, core.trips, route_ids, shape_ids)
    trip_ids, stop_ids = _ids(Trip, feed, "trip_id"), _ids(Stop, feed, "stop_id")
    counts["stop_times"] = _stop_times_load(fid, core.stop_times, trip_ids, stop_ids)
    cal = core.calendar
    if len(cal) and "service_id" in cal.columns:
        counts["calendar"] = copy_rows(
            table=Calendar._meta.db_table, columns=["feed_id", "service_id", *DAYS, "start_date", "end_date"],
            rows=[(fid, _text(row["service_id"]), *(bool(int(row[d])) for d in DAYS), row["start_date"].date(),
                   row["end_date"].date()) for _, row in cal.iterrows()])
    cd = core.calendar_dates
    if len(cd) and "service_id" in cd.columns:
        counts["calendar_dates"] = copy_rows(
            table=CalendarDate._meta.db_table, columns=["feed_id", "service_id", "date", "exception_type"],
            rows=[(fid, _text(svc), day.date(), int(kind)) for svc, day, kind in zip(
                cd["service_id"], cd["date"], cd["exception_type"])])
    fr = core.frequencies
    if len(fr) and "trip_id" in fr.columns:
        counts["frequencies"] = _frequencies_load(fid, fr, trip_ids)
    _route_geometries(feed)
    return counts


def _agency_load(fid: int, ag: pd.DataFrame) -> int:
    return copy_rows(table=Agency._meta.db_table, columns=["feed_id", "agency_id", "name", "url", "timezone"],
                     rows=[(fid, _text(a), _text(n), _text(u), _text(z)) for a, n, u, z in zip(
                         _col(ag, "agency_id"), _col(ag, "agency_name"), _col(ag, "agency_url"),
                         _col(ag, "agency_timezone"))])


def _routes_load(fid: int, r: pd.DataFrame) -> int:
    return copy_rows(
        table=Route._meta.db_table,
        columns=["feed_id", "route_id", "agency_id", "short_name", "long_name", "route_type", "color"],
        rows=[(fid, _text(rid), _text(a), _text(s)[:50], _text(lname)[:200], _int(pd.to_numeric(t, errors="coerce")) or 3,
               _text(c)[:6]) for rid, a, s, lname, t, c in zip(
            r["route_id"], _col(r, "agency_id"), _col(r, "route_short_name"), _col(r, "route_long_name"),
            _col(r, "route_type"), _col(r, "route_color"))])


def _stops_load(fid: int, s: pd.DataFrame) -> int:
    def point(lat, lon):
        return None if pd.isna(lat) or pd.isna(lon) else f"SRID=4326;POINT({float(lon)!r} {float(lat)!r})"

    return copy_rows(
        table=Stop._meta.db_table,
        columns=["feed_id", "stop_id", "code", "name", "geom", "location_type", "parent_station"],
        rows=[(fid, _text(sid), _text(code)[:50], _text(name)[:200], point(lat, lon), _int(lt) or 0, _text(parent))
              for sid, code, name, lat, lon, lt, parent in zip(
                  s["stop_id"], _col(s, "stop_code"), _col(s, "stop_name"), s["stop_lat"], s["stop_lon"],
                  _col(s, "location_type"), _col(s, "parent_station"))])


def _shapes_load(fid: int, sh: pd.DataFrame) -> int:
    """Each shape as one line through its points in sequence order (a shape of fewer than two points: none)."""
    shapes_rows = []
    if len(sh) and {"shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"} <= set(sh.columns):
        ordered = sh.dropna(subset=["shape_pt_lat", "shape_pt_lon"]).sort_values(
            ["shape_id", "shape_pt_sequence"], kind="stable")
        for shape_id, pts in ordered.groupby("shape_id", sort=False):
            coords = list(zip(pts["shape_pt_lon"].astype(float), pts["shape_pt_lat"].astype(float)))
            if len(coords) < 2:
                continue
            shapes_rows.append((fid, _text(shape_id), "SRID=4326;LINESTRING(" + ", ".join(
                f"{x!r} {y!r}" for x, y in coords) + ")"))
    return copy_rows(table=Shape._meta.db_table, columns=["feed_id", "shape_id", "geom"], rows=shapes_rows)


def _trips_load(fid: int, t: pd.DataFrame, route_ids: dict[str, int], shape_ids: dict[str, int]) -> int:
    return copy_rows(
        table=Trip._meta.db_table,
        columns=["feed_id", "trip_id", "route_id", "service_id", "direction_id", "shape_id", "block_id", "headsign"],
        rows=[(fid, _text(tid), route_ids[_text(rid)], _text(svc), _int(d), shape_ids.get(_text(shp)),
               _text(blk)[:100], _text(head)[:200]) for tid, rid, svc, d, shp, blk, head in zip(
            t["trip_id"], t["route_id"], t["service_id"], _col(t, "direction_id"), _col(t, "shape_id"),
            _col(t, "block_id"), _col(t, "trip_headsign"))])


def _stop_times_load(fid: int, st: pd.DataFrame, trip_ids: dict[str, int], stop_ids: dict[str, int]) -> int:
    st = st[st["trip_id"].isin(trip_ids.keys())]  # orphans were reported as warnings by validation
    arr = _col(st, "arrival_time")
    dep = _col(st, "departure_time")
    dist = _col(st, "shape_dist_traveled")
    return copy_rows(
        table=StopTime._meta.db_table,
        columns=["feed_id", "trip_id", "stop_id", "stop_sequence", "arrival_s", "departure_s", "shape_dist_traveled"],
        rows=((fid, trip_ids[tid], stop_ids[sid], int(seq), _int(a), _int(d), None if pd.isna(x) else float(x))
              for tid, sid, seq, a, d, x in zip(st["trip_id"], st["stop_id"], st["stop_sequence"], arr, dep, dist)))


def _frequencies_load(fid: int, fr: pd.DataFrame, trip_ids: dict[str, int]) -> int:
    fr = fr[fr["trip_id"].isin(trip_ids.keys())]
    return copy_rows(
        table=Frequency._meta.db_table, columns=["feed_id", "trip_id", "start_s", "end_s", "headway_s", "exact_times"],
        rows=[(fid, trip_ids[tid], int(a), int(b), int(h), _int(x) or 0) for tid, a, b, h, x in zip(
            fr["trip_id"], fr["start_time"], fr["end_time"], fr["headway_secs"], _col(fr, "exact_times"))])


def _route_geometries(feed: Feed) -> None:
    """Each route's line for the map and spatial queries: its shapes, or, for a route whose trips carry no
    shape, the stops of its longest trip joined in order."""
    with connection.cursor() as cur:
        cur.execute(f"""
            UPDATE {Route._meta.db_table} r SET geom = sub.g FROM (
                SELECT rs.route_id, ST_Multi(ST_Collect(s.geom)) AS g
                FROM (SELECT DISTINCT route_id, shape_id FROM {Trip._meta.db_table}
                      WHERE feed_id = %s AND shape_id IS NOT NULL) rs
                JOIN {Shape._meta.db_table} s ON s.id = rs.shape_id GROUP BY rs.route_id) sub
            WHERE r.id = sub.route_id""", [feed.pk])
        cur.execute(f"""
            UPDATE {Route._meta.db_table} r SET geom = sub.g FROM (
                SELECT DISTINCT ON (t.route_id) t.route_id,
                       ST_Multi(ST_MakeLine(ARRAY(
                           SELECT s.geom FROM {StopTime._meta.db_table} x JOIN {Stop._meta.db_table} s ON s.id = x.stop_id
                           WHERE x.trip_id = t.id AND s.geom IS NOT NULL ORDER BY x.stop_sequence))) AS g
                FROM {Trip._meta.db_table} t
                WHERE t.feed_id = %s
                ORDER BY t.route_id, (SELECT count(*) FROM {StopTime._meta.db_table} y WHERE y.trip_id = t.id) DESC
            ) sub
            WHERE r.id = sub.route_id AND r.geom IS NULL AND ST_NPoints(sub.g) >= 2""", [feed.pk])


def _detours_refresh(feed: Feed) -> None:
    """A re-import drops the feed's detours with its routes: work them out again for closures still open."""
    from city_ops.city.models import RoadClosure

    from .detours import detours_open

    for closure in RoadClosure.objects.active().filter(segments__isnull=False).distinct():
        detours_open(closure=closure, notify=False)


def _service_span(core) -> tuple:
    days = []
    if len(core.calendar) and "start_date" in core.calendar.columns:
        days += [core.calendar["start_date"].min(), core.calendar["end_date"].max()]
    if len(core.calendar_dates) and "date" in core.calendar_dates.columns:
        added = core.calendar_dates[core.calendar_dates["exception_type"] == 1]["date"]
        if len(added):
            days += [added.min(), added.max()]
    days = [d for d in days if not pd.isna(d)]
    return (min(days).date(), max(days).date()) if days else (None, None)


def feed_import(
    *, path: str | Path, name: str = "", source_name: str = "", replace: Feed | None = None, user=None,
) -> ImportResult:
    """Import a GTFS zip. Validates first (FeedImportError lists every problem; nothing is stored), then
    loads it in one transaction: into a new feed, into the feed already holding this very file (same
    SHA-256: its rows are replaced), or into `replace` (a new version of that feed)."""
    started = time.perf_counter()
    path = Path(path)
    feed_zip_check(path=path)
    sha = file_sha256(path=path)
    try:
        core = feed_read(path=path)
        warnings = [str(w) for w in feed_validate(feed=core)]
    except FeedError as exc:
        raise FeedImportError(f"{source_name or path.name} was not imported: "
                              f"{sum(p.severity == 'error' for p in exc.problems)} error(s)",
                              [str(p) for p in exc.problems]) from None
    agencies = [n for n in _col(core.agency, "agency_name").dropna().astype(str) if n.strip()]
    with transaction.atomic():
        existing = Feed.objects.select_for_update().filter(sha256=sha).first()
        if replace is not None:
            if existing is not None and existing.pk != replace.pk:
                raise FeedImportError(f"this file is already imported as feed #{existing.pk} ({existing.name})")
            feed = Feed.objects.select_for_update().get(pk=replace.pk)
        else:
            feed = existing or Feed()
        created = feed.pk is None
        if not created:
            _feed_rows_delete(feed)
        feed.name = (name or ", ".join(agencies[:3]) or path.stem)[:200]
        feed.source_name = (source_name or path.name)[:255]
        feed.sha256 = sha
        feed.agency_timezone = core.timezone or ""
        feed.has_block_id = core.has_block_id
        feed.service_start, feed.service_end = _service_span(core)
        feed.warnings = warnings[:200]
        feed.imported_at = timezone.now()
        feed.imported_by = user if getattr(user, "is_authenticated", False) else None
        feed.save()
        counts = _rows_load(feed, core)
        if not created:
            _detours_refresh(feed)
        seconds = time.perf_counter() - started
        feed.stats = {**counts, "seconds": round(seconds, 3)}
        feed.save(update_fields=["stats"])
        audit_record(action="bus.feed.imported" if created else "bus.feed.replaced", obj=feed, actor=user,
                     actor_label="" if user else "agent:bus", changes={"sha256": sha, "counts": counts})
    log.info("GTFS %s imported as feed #%s in %.2f s: %s", path.name, feed.pk, seconds, counts)
    return ImportResult(feed=feed, created=created, counts=counts, warnings=warnings, seconds=seconds)


def feed_resolve(*, value: str, user=None) -> tuple[Feed, ImportResult | None]:
    """A feed named on a command line: the database id of an imported feed, or a GTFS zip (imported when
    its SHA-256 is new). Returns the feed and the import result when an import happened."""
    text = str(value).strip()
    if text.isdigit() and not Path(text).exists():
        feed = Feed.objects.filter(pk=int(text)).first()
        if feed is None:
            known = ", ".join(f"#{f.pk} {f.name}" for f in Feed.objects.all()[:10]) or "none"
            raise FeedImportError(f"no imported feed has id {text} (imported: {known})")
        return feed, None
    path = Path(text)
    if not path.exists():
        raise FeedImportError(f"{text} is neither a feed id nor a file")
    feed = Feed.objects.filter(sha256=file_sha256(path=path)).first()
    if feed is not None:
        return feed, None
    result = feed_import(path=path, user=user)
    return result.feed, result


def feed_delete(*, feed: Feed, user=None) -> None:
    """Delete a feed with everything imported from it and its plans (rows by SQL first: see above)."""
    with transaction.atomic():
        _feed_rows_delete(feed)
        audit_record(action="bus.feed.deleted", obj=feed, actor=user, changes={"name": feed.name})
        feed.delete()
