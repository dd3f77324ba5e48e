"""Face/number-plate blurring."""

from __future__ import annotations

import numpy as np
import pytest

from vision.privacy import PrivacyUnavailableError, Region, image_anonymise, privacy_available, region_blur
from vision.tests.helpers import road_image


def test_region_blur_changes_region_only():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    out = img.copy()
    region = Region(x=100, y=50, w=60, h=40, kind="plate")
    region_blur(image=out, region=region, margin=0.0)
    inside = (slice(50, 90), slice(100, 160))
    assert np.abs(out[inside].astype(int) - img[inside]).mean() > 20  # noise is destroyed
    mask = np.ones(img.shape[:2], dtype=bool)
    mask[inside] = False
    assert np.array_equal(out[mask], img[mask])
    # The blurred patch carries little of the original detail.
    assert out[inside].std() < img[inside].std() / 3


def test_region_blur_clips_at_the_border():
    img = np.full((50, 50, 3), 200, dtype=np.uint8)
    img[::2] = 0
    region_blur(image=img, region=Region(x=40, y=40, w=30, h=30, kind="face"))
    assert img.shape == (50, 50, 3)
    assert img[45, 45].tolist() != [0, 0, 0] or img[44, 45].tolist() != [200, 200, 200]


def test_anonymise_runs_or_explains_why_not():
    img, _ = road_image(seed=4, size=(240, 320))
    if not privacy_available():
        with pytest.raises(PrivacyUnavailableError, match="opencv|cascade"):
            image_anonymise(image=img)
        return
    result = image_anonymise(image=img)
    assert result.image.shape == img.shape and result.image.dtype == np.uint8
    assert result.count == len(result.regions)
    if result.count == 0:
        assert np.array_equal(result.image, img)
    assert img is not result.image
