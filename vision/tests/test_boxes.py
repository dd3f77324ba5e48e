"""Letterbox geometry and NMS against ultralytics' own implementations."""

from __future__ import annotations

import numpy as np
import pytest

from vision.boxes import box_iou, boxes_unletterbox, letterbox_apply, nms_indices, predictions_decode
from vision.tests.helpers import ultralytics_load


@pytest.mark.parametrize("shape", [(480, 640), (640, 480), (3000, 4000), (100, 37), (416, 416)])
@pytest.mark.parametrize("auto", [False, True])
def test_letterbox_matches_ultralytics(shape, auto):
    ultralytics_load()
    from ultralytics.data.augment import LetterBox

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    ours, plan = letterbox_apply(image=img, new_hw=(416, 416), stride=32, auto=auto)
    theirs = LetterBox((416, 416), auto=auto, stride=32)(image=img)
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)
    # A box round-trips through the placement.
    box = np.array([[10.0, 20.0, shape[1] * 0.5, shape[0] * 0.75]])
    placed = box.copy()
    placed[:, [0, 2]] = placed[:, [0, 2]] * plan.gain_x + plan.left
    placed[:, [1, 3]] = placed[:, [1, 3]] * plan.gain_y + plan.top
    back = boxes_unletterbox(boxes=placed, plan=plan, scale_x=1, scale_y=1, width=shape[1], height=shape[0])
    np.testing.assert_allclose(back, box, atol=1e-6)


def test_nms_matches_torchvision():
    ultralytics_load()
    import torch
    import torchvision

    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 300, (300, 2))
    wh = rng.uniform(5, 80, (300, 2))
    boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    ours = order[nms_indices(boxes=boxes[order], iou=0.5)]
    theirs = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    assert ours.tolist() == theirs.tolist()


def test_decode_thresholds_and_is_classwise():
    # Two overlapping boxes of different classes both survive; a weaker same-class duplicate does not.
    out = np.zeros((4 + 2, 4), dtype=np.float32)
    out[:4, 0] = [50, 50, 40, 40]
    out[:4, 1] = [51, 50, 40, 40]
    out[:4, 2] = [52, 50, 40, 40]
    out[:4, 3] = [200, 200, 10, 10]
    out[4:, 0] = [0.9, 0.0]
    out[4:, 1] = [0.0, 0.8]
    out[4:, 2] = [0.7, 0.0]
    out[4:, 3] = [0.1, 0.0]
    dets = predictions_decode(output=out, conf=0.25, iou=0.7)
    assert dets[:, 5].tolist() == [0.0, 1.0]
    np.testing.assert_allclose(dets[:, 4], [0.9, 0.8])
    np.testing.assert_allclose(dets[0, :4], [30, 30, 70, 70])
    assert box_iou(dets[:1, :4], dets[1:2, :4])[0, 0] > 0.9
