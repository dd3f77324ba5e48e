"""Camera runs and fixed cameras on the real network: frames placed on a GPX track by capture time (EXIF or
file name), near-duplicates of a stopped vehicle skipped, bad frames reported without stopping the run,
batches queued for the vision worker, progress counted; the vehicle uploader's API with a scoped token."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from zoneinfo import ZoneInfo

import pytest
from django.contrib.gis.geos import Point
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from agents.roads.models import CameraRun, Defect, DefectSighting, FixedCamera, InspectionPhoto
from city_ops.core.services import api_client_create
from city_ops.workorders.models import WorkOrder

from .conftest import photo_bytes, spot_on, upload_file

HEL = ZoneInfo("Europe/Helsinki")
T0 = dt.datetime(2025, 6, 2, 9, 0, 0, tzinfo=HEL)

pytestmark = pytest.mark.usefixtures("tiny_model")


def track_gpx(segment, seconds: int = 60, stop_s: int = 20) -> str:
    """The vehicle drives along ``segment`` in ``seconds``, then waits ``stop_s`` at its end."""
    pts = []
    for i in range(seconds + 1):
        s = spot_on(segment, i / seconds)
        pts.append((s.lon, s.lat, T0 + dt.timedelta(seconds=i)))
    end = pts[-1]
    pts += [(end[0], end[1], T0 + dt.timedelta(seconds=seconds + k)) for k in range(1, stop_s + 1)]
    rows = "".join(
        f'<trkpt lat="{lat}" lon="{lon}"><time>{t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}'
        f"</time></trkpt>"
        for lon, lat, t in pts
    )
    return (
        f'<?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk><name>patrol 7</name><trkseg>{rows}</trkseg></trk></gpx>"
    )


@pytest.fixture
def frames_dir(tmp_path, long_segment):
    """Frames every 4 s for 80 s (EXIF time on even frames, file-name time on odd ones), one broken frame and
    one taken long after the track ended."""
    d = tmp_path / "frames"
    d.mkdir()
    for k, s in enumerate(range(0, 80, 4)):
        when = T0 + dt.timedelta(seconds=s)
        cell = (1, 2) if k % 5 == 0 else (3, 0)
        if k % 2 == 0:
            data = photo_bytes(seed=k, cell=cell, taken=when.strftime("%Y:%m:%d %H:%M:%S"))
            (d / f"frame_{k:03d}.jpg").write_bytes(data)
        else:
            (d / f"CAM_{when:%Y%m%d_%H%M%S}.jpg").write_bytes(photo_bytes(seed=k, cell=cell))
    (d / f"CAM_{T0:%Y%m%d}_090023_broken.jpg").write_bytes(b"\xff\xd8\xff broken frame")
    (d / f"CAM_{T0 + dt.timedelta(hours=2):%Y%m%d_%H%M%S}.jpg").write_bytes(photo_bytes(seed=99))
    (d / "notes.txt").write_text("not a frame")
    return d


def test_ingest_camera_run_command(frames_dir, tmp_path, long_segment, users, capsys):
    gpx = tmp_path / "track.gpx"
    gpx.write_text(track_gpx(long_segment))
    with pytest.raises(CommandError, match="1 row rejected") as some:  # the broken frame: exit status 1
        call_command(
            "ingest_camera_run", str(frames_dir), "--track", str(gpx), "--vehicle", "patrol-7", "--sync", "--json"
        )
    assert some.value.returncode == 1
    out = json.loads(capsys.readouterr().out)
    run = CameraRun.objects.get()
    # 20 frames: 15 while moving (every 4 s = ~8 m apart), 5 while stopped at the end (only the first kept)
    assert out["duplicate"] == 4 and run.frames_duplicate == 4
    assert out["off_track"] == 1 and [r["file"] for r in out["rejected"]] == [
        f"CAM_{T0:%Y%m%d}_090023_broken.jpg"
    ]
    assert out["placed"] == 16 == run.frames_placed
    assert run.status == "done" and run.frames_processed == 16 and run.progress_pct == 100
    photos = InspectionPhoto.objects.filter(camera_run=run)
    assert photos.count() == 16 and set(photos.values_list("location_source", flat=True)) == {"track"}
    assert set(photos.values_list("taken_at_source", flat=True)) == {"exif", "filename"}
    # every placed frame lies on the driven street
    for p in photos:
        assert long_segment.geom.distance(p.location) < 2e-5
    # frames 0, 5, 10, 15 show the pothole cell (1, 2); the others a cell (3, 0) pothole elsewhere on the road
    assert run.defects_found >= 1 and Defect.objects.filter(segment=long_segment).exists()
    assert run.track is not None and run.track_name == "patrol 7"
    # the run's KPIs: what it processed and found, sightings merged, orders, mean model time per frame
    kpis = out["kpis"]
    sightings = DefectSighting.objects.filter(photo__camera_run=run).count()
    assert kpis["photos_processed"] == 16 and kpis["defects_found"] == run.defects_found
    assert kpis["sightings_merged"] == sightings - run.defects_found
    assert kpis["orders_created"] == WorkOrder.objects.filter(source_agent="roads").count() >= 1
    assert kpis["mean_inference_ms"] > 0
    dispatcher = Client()
    dispatcher.force_login(users.dispatcher)
    progress = dispatcher.get(f"/roads/camera-runs/{run.pk}/progress.json").json()
    assert progress["kpis"] == kpis and progress["progress_pct"] == 100
    panel = dispatcher.get("/roads/").content.decode()
    shown = re.search(r'<span class="run-ms">([\d.]+)</span>', panel)
    assert shown and float(shown.group(1)) == pytest.approx(kpis["mean_inference_ms"], abs=0.051)


def test_frames_go_to_the_vision_queue_in_batches(
    frames_dir, tmp_path, long_segment, no_broker, settings, django_capture_on_commit_callbacks
):
    settings.ROADS_BATCH_SIZE = 5
    gpx = tmp_path / "track.gpx"
    gpx.write_text(track_gpx(long_segment))
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(CommandError, match="1 row rejected"):
        call_command(
            "ingest_camera_run",
            str(frames_dir),
            "--track",
            str(gpx),
            stdout=io.StringIO(),
            stderr=io.StringIO(),
        )
    assert [kind for kind, _ in no_broker] == ["batch"] * 4
    assert sorted(len(ids) for _, ids in no_broker) == [1, 5, 5, 5]
    run = CameraRun.objects.get()
    assert run.status == "processing" and run.frames_processed == 0


def test_bad_track_is_a_clear_command_error(tmp_path, frames_dir, city):
    gpx = tmp_path / "bad.gpx"
    gpx.write_text("<gpx><trk><trkseg><trkpt lat='60.1' lon='24.9'/></trkseg></trk></gpx>")
    with pytest.raises(CommandError, match="no times"):
        call_command("ingest_camera_run", str(frames_dir), "--track", str(gpx))
    assert CameraRun.objects.count() == 0


@pytest.fixture
def vehicle_client(city):
    _, token = api_client_create(name="patrol-7 uploader", scopes=["roads.frames:write"])
    c = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    return c


def test_vehicle_uploader_api(vehicle_client, long_segment, no_broker, django_capture_on_commit_callbacks):
    resp = vehicle_client.post(
        "/api/roads/camera-runs/",
        {
            "vehicle": "patrol-7",
            "track": upload_file(track_gpx(long_segment).encode(), "t.gpx", "application/gpx+xml"),
        },
    )
    assert resp.status_code == 201, resp.content
    run_id = resp.json()["id"]
    frames = [upload_file(photo_bytes(seed=i), f"f{i}.jpg") for i in range(3)]
    times = [(T0 + dt.timedelta(seconds=10 * i)).isoformat() for i in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        resp = vehicle_client.post(
            f"/api/roads/camera-runs/{run_id}/frames/", {"image": frames, "taken_at": times}
        )
    assert resp.status_code == 200, resp.content
    assert resp.json()["placed"] == 3 and resp.json()["run"]["frames_placed"] == 3
    assert no_broker == [("batch", sorted(InspectionPhoto.objects.values_list("pk", flat=True)))]
    assert InspectionPhoto.objects.filter(client_name="patrol-7 uploader").count() == 3
    resp = vehicle_client.post(f"/api/roads/camera-runs/{run_id}/finish/")
    assert resp.status_code == 200 and resp.json()["status"] == "processing"
    assert vehicle_client.get(f"/api/roads/camera-runs/{run_id}/").json()["frames_placed"] == 3
    # a frame without any time cannot be placed
    resp = vehicle_client.post(
        f"/api/roads/camera-runs/{run_id}/frames/", {"image": [upload_file(photo_bytes(seed=50))]}
    )
    assert resp.json()["rejected"][0]["code"] == "no_time"
    resp = vehicle_client.post(
        f"/api/roads/camera-runs/{run_id}/frames/",
        {"image": [upload_file(photo_bytes(seed=51))], "taken_at": ["2025-02-30T10:00:00"]},
    )
    assert resp.status_code == 400 and "taken_at #1" in resp.json()["detail"]


def test_scopes_guard_the_camera_api(city, users, long_segment):
    _, other = api_client_create(name="flood gateway", scopes=["flood.readings:write"])
    resp = Client(HTTP_AUTHORIZATION=f"Bearer {other}").post("/api/roads/camera-runs/", {"vehicle": "x"})
    assert resp.status_code == 403
    crew = Client()
    crew.force_login(users.crew)
    assert crew.post("/api/roads/camera-runs/", {"vehicle": "x"}).status_code == 403
    assert Client().get("/api/roads/camera-runs/").status_code in (401, 403)


def test_fixed_camera_snapshot(vehicle_client, long_segment, no_broker, django_capture_on_commit_callbacks):
    at = spot_on(long_segment, 0.5, north_m=5)
    cam = FixedCamera.objects.create(
        name="Cam 1", location=Point(at.lon, at.lat, srid=4326), segment=long_segment
    )
    with django_capture_on_commit_callbacks(execute=True):
        resp = vehicle_client.post(
            f"/api/roads/cameras/{cam.pk}/snapshots/", {"image": upload_file(photo_bytes())}
        )
    assert resp.status_code == 201, resp.content
    photo = InspectionPhoto.objects.get()
    assert photo.fixed_camera == cam and photo.location_source == "camera" and photo.source == "fixed"
    assert no_broker == [("photo", photo.pk)]
    bad = vehicle_client.post(f"/api/roads/cameras/{cam.pk}/snapshots/", {"image": upload_file(b"nope")})
    assert bad.status_code == 415 and InspectionPhoto.objects.count() == 1
    # a clear 400, never a 500 or a silently replaced time: no file, a time that is no time or cannot exist
    url = f"/api/roads/cameras/{cam.pk}/snapshots/"
    assert vehicle_client.post(url, {}).json()["errors"][0]["code"] == "no_file"
    for raw in ("junk", "2025-13-45T10:00:00"):
        resp = vehicle_client.post(url, {"image": upload_file(photo_bytes(seed=7)), "taken_at": raw})
        assert resp.status_code == 400 and "ISO 8601" in resp.json()["detail"], raw
    assert InspectionPhoto.objects.count() == 1
