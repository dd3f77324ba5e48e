"""GTFS-Realtime reading, vehicle placement, live headways and holding advice (agents.bus.domain.realtime)."""
from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from google.transit import gtfs_realtime_pb2

from agents.bus.domain.gtfs import feed_read
from agents.bus.domain.realtime import (
    RealtimeError,
    headway_grade,
    hold_seconds,
    patterns_build,
    positions_summary,
    vehicle_positions_read,
    vehicles_place,
)
from agents.bus.domain.synthetic import feed_zip_write
from agents.geo import haversine_m, point_offset

LAT0, LON0 = 40.0, -75.0
WHEN = int(dt.datetime(2024, 3, 6, 10, 0, tzinfo=dt.UTC).timestamp())


def east(metres: float) -> tuple[float, float]:
    """Position `metres` east of the line's west end."""
    return point_offset(lat=LAT0, lon=LON0, east_m=metres, north_m=0.0)


@pytest.fixture(scope="module")
def line_index(tmp_path_factory):
    """Route L: 6 km straight east-west, stops S1..S7 every 1 km, both directions on the same street,
    a bus every 10 min (frequencies, exact_times=1), 30 min end to end."""
    stops = pd.DataFrame([{"stop_id": f"S{k + 1}", "stop_lat": east(k * 1000)[0], "stop_lon": east(k * 1000)[1]}
                          for k in range(7)])
    st, shapes = [], []
    for d, order in ((0, range(7)), (1, range(6, -1, -1))):
        for n, k in enumerate(order):
            clock = f"06:{n * 5:02d}:00"
            st.append({"trip_id": f"L{d}", "arrival_time": clock, "departure_time": clock,
                       "stop_id": f"S{k + 1}", "stop_sequence": n + 1})
            lat, lon = east(k * 1000)
            shapes.append({"shape_id": f"L{d}", "shape_pt_lat": lat, "shape_pt_lon": lon, "shape_pt_sequence": n + 1})
    tables = {
        "agency.txt": pd.DataFrame([{"agency_name": "Line", "agency_url": "https://example.org", "agency_timezone": "UTC"}]),
        "stops.txt": stops,
        "routes.txt": pd.DataFrame([{"route_id": "L", "route_type": 3}]),
        "trips.txt": pd.DataFrame([{"route_id": "L", "service_id": "D", "trip_id": f"L{d}", "direction_id": d,
                                    "shape_id": f"L{d}"} for d in (0, 1)]),
        "stop_times.txt": pd.DataFrame(st),
        "shapes.txt": pd.DataFrame(shapes),
        "calendar.txt": pd.DataFrame([{"service_id": "D", "monday": 1, "tuesday": 1, "wednesday": 1, "thursday": 1,
                                       "friday": 1, "saturday": 1, "sunday": 1, "start_date": "20240101",
                                       "end_date": "20241231"}]),
        "frequencies.txt": pd.DataFrame([{"trip_id": f"L{d}", "start_time": "06:00:00", "end_time": "22:00:00",
                                          "headway_secs": 600, "exact_times": 1} for d in (0, 1)]),
    }
    path = feed_zip_write(path=tmp_path_factory.mktemp("line") / "line.zip", tables=tables)
    return patterns_build(feed=feed_read(path=path))


def feed_message(entities) -> bytes:
    message = gtfs_realtime_pb2.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    message.header.timestamp = WHEN
    for k, fill in enumerate(entities):
        entity = message.entity.add()
        entity.id = f"e{k}"
        fill(entity)
    return message.SerializeToString()


def bus(vehicle_id, metres=None, *, route="L", trip=None, bearing=90.0, lat=None, lon=None, direction=None, seq=None):
    def fill(entity):
        v = entity.vehicle
        if vehicle_id:
            v.vehicle.id = vehicle_id
        if route:
            v.trip.route_id = route
        if trip:
            v.trip.trip_id = trip
        if direction is not None:
            v.trip.direction_id = direction
        if seq is not None:
            v.current_stop_sequence = seq
        if metres is not None or lat is not None:
            la, lo = east(metres) if metres is not None else (lat, lon)
            v.position.latitude, v.position.longitude = la, lo
            if bearing is not None:
                v.position.bearing = bearing
        v.timestamp = WHEN

    return fill


def test_protobuf_bad_entities_reported_good_kept():
    def alert_only(entity):
        entity.alert.header_text.translation.add().text = "detour"

    data = feed_message([
        bus("V1", 100.0),
        bus("V2"),  # no position
        bus("V3", lat=0.0, lon=0.0),
        bus(None, 200.0),  # no vehicle id
        bus("V5", lat=95.0, lon=10.0),
        alert_only,  # not a vehicle, not a problem
        bus("V7", 300.0, trip="L0@09:40:00"),
    ])
    batch = vehicle_positions_read(data=data)
    assert [p.vehicle_id for p in batch] == ["V1", "V7"]
    assert batch.timestamp == WHEN and batch.source == "gtfs-rt"
    assert [(p.index, p.entity_id) for p in batch.problems] == [(1, "e1"), (2, "e2"), (3, "e3"), (4, "e4")]
    assert "no position" in batch.problems[0].message and "(0, 0)" in batch.problems[1].message
    assert batch[1].trip_id == "L0@09:40:00" and batch[0].bearing == 90.0


def test_unreadable_payloads_raise():
    with pytest.raises(RealtimeError, match="FeedMessage"):
        vehicle_positions_read(data=b"\x08\x96\x01 definitely not protobuf \xff\xff")
    with pytest.raises(RealtimeError, match="header"):
        vehicle_positions_read(data=b"")
    with pytest.raises(RealtimeError, match="JSON"):
        vehicle_positions_read(data=b"[{\"vehicle_id\": 1,")


def test_json_avl_pings():
    pings = [
        {"vehicle_id": "A1", "lat": 40.0, "lon": -75.0, "timestamp": WHEN, "route_id": "L", "bearing": 90},
        {"lat": 40.0, "lon": -75.0},
        {"vehicle_id": "A3", "lat": "north", "lon": -75.0},
        {"vehicle_id": "A4", "lat": 40.0, "lon": -75.0, "timestamp": "soon"},
        {"vehicle_id": "A1", "lat": 40.001, "lon": -75.0, "timestamp": WHEN - 60},
    ]
    batch = vehicle_positions_read(data=json.dumps(pings).encode())
    assert [p.vehicle_id for p in batch] == ["A1", "A1"]
    assert [p.index for p in batch.problems] == [1, 2, 3]
    placed, _ = vehicles_place(positions=batch)
    assert len(placed) == 1 and placed[0].position.timestamp == WHEN  # the latest ping wins


def test_placement_by_trip_route_shape_and_nearest_shape(line_index):
    batch = vehicle_positions_read(data=feed_message([
        bus("T", 2500.0, route=None, trip="L1@09:40:00", bearing=None),  # trip known: direction 1
        bus("E", 2500.0, bearing=90.0),  # route only, heading east: direction 0
        bus("W", 2500.0, bearing=270.0),  # route only, heading west: direction 1
        bus("N", 1500.0, route=None, bearing=90.0),  # nothing but a position near the line
        bus("F", lat=40.2, lon=-75.0, route=None),  # 22 km away from any shape
    ]))
    placed, problems = vehicles_place(positions=batch, patterns=line_index)
    got = {v.position.vehicle_id: v for v in placed}
    assert (got["T"].method, got["T"].direction_id) == ("trip", 1)
    assert got["T"].distance_m == pytest.approx(3500, rel=0.01)  # measured from the east end
    assert (got["E"].method, got["E"].direction_id, got["E"].next_stop_id) == ("route-shape", 0, "S4")
    assert (got["W"].direction_id, got["W"].next_stop_id) == (1, "S3")
    assert (got["N"].method, got["N"].route_id, got["N"].direction_id) == ("shape", "L", 0)
    assert [p.entity_id for p in problems] == ["F"]


def test_headways_bunching_gap_and_holding_advice(line_index):
    # 30 min for 6 km: 200 m is 60 s. Front to back: V1, V2 60 s behind, V3 600 s, V4 960 s.
    batch = vehicle_positions_read(data=feed_message([
        bus("V3", 3300.0), bus("V1", 5500.0), bus("V4", 100.0), bus("V2", 5300.0),
    ]))
    summary = positions_summary(positions=batch, patterns=line_index, max_hold_s=600)
    assert summary["vehicles"] == 4
    (route,) = summary["routes"]
    assert (route["route_id"], route["direction_id"]) == ("L", 0)
    assert route["order"] == ["V1", "V2", "V3", "V4"]
    assert route["headways_s"] == pytest.approx([60, 600, 960], abs=1.0)
    assert (route["scheduled_headway_s"], route["scheduled_source"]) == (600.0, "feed")
    assert route["bunching"] == [["V1", "V2"]]
    assert route["gaps"] == [["V3", "V4"]]
    h = np.array([60.0, 600.0, 960.0])
    cv = h.std() / h.mean()
    assert route["cv"] == pytest.approx(cv, abs=2e-3)
    assert route["grade"] == headway_grade(cv) == "E"
    assert route["ewt_s"] == pytest.approx(h.mean() * (1 + cv**2) / 2 - 300, abs=1.0)
    hold, dispatch = summary["advice"]
    # V2 is held until its headway is the mean of its own (60 s) and its follower's (600 s).
    assert (hold["action"], hold["vehicle_id"], hold["stop_id"]) == ("hold", "V2", "S7")
    assert hold["seconds"] == pytest.approx(270, abs=1)
    # The standby bus goes to the first stop past the middle of the 3.2 km gap (1.7 km from the west end).
    assert (dispatch["action"], dispatch["stop_id"]) == ("dispatch", "S3")


def test_hold_rule_and_grades():
    assert hold_seconds(forward_s=100, backward_s=500) == 180  # capped
    assert hold_seconds(forward_s=100, backward_s=300) == 100
    assert hold_seconds(forward_s=500, backward_s=100) == 0
    assert [headway_grade(v) for v in (0.21, 0.214, 0.22, 0.30, 0.39, 0.40, 0.52, 0.74, 0.75, None)] == [
        "A", "A", "B", "B", "C", "D", "D", "E", "F", None]


def test_without_a_feed_buses_are_ordered_by_stop_sequence():
    batch = vehicle_positions_read(data=feed_message([
        bus("a", 500.0, route="X", direction=0, seq=3),
        bus("b", 2600.0, route="X", direction=0, seq=10),
        bus("c", 2400.0, route="X", direction=0, seq=10),
        bus("d", 5000.0, route="X", direction=0, seq=20),
        bus("e", 4000.0, route="X", direction=1, seq=5),
    ]))
    summary = positions_summary(positions=batch, speed_kmh=18.0)
    forward, backward = summary["routes"]
    assert forward["order"] == ["d", "b", "c", "a"] and forward["scheduled_source"] == "observed"
    (lat1, lon1), (lat2, lon2) = east(5000.0), east(2600.0)
    gap = haversine_m(lat1=lat1, lon1=lon1, lat2=lat2, lon2=lon2) * 1.3 / (18 / 3.6)
    assert forward["headways_s"][0] == pytest.approx(gap, rel=1e-3)
    assert backward["vehicles"] == 1 and backward["headways_s"] == [] and backward["cv"] is None


# ------------------------------------------------------------------------------------------ shared data


@pytest.mark.shared
def test_shared_bullrunner_positions_placed_on_their_routes(shared_dir):
    gtfs = shared_dir / "benchmarks" / "gtfs"
    batch = vehicle_positions_read(data=(gtfs / "bullrunner_vehicle_positions.pb").read_bytes())
    assert len(batch) == 10 and batch.problems == []
    assert all(p.trip_id is None for p in batch)
    index = patterns_build(feed=feed_read(path=gtfs / "bullrunner_gtfs.zip"))
    placed, problems = vehicles_place(positions=batch, patterns=index)
    assert problems == [] and len(placed) == 10
    assert all(v.route_id == v.position.route_id and v.offset_m < 250 for v in placed)
    summary = positions_summary(positions=batch, patterns=index)
    assert sum(r["vehicles"] for r in summary["routes"]) == 10
    assert all(r["scheduled_source"] == "feed" for r in summary["routes"])


@pytest.mark.shared
def test_shared_kcm_snapshot_headways(shared_dir):
    data = (shared_dir / "benchmarks" / "gtfs" / "kcm_vehicle_positions_1.pb").read_bytes()
    batch = vehicle_positions_read(data=data)
    assert len(batch) == 627 and all(p.trip_id and p.direction_id is not None for p in batch)
    summary = positions_summary(positions=batch)
    assert summary["vehicles"] == summary["placed"] == 627
    assert sum(r["vehicles"] for r in summary["routes"]) == 627
    for r in summary["routes"]:
        assert len(r["headways_s"]) == max(r["vehicles"] - 1, 0)
        assert all(h >= 0 for h in r["headways_s"])
        pairs = [tuple(p) for p in r["pairs"]]
        assert all(tuple(p) in pairs for p in r["bunching"] + r["gaps"])
    assert any(r["bunching"] for r in summary["routes"])
