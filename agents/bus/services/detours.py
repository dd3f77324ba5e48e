"""Road closures and the buses: when a closure opens, find the route patterns (shapes) that run over the
closed road, the stops on the closed stretch, and propose a detour on the open road network between the
last stop before it and the first stop after; tell the dispatchers; publish it all as GTFS-Realtime
(TripUpdates with SKIPPED stops, and a Service Alert). When the closure lifts, the detours end."""
from __future__ import annotations

import datetime as dt
import logging
import time

import pandas as pd
from django.conf import settings
from django.contrib.gis.geos import LineString, MultiLineString
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from google.transit import gtfs_realtime_pb2
from pyproj import Transformer
from shapely.geometry import LineString as ShapelyLine
from shapely.geometry import Point as ShapelyPoint
from shapely.ops import substring

from city_ops.city.models import CityProfile, RoadClosure, RoadSegment
from city_ops.city.network import NoRouteError, road_network
from city_ops.core.services import audit_record

from ..models import Detour, Shape, StopTime, Trip
from ..selectors import day_trips, feed_today

log = logging.getLogger(__name__)

# A shape "uses" a closed segment when enough of the shape runs along it (within BUFFER_M), not when it
# merely crosses it at a junction: at least MIN_OVERLAP_M, or most of a segment shorter than that.
BUFFER_M = 5.0
MIN_OVERLAP_M = 20.0
SHORT_SEGMENT_SHARE = 0.8
STOP_TOLERANCE_M = 10.0


def _srid() -> int:
    profile = CityProfile.objects.first()
    return profile.metric_srid if profile else settings.CITY_METRIC_SRID


def closure_shapes(*, closure: RoadClosure) -> dict[int, list[int]]:
    """Shapes (ids) of every feed that run along the closure's segments -> the segment ids they use."""
    srid = _srid()
    through = RoadClosure.segments.through._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"""
            WITH seg AS (
                SELECT s.id, s.geom, ST_Transform(s.geom, {srid}) AS g FROM {RoadSegment._meta.db_table} s
                JOIN {through} cs ON cs.roadsegment_id = s.id WHERE cs.roadclosure_id = %s),
            box AS (SELECT ST_Expand(ST_Extent(geom)::geometry, 0.002) AS b FROM seg)
            SELECT sh.id, seg.id,
                   ST_Length(ST_Intersection(ST_Transform(sh.geom, {srid}), ST_Buffer(seg.g, %s, 'endcap=flat'))),
                   ST_Length(seg.g)
            FROM {Shape._meta.db_table} sh JOIN box ON sh.geom && box.b
            JOIN seg ON ST_DWithin(ST_Transform(sh.geom, {srid}), seg.g, %s)""",
                    [closure.pk, BUFFER_M, BUFFER_M])
        rows = cur.fetchall()
    used: dict[int, list[int]] = {}
    for shape_id, seg_id, overlap, seg_len in rows:
        if overlap >= MIN_OVERLAP_M or (seg_len < MIN_OVERLAP_M and overlap >= SHORT_SEGMENT_SHARE * seg_len > 0):
            used.setdefault(shape_id, []).append(seg_id)
    return used


def _notify(*, subject: str, body: str, level: int, location=None, ref: str) -> None:
    from city_ops.notifications.services import notification_send

    notification_send(topic="bus", level=level, subject=subject, body=body, location=location, source_ref=ref)


def detours_open(*, closure: RoadClosure, now: dt.datetime | None = None, notify: bool = True) -> list[Detour]:
    """Detours for every route pattern the closure cuts (idempotent: a second call updates them). A closure
    that is no longer active lifts its detours instead."""
    now = now or timezone.now()
    closure = RoadClosure.objects.get(pk=closure.pk)
    if closure.valid_to is not None and closure.valid_to <= now:
        return detours_lift(closure=closure, now=now, notify=notify)
    started = time.perf_counter()
    used = closure_shapes(closure=closure)
    srid = _srid()
    to_m = Transformer.from_crs(4326, srid, always_xy=True)
    to_ll = Transformer.from_crs(srid, 4326, always_xy=True)
    net = road_network(at=now)
    segments = {s.pk: s for s in RoadSegment.objects.filter(pk__in={i for ids in used.values() for i in ids})}
    out: list[Detour] = []
    with transaction.atomic():
        for shape in Shape.objects.filter(pk__in=used).select_related("feed").order_by("id"):
            line = ShapelyLine([to_m.transform(x, y) for x, y in shape.geom.coords])
            ends = []
            for seg_id in used[shape.pk]:
                for x, y in (segments[seg_id].geom.coords[0], segments[seg_id].geom.coords[-1]):
                    ends.append(line.project(ShapelyPoint(to_m.transform(x, y))))
            lo, hi = min(ends), max(ends)
            trips = Trip.objects.filter(shape=shape).select_related("route")
            for route_pk in sorted(set(trips.values_list("route_id", flat=True))):
                mine = trips.filter(route_id=route_pk)
                out.append(_detour_one(closure=closure, shape=shape, trips=mine, line=line, lo=lo, hi=hi,
                                       net=net, to_m=to_m, to_ll=to_ll))
        Detour.objects.filter(closure=closure, status=Detour.Status.ACTIVE).exclude(
            pk__in=[d.pk for d in out]).update(status=Detour.Status.LIFTED, lifted_at=now)
        if out:
            audit_record(action="bus.detours.opened", obj=closure, actor_label="agent:bus",
                         changes={"detours": [d.pk for d in out], "routes": sorted({d.route.route_id for d in out})})
            if notify:
                _notify(subject=_subject(closure, out), body=_body(closure, out), level=2,
                        location=next((d.from_stop.geom for d in out if d.from_stop_id and d.from_stop.geom), None),
                        ref=f"closure:{closure.pk}")
    log.info("closure #%s: %d detour(s) in %.2f s", closure.pk, len(out), time.perf_counter() - started)
    return out


def _detour_one(*, closure, shape, trips, line, lo, hi, net, to_m, to_ll) -> Detour:
    """One route pattern's detour: skipped stops, the stops around the closed stretch, the path between."""
    route = trips[0].route
    rep = trips.annotate(n=Count("stop_times")).order_by("-n", "id").first()
    stops = [x.stop for x in StopTime.objects.filter(trip=rep).select_related("stop").order_by("stop_sequence")]
    along, previous = [], 0.0
    for stop in stops:
        if stop.geom is None:
            continue
        d = line.project(ShapelyPoint(to_m.transform(stop.geom.x, stop.geom.y)))
        d = max(d, previous)  # stops are in driving order; a projection that jumps back is clamped
        along.append((stop, d))
        previous = d
    skipped = [s for s, d in along if lo - STOP_TOLERANCE_M <= d <= hi + STOP_TOLERANCE_M]
    before = [(s, d) for s, d in along if d < lo - STOP_TOLERANCE_M]
    after = [(s, d) for s, d in along if d > hi + STOP_TOLERANCE_M]
    from_stop, from_d = before[-1] if before else (None, 0.0)
    to_stop, to_d = after[0] if after else (None, line.length)
    geom, detour_m, note = None, None, ""
    if from_stop is not None and to_stop is not None:
        try:
            path = net.path((from_stop.geom.x, from_stop.geom.y), (to_stop.geom.x, to_stop.geom.y))
            geom = LineString(path.coords, srid=4326)
            detour_m = round(path.length_m, 1)
        except NoRouteError:
            note = f"no open road connects {from_stop} and {to_stop}: trips cannot run past the closure"
    elif from_stop is None and to_stop is not None:
        note = f"the closure is at the start of the route: trips start at {to_stop}"
    elif to_stop is not None or from_stop is not None:
        note = f"the closure is at the end of the route: trips end at {from_stop}"
    else:
        note = "the whole route is closed: trips cannot run"
    cut = substring(line, max(lo, 0.0), min(hi, line.length))
    cut_coords = [to_ll.transform(x, y) for x, y in (cut.coords if cut.geom_type == "LineString" else [])]
    closed = MultiLineString(LineString(cut_coords, srid=4326), srid=4326) if len(cut_coords) >= 2 else None
    detour, _ = Detour.objects.update_or_create(
        closure=closure, route=route, shape=shape,
        defaults={"feed": shape.feed, "direction_id": rep.direction_id, "status": Detour.Status.ACTIVE,
                      "from_stop": from_stop, "to_stop": to_stop, "closed_geom": closed, "geom": geom, "detour_m": detour_m,
                      "replaced_m": round(to_d - from_d, 1) if from_stop and to_stop else None, "note": note[:300],
                      "lifted_at": None})
    detour.skipped_stops.set(skipped)
    detour.affected_trips.set(trips)
    return detour


def _route_name(d: Detour) -> str:
    return f"route {d.route.label}" + (f" (direction {d.direction_id})" if d.direction_id is not None else "")


def _subject(closure: RoadClosure, detours: list[Detour]) -> str:
    routes = sorted({d.route.label for d in detours})
    return f"Bus detours on {len(routes)} route(s) ({', '.join(routes[:5])}): {closure.reason}"[:200]


def _body(closure: RoadClosure, detours: list[Detour]) -> str:
    lines = [f"Road closed: {closure.reason} (closure #{closure.pk})."]
    for d in detours:
        skipped = ", ".join(s.name or s.stop_id for s in d.skipped_stops.all()) or "none"
        if d.geom is not None:
            lines.append(f"- {_route_name(d)}: detour from {d.from_stop} to {d.to_stop}, {d.detour_m:.0f} m "
                         f"instead of {d.replaced_m:.0f} m; stops not served: {skipped}; "
                         f"{d.affected_trips.count()} trips affected.")
        else:
            lines.append(f"- {_route_name(d)}: {d.note}; stops not served: {skipped}.")
    return "\n".join(lines)


def detours_lift(*, closure: RoadClosure, now: dt.datetime | None = None, notify: bool = True) -> list[Detour]:
    """End the closure's active detours (idempotent) and tell the dispatchers the routes are back."""
    now = now or timezone.now()
    with transaction.atomic():
        active = list(Detour.objects.select_for_update().filter(closure=closure, status=Detour.Status.ACTIVE)
                      .select_related("route"))
        if not active:
            return []
        Detour.objects.filter(pk__in=[d.pk for d in active]).update(status=Detour.Status.LIFTED, lifted_at=now)
        audit_record(action="bus.detours.lifted", obj=closure, actor_label="agent:bus",
                     changes={"detours": [d.pk for d in active]})
        if notify:
            routes = sorted({d.route.label for d in active})
            _notify(subject=f"Buses back on their routes ({', '.join(routes[:5])}): closure lifted"[:200],
                    body=f"Closure #{closure.pk} ({closure.reason}) was lifted; {len(active)} detour(s) ended.",
                    level=1, ref=f"closure:{closure.pk}")
    for d in active:
        d.status, d.lifted_at = Detour.Status.LIFTED, now
    return active


# ------------------------------------------------------------------------------------------------ GTFS-RT


def _header(message, now: dt.datetime) -> None:
    message.header.gtfs_realtime_version = "2.0"
    message.header.incrementality = gtfs_realtime_pb2.FeedHeader.FULL_DATASET
    message.header.timestamp = int(now.timestamp())


def trip_updates_message(*, now: dt.datetime | None = None, service_date: dt.date | None = None):
    """GTFS-Realtime TripUpdates: every trip of the service day (today in the agency's zone) that an active
    detour affects, with its skipped stops as SKIPPED stop_time_updates. Frequency departures carry their
    start_time, as the spec asks for frequency-based trips."""
    now = now or timezone.now()
    message = gtfs_realtime_pb2.FeedMessage()
    _header(message, now)
    skipped_rel = gtfs_realtime_pb2.TripUpdate.StopTimeUpdate.SKIPPED
    for detour in Detour.objects.filter(status=Detour.Status.ACTIVE).select_related("feed", "route").order_by("id"):
        skipped = set(detour.skipped_stops.values_list("pk", flat=True))
        if not skipped:
            continue  # nothing to skip: the Service Alert tells riders about the detour
        day = service_date or feed_today(feed=detour.feed, now=now)
        trip_ids = set(detour.affected_trips.values_list("trip_id", flat=True))
        today = day_trips(feed=detour.feed, service_date=day)
        today = today[today["trip_id"].isin(trip_ids)]
        if today.empty:
            continue
        stop_rows: dict[str, list[tuple[int, str]]] = {}
        for trip_id, seq, stop_id in StopTime.objects.filter(
                trip__in=detour.affected_trips.filter(trip_id__in=set(today["trip_id"])), stop_id__in=skipped
        ).order_by("trip_id", "stop_sequence").values_list("trip__trip_id", "stop_sequence", "stop__stop_id"):
            stop_rows.setdefault(trip_id, []).append((seq, stop_id))
        for trip in today.itertuples(index=False):
            rows = stop_rows.get(trip.trip_id)
            if not rows:
                continue
            entity = message.entity.add()
            entity.id = f"detour-{detour.pk}-{trip.trip_key}"
            tu = entity.trip_update
            tu.trip.trip_id = trip.trip_id
            tu.trip.route_id = detour.route.route_id
            if not pd.isna(trip.direction_id):
                tu.trip.direction_id = int(trip.direction_id)
            tu.trip.start_date = day.strftime("%Y%m%d")
            if trip.frequency_based:
                tu.trip.start_time = trip.trip_key.split("@", 1)[1]
            tu.trip.schedule_relationship = gtfs_realtime_pb2.TripDescriptor.SCHEDULED
            tu.timestamp = int(now.timestamp())
            for seq, stop_id in rows:
                stu = tu.stop_time_update.add()
                stu.stop_sequence = int(seq)
                stu.stop_id = stop_id
                stu.schedule_relationship = skipped_rel
    return message


def _text(target, text: str) -> None:
    t = target.translation.add()
    t.text = text
    t.language = "en"


def alerts_message(*, now: dt.datetime | None = None):
    """GTFS-Realtime Service Alerts: one per active detour (effect DETOUR), naming its route and the stops
    not served, active while the closure is."""
    now = now or timezone.now()
    message = gtfs_realtime_pb2.FeedMessage()
    _header(message, now)
    alert_cls = gtfs_realtime_pb2.Alert
    for detour in Detour.objects.filter(status=Detour.Status.ACTIVE).select_related(
            "route", "closure", "from_stop", "to_stop").order_by("id"):
        entity = message.entity.add()
        entity.id = f"detour-{detour.pk}"
        alert = entity.alert
        period = alert.active_period.add()
        period.start = int(detour.closure.valid_from.timestamp())
        if detour.closure.valid_to:
            period.end = int(detour.closure.valid_to.timestamp())
        informed = alert.informed_entity.add()
        informed.route_id = detour.route.route_id
        if detour.direction_id is not None:
            informed.direction_id = detour.direction_id
        skipped = list(detour.skipped_stops.order_by("stop_id"))
        for stop in skipped:
            e = alert.informed_entity.add()
            e.route_id = detour.route.route_id
            e.stop_id = stop.stop_id
        alert.cause = alert_cls.WEATHER if detour.closure.source_agent == "flood" else alert_cls.OTHER_CAUSE
        alert.effect = alert_cls.DETOUR
        _text(alert.header_text, f"Route {detour.route.label}: detour ({detour.closure.reason})")
        names = ", ".join(s.name or s.stop_id for s in skipped)
        if detour.geom is not None:
            text = (f"A road on this route is closed ({detour.closure.reason}). Buses run a detour between "
                    f"{detour.from_stop} and {detour.to_stop}.")
        else:
            text = f"A road on this route is closed ({detour.closure.reason}). {detour.note}."
        if names:
            text += f" Stops not served: {names}."
        _text(alert.description_text, text)
    return message
