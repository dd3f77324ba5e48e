"""Test helpers: a tiny hand-built ONNX detector with a known behaviour, and photo makers.

The tiny model has the interface of an ultralytics YOLO export (input ``images`` (n, 3, 64, 64) in [0, 1],
output (n, 4 + 1, anchors), metadata names/imgsz/stride), so the real vision engine loads and runs it. Its
"detector" is arithmetic, not learnt: the letterboxed image is split into a 4 x 4 grid of 16-px cells, each
cell is one anchor whose box is the cell and whose confidence is ``clip((0.40 - mean brightness) * 4, 0, 1)``.
Asphalt grey (~0.47) and the letterbox grey (0.447) score 0; a dark pothole filling a cell (~0.15) scores
~1. So a test knows exactly what will be found, whatever the shipped model's accuracy is.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GRID = 4
IMGSZ = 64
CELL = IMGSZ // GRID


def grid_model_build(path: Path, *, conf_recommended: float = 0.5) -> Path:
    """Write the tiny ONNX detector (and its ``.json`` card with the recommended confidence) to ``path``."""
    import onnx
    from onnx import TensorProto, helper

    n = GRID * GRID
    centres = [(c * CELL + CELL / 2, r * CELL + CELL / 2) for r in range(GRID) for c in range(GRID)]
    boxes = np.array(
        [[cx for cx, _ in centres], [cy for _, cy in centres], [CELL] * n, [CELL] * n], dtype=np.float32
    ).reshape(1, 4, n)
    inits = [
        helper.make_tensor("boxes", TensorProto.FLOAT, boxes.shape, boxes.ravel().tolist()),
        helper.make_tensor("shape", TensorProto.INT64, [3], [0, 1, n]),
        helper.make_tensor("thr", TensorProto.FLOAT, [], [0.40]),
        helper.make_tensor("gain", TensorProto.FLOAT, [], [4.0]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
    ]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["grey"], axes=[1], keepdims=1),
        helper.make_node("AveragePool", ["grey"], ["cells"], kernel_shape=[CELL, CELL], strides=[CELL, CELL]),
        helper.make_node("Reshape", ["cells", "shape"], ["flat"]),
        helper.make_node("Sub", ["thr", "flat"], ["dark"]),
        helper.make_node("Mul", ["dark", "gain"], ["scaled"]),
        helper.make_node("Clip", ["scaled", "zero", "one"], ["score"]),
        helper.make_node("Mul", ["flat", "zero"], ["nil"]),
        helper.make_node("Add", ["nil", "boxes"], ["xywh"]),
        helper.make_node("Concat", ["xywh", "score"], ["output0"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "grid_detector",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, IMGSZ, IMGSZ])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", 5, n])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="roads-tests")
    model.ir_version = 8
    for key, value in {
        "names": "{0: 'pothole'}",
        "imgsz": f"[{IMGSZ}, {IMGSZ}]",
        "stride": "32",
        "task": "detect",
        "description": "test grid detector (dark cells)",
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    path.with_suffix(".json").write_text(json.dumps({"conf_recommended": conf_recommended}))
    return path


def pothole_photo(
    *, seed: int = 1, size: tuple[int, int] = (640, 480), cell: tuple[int, int] = (1, 2), plain: bool = False
) -> np.ndarray:
    """A road picture whose letterboxed grid cell ``(col, row)`` is filled by a dark pothole (so the tiny model
    finds exactly that cell), with the rest asphalt grey. ``plain``: flat grey instead of the generated asphalt
    texture (which takes seconds to draw at 12 MP)."""
    from agents.roads.domain.synthetic import road_photo

    w, h = size
    scale = IMGSZ / max(w, h)
    pad_y = (IMGSZ - h * scale) / 2
    pad_x = (IMGSZ - w * scale) / 2
    col, row = cell
    # The cell's extent in original pixels, shrunk slightly so the blob stays inside the cell.
    x0, x1 = (col * CELL - pad_x) / scale, ((col + 1) * CELL - pad_x) / scale
    y0, y1 = (row * CELL - pad_y) / scale, ((row + 1) * CELL - pad_y) / scale
    if plain:
        img = np.empty((h, w, 3), dtype=np.uint8)
        img[:] = (122, 120, 116)
    else:
        img, _ = road_photo(seed=seed, size=size, holes=[])
    img[max(0, int(y0)) : int(y1), max(0, int(x0)) : int(x1)] = (30, 28, 26)
    return img
