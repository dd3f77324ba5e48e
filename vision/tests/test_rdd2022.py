"""RDD2022 (Pascal VOC) -> YOLO conversion on a tiny sample written by the test."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from vision.rdd2022 import ConversionError, main, rdd2022_convert

VOC = """<annotation><filename>{name}</filename><size><width>600</width><height>400</height><depth>3</depth></size>
{objects}</annotation>"""
OBJ = "<object><name>{label}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"


def _sample(root):
    split = root / "Japan" / "train"
    (split / "images").mkdir(parents=True)
    (split / "annotations" / "xmls").mkdir(parents=True)
    for name in ("Japan_000001.jpg", "Japan_000002.jpg"):
        Image.new("RGB", (600, 400), (90, 90, 90)).save(split / "images" / name)
    objs = "".join(
        OBJ.format(label=lab, x0=a, y0=b, x1=c, y1=d)
        for lab, a, b, c, d in [
            ("D00", 0, 0, 300, 200),
            ("D40", 300, 100, 600, 400),
            ("D43", 10, 10, 50, 50),
            ("D20", 100, 100, 100, 150),
            ("D10", 550, 350, 700, 450),
        ]
    )
    (split / "annotations" / "xmls" / "Japan_000001.xml").write_text(
        VOC.format(name="Japan_000001.jpg", objects=objs)
    )
    (split / "annotations" / "xmls" / "Japan_000002.xml").write_text(
        VOC.format(name="Japan_000002.jpg", objects="")
    )
    (split / "annotations" / "xmls" / "Japan_000003.xml").write_text(
        VOC.format(name="Japan_000003.jpg", objects="")
    )
    (split / "annotations" / "xmls" / "broken.xml").write_text("<annotation><filename>")


def test_convert_tiny_voc_sample(tmp_path):
    _sample(tmp_path / "src")
    report = rdd2022_convert(src=tmp_path / "src", dst=tmp_path / "out", val_fraction=0.0)
    assert report.images == {"train": 2, "val": 0}
    assert dict(report.boxes) == {"D00": 1, "D40": 1, "D10": 1}
    assert report.ignored_labels["D43"] == 1 and report.ignored_labels["D20 (degenerate box)"] == 1
    skipped = dict(report.skipped)
    assert "image Japan_000003.jpg not found" in skipped["Japan/train/annotations/xmls/Japan_000003.xml"]
    assert "unreadable XML" in skipped["Japan/train/annotations/xmls/broken.xml"]
    labels = (tmp_path / "out" / "labels" / "train" / "Japan_000001.txt").read_text().split("\n")
    assert labels[0] == "0 0.250000 0.250000 0.500000 0.500000"
    assert labels[1] == "3 0.750000 0.625000 0.500000 0.750000"
    assert labels[2] == "1 0.958333 0.937500 0.083333 0.125000"  # clipped to the image
    assert (tmp_path / "out" / "labels" / "train" / "Japan_000002.txt").read_text() == ""
    assert (tmp_path / "out" / "images" / "train" / "Japan_000001.jpg").is_file()
    data = (tmp_path / "out" / "data.yaml").read_text()
    assert "3: Pothole" in data and "0: Longitudinal crack" in data and "nc: 4" in data


def test_cli_json_and_errors(tmp_path, capsys):
    _sample(tmp_path / "src")
    assert main([str(tmp_path / "src"), str(tmp_path / "out"), "--json", "--link"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sum(out["images"].values()) == 2 and out["ignored_labels"]["D43"] == 1
    with pytest.raises(ConversionError):
        rdd2022_convert(src=tmp_path / "missing", dst=tmp_path / "o2")
    assert main([str(tmp_path / "missing"), str(tmp_path / "o3")]) == 2
