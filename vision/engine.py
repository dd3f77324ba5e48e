"""ONNX Runtime inference engine for the road-damage detector (no Django, no torch, no ultralytics).

Shape of a run (like ultralytics' predictor, each step timed separately):

1. preprocess: decode (path, bytes or RGB array; EXIF orientation applied; big JPEGs decoded reduced by DCT
   scaling), letterbox into the model input, stack a batch as float32 NCHW in [0, 1];
2. inference: one ``session.run`` per batch (one-by-one when the model has a fixed batch axis);
3. postprocess: best-class confidence threshold, class-wise NMS, boxes mapped back to the full-resolution
   upright image and clipped.

Whatever a model calls its classes, a detection's ``class_name`` is one of the agent's two defect classes,
``"pothole"`` or ``"crack"`` (see ``vision.classes``). A model class that is neither (RDD2022's D43 crosswalk
blur, D44 white-line blur, D50 manhole) is kept out: its detections are dropped, said once when the model
loads. A model with no class that maps is refused at load (it could never report a defect).

The ONNX session is created once per process per (model file, providers) and cached.
"""

from __future__ import annotations

import ast
import json
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vision.boxes import Letterbox, boxes_unletterbox, letterbox_apply, predictions_decode
from vision.classes import class_canonical
from vision.decode import ImageDecodeError, ImageSource, image_decode, source_label

logger = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODELS_DIR / "road_damage.onnx"
FALLBACK_CONF = 0.25
_PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "gpu": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


class ModelLoadError(Exception):
    """The model file is missing or is not a usable YOLO detection ONNX model."""


@dataclass(frozen=True)
class Detection:
    """One detected defect; ``box`` is (x1, y1, x2, y2) in pixels of the full-resolution upright image."""

    class_name: str
    class_id: int
    confidence: float
    box: tuple[float, float, float, float]


@dataclass
class ImageResult:
    """The outcome for one input image: detections, or an error message when it could not be read."""

    source: str
    detections: list[Detection] = field(default_factory=list)
    error: str | None = None
    width: int | None = None
    height: int | None = None
    reduced_decode: bool = False

    @property
    def ok(self) -> bool:
        """True when the image was read and run through the model."""
        return self.error is None


@dataclass
class RunTimings:
    """Wall-clock milliseconds spent in each step over a whole run (all batches)."""

    preprocess_ms: float = 0.0
    inference_ms: float = 0.0
    postprocess_ms: float = 0.0
    wall_ms: float = 0.0  # end to end; less than the sum of the steps when prefetch overlaps them
    images: int = 0

    @property
    def total_ms(self) -> float:
        """Sum of the three steps."""
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms


@dataclass
class DetectionRun:
    """Results in input order plus per-step timings."""

    results: list[ImageResult]
    timings: RunTimings


@dataclass
class _Prepared:
    # What postprocess needs to map boxes back; the decoded pixels themselves are not kept past letterboxing.
    index: int
    plan: Letterbox
    scale_x: float
    scale_y: float
    width: int
    height: int


class Detector:
    """A loaded ONNX YOLO detector: session, class names, input size; thread-safe for concurrent ``detect``."""

    def __init__(self, *, model_path: Path, providers: Sequence[str], intra_op_threads: int | None = None):
        import onnxruntime as ort

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelLoadError(f"model not found: {self.model_path}")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_threads:
            options.intra_op_num_threads = intra_op_threads
        try:
            self.session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=list(providers)
            )
        except Exception as exc:
            raise ModelLoadError(f"cannot load ONNX model {self.model_path}: {exc}") from exc
        self.providers = self.session.get_providers()
        if providers and providers[0] not in self.providers:
            logger.warning(
                "%s not active for %s; running on %s", providers[0], self.model_path.name, self.providers
            )
        meta = self.session.get_modelmeta().custom_metadata_map
        self.metadata = dict(meta)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_type = np.float16 if "float16" in inp.type else np.float32
        self.names = _names_parse(meta.get("names"))
        self.stride = int(meta.get("stride", 32))
        self.imgsz = _imgsz_parse(meta.get("imgsz"), inp.shape)
        self.dynamic_batch = not isinstance(inp.shape[0], int)
        self.dynamic_hw = len(inp.shape) == 4 and not all(isinstance(d, int) for d in inp.shape[2:])
        out_shape = self.session.get_outputs()[0].shape
        if len(out_shape) != 3:
            raise ModelLoadError(
                f"{self.model_path.name}: expected a (batch, 4 + nc, anchors) output, got {out_shape}"
            )
        if not self.names:
            nc = out_shape[1] - 4 if isinstance(out_shape[1], int) else 1
            self.names = {i: f"class{i}" for i in range(nc)}
        self.classes = classes_map(names=self.names, model_name=self.model_path.name)
        self.default_conf = _conf_recommended(self.model_path)

    # -- steps ---------------------------------------------------------------------------------------------
    def preprocess(
        self, *, sources: Sequence[ImageSource], results: list[ImageResult], offset: int, fast: bool
    ) -> list[tuple[np.ndarray, list[_Prepared]]]:
        """Decode and letterbox ``sources``; return float32 NCHW batches, one per distinct input shape.

        A model with dynamic height/width gets ultralytics' minimal-rectangle letterbox (padding only up to a
        multiple of the stride), which is what its predict does and saves pixels on 4:3 photos; images with the
        same letterboxed shape share a batch. Unreadable images get an error result and are left out.
        """
        groups: dict[tuple[int, int], tuple[list[np.ndarray], list[_Prepared]]] = {}
        for i, source in enumerate(sources):
            result = results[offset + i]
            try:
                decoded = image_decode(source=source, target_hw=self.imgsz, fast=fast)
            except ImageDecodeError as exc:
                result.error = str(exc)
                continue
            except Exception as exc:
                logger.exception("unexpected error decoding %s", result.source)
                result.error = f"decode failed: {type(exc).__name__}: {exc}"
                continue
            result.width, result.height, result.reduced_decode = (
                decoded.width,
                decoded.height,
                decoded.reduced,
            )
            canvas, plan = letterbox_apply(
                image=decoded.pixels, new_hw=self.imgsz, stride=self.stride, auto=self.dynamic_hw
            )
            canvases, prepared = groups.setdefault(canvas.shape[:2], ([], []))
            canvases.append(canvas)
            prepared.append(
                _Prepared(
                    index=offset + i,
                    plan=plan,
                    scale_x=decoded.scale_x,
                    scale_y=decoded.scale_y,
                    width=decoded.width,
                    height=decoded.height,
                )
            )
        batches = []
        for (h, w), (canvases, prepared) in groups.items():
            # HWC uint8 -> CHW float in [0, 1] in one pass per image into one contiguous batch buffer.
            tensor = np.empty((len(canvases), 3, h, w), dtype=self.input_type)
            scale = self.input_type(1 / 255)
            for k, canvas in enumerate(canvases):
                np.multiply(canvas.transpose(2, 0, 1), scale, out=tensor[k], casting="unsafe")
            batches.append((tensor, prepared))
        return batches

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Run the model on a preprocessed batch; returns (n, 4 + nc, anchors) float32."""
        if self.dynamic_batch or len(tensor) == 1:
            return np.asarray(self.session.run(None, {self.input_name: tensor})[0], dtype=np.float32)
        outs = [self.session.run(None, {self.input_name: tensor[i : i + 1]})[0] for i in range(len(tensor))]
        return np.concatenate(outs, axis=0).astype(np.float32, copy=False)

    def postprocess(
        self,
        *,
        output: np.ndarray,
        prepared: list[_Prepared],
        results: list[ImageResult],
        conf: float,
        iou: float,
        max_det: int,
    ) -> None:
        """Threshold, NMS and map each image's boxes back to its full-resolution upright frame."""
        for row, item in zip(output, prepared):
            dets = predictions_decode(output=row, conf=conf, iou=iou, max_det=max_det)
            boxes = boxes_unletterbox(
                boxes=dets[:, :4],
                plan=item.plan,
                scale_x=item.scale_x,
                scale_y=item.scale_y,
                width=item.width,
                height=item.height,
            )
            results[item.index].detections = [
                Detection(
                    class_name=self.classes[int(c)],
                    class_id=int(c),
                    confidence=float(s),
                    box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                )
                for b, s, c in zip(boxes, dets[:, 4], dets[:, 5])
                if int(c) in self.classes
            ]

    # -- whole run -----------------------------------------------------------------------------------------
    def detect(
        self,
        images: Sequence[ImageSource],
        *,
        conf: float | None = None,
        iou: float = 0.7,
        batch_size: int = 8,
        max_det: int = 300,
        fast: bool = True,
        prefetch: bool = True,
    ) -> DetectionRun:
        """Detect defects in ``images`` (paths, bytes, RGB uint8 arrays, or a caller's ``DecodedImage``: pixels
        plus the full size its boxes are mapped to); one ImageResult per input, in order.

        ``conf`` defaults to the model card's recommended threshold. An unreadable image gets ``error`` set and
        the rest of the batch still runs. ``fast`` decodes big JPEGs reduced; ``prefetch`` decodes the next
        batch while the model runs on the current one.
        """
        conf = self.default_conf if conf is None else float(conf)
        images = list(images)
        results = [ImageResult(source=source_label(s)) for s in images]
        timings = RunTimings(images=len(images))
        step = max(1, int(batch_size))
        chunks = [(start, images[start : start + step]) for start in range(0, len(images), step)]
        t_start = time.perf_counter()

        def prepare(chunk: tuple[int, list[ImageSource]]):
            t0 = time.perf_counter()
            batches = self.preprocess(sources=chunk[1], results=results, offset=chunk[0], fast=fast)
            return batches, (time.perf_counter() - t0) * 1e3

        # Pipeline: decode the next chunk in a helper thread while the model runs on this one (PIL's decoder
        # and ONNX Runtime both release the GIL), so decode time hides behind inference.
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(prepare, chunks[0]) if chunks else None
            for k in range(len(chunks)):
                batches, pre_ms = pending.result()
                timings.preprocess_ms += pre_ms
                if k + 1 < len(chunks) and prefetch:
                    pending = pool.submit(prepare, chunks[k + 1])
                for tensor, prepared in batches:
                    t1 = time.perf_counter()
                    output = self.infer(tensor)
                    t2 = time.perf_counter()
                    timings.inference_ms += (t2 - t1) * 1e3
                    self.postprocess(
                        output=output, prepared=prepared, results=results, conf=conf, iou=iou, max_det=max_det
                    )
                    timings.postprocess_ms += (time.perf_counter() - t2) * 1e3
                if k + 1 < len(chunks) and not prefetch:
                    pending = pool.submit(prepare, chunks[k + 1])
        timings.wall_ms = (time.perf_counter() - t_start) * 1e3
        return DetectionRun(results=results, timings=timings)


_CACHE: dict[tuple[str, int, tuple[str, ...], int | None], Detector] = {}
_CACHE_LOCK = threading.Lock()


_FALLBACKS_LOGGED: set[tuple[str, ...]] = set()


def providers_resolve(providers: Iterable[str] | None) -> list[str]:
    """Normalise provider names ("cuda", "cpu" or ORT names) and drop unavailable ones, keeping CPU last.

    The list comes from the caller's configuration (the road agent passes ``settings.VISION_PROVIDERS``). A
    provider this onnxruntime build lacks (CUDA with the CPU-only wheel) is dropped with a warning, once per
    process for each set of missing providers (this runs on every batch), and CPU takes over. A build that
    has CUDA but cannot start it (no GPU, no driver) falls back inside ONNX Runtime; ``Detector`` logs that.
    """
    import onnxruntime as ort

    wanted = [_PROVIDER_ALIASES.get(p.lower(), p) for p in (providers or ["CPUExecutionProvider"])]
    available = ort.get_available_providers()
    chosen = [p for p in dict.fromkeys(wanted) if p in available]
    missing = [p for p in dict.fromkeys(wanted) if p not in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    if missing and tuple(missing) not in _FALLBACKS_LOGGED:
        _FALLBACKS_LOGGED.add(tuple(missing))
        logger.warning(
            "execution provider(s) %s not available in this onnxruntime (it has %s); falling back to %s",
            ", ".join(missing),
            ", ".join(available),
            ", ".join(chosen),
        )
    return chosen


def detector_get(
    *,
    model_path: str | Path | None = None,
    providers: Iterable[str] | None = None,
    intra_op_threads: int | None = None,
) -> Detector:
    """Return the process-wide cached Detector for this model file and providers (created on first use)."""
    path = Path(model_path or DEFAULT_MODEL).resolve()
    chosen = providers_resolve(providers)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ModelLoadError(f"model not found: {path}") from exc
    key = (str(path), mtime, tuple(chosen), intra_op_threads)
    with _CACHE_LOCK:
        detector = _CACHE.get(key)
        if detector is None:
            detector = Detector(model_path=path, providers=chosen, intra_op_threads=intra_op_threads)
            _CACHE[key] = detector
        return detector


def images_detect(
    *,
    images: Sequence[ImageSource],
    model_path: str | Path | None = None,
    providers: Iterable[str] | None = None,
    conf: float | None = None,
    iou: float = 0.7,
    batch_size: int = 8,
    fast: bool = True,
) -> DetectionRun:
    """Detect defects in ``images`` with the cached detector for ``model_path`` (default: the shipped model)."""
    detector = detector_get(model_path=model_path, providers=providers)
    return detector.detect(images, conf=conf, iou=iou, batch_size=batch_size, fast=fast)


def classes_map(*, names: dict[int, str], model_name: str = "model") -> dict[int, str]:
    """Model class id -> defect class for the ids that map; the others are left out (and said once).

    Raises ModelLoadError when no class maps: such a model is not a road-damage detector."""
    mapped = {i: c for i, name in names.items() if (c := class_canonical(name)) is not None}
    if not mapped:
        raise ModelLoadError(
            f"{model_name}: none of its classes {sorted(names.values())} is a pothole (D40, '*pothole*') or a "
            "crack (D00/D10/D20, '*crack*')"
        )
    skipped = sorted(name for i, name in names.items() if i not in mapped)
    if skipped:
        logger.warning("%s: classes %s are neither pothole nor crack; their detections are dropped",
                       model_name, skipped)
    return mapped


def _names_parse(raw: str | None) -> dict[int, str]:
    if not raw:
        return {}
    try:
        value: Any = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return {}
    if isinstance(value, dict):
        return {int(k): str(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return dict(enumerate(map(str, value)))
    return {}


def _imgsz_parse(raw: str | None, shape: Sequence[Any]) -> tuple[int, int]:
    if raw:
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = None
        if isinstance(value, int):
            return value, value
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return int(value[0]), int(value[1])
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        return shape[2], shape[3]
    return 640, 640


def _conf_recommended(model_path: Path) -> float:
    """The model card's recommended confidence (``<model>.json`` beside the model), else 0.25."""
    card = model_path.with_suffix(".json")
    try:
        value = json.loads(card.read_text()).get("conf_recommended")
        return float(value) if value is not None else FALLBACK_CONF
    except (OSError, ValueError, TypeError, AttributeError):
        return FALLBACK_CONF
