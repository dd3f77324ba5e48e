"""Every model's class names map onto the agent's two defect classes, "pothole" and "crack": RDD2022 codes
and any name containing the word; other classes are dropped, a model with none that maps is refused."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vision.classes import class_canonical
from vision.cli import detect_paths
from vision.engine import Detector, ModelLoadError, classes_map
from vision.tests.helpers import fixed_model_build

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Pothole", "pothole"), ("pothole", "pothole"), ("POTHOLES", "pothole"), ("D40", "pothole"),
        ("d40", "pothole"), ("crack", "crack"), ("Longitudinal crack", "crack"), ("alligator_crack", "crack"),
        ("D00", "crack"), ("D10", "crack"), ("d20 ", "crack"), ("Cracks", "crack"),
        ("D43", None), ("D44", None), ("manhole", None), ("class0", None), ("D4", None),
    ],
)
def test_class_canonical(name, expected):
    assert class_canonical(name) == expected


def test_classes_map_keeps_the_known_and_says_which_are_dropped(caplog):
    with caplog.at_level(logging.WARNING, logger="vision.engine"):
        mapped = classes_map(names={0: "D00", 1: "D10", 2: "D20", 3: "D40", 4: "D44"}, model_name="rdd.onnx")
    assert mapped == {0: "crack", 1: "crack", 2: "crack", 3: "pothole"}
    assert "rdd.onnx" in caplog.text and "D44" in caplog.text


def test_a_model_with_no_defect_class_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="pothole.*crack"):
        Detector(model_path=fixed_model_build(tmp_path / "signs.onnx", names={0: "stop sign", 1: "D43"}),
                 providers=["CPUExecutionProvider"])


def test_detections_carry_the_defect_class_and_unknown_classes_are_dropped(tmp_path):
    names = {0: "D00", 1: "Pothole", 2: "D44", 3: "alligator crack"}
    det = Detector(model_path=fixed_model_build(tmp_path / "four.onnx", names=names),
                   providers=["CPUExecutionProvider"])
    assert det.names == names and det.classes == {0: "crack", 1: "pothole", 3: "crack"}
    [result] = det.detect([np.full((64, 64, 3), 128, dtype=np.uint8)], conf=0.5).results
    found = sorted((d.class_id, d.class_name) for d in result.detections)
    assert found == [(0, "crack"), (1, "pothole"), (3, "crack")]


def test_detect_json_keeps_its_shape_with_the_two_classes(tmp_path):
    model = fixed_model_build(tmp_path / "two.onnx", names={0: "pothole", 1: "crack"})
    Image.fromarray(np.full((48, 64, 3), 120, dtype=np.uint8)).save(tmp_path / "road.jpg")
    [record] = detect_paths(paths=[tmp_path / "road.jpg"], model_path=model, conf=0.5)
    assert set(record) == {"image", "model", "detections"}
    assert sorted(d["class"] for d in record["detections"]) == ["crack", "pothole"]
    assert all(set(d) == {"class", "confidence", "box"} for d in record["detections"])


def test_detect_cli_on_the_shipped_model_says_pothole_or_crack(shipped_model, tmp_path):
    from vision.tests.helpers import road_image

    Image.fromarray(road_image(seed=5, size=(320, 480), holes=3)[0]).save(tmp_path / "road.jpg")
    proc = subprocess.run(
        [sys.executable, "-m", "vision.detect", str(tmp_path / "road.jpg"), "--model", str(shipped_model),
         "--conf", "0.01", "--json"],
        capture_output=True, text=True, cwd=REPO_ROOT, check=True,
    )
    [record] = json.loads(proc.stdout)
    assert record["detections"], "at conf 0.01 the shipped model boxes something on a dark-blob road"
    assert {d["class"] for d in record["detections"]} <= {"pothole", "crack"}
