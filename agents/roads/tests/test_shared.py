"""Real road photographs from ../shared (CC BY 4.0 pothole dataset) through the whole pipeline: GPS tags
written by the test, upload checks, detection with the shipped model when there is one (else the tiny test
model), the privacy-safe copy. Nothing here depends on the model's accuracy."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from agents.roads.core.synthetic import gps_exif
from agents.roads.models import InspectionPhoto
from agents.roads.services.detection import photos_detect
from agents.roads.services.photos import photos_receive
from vision.engine import DEFAULT_MODEL

from .conftest import spot_on, upload_file

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
