"""Per-source, per-class evaluation and the two-class model card, on a tiny model trained on a dataset that
vision.masks builds from generated masks (real ultralytics training, export, engine run)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vision.card import evaluation_section, history_rows
from vision.masks import MaskReport, data_yamls_write, masks_convert, negatives_write, yolo_import
from vision.tests.helpers import road_image, ultralytics_load

W, H = 192, 120


def _frames(root, count: int) -> None:
    """Survey-like frames: a dark blob (pothole) and a thin dark line (crack) drawn where the masks say."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        img = np.clip(rng.normal(120, 12, (H, W, 3)), 0, 255).astype(np.uint8)
        pothole, crack = np.zeros((H, W), np.uint8), np.zeros((H, W), np.uint8)
        if i % 4 != 3:  # every fourth frame is defect-free
            cx, cy = int(rng.integers(30, W - 30)), int(rng.integers(30, H - 30))
            cv2.ellipse(pothole, (cx, cy), (18, 10), 0, 0, 360, 255, -1)
            x = (cx + W // 2) % W
            cv2.line(crack, (x, 5), (x + 6, H - 5), 255, 2)
            img[pothole > 0] = 40
            img[crack > 0] = 30
        cv2.imwrite(str(root / "images" / f"f{i:02d}.jpg"), img)
        cv2.imwrite(str(root / "masks" / f"f{i:02d}_pothole.png"), pothole)
        cv2.imwrite(str(root / "masks" / f"f{i:02d}_crack.png"), crack)


def _phone(root) -> None:
    for split, seeds in (("train", range(6)), ("valid", range(100, 103))):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for seed in seeds:
            img, boxes = road_image(seed=seed)
            cv2.imwrite(str(root / split / "images" / f"p{seed}.jpg"), img[..., ::-1])
            (root / split / "labels" / f"p{seed}.txt").write_text(
                "".join(f"0 {cx:.5f} {cy:.5f} {bw:.5f} {bh:.5f}\n" for cx, cy, bw, bh in boxes)
            )


@pytest.fixture(scope="session")
def masks_run(tmp_path_factory):
    """A vision.masks dataset (survey frames, phone photos, pavement), one epoch at 64 px, exported and shipped
    into a temporary folder; returns (ExportResult, ship dir, MaskReport)."""
    ultralytics_load()
    from vision.train import model_train, run_export

    root = tmp_path_factory.mktemp("masks_run")
    _frames(root / "survey", 16)
    _phone(root / "phone")
    report = MaskReport()
    masks_convert(src=root / "survey", dst=root / "ds", report=report, val_fraction=0.3)
    yolo_import(src=root / "phone", dst=root / "ds", report=report)
    negatives_write(dst=root / "ds", report=report, count=4)
    data = data_yamls_write(dst=root / "ds", report=report)
    run = model_train(data=data, imgsz=64, epochs=1, out=root / "run", batch=4, workers=0, cache=False, verbose=False)
    ship = root / "ship"
    return run_export(run_dir=run, data=data, imgsz=64, ship_dir=ship), ship, report


def test_export_measures_each_source_and_class_and_counts_false_boxes(masks_run):
    result, ship, report = masks_run
    meta = json.loads((ship / "road_damage.json").read_text())
    assert meta["names"] == {"0": "pothole", "1": "crack"}
    splits = meta["evaluation"]["splits"]
    assert set(splits) == {"phone", "survey"}
    assert splits["phone"]["images"] == 3 and set(splits["phone"]["classes"]) <= {"pothole"}
    for figures in (c for s in splits.values() for c in s["classes"].values()):
        assert 0 <= figures["map50"] <= 1 and 0 <= figures["recall"] <= 1 and figures["instances"] > 0
    fp = meta["evaluation"]["false_boxes"]
    assert fp["photos"] == len(report.clean["val"]) and fp["conf"] == meta["conf_recommended"]
    assert fp["per_20"] == round(20 * fp["boxes"] / fp["photos"], 2)
    assert sum(fp["sources"].values()) == fp["photos"] and fp["sources"]["pavement"] == 1
    card = (ship / "road_damage.md").read_text()
    assert "pothole and crack detector" in card and "`1 = crack` (RDD2022 D00/D10/D20" in card
    assert "Passos" in card and "MIT licence" in card and "CC BY 4.0" in card and "road_damage_boxes.png" in card
    assert "| pothole mAP50 on phone >= 0.80 |" in card and "false boxes per 20 photos" in card
    assert meta["history"][-1]["stage"] == "run" and "phone pothole" in meta["history"][-1]["result"]


def test_a_model_of_other_classes_is_not_shipped_over_without_force(masks_run, tiny_run, tiny_dataset):
    from vision.train import run_export

    _, ship, _ = masks_run
    before = (ship / "road_damage.onnx").read_bytes()
    run_dir = tiny_run.onnx_path.parent.parent  # a one-class "Pothole" model
    refused = run_export(run_dir=run_dir, data=tiny_dataset, imgsz=64, ship_dir=ship)
    assert refused.extra["shipped"] is False and (ship / "road_damage.onnx").read_bytes() == before


def test_history_keeps_earlier_stages_and_replaces_a_stage_exported_again(tmp_path):
    from vision.train import ValMetrics

    old = tmp_path / "road_damage.json"
    old.write_text(json.dumps({
        "names": {"0": "Pothole"},
        "validation": {"map50": 0.7936, "images": 24},
        "training": {"run_dir": "/x/potholes416_s5", "epochs_total": 492},
    }))
    metrics = ValMetrics(map50=0.5, map50_95=0.3, precision=0.6, recall=0.5, f1_best=0.55, conf_recommended=0.3,
                         images=274, instances=500)
    evaluation = {"splits": {"phone": {"images": 24, "classes": {"pothole": {"map50": 0.75}}}},
                  "false_boxes": {"per_20": 0.4}}
    rows = history_rows(previous=old, extra={"run_dir": "/r/survey416", "epochs_run": 12}, metrics=metrics,
                        evaluation=evaluation)
    assert rows[0] == {"stage": "potholes416_s5 and before", "epochs": 492,
                       "result": "Pothole: mAP50 0.794 on 24 photos", "shipped": True}
    assert rows[1]["result"] == "mAP50 phone pothole 0.750; 0.4 false boxes/20 clean photos"
    old.write_text(json.dumps({"history": rows}))
    again = history_rows(previous=old, extra={"run_dir": "/r/survey416", "epochs_run": 20}, metrics=metrics,
                         evaluation=None)
    assert [r["stage"] for r in again] == ["potholes416_s5 and before", "survey416"] and again[1]["epochs"] == 20


def test_aims_are_judged_with_their_intervals():
    figures = {"map50": 0.55, "map50_low": 0.4, "map50_high": 0.7, "precision": 0.7, "recall": 0.5, "instances": 30}
    evaluation = {
        "splits": {"survey": {"images": 200, "classes": {"crack": figures, "pothole": dict(figures, map50_high=0.58)}}},
        "false_boxes": {"photos": 52, "sources": {"pavement": 50, "survey": 2}, "boxes": 1, "photos_flagged": 1, "per_20": 0.38, "conf": 0.3},
    }
    text = evaluation_section(evaluation)
    assert "| crack mAP50 on survey >= 0.50 | 0.550 (0.40-0.70) | yes |" in text
    assert "| pothole mAP50 on survey >= 0.60 | 0.550 (0.40-0.58) | no |" in text
    assert "| pothole mAP50 on phone >= 0.80 | not measured | no |" in text
    assert "| fewer than 1 false box per 20 defect-free photos | 0.38 | yes |" in text
    assert "**0.38 false boxes per 20 photos**" in text
    assert "52 defect-free validation photos (50 generated pavement, 2 survey frames with blank masks)" in text
