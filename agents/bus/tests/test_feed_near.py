"""Which feed a vehicle belongs to: the newest feed with a stop within the distance, in metres, found through
the GiST index on the stops' geometry (not by casting every stop to geography)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.gis.geos import Point
from django.db import connection
from django.utils import timezone
from pyproj import Geod

from agents.bus.models import Feed, Stop
from agents.bus.selectors import feed_near
from city_ops.core.testing import gist_index_name, query_plans

GEOD = Geod(ellps="WGS84")
HOME = (24.94, 60.17)


def _feed(name: str, age_days: int) -> Feed:
    return Feed.objects.create(name=name, source_name=f"{name}.zip", sha256=name.ljust(64, "0"),
                               imported_at=timezone.now() - dt.timedelta(days=age_days))


@pytest.fixture
def feeds(db):
    """An older feed with 3,000 stops 100-200 m apart east of HOME; a newer one with one stop at HOME."""
    old, new = _feed("old", 30), _feed("new", 1)
    Stop.objects.bulk_create(Stop(feed=old, stop_id=f"s{i}-{j}", geom=Point(25.0 + i * 0.002, 60.1 + j * 0.001))
                             for i in range(60) for j in range(50))
    Stop.objects.create(feed=new, stop_id="home", geom=Point(*HOME))
    Stop.objects.create(feed=new, stop_id="nowhere")  # a stop without coordinates is never near
    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {Stop._meta.db_table}")
    return old, new


def _west_of_home(metres: float) -> dict:
    lon, lat, _ = GEOD.fwd(*HOME, 270, metres)
    return {"lon": lon, "lat": lat}


def test_newest_feed_within_the_distance_and_none_beyond(feeds):
    old, new = feeds
    assert feed_near(**_west_of_home(2990), within_m=3000) == new
    assert feed_near(**_west_of_home(3010), within_m=3000) is None
    assert feed_near(lon=25.05, lat=60.12, within_m=3000) == old  # only the old feed's stops are near
    assert feed_near(lon=24.97, lat=60.16, within_m=3000) == new  # both near (2 km): the newer one


def test_feed_near_uses_the_gist_index(feeds):
    table = Stop._meta.db_table
    index = gist_index_name(table=table, column="geom")
    assert index, "Stop.geom has a GiST index"
    (plan,) = query_plans(lambda: feed_near(lon=25.05, lat=60.12, within_m=300), table=table)
    assert index in plan and f"Seq Scan on {table}" not in plan, plan
