"""Road-damage engine throughput vs ultralytics' own predict and vs the bare model, in one run.

    python -m bench.vision [--model vision/models/road_damage.onnx] [--images 8] [--rounds 2]
                           [--providers cpu|cuda] [--json]

For each case (12 MP phone photos 4000x3000 JPEG and small 640x640 JPEGs at batch 1 and batch 8; patrol
survey frames 768x480 JPEG at batch 8, two batches) it measures end-to-end images per second from file bytes
on disk to boxes for:

- engine: ``vision.engine.Detector.detect`` on the file paths;
- ultralytics: ``YOLO(onnx, task="detect").predict`` on the same paths (same ONNX file, same conf);
- model-only: ``session.run`` on an already preprocessed tensor of the shape the engine feeds: the limit no
  pipeline can beat.

Photos are real validation photos from ../shared upscaled to 12 MP, and survey frames are the first frames of
../shared/datasets/road_survey_br as they are (both generated when ../shared is absent).
Figures on a shared CPU are noisy: compare the ratios, which are measured side by side in the same run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vision.engine import ImageResult

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CITY_OPS_SHARED", REPO_ROOT.parent / "shared"))
SHARED_VALID = SHARED / "datasets/potholes/valid/images"
SHARED_SURVEY = SHARED / "datasets/road_survey_br/images"
SURVEY_CASE, SURVEY_SIZE, SURVEY_BATCH = "survey 768x480", (768, 480), 8
# The batch sizes measured per case: a patrol-camera run is sent to the vision worker in batches of
# ROADS_BATCH_SIZE (8), so survey frames are measured at that batch only.
CASE_BATCHES = {"12MP 4000x3000": (1, 8), "small 640x640": (1, 8), SURVEY_CASE: (SURVEY_BATCH,)}


def photos_prepare(*, folder: Path, count: int) -> dict[str, list[Path]]:
    """Write ``count`` 12 MP and ``count`` 640x640 JPEGs into ``folder``; return their paths per case."""
    sources = sorted(SHARED_VALID.glob("*.jpg"))[:count] if SHARED_VALID.is_dir() else []
    rng = np.random.default_rng(0)
    out: dict[str, list[Path]] = {"12MP 4000x3000": [], "small 640x640": []}
    for i in range(count):
        if sources:
            base = Image.open(sources[i % len(sources)]).convert("RGB")
        else:  # no ../shared: a textured synthetic road picture
            base = Image.fromarray(np.clip(rng.normal(120, 25, (640, 640, 3)), 0, 255).astype(np.uint8))
        small = folder / f"small_{i}.jpg"
        base.resize((640, 640)).save(small, quality=90)
        big = folder / f"big_{i}.jpg"
        base.resize((4000, 3000), Image.Resampling.BICUBIC).save(big, quality=90)
        out["small 640x640"].append(small)
        out["12MP 4000x3000"].append(big)
    out[SURVEY_CASE] = survey_frames_prepare(folder=folder, count=2 * SURVEY_BATCH)
    return out


def survey_frames_prepare(*, folder: Path, count: int) -> list[Path]:
    """``count`` survey frames (768x480 JPEG): ../shared's as they are, else generated asphalt frames."""
    sources = sorted(SHARED_SURVEY.glob("*.jpg"))[:count] if SHARED_SURVEY.is_dir() else []
    if len(sources) == count:
        return sources
    rng = np.random.default_rng(1)
    w, h = SURVEY_SIZE
    frames = []
    for i in range(count):
        path = folder / f"survey_{i}.jpg"
        Image.fromarray(np.clip(rng.normal(115, 20, (h, w, 3)), 0, 255).astype(np.uint8)).save(path, quality=85)
        frames.append(path)
    return frames


def _rates(fns: dict, *, images: dict, rounds: int) -> dict[str, float]:
    """Images/second of each function, best of ``rounds``; rounds interleave the functions so that load from
    other processes on a shared machine hits all of them alike."""
    for fn in fns.values():
        fn()  # warm-up: first-call allocations, file cache
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: images[name] / best[name] for name in fns}


def _case_measure(
    *, det, yolo, paths: list[str], batch: int, conf: float, device: str, rounds: int, case: str
) -> dict:
    """One table row: engine, engine without prefetch, ultralytics and the bare model on the same photos."""
    timings = {}
    imgsz = det.imgsz[0]

    def engine():
        timings["last"] = det.detect(paths, conf=conf, batch_size=batch).timings

    def engine_serial():
        det.detect(paths, conf=conf, batch_size=batch, prefetch=False)

    def ultra():
        yolo.predict(paths, imgsz=imgsz, conf=conf, batch=batch, device=device, verbose=False)

    # The same tensor shape the engine feeds for this case (rectangle letterbox for 4:3).
    n_model = min(batch, len(paths))
    prepared = det.preprocess(
        sources=paths[:n_model], results=[ImageResult(source=p) for p in paths[:n_model]], offset=0, fast=True
    )
    tensor = np.concatenate([t for t, _ in prepared])
    repeats = len(paths) // n_model

    def model_only():
        for _ in range(repeats):
            det.infer(tensor)

    n = len(paths)
    rates = _rates(
        {"engine": engine, "engine_serial": engine_serial, "ultralytics": ultra, "model": model_only},
        images={"engine": n, "engine_serial": n, "ultralytics": n, "model": repeats * n_model},
        rounds=rounds,
    )
    e, u, m = rates["engine"], rates["ultralytics"], rates["model"]
    t = timings["last"]
    return {
        "case": case,
        "batch": batch,
        "input_shape": list(tensor.shape[1:]),
        "engine_img_s": round(e, 2),
        "engine_no_prefetch_img_s": round(rates["engine_serial"], 2),
        "ultralytics_img_s": round(u, 2),
        "model_only_img_s": round(m, 2),
        "engine_vs_ultralytics": round(e / u, 2),
        "engine_time_vs_model_only": round(m / e, 2),
        "engine_steps_ms_per_img": {
            "preprocess": round(t.preprocess_ms / t.images, 2),
            "inference": round(t.inference_ms / t.images, 2),
            "postprocess": round(t.postprocess_ms / t.images, 2),
        },
    }


def bench_run(*, model: Path, count: int, rounds: int, providers: list[str], conf: float) -> dict:
    """Measure all cases; return a JSON-ready dict of images/second and ratios."""
    from vision.engine import detector_get
    from vision.train import ultralytics_offline_prepare

    ultralytics_offline_prepare()
    from ultralytics import YOLO

    det = detector_get(model_path=model, providers=providers)
    device = "cuda:0" if "CUDAExecutionProvider" in det.providers else "cpu"
    yolo = YOLO(str(model), task="detect")
    imgsz = det.imgsz[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_vision_") as tmp:
        cases = photos_prepare(folder=Path(tmp), count=count)
        survey_source = "../shared road_survey_br" if cases[SURVEY_CASE][0].parent == SHARED_SURVEY else "generated"
        for case, paths in cases.items():
            for batch in CASE_BATCHES[case]:
                rows.append(
                    _case_measure(
                        det=det,
                        yolo=yolo,
                        paths=[str(p) for p in paths],
                        batch=batch,
                        conf=conf,
                        device=device,
                        rounds=rounds,
                        case=case,
                    )
                )
    return {
        "model": str(model),
        "imgsz": imgsz,
        "providers": det.providers,
        "images_per_case": count,
        "survey_frames": 2 * SURVEY_BATCH,
        "survey_source": survey_source,
        "rounds": rounds,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "rows": rows,
    }


def table_print(report: dict) -> None:
    """Human-readable table."""
    print(
        f"model {report['model']} imgsz {report['imgsz']} on {report['providers'][0]}, "
        f"{report['images_per_case']} images/case, best of {report['rounds']}, load avg {report['load_avg_1m']}"
    )
    head = f"{'case':16} {'batch':>5} {'engine':>9} {'ultralyt.':>9} {'model':>9} {'eng/ultra':>10} {'eng/model time':>15}  engine steps ms/img (pre/inf/post)"
    print(head)
    print("-" * len(head))
    for r in report["rows"]:
        s = r["engine_steps_ms_per_img"]
        print(
            f"{r['case']:16} {r['batch']:>5} {r['engine_img_s']:>9.2f} {r['ultralytics_img_s']:>9.2f} "
            f"{r['model_only_img_s']:>9.2f} {r['engine_vs_ultralytics']:>9.2f}x {r['engine_time_vs_model_only']:>14.2f}x"
            f"  {s['preprocess']:.1f}/{s['inference']:.1f}/{s['postprocess']:.1f}"
        )
    print(
        "(images/second; eng/ultra > 1 means the engine is faster; eng/model time = engine time per image / "
        "bare session.run time per image)"
    )


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    from vision.engine import DEFAULT_MODEL

    p = argparse.ArgumentParser(prog="python -m bench.vision", description="Road-damage engine benchmark")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--images", type=int, default=6, help="images per case (survey frames: always 16)")
    p.add_argument("--rounds", type=int, default=2, help="timed rounds per measurement (best is kept)")
    p.add_argument("--providers", default="cpu", help="cpu or cuda (falls back to CPU when absent)")
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if not args.model.is_file():
        print(f"error: model not found: {args.model}", file=sys.stderr)
        return 2
    providers = (
        ["CUDAExecutionProvider", "CPUExecutionProvider"]
        if args.providers == "cuda"
        else ["CPUExecutionProvider"]
    )
    # ultralytics prints to stdout on first use; keep stdout for the report alone.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        report = bench_run(
            model=args.model, count=args.images, rounds=args.rounds, providers=providers, conf=args.conf
        )
    finally:
        sys.stdout = real_stdout
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        table_print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
