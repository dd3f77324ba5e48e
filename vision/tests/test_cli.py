"""``python -m vision.detect`` and the function the Django command calls."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from vision.cli import detect_paths, paths_expand
from vision.tests.helpers import road_image

REPO_ROOT = Path(__file__).resolve().parents[2]


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for name, seed in (("b.jpg", 1), ("a.png", 2), ("sub/c.jpeg", 3)):
        Image.fromarray(road_image(seed=seed, size=(120, 160))[0]).save(folder / name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    return folder


def test_paths_expand_sorts_and_filters(tmp_path):
    folder = _folder(tmp_path)
    files = paths_expand(paths=[folder])
    assert [p.relative_to(folder).as_posix() for p in files] == ["a.png", "b.jpg", "broken.jpg", "sub/c.jpeg"]


def test_detect_paths_reports_errors_and_keeps_going(tmp_path, model_path):
    folder = _folder(tmp_path)
    records = detect_paths(paths=[folder], conf=0.01, model_path=model_path)
    assert [Path(r["image"]).name for r in records] == ["a.png", "b.jpg", "broken.jpg", "c.jpeg"]
    broken = records[2]
    assert set(broken) == {"image", "error"}
    for rec in records[:2] + records[3:]:
        assert rec["model"] == model_path.name
        for d in rec["detections"]:
            assert set(d) == {"class", "confidence", "box"} and len(d["box"]) == 4 and d["confidence"] >= 0.01


def test_cli_json_stdout_only(tmp_path, model_path):
    folder = _folder(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vision.detect",
            str(folder / "b.jpg"),
            str(folder / "broken.jpg"),
            "--model",
            str(model_path),
            "--conf",
            "0.2",
            "--json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr  # one unreadable image
    data = json.loads(proc.stdout)
    assert [Path(r["image"]).name for r in data] == ["b.jpg", "broken.jpg"]
    assert "detections" in data[0] and "error" in data[1]
    assert all(d["confidence"] >= 0.2 for d in data[0]["detections"])


def test_cli_missing_model_exit_2(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vision.detect",
            str(tmp_path),
            "--model",
            str(tmp_path / "nope.onnx"),
            "--json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "model not found" in proc.stderr and proc.stdout == ""
