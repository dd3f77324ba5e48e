"""Trainable weights back from a shipped ONNX detector, so training can go on from the model in the repository.

The repository ships only `vision/models/road_damage.onnx` (the `.pt` checkpoints stay in a git-ignored run
directory on the machine that trained them). To continue training elsewhere, `python -m vision.train
--init-weights vision/models/road_damage.onnx` rebuilds a PyTorch YOLO model from the ONNX graph's weights:

- The export fused each convolution with its batch norm (``conv(x) * g / s + (b - m * g / s)``), so the graph
  holds one weight and one bias per layer. Put into an unfused ultralytics model as conv weight W and a batch
  norm that passes ``W x`` through plus the bias, the model computes exactly the ONNX graph in eval mode.
- In training mode a batch norm normalises by the *batch's* statistics, which an identity norm would turn into
  a different network. So the norms are calibrated: over a few training images the per-channel mean ``mu``
  and variance ``var`` of each ``W x`` are measured and the norm is set to ``gamma = sqrt(var + eps)``,
  ``beta = mu + bias``, running statistics ``(mu, var)``. Eval output is unchanged (checked), and a training
  batch like the calibration images normalises back to about the same activations, so training resumes
  from the shipped model's accuracy instead of from a broken network.

Only YOLOv8/YOLO11 detection graphs exported by ultralytics (parameter names preserved) are supported; the
architecture YAML is read from the caller (default ``yolov8n.yaml``) and checked against the graph's shapes.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


class OnnxWeightsError(ValueError):
    """The ONNX file is not an ultralytics detection export this module can map back onto an architecture."""


def _onnx_read(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise OnnxWeightsError(f"{path}: not a readable ONNX model ({exc})") from exc
    weights = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer if i.name.startswith("model.")}
    meta = {p.key: p.value for p in graph.metadata_props}
    return weights, meta


def onnx_detection_model(*, onnx_path: Path, architecture: str = "yolov8n.yaml", calibration: Iterable | None = None):
    """A trainable ultralytics `DetectionModel` carrying the weights of an ultralytics ONNX export.

    `calibration` yields float tensors (N, 3, H, W) in [0, 1] used to calibrate the batch norms (module
    docstring); without it the norms stay identity (exact in eval mode, not suited to training)."""
    import torch
    from ultralytics.nn.modules.conv import Conv
    from ultralytics.nn.tasks import DetectionModel

    weights, meta = _onnx_read(Path(onnx_path))
    names = ast.literal_eval(meta["names"]) if "names" in meta else None
    if not names:
        raise OnnxWeightsError(f"{onnx_path}: no class names in the metadata (not an ultralytics export)")
    model = DetectionModel(architecture, nc=len(names), verbose=False)
    model.names = {int(k): v for k, v in names.items()}
    convs = {name: module for name, module in model.named_modules() if isinstance(module, Conv)}
    used: set[str] = set()
    with torch.no_grad():
        for name, module in convs.items():
            w, b = weights.get(f"{name}.conv.weight"), weights.get(f"{name}.conv.bias")
            if w is None or b is None or tuple(w.shape) != tuple(module.conv.weight.shape):
                raise OnnxWeightsError(
                    f"{onnx_path}: layer {name} does not match {architecture} "
                    f"(graph {None if w is None else tuple(w.shape)}, model {tuple(module.conv.weight.shape)})"
                )
            module.conv.weight.copy_(torch.from_numpy(w))
            bn = module.bn
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b))
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)  # (x - 0) / sqrt(1 - eps + eps) = x
            used |= {f"{name}.conv.weight", f"{name}.conv.bias"}
        # the rest are plain layers (the head's last convolutions, the fixed DFL): same names and shapes
        state = model.state_dict()
        for key, value in weights.items():
            if key in used:
                continue
            if key not in state or tuple(state[key].shape) != tuple(value.shape):
                raise OnnxWeightsError(f"{onnx_path}: parameter {key} has no place in {architecture}")
            state[key].copy_(torch.from_numpy(value))
            used.add(key)
    missing = [k for k, v in model.state_dict().items()
               if k not in used and not any(k.startswith(c + ".bn.") for c in convs) and v.dtype.is_floating_point]
    if missing:
        raise OnnxWeightsError(f"{onnx_path}: the graph lacks {len(missing)} parameters, e.g. {missing[:3]}")
    if calibration is not None:
        _norms_calibrate(model=model, convs=convs, batches=calibration)
    model.float()
    return model


def _norms_calibrate(*, model, convs: dict, batches: Iterable) -> None:
    """Set every norm so eval output stays the same and batch statistics match the calibration images."""
    import torch

    sums: dict[str, list] = {}

    def hook(name):
        def record(module, inputs, output):
            x = output.detach().double()
            s = sums.setdefault(name, [0, torch.zeros(x.shape[1], dtype=torch.float64),
                                       torch.zeros(x.shape[1], dtype=torch.float64)])
            s[0] += x.numel() // x.shape[1]
            s[1] += x.sum(dim=(0, 2, 3))
            s[2] += (x * x).sum(dim=(0, 2, 3))
        return record

    handles = [module.conv.register_forward_hook(hook(name)) for name, module in convs.items()]
    model.eval()
    seen = 0
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
                seen += len(batch)
    finally:
        for h in handles:
            h.remove()
    if not seen:
        raise OnnxWeightsError("no calibration images")
    with torch.no_grad():
        for name, module in convs.items():
            n, total, squares = sums[name]
            mu = total / n
            var = (squares / n - mu * mu).clamp_min(1e-6)
            bn = module.bn
            bias = bn.bias.double().clone()  # still the fused bias (identity norm)
            bn.running_mean.copy_(mu.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(torch.sqrt(var + bn.eps).float())
            bn.bias.copy_((mu + bias).float())
    logger.info("batch norms calibrated on %d images", seen)


def calibration_batches(*, images: Iterable[Path], imgsz: int, batch: int = 8, limit: int = 64):
    """Letterboxed float batches of up to `limit` images (the engine's own preprocessing)."""
    import torch

    from vision.boxes import letterbox_apply
    from vision.decode import image_decode

    chunk: list[np.ndarray] = []
    count = 0
    for path in images:
        if count >= limit:
            break
        try:
            rgb = image_decode(source=Path(path), fast=False).pixels
        except Exception:  # a bad calibration image is skipped, not fatal
            continue
        chunk.append(letterbox_apply(image=rgb, new_hw=(imgsz, imgsz))[0])
        count += 1
        if len(chunk) == batch:
            yield torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2).float() / 255.0
            chunk = []
    if chunk:
        yield torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2).float() / 255.0


def checkpoint_write(*, model, path: Path, train_args: dict | None = None, extra: dict | None = None) -> Path:
    """Save `model` as an ultralytics checkpoint (`YOLO(path)` loads it; `--init-weights` trains on from it);
    `extra` entries are stored beside ultralytics' own."""
    import copy
    import datetime as dt

    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "epoch": -1,
            "best_fitness": None,
            "model": copy.deepcopy(model).float(),
            "ema": None,
            "updates": 0,
            "optimizer": None,
            "train_args": dict(train_args or {"task": "detect"}),
            "date": dt.datetime.now(dt.UTC).isoformat(),
            "version": "city-ops vision.onnx_weights",
            **(extra or {}),
        },
        path,
    )
    return path
