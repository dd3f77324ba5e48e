"""Train the road-damage detector from scratch (CPU, offline) and export it to ONNX.

Usage::

    python -m vision.train --data ../shared/datasets/potholes --model yolov8n.yaml \
        --imgsz 416 --time 1.6 --device cpu --out vision/_work/runs/potholes
    python -m vision.train --export-only vision/_work/runs/potholes [--ship]

Ultralytics is driven strictly offline: ``YOLO_OFFLINE=1``, a project-local config dir that already holds the
fonts it would otherwise download, a model built from a ``.yaml`` (never a ``.pt`` name, which downloads weights),
``pretrained=False`` and ``amp=False`` (the AMP check downloads weights).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

VISION_DIR = Path(__file__).resolve().parent
REPO_ROOT = VISION_DIR.parent
WORK_DIR = VISION_DIR / "_work"
MODELS_DIR = VISION_DIR / "models"
DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "datasets" / "potholes"
FONT_SOURCE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
SHIPPED_NAME = "road_damage"
DATASET_CREDIT = (
    '"Pothole Detection" by Roboflow Universe user potholedetector-rksfu '
    "(https://universe.roboflow.com/potholedetector-rksfu/pothole-detection-vlkzu/dataset/1), CC BY 4.0"
)
SURVEY_CREDIT = (
    '"Cracks and Potholes in Road Images Dataset" by Bianka Tallita Passos, Mateus Junior Cassaniga, Anita Maria'
    " da Rocha Fernandes, Kátya Balvedi Medeiros and Eros Comunello (University of Itajaí Valley, UNIVALI;"
    " https://github.com/biankatpas/Cracks-and-Potholes-in-Road-Images-Dataset), MIT licence, Copyright (c) 2020"
    " Bianka Passos; photos by Brazil's National Department of Transport Infrastructure (DNIT)"
)


class TrainError(Exception):
    """Raised when the training inputs are unusable (missing dataset, missing run directory...)."""


# Ultralytics' augmentation and loss settings that `--aug KEY=VALUE` may change (all numbers). The list is
# closed on purpose: a typo ("mixp=0.1") would otherwise be passed on and fail deep inside ultralytics, or a
# setting that downloads (pretrained, model) could slip in.
AUG_KEYS = (
    "hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale", "shear", "perspective", "flipud", "fliplr",
    "mosaic", "mixup", "cutmix", "multi_scale", "box", "cls", "dfl", "weight_decay", "momentum",
)


def aug_parse(*, items: list[str]) -> dict[str, float]:
    """Parse ``KEY=VALUE`` augmentation settings into ultralytics keyword arguments (TrainError if bad)."""
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in AUG_KEYS:
            raise TrainError(f"--aug {item!r}: expected KEY=VALUE with KEY one of {', '.join(AUG_KEYS)}")
        try:
            number = float(value)
        except ValueError:
            raise TrainError(f"--aug {item!r}: {value!r} is not a number") from None
        if number < 0:
            raise TrainError(f"--aug {item!r}: must not be negative")
        out[key] = number
    return out


@dataclass
class ValMetrics:
    """Validation figures measured by ``ultralytics val`` on the validation split."""

    map50: float
    map50_95: float
    precision: float
    recall: float
    f1_best: float
    conf_recommended: float
    images: int
    instances: int
    # the recommended operating point (F-beta max, beta = OPERATING_BETA) and what the model does there
    precision_recommended: float | None = None
    recall_recommended: float | None = None
    conf_f1: float | None = None  # the F1-max point, where ultralytics reports `precision` and `recall`
    # how the images reached the model (VAL_FRAME); figures measured in another frame are not comparable
    frame: str | None = None
    # 95% bootstrap interval of mAP50 over the validation images (resampled with replacement)
    map50_low: float | None = None
    map50_high: float | None = None


@dataclass
class ExportResult:
    """Where the export wrote the model and what it measured."""

    onnx_path: Path
    card_path: Path | None
    metrics_path: Path | None
    metrics: ValMetrics
    size_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)


def ultralytics_offline_prepare(*, work_dir: Path = WORK_DIR, threads: int | None = None) -> Path:
    """Make ultralytics importable without any network access; return its config dir.

    Must run before the first ``import ultralytics``: the settings dir is read at import time.
    """
    config_root = work_dir / "yolo_config"
    ultra_dir = config_root / "Ultralytics"
    ultra_dir.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("YOLO_CONFIG_DIR")
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_CONFIG_DIR"] = str(config_root)
    # Plotting/labels code calls check_font('Arial.ttf'), which downloads when missing: give it a local font.
    if FONT_SOURCE.exists():
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            target = ultra_dir / name
            if not target.exists():
                shutil.copyfile(FONT_SOURCE, target)
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    if "ultralytics" in sys.modules and previous != str(config_root):
        logger.warning("ultralytics was imported before offline preparation; settings may not apply")
    return ultra_dir


def _threads_apply(threads: int) -> None:
    # ultralytics pins torch to cpu_count-1 threads on CPU (1 on a 2-core box); we want all cores for training.
    import torch
    import ultralytics.utils.torch_utils as tu

    tu.NUM_THREADS = threads
    torch.set_num_threads(threads)


def dataset_yaml_write(*, data: Path, work_dir: Path = WORK_DIR) -> Path:
    """Return a dataset YAML with absolute paths; a dataset directory gets one generated under ``work_dir``.

    A directory must hold ``train/images`` and ``valid/images`` (Roboflow/YOLO layout) and may hold
    ``data.yaml.orig``/``data.yaml`` for the class names.
    """
    import yaml

    data = Path(data).expanduser().resolve()
    if data.is_file():
        return data
    if not data.is_dir():
        raise TrainError(f"dataset not found: {data}")
    train = data / "train" / "images"
    val = data / "valid" / "images"
    if not val.is_dir():
        val = data / "val" / "images"
    if not train.is_dir() or not val.is_dir():
        raise TrainError(f"{data} needs train/images and valid/images (or val/images)")
    # Ultralytics writes labels.cache beside the labels dir; the shared dataset must stay untouched (root
    # ignores its read-only mode), so train from a mirror of per-file symlinks under work_dir.
    train, val = (
        _split_mirror(images=d, dest=work_dir / "datasets" / data.name / d.parent.name) for d in (train, val)
    )
    names: Any = ["Pothole"]
    for candidate in ("data.yaml", "data.yaml.orig"):
        src = data / candidate
        if src.is_file():
            names = (yaml.safe_load(src.read_text()) or {}).get("names", names)
            break
    if isinstance(names, list):
        names = dict(enumerate(names))
    out_dir = work_dir / "data"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{data.name}.yaml"
    out.write_text(yaml.safe_dump({"train": str(train), "val": str(val), "nc": len(names), "names": names}))
    return out


def _split_mirror(*, images: Path, dest: Path) -> Path:
    """Mirror ``images`` and its sibling ``labels`` dir as symlinks under ``dest``; return the mirrored images dir."""
    for sub in ("images", "labels"):
        src_dir = images.parent / sub
        out_dir = dest / sub
        out_dir.mkdir(parents=True, exist_ok=True)
        if not src_dir.is_dir():
            continue
        wanted = {f.name: f for f in src_dir.iterdir() if f.is_file()}
        for existing in out_dir.iterdir():
            if existing.name not in wanted:
                existing.unlink()
        for name, f in wanted.items():
            link = out_dir / name
            if not link.is_symlink():
                link.symlink_to(f)
    return dest / "images"


def model_train(
    *,
    data: Path,
    model: str = "yolov8n.yaml",
    imgsz: int = 416,
    epochs: int = 100,
    hours: float | None = None,
    device: str = "cpu",
    out: Path,
    batch: int = 16,
    workers: int = 2,
    patience: int = 1000,
    close_mosaic: int = 10,
    cache: str | bool = "ram",
    threads: int | None = None,
    seed: int = 0,
    fraction: float = 1.0,
    verbose: bool = True,
    init_weights: Path | None = None,
    lr0: float | None = None,
    warmup_epochs: float | None = None,
    optimizer: str = "auto",
    lrf: float | None = None,
    save_period: int = -1,
    aug: dict[str, float] | None = None,
    freeze: int | None = None,
) -> Path:
    """Train ``model`` (a YAML architecture, from scratch) and return the run directory (holds weights/best.pt).

    ``aug`` overrides ultralytics' augmentation and loss settings (keys from AUG_KEYS, see ``aug_parse``).
    """
    if not str(model).endswith((".yaml", ".yml")):
        raise TrainError("train from an architecture .yaml: a .pt name would download pretrained weights")
    ultralytics_offline_prepare(threads=threads)
    data_yaml = dataset_yaml_write(data=data)
    if threads:
        _threads_apply(threads)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    yolo = _yolo_initial(model=model, init_weights=init_weights, data_yaml=data_yaml, imgsz=imgsz, out=out)
    kwargs: dict[str, Any] = {
        "data": str(data_yaml),
        "imgsz": imgsz,
        "epochs": epochs,
        "device": device,
        "batch": batch,
        "workers": workers,
        "patience": patience,
        "close_mosaic": close_mosaic,
        "cache": cache,
        "pretrained": init_weights is not None,
        "amp": False,
        "plots": False,
        "project": str(out.parent),
        "name": out.name,
        "exist_ok": True,
        "seed": seed,
        "deterministic": False,
        "fliplr": 0.5,
        "fraction": fraction,
        "verbose": verbose,
        "optimizer": optimizer,  # "auto" picks AdamW and its own lr for short runs, ignoring lr0
    }
    kwargs.update(_train_options(hours=hours, lr0=lr0, warmup_epochs=warmup_epochs, lrf=lrf,
                                 save_period=save_period, freeze=freeze))
    kwargs.update(aug or {})
    yolo.train(trainer=_engine_val_trainer(), **kwargs)
    return out


def _yolo_initial(*, model: str, init_weights: Path | None, data_yaml: Path, imgsz: int, out: Path):
    """The model to train: the architecture from scratch, or our own earlier run's weights to continue from."""
    from ultralytics import YOLO

    if init_weights is None:
        return YOLO(model, task="detect")
    # Continue from our own earlier run. Load the checkpoint itself (an existing local file: nothing is
    # downloaded); YOLO(yaml).load(pt) would rebuild an 80-class head and drop the trained class layers.
    init_weights = Path(init_weights)
    if not init_weights.is_file() or init_weights.suffix not in (".pt", ".onnx"):
        raise TrainError(
            f"initial weights not found (a local .pt of an earlier run, or a shipped .onnx): {init_weights}"
        )
    if init_weights.suffix == ".onnx":
        init_weights = onnx_checkpoint_make(onnx_path=init_weights, data_yaml=data_yaml, model=model, imgsz=imgsz,
                                            out=out)
    return YOLO(str(init_weights.resolve()), task="detect")


def _train_options(*, hours: float | None, lr0: float | None, warmup_epochs: float | None, lrf: float | None,
                   save_period: int, freeze: int | None) -> dict[str, Any]:
    """The optional training arguments that were given: ultralytics' own defaults stand for the rest."""
    options: dict[str, Any] = {}
    if hours:
        options["time"] = hours
    if lr0 is not None:
        options["lr0"] = lr0
    if warmup_epochs is not None:
        options["warmup_epochs"] = warmup_epochs
    if lrf is not None:
        options["lrf"] = lrf
    if save_period > 0:
        options["save_period"] = save_period  # weights/epoch<N>.pt, what `--average-last` averages
    if freeze:
        options["freeze"] = freeze  # the first N layers keep their weights: no backward pass through them
    return options


def model_resume(*, run_dir: Path, hours: float | None = None, threads: int | None = None) -> Path:
    """Go on with an interrupted run from its ``weights/last.pt`` (optimizer, schedule and epoch count as they
    were; ultralytics' own resume) and return the run directory. ``hours`` is the time for this part: in
    ultralytics' time mode the epoch count is re-estimated from this part's pace, so a part that is given
    less time than the epochs left ends the schedule sooner."""
    last = Path(run_dir).resolve() / "weights" / "last.pt"
    if not last.is_file():
        raise TrainError(f"nothing to resume: no {last}")
    ultralytics_offline_prepare(threads=threads)
    from ultralytics import YOLO

    if threads:
        _threads_apply(threads)
    kwargs: dict[str, Any] = {"resume": str(last)}
    if hours:
        kwargs["time"] = hours
    YOLO(str(last), task="detect").train(trainer=_engine_val_trainer(), **kwargs)
    return Path(run_dir).resolve()


def _engine_val_trainer():
    """Ultralytics' detection trainer, validating each epoch the way `vision.engine` infers.

    Ultralytics validates on "rect" batches padded half a stride beyond the image size: at 416 px a square
    photo goes to the model as 416 px of picture in a 448 px frame. The engine letterboxes to the model's own
    size (416 in 416), as ultralytics' predict does, and the two differ by more than the noise of a 34-pothole
    validation split (the stage 4 model: mAP50 0.794 in the rect frame, 0.776 as the engine sees it). The
    checkpoint kept as best.pt is chosen on these figures, so they must be the engine's."""
    from ultralytics.data import build_yolo_dataset
    from ultralytics.models.yolo.detect import DetectionTrainer
    from ultralytics.utils.torch_utils import unwrap_model

    class EngineValTrainer(DetectionTrainer):
        def build_dataset(self, img_path: str, mode: str = "train", batch: int | None = None):
            if mode != "val":
                return super().build_dataset(img_path, mode, batch)
            stride = max(int(unwrap_model(self.model).stride.max()), 32)
            return build_yolo_dataset(self.args, img_path, batch, self.data, mode=mode, rect=False, stride=stride)

    return EngineValTrainer


def onnx_checkpoint_make(*, onnx_path: Path, data_yaml: Path, model: str, imgsz: int, out: Path) -> Path:
    """A trainable checkpoint (``out/weights/init.pt``) rebuilt from a shipped ONNX export, its batch norms
    calibrated on up to 64 training images (`vision.onnx_weights`): training goes on from the model in the
    repository when the run directory that made it is gone."""
    from vision.onnx_weights import (
        OnnxWeightsError,
        calibration_batches,
        checkpoint_write,
        onnx_detection_model,
    )

    images = _split_images(data_yaml, "train")
    logger.info("rebuilding trainable weights from %s (calibrating on %d images)", onnx_path, min(64, len(images)))
    try:
        detector = onnx_detection_model(
            onnx_path=onnx_path,
            architecture=model,
            calibration=calibration_batches(images=images[:: max(1, len(images) // 64)], imgsz=imgsz),
        )
    except OnnxWeightsError as exc:
        raise TrainError(str(exc)) from exc
    card = onnx_path.with_suffix(".json")
    before = json.loads(card.read_text()).get("training", {}).get("epochs_total") if card.is_file() else None
    (Path(out) / "weights").mkdir(parents=True, exist_ok=True)
    (Path(out) / "weights" / "init.json").write_text(json.dumps({"onnx": str(onnx_path), "epochs_total": before}))
    return checkpoint_write(model=detector, path=Path(out) / "weights" / "init.pt")


# Validation feeds each image letterboxed to imgsz, as vision.engine and ultralytics' predict do. Cards from
# before this field measured in ultralytics' default "rect" frame (see _engine_val_trainer) and scored higher.
VAL_FRAME = "letterbox"


def val_run(*, weights: Path, data_yaml: Path, imgsz: int, device: str):
    """Ultralytics' validation of ``weights`` on ``data_yaml``'s validation photos, letterboxed as the engine
    feeds them; returns (the validator's metrics, each image's matches for bootstrapping)."""
    from ultralytics import YOLO

    per_image: dict[str, list] = {}
    val = YOLO(str(weights)).val(
        validator=_per_image_validator(per_image),
        data=str(data_yaml),
        imgsz=imgsz,
        device=device,
        batch=8,
        plots=False,
        verbose=False,
        conf=0.001,
        rect=False,  # each image letterboxed to imgsz, as the engine feeds the model (see _engine_val_trainer)
        project=str(weights.parent.parent),
        name="val_export",
        exist_ok=True,  # not ./runs in the cwd
    )
    return val, per_image


def _val_measure(*, weights: Path, data_yaml: Path, imgsz: int, device: str) -> ValMetrics:
    val, per_image = val_run(weights=weights, data_yaml=data_yaml, imgsz=imgsz, device=device)
    box = val.box
    # The F1 curve is sampled on 1000 confidences in [0, 1]: its argmax is the F1-max operating point.
    import numpy as np
    from ultralytics.utils.metrics import smooth

    f1 = np.asarray(box.f1_curve).mean(0) if len(box.f1_curve) else np.zeros(1000)
    # Same operating point ultralytics reports P and R at: the argmax of the smoothed mean F1 curve.
    best = int(smooth(f1, 0.1).argmax())
    grid = np.linspace(0, 1, len(f1))
    point = operating_point(p_curve=box.p_curve, r_curve=box.r_curve)
    stats = val.results_dict
    counts = getattr(val, "nt_per_class", None)
    interval = map50_interval(per_image=per_image)
    return ValMetrics(
        map50=round(float(box.map50), 4),
        map50_95=round(float(box.map), 4),
        precision=round(float(box.mp), 4),
        recall=round(float(box.mr), 4),
        f1_best=round(float(f1[best]), 4),
        conf_recommended=round(point[0], 3) if point else round(float(grid[best]), 3),
        precision_recommended=round(point[1], 4) if point else None,
        recall_recommended=round(point[2], 4) if point else None,
        conf_f1=round(float(grid[best]), 3),
        images=len(_split_images(data_yaml, "val")),
        instances=int(sum(counts)) if counts is not None else int(stats.get("instances", 0)),
        frame=VAL_FRAME,
        map50_low=round(interval[0], 3) if interval else None,
        map50_high=round(interval[1], 3) if interval else None,
    )


def _per_image_validator(sink: dict[str, list]):
    """Ultralytics' detection validator that also leaves each image's matches in `sink` (it clears its own)."""
    from ultralytics.models.yolo.detect import DetectionValidator

    class PerImageValidator(DetectionValidator):
        def get_stats(self):
            for key, values in self.metrics.stats.items():
                sink.setdefault(key, []).extend(values)
            return super().get_stats()

    return PerImageValidator


def map50_interval(
    *, per_image: dict[str, list], rounds: int = 1000, seed: int = 0, cls: int | None = None
) -> tuple[float, float] | None:
    """The 2.5th and 97.5th percentiles of mAP50 (of class `cls` alone when given) over `rounds` resamplings
    (with replacement) of the validation images: how far 24 photos pin the figure down. None without
    per-image matches."""
    import numpy as np
    from ultralytics.utils.metrics import ap_per_class

    keys = ("tp", "conf", "pred_cls", "target_cls")
    n = len(per_image.get("tp", []))
    if n == 0 or any(len(per_image.get(k, [])) != n for k in keys):
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(rounds):
        pick = rng.integers(0, n, n)
        tp, conf, pred_cls, target_cls = (np.concatenate([per_image[k][i] for i in pick]) for k in keys)
        if target_cls.size == 0:
            continue
        ap, classes = ap_per_class(tp, conf, pred_cls, target_cls)[5:7]
        if cls is None:
            values.append(float(ap[:, 0].mean()) if len(ap) else 0.0)
        elif cls in classes:  # a resampling without this class's defects says nothing about it
            values.append(float(ap[list(classes).index(cls), 0]))
    if not values:
        return None
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


# Crews review every flag the detector raises, and a missed pothole stays on the road until the next patrol,
# but a detector whose flags are often wrong stops being looked at. So the recommended threshold keeps at least
# 4 flags in 5 real and, within that, misses as few potholes as it can (F1's balance gave away recall; F2's gave
# precision 0.6 on the shipped model: 2 false flags for every 3 real ones).
MIN_PRECISION = 0.8


def operating_point(*, p_curve, r_curve, min_precision: float = MIN_PRECISION) -> tuple[float, float, float] | None:
    """(confidence, precision, recall) of the highest-recall point whose class-mean precision is at least
    `min_precision` (ties: the higher precision), the curves sampled on ultralytics' 1000-point confidence
    grid; None without curves or where no point is that precise (the caller falls back to the F1 maximum)."""
    import numpy as np

    p, r = np.asarray(p_curve, dtype=float), np.asarray(r_curve, dtype=float)
    if p.size == 0 or r.size == 0:
        return None
    p, r = p.reshape(-1, p.shape[-1]).mean(0), r.reshape(-1, r.shape[-1]).mean(0)
    ok = np.flatnonzero(p >= min_precision)
    if ok.size == 0:
        return None
    k = int(ok[np.lexsort((-p[ok], -r[ok]))[0]])
    return float(np.linspace(0, 1, p.size)[k]), float(p[k]), float(r[k])


def _split_images(data_yaml: Path, split: str) -> list[Path]:
    """The images of a dataset YAML's split (`train`, `val`: a folder, relative to `path:`), sorted."""
    import yaml

    spec = yaml.safe_load(Path(data_yaml).read_text()) or {}
    folder = Path(spec[split])
    if not folder.is_absolute():
        folder = Path(spec.get("path") or Path(data_yaml).parent) / folder
    if folder.is_file():  # a list of photos (vision.masks' per-source validation), relative to its folder
        from vision.evaluate import list_photos

        return sorted(list_photos(folder))
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def run_export(
    *,
    run_dir: Path,
    data: Path = DEFAULT_DATASET,
    imgsz: int | None = None,
    device: str = "cpu",
    opset: int = 17,
    ship_dir: Path | None = None,
    command: str | None = None,
    force: bool = False,
    average_last: int | None = None,
) -> ExportResult:
    """Validate ``run_dir/weights/best.pt``, export it to ONNX and, with ``ship_dir``, ship model + card + metrics.

    With ``average_last`` the exported weights are the mean of the run's last epochs instead (`vision.swa`).

    A model already shipped there with a higher validation mAP50 is kept unless ``force`` (the ExportResult
    then says ``extra["shipped"] = False``).
    """
    ultralytics_offline_prepare()
    run_dir = Path(run_dir).resolve()
    weights = run_dir / "weights" / "best.pt"
    if not weights.is_file():
        raise TrainError(f"no weights at {weights}")
    from ultralytics import YOLO

    args = _run_args(run_dir)
    imgsz = int(imgsz or args.get("imgsz") or 416)
    data_yaml = dataset_yaml_write(data=data)
    weights, averaged = _weights_pick(run_dir=run_dir, best=weights, average_last=average_last)
    metrics = _val_measure(weights=weights, data_yaml=data_yaml, imgsz=imgsz, device=device)
    onnx_file = Path(
        YOLO(str(weights)).export(
            format="onnx", imgsz=imgsz, opset=opset, simplify=True, dynamic=True, device=device, batch=1
        )
    )
    extra = _run_summary(run_dir)
    if averaged:
        extra["averaged_epochs"] = averaged
    from vision.evaluate import splits_evaluate

    evaluation = splits_evaluate(
        weights=weights, onnx_path=onnx_file, data_yaml=data_yaml, imgsz=imgsz, device=device,
        conf=metrics.conf_recommended,
    )
    card = metrics_file = None
    target = onnx_file
    if ship_dir is not None:
        names = _data_names(data_yaml)
        extra["shipped"] = _ship_allowed(ship_dir, names=names, metrics=metrics, data_yaml=data_yaml, device=device,
                                         force=force)
        if extra["shipped"]:
            target, metrics_file, card = _ship(
                ship_dir=Path(ship_dir), onnx_file=onnx_file, metrics=metrics, imgsz=imgsz, names=names,
                extra=extra, evaluation=evaluation, command=command, args=args,
            )
    extra["evaluation"] = evaluation
    return ExportResult(
        onnx_path=target,
        card_path=card,
        metrics_path=metrics_file,
        metrics=metrics,
        size_bytes=target.stat().st_size,
        extra=extra,
    )


def _run_args(run_dir: Path) -> dict[str, Any]:
    """The training arguments ultralytics recorded with the run (args.yaml), or none."""
    import yaml

    args_file = run_dir / "args.yaml"
    return (yaml.safe_load(args_file.read_text()) or {}) if args_file.is_file() else {}


def _weights_pick(*, run_dir: Path, best: Path, average_last: int | None) -> tuple[Path, dict[str, int] | None]:
    """best.pt, or the mean of the last ``average_last`` epochs' weights (`vision.swa`) and which epochs."""
    if not average_last:
        return best, None
    from vision.swa import AverageError, run_average

    try:
        weights, epochs = run_average(run_dir=run_dir, last=average_last)
    except AverageError as exc:
        raise TrainError(str(exc)) from exc
    return weights, {"first": epochs[0], "last": epochs[-1], "count": len(epochs)}


def _data_names(data_yaml: Path) -> dict[int, str]:
    import yaml

    names = (yaml.safe_load(Path(data_yaml).read_text()) or {}).get("names") or {0: "Pothole"}
    return {int(k): str(v) for k, v in (enumerate(names) if isinstance(names, list) else names.items())}


def _ship_allowed(
    ship_dir: Path, *, names: dict[int, str], metrics: ValMetrics, data_yaml: Path, device: str, force: bool
) -> bool:
    """Whether an export may replace the shipped model: only one that detects the same classes is compared
    (on this validation split); a model of other classes is another product and needs ``force``."""
    if force:
        return True
    try:
        shipped = json.loads((Path(ship_dir) / f"{SHIPPED_NAME}.json").read_text())
        shipped_names = {int(k): str(v) for k, v in shipped["names"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return True
    if shipped_names != names:
        logger.warning("not shipping: the shipped model detects %s, this one %s (use --force)", shipped_names, names)
        return False
    before = _shipped_map50(ship_dir, data_yaml=data_yaml, device=device)
    if before is not None and before > metrics.map50:
        logger.warning("not shipping: the shipped model has mAP50 %.3f > %.3f of this run (use --force)",
                       before, metrics.map50)
        return False
    return True


def _ship(
    *, ship_dir: Path, onnx_file: Path, metrics: ValMetrics, imgsz: int, names: dict[int, str], extra: dict[str, Any],
    evaluation: dict[str, Any] | None, command: str | None, args: dict[str, Any],
) -> tuple[Path, Path, Path]:
    """Copy the ONNX into ``ship_dir`` with its metrics JSON and model card; return the three paths."""
    ship_dir.mkdir(parents=True, exist_ok=True)
    target = ship_dir / f"{SHIPPED_NAME}.onnx"
    metrics_file = ship_dir / f"{SHIPPED_NAME}.json"
    from vision.card import history_rows

    history = history_rows(previous=metrics_file, extra=extra, metrics=metrics, evaluation=evaluation)
    shutil.copyfile(onnx_file, target)
    payload = {
        "model": target.name,
        "architecture": "YOLOv8n (from scratch)",
        "imgsz": imgsz,
        "names": names,
        "validation": asdict(metrics),
        "conf_recommended": metrics.conf_recommended,
        "evaluation": evaluation,
        "training": extra,
        "history": history,
        "dataset_credit": DATASET_CREDIT,
    }
    if evaluation is not None:
        payload["dataset_credit_survey"] = SURVEY_CREDIT
    metrics_file.write_text(json.dumps(payload, indent=2) + "\n")
    card = ship_dir / f"{SHIPPED_NAME}.md"
    card.write_text(
        model_card_render(metrics=metrics, imgsz=imgsz, extra=extra, command=command, args=args, names=names,
                          evaluation=evaluation, history=history)
    )
    return target, metrics_file, card


def _shipped_map50(ship_dir: Path, *, data_yaml: Path, device: str = "cpu") -> float | None:
    """The shipped model's validation mAP50, measured as `_val_measure` measures now: the figure in its JSON
    where that was measured in VAL_FRAME, otherwise the shipped ONNX validated again (a few seconds)."""
    try:
        meta = json.loads((Path(ship_dir) / f"{SHIPPED_NAME}.json").read_text())
        if meta["validation"].get("frame") == VAL_FRAME:
            return float(meta["validation"]["map50"])
        imgsz = int(meta.get("imgsz") or 416)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    onnx_file = Path(ship_dir) / f"{SHIPPED_NAME}.onnx"
    if not onnx_file.is_file():
        return None
    logger.info("the shipped model's card was measured in another frame: validating %s again", onnx_file)
    return _val_measure(weights=onnx_file, data_yaml=data_yaml, imgsz=imgsz, device=device).map50


def _run_summary(run_dir: Path) -> dict[str, Any]:
    """Epoch count and best epoch from the run's results.csv."""
    import csv

    results = run_dir / "results.csv"
    summary: dict[str, Any] = {"run_dir": str(run_dir)}
    if not results.is_file():
        return summary
    with results.open() as fh:
        rows = [{k.strip(): v.strip() for k, v in row.items()} for row in csv.DictReader(fh)]
    if not rows:
        return summary
    key = "metrics/mAP50(B)"
    # best.pt is the epoch of the highest ultralytics fitness, which in 8.4 is mAP50-95 alone
    best = max(rows, key=lambda r: float(r.get("metrics/mAP50-95(B)") or 0))
    summary.update(
        epochs_run=len(rows),
        best_epoch=int(float(best["epoch"])),
        best_epoch_map50=float(best.get(key) or 0),
        train_hours=round(float(rows[-1].get("time") or 0) / 3600, 2) if "time" in rows[-1] else None,
    )
    cmd_file = run_dir / "command.txt"
    if cmd_file.is_file():
        summary["command"] = cmd_file.read_text().strip()
    summary["epochs_total"] = _lineage_epochs(run_dir)
    return summary


def _lineage_epochs(run_dir: Path, depth: int = 0) -> int:
    """Epochs of this run plus those of the runs whose weights it started from (``model: .../weights/x.pt``)."""
    import yaml

    results = run_dir / "results.csv"
    own = max(0, len(results.read_text().splitlines()) - 1) if results.is_file() else 0
    args_file = run_dir / "args.yaml"
    if depth > 5 or not args_file.is_file():
        return own
    model = str((yaml.safe_load(args_file.read_text()) or {}).get("model") or "")
    parent = Path(model).parent.parent
    if parent.resolve() == run_dir.resolve():
        # started from a shipped ONNX (`onnx_checkpoint_make`): its card counted the epochs before
        origin = Path(model).with_suffix(".json")
        return own + (int(json.loads(origin.read_text()).get("epochs_total") or 0) if origin.is_file() else 0)
    if model.endswith(".pt") and (parent / "results.csv").is_file():
        return own + _lineage_epochs(parent, depth + 1)
    return own


def _interval_note(metrics: ValMetrics) -> str:
    if metrics.map50_low is None or metrics.map50_high is None:
        return ""
    return f" (95% bootstrap interval over the {metrics.images} photos: {metrics.map50_low:.2f}-{metrics.map50_high:.2f})"


def _weights_note(extra: dict[str, Any]) -> str:
    avg = extra.get("averaged_epochs")
    if avg:
        return (
            f"the mean of the last stage's last {avg['count']} epochs ({avg['first']}-{avg['last']}; stochastic"
            " weight averaging, `--average-last`; batch-norm statistics averaged too)."
            " No epoch was picked by the validation split."
        )
    return (
        f"the EMA weights of epoch {extra.get('best_epoch', '?')}, picked by ultralytics' fitness (mAP50-95) on"
        " the validation split."
    )


def _selection_note(extra: dict[str, Any]) -> str:
    if extra.get("averaged_epochs"):
        return (
            ": the figures above carry a wide uncertainty margin (one pothole moves recall by 0.03), and the"
            " same split chose the training settings of earlier stages."
        )
    return ", and the same split chose the best epoch, so the figures above are optimistic and carry a wide uncertainty margin."


def _operating_note(metrics: ValMetrics) -> str:
    if metrics.recall_recommended is None:
        return " (the F1-max point of the validation F1/confidence curve)."
    return (
        f": the highest-recall point of the validation curves with precision at least {MIN_PRECISION:g} (crews"
        " review every flag and a missed pothole stays on the road, but a detector whose flags are often wrong"
        f" stops being looked at). There precision is {metrics.precision_recommended:.3f} and recall"
        f" {metrics.recall_recommended:.3f}. The table's P and R are ultralytics' figures at its F1-max point"
        f" ({metrics.conf_f1:.2f}); pass `--conf` to choose another."
    )


# The reference run on this data (yolov8n from scratch, 320 px, 80 epochs) and the project's aim.
REFERENCE = {"map50": 0.72, "precision": 0.71, "recall": 0.68}
AIM_MAP50 = 0.80


def _shortfall_note(*, metrics: ValMetrics, extra: dict[str, Any]) -> str:
    if metrics.map50 < REFERENCE["map50"]:
        return (
            f"\n**This model scores below that reference.** Only {extra.get('epochs_total', '?')} epochs in all "
            "fitted into the training time on a CPU shared with other jobs; it is under-trained. Train longer or "
            "continue from its weights (`--init-weights`, see `vision/README.md`) and re-export: an export only "
            "replaces the shipped model when it scores higher."
        )
    p = metrics.precision_recommended if metrics.precision_recommended is not None else metrics.precision
    r = metrics.recall_recommended if metrics.recall_recommended is not None else metrics.recall
    better = p > REFERENCE["precision"] and r > REFERENCE["recall"]
    note = (
        f"\nAgainst that reference: mAP50 {metrics.map50:.3f} vs {REFERENCE['map50']:.2f}; at the recommended "
        f"threshold precision {p:.3f} vs {REFERENCE['precision']:.2f} and recall {r:.3f} vs "
        f"{REFERENCE['recall']:.2f} ({'better on both' if better else 'not better on both'}). "
    )
    if metrics.map50 >= AIM_MAP50:
        return note + f"The project's aim of mAP50 >= {AIM_MAP50:.2f} is met."
    straddles = (
        metrics.map50_low is not None
        and metrics.map50_high is not None
        and metrics.map50_low <= REFERENCE["map50"]
        and metrics.map50_high >= AIM_MAP50
    )
    interval = (
        f"; the 95% interval, {metrics.map50_low:.2f}-{metrics.map50_high:.2f}, holds both the aim and the reference"
        if straddles
        else ""
    )
    return note + (
        f"The project's aim of mAP50 >= {AIM_MAP50:.2f} is not reached (one of the "
        f"{metrics.instances} validation potholes moves recall by {1 / max(metrics.instances, 1):.3f}{interval}). "
        "More real labelled photos (RDD2022 through `vision.rdd2022`, or the city's own) and a GPU run of a larger model "
        "(`--model yolov8s.yaml --device 0`) are the way up."
    )


def model_card_render(
    *, metrics: ValMetrics, imgsz: int, extra: dict[str, Any], command: str | None, args: dict[str, Any],
    names: dict[int, str] | None = None, evaluation: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> str:
    """Return the Markdown model card of the shipped model."""
    from vision.card import class_list, data_section, evaluation_section, history_section

    names = names or {0: "Pothole"}
    command = command or extra.get("command") or "(see vision/README.md)"
    # the run's schedule, then every setting `--aug` can change (one list: a key added there shows here)
    keys = ("epochs", "time", "imgsz", "batch", "optimizer", "lr0", "lrf", "warmup_epochs", "close_mosaic",
            "patience", "cache", "seed", *AUG_KEYS)
    settings = ", ".join(f"{k}={args[k]}" for k in keys if k in args)
    if args.get("optimizer") == "auto":
        settings += (
            " (optimizer=auto: ultralytics picks AdamW with its own lr, 0.002 for one class, for runs under 10k"
            " iterations, ignoring lr0 and momentum)"
        )
    title = " and ".join(names.values())
    return f"""# road_damage.onnx: {title} detector (model card)

## Model
- Architecture: Ultralytics YOLOv8n (`yolov8n.yaml`, ~3.0 M parameters), trained here **from scratch** (no
  third-party pretrained weights; later stages start from the earlier stages' weights) on CPU; exported to
  ONNX (opset 17, onnxslim-simplified, dynamic batch/height/width axes).
- Input: RGB, letterboxed to {imgsz}x{imgsz} (grey 114 padding, centred), scaled to [0, 1], NCHW float32.
- Output: `output0` (batch, 4 + nc, anchors): cx, cy, w, h in input pixels, then per-class scores; NMS is
  done by the caller (`vision.engine`).
- Classes: {class_list(names)}. Metadata (`names`, `imgsz`, `stride`, ...) is stored in the ONNX file.

## Data
{data_section(evaluation=evaluation, credit=DATASET_CREDIT, survey_credit=SURVEY_CREDIT)}
## Training
- Command (from the repository root; CPU, 2 shared cores):

```sh
{command}
```

- Settings (last stage): {settings}
- Epochs run: {extra.get("epochs_total", "?")} in all; last stage {extra.get("epochs_run", "?")}, run dir
  `{extra.get("run_dir", "?")}` (git-ignored).
- Weights: {_weights_note(extra)}
- Software: Ultralytics (AGPL-3.0), PyTorch; the weights were produced here and carry no third-party weights.
{history_section(history)}
## Validation (ultralytics val on the {metrics.images} validation images, imgsz {imgsz}, conf 0.001, IoU 0.7)
Each image is letterboxed to {imgsz}x{imgsz}, as `vision.engine` feeds it to the model (`rect=False`);
ultralytics' default "rect" validation pads a further half stride (416 px of picture in a 448 px frame) and
scores this kind of model up to 0.02 mAP50 higher than what the engine will see.

| metric (all classes, all sources) | value |
|---|---|
| mAP50 | {metrics.map50:.3f}{_interval_note(metrics)} |
| mAP50-95 | {metrics.map50_95:.3f} |
| precision | {metrics.precision:.3f} |
| recall | {metrics.recall:.3f} |
| best F1 | {metrics.f1_best:.3f} |

**Recommended confidence threshold: {metrics.conf_recommended:.2f}**{_operating_note(metrics)}
`vision.detect` and the road agent use it by default, read from `road_damage.json`.
{evaluation_section(evaluation) if evaluation else _reference_section(metrics=metrics, extra=extra)}
## Intended use and limits
- Intended use: flagging likely road defects in inspection photographs for a human to review; not for
  automated decisions about safety, liability or repair priority without review.
- Expect lower recall on other cameras, night, rain, snow, wet roads, shadows and unusual viewpoints.
  {"Cracks are one class (longitudinal, transverse and alligator not told apart)." if "crack" in names.values()
   else "Cracks (D00/D10/D20) are not detected: only potholes."}
- The validation split has only {metrics.images} images ({metrics.instances} defects){_selection_note(extra)}
- Photographs may show faces and number plates: blur them (`vision.privacy`) before sharing.
"""


def _reference_section(*, metrics: ValMetrics, extra: dict[str, Any]) -> str:
    return (
        "\nReference (same data, same machine class): yolov8n from scratch, 320 px, 80 epochs -> mAP50 0.72,"
        f" P 0.71, R 0.68.\n{_shortfall_note(metrics=metrics, extra=extra)}\n"
    )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vision.train", description=__doc__.split("\n")[0])
    p.add_argument(
        "--data", type=Path, default=DEFAULT_DATASET, help="dataset YAML or YOLO dataset directory"
    )
    p.add_argument("--model", default="yolov8n.yaml", help="architecture YAML (trained from scratch)")
    p.add_argument("--imgsz", type=int, default=416)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument(
        "--time", type=float, default=None, help="hours; overrides --epochs and fits the LR schedule"
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--patience", type=int, default=1000)
    p.add_argument("--close-mosaic", type=int, default=10)
    p.add_argument("--cache", default="ram", help="ram, disk or none")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch CPU threads")
    p.add_argument("--fraction", type=float, default=1.0, help="fraction of the training set to use")
    p.add_argument(
        "--init-weights",
        type=Path,
        default=None,
        help="start from a local .pt of an earlier run (no download)",
    )
    p.add_argument("--lr0", type=float, default=None, help="initial learning rate (default: ultralytics')")
    p.add_argument("--warmup-epochs", type=float, default=None)
    p.add_argument("--lrf", type=float, default=None, help="final learning rate as a fraction of lr0")
    p.add_argument("--save-period", type=int, default=-1, help="keep the weights of every N-th epoch")
    p.add_argument(
        "--average-last", type=int, default=None, metavar="K",
        help="export the mean of the last K epochs' weights (needs --save-period 1) instead of best.pt",
    )
    p.add_argument(
        "--freeze", type=int, default=None, metavar="N",
        help="keep the first N layers as they are (10: yolov8's backbone): a third less work per step on a CPU",
    )
    p.add_argument("--optimizer", default="auto", help="auto, SGD, AdamW... (auto ignores --lr0)")
    p.add_argument(
        "--aug", action="append", default=[], metavar="KEY=VALUE",
        help="an ultralytics augmentation or loss setting, repeatable (e.g. mixup=0.1 multi_scale=0.25): "
        + ", ".join(AUG_KEYS),
    )
    p.add_argument("--out", type=Path, default=WORK_DIR / "runs" / "potholes")
    p.add_argument(
        "--export-only", type=Path, default=None, metavar="RUN_DIR", help="skip training; export RUN_DIR"
    )
    p.add_argument(
        "--resume", type=Path, default=None, metavar="RUN_DIR",
        help="go on with an interrupted run from RUN_DIR/weights/last.pt (its own settings; --time for this part)",
    )
    p.add_argument("--no-export", action="store_true", help="train only")
    p.add_argument(
        "--ship",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="copy the ONNX + model card + metrics into vision/models/ (default: yes)",
    )
    p.add_argument("--force", action="store_true", help="ship even if the shipped model scores higher")
    p.add_argument("--opset", type=int, default=17)
    return p.parse_args(argv)


@contextlib.contextmanager
def _ultralytics_to_stderr(*, threads: int | None):
    """Ultralytics prints its logs and progress bars on stdout; the command's stdout is its one JSON line, so
    they go to stderr (its logger's handler holds stdout itself, hence both)."""
    moved = []
    ultralytics_offline_prepare(threads=threads)  # before the import below: ultralytics reads it on import
    try:
        from ultralytics.utils import LOGGER

        for handler in LOGGER.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                moved.append(handler)
                handler.setStream(sys.stderr)
    except ImportError:  # the train extra is missing: model_train says so
        pass
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        for handler in moved:
            handler.setStream(sys.stdout)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: logs on stderr, one JSON line on stdout."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parse_args(argv)
    command = "python -m vision.train " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        with _ultralytics_to_stderr(threads=args.threads):
            result = _main_run(args=args, command=command)
    except TrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result is None:
        return 0
    print(
        json.dumps(
            {
                "onnx": str(result.onnx_path),
                "size_bytes": result.size_bytes,
                "shipped": result.extra.get("shipped", False),
                **asdict(result.metrics),
            }
        )
    )
    return 0


def _main_run(*, args: argparse.Namespace, command: str) -> ExportResult | None:
    """Train (unless --export-only), then export unless --no-export."""
    if args.export_only:
        run_dir = args.export_only
    elif args.resume:
        with (args.resume / "command.txt").open("a") as fh:
            fh.write(f"{command}   # resumed\n")
        run_dir = model_resume(run_dir=args.resume, hours=args.time, threads=args.threads)
    else:
        aug = aug_parse(items=args.aug)  # before anything is written: a bad setting leaves no run directory
        args.out.mkdir(parents=True, exist_ok=True)
        history = ""
        if args.init_weights is not None:
            # Record the whole lineage: the run these weights came from, then this one.
            prior = Path(args.init_weights).resolve().parent.parent / "command.txt"
            card = Path(args.init_weights).with_suffix(".json")  # a shipped model's sidecar
            if prior.is_file():
                history = prior.read_text().strip() + "   # then, from its weights:\n"
            elif Path(args.init_weights).suffix == ".onnx" and card.is_file():
                shipped = json.loads(card.read_text()).get("training", {}).get("command", "")
                if shipped:
                    history = shipped.strip() + "   # then, from the shipped ONNX's weights:\n"
        (args.out / "command.txt").write_text(history + command + "\n")
        started = time.time()
        run_dir = model_train(
            data=args.data,
            model=args.model,
            imgsz=args.imgsz,
            epochs=args.epochs,
            hours=args.time,
            device=args.device,
            out=args.out,
            batch=args.batch,
            workers=args.workers,
            patience=args.patience,
            close_mosaic=args.close_mosaic,
            cache=False if args.cache == "none" else args.cache,
            threads=args.threads,
            fraction=args.fraction,
            init_weights=args.init_weights,
            lr0=args.lr0,
            warmup_epochs=args.warmup_epochs,
            optimizer=args.optimizer,
            lrf=args.lrf,
            save_period=args.save_period,
            aug=aug,
            freeze=args.freeze,
        )
        logger.info("training finished in %.1f min: %s", (time.time() - started) / 60, run_dir)
    if args.no_export:
        return None
    return run_export(
        run_dir=run_dir,
        data=args.data,
        imgsz=None if args.export_only else args.imgsz,
        device=args.device,
        opset=args.opset,
        ship_dir=MODELS_DIR if args.ship else None,
        force=args.force,
        average_last=args.average_last,
    )


if __name__ == "__main__":
    raise SystemExit(main())
