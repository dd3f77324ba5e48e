"""Fixtures for the vision tests: generated images, a tiny trained model, the shipped model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from vision.engine import DEFAULT_MODEL
from vision.tests.helpers import road_image, ultralytics_load

POTHOLES_VALID = Path("datasets/potholes/valid/images")
# Validation photos with one clear pothole each, found by the shipped model at its recommended threshold.
VALID_PHOTOS = (
    "pothole_172_jpg.rf.faa5fad82565e8f3dc3372277ddbf88b.jpg",
    "pothole_299_jpg.rf.d5587138357827045fd8cff888e34d9f.jpg",
    "pothole_227_jpg.rf.ca4e4b57079ee6477698b8931826d801.jpg",
    "pothole_319_jpg.rf.06d89159362cdc05ea1f9a66de6cc2ee.jpg",
)


# Session fixtures that train a model (tens of seconds of CPU each): under pytest-xdist every test that uses
# one runs in the same worker (`make test` passes `--dist loadgroup`), so the model is trained once per run.
_TRAINING_FIXTURES = {"tiny_run", "masks_run"}


def pytest_collection_modifyitems(items):
    for item in items:
        if _TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("vision-training"))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A generated 8-image YOLO dataset; returns its data.yaml."""
    root = tmp_path_factory.mktemp("tiny_ds")
    for split in ("train", "valid"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
        for i in range(8 if split == "train" else 4):
            img, boxes = road_image(seed=i + (100 if split == "valid" else 0))
            Image.fromarray(img).save(root / split / "images" / f"road_{i}.jpg", quality=90)
            (root / split / "labels" / f"road_{i}.txt").write_text(
                "".join(f"0 {cx:.5f} {cy:.5f} {bw:.5f} {bh:.5f}\n" for cx, cy, bw, bh in boxes)
            )
    yaml_path = root / "data.yaml"
    yaml_path.write_text(
        f"train: {root / 'train' / 'images'}\nval: {root / 'valid' / 'images'}\nnc: 1\nnames:\n  0: Pothole\n"
    )
    return yaml_path


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory):
    """Train yolov8n.yaml for one epoch at 64 px and export it (the 'tiny epoch'); returns the ExportResult."""
    ultralytics_load()
    from vision.train import model_train, run_export

    out = tmp_path_factory.mktemp("tiny_run") / "run"
    run_dir = model_train(
        data=tiny_dataset,
        model="yolov8n.yaml",
        imgsz=64,
        epochs=1,
        out=out,
        batch=4,
        workers=0,
        cache=False,
        verbose=False,
        aug={"mixup": 0.05, "degrees": 2.0},  # reach ultralytics and the card (test_train)
    )
    return run_export(run_dir=run_dir, data=tiny_dataset, imgsz=64)


@pytest.fixture(scope="session")
def model_path(request) -> Path:
    """The shipped model when present, else the tiny trained one."""
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL
    return request.getfixturevalue("tiny_run").onnx_path


@pytest.fixture(scope="session")
def shipped_model() -> Path:
    """The shipped model (or the one named by VISION_TEST_MODEL); its absence is a broken checkout."""
    path = Path(os.environ.get("VISION_TEST_MODEL") or DEFAULT_MODEL)
    if not path.is_file():
        pytest.fail(f"{path} is missing: the trained model ships in the repository (python -m vision.train ... --ship)")
    return path


@pytest.fixture(scope="session")
def valid_photos(shared_dir) -> list[Path]:
    """A few real validation photos from ../shared (640x640, one clear pothole each)."""
    base = shared_dir / POTHOLES_VALID
    photos = [base / name for name in VALID_PHOTOS if (base / name).is_file()]
    if not photos:
        pytest.skip(f"../shared has no pothole validation photos under {base}")
    return photos
