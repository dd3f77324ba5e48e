"""Detection in-process (the task's service) with the real vision engine and the tiny test model: boxes stored
in original pixels, a privacy-safe copy without EXIF, defects on the real network, one bad photo never stopping
the batch, a missing model leaving photos waiting, and retention of originals."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from agents.roads.models import Defect, InspectionPhoto
from agents.roads.services.detection import photos_detect
from agents.roads.services.photos import FormPosition, photos_receive
from agents.roads.services.retention import retention_apply
from city_ops.workorders.models import WorkOrder

from .conftest import photo_bytes, pixel_decodes, spot_on, upload_file

pytestmark = pytest.mark.usefixtures("tiny_model")


def receive(*datas, user=None, lon=None, lat=None) -> list[InspectionPhoto]:
    files = [upload_file(d, f"p{i}.jpg") for i, d in enumerate(datas)]
    form = FormPosition(lon=lon, lat=lat)
    return [r.photo for r in photos_receive(files=files, form=form, uploader=user, enqueue=False)]


def test_a_photo_becomes_boxes_a_blurred_copy_a_defect_and_an_order(long_segment, users):
    here = spot_on(long_segment, 0.5)
    [photo] = receive(photo_bytes(lon=here.lon, lat=here.lat, cell=(1, 2)), user=users.crew)
    report = photos_detect(photo_ids=[photo.pk])
    assert report.done == 1 and report.failed == 0 and report.defects_created == 1
    photo.refresh_from_db()
    assert photo.status == "done" and photo.model_name == "grid.onnx" and photo.inference_ms > 0
    assert [d["class"] for d in photo.detections] == ["pothole"]
    # the box is the model's grid cell, mapped back to the 640 x 480 original
    assert photo.detections[0]["box"] == pytest.approx([160, 240, 320, 400], abs=1.0)
    assert photo.privacy_mode in ("faces_plates", "context")
    with default_storage.open(photo.image.name) as fh:
        kept = Image.open(io.BytesIO(fh.read()))
        assert kept.format == "JPEG" and kept.size == (640, 480)
        assert not kept.getexif().get_ifd(0x8825)  # no GPS in what is kept and shown
    defect = Defect.objects.get()
    assert defect.segment == long_segment and defect.best_photo == photo
    order = WorkOrder.objects.get(source_ref=f"defect:{defect.pk}")
    assert report.orders == [order.pk]


def test_exif_orientation_keeps_boxes_on_the_upright_picture(long_segment):
    here = spot_on(long_segment, 0.5)
    # stored sideways (480 x 640) with orientation 6: the upright picture is 640 x 480 again
    upright = photo_bytes(lon=here.lon, lat=here.lat, cell=(1, 2))
    img = Image.open(io.BytesIO(upright)).transpose(Image.Transpose.ROTATE_90)
    from agents.roads.domain.synthetic import gps_exif

    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=gps_exif(lon=here.lon, lat=here.lat, orientation=6).tobytes())
    [photo] = receive(buf.getvalue())
    assert (photo.width, photo.height) == (640, 480)
    photos_detect(photo_ids=[photo.pk])
    photo.refresh_from_db()
    assert photo.detections[0]["box"] == pytest.approx([160, 240, 320, 400], abs=1.0)


def test_a_12mp_jpeg_is_never_decoded_in_full_and_is_blurred_on_the_reduced_copy(long_segment, monkeypatch):
    """What keeps the worker's cost near the engine's: libjpeg decodes a phone's 12 MP JPEG at reduced scale
    for the model and again for the kept copy, never in full, and faces/plates are looked for on the kept
    copy (at most ROADS_KEPT_MAX_SIDE), not on 12 MP; EXIF orientation and boxes in original pixels hold."""
    import vision.privacy
    from agents.roads.domain.synthetic import gps_exif

    here = spot_on(long_segment, 0.5)
    # A phone held upright: 3000 x 4000 stored, EXIF orientation 6; upright it is 4000 x 3000.
    upright = Image.open(io.BytesIO(photo_bytes(size=(4000, 3000), cell=(1, 2), plain=True)))
    buf = io.BytesIO()
    upright.transpose(Image.Transpose.ROTATE_90).save(
        buf, "JPEG", quality=90, exif=gps_exif(lon=here.lon, lat=here.lat, orientation=6).tobytes()
    )
    [photo] = receive(buf.getvalue())
    assert (photo.width, photo.height) == (4000, 3000)

    decodes = pixel_decodes(monkeypatch)
    searched: list[tuple[int, ...]] = []
    regions_find = vision.privacy.regions_find

    def regions_find_seen(*, image, **kwargs):
        searched.append(image.shape)
        return regions_find(image=image, **kwargs)

    monkeypatch.setattr(vision.privacy, "regions_find", regions_find_seen)
    report = photos_detect(photo_ids=[photo.pk])
    photo.refresh_from_db()
    assert report.done == 1 and photo.status == "done", photo.error
    assert photo.detections[0]["box"] == pytest.approx([1000, 1500, 2000, 2500], abs=2.0)
    # Stored sideways: the model's decode at 1/8 (375 x 500), the kept copy's at 1/2 (1500 x 2000).
    sizes = [d.size for d in decodes if d.format == "JPEG"]
    assert sorted(sizes) == [(375, 500), (1500, 2000)], sizes
    # The face/plate search ran once, on the upright kept copy (also when OpenCV cannot run it: then it
    # raised there and the whole copy but the damage was blurred instead).
    assert searched == [(1200, 1600, 3)]
    with default_storage.open(photo.image.name) as fh:
        assert Image.open(io.BytesIO(fh.read())).size == (1600, 1200)


def test_one_bad_photo_never_stops_the_batch(long_segment):
    spots = [spot_on(long_segment, f) for f in (0.2, 0.5, 0.8)]
    photos = receive(*[photo_bytes(lon=s.lon, lat=s.lat, seed=i) for i, s in enumerate(spots)])
    # the middle one's file is damaged on disk after it was accepted, the last one's is gone
    with default_storage.open(photos[1].original.name, "wb") as fh:
        fh.write(b"\xff\xd8\xff\xe0 broken")
    default_storage.delete(photos[2].original.name)
    report = photos_detect(photo_ids=[p.pk for p in photos])
    assert (report.done, report.failed) == (1, 2)
    states = dict(InspectionPhoto.objects.values_list("pk", "status"))
    assert [states[p.pk] for p in photos] == ["done", "failed", "failed"]
    errors = dict(InspectionPhoto.objects.values_list("pk", "error"))
    assert "not readable" in errors[photos[1].pk] and "missing" in errors[photos[2].pk]


def test_a_photo_is_processed_once(long_segment):
    here = spot_on(long_segment)
    [photo] = receive(photo_bytes(lon=here.lon, lat=here.lat))
    assert photos_detect(photo_ids=[photo.pk]).done == 1
    again = photos_detect(photo_ids=[photo.pk])  # the same task delivered twice
    assert again.claimed == 0 and Defect.objects.count() == 1


def test_missing_model_leaves_photos_waiting(long_segment, settings):
    settings.VISION_MODEL_PATH = "/nonexistent/model.onnx"
    here = spot_on(long_segment)
    [photo] = receive(photo_bytes(lon=here.lon, lat=here.lat))
    report = photos_detect(photo_ids=[photo.pk])
    photo.refresh_from_db()
    assert report.waiting == 1 and photo.status == "received" and "detector unavailable" in photo.error


def test_no_damage_no_defect(long_segment):
    from agents.roads.domain.synthetic import gps_exif, jpeg_bytes, road_photo

    here = spot_on(long_segment)
    pixels, _ = road_photo(seed=5, size=(640, 480), holes=[])
    [photo] = receive(jpeg_bytes(image=pixels, exif=gps_exif(lon=here.lon, lat=here.lat)))
    photos_detect(photo_ids=[photo.pk])
    photo.refresh_from_db()
    assert photo.status == "done" and photo.detections == [] and Defect.objects.count() == 0


def test_retention_removes_originals_and_crew_positions(long_segment, settings):
    here = spot_on(long_segment)
    [photo] = receive(photo_bytes(seed=4), lon=here.lon, lat=here.lat)
    photos_detect(photo_ids=[photo.pk])
    photo.refresh_from_db()
    original = photo.original.name
    assert original and default_storage.exists(original) and photo.device_location is not None
    assert retention_apply()["originals_deleted"] == 0  # within the period
    later = timezone.now() + dt.timedelta(days=31)
    out = retention_apply(now=later)
    photo.refresh_from_db()
    assert out == {"originals_deleted": 1, "positions_forgotten": 1}
    assert not photo.original and not default_storage.exists(original) and photo.device_location is None
    assert photo.image and default_storage.exists(photo.image.name)  # the blurred copy stays


def test_zero_retention_drops_the_original_right_after_detection(long_segment, settings):
    settings.ROADS_ORIGINAL_RETENTION_DAYS = 0
    here = spot_on(long_segment)
    [photo] = receive(photo_bytes(lon=here.lon, lat=here.lat))
    name = photo.original.name
    photos_detect(photo_ids=[photo.pk])
    photo.refresh_from_db()
    assert not photo.original and not default_storage.exists(name) and photo.status == "done"


def _cuda_available() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def test_configured_cuda_runs_on_cpu_with_a_log_line_where_there_is_none(
    long_segment, settings, caplog, monkeypatch
):
    """The providers come from settings.VISION_PROVIDERS (the GPU worker image's default lists CUDA first);
    with the CPU-only onnxruntime the photo is still processed, on CPU, and the log says why."""
    from agents.roads.services.detection import _detector
    from vision import engine

    if _cuda_available():
        pytest.skip("this onnxruntime has CUDA: test_detection_on_cuda covers it")
    settings.VISION_PROVIDERS = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(engine, "_FALLBACKS_LOGGED", set())
    caplog.set_level("WARNING", logger="vision.engine")
    here = spot_on(long_segment)
    [photo] = receive(photo_bytes(lon=here.lon, lat=here.lat, cell=(1, 2)))
    assert photos_detect(photo_ids=[photo.pk]).done == 1
    photo.refresh_from_db()
    assert photo.detections[0]["box"] == pytest.approx([160, 240, 320, 400], abs=1.0)
    assert _detector().providers == ["CPUExecutionProvider"]
    [line] = [r.getMessage() for r in caplog.records if r.name == "vision.engine"]
    assert "CUDAExecutionProvider not available" in line and "falling back to CPUExecutionProvider" in line


@pytest.mark.gpu
def test_detection_on_cuda(long_segment, settings):
    """Where onnxruntime-gpu sees a GPU: the worker's detector runs on CUDA and finds the same box."""
    from agents.roads.services.detection import _detector

    if not _cuda_available():
        pytest.skip("no CUDAExecutionProvider in this onnxruntime (onnxruntime-gpu on a GPU machine has it)")
    settings.VISION_PROVIDERS = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert _detector().providers[0] == "CUDAExecutionProvider"
    here = spot_on(long_segment)
    photos = receive(*[photo_bytes(lon=here.lon, lat=here.lat, seed=i, cell=(1, 2)) for i in range(3)])
    assert photos_detect(photo_ids=[p.pk for p in photos]).done == 3
    for p in photos:
        p.refresh_from_db()
        assert p.detections[0]["box"] == pytest.approx([160, 240, 320, 400], abs=1.0)
