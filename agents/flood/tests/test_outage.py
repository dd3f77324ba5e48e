"""Sensor faults of one evaluation acted on together (issue 18): a gateway outage is one notice and one work
order listing the sensors, several sensors of one zone one for the zone, a lone fault the sensor's own, and
restorations go back to active; the tracker's events go through `events_apply` on real PostGIS."""
from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.gis.geos import Point
from django.db.models import Q

from agents.flood.domain import AlertTracker, SensorFault
from agents.flood.models import AlertEvent, FloodZone, Sensor
from agents.flood.services import events_apply
from city_ops.core.roles import Role
from city_ops.core.services import user_create
from city_ops.notifications.models import Notification, Subscription
from city_ops.workorders.models import WorkOrder

from .conftest import T0, square

pytestmark = pytest.mark.django_db

SINCE = T0 + dt.timedelta(hours=9, minutes=40)
AT = SINCE + dt.timedelta(minutes=35)


@pytest.fixture
def duty(db):
    user = user_create(username="outage-duty", password="x-pass-123", roles=[Role.DISPATCHER])
    Subscription.objects.create(role=Role.DISPATCHER.value, topic="flood", min_level=1, channels=["console"])
    return user


def _city(zones: int, per_zone: int) -> list[tuple[str, str]]:
    """Zones OUT-Z<i> side by side, each with `per_zone` depth sensors inside: their (zone, sensor) codes."""
    pairs = []
    for z in range(zones):
        lon = 24.80 + 0.01 * z
        zone = FloodZone.objects.create(code=f"OUT-Z{z}", name=f"Outage zone {z}", kind="low_area",
                                        geom=square(lon, 60.30, half=0.004))
        for s in range(per_zone):
            sensor = Sensor.objects.create(code=f"OUT-{z}-{s}", name=f"depth {z}/{s}", kind="depth",
                                           geom=Point(lon + 0.0005 * s, 60.30, srid=4326))
            pairs.append((zone.code, sensor.code))
    return pairs


def _faults(tracker: AlertTracker, pairs, kind: str = "silent") -> list:
    fault = SensorFault(kind=kind, since=SINCE, at=AT, reason="no reading for 35 min")
    return [e for zone, code in pairs
            for e in tracker.sensor_fault(zone=zone, hazard="waterlogging", sensor=code, fault=fault)]


def _apply(events) -> dict[str, int]:
    """As the evaluation calls it: the zone and sensor rows fresh from the database."""
    zones = FloodZone.objects.in_bulk({e.zone for e in events}, field_name="code")
    sensors = Sensor.objects.in_bulk({e.sensor for e in events}, field_name="code")
    return events_apply(events=events, zones=zones, sensors=sensors)


def _orders():
    return WorkOrder.objects.filter(Q(description__contains="OUT-") | Q(title__contains="OUT-"), source_agent="flood")


def _notes(user):
    return Notification.objects.filter(recipient=user, topic="flood")


def test_an_outage_is_one_notice_and_one_work_order_listing_the_sensors(duty):
    pairs = _city(zones=5, per_zone=5)
    events = _faults(AlertTracker(), pairs)
    assert _apply(events) == {"sensor_fault": 25}
    [note] = _notes(duty)
    assert note.subject == "Sensor outage: 25 sensors in 5 zones silent" and note.level >= 1
    assert "since 2026-07-01 09:40 UTC" in note.body and "gateway, power or network failure" in note.body
    [order] = _orders()
    assert order.title == "Check the sensor network: 25 sensors silent since 09:40"
    assert all(code in order.description for _, code in pairs) and "more" not in order.description
    assert order.source_ref == note.source_ref == "flood-outage:20260701T1015"
    assert order.location.distance(Point(24.821, 60.30, srid=4326)) < 1e-6  # the sensors' centroid
    assert set(Sensor.objects.filter(code__startswith="OUT-").values_list("status", "fault")) == {
        ("fault", "silent: no reading for 35 min")}
    assert AlertEvent.objects.filter(sensor_code__startswith="OUT-", kind="sensor_fault").count() == 25

    _apply(events)  # the same evaluation again: nothing new
    assert _notes(duty).count() == 1 and _orders().count() == 1
    assert AlertEvent.objects.filter(sensor_code__startswith="OUT-").count() == 50  # the log keeps both


def test_an_outage_order_names_fifty_sensors_and_counts_the_rest(duty):
    _apply(_faults(AlertTracker(), _city(zones=11, per_zone=5)))
    [order] = _orders()
    assert order.title.startswith("Check the sensor network: 55 sensors silent")
    assert order.description.endswith(" and 5 more.") and order.description.count("OUT-") == 50


def test_three_sensors_of_a_zone_are_one_notice_and_order_for_the_zone(duty):
    pairs = _city(zones=2, per_zone=3)
    lone = pairs[3]
    _apply(_faults(AlertTracker(), pairs[:4]))
    zone = FloodZone.objects.get(code="OUT-Z0")
    notes = {n.source_ref: n for n in _notes(duty)}
    lone_sensor = Sensor.objects.get(code=lone[1])
    assert set(notes) == {f"flood-zone-sensors:{zone.pk}", f"flood-sensor:{lone_sensor.pk}"}
    assert notes[f"flood-zone-sensors:{zone.pk}"].subject == "Sensor faults: 3 sensors of Outage zone 0 are silent"
    group, single = sorted(_orders(), key=lambda o: o.title)
    assert group.title == "Inspect 3 sensors of Outage zone 0 (silent)"
    assert group.description == "Silent since 2026-07-01 09:40 UTC: OUT-0-0, OUT-0-1, OUT-0-2."
    assert group.location.equals_exact(zone.geom.centroid, 1e-9)
    assert single.title == f"Inspect sensor {lone[1]} (silent)"  # today's per-sensor order
    assert Sensor.objects.filter(code__startswith="OUT-", status="fault").count() == 4


def test_a_lone_fault_is_the_sensors_own_notice_and_order(duty):
    [(zone, code)] = _city(zones=1, per_zone=1)
    _apply(_faults(AlertTracker(), [(zone, code)], kind="stuck"))
    sensor = Sensor.objects.get(code=code)
    [note] = _notes(duty)
    assert note.source_ref == f"flood-sensor:{sensor.pk}" and note.subject == f"Sensor fault: {code} is stuck"
    [order] = _orders()
    assert order.title == f"Inspect sensor {code} (stuck)"
    assert order.source_ref == f"flood-sensor:{sensor.pk}:20260701T1015"
    assert sensor.status == "fault" and sensor.fault == "stuck: no reading for 35 min"


def test_the_same_fault_from_the_sensors_other_zone_is_reported_once(duty):
    [(zone, code)] = _city(zones=1, per_zone=1)
    other = FloodZone.objects.create(code="OUT-OTHER", name="Other", kind="low_area", geom=square(24.7, 60.3))
    _apply(_faults(AlertTracker(), [(zone, code), (other.code, code)]))
    assert _notes(duty).count() == 1 and _orders().count() == 1


def test_restorations_set_the_sensors_active_and_a_mass_one_is_announced_once(duty):
    pairs = _city(zones=5, per_zone=5)
    tracker = AlertTracker()
    _apply(_faults(tracker, pairs))
    back = AT + dt.timedelta(minutes=30)
    events = [e for zone, code in pairs
              for e in tracker.sensor_restored(zone=zone, hazard="waterlogging", sensor=code, time=back)]
    assert _apply(events) == {"sensor_restored": 25}
    assert set(Sensor.objects.filter(code__startswith="OUT-").values_list("status", "fault")) == {("active", "")}
    [restored] = _notes(duty).filter(source_ref__startswith="flood-outage-restored:")
    assert restored.subject == "Sensors back: 25 sensors report again" and not restored.requires_ack


def test_a_fault_and_its_restoration_in_one_evaluation_leave_the_sensor_active(duty):
    [(zone, code)] = _city(zones=1, per_zone=1)
    tracker = AlertTracker()
    events = _faults(tracker, [(zone, code)])
    events += tracker.sensor_restored(zone=zone, hazard="waterlogging", sensor=code, time=AT)
    _apply(events)
    assert Sensor.objects.get(code=code).status == "active"
    assert _orders().count() == 1  # the fault was still seen: a crew checks it



def test_the_outage_size_is_a_setting(duty, settings):
    settings.FLOOD_FAULT_OUTAGE_MIN = 4
    _apply(_faults(AlertTracker(), _city(zones=2, per_zone=2)))
    [note] = _notes(duty)
    assert note.subject == "Sensor outage: 4 sensors in 2 zones silent"


def test_the_zone_group_size_is_a_setting(duty, settings):
    settings.FLOOD_FAULT_GROUP_MIN = 2
    _apply(_faults(AlertTracker(), _city(zones=1, per_zone=2)))
    [order] = _orders()
    assert order.title == "Inspect 2 sensors of Outage zone 0 (silent)"
