"""A flood alert names what lies in its zone: the other agents' assets (bus stops, bins, open road
defects, through the runtime's `assets_in_area`) and open work orders, in its notification and on the
flood panel."""
from __future__ import annotations

import pytest
from django.contrib.gis.geos import Point
from django.test import Client
from django.utils import timezone

from agents.bus.models import Feed, Stop
from agents.flood.models import Alert
from agents.flood.selectors import zone_exposure
from agents.sanitation.models import Bin
from city_ops.notifications.models import Notification
from city_ops.workorders.services import work_order_create

from .conftest import evaluate, ingest, series_rows
from .test_agent_rules import STORM, dispatchers_subscribed  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db
INSIDE_LOW = (24.9601, 60.1701)  # inside the LOW zone of the `world` fixture
OUTSIDE = (24.9700, 60.1700)


@pytest.fixture
def things(world, users):
    feed = Feed.objects.create(name="test feed", source_name="t.zip", imported_at=timezone.now())
    Stop.objects.create(feed=feed, stop_id="S1", name="Harbour Gate", geom=Point(*INSIDE_LOW, srid=4326))
    Stop.objects.create(feed=feed, stop_id="S2", name="Hill Top", geom=Point(*OUTSIDE, srid=4326))
    Bin.objects.create(code="B-LOW-1", geom=Point(*INSIDE_LOW, srid=4326), capacity_l=660, street="Shore Road")
    order, _ = work_order_create(title="Drain blocked", location=Point(*INSIDE_LOW, srid=4326), user=users.dispatcher)
    return order


def test_exposure_of_a_zone_lists_the_stop_bin_and_order_inside_it(world, things):
    exposure = zone_exposure(zone=world.zones["LOW"])
    assert {(a.agent, a.kind, a.label) for a in exposure.assets} == {
        ("bus", "bus_stop", "Harbour Gate"), ("sanitation", "bin", "660 L mixed waste bin, Shore Road")}
    assert exposure.work_orders == [things]
    assert dict(exposure.groups()) == {"1 bus stop": ["Harbour Gate"], "1 bin": ["660 L mixed waste bin, Shore Road"],
                                       "1 open work order": [f"#{things.pk} Drain blocked"]}
    assert zone_exposure(zone=world.zones["UND"]).summary() == "Nothing of the city's registered in the zone."


def test_alert_notification_and_panel_name_what_is_in_the_zone(world, things, dispatchers_subscribed, users):  # noqa: F811
    ingest(series_rows("R-1", "rainfall", STORM[:10]))
    evaluate()
    alert = Alert.objects.get(zone__code="LOW")
    note = Notification.objects.filter(recipient=dispatchers_subscribed, source_ref=f"flood-alert:{alert.pk}").first()
    assert note is not None
    assert "In the zone: 1 bin (660 L mixed waste bin, Shore Road); 1 bus stop (Harbour Gate); " in note.body
    assert f"1 open work order (#{things.pk} Drain blocked)" in note.body and "Hill Top" not in note.body

    client = Client()
    client.force_login(users.dispatcher)
    page = client.get("/flood/").content.decode()
    block = page[page.index(f'data-exposure="{alert.pk}"'):]
    block = block[:block.index("</ul>")]
    assert "Harbour Gate" in block and "Shore Road" in block and "Drain blocked" in block
    assert "Hill Top" not in block
