"""Engine behaviour: parity with ultralytics, EXIF orientation, reduced JPEG decoding, bad inputs, batching."""

from __future__ import annotations

import logging
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from scipy.optimize import linear_sum_assignment

from vision.boxes import box_iou
from vision.decode import DecodedImage
from vision.engine import Detection, Detector, detector_get, providers_resolve
from vision.tests.helpers import jpeg_bytes, label_boxes, road_image, ultralytics_load


def _boxes(dets: list[Detection]) -> np.ndarray:
    return np.array([d.box for d in dets], dtype=np.float64).reshape(-1, 4)


def _assert_same_defects(
    reference: list[Detection], other: list[Detection], *, min_iou: float, min_conf: float
) -> int:
    """Every reference box scoring >= min_conf (at least the top one) has a partner with IoU >= min_iou.

    Returns how many reference boxes were checked."""
    if not reference:
        return 0
    floor = min(min_conf, max(d.confidence for d in reference))
    ref = [d for d in reference if d.confidence >= floor]
    if not ref:
        return 0
    iou = box_iou(_boxes(ref), _boxes(other))
    assert iou.shape[1] > 0, "no detections where the reference has some"
    # A partner must overlap AND score alike: many low-score boxes must not make a match by chance.
    gap = np.abs(
        np.array([d.confidence for d in ref])[:, None] - np.array([d.confidence for d in other])[None, :]
    )
    best = np.where(gap <= 0.15, iou, 0.0).max(1)
    assert best.min() >= min_iou, f"IoU {best.round(3).tolist()} < {min_iou}"
    return len(ref)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` pixels but carries almost no data (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


# --- core suite (no ../shared needed) ------------------------------------------------------------------------


def test_blank_and_generated_images_give_valid_results(model_path):
    det = detector_get(model_path=model_path)
    blank = np.full((480, 640, 3), 128, dtype=np.uint8)
    road, _ = road_image(seed=3, size=(300, 500))
    run = det.detect([blank, road, jpeg_bytes(road)], conf=0.01)
    assert [r.ok for r in run.results] == [True, True, True]
    for result, (h, w) in zip(run.results, [(480, 640), (300, 500), (300, 500)]):
        assert (result.width, result.height) == (w, h)
        for d in result.detections:
            x1, y1, x2, y2 = d.box
            assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h
            assert 0.01 < d.confidence <= 1 and d.class_name == det.names[d.class_id]
        confs = [d.confidence for d in result.detections]
        assert confs == sorted(confs, reverse=True)
    assert run.timings.inference_ms > 0 and run.timings.preprocess_ms > 0


def test_metadata_read_from_onnx(model_path):
    det = detector_get(model_path=model_path)
    assert det.names and all(isinstance(k, int) for k in det.names)
    assert det.stride == 32 and det.imgsz[0] % 32 == 0
    assert det.dynamic_batch
    assert detector_get(model_path=model_path) is det  # cached per process


def test_bad_inputs_give_per_image_errors_and_batch_continues(model_path, tmp_path, monkeypatch):
    det = detector_get(model_path=model_path)
    good, _ = road_image(seed=1, size=(200, 300))
    good_jpeg = jpeg_bytes(good)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    truncated = good_jpeg[: len(good_jpeg) // 2]
    bomb = _png_header_only(30000, 30000)
    missing = tmp_path / "missing.jpg"
    run = det.detect([str(text), truncated, good_jpeg, bomb, str(missing), good], conf=0.01, batch_size=4)
    errors = [r.error for r in run.results]
    assert "not a recognised image format" in errors[0]
    assert "truncated" in errors[1]
    assert errors[2] is None and errors[5] is None
    assert "decompression bomb" in errors[3]
    assert "cannot open" in errors[4]
    # The good images are processed identically whatever failed around them.
    alone = det.detect([good_jpeg], conf=0.01).results[0]
    assert _boxes(alone.detections).tolist() == _boxes(run.results[2].detections).tolist()
    # A lower pixel limit (PIL.Image.MAX_IMAGE_PIXELS) is honoured before decoding.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    limited = det.detect([good_jpeg]).results[0]
    assert limited.error and "too many pixels" in limited.error


def test_a_decoded_image_is_taken_as_it_is_with_boxes_in_its_full_size(model_path):
    """A caller that decoded a photo itself (the road worker: one HEIC decode for the model and the kept copy)
    passes reduced pixels with the full size; the model sees those pixels, the boxes come back full size."""
    det = detector_get(model_path=model_path)
    reduced, _ = road_image(seed=3, size=(300, 400))
    full = DecodedImage(pixels=reduced, width=1200, height=900, scale_x=3.0, scale_y=3.0)
    broken = DecodedImage(pixels=reduced.astype(np.float32), width=1200, height=900, scale_x=3.0, scale_y=3.0)
    alone, scaled, bad = det.detect([reduced, full, broken], conf=0.01).results
    assert alone.detections and (alone.width, alone.height) == (400, 300)
    assert (scaled.width, scaled.height) == (1200, 900) and scaled.reduced_decode
    np.testing.assert_allclose(_boxes(scaled.detections), _boxes(alone.detections) * 3, atol=1e-3)
    assert [d.confidence for d in scaled.detections] == [d.confidence for d in alone.detections]
    assert "uint8" in bad.error


def test_batches_match_one_by_one(model_path):
    det = detector_get(model_path=model_path)
    images = [
        road_image(seed=s, size=size)[0]
        for s, size in enumerate([(200, 300), (300, 200), (200, 300), (256, 256)])
    ]
    batched = det.detect(images, conf=0.01, batch_size=8)
    single = det.detect(images, conf=0.01, batch_size=1)
    for a, b in zip(batched.results, single.results):
        assert len(a.detections) == len(b.detections)
        np.testing.assert_allclose(_boxes(a.detections), _boxes(b.detections), atol=0.05)


def test_fixed_batch_model_falls_back_to_one_by_one(tiny_run, tmp_path):
    """A model exported without a dynamic batch axis still serves batches (one session.run per image)."""
    ultralytics = ultralytics_load()
    weights = tmp_path / "fixed.pt"  # a copy: exporting writes the .onnx beside the weights
    shutil.copyfile(tiny_run.onnx_path.parent / "best.pt", weights)
    fixed = ultralytics.YOLO(str(weights)).export(
        format="onnx", imgsz=64, dynamic=False, simplify=False, verbose=False
    )
    det = Detector(model_path=fixed, providers=["CPUExecutionProvider"])
    assert not det.dynamic_batch and not det.dynamic_hw
    images = [road_image(seed=s, size=(96, 128))[0] for s in range(3)]
    run = det.detect(images, conf=0.001, batch_size=3)
    ref = detector_get(model_path=tiny_run.onnx_path).detect(images, conf=0.001, batch_size=1)
    assert all(r.ok for r in run.results)
    assert sum(len(r.detections) for r in run.results) > 0
    # Fixed model pads to the full square, the dynamic one to the minimal rectangle: results agree closely.
    for a, b in zip(run.results, ref.results):
        assert abs(len(a.detections) - len(b.detections)) <= max(3, len(b.detections) // 5)


def test_tiny_model_parity_with_ultralytics(tiny_run):
    """Same decoded image, same ONNX file: boxes match ultralytics' predict (non-square image, low threshold)."""
    ultralytics = ultralytics_load()
    img, _ = road_image(seed=7, size=(150, 220))
    _parity_check(ultralytics, tiny_run.onnx_path, img, imgsz=64, conf=0.001)


def _parity_check(ultralytics, onnx_path, rgb: np.ndarray, *, imgsz: int, conf: float) -> int:
    result = ultralytics.YOLO(str(onnx_path), task="detect").predict(
        rgb[..., ::-1], imgsz=imgsz, conf=conf, verbose=False
    )[0]
    u_boxes = result.boxes.xyxy.numpy().astype(np.float64)
    u_conf = result.boxes.conf.numpy()
    ours = detector_get(model_path=onnx_path).detect([rgb], conf=conf).results[0].detections
    assert len(ours) == len(u_boxes), (len(ours), len(u_boxes))
    if not len(ours):
        return 0
    iou = box_iou(_boxes(ours), u_boxes)
    conf_gap = np.abs(np.array([d.confidence for d in ours])[:, None] - u_conf[None, :])
    # One-to-one matching (an untrained model can emit near-duplicate boxes, so argmax alone is ambiguous).
    rows, cols = linear_sum_assignment((1 - iou) + conf_gap)
    assert iou[rows, cols].min() >= 0.99, iou[rows, cols].min()
    assert conf_gap[rows, cols].max() <= 1e-3, conf_gap[rows, cols].max()
    return len(ours)


def test_providers_fall_back_to_cpu():
    chosen = providers_resolve(["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert chosen[-1] == "CPUExecutionProvider"
    assert providers_resolve(["cpu"]) == ["CPUExecutionProvider"]


def test_cuda_asked_on_a_cpu_only_onnxruntime_runs_on_cpu_and_says_so(model_path, caplog, monkeypatch):
    import onnxruntime as ort

    from vision import engine

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: test_cuda_matches_cpu covers it")
    monkeypatch.setattr(engine, "_FALLBACKS_LOGGED", set())
    caplog.set_level(logging.WARNING, logger="vision.engine")
    det = detector_get(model_path=model_path, providers=["CUDAExecutionProvider"])
    assert det.providers == ["CPUExecutionProvider"]
    lines = [r.getMessage() for r in caplog.records if r.name == "vision.engine"]
    assert len(lines) == 1 and "CUDAExecutionProvider not available" in lines[0]
    assert "falling back to CPUExecutionProvider" in lines[0]
    img, _ = road_image(seed=3, size=(96, 128))
    assert det.detect([img]).results[0].ok  # and it detects
    # the same configuration again (every batch asks): the same cached detector, no second line
    assert detector_get(model_path=model_path, providers=["cuda", "cpu"]) is det
    assert len([r for r in caplog.records if r.name == "vision.engine"]) == 1


@pytest.mark.gpu
def test_cuda_matches_cpu(model_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("CUDAExecutionProvider is not available")
    img, _ = road_image(seed=5, size=(480, 640))
    gpu = detector_get(model_path=model_path, providers=["cuda"])
    assert gpu.providers[0] == "CUDAExecutionProvider"
    cpu = detector_get(model_path=model_path, providers=["cpu"])
    a, b = gpu.detect([img], conf=0.05).results[0], cpu.detect([img], conf=0.05).results[0]
    _assert_same_defects(b.detections, a.detections, min_iou=0.98, min_conf=0.1)


# --- on real photos from ../shared -------------------------------------------------------------------------


@pytest.mark.shared
def test_shipped_model_parity_with_ultralytics(shipped_model, valid_photos):
    ultralytics = ultralytics_load()
    imgsz = detector_get(model_path=shipped_model).imgsz[0]
    checked = 0
    for photo in valid_photos[:2]:
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        checked += _parity_check(ultralytics, shipped_model, rgb, imgsz=imgsz, conf=0.05)
        wide = np.asarray(
            Image.open(photo).convert("RGB").resize((800, 600))
        )  # non-square: rectangle letterbox
        checked += _parity_check(ultralytics, shipped_model, wide, imgsz=imgsz, conf=0.05)
    assert checked >= 4


@pytest.mark.shared
def test_shipped_model_finds_the_potholes(shipped_model, valid_photos):
    det = detector_get(model_path=shipped_model)
    run = det.detect([str(p) for p in valid_photos])  # the model card's recommended threshold
    for photo, result in zip(valid_photos, run.results):
        truth = label_boxes(photo)
        assert result.detections, f"nothing found in {photo.name}"
        assert box_iou(truth, _boxes(result.detections)).max() >= 0.5, photo.name
        assert all(d.class_name == "Pothole" for d in result.detections)


@pytest.mark.shared
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_boxes_in_upright_frame(shipped_model, valid_photos, orientation):
    photo = valid_photos[0]
    upright = np.asarray(Image.open(photo).convert("RGB").resize((640, 480)))  # non-square shows w/h swaps
    # Store the pixels as a camera would (rotated) and tag how to turn them upright.
    undo = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[
        orientation
    ]
    stored = np.asarray(Image.fromarray(upright).transpose(undo))
    exif = Image.Exif()
    exif[0x0112] = orientation
    det = detector_get(model_path=shipped_model)
    # Reference boxes above the recommended threshold must have partners among everything above 0.01, so
    # that a score moving a hair across the threshold does not count as a missed defect.
    rec = det.default_conf
    run = det.detect([jpeg_bytes(upright, quality=95), jpeg_bytes(stored, quality=95, exif=exif)], conf=0.01)
    ref, rotated = run.results
    assert (rotated.width, rotated.height) == (640, 480)
    assert _assert_same_defects(ref.detections, rotated.detections, min_iou=0.85, min_conf=rec) >= 1


@pytest.mark.shared
def test_fast_decode_matches_full_decode_on_12mp(shipped_model, valid_photos, tmp_path):
    det = detector_get(model_path=shipped_model)
    checked = 0
    for photo in valid_photos[:2]:
        big = tmp_path / f"{photo.stem}_12mp.jpg"
        Image.open(photo).convert("RGB").resize((4000, 3000), Image.Resampling.BILINEAR).save(big, quality=90)
        rec = det.default_conf
        fast = det.detect([str(big)], fast=True, conf=0.01).results[0]
        full = det.detect([str(big)], fast=False, conf=0.01).results[0]
        assert fast.reduced_decode and not full.reduced_decode
        assert (fast.width, fast.height) == (full.width, full.height) == (4000, 3000)
        checked += _assert_same_defects(full.detections, fast.detections, min_iou=0.9, min_conf=rec)
    assert checked >= 2


def test_fast_decode_leaves_the_last_4x_of_shrinking_to_the_letterbox(tmp_path):
    """DCT scaling stops where bilinear shrinking still has FAST_MARGIN (4x) to do, so the fast picture stays
    close to the full path's (see vision.decode.FAST_MARGIN)."""
    from vision.decode import FAST_MARGIN, image_decode

    assert FAST_MARGIN == 4
    for (w, h), expected in (((4000, 3000), (2000, 1500)), ((8000, 6000), (2000, 1500)), ((1600, 1200), None)):
        path = tmp_path / f"{w}.jpg"
        Image.fromarray(road_image(seed=1, size=(h // 8, w // 8))[0]).resize((w, h)).save(path, quality=85)
        decoded = image_decode(source=path, target_hw=(416, 416), fast=True)
        assert (decoded.width, decoded.height) == (w, h)
        shape = (decoded.pixels.shape[1], decoded.pixels.shape[0])
        assert shape == (expected or (w, h)) and decoded.reduced == (expected is not None), (w, shape)
