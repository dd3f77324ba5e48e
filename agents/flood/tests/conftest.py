"""Fixtures for the flood agent's Django tests: a small world of zones and sensors built by the test
(no road network needed), and helpers that ingest CSV text and run the live evaluation."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from django.contrib.gis.geos import Point, Polygon
from django.db import connection

from tests.fixtures import browser_login, run_wait  # noqa: F401

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)  # in the past of every test run (ingest refuses future times)


def square(lon: float, lat: float, half: float = 0.0006) -> Polygon:
    return Polygon.from_bbox((lon - half, lat - half, lon + half, lat + half))


@dataclass
class World:
    """Zones: UND (underpass, depth sensor D-1), RIV (river reach, gauge L-1 warning 5 m / guaranteed 7 m),
    LOW (low area with the rain gauge R-1 assigned, not inside it)."""

    zones: dict
    sensors: dict


@pytest.fixture
def world(db) -> World:
    from agents.flood.models import FloodZone, Sensor, Series

    zones = {
        "UND": FloodZone.objects.create(code="UND", name="Test underpass", kind="underpass", geom=square(24.940, 60.170)),
        "RIV": FloodZone.objects.create(code="RIV", name="Test river reach", kind="river_reach",
                                        geom=square(24.950, 60.170)),
        "LOW": FloodZone.objects.create(code="LOW", name="Test low area", kind="low_area", geom=square(24.960, 60.170)),
    }
    d1 = Sensor.objects.create(code="D-1", name="underpass depth", kind="depth", geom=Point(24.940, 60.170, srid=4326))
    Series.objects.create(sensor=d1, parameter="depth", unit="cm")
    l1 = Sensor.objects.create(code="L-1", name="river gauge", kind="river", geom=Point(24.950, 60.170, srid=4326))
    Series.objects.create(sensor=l1, parameter="level", unit="m", warning_level=5.0, guaranteed_level=7.0)
    Series.objects.create(sensor=l1, parameter="discharge", unit="m3/s")
    r1 = Sensor.objects.create(code="R-1", name="rain gauge", kind="rain", geom=Point(24.90, 60.20, srid=4326))
    Series.objects.create(sensor=r1, parameter="rainfall", unit="mm")
    zones["LOW"].assigned_sensors.add(r1)
    return World(zones=zones, sensors={"D-1": d1, "L-1": l1, "R-1": r1})


def csv_text(rows: list[tuple[str, str, dt.datetime, float]]) -> str:
    lines = ["sensor,parameter,time,value"]
    lines += [f"{s},{p},{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{v}" for s, p, t, v in rows]
    return "\n".join(lines) + "\n"


def series_rows(sensor: str, parameter: str, values: list[float], minutes: int = 15,
                start: dt.datetime = T0) -> list[tuple[str, str, dt.datetime, float]]:
    return [(sensor, parameter, start + dt.timedelta(minutes=minutes * i), v) for i, v in enumerate(values)]


def ingest(rows, **kwargs):
    from agents.flood.services import readings_ingest

    return readings_ingest(data=csv_text(rows).encode(), evaluate=False, **kwargs)


def evaluate():
    from agents.flood.services import evaluation_run

    return evaluation_run()


def readings_clear() -> None:
    """Forget every reading and the tracker (tests on the demo city start from a clean slate)."""
    from agents.flood.models import Series, TrackerState

    with connection.cursor() as cur:
        cur.execute("TRUNCATE agent_flood_reading")
    Series.objects.update(last_time=None, last_value=None)
    TrackerState.objects.all().delete()
