"""HEIC photos (iPhones) on the real city, encoded by the test with pillow-heif: the photo API at the field
app's path, the upload page, camera frames, fixed-camera snapshots and the `detect` command take them like
JPEGs: EXIF GPS and time read from the HEIC, a phone held upright (orientation 6) gives boxes on the upright
picture, and every bad case (cut short, decompression bomb, too many pixels, too large) is refused cleanly
with nothing stored."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from django.contrib.gis.geos import Point
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from PIL import Image

from agents.roads.models import CameraRun, FixedCamera, InspectionPhoto
from agents.roads.services.detection import photos_detect
from city_ops.core.services import api_client_create

from .conftest import heic_bytes, photo_bytes, pixel_decodes, spot_on, upload_file
from .test_cameras import T0, track_gpx

pytestmark = pytest.mark.usefixtures("tiny_model")
HEIC = "image/heic"


@pytest.fixture(scope="module")
def plain_heic() -> bytes:
    """A HEIC without GPS (the tests send the phone's position): encoded once, x265 takes ~1 s a photo."""
    return heic_bytes(seed=3)


def _media_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_iphone_heic_held_upright_is_placed_by_its_gps_and_boxed_upright(crew_client, here, users, no_broker):
    data = heic_bytes(lon=here.lon, lat=here.lat, taken="2025:06:03 08:15:00", sideways=True)
    assert data[4:12] == b"ftypheic"
    with Image.open(io.BytesIO(data)) as im:  # what the file says: stored sideways, turned by the reader
        assert im.info["original_orientation"] == 6
    resp = crew_client.post("/api/inspections/photos/", {"image": [upload_file(data, "IMG_0042.HEIC", HEIC)]})
    assert resp.status_code == 201, resp.content
    photo = InspectionPhoto.objects.get(pk=resp.json()["photos"][0]["id"])
    assert photo.image_format == "HEIF" and photo.original.name.endswith(".heic")
    assert (photo.width, photo.height) == (640, 480)  # upright, not the stored 480 x 640
    assert photo.location_source == "exif" and photo.uploader == users.crew
    assert photo.location.x == pytest.approx(here.lon, abs=1e-6) and photo.location.y == pytest.approx(
        here.lat, abs=1e-6
    )
    assert photo.taken_at_source == "exif" and photo.taken_at.isoformat() == "2025-06-03T05:15:00+00:00"

    report = photos_detect(photo_ids=[photo.pk])
    photo.refresh_from_db()
    assert report.done == 1 and photo.status == "done", photo.error
    # the pothole cell of the upright picture, in the upright picture's pixels
    assert [d["box"] for d in photo.detections] == [pytest.approx([160, 240, 320, 400], abs=1.0)]
    with default_storage.open(photo.image.name) as fh:
        kept = Image.open(io.BytesIO(fh.read()))
        assert kept.format == "JPEG" and kept.size == (640, 480) and not kept.getexif().get_ifd(0x8825)
    # the same file again is the same photo
    again = crew_client.post("/api/roads/photos/", {"image": [upload_file(data, "copy.heic", HEIC)]})
    assert again.status_code == 200 and again.json()["photos"][0]["id"] == photo.pk


def test_a_heic_is_decoded_once_for_the_engine_and_the_kept_copy(here, settings, monkeypatch):
    """HEVC has no reduced decode: a 12 MP HEIC costs a full decode, so the worker pays it once. The kept copy
    is made from that decode and the engine runs on the copy, its boxes still in the original's pixels.
    (A kept copy smaller than the picture, as 1600 px is for 12 MP; x265 is too slow to encode 12 MP here.)"""
    from agents.roads.services.photos import photos_receive

    settings.ROADS_KEPT_MAX_SIDE = 320
    data = heic_bytes(lon=here.lon, lat=here.lat, sideways=True)
    [received] = photos_receive(files=[upload_file(data, "IMG_0043.HEIC", HEIC)], enqueue=False)
    decodes = pixel_decodes(monkeypatch)
    report = photos_detect(photo_ids=[received.photo.pk])
    photo = InspectionPhoto.objects.get(pk=received.photo.pk)
    assert report.done == 1 and photo.status == "done", photo.error
    assert [(d.format, d.size) for d in decodes] == [("HEIF", (640, 480))]  # once, turned upright by libheif
    assert (photo.width, photo.height) == (640, 480)
    assert [d["box"] for d in photo.detections] == [pytest.approx([160, 240, 320, 400], abs=1.0)]
    with default_storage.open(photo.image.name) as fh:
        assert Image.open(io.BytesIO(fh.read())).size == (320, 240)


def _bomb_guard(monkeypatch):
    # Pillow's guard, as for any format: refuse at the header, before libheif decodes a pixel.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)


def _platform_limit(monkeypatch):
    monkeypatch.setattr("city_ops.core.uploads.MAX_PIXELS", 200_000)


def _byte_limit(monkeypatch, settings):
    settings.CITY_OPS_MAX_UPLOAD_BYTES = 20_000


@pytest.mark.parametrize(
    "case,cut,setup,status,words",
    [
        ("cut short", 0.5, None, 400, "damaged or truncated"),
        ("header only", 0.02, None, 400, "damaged or truncated"),
        ("decompression bomb", None, "bomb", 400, "decompression bomb"),
        ("too many pixels", None, "pixels", 400, "pixels"),
        ("too large", None, "bytes", 413, "limit"),
    ],
)
def test_bad_heic_is_refused_and_nothing_is_stored(
    crew_client, here, plain_heic, settings, monkeypatch, no_broker, case, cut, setup, status, words
):
    data = plain_heic[: int(len(plain_heic) * cut)] if cut else plain_heic
    if setup == "bomb":
        _bomb_guard(monkeypatch)
    elif setup == "pixels":
        _platform_limit(monkeypatch)
    elif setup == "bytes":
        _byte_limit(monkeypatch, settings)
    resp = crew_client.post(
        "/api/inspections/photos/",
        {"image": [upload_file(data, "IMG_1.HEIC", HEIC)], "lat": str(here.lat), "lon": str(here.lon)},
    )
    assert resp.status_code == status, (case, resp.content)
    body = resp.json()
    assert words in body["detail"], body
    assert body["errors"][0]["file"] == "IMG_1.HEIC"
    assert InspectionPhoto.objects.count() == 0 and _media_files(settings) == []
    assert no_broker == []


def test_a_good_heic_with_the_phones_position(crew_client, here, plain_heic, no_broker):
    resp = crew_client.post(
        "/api/roads/photos/",
        {
            "image": [upload_file(plain_heic, "IMG_2.HEIC", HEIC)],
            "lat": str(here.lat),
            "lon": str(here.lon),
            "accuracy_m": "5",
        },
    )
    assert resp.status_code == 201, resp.content
    photo = InspectionPhoto.objects.get()
    assert photo.location_source == "phone" and photo.image_format == "HEIF"
    assert (photo.width, photo.height) == (640, 480)


def test_upload_page_offers_and_takes_heic(crew_client, here, plain_heic, no_broker):
    page = crew_client.get("/roads/upload/").content.decode()
    assert 'accept="image/jpeg,image/png,image/heic,image/heif,.heic,.heif"' in page
    resp = crew_client.post(
        "/roads/upload/",
        {"image": [upload_file(plain_heic, "IMG_3.HEIC", HEIC)], "lat": str(here.lat), "lon": str(here.lon)},
    )
    photo = InspectionPhoto.objects.get()
    assert resp.status_code == 302 and resp["Location"] == f"/roads/photos/{photo.pk}/"
    refused = crew_client.post(
        "/roads/upload/",
        {
            "image": [upload_file(plain_heic[:5000], "IMG_4.HEIC", HEIC)],
            "lat": str(here.lat),
            "lon": str(here.lon),
        },
        follow=True,
    )
    assert "damaged or truncated" in refused.content.decode() and InspectionPhoto.objects.count() == 1


def test_camera_frames_and_fixed_camera_snapshots_in_heic(tmp_path, long_segment, city, no_broker):
    frames = tmp_path / "frames"
    frames.mkdir()
    for k, s in enumerate((0, 20, 40)):
        when = T0 + dt.timedelta(seconds=s)
        taken = when.strftime("%Y:%m:%d %H:%M:%S") if k != 1 else None  # the middle one: time from its name
        (frames / f"CAM_{when:%Y%m%d_%H%M%S}.heic").write_bytes(
            heic_bytes(seed=k, taken=taken, size=(320, 240))
        )
    (frames / f"CAM_{T0:%Y%m%d}_090030_cut.HEIC").write_bytes(heic_bytes(seed=9, size=(320, 240))[:3000])
    gpx = tmp_path / "track.gpx"
    gpx.write_text(track_gpx(long_segment))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 row rejected"):  # the cut frame: exit status 1, the rest kept
        call_command(
            "ingest_camera_run",
            str(frames),
            "--track",
            str(gpx),
            "--vehicle",
            "patrol-8",
            "--sync",
            "--json",
            stdout=out,
            stderr=err,
        )
    summary = json.loads(out.getvalue())
    assert summary["placed"] == 3 and summary["processed"] == 3 and summary["status"] == "done", summary
    assert [r["file"] for r in summary["rejected"]] == [f"CAM_{T0:%Y%m%d}_090030_cut.HEIC"]
    assert "damaged or truncated" in summary["rejected"][0]["detail"]
    run = CameraRun.objects.get()
    photos = InspectionPhoto.objects.filter(camera_run=run)
    assert set(photos.values_list("image_format", flat=True)) == {"HEIF"}
    assert sorted(photos.values_list("taken_at_source", flat=True)) == ["exif", "exif", "filename"]

    _, token = api_client_create(name="cam uploader", scopes=["roads.frames:write"])
    at = spot_on(long_segment, 0.5, north_m=5)
    cam = FixedCamera.objects.create(
        name="Cam H", location=Point(at.lon, at.lat, srid=4326), segment=long_segment
    )
    snap = heic_bytes(seed=20, taken="2025:06:02 12:00:00", size=(320, 240))
    resp = Client(HTTP_AUTHORIZATION=f"Bearer {token}").post(
        f"/api/roads/cameras/{cam.pk}/snapshots/", {"image": upload_file(snap, "snap.heic", HEIC)}
    )
    assert resp.status_code == 201, resp.content
    photo = InspectionPhoto.objects.get(fixed_camera=cam)
    assert photo.image_format == "HEIF" and photo.taken_at_source == "exif"
    assert photo.taken_at.isoformat() == "2025-06-02T09:00:00+00:00"


def test_detect_command_reads_heic(tmp_path):
    (tmp_path / "a.jpg").write_bytes(photo_bytes(cell=(1, 2)))
    (tmp_path / "b.heic").write_bytes(heic_bytes(cell=(1, 2), sideways=True))
    (tmp_path / "c.heic").write_bytes(heic_bytes(seed=2)[:4000])
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("detect", str(tmp_path), "--json", stdout=out, stderr=err)
    assert exit_.value.code == 1
    records = json.loads(out.getvalue())
    assert [Path(r["image"]).name for r in records] == ["a.jpg", "b.heic", "c.heic"]
    jpeg_box, heic_box = (r["detections"][0]["box"] for r in records[:2])
    assert heic_box == pytest.approx(jpeg_box, abs=1.0) == [160, 240, 320, 400]
    assert "truncated" in records[2]["error"]


def test_a_crew_closes_a_repair_with_a_heic_after_photo(long_segment, users, plain_heic):
    """The platform's "after" photo (console work-order page) takes HEIC too: the road agent registers the
    reader for the whole process. The repair closes the order and the defect, the segment recovers."""
    from django.urls import reverse

    from agents.roads.models import Defect
    from agents.roads.services.photos import photos_receive
    from city_ops.workorders.models import WorkOrder
    from city_ops.workorders.services import work_order_transition

    here = spot_on(long_segment, 0.5)
    [received] = photos_receive(files=[upload_file(photo_bytes(lon=here.lon, lat=here.lat))], enqueue=False)
    photos_detect(photo_ids=[received.photo.pk])
    defect = Defect.objects.get()
    order = WorkOrder.objects.get(pk=defect.work_order_id)
    work_order_transition(order=order, to_status="in_progress", user=order.assignee)
    crew = Client()
    crew.force_login(order.assignee)
    resp = crew.post(
        reverse("console:workorder_photo", args=[order.pk]),
        {"kind": "after", "image": upload_file(plain_heic, "IMG_9.HEIC", HEIC)},
    )
    assert resp.status_code == 302
    order.refresh_from_db()
    defect.refresh_from_db()
    assert order.status == "done" and order.photos.get().kind == "after"
    assert defect.status == "repaired"
