"""Sections of the model card for a two-class model (`vision.train.model_card_render` assembles the card):
classes, data sources and licences, per-source evaluation against the issue's aims, training history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RDD_CODES = {"pothole": "RDD2022 D40", "crack": "RDD2022 D00/D10/D20 as one class"}

# The aims of issue 17: (source, class, least mAP50). False boxes: fewer than FP_AIM per 20 defect-free photos.
AIMS = (("phone", "pothole", 0.80), ("survey", "crack", 0.50), ("survey", "pothole", 0.60))
FP_AIM = 1.0


def class_list(names: dict[int, str]) -> str:
    """``0 = pothole`` (RDD2022 D40), ..."""
    return ", ".join(
        f"`{i} = {n}`" + (f" ({RDD_CODES[n.lower()]})" if n.lower() in RDD_CODES else "") for i, n in sorted(names.items())
    )


def data_section(*, evaluation: dict[str, Any] | None, credit: str, survey_credit: str) -> str:
    """Sources and licences; the survey frames and generated pavement only where the model was evaluated on them."""
    lines = [
        f"- Phone photos: {credit}. 326 training and 24 validation close-up photos, 640x640, potholes boxed"
        " upstream (the dataset's own split)."
    ]
    if evaluation:
        lines += [
            f"- Survey frames: {survey_credit}. 2,011 forward-looking frames (768x480) from a survey vehicle's roof"
            " camera, Espírito Santo, Rio Grande do Sul and the Federal District, 2014-2017, with pixel masks of"
            " potholes and cracks turned into boxes by `vision.masks` (connected components; pieces of one crack"
            " merged; specks dropped: see the module's rules). Split by photo, fixed hash: 1,811 training, 200"
            " validation frames. Consecutive frames of one road overlap, so a validation frame can have a"
            " near neighbour in training: the survey figures are optimistic for an unseen road.",
            "- Boxes over masks for a sample of six frames (pothole masks cyan in magenta boxes, crack masks"
            " yellow in green boxes): `road_damage_boxes.png`. The masks miss some defects (a visible pothole"
            " unmasked in one sample frame), which the model is then taught to ignore.",
            "- Defect-free pavement: 200 generated pictures (`vision.masks.pavement_image`: grain, wear, paint,"
            " shadows, stains; half with a horizon like a survey frame) in training, 50 others in validation,"
            " with empty label files.",
        ]
    return "\n".join(lines) + "\n"


def history_rows(
    *, previous: Path, extra: dict[str, Any], metrics, evaluation: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The shipped model's history with this export's stage appended (a stage exported again replaces its row)."""
    rows: list[dict[str, Any]] = []
    try:
        prior = json.loads(Path(previous).read_text())
    except (OSError, ValueError):
        prior = None
    if isinstance(prior, dict):
        rows = list(prior.get("history") or [_first_row(prior)])
    stage = Path(str(extra.get("run_dir", "this run"))).name
    rows = [r for r in rows if r.get("stage") != stage]
    rows.append({
        "stage": stage,
        "epochs": extra.get("epochs_run"),
        "result": _result_summary(metrics=metrics, evaluation=evaluation),
        "shipped": True,
    })
    return rows


def _first_row(prior: dict[str, Any]) -> dict[str, Any]:
    """A row for a shipped model from before the history was kept (its JSON's own figures)."""
    training, validation = prior.get("training") or {}, prior.get("validation") or {}
    names = "/".join(str(v) for v in (prior.get("names") or {}).values())
    return {
        "stage": Path(str(training.get("run_dir", "earlier"))).name + " and before",
        "epochs": training.get("epochs_total"),
        "result": f"{names}: mAP50 {validation.get('map50', float('nan')):.3f} on {validation.get('images', '?')} photos",
        "shipped": True,
    }


def _result_summary(*, metrics, evaluation: dict[str, Any] | None) -> str:
    if not evaluation:
        return f"mAP50 {metrics.map50:.3f} on {metrics.images} photos"
    parts = [
        f"{part} {name} {figures['map50']:.3f}"
        for part, split in evaluation["splits"].items()
        for name, figures in split["classes"].items()
    ]
    fp = evaluation.get("false_boxes")
    if fp:
        parts.append(f"{fp['per_20']:.1f} false boxes/20 clean photos")
    return "mAP50 " + "; ".join(parts)


def history_section(history: list[dict[str, Any]] | None) -> str:
    """Training history as a short table."""
    if not history:
        return ""
    rows = "\n".join(
        f"| {r.get('stage')} | {r.get('epochs', '?')} | {r.get('result', '')} | {'yes' if r.get('shipped') else 'no'} |"
        for r in history
    )
    return f"\n### History\n\n| stage | epochs | result | shipped |\n|---|---|---|---|\n{rows}\n"


def _interval(figures: dict[str, Any]) -> str:
    low, high = figures.get("map50_low"), figures.get("map50_high")
    return f" ({low:.2f}-{high:.2f})" if low is not None and high is not None else ""


def evaluation_section(evaluation: dict[str, Any]) -> str:
    """Per source and class: mAP50 with its 95% bootstrap interval, P and R at the recommended confidence;
    false boxes on defect-free photos; each of the issue's aims, reached or not."""
    rows = []
    for part, split in evaluation["splits"].items():
        for name, f in split["classes"].items():
            rows.append(
                f"| {part} ({split['images']} photos) | {name} | {f['instances']} | {f['map50']:.3f}{_interval(f)} |"
                f" {f['precision']:.3f} | {f['recall']:.3f} |"
            )
    fp = evaluation.get("false_boxes")
    fp_line = (
        f"\nOn {fp['photos']} defect-free validation photos ({_sources(fp)})"
        f" the exported model, run through `vision.engine` at the recommended confidence {fp['conf']:.2f}, drew"
        f" {fp['boxes']} boxes on {fp['photos_flagged']} photos: **{fp['per_20']:.2f} false boxes per 20 photos**.\n"
        if fp else ""
    )
    return (
        "\n## Per source and class (validation photos of each source, 95% bootstrap interval over the photos)\n\n"
        "| source | class | defects | mAP50 | P at rec. conf | R at rec. conf |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows) + "\n" + fp_line + _aims_table(evaluation)
    )


def _sources(fp: dict[str, Any]) -> str:
    """"50 generated pavement, 2 survey frames with blank masks"."""
    what = {"pavement": "generated pavement", "survey": "survey frames with blank masks"}
    return ", ".join(f"{n} {what.get(k, k + ' photos with blank masks')}" for k, n in sorted((fp.get("sources") or {}).items()))


def _aims_table(evaluation: dict[str, Any]) -> str:
    rows = []
    for part, name, least in AIMS:
        f = evaluation["splits"].get(part, {}).get("classes", {}).get(name)
        if f is None:
            rows.append(f"| {name} mAP50 on {part} >= {least:.2f} | not measured | no |")
            continue
        rows.append(f"| {name} mAP50 on {part} >= {least:.2f} | {f['map50']:.3f}{_interval(f)} | {_verdict(f, least)} |")
    fp = evaluation.get("false_boxes")
    if fp:
        reached = "yes" if fp["per_20"] < FP_AIM else "no"
        rows.append(f"| fewer than {FP_AIM:g} false box per 20 defect-free photos | {fp['per_20']:.2f} | {reached} |")
    table = "\n### The aims\n\n| aim | measured | reached |\n|---|---|---|\n" + "\n".join(rows) + "\n"
    return table + (NEXT_STAGE if any(not row.endswith("| yes |") for row in rows) else "")


NEXT_STAGE = """
Not every aim is reached. Next stage: go on from this model's weights with a longer run
(`python -m vision.train --data DST/data.yaml --init-weights vision/models/road_damage.onnx --imgsz 416
--time 3 --save-period 1 --out RUN --no-export`; an interrupted run continues with `--resume RUN`), without
`--freeze` once the crack class has settled, so the backbone learns crack texture too; or, on a GPU,
`--device 0` with a larger model (`--model yolov8s.yaml`, from scratch: the shipped weights fit yolov8n
only) at 640 px, where the survey frames' small potholes keep more pixels.
"""


def _verdict(figures: dict[str, Any], least: float) -> str:
    if figures["map50"] >= least:
        return "yes"
    high = figures.get("map50_high")
    return "no (the interval reaches it)" if high is not None and high >= least else "no"
