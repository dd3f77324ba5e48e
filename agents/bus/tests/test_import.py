"""GTFS into PostGIS: the shared real feeds through `import_gtfs`, broken feeds built from them (refused,
nothing stored), re-import replacing a feed atomically, and the upload guard."""
from __future__ import annotations

import io
import zipfile

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from agents.bus.models import Calendar, CalendarDate, Feed, Frequency, Route, Shape, Stop, StopTime, Trip
from agents.bus.selectors import feed_frames
from agents.bus.services.feeds import FeedImportError, feed_import, feed_zip_check

from .conftest import command_json, zip_rewrite

pytestmark = pytest.mark.django_db


def _csv_rows(path, name) -> int:
    with zipfile.ZipFile(path) as z:
        member = next(n for n in z.namelist() if n.endswith(name))
        return max(0, len([line for line in z.read(member).decode("utf-8-sig").splitlines() if line.strip()]) - 1)


@pytest.mark.shared
def test_shared_feeds_import_every_row(gtfs_dir):
    for name in ("bullrunner_gtfs.zip", "kcm_gtfs_subset.zip"):
        path = gtfs_dir / name
        out = command_json("import_gtfs", str(path))
        feed = Feed.objects.get(pk=out["feed"])
        assert out["created"] is True
        assert StopTime.objects.filter(feed=feed).count() == _csv_rows(path, "stop_times.txt") == out["counts"]["stop_times"]
        assert Trip.objects.filter(feed=feed).count() == _csv_rows(path, "trips.txt")
        assert Stop.objects.filter(feed=feed, geom__isnull=False).count() == _csv_rows(path, "stops.txt")
        assert Route.objects.filter(feed=feed, geom__isnull=False).exists()
    bull = Feed.objects.get(source_name="bullrunner_gtfs.zip")
    assert Frequency.objects.filter(feed=bull).count() == 15 and bull.agency_timezone == "America/New_York"
    assert Shape.objects.filter(feed=bull).count() >= 1 and not bull.has_block_id
    kcm = Feed.objects.get(source_name="kcm_gtfs_subset.zip")
    # King County's blocks interline with routes left out of the subset: every trip keeps its block_id.
    assert kcm.has_block_id and not Trip.objects.filter(feed=kcm, block_id="").exists()
    assert Trip.objects.filter(feed=kcm).values("block_id").distinct().count() > 10
    assert CalendarDate.objects.filter(feed=kcm).count() == _csv_rows(gtfs_dir / "kcm_gtfs_subset.zip", "calendar_dates.txt")


@pytest.mark.shared
def test_feed_read_back_from_postgis_matches_the_zip(gtfs_dir):
    """The planner reads the feed back from the database: it must be the same feed as the file."""
    import datetime as dt

    from agents.bus.domain.gtfs import feed_read, service_trips

    path = gtfs_dir / "kcm_gtfs_subset.zip"
    feed = feed_import(path=path).feed
    day = dt.date(2016, 5, 4)
    from_zip = service_trips(feed=feed_read(path=path), service_date=day)
    from_db = service_trips(feed=feed_frames(feed=feed), service_date=day)
    cols = ["trip_key", "start_s", "end_s", "first_stop_id", "last_stop_id", "block_id"]
    assert from_db[cols].reset_index(drop=True).equals(from_zip[cols].reset_index(drop=True))


def _broken_cases():
    def stop_missing(rows):
        rows[3]["stop_id"] = "NO_SUCH_STOP"
        return rows

    def backwards(rows):
        # the second call of the first trip happens an hour before the first
        first = rows[0]["trip_id"]
        calls = [r for r in rows if r["trip_id"] == first]
        h, m, s = calls[0]["arrival_time"].strip().split(":")
        early = f"{int(h) - 1:02d}:{m}:{s}"
        calls[1]["arrival_time"] = calls[1]["departure_time"] = early
        return rows

    def no_days(rows):
        for r in rows:
            for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"):
                r[d] = "0"
        return rows

    def bad_route(rows):
        rows[0]["route_id"] = "GHOST"
        return rows

    return [
        ("bullrunner_gtfs.zip", {"drop": ("stops.txt",)}, "stops.txt: required file is missing"),
        ("kcm_gtfs_subset.zip", {"edit": {"stop_times.txt": stop_missing}}, "stop_id not in stops.txt (line 5"),
        ("kcm_gtfs_subset.zip", {"edit": {"stop_times.txt": backwards}}, "time goes backwards along the trip"),
        ("bullrunner_gtfs.zip", {"edit": {"calendar.txt": no_days}}, "service calendar is empty"),
        ("bullrunner_gtfs.zip", {"edit": {"trips.txt": bad_route}}, "route_id not in routes.txt (line 2"),
    ]


@pytest.mark.shared
@pytest.mark.parametrize(("source", "change", "message"), _broken_cases(), ids=lambda v: str(v)[:30])
def test_broken_real_feeds_are_refused_and_nothing_is_stored(gtfs_dir, tmp_path, source, change, message):
    broken = zip_rewrite(gtfs_dir / source, tmp_path / f"broken_{source}", **change)
    with pytest.raises(CommandError) as err:
        call_command("import_gtfs", str(broken), stdout=io.StringIO(), stderr=io.StringIO())
    assert message in str(err.value)
    assert not Feed.objects.exists() and not Stop.objects.exists() and not StopTime.objects.exists()


def test_reimport_replaces_the_feed_atomically(tiny_zip, tmp_path):
    first = command_json("import_gtfs", str(tiny_zip))
    counts = {m.__name__: m.objects.count() for m in (Trip, StopTime, Stop, Calendar, CalendarDate, Frequency)}
    again = command_json("import_gtfs", str(tiny_zip))
    assert again["feed"] == first["feed"] and again["created"] is False
    assert {m.__name__: m.objects.count() for m in (Trip, StopTime, Stop, Calendar, CalendarDate, Frequency)} == counts
    # Times past midnight are kept as seconds of the service day.
    assert StopTime.objects.get(trip__trip_id="t6", stop_sequence=2).arrival_s == 25 * 3600 + 10 * 60

    # A broken new version must not touch the old data.
    def drop_trip(rows):
        return [r for r in rows if r["trip_id"] != "t1"]

    broken = zip_rewrite(tiny_zip, tmp_path / "broken.zip", edit={"stop_times.txt": lambda rows: [
        {**r, "stop_id": "NOPE"} if r["trip_id"] == "t2" else r for r in rows]})
    with pytest.raises(CommandError, match="stop_id not in stops.txt"):
        call_command("import_gtfs", str(broken), "--replace", str(first["feed"]), stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert Trip.objects.filter(trip_id="t2").exists() and StopTime.objects.count() == counts["StopTime"]

    # A good new version replaces every row of the feed, under the same feed id.
    newer = zip_rewrite(tiny_zip, tmp_path / "newer.zip", edit={"trips.txt": drop_trip, "stop_times.txt": drop_trip})
    out = command_json("import_gtfs", str(newer), "--replace", str(first["feed"]))
    assert out["feed"] == first["feed"] and Feed.objects.count() == 1
    assert not Trip.objects.filter(trip_id="t1").exists() and StopTime.objects.count() == counts["StopTime"] - 2


def test_upload_guard_refuses_what_is_not_a_gtfs_zip(tmp_path):
    text = tmp_path / "feed.zip"
    text.write_text("route_id,route_short_name\n")
    with pytest.raises(FeedImportError, match="not a zip"):
        feed_zip_check(path=text)
    climbing = tmp_path / "climb.zip"
    with zipfile.ZipFile(climbing, "w") as z:
        z.writestr("../../etc/stops.txt", "x")
    with pytest.raises(FeedImportError, match="unsafe paths"):
        feed_zip_check(path=climbing)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("stop_times.txt", b"0" * (50 * 1024 * 1024))
    with pytest.raises(FeedImportError, match="decompression bomb"):
        feed_zip_check(path=bomb)
    with pytest.raises(FeedImportError, match="limit"):
        feed_zip_check(path=bomb, max_bytes=1000)


def test_feed_upload_over_the_api(users, client, tiny_zip, tmp_path, settings):
    client.force_login(users.dispatcher)
    with open(tiny_zip, "rb") as fh:
        resp = client.post("/api/bus/feeds/", {"file": fh})
    assert resp.status_code == 201 and resp.json()["counts"]["stop_times"] == 12
    assert resp.json()["source_name"] == "tiny.zip" and resp.json()["agency_timezone"] == "America/New_York"
    with open(tiny_zip, "rb") as fh:  # the same file again replaces that feed
        again = client.post("/api/bus/feeds/", {"file": fh})
    assert again.status_code == 200 and again.json()["id"] == resp.json()["id"]
    broken = zip_rewrite(tiny_zip, tmp_path / "broken.zip", drop=("trips.txt",))
    with open(broken, "rb") as fh:
        bad = client.post("/api/bus/feeds/", {"file": fh})
    assert bad.status_code == 400 and any("trips.txt: required file is missing" in p for p in bad.json()["problems"])
    settings.BUS_FEED_MAX_UPLOAD_BYTES = 100
    with open(tiny_zip, "rb") as fh:
        assert client.post("/api/bus/feeds/", {"file": fh}).status_code == 413
    assert Feed.objects.count() == 1
