"""HEIC/HEIF input (iPhones): files encoded here with pillow-heif decode upright (the HEIF rotation applied
once), a file cut short is a clean per-image error, the pixel guard holds, directories list .heic files, and
a real road photo gives the same defects as HEIC as it does as JPEG."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vision.cli import detect_paths, paths_expand
from vision.decode import ImageDecodeError, image_decode
from vision.engine import detector_get
from vision.heif import heif_brand, heif_register
from vision.tests.helpers import jpeg_bytes, road_image
from vision.tests.test_engine import _assert_same_defects


def heic_bytes(pixels: np.ndarray, *, orientation: int | None = None, quality: int = 85) -> bytes:
    """Encode RGB pixels as HEIC; with ``orientation`` the EXIF tag is written and pillow-heif adds the
    matching HEIF rotation box, as iPhones do."""
    assert heif_register(), "pillow-heif is a dependency of the project"
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="HEIF", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def upright() -> np.ndarray:
    img, _ = road_image(seed=11, size=(240, 320))  # (h, w): a landscape picture
    return img


def test_heif_brand_from_the_first_bytes(upright):
    heic = heic_bytes(upright)
    assert heif_brand(heic) == "heic"
    assert heif_brand(heic[:40]) == "heic"  # only the ftyp box is needed
    assert heif_brand(jpeg_bytes(upright)) is None
    assert heif_brand(b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00avifmiaf") is None  # AVIF: same box, not HEIF
    assert heif_brand(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42mif1") == "mif1"  # a compatible brand
    assert heif_brand(b"") is None and heif_brand(b"ftyp") is None


def test_sideways_heic_decodes_upright(upright):
    stored = np.asarray(Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90))  # phone held upright
    decoded = image_decode(source=heic_bytes(stored, orientation=6, quality=95))
    assert decoded.pixels.shape == upright.shape and (decoded.width, decoded.height) == (320, 240)

    # HEVC is lossy and smooths the asphalt's noise: compare 8-px block means, which show where the potholes
    # are; the upright picture matches them, the same picture turned half a circle does not.
    def blocks(a: np.ndarray) -> np.ndarray:
        return a.reshape(30, 8, 40, 8, 3).mean(axis=(1, 3))

    err = np.abs(blocks(decoded.pixels) - blocks(upright)).mean()
    wrong = np.abs(blocks(decoded.pixels) - blocks(upright[::-1, ::-1])).mean()
    assert err < 3 and wrong > 4 * err, (err, wrong)


def test_cut_short_heic_is_a_clean_error_and_the_batch_goes_on(upright, model_path, tmp_path):
    heic = heic_bytes(upright)
    for cut in (len(heic) // 2, 100):
        with pytest.raises(ImageDecodeError, match="truncated"):
            image_decode(source=heic[:cut])
    run = detector_get(model_path=model_path).detect(
        [heic, heic[: len(heic) // 2], jpeg_bytes(upright)], conf=0.01
    )
    assert [r.error is None for r in run.results] == [True, False, True]
    assert (run.results[0].width, run.results[0].height) == (320, 240)
    (tmp_path / "a.heic").write_bytes(heic)
    (tmp_path / "b.HEIC").write_bytes(heic[:100])
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in paths_expand(paths=[tmp_path])] == ["a.heic", "b.HEIC"]
    records = detect_paths(paths=[tmp_path], model_path=model_path)
    assert "detections" in records[0] and "truncated" in records[1]["error"]


def test_pixel_guard_holds_for_heic(upright):
    with pytest.raises(ImageDecodeError, match="too many pixels"):
        image_decode(source=heic_bytes(upright), max_pixels=10_000)


@pytest.mark.shared
def test_real_photo_as_iphone_heic_finds_the_same_defects(shipped_model, valid_photos):
    det = detector_get(model_path=shipped_model)
    checked = 0
    for photo in valid_photos[:2]:
        rgb = np.asarray(Image.open(photo).convert("RGB").resize((640, 480)))
        sideways = np.asarray(Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90))
        ref, heic = det.detect(
            [jpeg_bytes(rgb, quality=95), heic_bytes(sideways, orientation=6, quality=90)], conf=0.01
        ).results
        assert (heic.width, heic.height) == (640, 480)
        checked += _assert_same_defects(
            ref.detections, heic.detections, min_iou=0.85, min_conf=det.default_conf
        )
    assert checked >= 2
