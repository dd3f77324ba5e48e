"""Training/export: the tiny epoch proves train + export work offline and write the metadata the engine reads."""

from __future__ import annotations

import ast
import json

import onnxruntime as ort
import pytest

from vision.train import TrainError, ValMetrics, aug_parse, dataset_yaml_write, model_card_render, model_train


def test_tiny_epoch_trains_and_exports_onnx_with_metadata(tiny_run):
    assert tiny_run.onnx_path.is_file() and tiny_run.onnx_path.suffix == ".onnx"
    session = ort.InferenceSession(str(tiny_run.onnx_path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert ast.literal_eval(meta["names"]) == {0: "Pothole"}
    assert ast.literal_eval(meta["imgsz"]) == [64, 64]
    assert int(meta["stride"]) == 32
    shape = session.get_inputs()[0].shape
    assert not isinstance(shape[0], int), f"batch axis must be dynamic, got {shape}"
    m = tiny_run.metrics
    assert 0 <= m.map50 <= 1 and 0 <= m.precision <= 1 and 0 <= m.conf_recommended <= 1
    assert m.images == 4 and m.instances == 8
    assert m.frame == "letterbox"
    assert m.map50_low is not None and 0 <= m.map50_low <= m.map50_high <= 1


def test_augmentation_settings_reach_ultralytics_and_the_card(tiny_run):
    import yaml

    run_args = yaml.safe_load((tiny_run.onnx_path.parent.parent / "args.yaml").read_text())
    assert run_args["mixup"] == 0.05 and run_args["degrees"] == 2.0
    card = model_card_render(metrics=tiny_run.metrics, imgsz=64, extra=tiny_run.extra, command=None, args=run_args)
    assert "mixup=0.05" in card and "degrees=2.0" in card


def test_aug_parse_accepts_known_numbers_and_names_what_is_wrong():
    assert aug_parse(items=["mixup=0.1", "multi-scale=0.25"]) == {"mixup": 0.1, "multi_scale": 0.25}
    with pytest.raises(TrainError, match="KEY=VALUE"):
        aug_parse(items=["mixp=0.1"])
    with pytest.raises(TrainError, match="KEY=VALUE"):
        aug_parse(items=["pretrained=1"])  # not an augmentation: would fetch weights
    with pytest.raises(TrainError, match="not a number"):
        aug_parse(items=["mixup=lots"])
    with pytest.raises(TrainError, match="negative"):
        aug_parse(items=["scale=-1"])


def test_cli_rejects_a_bad_augmentation_before_writing_anything(tmp_path, capfd):
    from vision.train import main

    out = tmp_path / "run"
    assert main(["--aug", "mixp=0.1", "--out", str(out), "--data", str(tmp_path)]) == 2
    assert "mixp" in capfd.readouterr().err and not out.exists()


def test_map50_interval_resamples_images():
    import numpy as np

    from vision.train import map50_interval

    def image(hit: bool):  # one pothole, one prediction that matches it (all 10 IoU thresholds) or not
        return {"tp": np.array([[hit] * 10]), "conf": np.array([0.9]), "pred_cls": np.array([0.0]),
                "target_cls": np.array([0.0])}

    def sink(images):
        return {k: [im[k] for im in images] for k in images[0]}

    low, high = map50_interval(per_image=sink([image(True)] * 6))
    assert low == high >= 0.99  # every resample is perfect (ultralytics' interpolated AP tops out at 0.995)
    low, high = map50_interval(per_image=sink([image(True)] * 3 + [image(False)] * 3))
    assert low < 0.5 < high  # half the photos found: the interval straddles the point figure
    assert map50_interval(per_image={}) is None


def test_dataset_mirror_leaves_source_untouched(tmp_path):
    src = tmp_path / "ds"
    for split in ("train", "valid"):
        (src / split / "images").mkdir(parents=True)
        (src / split / "labels").mkdir(parents=True)
        (src / split / "images" / "a.jpg").write_bytes(b"x")
        (src / split / "labels" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (src / "data.yaml.orig").write_text("names: ['Pothole']\n")
    before = sorted(p.relative_to(src) for p in src.rglob("*"))
    out = dataset_yaml_write(data=src, work_dir=tmp_path / "work")
    text = out.read_text()
    mirror = tmp_path / "work" / "datasets" / "ds" / "train"
    assert str(mirror / "images") in text and "Pothole" in text
    assert (mirror / "labels" / "a.txt").resolve() == (src / "train" / "labels" / "a.txt")
    assert sorted(p.relative_to(src) for p in src.rglob("*")) == before


def test_train_refuses_pt_names_and_missing_data(tmp_path):
    with pytest.raises(TrainError, match="yaml"):
        model_train(data=tmp_path, model="yolov8n.pt", out=tmp_path / "run")
    with pytest.raises(TrainError, match="not found"):
        dataset_yaml_write(data=tmp_path / "nope", work_dir=tmp_path)


def test_model_card_reports_metrics_and_threshold():
    metrics = ValMetrics(
        map50=0.81,
        map50_95=0.45,
        precision=0.8,
        recall=0.75,
        f1_best=0.77,
        conf_recommended=0.31,
        images=24,
        instances=34,
    )
    card = model_card_render(
        metrics=metrics,
        imgsz=416,
        extra={"epochs_run": 200, "epochs_total": 260},
        command="python -m vision.train",
        args={"imgsz": 416, "batch": 16},
    )
    assert "0.810" in card and "0.450" in card and "0.31" in card and "CC BY 4.0" in card
    assert "potholedetector-rksfu" in card and "Epochs run: 260 in all; last stage 200" in card
    json.dumps(metrics.__dict__)


def test_export_ships_card_and_never_replaces_a_better_model(tiny_run, tiny_dataset, tmp_path):
    from vision.train import run_export

    run_dir = tiny_run.onnx_path.parent.parent
    first = run_export(run_dir=run_dir, data=tiny_dataset, imgsz=64, ship_dir=tmp_path)
    assert first.extra["shipped"] and (tmp_path / "road_damage.onnx").is_file()
    card = (tmp_path / "road_damage.md").read_text()
    assert "Recommended confidence threshold" in card
    meta = json.loads((tmp_path / "road_damage.json").read_text())
    assert meta["conf_recommended"] == first.metrics.conf_recommended
    meta["validation"]["map50"] = 2.0  # pretend a better model is shipped already
    (tmp_path / "road_damage.json").write_text(json.dumps(meta))
    second = run_export(run_dir=run_dir, data=tiny_dataset, imgsz=64, ship_dir=tmp_path)
    assert second.extra["shipped"] is False
    assert json.loads((tmp_path / "road_damage.json").read_text())["validation"]["map50"] == 2.0
    assert meta["validation"]["frame"] == "letterbox"

    # A card measured in ultralytics' rect frame (older cards: no "frame") is not compared as it stands: the
    # shipped ONNX is validated again, so an inflated figure cannot keep an equal or better model out.
    del meta["validation"]["frame"]
    (tmp_path / "road_damage.json").write_text(json.dumps(meta))
    third = run_export(run_dir=run_dir, data=tiny_dataset, imgsz=64, ship_dir=tmp_path)
    assert third.extra["shipped"] is True
    again = json.loads((tmp_path / "road_damage.json").read_text())["validation"]
    assert again["map50"] == third.metrics.map50 and again["frame"] == "letterbox"


def test_training_validates_each_epoch_as_the_engine_infers(tiny_dataset):
    """Ultralytics' trainer validates on rect batches padded half a stride beyond imgsz (64 px of picture in a
    96 px frame here); ours letterboxes each image to imgsz, as vision.engine does."""
    from types import SimpleNamespace

    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.data.utils import check_det_dataset

    from vision.train import _engine_val_trainer, _split_images

    data_yaml = dataset_yaml_write(data=tiny_dataset)
    cls = _engine_val_trainer()
    trainer = cls.__new__(cls)  # only build_dataset is exercised: no model, optimiser or run directory
    trainer.args = get_cfg(overrides={"imgsz": 64, "batch": 4, "cache": False})
    trainer.model = SimpleNamespace(stride=torch.tensor([8.0, 16.0, 32.0]))
    trainer.data = check_det_dataset(str(data_yaml))
    folder = str(_split_images(data_yaml, "val")[0].parent)
    ours = trainer.build_dataset(folder, mode="val", batch=4)
    theirs = super(cls, trainer).build_dataset(folder, mode="val", batch=4)
    assert theirs.rect and (theirs.batch_shapes > 64).all()  # the frame the engine never sees
    assert not ours.rect
    assert ours[0]["img"].shape[-2:] == (64, 64)


def test_init_weights_must_be_a_local_checkpoint(tiny_dataset, tmp_path):
    with pytest.raises(TrainError, match="initial weights not found"):
        model_train(data=tiny_dataset, out=tmp_path / "run", init_weights=tmp_path / "yolov8n.pt")


def test_operating_point_is_the_most_recall_at_the_precision_floor():
    """Precision rises and recall falls with the threshold: the point is where precision reaches the floor."""
    import numpy as np

    from vision.train import operating_point

    grid = np.linspace(0, 1, 1000)
    p = np.clip(0.4 + 0.6 * grid, 0, 1)[None]
    r = np.clip(1.0 - grid**2, 0, 1)[None]
    conf, prec, rec = operating_point(p_curve=p, r_curve=r, min_precision=0.8)
    assert abs(conf - 2 / 3) < 0.002 and prec >= 0.8 and abs(rec - (1 - conf**2)) < 1e-9
    looser = operating_point(p_curve=p, r_curve=r, min_precision=0.6)
    assert looser[0] < conf and looser[2] > rec
    assert operating_point(p_curve=p, r_curve=r, min_precision=1.01) is None
    assert operating_point(p_curve=[], r_curve=[]) is None
    metrics = ValMetrics(
        map50=0.81, map50_95=0.45, precision=0.8, recall=0.75, f1_best=0.77, conf_recommended=round(conf, 3),
        images=24, instances=34, precision_recommended=prec, recall_recommended=rec, conf_f1=0.5,
    )
    card = model_card_render(metrics=metrics, imgsz=416, extra={}, command="python -m vision.train", args={})
    assert f"{conf:.2f}" in card and "precision at least 0.8" in card and f"{rec:.3f}" in card and "(0.50)" in card


def _perturbed_copy(src, dst, *, scale: float) -> None:
    """A per-epoch checkpoint like ultralytics' (EMA in half precision) whose weights are src's times scale."""
    import torch

    ckpt = torch.load(src, map_location="cpu", weights_only=False)
    net = (ckpt.get("ema") or ckpt["model"]).float()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    ckpt["ema"], ckpt["model"] = net.half(), None
    torch.save(ckpt, dst)


def test_weight_average_is_the_mean_of_weights_and_batch_norm_statistics(tiny_run, tmp_path):
    import torch

    from vision.swa import AverageError, epoch_checkpoints, weights_average

    best = tiny_run.onnx_path.parent / "best.pt"
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    for n, scale in enumerate((1.0, 0.5, 0.75)):  # ultralytics names them from epoch0
        _perturbed_copy(best, run / "weights" / f"epoch{n}.pt", scale=scale)
    with pytest.raises(AverageError, match="--save-period 1"):
        epoch_checkpoints(run_dir=run, last=4)
    with pytest.raises(AverageError, match="at least 2"):
        epoch_checkpoints(run_dir=run, last=1)
    chosen = epoch_checkpoints(run_dir=run, last=2)
    assert [e for e, _ in chosen] == [2, 3]  # 1-based, as in results.csv

    mean = weights_average(checkpoints=[p for _, p in chosen]).state_dict()
    one = weights_average(checkpoints=[chosen[0][1]]).state_dict()
    convs = [k for k in mean if k.endswith("conv.weight")]
    assert convs
    for k in convs:  # (0.5 + 0.75) / 2 = 0.625 of the original, 1.25 x the 0.5 copy
        assert torch.allclose(mean[k], one[k] * 1.25, atol=2e-3)
    norm = next(k for k in mean if k.endswith("bn.running_var"))
    assert torch.allclose(mean[norm], one[norm])  # the copies share their statistics: the mean is the same


def test_export_of_averaged_weights_says_so_on_the_card(tiny_run, tiny_dataset, tmp_path):
    import shutil

    from vision.train import run_export

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.onnx_path.parent.parent, run_dir)
    for n in range(3):
        _perturbed_copy(run_dir / "weights" / "best.pt", run_dir / "weights" / f"epoch{n}.pt", scale=1.0)
    with pytest.raises(TrainError, match="keeps 3 per-epoch checkpoints, 5 asked"):
        run_export(run_dir=run_dir, data=tiny_dataset, imgsz=64, average_last=5)
    result = run_export(run_dir=run_dir, data=tiny_dataset, imgsz=64, average_last=3, ship_dir=tmp_path / "ship")
    assert result.extra["averaged_epochs"] == {"first": 1, "last": 3, "count": 3}
    import torch

    saved = torch.load(run_dir / "weights" / "averaged.pt", map_location="cpu", weights_only=False)
    assert saved["averaged"] == {"epochs": [1, 2, 3]} and saved["train_args"]["imgsz"] == 64
    card = (tmp_path / "ship" / "road_damage.md").read_text()
    assert "mean of the last stage's last 3 epochs (1-3" in card and "fitness" not in card


def test_cli_prints_one_json_line_on_stdout_and_ultralytics_on_stderr(tiny_run, tiny_dataset, capfd):
    from vision.train import main

    run_dir = tiny_run.onnx_path.parent.parent
    assert main(["--export-only", str(run_dir), "--data", str(tiny_dataset), "--no-ship"]) == 0
    out, err = capfd.readouterr()
    lines = out.splitlines()
    assert len(lines) == 1, out[:500]
    result = json.loads(lines[0])
    assert result["shipped"] is False and result["frame"] == "letterbox" and 0 <= result["map50"] <= 1
    assert "mAP50" in err  # its validation progress went to stderr


def test_an_interrupted_run_resumes_from_its_last_epoch(tiny_dataset, tmp_path):
    """A run stopped after epoch 1 of 2 (its first checkpoint put back as last.pt, as a kill leaves it)
    goes on with epoch 2 under `--resume`, not from the start."""
    import csv
    import shutil

    from vision.train import main, model_resume

    run = model_train(data=tiny_dataset, imgsz=64, epochs=2, out=tmp_path / "run", batch=4, workers=0, cache=False,
                      verbose=False, save_period=1)
    shutil.copyfile(run / "weights" / "epoch0.pt", run / "weights" / "last.pt")  # named from epoch0
    with (run / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    (run / "results.csv").write_text(",".join(rows[0]) + "\n" + ",".join(rows[0].values()) + "\n")
    assert main(["--resume", str(run), "--no-export"]) == 0
    with (run / "results.csv").open() as fh:
        epochs = [int(float(r["epoch"])) for r in csv.DictReader(fh)]
    assert epochs == [1, 2]
    assert "--resume" in (run / "command.txt").read_text()
    with pytest.raises(TrainError, match="nothing to resume"):
        model_resume(run_dir=tmp_path / "empty")
