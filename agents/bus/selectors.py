"""Reads for the bus agent: an imported feed as the core's DataFrames, the day's trips, plans as block lists,
spatial queries (stops in an area, the feed near some positions) and the map's GeoJSON layers."""
from __future__ import annotations

import datetime as dt
import json
import threading
import zoneinfo
from collections import OrderedDict

import numpy as np
import pandas as pd
from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models import Avg, Count, F, Max, Q, QuerySet, Value
from django.db.models.functions import Abs, Greatest, Ln
from django.utils import timezone
from django.utils.translation import gettext_noop

from agents.bus.conf import conf
from agents.runtime.base import StatementSection
from agents.runtime.statement import Note, PeriodKpis, SummedKpi, days_listed, section_summed
from city_ops.city.selectors import index_box_sql
from city_ops.core.timeutil import day_bounds

from .domain.gtfs import DAYS, service_trips
from .domain.gtfs import Feed as CoreFeed
from .domain.realtime import headway_grade
from .models import (
    Agency,
    Block,
    BlockTrip,
    Calendar,
    CalendarDate,
    Detour,
    Feed,
    Frequency,
    HeadwaySnapshot,
    HeadwayWarning,
    Route,
    Shape,
    Stop,
    StopTime,
    Trip,
    VehiclePlan,
    VehiclePosition,
    VehicleState,
)

_frames_lock = threading.Lock()
_frames: OrderedDict[tuple, CoreFeed] = OrderedDict()
_FRAMES_KEPT = 4


def _query(sql: str, params: list, columns: list[str]) -> pd.DataFrame:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return pd.DataFrame(cur.fetchall(), columns=columns)


def _seconds(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="coerce").astype(float)


def feed_frames(*, feed: Feed) -> CoreFeed:
    """The imported feed as the core's typed DataFrames (what `feed_read` returns for the zip), read from
    PostGIS and kept per process until the feed is re-imported. Marked validated: it was, on import."""
    key = (feed.pk, feed.imported_at)
    with _frames_lock:
        if key in _frames:
            _frames.move_to_end(key)
            return _frames[key]
    fid = feed.pk
    agency = pd.DataFrame(list(Agency.objects.filter(feed_id=fid).values_list("agency_id", "name", "url", "timezone")),
                          columns=["agency_id", "agency_name", "agency_url", "agency_timezone"])
    routes = pd.DataFrame(list(Route.objects.filter(feed_id=fid).order_by("id").values_list(
        "route_id", "agency_id", "short_name", "long_name", "route_type", "color")),
        columns=["route_id", "agency_id", "route_short_name", "route_long_name", "route_type", "route_color"])
    stops = _query(f"SELECT stop_id, code, name, ST_Y(geom), ST_X(geom), location_type, parent_station "
                   f"FROM {Stop._meta.db_table} WHERE feed_id = %s ORDER BY id", [fid],
                   ["stop_id", "stop_code", "stop_name", "stop_lat", "stop_lon", "location_type", "parent_station"])
    stops["stop_lat"] = _seconds(stops["stop_lat"])
    stops["stop_lon"] = _seconds(stops["stop_lon"])
    shape_rows = []
    for shape_id, geom in Shape.objects.filter(feed_id=fid).order_by("id").values_list("shape_id", "geom"):
        shape_rows.extend((shape_id, lat, lon, k + 1) for k, (lon, lat) in enumerate(geom.coords))
    shapes = pd.DataFrame(shape_rows, columns=["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"])
    shapes["shape_pt_sequence"] = shapes["shape_pt_sequence"].astype("Int64")
    trips = _query(
        f"SELECT r.route_id, t.service_id, t.trip_id, t.headsign, t.direction_id, t.block_id, s.shape_id "
        f"FROM {Trip._meta.db_table} t JOIN {Route._meta.db_table} r ON r.id = t.route_id "
        f"LEFT JOIN {Shape._meta.db_table} s ON s.id = t.shape_id WHERE t.feed_id = %s ORDER BY t.id", [fid],
        ["route_id", "service_id", "trip_id", "trip_headsign", "direction_id", "block_id", "shape_id"])
    trips["direction_id"] = pd.array(trips["direction_id"].tolist(), dtype="Int64")
    trips["block_id"] = trips["block_id"].replace("", pd.NA)
    trips["shape_id"] = trips["shape_id"].astype(object).where(trips["shape_id"].notna(), pd.NA)
    stop_times = _query(
        f"SELECT t.trip_id, x.arrival_s, x.departure_s, s.stop_id, x.stop_sequence, x.shape_dist_traveled "
        f"FROM {StopTime._meta.db_table} x JOIN {Trip._meta.db_table} t ON t.id = x.trip_id "
        f"JOIN {Stop._meta.db_table} s ON s.id = x.stop_id WHERE x.feed_id = %s ORDER BY x.id", [fid],
        ["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence", "shape_dist_traveled"])
    for column in ("arrival_time", "departure_time", "shape_dist_traveled"):
        stop_times[column] = _seconds(stop_times[column])
    stop_times["stop_sequence"] = pd.array(stop_times["stop_sequence"].tolist(), dtype="Int64")
    calendar = pd.DataFrame(list(Calendar.objects.filter(feed_id=fid).order_by("id").values_list(
        "service_id", *DAYS, "start_date", "end_date")), columns=["service_id", *DAYS, "start_date", "end_date"])
    for d in DAYS:
        calendar[d] = calendar[d].astype(int).astype("Int64")
    for column in ("start_date", "end_date"):
        calendar[column] = pd.to_datetime(calendar[column])
    calendar_dates = pd.DataFrame(list(CalendarDate.objects.filter(feed_id=fid).order_by("id").values_list(
        "service_id", "date", "exception_type")), columns=["service_id", "date", "exception_type"])
    calendar_dates["date"] = pd.to_datetime(calendar_dates["date"])
    calendar_dates["exception_type"] = calendar_dates["exception_type"].astype("Int64")
    frequencies = _query(
        f"SELECT t.trip_id, f.start_s, f.end_s, f.headway_s, f.exact_times FROM {Frequency._meta.db_table} f "
        f"JOIN {Trip._meta.db_table} t ON t.id = f.trip_id WHERE f.feed_id = %s ORDER BY f.id", [fid],
        ["trip_id", "start_time", "end_time", "headway_secs", "exact_times"])
    for column in ("start_time", "end_time"):
        frequencies[column] = _seconds(frequencies[column])
    for column in ("headway_secs", "exact_times"):
        frequencies[column] = frequencies[column].astype("Int64")
    files = {"agency.txt", "routes.txt", "stops.txt", "trips.txt", "stop_times.txt"}
    files |= {name for name, df in (("calendar.txt", calendar), ("calendar_dates.txt", calendar_dates),
                                    ("frequencies.txt", frequencies), ("shapes.txt", shapes)) if len(df)}
    if not len(calendar) and not len(calendar_dates):
        files.add("calendar.txt")
    core = CoreFeed(path=f"db:feed/{fid}", files=frozenset(files), agency=agency, routes=routes, stops=stops,
                    shapes=shapes, trips=trips, stop_times=stop_times, calendar=calendar,
                    calendar_dates=calendar_dates, frequencies=frequencies, validated=True)
    with _frames_lock:
        _frames[key] = core
        while len(_frames) > _FRAMES_KEPT:
            _frames.popitem(last=False)
    return core


def feed_frames_clear() -> None:
    with _frames_lock:
        _frames.clear()


def feed_tz(*, feed: Feed) -> zoneinfo.ZoneInfo:
    """The feed's agency time zone (service dates are days there), else the city's."""
    try:
        return zoneinfo.ZoneInfo(feed.agency_timezone or settings.CITY_TIME_ZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.CITY_TIME_ZONE)


def feed_today(*, feed: Feed, now: dt.datetime | None = None) -> dt.date:
    return (now or timezone.now()).astimezone(feed_tz(feed=feed)).date()


def day_trips(*, feed: Feed, service_date: dt.date) -> pd.DataFrame:
    """Every vehicle trip of the service date (frequencies expanded), as `domain.gtfs.service_trips`."""
    return service_trips(feed=feed_frames(feed=feed), service_date=service_date)


def feed_latest() -> Feed | None:
    return Feed.objects.order_by("-imported_at", "-pk").first()


def feed_near(*, lat: float, lon: float, within_m: float = 3000.0) -> Feed | None:
    """The newest feed with a stop within `within_m` of the point (which agency's buses these are)."""
    point = Point(lon, lat, srid=4326)
    box, box_params = index_box_sql(column="geom", geom=point, metres=within_m)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT DISTINCT feed_id FROM {Stop._meta.db_table} WHERE {box} AND "
            "ST_DWithin(geom::geography, ST_GeomFromEWKT(%s)::geography, %s)",
            [*box_params, point.ewkt, within_m])
        ids = [r[0] for r in cur.fetchall()]
    return Feed.objects.filter(pk__in=ids).order_by("-imported_at", "-pk").first() if ids else None


def stops_in_area(*, area):
    """Stops inside a polygon (every feed)."""
    return Stop.objects.filter(geom__within=area).select_related("feed")


# ------------------------------------------------------------------------------------------------ plans


def plan_blocks(*, plan: VehiclePlan) -> tuple[list[Block], list[list[str]]]:
    """The plan's blocks (by sequence) and their trip keys in order, as the core's block lists."""
    blocks = list(plan.blocks.order_by("sequence"))
    keys: dict[int, list[str]] = {b.pk: [] for b in blocks}
    for block_id, key in BlockTrip.objects.filter(block__plan=plan).order_by("block__sequence", "order").values_list(
            "block_id", "trip_key"):
        keys[block_id].append(key)
    return blocks, [keys[b.pk] for b in blocks]


def plan_gantt(*, plan: VehiclePlan) -> dict:
    """The plan as Gantt rows: one per block with its trips as [start, end] hours, for the console chart."""
    rows = []
    trips = BlockTrip.objects.filter(block__plan=plan).order_by("block__sequence", "order").values(
        "block_id", "trip_key", "route_id", "start_s", "end_s")
    by_block: dict[int, list[dict]] = {}
    for t in trips:
        by_block.setdefault(t["block_id"], []).append(t)
    routes = sorted({t["route_id"] for t in trips})
    for b in plan.blocks.order_by("sequence"):
        items = by_block.get(b.pk, [])
        rows.append({"block": b.code, "locked": b.locked, "vehicle": b.vehicle, "driver": b.driver,
                     "trips": [{"key": t["trip_key"], "route": t["route_id"], "start": round(t["start_s"] / 3600, 4),
                                "end": round(t["end_s"] / 3600, 4)} for t in items]})
    return {"rows": rows, "routes": routes}


# ------------------------------------------------------------------------------------------------ realtime


def vehicle_states_fresh(*, feed: Feed | None, window_s: float | None = None) -> list[VehicleState]:
    """Latest states of a feed's vehicles reported within `window_s` of the newest report: the vehicles
    that make up the current picture (a bus that stopped reporting an hour ago is not in service)."""
    window_s = window_s or conf("BUS_POSITION_WINDOW_S")
    qs = VehicleState.objects.filter(feed=feed)
    newest = qs.order_by("-observed_at").values_list("observed_at", flat=True).first()
    if newest is None:
        return []
    return list(qs.filter(observed_at__gte=newest - dt.timedelta(seconds=window_s)).order_by("vehicle_id"))


def _off_schedule():
    """How many times off its schedule a warning's headway is, either way: |ln(headway / scheduled)|, so a
    pair bunched at a fifth of the headway and a gap of five headways rank alike (1 s floors keep ln defined)."""
    return Abs(Ln(Greatest(F("headway_s"), Value(1.0)) / Greatest(F("scheduled_headway_s"), Value(1.0))))


def warnings_open_ranked(*, user, route: str = "") -> QuerySet:
    """Open headway warnings the user may see, worst first (furthest off the schedule), one route or all."""
    qs = HeadwayWarning.objects.restrict(user).filter(status=HeadwayWarning.Status.OPEN)
    if route:
        qs = qs.filter(route_id=route)
    return qs.annotate(off=_off_schedule()).order_by(F("off").desc(nulls_last=True), "route_id", "pk")


def headway_latest(*, route: str = "") -> QuerySet:
    """The latest evaluation's per-route snapshots, least regular first (highest cv), one route or all."""
    latest = HeadwaySnapshot.objects.aggregate(t=Max("evaluated_at"))["t"]
    if latest is None:
        return HeadwaySnapshot.objects.none()
    qs = HeadwaySnapshot.objects.filter(evaluated_at=latest)
    if route:
        qs = qs.filter(route_id=route)
    return qs.order_by(F("cv").desc(nulls_last=True), "route_id", "direction_id")


# ------------------------------------------------------------------------------------------------ map layers


def _collection(sql: str, params: list) -> dict:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT coalesce(json_agg(json_build_object('type','Feature','id',t.id,"
            "'geometry',ST_AsGeoJSON(t.geom, 6)::json,'properties',t.props)), '[]'::json) FROM (" + sql + ") t",
            params)
        features = cur.fetchone()[0]
    if isinstance(features, str):
        features = json.loads(features)
    return {"type": "FeatureCollection", "features": features}


def _feed_filter(feed_id: int | None, alias: str) -> tuple[str, list]:
    if feed_id is None:
        return "", []
    return f" AND {alias}.feed_id = %s", [feed_id]


def routes_geojson(*, feed_id: int | None = None) -> dict:
    where, params = _feed_filter(feed_id, "r")
    return _collection(
        f"SELECT r.id, r.geom, json_build_object('route', r.route_id, 'name', concat_ws(' ', nullif(r.short_name, ''), "
        f"nullif(r.long_name, '')), 'feed', r.feed_id, 'color', CASE WHEN r.color ~ '^[0-9A-Fa-f]{{6}}$' "
        f"THEN '#' || r.color ELSE '#0b7a75' END) AS props FROM {Route._meta.db_table} r "
        f"WHERE r.geom IS NOT NULL{where}", params)


def stops_geojson(*, feed_id: int | None = None) -> dict:
    where, params = _feed_filter(feed_id, "s")
    return _collection(
        f"SELECT s.id, s.geom, json_build_object('stop', s.stop_id, 'name', s.name, 'feed', s.feed_id, "
        f"'color', '#0b7a75') AS props FROM {Stop._meta.db_table} s "
        f"WHERE s.geom IS NOT NULL AND s.location_type = 0{where}", params)


def vehicles_geojson(*, max_age_s: float | None = None, now: dt.datetime | None = None) -> dict:
    """Vehicles reported within `max_age_s` (live ones); bunched or gapped buses coloured by warning."""
    max_age_s = max_age_s if max_age_s is not None else conf("BUS_VEHICLE_STALE_S")
    since = (now or timezone.now()) - dt.timedelta(seconds=max_age_s)
    flagged = {v for pair in HeadwayWarning.objects.filter(status=HeadwayWarning.Status.OPEN).values_list(
        "leader", "follower") for v in pair}
    return _collection(
        f"SELECT v.id, v.geom, json_build_object('vehicle', v.vehicle_id, 'route', v.route_id, 'trip', v.trip_id, "
        f"'direction', v.direction_id, 'seen', to_char(v.observed_at AT TIME ZONE %s, 'YYYY-MM-DD HH24:MI:SS'), "
        f"'color', CASE WHEN v.vehicle_id = ANY(%s) THEN '#d0021b' ELSE '#1f6feb' END) AS props "
        f"FROM {VehicleState._meta.db_table} v WHERE v.observed_at >= %s",
        [settings.CITY_TIME_ZONE, list(flagged), since])


def detours_geojson() -> dict:
    return _collection(
        f"SELECT d.id, d.geom, json_build_object('route', r.route_id, 'name', concat_ws(' ', nullif(r.short_name, ''), "
        f"nullif(r.long_name, '')), 'closure', d.closure_id, 'detour_m', round(d.detour_m::numeric), 'color', '#e8710a') AS props "
        f"FROM {Detour._meta.db_table} d JOIN {Route._meta.db_table} r ON r.id = d.route_id "
        f"WHERE d.status = 'active' AND d.geom IS NOT NULL", [])


def stop_xy(*, stops) -> np.ndarray:
    return np.array([(s.geom.x, s.geom.y) for s in stops], dtype=float).reshape(-1, 2)


# ------------------------------------------------------------------------------------------------ the agent's run


def feeds_live(*, now: dt.datetime | None = None) -> list[Feed | None]:
    """Feeds with a vehicle reported within BUS_VEHICLE_STALE_S (None: positions matched to no feed)."""
    since = (now or timezone.now()) - dt.timedelta(seconds=float(conf("BUS_VEHICLE_STALE_S")))
    ids = set(VehicleState.objects.filter(observed_at__gte=since).values_list("feed_id", flat=True))
    return [None if i is None else Feed.objects.filter(pk=i).first() for i in sorted(ids, key=lambda i: i or 0)]


def headways_day(*, day: dt.date) -> dict:
    """The day's headway checks: mean cv and excess wait, checks at grade C or better, warnings by kind
    (and how many were decided), and the same means per route and direction."""
    start, end = day_bounds(day)
    snaps = HeadwaySnapshot.objects.filter(evaluated_at__gte=start, evaluated_at__lt=end, cv__isnull=False)
    agg = snaps.aggregate(cv=Avg("cv"), ewt=Avg("ewt_s"), n=Count("id"),
                          good=Count("id", filter=Q(grade__in=["A", "B", "C"])))
    warnings = HeadwayWarning.objects.filter(created_at__gte=start, created_at__lt=end)
    decided = warnings.filter(status__in=[HeadwayWarning.Status.ACCEPTED, HeadwayWarning.Status.DISMISSED]).count()
    by_route = list(snaps.values("route_id", "direction_id").annotate(cv=Avg("cv"), ewt=Avg("ewt_s"), n=Count("id"))
                    .order_by("route_id", "direction_id"))
    return {**agg, "warnings": {k: warnings.filter(kind=k).count() for k in HeadwayWarning.Kind.values},
            "decided": decided, "by_route": by_route}


def positions_day_routes(*, day: dt.date) -> list[dict]:
    """Per feed and route, what the day's reported positions show (the replay of holding advice is set up
    from it): the most buses reporting on the route within one five-minute slot (the fleet that ran it; AVL
    pings of one bus come every few seconds, never at one instant for all), the first and last report, and
    how many positions there were. Positions matched to no feed or no route cannot be put on a route."""
    start, end = day_bounds(day)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT feed_id, route_id, max(n), min(first), max(last), sum(reports) FROM ("
            f"SELECT feed_id, route_id, count(DISTINCT vehicle_id) AS n, min(observed_at) AS first, "
            f"max(observed_at) AS last, count(*) AS reports FROM {VehiclePosition._meta.db_table} "
            f"WHERE observed_at >= %s AND observed_at < %s AND feed_id IS NOT NULL AND route_id <> '' "
            f"GROUP BY feed_id, route_id, floor(extract(epoch FROM observed_at) / 300)) slots "
            f"GROUP BY feed_id, route_id ORDER BY feed_id, route_id", [start, end])
        return [{"feed_id": f, "route_id": r, "buses": n, "first": a, "last": b, "positions": int(k)}
                for f, r, n, a, b, k in cur.fetchall()]


def route_scheduled_headway(*, feed: Feed, route_id: str, day: dt.date, first: dt.datetime,
                            last: dt.datetime) -> float | None:
    """The timetable's headway of the route while its buses reported: the median gap between departures
    in each direction from `first` to `last` (an hour either side when that is less than two departures)."""
    trips = day_trips(feed=feed, service_date=day)
    trips = trips[trips["route_id"] == route_id]
    tz = feed_tz(feed=feed)
    midnight = dt.datetime.combine(day, dt.time(0), tzinfo=tz)
    lo, hi = ((t - midnight).total_seconds() for t in (first, last))
    for margin in (0.0, 3600.0):
        gaps = []
        for _direction, group in trips.groupby(trips["direction_id"].fillna(-1)):
            starts = np.sort(group["start_s"][(group["start_s"] >= lo - margin) & (group["start_s"] <= hi + margin)])
            gaps.extend(np.diff(starts).tolist())
        if gaps:
            return float(np.median(gaps))
    return None


# --- the results statement ---------------------------------------------------------------------------------
# Buses and empty running of the approved plans (else the nightly runs) against the city's own blocking of
# the same trips: the feed's block_id blocks where the feed has them for every trip, else the first-fit rule
# a dispatcher uses (stored on every plan, core.blocks_baseline); the evening reviews' excess wait time.

STATEMENT_SPECS = [
    SummedKpi("vehicles", gettext_noop("Buses in service (bus-days)"), gettext_noop("bus-days"), priced=("bus_day",)),
    SummedKpi("deadhead_km", gettext_noop("Empty running"), gettext_noop("km"), priced=("bus_km", "bus_km_co2")),
    SummedKpi("replay_ewt_min", gettext_noop("Excess wait with the holding advice applied, mean of the days "
                                             "(baseline: the same replay without it)"), gettext_noop("min"), per_day=True),
    SummedKpi("replay_cv", gettext_noop("Headway cv with the holding advice applied, mean of the days "
                                        "(baseline: the same replay without it)"), "", per_day=True),
]
REPLAY_UNPRICED = gettext_noop(
    "%(name)s: not priced: the unit costs price the city's vehicles, crews and CO2, not its passengers' waiting "
    "time (and holding changes neither the buses nor the km run)")
REPLAY_GRADES = gettext_noop(
    "replay_cv: headway regularity graded %(grade)s (cv %(cv)s) with the holding advice applied, %(grade_without)s "
    "(cv %(cv_without)s) without (TCQSM headway adherence: A up to 0.21, B 0.30, C 0.39, D 0.52, E 0.74, F above)")
REPLAY_MISSING = gettext_noop(
    "replay_ewt_min: no bus positions were recorded on %(missing)s of the period's planned days (%(days)s): the "
    "replay needs a day's positions, so those days count neither way")


def approved_plan_runs(*, date_from: dt.date, date_to: dt.date) -> dict[dt.date, int]:
    """Date -> the run behind the date's approved vehicle plan (where the run was for that date)."""
    plans = (VehiclePlan.objects.filter(status=VehiclePlan.Status.APPROVED, service_date__range=(date_from, date_to),
                                        run__isnull=False, run__run_date=F("service_date"))
             .order_by("service_date", "approved_at", "pk").values_list("service_date", "run_id"))
    return dict(plans)


def _replay_notes(kpis: PeriodKpis) -> list[str]:
    """Why neither replay headline is priced, the grades of the period's mean cv with and without the
    holding advice, and the plan days whose positions were not there to replay (counted neither way)."""
    notes = [Note(REPLAY_UNPRICED, name=name) for name in ("replay_ewt_min", "replay_cv")]
    replayed = {k.run_date for k in kpis.of("replay_cv")}
    if replayed:
        cv = [round(sum(getattr(k, f) for k in kpis.of("replay_cv")) / len(replayed), 3) for f in ("value", "baseline")]
        notes.append(Note(REPLAY_GRADES, grade=headway_grade(cv[0]), cv=f"{cv[0]:g}",
                          grade_without=headway_grade(cv[1]), cv_without=f"{cv[1]:g}"))
    missing = sorted({k.run_date for k in kpis.of("vehicles")} - replayed)
    if missing:
        notes.append(Note(REPLAY_MISSING, missing=len(missing), days=days_listed(missing)))
    return notes


def bus_statement(*, date_from: dt.date, date_to: dt.date) -> StatementSection:
    kpis = PeriodKpis.load(agent="bus", date_from=date_from, date_to=date_to)
    return section_summed(kpis=kpis, specs=STATEMENT_SPECS, notes=_replay_notes(kpis))
