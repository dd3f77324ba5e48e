"""Letterboxing and YOLO output decoding, matching ultralytics' conventions so boxes agree with its predict.

Conventions copied from ultralytics (LetterBox, scale_boxes, non_max_suppression): resize with the
min-ratio and ``round`` per side, pad centred with value 114 (``round(d - 0.1)`` before, ``round(d + 0.1)``
after), NMS per class by offsetting boxes by ``class * 7680``, drop boxes with IoU > ``iou`` to a kept one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114
_CLASS_OFFSET = 7680.0  # ultralytics' max_wh: separates classes for one batched NMS


@dataclass(frozen=True)
class Letterbox:
    """How an image was placed in the model input: resized size and top/left padding."""

    new_w: int
    new_h: int
    left: int
    top: int
    gain_x: float  # resized / source
    gain_y: float


def letterbox_plan(
    *, shape_hw: tuple[int, int], new_hw: tuple[int, int], stride: int = 32, auto: bool = False
) -> tuple[Letterbox, tuple[int, int, int, int]]:
    """Return the placement and (top, bottom, left, right) padding for an image of ``shape_hw``."""
    h, w = shape_hw
    r = min(new_hw[0] / h, new_hw[1] / w)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = new_hw[1] - new_w, new_hw[0] - new_h
    if auto:
        dw, dh = dw % stride, dh % stride
    dw, dh = dw / 2, dh / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    plan = Letterbox(new_w=new_w, new_h=new_h, left=left, top=top, gain_x=new_w / w, gain_y=new_h / h)
    return plan, (top, bottom, left, right)


def letterbox_apply(
    *,
    image: np.ndarray,
    new_hw: tuple[int, int],
    out: np.ndarray | None = None,
    stride: int = 32,
    auto: bool = False,
) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` (h, w, 3) uint8 into the model input, padded with grey; return (canvas, placement).

    With ``out`` (a (H, W, 3) uint8 buffer of the padded size) the result is written there, so a batch can be
    assembled without extra copies.
    """
    plan, (top, bottom, left, right) = letterbox_plan(
        shape_hw=image.shape[:2], new_hw=new_hw, stride=stride, auto=auto
    )
    if image.shape[1] != plan.new_w or image.shape[0] != plan.new_h:
        resized = cv2.resize(image, (plan.new_w, plan.new_h), interpolation=cv2.INTER_LINEAR)
    else:
        resized = image
    full_h, full_w = plan.new_h + top + bottom, plan.new_w + left + right
    if out is None:
        out = np.empty((full_h, full_w, 3), dtype=np.uint8)
    # Fill only the borders: the centre is overwritten by the picture anyway.
    if top:
        out[:top] = PAD_VALUE
    if bottom:
        out[full_h - bottom :] = PAD_VALUE
    if left:
        out[top : top + plan.new_h, :left] = PAD_VALUE
    if right:
        out[top : top + plan.new_h, full_w - right :] = PAD_VALUE
    out[top : top + plan.new_h, left : left + plan.new_w] = resized
    return out, plan


def predictions_decode(
    *,
    output: np.ndarray,
    conf: float,
    iou: float,
    max_det: int = 300,
    max_nms: int = 30000,
    agnostic: bool = False,
) -> np.ndarray:
    """Decode one image's raw YOLOv8/YOLO11 output (4 + nc, anchors) into (k, 6) [x1, y1, x2, y2, score, class].

    Boxes are in model-input pixels, sorted by score, after class-wise NMS.
    """
    scores_all = output[4:]
    cls = scores_all.argmax(0)
    scores = scores_all[cls, np.arange(scores_all.shape[1])]
    keep = scores > conf
    if not keep.any():
        return np.zeros((0, 6), dtype=np.float32)
    xywh = output[:4, keep].T
    scores, cls = scores[keep], cls[keep].astype(np.float32)
    order = np.argsort(-scores, kind="stable")[:max_nms]
    xywh, scores, cls = xywh[order], scores[order], cls[order]
    boxes = np.empty_like(xywh)
    half = xywh[:, 2:] / 2
    boxes[:, :2] = xywh[:, :2] - half
    boxes[:, 2:] = xywh[:, :2] + half
    offset = 0.0 if agnostic else cls[:, None] * _CLASS_OFFSET
    kept = nms_indices(boxes=boxes + offset, iou=iou)[:max_det]
    return np.concatenate([boxes[kept], scores[kept, None], cls[kept, None]], axis=1).astype(np.float32)


def nms_indices(*, boxes: np.ndarray, iou: float) -> np.ndarray:
    """Greedy NMS over boxes already sorted by descending score; return kept indices (vectorised per kept box)."""
    n = len(boxes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    alive = np.ones(n, dtype=bool)
    kept: list[int] = []
    for i in range(n):
        if not alive[i]:
            continue
        kept.append(i)
        rest = np.nonzero(alive[i + 1 :])[0] + i + 1
        if not len(rest):
            break
        w = (np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])).clip(0)
        h = (np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])).clip(0)
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter + 1e-9)
        alive[rest[overlap > iou]] = False
    return np.asarray(kept, dtype=np.int64)


def boxes_unletterbox(
    *, boxes: np.ndarray, plan: Letterbox, scale_x: float, scale_y: float, width: int, height: int
) -> np.ndarray:
    """Map (k, 4) model-input boxes to the full-resolution upright image and clip them to it."""
    out = boxes.astype(np.float64, copy=True)
    out[:, [0, 2]] = (out[:, [0, 2]] - plan.left) / plan.gain_x * scale_x
    out[:, [1, 3]] = (out[:, [1, 3]] - plan.top) / plan.gain_y * scale_y
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (n, 4) and (m, 4) xyxy boxes -> (n, m)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clip(0).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).clip(0).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).clip(0).prod(1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-12)
