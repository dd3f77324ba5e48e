"""Helpers for the bus agent's Django tests: feeds written on the spot (good and broken), commands run for
their JSON, the shared real feeds rewritten with one thing broken."""
from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command

from agents.bus.domain.synthetic import feed_tiny_tables, feed_zip_write
from agents.geo import point_offset

# The platform's fixtures (the demo city, role users, Chromium) live in tests/conftest.py at the top.

LAT0, LON0 = 40.0, -75.0  # far from the demo city: deadhead falls back to straight lines


def command_json(name: str, *args) -> dict:
    """Run a management command with --json and parse its stdout (which must be JSON alone)."""
    out, err = io.StringIO(), io.StringIO()
    call_command(name, *args, "--json", stdout=out, stderr=err)
    return json.loads(out.getvalue())


def at(east_m: float, north_m: float) -> tuple[float, float]:
    lat, lon = point_offset(lat=LAT0, lon=LON0, east_m=east_m, north_m=north_m)
    return round(lat, 7), round(lon, 7)


def feed_from_legs(path: Path, stops: dict[str, tuple[float, float]], legs: dict[str, tuple], *,
                   frequencies: list[dict] | None = None) -> Path:
    """A one-route weekday feed: `legs` maps trip_id -> ((stop, "HH:MM:SS"), ...) in order."""
    st = []
    for trip_id, calls in legs.items():
        for k, (stop, clock) in enumerate(calls):
            st.append({"trip_id": trip_id, "arrival_time": clock, "departure_time": clock, "stop_id": stop,
                       "stop_sequence": k + 1})
    tables = {
        "agency.txt": pd.DataFrame([{"agency_name": "Hand", "agency_url": "https://example.org",
                                     "agency_timezone": "America/New_York"}]),
        "stops.txt": pd.DataFrame([{"stop_id": s, "stop_name": s, "stop_lat": lat, "stop_lon": lon}
                                   for s, (lat, lon) in stops.items()]),
        "routes.txt": pd.DataFrame([{"route_id": "R", "route_short_name": "R", "route_type": 3}]),
        "trips.txt": pd.DataFrame([{"route_id": "R", "service_id": "WK", "trip_id": t} for t in legs]),
        "stop_times.txt": pd.DataFrame(st),
        "calendar.txt": pd.DataFrame([{"service_id": "WK", "monday": 1, "tuesday": 1, "wednesday": 1,
                                       "thursday": 1, "friday": 1, "saturday": 0, "sunday": 0,
                                       "start_date": "20240101", "end_date": "20241231"}]),
    }
    if frequencies:
        tables["frequencies.txt"] = pd.DataFrame(frequencies)
    return feed_zip_write(path=path, tables=tables)


@pytest.fixture
def tiny_zip(tmp_path) -> Path:
    return feed_zip_write(path=tmp_path / "tiny.zip", tables=feed_tiny_tables())


def zip_rewrite(src: Path, dst: Path, *, drop: tuple[str, ...] = (), edit: dict | None = None) -> Path:
    """Copy a GTFS zip with files dropped or rewritten: `edit` maps a file name to a function that takes
    and returns its rows (list of dicts), so a real feed can be broken in one precise way."""
    edit = edit or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            name = Path(info.filename).name
            if name in drop:
                continue
            data = zin.read(info.filename)
            if name in edit:
                rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
                fields = list(rows[0].keys()) if rows else []
                rows = edit[name](rows)
                buffer = io.StringIO()
                writer = csv.DictWriter(buffer, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)
                data = buffer.getvalue().encode()
            zout.writestr(info.filename, data)
    return dst


@pytest.fixture
def gtfs_dir(shared_dir) -> Path:
    return shared_dir / "benchmarks" / "gtfs"
