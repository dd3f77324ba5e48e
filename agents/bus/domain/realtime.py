"""GTFS-Realtime vehicle positions: read, place each bus on its route, measure live headways, advise holds.

Placement, best evidence first:
1. the static feed knows the vehicle's trip_id -> that trip's route, direction and shape;
2. the feed knows the route (and maybe direction) -> the nearest of that route's shapes (bearing breaks ties);
3. no route at all -> the nearest shape of any route, within `max_offset_m`;
4. no static feed (or no shape for the route) -> order the route/direction's buses by current_stop_sequence,
   ties broken along the buses' principal axis, and measure spacing as straight line x detour.
Distances along a shape come from shapely in a local UTM projection.

Headways are spacing along the route / scheduled speed (shape length over scheduled running time, or
`speed_kmh` without a feed). Bunching: headway < 0.5 x scheduled; gap: > 1.5 x scheduled. Reliability
follows TCQSM (3rd ed.) headway adherence: coefficient of variation of headways graded A-F, and Excess
Wait Time = actual mean wait - scheduled mean wait, with mean wait E[h](1 + cv^2)/2.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import zoneinfo
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2
from shapely.geometry import LineString, Point

from agents.geo import haversine_m, metric_transformer
from city_ops.city.geovalidate import GeometryInputError, lonlat_check

from .gtfs import Feed, service_trips

__all__ = [
    "Advice",
    "PatternIndex",
    "PlacedVehicle",
    "PositionBatch",
    "RealtimeError",
    "RouteHeadways",
    "VehiclePosition",
    "headway_grade",
    "hold_seconds",
    "patterns_build",
    "positions_summary",
    "route_headways",
    "vehicle_positions_read",
    "vehicles_place",
]

BUNCHING_RATIO = 0.5
GAP_RATIO = 1.5
# TCQSM headway-adherence LOS: upper cv bound of each grade (values rounded to 2 decimals first).
GRADES = (("A", 0.21), ("B", 0.30), ("C", 0.39), ("D", 0.52), ("E", 0.74))


class RealtimeError(ValueError):
    """The realtime payload as a whole cannot be read (not protobuf FeedMessage nor JSON AVL)."""


@dataclass(frozen=True)
class VehiclePosition:
    """One vehicle's reported position (GTFS-RT VehiclePosition or an AVL ping)."""

    vehicle_id: str
    lat: float
    lon: float
    timestamp: int | None = None
    route_id: str | None = None
    trip_id: str | None = None
    direction_id: int | None = None
    bearing: float | None = None
    current_stop_sequence: int | None = None
    stop_id: str | None = None
    current_status: str | None = None
    start_date: str | None = None
    label: str | None = None


@dataclass(frozen=True)
class RealtimeProblem:
    """An entity that was skipped: its position in the payload (0-based), its id if any, and why."""

    index: int
    entity_id: str | None
    message: str

    def __str__(self) -> str:
        return f"entity {self.index}" + (f" ({self.entity_id})" if self.entity_id else "") + f": {self.message}"


class PositionBatch(list):
    """A list of good `VehiclePosition`s, plus `problems` (bad entities skipped) and the feed's timestamp."""

    def __init__(self, positions=(), *, problems=None, timestamp: int | None = None, source: str = ""):
        super().__init__(positions)
        self.problems: list[RealtimeProblem] = list(problems or [])
        self.timestamp = timestamp
        self.source = source


def _position_check(lat, lon) -> str | None:
    try:
        lon, lat = lonlat_check(lon, lat)
    except GeometryInputError as exc:
        return str(exc)
    if lat == 0 and lon == 0:
        return "position is (0, 0), the AVL 'no fix' value"
    return None


def _read_protobuf(data: bytes) -> PositionBatch:
    message = gtfs_realtime_pb2.FeedMessage()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise RealtimeError(f"not a GTFS-Realtime FeedMessage: {exc}") from exc
    if not message.HasField("header") or not message.header.gtfs_realtime_version:
        raise RealtimeError("not a GTFS-Realtime FeedMessage: no header with gtfs_realtime_version")
    good, bad = [], []
    status_names = gtfs_realtime_pb2.VehiclePosition.VehicleStopStatus.Name
    for index, entity in enumerate(message.entity):
        if entity.is_deleted:
            continue
        if not entity.HasField("vehicle"):
            if not (entity.HasField("trip_update") or entity.HasField("alert")):
                bad.append(RealtimeProblem(index, entity.id or None, "entity has no vehicle, trip_update or alert"))
            continue
        v = entity.vehicle
        vehicle_id = v.vehicle.id or v.vehicle.label or None
        if not vehicle_id:
            bad.append(RealtimeProblem(index, entity.id or None, "vehicle has no id or label"))
            continue
        if not v.HasField("position"):
            bad.append(RealtimeProblem(index, entity.id or None, f"vehicle {vehicle_id} has no position"))
            continue
        error = _position_check(v.position.latitude, v.position.longitude)
        if error:
            bad.append(RealtimeProblem(index, entity.id or None, f"vehicle {vehicle_id}: {error}"))
            continue
        trip = v.trip
        good.append(
            VehiclePosition(
                vehicle_id=vehicle_id,
                lat=float(v.position.latitude),
                lon=float(v.position.longitude),
                timestamp=int(v.timestamp) if v.timestamp else None,
                route_id=trip.route_id or None,
                trip_id=trip.trip_id or None,
                direction_id=int(trip.direction_id) if trip.HasField("direction_id") else None,
                bearing=float(v.position.bearing) if v.position.HasField("bearing") else None,
                current_stop_sequence=int(v.current_stop_sequence) if v.HasField("current_stop_sequence") else None,
                stop_id=v.stop_id or None,
                current_status=status_names(v.current_status) if v.HasField("current_status") else None,
                start_date=trip.start_date or None,
                label=v.vehicle.label or None,
            )
        )
    stamp = int(message.header.timestamp) if message.header.timestamp else None
    return PositionBatch(good, problems=bad, timestamp=stamp, source="gtfs-rt")


def _read_json(data: bytes) -> PositionBatch:
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RealtimeError(f"not JSON AVL pings: {exc}") from exc
    if isinstance(payload, dict) and isinstance(payload.get("vehicles"), list):
        payload = payload["vehicles"]
    if not isinstance(payload, list):
        raise RealtimeError("JSON AVL must be a list of pings (or {\"vehicles\": [...]})")
    good, bad = [], []
    for index, ping in enumerate(payload):
        if not isinstance(ping, dict):
            bad.append(RealtimeProblem(index, None, "ping is not an object"))
            continue
        vid = ping.get("vehicle_id")
        if vid in (None, ""):
            bad.append(RealtimeProblem(index, None, "ping has no vehicle_id"))
            continue
        error = _position_check(ping.get("lat"), ping.get("lon"))
        if error:
            bad.append(RealtimeProblem(index, str(vid), error))
            continue
        try:
            stamp = ping.get("timestamp")
            stamp = None if stamp in (None, "") else int(float(stamp))
            bearing = ping.get("bearing")
            bearing = None if bearing in (None, "") else float(bearing)
            direction = ping.get("direction_id")
            direction = None if direction in (None, "") else int(direction)
            seq = ping.get("current_stop_sequence")
            seq = None if seq in (None, "") else int(seq)
        except (TypeError, ValueError) as exc:
            bad.append(RealtimeProblem(index, str(vid), f"bad field value: {exc}"))
            continue
        good.append(
            VehiclePosition(
                vehicle_id=str(vid),
                lat=float(ping["lat"]),
                lon=float(ping["lon"]),
                timestamp=stamp,
                route_id=None if ping.get("route_id") in (None, "") else str(ping["route_id"]),
                trip_id=None if ping.get("trip_id") in (None, "") else str(ping["trip_id"]),
                direction_id=direction,
                bearing=bearing,
                current_stop_sequence=seq,
                stop_id=None if ping.get("stop_id") in (None, "") else str(ping["stop_id"]),
            )
        )
    stamps = [p.timestamp for p in good if p.timestamp is not None]
    return PositionBatch(good, problems=bad, timestamp=max(stamps) if stamps else None, source="json-avl")


def vehicle_positions_read(*, data: bytes) -> PositionBatch:
    """Vehicle positions from a GTFS-Realtime FeedMessage (protobuf) or JSON AVL pings
    (`[{"vehicle_id", "lat", "lon", "timestamp", "route_id"?, "trip_id"?, "bearing"?}]`).

    Returns a `PositionBatch` (a list of good positions) whose `.problems` names every skipped entity by
    index. Raises `RealtimeError` when the payload as a whole is unreadable.
    """
    head = data.lstrip()[:1]
    if head in (b"[", b"{"):
        return _read_json(data)
    return _read_protobuf(data)


# --------------------------------------------------------------------------------------------- patterns


@dataclass
class Pattern:
    """One way a route is driven: a shape in metres with its stops and scheduled speed."""

    pattern_id: str
    route_id: str
    direction_id: int | None
    line: LineString
    stops: list[tuple[str, float]]  # (stop_id, metres along), in stop order
    speed_mps: float | None
    loop: bool

    @property
    def length_m(self) -> float:
        """Length of the pattern's line in metres."""
        return float(self.line.length)


@dataclass
class PatternIndex:
    """Route patterns of a static feed, ready for placing vehicles."""

    feed: Feed
    patterns: dict[str, Pattern]
    by_route: dict[str, list[str]]
    trip_pattern: dict[str, str]
    transformer: object
    _service_cache: dict = field(default_factory=dict, repr=False)

    def project(self, lat: float, lon: float) -> Point:
        """WGS84 -> the index's metric plane."""
        x, y = self.transformer.transform(lon, lat)
        return Point(x, y)


def patterns_build(*, feed: Feed, loop_tolerance_m: float = 150.0) -> PatternIndex:
    """Index a feed's route patterns: one per shape_id (or per route+direction from stop positions when
    the feed has no shapes), with stops projected along and scheduled speed = length / median run time."""
    stops = feed.stops.drop_duplicates("stop_id").set_index("stop_id")
    lat0, lon0 = float(stops["stop_lat"].median()), float(stops["stop_lon"].median())
    transformer = metric_transformer(lat=lat0, lon=lon0)
    trips = feed.trips.copy()
    if "direction_id" not in trips.columns:
        trips["direction_id"] = pd.NA
    st = feed.stop_times.sort_values(["trip_id", "stop_sequence"], kind="stable")
    counts = st["trip_id"].value_counts()
    trips["n_stops"] = trips["trip_id"].map(counts).fillna(0)
    first = st.groupby("trip_id").head(1).set_index("trip_id")
    last = st.groupby("trip_id").tail(1).set_index("trip_id")
    dep = first["departure_time"].fillna(first["arrival_time"]) if "departure_time" in first else first["arrival_time"]
    arr = last["arrival_time"].fillna(last["departure_time"]) if "arrival_time" in last else last["departure_time"]
    trips["run_s"] = trips["trip_id"].map(arr - dep)

    has_shapes = "shape_id" in trips.columns and len(feed.shapes) and "shape_pt_sequence" in feed.shapes.columns
    if has_shapes:
        trips["pattern_id"] = trips["shape_id"].where(trips["shape_id"].isin(feed.shapes["shape_id"]))
    else:
        trips["pattern_id"] = pd.NA
    fallback = trips["route_id"].astype(str) + ":" + trips["direction_id"].astype("string").fillna("-")
    trips["pattern_id"] = trips["pattern_id"].fillna(fallback)

    shape_lines: dict[str, LineString] = {}
    if has_shapes:
        for shape_id, pts in feed.shapes.sort_values(["shape_id", "shape_pt_sequence"]).groupby("shape_id"):
            xs, ys = transformer.transform(pts["shape_pt_lon"].to_numpy(float), pts["shape_pt_lat"].to_numpy(float))
            if len(xs) >= 2:
                shape_lines[str(shape_id)] = LineString(np.column_stack([xs, ys]))

    # One representative trip (the one with most stops) gives each pattern its stop list.
    reps = trips.sort_values("n_stops", ascending=False, kind="stable").drop_duplicates("pattern_id")
    stop_lists = st[st["trip_id"].isin(reps["trip_id"])].groupby("trip_id", sort=False)["stop_id"].agg(list)
    patterns: dict[str, Pattern] = {}
    by_route: dict[str, list[str]] = defaultdict(list)
    for pattern_id, group in trips.groupby("pattern_id", sort=False):
        rep = reps[reps["pattern_id"] == pattern_id].iloc[0]
        rep_stops = stop_lists.get(rep["trip_id"], [])
        stop_xy = [
            transformer.transform(float(stops.at[s, "stop_lon"]), float(stops.at[s, "stop_lat"]))
            for s in rep_stops
            if s in stops.index and pd.notna(stops.at[s, "stop_lat"])
        ]
        line = shape_lines.get(str(pattern_id))
        if line is None:
            if len(stop_xy) < 2:
                continue
            line = LineString(stop_xy)
        # A loop: the trip ends where it starts (same stop) or the shape closes on itself.
        loop = (len(rep_stops) >= 2 and rep_stops[0] == rep_stops[-1]) or (
            Point(line.coords[0]).distance(Point(line.coords[-1])) <= loop_tolerance_m
        )
        along, previous = [], 0.0
        for stop_id, xy in zip(rep_stops, stop_xy):
            d = float(line.project(Point(xy)))
            # Stops are in driving order: a projection that jumps back (loops, overlapping legs) is clamped.
            if d < previous:
                d = float(line.length) if loop and d < 0.25 * line.length else previous
            along.append((str(stop_id), d))
            previous = d
        runs = group["run_s"].dropna()
        runs = runs[runs > 0]
        speed = float(line.length / runs.median()) if len(runs) else None
        direction = group["direction_id"].dropna()
        patterns[str(pattern_id)] = Pattern(
            pattern_id=str(pattern_id),
            route_id=str(rep["route_id"]),
            direction_id=int(direction.mode().iloc[0]) if len(direction) else None,
            line=line,
            stops=along,
            speed_mps=speed,
            loop=bool(loop),
        )
        by_route[str(rep["route_id"])].append(str(pattern_id))
    trip_pattern = {
        str(t): str(p) for t, p in zip(trips["trip_id"], trips["pattern_id"]) if str(p) in patterns
    }
    return PatternIndex(feed, patterns, dict(by_route), trip_pattern, transformer)


# --------------------------------------------------------------------------------------------- placing


@dataclass
class PlacedVehicle:
    """A vehicle put on a route: `distance_m` along its pattern (None when ordered by stop sequence)."""

    position: VehiclePosition
    route_id: str
    direction_id: int | None
    method: str  # "trip", "route-shape", "shape", "sequence"
    pattern_id: str | None = None
    distance_m: float | None = None
    offset_m: float | None = None
    next_stop_id: str | None = None


def _tangent_bearing(line: LineString, d: float) -> float:
    a = line.interpolate(max(d - 15.0, 0.0))
    b = line.interpolate(min(d + 15.0, line.length))
    return math.degrees(math.atan2(b.x - a.x, b.y - a.y)) % 360.0


def _next_stop(pattern: Pattern, d: float) -> str | None:
    for stop_id, along in pattern.stops:
        if along > d + 5.0:
            return stop_id
    return pattern.stops[0][0] if pattern.loop and pattern.stops else None


def _on_pattern(index: PatternIndex, pos: VehiclePosition, candidates: list[str], max_offset_m: float):
    point = index.project(pos.lat, pos.lon)
    scored = sorted((index.patterns[c].line.distance(point), c) for c in candidates)
    if not scored or scored[0][0] > max_offset_m:
        return None
    best_offset, best = scored[0]
    if pos.bearing is not None:
        close = [c for off, c in scored if off <= best_offset + 25.0]
        if len(close) > 1:
            def turn(c: str) -> float:
                line = index.patterns[c].line
                diff = abs(_tangent_bearing(line, line.project(point)) - pos.bearing) % 360.0
                return min(diff, 360.0 - diff)

            best = min(close, key=turn)
    pattern = index.patterns[best]
    d = float(pattern.line.project(point))
    return pattern, d, float(pattern.line.distance(point))


def vehicles_place(
    *, positions: list[VehiclePosition], patterns: PatternIndex | None = None, max_offset_m: float = 250.0
) -> tuple[list[PlacedVehicle], list[RealtimeProblem]]:
    """Put each vehicle on a route and direction (see the module doc for the order of evidence).

    Only the latest position per vehicle counts. Vehicles that cannot be placed come back as problems.
    """
    latest: dict[str, tuple[int, VehiclePosition]] = {}
    for k, pos in enumerate(positions):
        held = latest.get(pos.vehicle_id)
        if held is None or (pos.timestamp or 0) >= (held[1].timestamp or 0):
            latest[pos.vehicle_id] = (k, pos)
    placed: list[PlacedVehicle] = []
    problems: list[RealtimeProblem] = []
    for k, pos in sorted(latest.values(), key=lambda kv: kv[0]):
        if patterns is not None:
            pattern_id = patterns.trip_pattern.get(pos.trip_id or "")
            if pattern_id is None and pos.trip_id and "@" in pos.trip_id:
                pattern_id = patterns.trip_pattern.get(pos.trip_id.split("@")[0])
            if pattern_id is not None:
                pattern = patterns.patterns[pattern_id]
                point = patterns.project(pos.lat, pos.lon)
                d = float(pattern.line.project(point))
                placed.append(PlacedVehicle(pos, pattern.route_id, pattern.direction_id, "trip", pattern_id, d,
                                            float(pattern.line.distance(point)), _next_stop(pattern, d)))
                continue
            if pos.route_id is not None:
                candidates = [
                    c for c in patterns.by_route.get(pos.route_id, [])
                    if pos.direction_id is None or patterns.patterns[c].direction_id in (None, pos.direction_id)
                ]
                method = "route-shape"
            else:
                candidates = list(patterns.patterns)
                method = "shape"
            if candidates:
                hit = _on_pattern(patterns, pos, candidates, max_offset_m)
                if hit is not None:
                    pattern, d, offset = hit
                    placed.append(PlacedVehicle(pos, pattern.route_id, pattern.direction_id, method,
                                                pattern.pattern_id, d, offset, _next_stop(pattern, d)))
                    continue
                if pos.route_id is None:
                    problems.append(RealtimeProblem(k, pos.vehicle_id, f"no route shape within {max_offset_m:.0f} m"))
                    continue
        if pos.route_id is None:
            problems.append(RealtimeProblem(k, pos.vehicle_id, "no route_id and no static feed to match a shape"))
            continue
        placed.append(PlacedVehicle(pos, pos.route_id, pos.direction_id, "sequence", next_stop_id=pos.stop_id))
    return placed, problems


# --------------------------------------------------------------------------------------------- headways


def headway_grade(cv: float | None) -> str | None:
    """TCQSM headway-adherence grade for a coefficient of variation (A <= 0.21 ... F >= 0.75)."""
    if cv is None or not math.isfinite(cv):
        return None
    value = round(cv, 2)
    for grade, upper in GRADES:
        if value <= upper:
            return grade
    return "F"


def hold_seconds(*, forward_s: float, backward_s: float, max_hold_s: float = 180.0) -> float:
    """Headway-based hold for a bus with `forward_s` to its leader and `backward_s` to its follower:
    holding h moves the forward headway up by h and the backward one down by h, so h = (backward - forward)/2
    makes both the mean of the two. Never negative, capped at `max_hold_s`."""
    return float(min(max((backward_s - forward_s) / 2.0, 0.0), max_hold_s))


@dataclass
class Advice:
    """A dispatcher action: hold `vehicle_id` at `stop_id` for `seconds`, or dispatch a standby bus."""

    action: str  # "hold" or "dispatch"
    route_id: str
    direction_id: int | None
    vehicle_id: str | None
    stop_id: str | None
    seconds: int | None
    reason: str


@dataclass
class RouteHeadways:
    """Live headways of one route and direction, front bus first."""

    route_id: str
    direction_id: int | None
    order: list[str]  # vehicle ids, front (furthest along) first
    pairs: list[tuple[str, str]]  # (leader, follower) for each headway
    headways_s: list[float]
    scheduled_headway_s: float | None
    scheduled_source: str  # "feed", "given", "observed", or "none"
    bunching: list[tuple[str, str]]
    gaps: list[tuple[str, str]]
    cv: float | None
    grade: str | None
    ewt_s: float | None
    method: str
    advice: list[Advice] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready dict (pairs as two-item lists)."""
        out = asdict(self)
        for key in ("pairs", "bunching", "gaps"):
            out[key] = [list(p) for p in out[key]]
        out["headways_s"] = [round(h, 1) for h in self.headways_s]
        out["vehicles"] = len(self.order)
        for key in ("cv", "ewt_s", "scheduled_headway_s"):
            out[key] = None if out[key] is None else round(out[key], 3 if key == "cv" else 1)
        return out


def _sequence_distances(vehicles: list[PlacedVehicle], detour: float) -> dict[str, float]:
    """Distance along the route for buses known only by stop sequence: order by sequence, break ties
    along the group's principal axis (oriented to agree with the sequence), chain straight lines x detour."""
    lat0 = float(np.mean([v.position.lat for v in vehicles]))
    lon0 = float(np.mean([v.position.lon for v in vehicles]))
    tr = metric_transformer(lat=lat0, lon=lon0)
    xy = np.array([tr.transform(v.position.lon, v.position.lat) for v in vehicles])
    seq = np.array([v.position.current_stop_sequence if v.position.current_stop_sequence is not None else -1
                    for v in vehicles], float)
    proj = np.zeros(len(vehicles))
    if len(vehicles) >= 2 and np.ptp(xy, axis=0).max() > 0:
        centred = xy - xy.mean(axis=0)
        axis = np.linalg.svd(centred, full_matrices=False)[2][0]
        proj = centred @ axis
        if np.std(seq) > 0 and np.corrcoef(seq, proj)[0, 1] < 0:
            proj = -proj
    order = np.lexsort((proj, seq))
    out, total = {}, 0.0
    for rank, k in enumerate(order):
        if rank:
            prev = vehicles[order[rank - 1]].position
            cur = vehicles[k].position
            total += haversine_m(lat1=prev.lat, lon1=prev.lon, lat2=cur.lat, lon2=cur.lon) * detour
        out[vehicles[k].position.vehicle_id] = total
    return out


def _departures(index: PatternIndex, day: dt.date) -> dict[str, tuple[np.ndarray, dict[int, np.ndarray] | None]]:
    """The day's scheduled departures per route, sorted: (all of them, per direction or None when the
    feed gives no directions). Built once per day and index: filtering the day's trips frame per route
    took seconds for a city's 600 route directions every 30 s."""
    if day not in index._service_cache:
        trips = service_trips(feed=index.feed, service_date=day)
        routes = {}
        for route_id, group in trips.groupby("route_id", sort=False):
            starts = np.sort(group["start_s"].to_numpy(float))
            directions = None
            if group["direction_id"].notna().any():
                directions = {int(d): np.sort(g["start_s"].to_numpy(float)) for d, g in group.groupby("direction_id")}
            routes[str(route_id)] = (starts, directions)
        index._service_cache[day] = routes
    return index._service_cache[day]


def _route_starts(index: PatternIndex, day: dt.date, route_id: str, direction_id: int | None) -> np.ndarray:
    every, directions = _departures(index, day).get(route_id, (np.zeros(0), None))
    if direction_id is not None and directions is not None:
        return directions.get(direction_id, np.zeros(0))
    return every


def _scheduled_headway(index: PatternIndex, route_id: str, direction_id: int | None, when: dt.datetime | None,
                       window_s: float = 3600.0) -> float | None:
    """Median gap between scheduled departures of the route/direction within +-window of `when`."""
    if when is None:
        return None
    tz = zoneinfo.ZoneInfo(index.feed.timezone) if index.feed.timezone else dt.UTC
    local = when.astimezone(tz)
    now_s = local.hour * 3600 + local.minute * 60 + local.second
    # Today's trips, and yesterday's running past midnight.
    starts = np.concatenate([_route_starts(index, local.date() - dt.timedelta(days=days), route_id, direction_id)
                             - shift for days, shift in ((0, 0.0), (1, 86400.0))])
    near = np.sort(starts[np.abs(starts - now_s) <= window_s])
    if len(near) < 2:
        return None
    return float(np.median(np.diff(near)))


def route_headways(
    *,
    vehicles: list[PlacedVehicle],
    patterns: PatternIndex | None = None,
    when: dt.datetime | None = None,
    scheduled_headway_s: float | None = None,
    speed_kmh: float = 18.0,
    detour: float = 1.3,
    max_hold_s: float = 180.0,
) -> RouteHeadways:
    """Headways, bunching, gaps, cv/grade, EWT and holding advice for the buses of ONE route+direction.

    The scheduled headway is `scheduled_headway_s` if given, else the feed's around `when`, else the
    observed mean (then bunching/gaps are relative to the mean, and EWT counts only irregularity).
    """
    route_id, direction_id = vehicles[0].route_id, vehicles[0].direction_id
    patterns_used = {v.pattern_id for v in vehicles if v.distance_m is not None}
    on_shape = patterns is not None and all(v.distance_m is not None for v in vehicles) and len(patterns_used) == 1
    pattern = patterns.patterns[next(iter(patterns_used))] if on_shape else None
    if on_shape:
        distance = {v.position.vehicle_id: float(v.distance_m) for v in vehicles}
        method = vehicles[0].method
    elif patterns is not None and all(v.distance_m is not None for v in vehicles):
        # Several patterns of one route (branches, short turns): measure on the longest, by projection.
        pattern = max((patterns.patterns[p] for p in patterns_used), key=lambda p: p.length_m)
        distance = {
            v.position.vehicle_id: float(pattern.line.project(patterns.project(v.position.lat, v.position.lon)))
            for v in vehicles
        }
        method = vehicles[0].method
    else:
        distance = _sequence_distances(vehicles, detour)
        method = "sequence"
    speed = pattern.speed_mps if pattern is not None and pattern.speed_mps else speed_kmh / 3.6
    by_id = {v.position.vehicle_id: v for v in vehicles}
    order = sorted(distance, key=lambda vid: (-distance[vid], vid))
    pairs = list(itertools.pairwise(order))
    gaps_m = [distance[a] - distance[b] for a, b in pairs]
    if pattern is not None and pattern.loop and len(order) >= 2:
        pairs.append((order[-1], order[0]))  # on a loop the front bus follows the last one round
        gaps_m.append(pattern.length_m - distance[order[0]] + distance[order[-1]])
    headways = [g / speed for g in gaps_m]

    source = "none"
    scheduled = scheduled_headway_s
    if scheduled is not None:
        source = "given"
    elif patterns is not None and route_id in patterns.by_route:
        scheduled = _scheduled_headway(patterns, route_id, direction_id, when)
        source = "feed" if scheduled is not None else "none"
    if scheduled is None and headways:
        scheduled, source = float(np.mean(headways)), "observed"

    cv = grade = ewt = None
    if len(headways) >= 2 and np.mean(headways) > 0:
        mean = float(np.mean(headways))
        cv = float(np.std(headways) / mean)
        grade = headway_grade(cv)
        if scheduled:
            ewt = mean * (1 + cv**2) / 2 - scheduled / 2
    bunching = [p for p, h in zip(pairs, headways) if scheduled and h < BUNCHING_RATIO * scheduled]
    gaps = [p for p, h in zip(pairs, headways) if scheduled and h > GAP_RATIO * scheduled]

    headway_of = {follower: h for (_leader, follower), h in zip(pairs, headways)}
    follower_of = {leader: follower for leader, follower in pairs}
    advice = []
    for leader, follower in bunching:
        forward = headway_of[follower]
        behind = follower_of.get(follower)
        backward = headway_of.get(behind) if behind is not None else scheduled
        hold = hold_seconds(forward_s=forward, backward_s=backward or 0.0, max_hold_s=max_hold_s)
        if hold >= 1.0:
            stop = by_id[follower].next_stop_id
            advice.append(Advice("hold", route_id, direction_id, follower, stop, round(hold),
                                 f"{forward:.0f} s behind {leader} (scheduled {scheduled:.0f} s); "
                                 f"next bus {backward:.0f} s behind"))
    for leader, follower in gaps:
        stop = by_id[follower].next_stop_id
        if pattern is not None and pattern.stops:
            # Fill the middle of the gap: the first stop past the midpoint between the two buses.
            mid = (distance[leader] + distance[follower]) / 2.0
            if distance[leader] < distance[follower]:  # the wrap-around pair on a loop
                mid = (distance[follower] + distance[leader] + pattern.length_m) / 2.0 % pattern.length_m
            stop = _next_stop(pattern, mid) or stop
        advice.append(Advice("dispatch", route_id, direction_id, None, stop, None,
                             f"{headway_of[follower]:.0f} s gap between {leader} and {follower} "
                             f"(scheduled {scheduled:.0f} s): send a standby bus in"))
    return RouteHeadways(route_id, direction_id, order, pairs, headways, scheduled, source, bunching, gaps,
                         cv, grade, ewt, method, advice)


def positions_summary(
    *,
    positions: list[VehiclePosition],
    patterns: PatternIndex | None = None,
    scheduled_headways: dict[str, float] | None = None,
    speed_kmh: float = 18.0,
    max_hold_s: float = 180.0,
    max_offset_m: float = 250.0,
) -> dict:
    """The live picture, JSON-ready: `{"vehicles": n, "routes": [{"route_id", "direction_id", "vehicles",
    "headways_s", "bunching", "gaps", "cv", ...}], "advice": [...], "problems": [...]}`.

    `scheduled_headways` maps route_id -> seconds where no static feed says it.
    """
    placed, problems = vehicles_place(positions=positions, patterns=patterns, max_offset_m=max_offset_m)
    stamp = getattr(positions, "timestamp", None)
    if stamp is None:
        stamps = [p.timestamp for p in positions if p.timestamp]
        stamp = max(stamps) if stamps else None
    when = dt.datetime.fromtimestamp(stamp, dt.UTC) if stamp else None
    groups: dict[tuple, list[PlacedVehicle]] = defaultdict(list)
    for v in placed:
        groups[(v.route_id, v.direction_id)].append(v)
    routes, advice = [], []
    for (route_id, direction_id), members in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or 0)):
        result = route_headways(
            vehicles=members,
            patterns=patterns,
            when=when,
            scheduled_headway_s=(scheduled_headways or {}).get(route_id),
            speed_kmh=speed_kmh,
            max_hold_s=max_hold_s,
        )
        routes.append(result.as_dict())
        advice.extend(asdict(a) for a in result.advice)
    all_problems = list(getattr(positions, "problems", [])) + problems
    return {
        "vehicles": len({p.vehicle_id for p in positions}),
        "placed": len(placed),
        "timestamp": stamp,
        "routes": routes,
        "advice": advice,
        "problems": [str(p) for p in all_problems],
    }
