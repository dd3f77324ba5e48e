"""Defects on the real OSM network of central Helsinki: snapping within a tolerance, merging of repeat
sightings (same class, a few metres apart on the same segment, across photos and days), ranking, work orders
and the segment condition index."""
from __future__ import annotations

import datetime as dt
import hashlib
import itertools

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.roads.models import Defect, DefectSighting, FixedCamera, InspectionPhoto, SegmentCondition
from agents.roads.selectors import point_snap
from agents.roads.services.defects import defect_order_if_due, defects_rerank, photo_defects_record
from city_ops.city.models import RoadSegment
from city_ops.workorders.models import WorkOrder
from city_ops.workorders.services import work_order_photo_add, work_order_transition

from .conftest import photo_bytes, spot_on, upload_file

_seq = itertools.count()
BIG = [100.0, 200.0, 340.0, 330.0]  # 240 x 130 px of a 640 x 480 photo: ~10 % of it
SMALL = [300.0, 300.0, 330.0, 320.0]


def done_photo(*, lon: float, lat: float, detections: list[dict], when: dt.datetime | None = None, user=None,
               camera: FixedCamera | None = None) -> InspectionPhoto:
    """A processed photo row (what detection leaves behind), without running the model."""
    n = next(_seq)
    return InspectionPhoto.objects.create(
        sha256=hashlib.sha256(f"photo-{n}".encode()).hexdigest(), uploader=user, taken_at=when or timezone.now(),
        taken_at_source="exif", location=Point(lon, lat, srid=4326), location_source="exif", width=640, height=480,
        status=InspectionPhoto.Status.DONE, detections=detections, fixed_camera=camera,
        source="fixed" if camera else "crew")


def det(cls: str = "pothole", box=BIG, conf: float = 0.9) -> dict:
    return {"class": cls, "class_id": 0, "confidence": conf, "box": list(box)}


def test_snaps_to_the_nearest_real_segment_within_tolerance(long_segment):
    on = spot_on(long_segment, 0.5)
    snap = point_snap(point=Point(on.lon, on.lat, srid=4326), within_m=25)
    assert snap is not None and snap.offset_m < 0.5
    # a few metres off the centre line (a crew on the pavement) still lands on a road, a few metres away
    side = spot_on(long_segment, 0.5, north_m=6)
    snap = point_snap(point=Point(side.lon, side.lat, srid=4326), within_m=25)
    assert snap is not None and 0.5 < snap.offset_m <= 6.5
    # the snapped point lies on its segment
    assert snap.segment.geom.distance(Point(snap.lon, snap.lat, srid=4326)) < 1e-7


def test_far_from_every_road_no_defect(city):
    # the middle of the sea south of the peninsula, inside the city's bounds margin
    photo = done_photo(lon=24.955, lat=60.140, detections=[det()])
    out = photo_defects_record(photo=photo)
    assert out.off_road == 1 and out.created == [] and Defect.objects.count() == 0


def test_two_metres_apart_merge_thirty_metres_apart_do_not(long_segment, users):
    a = spot_on(long_segment, 0.5)
    b = spot_on(long_segment, 0.5, east_m=2.0 * _along_east(long_segment), north_m=2.0 * _along_north(long_segment))
    c = spot_on(long_segment, 0.5, east_m=30 * _along_east(long_segment), north_m=30 * _along_north(long_segment))
    day1 = timezone.now() - dt.timedelta(days=3)
    first = photo_defects_record(photo=done_photo(lon=a.lon, lat=a.lat, detections=[det()], when=day1, user=users.crew))
    second = photo_defects_record(photo=done_photo(lon=b.lon, lat=b.lat, detections=[det(conf=0.7)],
                                                   when=day1 + dt.timedelta(days=2), user=users.crew_other))
    third = photo_defects_record(photo=done_photo(lon=c.lon, lat=c.lat, detections=[det()], user=users.crew))
    assert len(first.created) == 1 and second.created == [] and second.merged == first.created
    assert len(third.created) == 1 and third.created != first.created
    merged = Defect.objects.get(pk=first.created[0])
    assert merged.sightings_count == 2 and merged.segment == long_segment
    assert merged.first_seen == day1 and merged.last_seen == day1 + dt.timedelta(days=2)
    assert merged.confidence == pytest.approx(0.9)
    history = list(merged.sightings.order_by("seen_at").values_list("distance_m", flat=True))
    assert history[0] == 0 and 1.0 < history[1] < 3.0


def _along_east(seg: RoadSegment) -> float:
    (x0, y0), (x1, y1) = seg.geom.coords[0], seg.geom.coords[-1]
    import math

    dx, dy = (x1 - x0) * math.cos(math.radians(y0)), (y1 - y0)
    return dx / math.hypot(dx, dy)


def _along_north(seg: RoadSegment) -> float:
    (x0, y0), (x1, y1) = seg.geom.coords[0], seg.geom.coords[-1]
    import math

    dx, dy = (x1 - x0) * math.cos(math.radians(y0)), (y1 - y0)
    return dy / math.hypot(dx, dy)


def test_other_class_or_repaired_damage_is_a_new_defect(long_segment):
    a = spot_on(long_segment, 0.4)
    hole = photo_defects_record(photo=done_photo(lon=a.lon, lat=a.lat, detections=[det()]))
    crack = photo_defects_record(photo=done_photo(lon=a.lon, lat=a.lat, detections=[det("longitudinal crack")]))
    assert crack.created and crack.created != hole.created
    Defect.objects.filter(pk=hole.created[0]).update(status=Defect.Status.REPAIRED)
    again = photo_defects_record(photo=done_photo(lon=a.lon, lat=a.lat, detections=[det()]))
    assert again.created and again.created != hole.created  # the road broke again after the repair


def test_a_photo_is_snapped_once_for_all_its_detections(long_segment):
    # A survey frame of a broken road has many boxes; each used to snap the same photo location again.
    a = spot_on(long_segment, 0.6)
    photo = done_photo(lon=a.lon, lat=a.lat, detections=[det(), det(box=SMALL), det("longitudinal crack"),
                                                         det("a class of neither kind")])
    with CaptureQueriesContext(connection) as queries:
        out = photo_defects_record(photo=photo)
    snaps = [q for q in queries.captured_queries if "ST_ClosestPoint" in q["sql"]]
    assert len(snaps) == 1
    assert len(out.created) == 2 and out.other_class == 1  # a pothole (two boxes) and a crack
    assert {d.segment_id for d in Defect.objects.filter(pk__in=out.created)} == {long_segment.pk}


def test_recording_a_photo_twice_changes_nothing(long_segment):
    a = spot_on(long_segment, 0.3)
    photo = done_photo(lon=a.lon, lat=a.lat, detections=[det(), det(box=SMALL)])
    photo_defects_record(photo=photo)
    before = (Defect.objects.count(), DefectSighting.objects.count(), WorkOrder.objects.count())
    photo_defects_record(photo=photo)  # a redelivered task
    assert (Defect.objects.count(), DefectSighting.objects.count(), WorkOrder.objects.count()) == before
    # two boxes of the same class in one photo are one defect seen once
    d = Defect.objects.get()
    assert d.sightings.count() == 2 and d.sightings_count == 1


def test_big_pothole_gets_an_order_small_crack_does_not(long_segment, users):
    a, b = spot_on(long_segment, 0.2), spot_on(long_segment, 0.8)
    big = photo_defects_record(photo=done_photo(lon=a.lon, lat=a.lat, detections=[det()]))
    small = photo_defects_record(photo=done_photo(lon=b.lon, lat=b.lat,
                                                  detections=[det("longitudinal crack", SMALL, 0.5)]))
    assert len(big.orders) == 1 and small.orders == []
    order = WorkOrder.objects.get(pk=big.orders[0])
    defect = Defect.objects.get(pk=big.created[0])
    assert order.source_agent == "roads" and order.source_ref == f"defect:{defect.pk}"
    assert order.segment == long_segment and defect.work_order == order and defect.status == "ordered"
    assert order.assignee in (users.crew, users.crew_other) and order.status == "assigned"
    assert order.priority == defect.priority and defect.priority >= 2
    crack = Defect.objects.get(pk=small.created[0])
    assert crack.status == "open" and crack.priority_score < defect.priority_score


def test_main_road_ranks_above_a_residential_street(city):
    primary = RoadSegment.objects.filter(road_class="primary", length_m__gte=40).order_by("osm_id").first()
    residential = RoadSegment.objects.filter(road_class="residential", length_m__gte=40).order_by("osm_id").first()
    p, r = spot_on(primary), spot_on(residential)
    on_primary = photo_defects_record(photo=done_photo(lon=p.lon, lat=p.lat, detections=[det(box=SMALL)]))
    on_res = photo_defects_record(photo=done_photo(lon=r.lon, lat=r.lat, detections=[det(box=SMALL)]))
    dp, dr = Defect.objects.get(pk=on_primary.created[0]), Defect.objects.get(pk=on_res.created[0])
    assert dp.segment.road_class == "primary" and dr.segment.road_class == "residential"
    assert dp.severity == dr.severity and dp.priority_score > dr.priority_score


def test_fixed_camera_defects_go_to_the_watched_segment(long_segment, city):
    other = (RoadSegment.objects.exclude(pk=long_segment.pk).filter(road_class="residential")
             .order_by("osm_id").first())
    at = spot_on(long_segment, 0.5, north_m=4)
    cam = FixedCamera.objects.create(name="cam", location=Point(at.lon, at.lat, srid=4326), segment=other)
    out = photo_defects_record(photo=done_photo(lon=at.lon, lat=at.lat, detections=[det()], camera=cam))
    # the watched segment is far away: the camera's snapshot is not placed on a road it does not watch
    assert out.off_road == 1
    cam.segment = long_segment
    cam.save()
    out = photo_defects_record(photo=done_photo(lon=at.lon, lat=at.lat, detections=[det()], camera=cam))
    assert Defect.objects.get(pk=out.created[0]).segment == long_segment


def test_condition_index_and_repair_by_after_photo(long_segment, users):
    a = spot_on(long_segment, 0.5)
    out = photo_defects_record(photo=done_photo(lon=a.lon, lat=a.lat, detections=[det()]))
    cond = SegmentCondition.objects.get(segment=long_segment)
    assert cond.open_defects == 1 and cond.condition_index < 100 and cond.worst_severity >= 3
    order = WorkOrder.objects.get(pk=out.orders[0])
    crew = order.assignee
    work_order_transition(order=order, to_status="in_progress", user=crew)
    work_order_photo_add(order=order, kind="after", image=upload_file(photo_bytes(seed=77), "after.jpg"), user=crew)
    defect = Defect.objects.get(pk=out.created[0])
    assert WorkOrder.objects.get(pk=order.pk).status == "done"
    assert defect.status == "repaired" and defect.resolved_at is not None
    cond.refresh_from_db()
    assert cond.open_defects == 0 and cond.condition_index == 100


def test_daily_rerank_orders_defects_that_crossed_the_threshold(long_segment, settings):
    settings.ROADS_ORDER_THRESHOLD = 101  # nothing is ordered when found
    a = spot_on(long_segment, 0.5)
    out = photo_defects_record(photo=done_photo(lon=a.lon, lat=a.lat, detections=[det()]))
    assert out.orders == [] and WorkOrder.objects.count() == 0
    settings.ROADS_ORDER_THRESHOLD = 40
    res = defects_rerank()
    assert res["orders_created"] == 1 and Defect.objects.get().status == "ordered"
    assert defects_rerank()["orders_created"] == 0  # once per defect
    # a dispatcher cancelling the order dismisses the defect: it is not ordered again
    order = WorkOrder.objects.get()
    work_order_transition(order=order, to_status="cancelled", user=_dispatcher())
    assert Defect.objects.get().status == "dismissed"
    assert defect_order_if_due(defect=Defect.objects.get(), threshold=0) is None


def _dispatcher():
    from city_ops.core.roles import Role
    from city_ops.core.services import user_create

    return user_create(username="disp-x", password="pw-disp-123", roles=[Role.DISPATCHER])
