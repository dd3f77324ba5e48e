"""The sanitation run's own writes: a breakdown takes the truck out of service through a service, audited."""
from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point

from agents.sanitation.models import Depot, Truck
from agents.sanitation.services.agent_run import truck_breakdown_record, truck_from_payload
from city_ops.core.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def truck():
    depot = Depot.objects.create(name="Test depot", geom=Point(24.94, 60.17, srid=4326))
    return Truck.objects.create(code="T-7", depot=depot, waste_types=["mixed"], capacity_l=20000, capacity_kg=9000)


def test_breakdown_takes_the_truck_out_of_service_with_an_audit_entry(truck, users):
    assert truck_from_payload({"vehicle": "T-7"}) == truck and truck_from_payload({"truck_id": truck.pk}) == truck
    assert truck_from_payload({"vehicle": "BUS-12"}) is None  # another agent's vehicle
    truck_breakdown_record(truck=truck, reason="hydraulics " * 30, actor=users.dispatcher)
    truck.refresh_from_db()
    assert not truck.in_service and truck.out_of_service_reason.startswith("hydraulics") \
        and len(truck.out_of_service_reason) == 200
    entry = AuditEntry.objects.get(action="sanitation.truck_broke_down")
    assert entry.object_id == str(truck.pk) and entry.actor == users.dispatcher and entry.changes["in_service"] is False
