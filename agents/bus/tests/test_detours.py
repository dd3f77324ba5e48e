"""Flood closures and the buses, on the demo city's real streets: the flood agent's closure reaches the bus
agent as an event; the route over the closed street gets a detour on open roads, the stop on it is
skipped, dispatchers are told, and both public GTFS-Realtime feeds say so until the closure lifts."""
from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point
from google.transit import gtfs_realtime_pb2

from agents.bus.models import Detour, Feed, Stop, Trip
from agents.runtime.models import AgentRun
from agents.runtime.services import agent_run_execute, event_dispatch
from city_ops.city.models import CityEvent, RoadClosure
from city_ops.city.network import road_network
from city_ops.city.services import closure_create, closure_lift
from city_ops.notifications.models import Notification

pytestmark = pytest.mark.django_db


def _around(stop: Stop, metres: float):
    p = Point(stop.geom.x, stop.geom.y, srid=4326)
    p.transform(3067)
    area = p.buffer(metres)
    area.transform(4326)
    return area


def _run_bus_for(kind: str) -> AgentRun:
    event = CityEvent.objects.filter(kind=kind).latest("id")
    runs = [r for r in event_dispatch(event_id=event.pk) if r.agent == "bus"]
    assert len(runs) == 1
    run = agent_run_execute(run_id=runs[0].pk, worker="test")
    assert run.status == "succeeded", run.error
    return run


def _feed(client, path) -> gtfs_realtime_pb2.FeedMessage:
    resp = client.get(path)  # public: no login
    assert resp.status_code == 200 and resp["Content-Type"] == "application/x-protobuf"
    msg = gtfs_realtime_pb2.FeedMessage()
    msg.ParseFromString(resp.content)
    assert msg.header.gtfs_realtime_version == "2.0"
    return msg


def test_flood_closure_detours_route_1_and_publishes_gtfs_rt(demo_city, users, client):
    feed = Feed.objects.get(name="Demo city buses")
    stops = list(Stop.objects.filter(feed=feed, stop_id__startswith="R1-0-").order_by("stop_id"))
    middle = stops[len(stops) // 2]
    closure = closure_create(geom=_around(middle, 25), reason="underpass flooded", source_agent="flood")
    closed = set(closure.segments.values_list("id", flat=True))
    assert closed

    run = _run_bus_for("closure.opened")
    detour = Detour.objects.get(closure=closure, route__route_id="R1", shape__shape_id="R1_0")
    assert detour.status == "active"
    assert middle in detour.skipped_stops.all()
    order = [s.stop_id for s in stops]
    assert order.index(detour.from_stop.stop_id) < order.index(middle.stop_id) < order.index(detour.to_stop.stop_id)
    # The detour runs on open roads only, between the stops on either side of the closed stretch.
    assert detour.geom is not None and not detour.geom.intersects(closure.geom)
    assert detour.geom.distance(detour.from_stop.geom) < 0.002 and detour.geom.distance(detour.to_stop.geom) < 0.002
    path = road_network().path((detour.from_stop.geom.x, detour.from_stop.geom.y),
                               (detour.to_stop.geom.x, detour.to_stop.geom.y))
    assert not closed & set(path.segment_ids)
    assert detour.detour_m == pytest.approx(path.length_m, abs=0.1)
    assert set(detour.affected_trips.all()) == set(Trip.objects.filter(feed=feed, shape__shape_id="R1_0"))
    kpis = {k.name: k.value for k in run.kpis.all()}
    assert kpis["routes_detoured"] >= 1 and kpis["stops_skipped"] >= 1 and kpis["trips_affected"] > 50

    # Dispatchers are told (yellow: to be acknowledged).
    note = Notification.objects.get(recipient=users.dispatcher, topic="bus")
    assert "underpass flooded" in note.subject and note.requires_ack and middle.name in note.body

    # TripUpdates: today's trips of that pattern, the skipped stop marked SKIPPED with its sequence.
    msg = _feed(client, "/api/bus/gtfs-rt/trip-updates.pb")
    updates = [e.trip_update for e in msg.entity if e.trip_update.trip.trip_id.startswith("R1_0_")]
    assert updates, "today's route-1 trips carry trip updates"
    skipped_value = gtfs_realtime_pb2.TripUpdate.StopTimeUpdate.SKIPPED
    for tu in updates:
        marks = {u.stop_id: u for u in tu.stop_time_update}
        assert middle.stop_id in marks and marks[middle.stop_id].schedule_relationship == skipped_value
        assert marks[middle.stop_id].stop_sequence == order.index(middle.stop_id) + 1
        assert tu.trip.route_id == "R1" and len(tu.trip.start_date) == 8
    # Only trips of detoured patterns with skipped stops are in the feed.
    detoured = {t.trip_id for d in Detour.objects.filter(status="active") if d.skipped_stops.exists()
                for t in d.affected_trips.all()}
    assert {e.trip_update.trip.trip_id for e in msg.entity} <= detoured

    # The Service Alert: a detour on route R1, naming the stop not served.
    alerts = _feed(client, "/api/bus/gtfs-rt/alerts.pb")
    alert = next(e.alert for e in alerts.entity if any(i.route_id == "R1" for i in e.alert.informed_entity))
    assert alert.effect == gtfs_realtime_pb2.Alert.DETOUR and alert.cause == gtfs_realtime_pb2.Alert.WEATHER
    assert middle.stop_id in {i.stop_id for i in alert.informed_entity}
    assert "underpass flooded" in alert.header_text.translation[0].text
    assert "effect: DETOUR" in client.get("/api/bus/gtfs-rt/alerts.pb?as=text").content.decode()

    # Lifted: the detours end and the feeds empty.
    closure_lift(closure=RoadClosure.objects.get(pk=closure.pk), source_agent="flood")
    _run_bus_for("closure.lifted")
    assert not Detour.objects.filter(status="active").exists()
    assert len(_feed(client, "/api/bus/gtfs-rt/trip-updates.pb").entity) == 0
    assert len(_feed(client, "/api/bus/gtfs-rt/alerts.pb").entity) == 0


def test_closure_off_every_route_makes_no_detour(demo_city):
    feed = Feed.objects.get(name="Demo city buses")
    from city_ops.city.models import RoadSegment

    routes = feed.routes.exclude(geom__isnull=True)
    near = RoadSegment.objects.none()
    for r in routes:
        near = near | RoadSegment.objects.filter(geom__dwithin=(r.geom, 0.002))
    far = RoadSegment.objects.exclude(pk__in=near.values("pk")).order_by("id").first()
    closure = closure_create(geom=far.geom, reason="water main", source_agent="flood")
    run = _run_bus_for("closure.opened")
    assert not Detour.objects.filter(closure=closure).exists()
    assert "0 detour" in run.summary


def test_stops_are_assets_other_agents_can_find(demo_city):
    from agents.runtime.registry import assets_in_area

    stop = Stop.objects.filter(feed__name="Demo city buses").order_by("stop_id").first()
    found = [a for a in assets_in_area(area=_around(stop, 40)) if a.agent == "bus"]
    assert any(a.id.endswith(stop.stop_id) and a.kind == "bus_stop" for a in found)
    assert all(stop.geom.distance(Point(a.lon, a.lat, srid=4326)) < 0.001 for a in found)
