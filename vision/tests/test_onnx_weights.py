"""Trainable weights rebuilt from a shipped ONNX export: the same network in eval mode, and training goes on."""

from __future__ import annotations

import ast
import json

import numpy as np
import onnxruntime as ort
import pytest

from vision.boxes import letterbox_apply
from vision.tests.helpers import road_image, ultralytics_load


def _input(session: ort.InferenceSession, seed: int) -> np.ndarray:
    size = ast.literal_eval(session.get_modelmeta().custom_metadata_map["imgsz"])
    img, _ = road_image(seed=seed, size=(300, 420))
    canvas, _ = letterbox_apply(image=img, new_hw=tuple(size))
    return (canvas.transpose(2, 0, 1)[None].astype(np.float32) / 255.0).copy()


def test_rebuilt_model_computes_what_the_onnx_graph_computes(model_path, tiny_dataset):
    ultralytics_load()
    import torch

    from vision.onnx_weights import calibration_batches, onnx_detection_model

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    x = _input(session, seed=5)
    reference = session.run(None, {session.get_inputs()[0].name: x})[0]
    images = sorted((tiny_dataset.parent / "train" / "images").glob("*.jpg"))
    imgsz = x.shape[-1]
    for calibration in (None, calibration_batches(images=images, imgsz=imgsz, batch=4)):
        model = onnx_detection_model(onnx_path=model_path, calibration=calibration).eval()
        with torch.no_grad():
            out = model(torch.from_numpy(x))[0].numpy()
        assert out.shape == reference.shape
        assert np.abs(out - reference).max() <= 1e-4 * max(1.0, np.abs(reference).max())
    # calibrated: the norms carry the images' statistics, not the identity (so training-mode batches behave)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and sum(float((n.running_var - 1).abs().max()) > 1e-3 for n in norms) > len(norms) // 2
    assert model.names == ast.literal_eval(session.get_modelmeta().custom_metadata_map["names"])


def test_wrong_architecture_or_file_is_refused(model_path, tmp_path):
    ultralytics_load()
    from vision.onnx_weights import OnnxWeightsError, onnx_detection_model

    with pytest.raises(OnnxWeightsError, match="does not match yolov8s.yaml"):
        onnx_detection_model(onnx_path=model_path, architecture="yolov8s.yaml")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(OnnxWeightsError, match="not a readable ONNX model"):
        onnx_detection_model(onnx_path=junk)


def test_training_goes_on_from_a_shipped_onnx(tiny_run, tiny_dataset, tmp_path):
    """`--init-weights x.onnx`: the tiny model's export trains on for an epoch; the lineage counts its epochs."""
    from vision.train import _lineage_epochs, model_train

    shipped = tmp_path / "shipped.onnx"
    shipped.write_bytes(tiny_run.onnx_path.read_bytes())
    shipped.with_suffix(".json").write_text(json.dumps({"training": {"epochs_total": 7}}))
    run_dir = model_train(
        data=tiny_dataset, imgsz=64, epochs=1, out=tmp_path / "run", batch=4, workers=0, cache=False,
        verbose=False, init_weights=shipped,
    )
    assert (run_dir / "weights" / "init.pt").is_file()
    assert (run_dir / "weights" / "last.pt").is_file()
    assert json.loads((run_dir / "weights" / "init.json").read_text())["epochs_total"] == 7
    assert _lineage_epochs(run_dir) == 1 + 7
