"""Write GTFS zips: any tables given as DataFrames, or a synthetic city network of a chosen size.

Used by the tests (tiny feeds built on the spot, good and deliberately broken) and by the benchmark
(a feed of a few thousand trips, bigger than the public samples).
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from agents.geo import point_offset

from .gtfs import seconds_format

__all__ = ["feed_synthetic_write", "feed_tiny_tables", "feed_zip_write", "positions_synthetic"]


def feed_zip_write(*, path: str | Path, tables: dict[str, pd.DataFrame | str]) -> Path:
    """Write a GTFS zip: each key is a file name ("stops.txt"), each value a DataFrame or raw CSV text."""
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, table in tables.items():
            if isinstance(table, pd.DataFrame):
                buffer = io.StringIO()
                table.to_csv(buffer, index=False)
                table = buffer.getvalue()
            archive.writestr(name, table)
    return path


def _offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    return point_offset(lat=lat, lon=lon, east_m=float(east_m), north_m=float(north_m))


def feed_synthetic_write(
    *,
    path: str | Path,
    routes: int = 13,
    stops_per_route: int = 20,
    stop_spacing_m: float = 400.0,
    seed: int = 0,
    centre: tuple[float, float] = (47.61, -122.33),
    service_start: str = "20240101",
    service_end: str = "20241231",
) -> Path:
    """A weekday network of two-way routes radiating across a city, headways by time of day
    (10 min peaks, 15 min midday, 20 min evening, 06:00-23:00), running slower in the peaks.
    With the defaults: 13 routes, ~2,000 trips and ~40,000 stop_times per weekday. Deterministic per seed.
    """
    rng = np.random.default_rng(seed)
    lat0, lon0 = centre
    periods = [(6 * 3600, 9 * 3600, 600, 1.25), (9 * 3600, 15 * 3600, 900, 1.0),
               (15 * 3600, 19 * 3600, 600, 1.25), (19 * 3600, 23 * 3600, 1200, 0.9)]
    stops, route_rows, trip_rows, st_rows, shape_rows = [], [], [], [], []
    for r in range(routes):
        angle = rng.uniform(0, 2 * np.pi)
        shift = rng.uniform(-2500, 2500, size=2)  # routes do not all cross the same point
        length = stop_spacing_m * (stops_per_route - 1)
        direction = np.array([np.cos(angle), np.sin(angle)])
        route_id = f"R{r + 1}"
        route_rows.append({"route_id": route_id, "route_short_name": str(r + 1), "route_type": 3})
        ids = []
        for k in range(stops_per_route):
            east, north = shift + direction * (k * stop_spacing_m - length / 2)
            lat, lon = _offset(lat0, lon0, east, north)
            stop_id = f"S{r + 1}_{k + 1}"
            ids.append(stop_id)
            stops.append({"stop_id": stop_id, "stop_name": f"Route {r + 1} stop {k + 1}", "stop_lat": round(lat, 6),
                          "stop_lon": round(lon, 6)})
        for d in (0, 1):
            order = ids if d == 0 else ids[::-1]
            shape_id = f"{route_id}_{d}"
            for k, stop_id in enumerate(order):
                row = next(s for s in stops[-stops_per_route:] if s["stop_id"] == stop_id)
                shape_rows.append({"shape_id": shape_id, "shape_pt_lat": row["stop_lat"],
                                   "shape_pt_lon": row["stop_lon"], "shape_pt_sequence": k + 1})
            speed = rng.uniform(4.5, 6.0)  # m/s off-peak, including dwell
            first = 6 * 3600 + int(rng.integers(0, 600))
            t, n = first, 0
            for start, end, headway, slow in periods:
                t = max(t, start)
                while t < end:
                    trip_id = f"{route_id}_{d}_{n + 1}"
                    trip_rows.append({"route_id": route_id, "service_id": "WK", "trip_id": trip_id,
                                      "direction_id": d, "shape_id": shape_id})
                    link = stop_spacing_m / speed * slow
                    for k, stop_id in enumerate(order):
                        clock = seconds_format(t + round(k * link))
                        st_rows.append({"trip_id": trip_id, "arrival_time": clock, "departure_time": clock,
                                        "stop_id": stop_id, "stop_sequence": k + 1})
                    t += headway
                    n += 1
    path = Path(path)
    return feed_zip_write(
        path=path,
        tables={
            "agency.txt": pd.DataFrame([{"agency_name": "Synthetic Transit", "agency_url": "https://example.org",
                                         "agency_timezone": "America/Los_Angeles"}]),
            "stops.txt": pd.DataFrame(stops),
            "routes.txt": pd.DataFrame(route_rows),
            "trips.txt": pd.DataFrame(trip_rows),
            "stop_times.txt": pd.DataFrame(st_rows),
            "shapes.txt": pd.DataFrame(shape_rows),
            "calendar.txt": pd.DataFrame([{"service_id": "WK", "monday": 1, "tuesday": 1, "wednesday": 1,
                                           "thursday": 1, "friday": 1, "saturday": 0, "sunday": 0,
                                           "start_date": service_start, "end_date": service_end}]),
        },
    )


def positions_synthetic(*, patterns, trips: pd.DataFrame, at_s: float, epoch: int, vehicles: int,
                        rng: np.random.Generator, jitter_m: float = 300.0, prefix: str = "bus-") -> list[dict]:
    """JSON AVL pings (the shape `vehicle_positions_read` takes) of `vehicles` buses on the trips under way
    at `at_s` (seconds of the service day; `trips` as `service_trips` gives them, `patterns` a
    `PatternIndex` of the same feed), each where its schedule puts it give or take `jitter_m` (normal), so
    some bunch and some leave gaps. More buses than trips under way: trips are drawn twice."""
    live = trips[(trips["start_s"] <= at_s) & (trips["end_s"] > at_s)
                 & trips["trip_id"].astype(str).isin(patterns.trip_pattern)]
    if live.empty:
        return []
    pick = live.sample(n=vehicles, replace=len(live) < vehicles, random_state=int(rng.integers(2**31)))
    pings = []
    for k, trip in enumerate(pick.itertuples(index=False)):
        line = patterns.patterns[patterns.trip_pattern[str(trip.trip_id)]].line
        share = (at_s - trip.start_s) / max(trip.end_s - trip.start_s, 1.0)
        point = line.interpolate(float(np.clip(share * line.length + rng.normal(0, jitter_m), 0, line.length)))
        lon, lat = patterns.transformer.transform(point.x, point.y, direction="INVERSE")
        pings.append({"vehicle_id": f"{prefix}{k}", "lat": round(lat, 7), "lon": round(lon, 7), "timestamp": epoch,
                      "trip_id": str(trip.trip_id), "route_id": str(trip.route_id)})
    return pings


def feed_tiny_tables() -> dict[str, pd.DataFrame]:
    """A small valid feed as DataFrames, for tests to write as-is or break on purpose.

    Stops A, B (3 km east of A), C, D; routes R1 (A<->B) and R2 (C->D). On weekdays (service WK):
    t1 A->B 08:00-08:30, t2 B->A 08:40-09:10, t3 C->D 08:10-08:40, t5 C->D every 20 min 12:00-13:00
    (frequencies.txt, exact_times=1), t6 A->B 24:30-25:10 (past midnight). Weekends (WE): t4 A->B 10:00.
    2024-07-04 swaps WK for WE (calendar_dates). t1, t2 share block K1; t3 is block K2.
    """
    base_lat, base_lon = 40.0, -75.0
    stops = pd.DataFrame(
        [
            {"stop_id": "A", "stop_name": "A", "stop_lat": base_lat, "stop_lon": base_lon},
            {"stop_id": "B", "stop_name": "B", "stop_lat": base_lat, "stop_lon": round(_offset(base_lat, base_lon, 3000, 0)[1], 6)},
            {"stop_id": "C", "stop_name": "C", "stop_lat": round(_offset(base_lat, base_lon, 0, 2000)[0], 6), "stop_lon": base_lon},
            {"stop_id": "D", "stop_name": "D", "stop_lat": round(_offset(base_lat, base_lon, 0, 5000)[0], 6), "stop_lon": base_lon},
        ]
    )
    trips = pd.DataFrame(
        [
            {"route_id": "R1", "service_id": "WK", "trip_id": "t1", "direction_id": 0, "block_id": "K1", "shape_id": "S1"},
            {"route_id": "R1", "service_id": "WK", "trip_id": "t2", "direction_id": 1, "block_id": "K1", "shape_id": "S2"},
            {"route_id": "R2", "service_id": "WK", "trip_id": "t3", "direction_id": 0, "block_id": "K2", "shape_id": "S3"},
            {"route_id": "R1", "service_id": "WE", "trip_id": "t4", "direction_id": 0, "block_id": "K3", "shape_id": "S1"},
            {"route_id": "R2", "service_id": "WK", "trip_id": "t5", "direction_id": 0, "block_id": "", "shape_id": "S3"},
            {"route_id": "R1", "service_id": "WK", "trip_id": "t6", "direction_id": 0, "block_id": "K4", "shape_id": "S1"},
        ]
    )
    legs = {"t1": ("A", "B", "08:00:00", "08:30:00"), "t2": ("B", "A", "08:40:00", "09:10:00"),
            "t3": ("C", "D", "08:10:00", "08:40:00"), "t4": ("A", "B", "10:00:00", "10:30:00"),
            "t5": ("C", "D", "12:00:00", "12:30:00"), "t6": ("A", "B", "24:30:00", "25:10:00")}
    st = []
    for trip_id, (a, b, t0, t1) in legs.items():
        st.append({"trip_id": trip_id, "arrival_time": t0, "departure_time": t0, "stop_id": a, "stop_sequence": 1})
        st.append({"trip_id": trip_id, "arrival_time": t1, "departure_time": t1, "stop_id": b, "stop_sequence": 2})
    xy = stops.set_index("stop_id")
    shapes = []
    for shape_id, (a, b) in {"S1": ("A", "B"), "S2": ("B", "A"), "S3": ("C", "D")}.items():
        for k in range(11):  # straight lines with intermediate points
            f = k / 10
            shapes.append({"shape_id": shape_id,
                           "shape_pt_lat": round(xy.at[a, "stop_lat"] * (1 - f) + xy.at[b, "stop_lat"] * f, 7),
                           "shape_pt_lon": round(xy.at[a, "stop_lon"] * (1 - f) + xy.at[b, "stop_lon"] * f, 7),
                           "shape_pt_sequence": k + 1})
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    calendar = pd.DataFrame(
        [
            {"service_id": "WK", **{d: int(i < 5) for i, d in enumerate(days)}, "start_date": "20240101", "end_date": "20241231"},
            {"service_id": "WE", **{d: int(i >= 5) for i, d in enumerate(days)}, "start_date": "20240101", "end_date": "20241231"},
        ]
    )
    return {
        "agency.txt": pd.DataFrame([{"agency_name": "Tiny", "agency_url": "https://example.org",
                                     "agency_timezone": "America/New_York"}]),
        "stops.txt": stops,
        "routes.txt": pd.DataFrame([{"route_id": "R1", "route_short_name": "1", "route_type": 3},
                                    {"route_id": "R2", "route_short_name": "2", "route_type": 3}]),
        "trips.txt": trips,
        "stop_times.txt": pd.DataFrame(st),
        "shapes.txt": pd.DataFrame(shapes),
        "calendar.txt": calendar,
        "calendar_dates.txt": pd.DataFrame([{"service_id": "WK", "date": "20240704", "exception_type": 2},
                                            {"service_id": "WE", "date": "20240704", "exception_type": 1}]),
        "frequencies.txt": pd.DataFrame([{"trip_id": "t5", "start_time": "12:00:00", "end_time": "13:00:00",
                                          "headway_secs": 1200, "exact_times": 1}]),
    }
