"""Masks -> YOLO boxes (vision.masks) on small generated masks, and a few real survey frames."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from vision.masks import (
    RULES,
    MaskReport,
    boxes_union_overlapping,
    data_yamls_write,
    main,
    mask_boxes,
    masks_convert,
    negatives_write,
    pavement_image,
    sheet_write,
    yolo_import,
)
from vision.rdd2022 import ConversionError

W, H = 768, 480


def _blank() -> np.ndarray:
    return np.zeros((H, W), np.uint8)


def test_two_pieces_of_one_crack_merge_and_far_pieces_do_not():
    mask = _blank()
    cv2.line(mask, (100, 100), (100, 200), 255, 2)
    cv2.line(mask, (104, 210), (110, 320), 255, 2)  # the same crack after a 10 px break
    cv2.line(mask, (500, 100), (500, 200), 255, 2)  # another crack, 400 px away
    boxes, dropped = mask_boxes(mask=mask, rules=RULES[1])
    assert dropped == 0
    assert len(boxes) == 2
    first = boxes[0]
    # one box over both pieces, as tight as the pixels (dilation joins, it does not grow the box)
    assert first[0] == 99 and first[1] == 99 and first[2] <= 112 and first[3] == 322


def test_tiny_blob_is_dropped_and_counted():
    mask = _blank()
    cv2.circle(mask, (300, 300), 3, 255, -1)  # 7 px across: under 2.5% of the diagonal for a crack
    cv2.circle(mask, (600, 300), 25, 255, -1)
    boxes, dropped = mask_boxes(mask=mask, rules=RULES[1])
    assert dropped == 1
    assert boxes == [(575, 275, 626, 326)]
    assert mask_boxes(mask=_blank(), rules=RULES[0]) == ([], 0)


def test_overlapping_boxes_become_their_union():
    assert boxes_union_overlapping([(0, 0, 10, 10), (5, 5, 20, 20), (30, 30, 40, 40)]) == [
        (0, 0, 20, 20),
        (30, 30, 40, 40),
    ]
    # a chain: a overlaps b, b overlaps c, a does not overlap c
    assert boxes_union_overlapping([(0, 0, 10, 10), (9, 0, 20, 10), (19, 0, 30, 10)]) == [(0, 0, 30, 10)]


def _survey_sample(root, names=("r1", "r2", "r3", "r4", "r5", "r6")):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, name in enumerate(names):
        cv2.imwrite(str(root / "images" / f"{name}.jpg"), np.full((H, W, 3), 100, np.uint8))
        crack, pothole = _blank(), _blank()
        if i % 2 == 0:
            cv2.line(crack, (50, 50), (50, 300), 255, 3)
        if i % 3 == 0:
            cv2.ellipse(pothole, (400, 300), (40, 20), 0, 0, 360, 255, -1)
        cv2.imwrite(str(root / "masks" / f"{name}_crack.png"), crack)
        cv2.imwrite(str(root / "masks" / f"{name}_pothole.png"), pothole)


def test_convert_writes_labels_split_by_photo_and_reports_bad_masks(tmp_path):
    src = tmp_path / "src"
    _survey_sample(src)
    (src / "masks" / "r2_crack.png").unlink()  # missing: kept without crack boxes
    (src / "masks" / "r3_pothole.png").write_bytes(b"not a png")  # unreadable: kept without pothole boxes
    cv2.imwrite(str(src / "masks" / "r5_crack.png"), np.zeros((10, 10), np.uint8))  # other size
    (src / "images" / "r7.jpg").write_bytes(b"broken")  # unreadable photo: skipped
    report = masks_convert(src=src, dst=tmp_path / "out", report=MaskReport(), val_fraction=0.0)
    assert report.images["survey"] == {"train": 6}
    assert report.boxes["survey"] == {"crack": 2, "pothole": 2}  # cracks r1, r3 (r5's ignored); potholes r1, r4
    problems = dict(report.problems)
    assert "crack mask missing" in problems["r2_crack.png"]
    assert "pothole mask unreadable" in problems["r3_pothole.png"]
    assert "!= photo 768x480" in problems["r5_crack.png"]
    assert "skipped" in problems["r7.jpg"]
    labels = (tmp_path / "out" / "labels" / "train" / "survey_r1.txt").read_text().splitlines()
    assert labels[0].startswith("0 ") and labels[1].startswith("1 ")
    cls, cx, cy, bw, bh = labels[0].split()
    assert abs(float(cx) * W - 400.5) < 1 and abs(float(bw) * W - 81) < 1.5 and abs(float(bh) * H - 41) < 1.5
    # defect-free: every mask read and blank (r6); r2 and r5 have blank pothole masks but no usable crack mask
    assert report.clean["train"] == ["survey_r6.jpg"]


def test_split_is_stable_and_by_photo(tmp_path):
    src = tmp_path / "src"
    names = tuple(f"frame{i:03d}" for i in range(40))
    _survey_sample(src, names=names)
    picks = []
    for run in ("a", "b"):
        masks_convert(src=src, dst=tmp_path / run, report=MaskReport(), val_fraction=0.25)
        picks.append(sorted(p.name for p in (tmp_path / run / "images" / "val").iterdir()))
    assert picks[0] == picks[1]
    assert 4 <= len(picks[0]) <= 18  # about a quarter of 40
    for name in picks[0]:  # photo and labels travel together
        assert (tmp_path / "a" / "labels" / "val" / name.replace(".jpg", ".txt")).is_file()
        assert not (tmp_path / "a" / "images" / "train" / name).exists()


def test_combined_dataset_keeps_phone_split_and_adds_negatives(tmp_path):
    src, phone, dst = tmp_path / "src", tmp_path / "phone", tmp_path / "out"
    _survey_sample(src)
    for split in ("train", "valid"):
        (phone / split / "images").mkdir(parents=True)
        (phone / split / "labels").mkdir(parents=True)
        cv2.imwrite(str(phone / split / "images" / "p1.jpg"), np.full((64, 64, 3), 90, np.uint8))
        (phone / split / "labels" / "p1.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    cv2.imwrite(str(phone / "valid" / "images" / "p2.jpg"), np.full((64, 64, 3), 90, np.uint8))  # no label file
    report = MaskReport()
    masks_convert(src=src, dst=dst, report=report, val_fraction=0.0)
    yolo_import(src=phone, dst=dst, report=report)
    negatives_write(dst=dst, report=report, count=4)
    data_yamls_write(dst=dst, report=report)
    assert report.images["phone"] == {"train": 1, "val": 2}
    assert report.images["pavement"] == {"train": 4, "val": 1}
    assert "label file missing" in dict(report.problems)["valid/labels/p2.txt"]
    assert (dst / "labels" / "val" / "phone_p1.txt").read_text() == "0 0.5 0.5 0.2 0.2\n"
    assert (dst / "labels" / "train" / "pavement_0000000.txt").read_text() == ""
    assert (dst / "val_phone.txt").read_text().splitlines() == ["./images/val/phone_p1.jpg", "./images/val/phone_p2.jpg"]
    assert (dst / "val_clean.txt").read_text().splitlines() == ["./images/val/pavement_1000000.jpg"]
    assert "names:\n  0: pothole\n  1: crack\n" in (dst / "data_phone.yaml").read_text()
    assert "val: val_phone.txt" in (dst / "data_phone.yaml").read_text()


def test_a_second_source_converted_into_the_same_dataset_keeps_the_first(tmp_path):
    first, second, dst = tmp_path / "survey", tmp_path / "city", tmp_path / "out"
    _survey_sample(first)
    _survey_sample(second)
    for src, part in ((first, "survey"), (second, "city")):
        assert main([str(src), str(dst), "--part", part, "--val-fraction", "1.0", "--json"]) == 0
    assert (dst / "val_survey.txt").read_text().count("\n") == 6 == (dst / "val_city.txt").read_text().count("\n")
    # each source's blank frames (r2, r6) stay on the defect-free list
    assert (dst / "val_clean.txt").read_text().splitlines() == [
        f"./images/val/{part}_{r}.jpg" for part in ("city", "survey") for r in ("r2", "r6")
    ]
    assert main([str(first), str(dst), "--part", "my_city"]) == 2


def test_pavement_is_deterministic_and_textured():
    a = pavement_image(seed=3, width=W, height=H)
    assert a.shape == (H, W, 3) and a.dtype == np.uint8
    assert np.array_equal(a, pavement_image(seed=3, width=W, height=H))
    assert not np.array_equal(a, pavement_image(seed=4, width=W, height=H))
    assert a[H // 2:].std() > 5  # grain, not a flat grey


def test_cli_reports_missing_source(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    assert "no photos" in capsys.readouterr().err
    with pytest.raises(ConversionError):
        masks_convert(src=tmp_path / "nope", dst=tmp_path / "out", report=MaskReport())


@pytest.mark.shared
def test_real_survey_frames(shared_dir, tmp_path, capsys):
    base = shared_dir / "datasets" / "road_survey_br"
    if not (base / "images").is_dir():
        pytest.skip(f"../shared data absent: no survey frames under {base}")
    sample = tmp_path / "sample"
    (sample / "images").mkdir(parents=True)
    (sample / "masks").mkdir()
    # every 25th frame, those with a pothole (about a quarter of the frames; most have cracks too)
    frames = [f for f in sorted((base / "images").glob("*.jpg"))[::25]
              if (cv2.imread(str(base / "masks" / f"{f.stem}_pothole.png"), cv2.IMREAD_GRAYSCALE) > 127).any()][:6]
    for frame in frames:
        (sample / "images" / frame.name).symlink_to(frame)
        for kind in ("crack", "pothole"):
            (sample / "masks" / f"{frame.stem}_{kind}.png").symlink_to(base / "masks" / f"{frame.stem}_{kind}.png")
    out = tmp_path / "out"
    assert main([str(sample), str(out), "--link", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(report["images"]["survey"].values()) == len(frames)
    assert report["problems"] == []
    labels = [line.split() for p in (out / "labels").rglob("*.txt") for line in p.read_text().splitlines()]
    assert {row[0] for row in labels} == {"0", "1"}
    assert all(0 < float(v) <= 1 for row in labels for v in row[1:])
    sheet = sheet_write(src=sample, out=tmp_path / "sheet.png", count=2)
    assert sheet.stat().st_size > 0

