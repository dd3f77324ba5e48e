"""Cracks are defects like potholes, on the real network: a model's class names stored as "pothole" or
"crack", sightings merged by class, cracks ranked by length and area, their own repair order (crack sealing,
its own SLA) and their place in the segment's condition index; the data migration that lower-cases the
classes stored before."""
from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.db import connection
from django.utils import timezone

from agents.roads.models import Defect, SegmentCondition
from agents.roads.services.defects import photo_defects_record
from city_ops.city.models import RoadSegment
from city_ops.workorders.models import WorkOrder

from .conftest import spot_on
from .test_defects import BIG, SMALL, _along_east, _along_north, det, done_photo

# 560 x 80 px of a 640 x 480 crew photo (4 m across): a crack about 3.5 m long.
LONG_CRACK = [40.0, 100.0, 600.0, 180.0]
SHORT_CRACK = [300.0, 300.0, 360.0, 315.0]


def _record(segment, fraction, *detections, **shift):
    at = spot_on(segment, fraction, **shift)
    return photo_defects_record(photo=done_photo(lon=at.lon, lat=at.lat, detections=list(detections)))


def test_model_class_names_are_stored_as_the_two_classes_and_others_are_skipped(long_segment):
    out = _record(long_segment, 0.3, det("Pothole"), det("D00", LONG_CRACK), det("D44"), det("Alligator crack", SMALL))
    assert out.other_class == 1 and out.off_road == 0
    # the D00 and the alligator crack are one crack (same class, same spot): two defects in all
    assert sorted(Defect.objects.values_list("class_name", flat=True)) == ["crack", "pothole"]


def test_crack_sightings_merge_by_class_and_never_with_a_pothole(long_segment):
    along = {"east_m": 2.0 * _along_east(long_segment), "north_m": 2.0 * _along_north(long_segment)}
    first = _record(long_segment, 0.5, det("crack", LONG_CRACK, 0.7))
    again = _record(long_segment, 0.5, det("Longitudinal crack", LONG_CRACK, 0.8), **along)
    hole = _record(long_segment, 0.5, det("pothole"), **along)
    assert first.created and again.merged == first.created
    assert hole.created and hole.created != first.created
    crack = Defect.objects.get(pk=first.created[0])
    assert crack.class_name == "crack" and crack.sightings_count == 2 and crack.confidence == pytest.approx(0.8)


def test_a_long_crack_outranks_a_short_one_and_a_big_pothole_outranks_both(long_segment):
    long_ = Defect.objects.get(pk=_record(long_segment, 0.2, det("crack", LONG_CRACK)).created[0])
    short = Defect.objects.get(pk=_record(long_segment, 0.5, det("crack", SHORT_CRACK)).created[0])
    hole = Defect.objects.get(pk=_record(long_segment, 0.8, det("pothole", BIG)).created[0])
    assert short.priority_score < long_.priority_score < hole.priority_score
    assert long_.severity_level == 3 and hole.severity_level == 4


def _hours_left(order: WorkOrder) -> float:
    return (order.due_at - timezone.now()).total_seconds() / 3600


def test_orders_per_class_with_their_treatment_and_sla(city, settings):
    primary = RoadSegment.objects.filter(road_class="primary", length_m__gte=40).order_by("osm_id").first()
    crack = _record(primary, 0.3, det("crack", LONG_CRACK))
    hole = _record(primary, 0.7, det("pothole", BIG))
    crack_order, hole_order = WorkOrder.objects.get(pk=crack.orders[0]), WorkOrder.objects.get(pk=hole.orders[0])
    assert crack_order.title.startswith("Crack sealing on ") and "crack sealing" in crack_order.description
    assert "m long" in crack_order.description
    assert hole_order.title.startswith("Pothole patching on ") and "pothole patching" in hole_order.description
    # conf.py's defaults: a normal crack within 90 days, an urgent pothole within a day
    assert crack_order.priority == 2 and _hours_left(crack_order) == pytest.approx(2160, abs=0.1)
    assert hole_order.priority == 4 and _hours_left(hole_order) == pytest.approx(24, abs=0.1)
    # a city's own SLA: a class left out falls back to the platform's (urgent: 4 h)
    settings.ROADS_REPAIR_SLA_HOURS = {"crack": {"normal": 500}}
    crack2 = _record(primary, 0.3, det("crack", LONG_CRACK), north_m=40)
    hole2 = _record(primary, 0.7, det("pothole", BIG), north_m=40)
    assert _hours_left(WorkOrder.objects.get(pk=crack2.orders[0])) == pytest.approx(500, abs=0.1)
    assert _hours_left(WorkOrder.objects.get(pk=hole2.orders[0])) == pytest.approx(4, abs=0.1)


def test_condition_index_counts_both_classes(long_segment):
    _record(long_segment, 0.3, det("crack", LONG_CRACK))
    cond = SegmentCondition.objects.get(segment=long_segment)
    assert (cond.open_defects, cond.open_cracks, cond.open_potholes) == (1, 1, 0)
    with_crack = cond.condition_index
    assert with_crack < 100
    _record(long_segment, 0.7, det("pothole", BIG))
    cond.refresh_from_db()
    assert (cond.open_defects, cond.open_cracks, cond.open_potholes) == (2, 1, 1)
    assert cond.condition_index < with_crack


def test_migration_maps_stored_classes_to_the_two(long_segment):
    migration = importlib.import_module("agents.roads.migrations.0002_defect_classes")
    at = spot_on(long_segment, 0.5)
    photo = done_photo(lon=at.lon, lat=at.lat, detections=[det("Pothole"), det("D20"), det("Manhole")])
    when = timezone.now() - dt.timedelta(days=1)
    names = ["Pothole", "D40", "D00", "Longitudinal crack", "alligator_crack", " Manhole"]
    for name in names:
        Defect.objects.create(class_name=name, confidence=0.8, area_share=0.05, segment=long_segment,
                              location=photo.location, severity=0.5, severity_level=2, priority_score=40,
                              priority=2, first_seen=when, last_seen=when, best_photo=photo)
    SegmentCondition.objects.create(segment=long_segment, condition_index=50, open_defects=len(names))
    with connection.cursor() as cur:
        for sql in (migration.DEFECTS, migration.DETECTIONS, migration.CONDITION_COUNTS):
            cur.execute(sql)
    assert list(Defect.objects.order_by("id").values_list("class_name", flat=True)) == [
        "pothole", "pothole", "crack", "crack", "crack", "manhole"]
    photo.refresh_from_db()
    assert [d["class"] for d in photo.detections] == ["pothole", "crack", "manhole"]
    assert photo.detections[0]["box"] == BIG and photo.detections[0]["confidence"] == 0.9
    cond = SegmentCondition.objects.get(segment=long_segment)
    assert (cond.open_potholes, cond.open_cracks) == (2, 3)


def test_console_report_and_pdf_show_both_classes_in_english_and_chinese(long_segment, users):
    from django.test import Client
    from django.utils import translation

    from agents.roads.report_pdf import defect_row, report_pdf_render
    from agents.roads.selectors import inspection_report
    from city_ops.core.models import UserProfile

    from .test_report import _tj_strings

    crack = Defect.objects.get(pk=_record(long_segment, 0.2, det("crack", LONG_CRACK)).created[0])
    hole = Defect.objects.get(pk=_record(long_segment, 0.8, det("pothole", BIG)).created[0])
    client = Client()
    client.force_login(users.dispatcher)
    page = client.get("/roads/").content.decode()
    assert 'data-show-class="pothole"' in page and 'data-show-class="crack"' in page
    assert f'data-defect="{crack.pk}" data-class="crack"' in page and f'data-defect="{hole.pk}"' in page
    assert "<span data-open-potholes>1</span>" in page and "<span data-open-cracks>1</span>" in page
    [cond] = client.get("/roads/map/conditions.geojson").json()["features"]
    assert (cond["properties"]["open_potholes"], cond["properties"]["open_cracks"]) == (1, 1)
    only = client.get("/roads/?class=crack").content.decode()
    assert f'data-defect="{crack.pk}"' in only and f'data-defect="{hole.pk}"' not in only
    layer = client.get("/roads/map/defects.geojson?class=pothole").json()
    assert [f["id"] for f in layer["features"]] == [hole.pk] and layer["features"][0]["properties"]["class"] == "pothole"
    report = client.get(f"/roads/report/?segment={long_segment.pk}").content.decode()
    assert "1 pothole, 1 crack" in report and "crack sealing" in report and "pothole patching" in report
    assert f"{crack.crack_length:.1f} m long" in report
    rep = inspection_report(user=users.dispatcher, segment_id=long_segment.pk)
    texts = " ".join(_tj_strings(report_pdf_render(report=rep, compress=False, ttf=None)))
    assert "1 pothole · 1 crack" in texts and "m long" in texts
    UserProfile.objects.update_or_create(user=users.dispatcher, defaults={"language": "zh-hans"})
    page = client.get("/roads/").content.decode()
    assert "坑槽" in page and "裂缝" in page
    report = client.get(f"/roads/report/?segment={long_segment.pk}").content.decode()
    assert "1 处坑槽" in report and "1 处裂缝" in report and "裂缝灌封" in report and "坑槽修补" in report
    with translation.override("zh-hans"):
        rows = {s.defect.class_name: defect_row(s) for s in inspection_report(user=users.dispatcher,
                                                                             segment_id=long_segment.pk).sections}
    assert rows["crack"][1] == "裂缝" and rows["pothole"][1] == "坑槽" and "长约" in rows["crack"][3]
