"""Command line of the bus core (agents.bus.domain.cli): JSON alone on stdout, errors as exit status 2."""
from __future__ import annotations

import json

from google.transit import gtfs_realtime_pb2

from agents.bus.domain.cli import main
from agents.bus.domain.synthetic import feed_tiny_tables, feed_zip_write


def test_plan_json(tmp_path, capsys):
    feed = feed_zip_write(path=tmp_path / "tiny.zip", tables=feed_tiny_tables())
    blocks_csv = tmp_path / "blocks.csv"
    assert main(["plan", str(feed), "--date", "2024-03-06", "--layover", "5", "--json", "--csv", str(blocks_csv)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["trips"] == 7
    assert out["feed_vehicles"] == 3  # K1, K2, K4 run on weekdays
    assert out["lower_bound"] <= out["vehicles"] <= out["trips"]
    assert sorted(k for b in out["blocks"] for k in b) == sorted(
        ["t1", "t2", "t3", "t6", "t5@12:00:00", "t5@12:20:00", "t5@12:40:00"])
    assert {"deadhead_km", "blocks"} <= set(out)
    assert blocks_csv.read_text().startswith("block_id,sequence,trip_key")


def test_plan_on_a_broken_feed_exits_2_and_says_why(tmp_path, capsys):
    tables = feed_tiny_tables()
    tables.pop("stops.txt")
    feed = feed_zip_write(path=tmp_path / "broken.zip", tables=tables)
    assert main(["plan", str(feed), "--date", "2024-03-06", "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "stops.txt: required file is missing" in captured.err


def test_positions_json(tmp_path, capsys):
    message = gtfs_realtime_pb2.FeedMessage()
    message.header.gtfs_realtime_version = "2.0"
    for k, lat in enumerate((40.00, 40.01, 40.02)):
        v = message.entity.add(id=str(k)).vehicle
        v.vehicle.id = f"bus{k}"
        v.trip.route_id, v.trip.direction_id, v.current_stop_sequence = "R", 0, 10 * (k + 1)
        v.position.latitude, v.position.longitude = lat, -75.0
    path = tmp_path / "vp.pb"
    path.write_bytes(message.SerializeToString())
    assert main(["positions", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["vehicles"] == 3
    (route,) = out["routes"]
    assert route["order"] == ["bus2", "bus1", "bus0"] and len(route["headways_s"]) == 2
