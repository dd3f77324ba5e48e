"""Helpers shared by the vision tests (generated images, label reading, offline ultralytics import)."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def ultralytics_load():
    """Import ultralytics offline (project-local config dir, no downloads); `make test` installs it."""
    if importlib.util.find_spec("ultralytics") is None:
        pytest.fail("ultralytics is not installed: `make test` installs the 'train' extra")
    from vision.train import ultralytics_offline_prepare

    ultralytics_offline_prepare()
    import ultralytics

    return ultralytics


def road_image(
    *, seed: int, size: tuple[int, int] = (128, 128), holes: int = 2
) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """A grey asphalt-like RGB image with dark elliptic 'potholes'; returns (pixels, YOLO boxes cx, cy, w, h)."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size
    img = np.clip(rng.normal(120, 18, (h, w, 3)), 0, 255).astype(np.uint8)
    boxes = []
    for _ in range(holes):
        bw, bh = rng.uniform(0.15, 0.35) * w, rng.uniform(0.1, 0.25) * h
        cx, cy = rng.uniform(bw, w - bw), rng.uniform(bh, h - bh)
        cv2.ellipse(img, (int(cx), int(cy)), (int(bw / 2), int(bh / 2)), 0, 0, 360, (40, 35, 30), -1)
        boxes.append((cx / w, cy / h, bw / w, bh / h))
    return img, boxes


def jpeg_bytes(pixels: np.ndarray, *, quality: int = 92, exif: Image.Exif | None = None) -> bytes:
    """Encode RGB pixels as JPEG (optionally with an EXIF block)."""
    buf = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality, **kwargs)
    return buf.getvalue()


def label_boxes(photo: Path) -> np.ndarray:
    """Ground-truth boxes (xyxy pixels) of a validation photo, read from its YOLO label file."""
    label = photo.parent.parent / "labels" / (photo.stem + ".txt")
    w, h = Image.open(photo).size
    rows = [list(map(float, line.split()[1:5])) for line in label.read_text().splitlines() if line.strip()]
    return np.array(
        [
            [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]
            for cx, cy, bw, bh in rows
        ]
    )


def fixed_model_build(path: Path, *, names: dict[int, str], imgsz: int = 64) -> Path:
    """A hand-built ONNX detector with a YOLO export's interface whose output ignores the image: anchor k is
    a box in row k of the input (``imgsz / 8`` tall, full width) scored 0.9 for class k and 0 for the
    others, so each class of ``names`` is found exactly once in any image."""
    import onnx
    from onnx import TensorProto, helper

    nc = len(names)
    step = imgsz / 8
    rows = np.zeros((4 + nc, nc), dtype=np.float32)
    for k in range(nc):
        rows[:4, k] = (imgsz / 2, step * (k + 0.5), imgsz, step * 0.8)
        rows[4 + k, k] = 0.9
    const = rows.reshape(1, 4 + nc, nc)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["images"], ["mean"], axes=[1, 2, 3], keepdims=1),
            helper.make_node("Reshape", ["mean", "shape"], ["flat"]),
            helper.make_node("Mul", ["flat", "zero"], ["nil"]),
            helper.make_node("Add", ["nil", "const"], ["output0"]),
        ],
        "fixed_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, imgsz, imgsz])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 4 + nc, nc])],
        initializer=[
            helper.make_tensor("const", TensorProto.FLOAT, const.shape, const.ravel().tolist()),
            helper.make_tensor("shape", TensorProto.INT64, [3], [-1, 1, 1]),
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="vision-tests")
    model.ir_version = 8
    for key, value in {"names": repr(names), "imgsz": f"[{imgsz}, {imgsz}]", "stride": "32"}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
