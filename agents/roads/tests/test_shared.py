"""Real road photographs from ../shared (CC BY 4.0 pothole dataset) through the whole pipeline: GPS tags
written by the test, upload checks, detection with the shipped model when there is one (else the tiny test
model), the privacy-safe copy. Nothing here depends on the model's accuracy."""
from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image

from agents.roads.domain.synthetic import gps_exif
from agents.roads.models import CameraRun, Defect, InspectionPhoto
from agents.roads.services.detection import photos_detect
from agents.roads.services.photos import photos_receive
from vision.engine import DEFAULT_MODEL

from .conftest import spot_on, upload_file
from .test_cameras import T0, track_gpx

pytestmark = pytest.mark.shared


def test_real_photos_through_the_pipeline(shared_dir, long_segment, settings):
    if DEFAULT_MODEL.is_file():
        settings.VISION_MODEL_PATH = str(DEFAULT_MODEL)
    photos = sorted((shared_dir / "datasets/potholes/valid/images").glob("*.jpg"))[:4]
    if not photos:
        pytest.skip("no validation photos in ../shared")
    files = []
    for i, path in enumerate(photos):
        here = spot_on(long_segment, 0.2 + 0.2 * i)
        buf = io.BytesIO()
        Image.open(path).save(buf, "JPEG", quality=95, exif=gps_exif(lon=here.lon, lat=here.lat,
                                                                      taken="2025:05:02 12:00:00").tobytes())
        files.append(upload_file(buf.getvalue(), Path(path).name))
    received = photos_receive(files=files, enqueue=False)
    report = photos_detect(photo_ids=[r.photo.pk for r in received])
    assert report.done == len(photos) and report.failed == 0
    for photo in InspectionPhoto.objects.all():
        assert photo.status == "done" and (photo.width, photo.height) == (640, 640)
        assert photo.location_source == "exif" and photo.taken_at_source == "exif"
        for d in photo.detections:
            x1, y1, x2, y2 = d["box"]
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 640 and 0 < d["confidence"] <= 1
        with default_storage.open(photo.image.name) as fh:
            assert not Image.open(io.BytesIO(fh.read())).getexif().get_ifd(0x8825)


# Survey frames (768x480, MIT, ../shared/datasets/road_survey_br): four whose pothole mask covers 7-9 % of
# the frame (large potholes) and two with cracks only.
SURVEY_POTHOLE_FRAMES = (
    "883270_RS_290_290RS150131_17080",
    "883275_RS_290_290RS150131_17105",
    "941599_RS_290_290RS070691_00900",
    "883073_RS_290_290RS150131_16095",
)
SURVEY_CRACK_FRAMES = ("1093022_DF_251_251BDF0052_00984", "917248_RS_290_290RS294095_19690")


def test_patrol_camera_run_on_survey_frames(shared_dir, long_segment, tmp_path, settings, capsys):
    """A patrol vehicle drives a real street (GPX generated here) with six survey frames, one every 10 s:
    every frame is placed on the track and processed by the shipped model, and its defects are potholes or
    cracks on that street. Holds for the one-class model (potholes only) and the two-class one."""
    images = shared_dir / "datasets/road_survey_br/images"
    names = SURVEY_POTHOLE_FRAMES + SURVEY_CRACK_FRAMES
    if not all((images / f"{n}.jpg").is_file() for n in names):
        pytest.skip(f"../shared has not the survey frames under {images}")
    settings.VISION_MODEL_PATH = str(DEFAULT_MODEL)
    frames = tmp_path / "frames"
    frames.mkdir()
    for k, name in enumerate(names):  # the camera names frames by capture time
        when = T0 + dt.timedelta(seconds=5 + 10 * k)
        (frames / f"CAM_{when:%Y%m%d_%H%M%S}.jpg").write_bytes((images / f"{name}.jpg").read_bytes())
    gpx = tmp_path / "track.gpx"
    gpx.write_text(track_gpx(long_segment))
    call_command("ingest_camera_run", str(frames), "--track", str(gpx), "--vehicle", "survey-1", "--sync", "--json")
    out = json.loads(capsys.readouterr().out)
    run = CameraRun.objects.get()
    assert out["placed"] == run.frames_placed == 6 and out["duplicate"] == 0 and out["rejected"] == []
    assert run.status == "done" and run.frames_processed == 6 and run.frames_failed == 0
    photos = {p.file_name: p for p in InspectionPhoto.objects.filter(camera_run=run)}
    assert len(photos) == 6
    for photo in photos.values():
        assert (photo.width, photo.height) == (768, 480) and photo.location_source == "track"
        assert long_segment.geom.distance(photo.location) < 2e-5
        assert {d["class"] for d in photo.detections} <= {"pothole", "crack"}
    defects = list(Defect.objects.filter(sightings__photo__camera_run=run).distinct())
    assert {d.class_name for d in defects} <= {"pothole", "crack"}
    assert all(d.segment_id == long_segment.pk for d in defects)
    pothole_photos = [p for p in photos.values() if p.sightings.filter(defect__class_name="pothole").exists()]
    large = {f"CAM_{T0 + dt.timedelta(seconds=5 + 10 * k):%Y%m%d_%H%M%S}.jpg" for k in range(4)}
    assert {p.file_name for p in pothole_photos} & large, "a pothole found in some frame with a large pothole"
    assert run.defects_found == len(defects) >= 1
