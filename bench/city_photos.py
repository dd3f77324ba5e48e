"""Photos at city scale (issue 18; the `photos` part of bench/city_scale.py): a patrol camera's survey run end
to end, with its time split by stage.

A vehicle drives the loaded city's streets at 8 m/s (a walk over connected segments: straight on mostly, a
turn now and then), its logger writing a GPX fix a second and its camera a frame a second. The frames are
../shared's road_survey_br survey frames (768x480 JPEG, real pavement; generated asphalt frames when ../shared
is absent), named by capture time as dash cameras do. `manage.py ingest_camera_run DIR --track GPX --sync`
then does what a deployment does with them: upload (the upload check with its full decode, the hash, placing
each frame on the track, storing the original and its row) and detection in batches of ROADS_BATCH_SIZE on
one process, as one vision worker does (the deployment's `-Q vision --concurrency 1`: one process per GPU or
machine, the engine's threads on every core): decode, model, the privacy blur and the kept copy, snapping to
the nearest segment, merging into defects (and their orders and segment conditions), and the rows.

Stages are timed by wrapping the functions that do them for the run (wall and process CPU); `sql` is every
query's time seen from Django, `db_server_cpu_s` the database backend's own CPU (/proc, same host). The whole
run is one transaction that is rolled back, in a temporary media folder: the city is left as it was (each
photo's transaction is then a savepoint, so commits' WAL flushes are not in the figures).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import resource
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path

import numpy as np

SPEED_M_S = 8.0  # a survey vehicle in town, about 29 km/h: a frame every 8 m
# stage -> the functions whose time is that stage's (module, attribute). The engine's decode and model steps
# run one after the other here: the worker hands it one batch per call, and it prefetches only across batches.
WRAPPED = {
    "engine_decode": [("vision.engine", "Detector.preprocess")],
    "model": [("vision.engine", "Detector.infer"), ("vision.engine", "Detector.postprocess")],
    "upload": [("agents.roads.services.cameras", "camera_frames_add")],
    "upload_check": [("agents.roads.services.photos", "image_upload_validate")],
    "detect": [("agents.roads.services.detection", "photos_detect")],
    "kept_copy_decode": [("agents.roads.services.detection", "kept_copy_decode")],
    "privacy": [("agents.roads.services.detection", "image_make_safe"),
                ("agents.roads.services.detection", "jpeg_encode")],
    "defects": [("agents.roads.services.detection", "photo_defects_record")],
    "snap": [("agents.roads.services.defects", "point_snap")],
}


class _Clock:
    """Wall and process-CPU seconds and calls per stage, and every SQL query's time."""

    def __init__(self):
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def add(self, stage: str, wall: float, cpu: float, calls: int = 1) -> None:
        self.wall[stage] += wall
        self.cpu[stage] += cpu
        self.calls[stage] += calls

    def wrap(self, stage: str, fn):
        def timed(*args, **kwargs):
            w, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(stage, time.perf_counter() - w, time.process_time() - c)

        return timed

    def sql(self, execute, sql, params, many, context):
        w = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.add("sql", time.perf_counter() - w, 0.0)


@contextmanager
def _timing(clock: _Clock):
    """The stages' functions wrapped for the block, and every query timed."""
    from django.db import connection

    saved = []
    for stage, targets in WRAPPED.items():
        for module, attr in targets:
            owner = import_module(module)
            for part in attr.split(".")[:-1]:  # a class's method: "Detector.infer"
                owner = getattr(owner, part)
            name = attr.rsplit(".", 1)[-1]
            saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, clock.wrap(stage, getattr(owner, name)))
    try:
        with connection.execute_wrapper(clock.sql):
            yield clock
    finally:
        for owner, attr, fn in reversed(saved):
            setattr(owner, attr, fn)


# ------------------------------------------------------------------------------------------------ the drive


def _bearing(a, b) -> float:
    return float(np.arctan2((b[1] - a[1]), (b[0] - a[0]) * np.cos(np.radians(a[1]))))


def _next_segment(*, node: int, heading: float, used: set[int], rng):
    """The segment to drive on from ``node``: straight on mostly (4 in 5), else any; its coordinates in driving
    order. Segments already driven are avoided while others are left."""
    from django.db.models import Q

    from city_ops.city.models import RoadSegment

    rows = list(RoadSegment.objects.filter(Q(source_id=node) | Q(target_id=node, oneway=False))
                .only("id", "source_id", "target_id", "geom", "length_m"))
    fresh = [s for s in rows if s.pk not in used] or rows
    if not fresh:
        return None
    options = [(s, list(s.geom.coords) if s.source_id == node else list(s.geom.coords)[::-1]) for s in fresh]
    if rng.random() < 0.8:
        return min(options, key=lambda o: abs(np.angle(np.exp(1j * (_bearing(o[1][0], o[1][1]) - heading)))))
    return options[int(rng.integers(len(options)))]


def patrol_line(*, length_m: float, rng) -> list[tuple[float, float]]:
    """(lon, lat) vertices of a drive of about ``length_m`` over connected segments from a random one."""
    from django.db.models import Max, Min

    from city_ops.city.models import RoadSegment

    span = RoadSegment.objects.aggregate(lo=Min("id"), hi=Max("id"))
    seg = RoadSegment.objects.filter(id__gte=int(rng.integers(span["lo"], span["hi"] + 1))).order_by("id").first()
    coords, node, used, driven = list(seg.geom.coords), seg.target_id, {seg.pk}, seg.length_m
    while driven < length_m:
        step = _next_segment(node=node, heading=_bearing(coords[-2], coords[-1]), used=used, rng=rng)
        if step is None:
            break
        seg, line = step
        coords += line[1:]
        node = seg.target_id if seg.source_id == node else seg.source_id
        used.add(seg.pk)
        driven += seg.length_m
    return coords


def _along(coords, distances_m: np.ndarray) -> np.ndarray:
    """Points (lon, lat) at the given distances along the polyline (flat-earth metres: a town's extent)."""
    xy = np.asarray(coords, dtype=float)
    lat0 = np.radians(xy[:, 1].mean())
    step = np.hypot(np.diff(xy[:, 0]) * 111_320 * np.cos(lat0), np.diff(xy[:, 1]) * 110_540)
    cum = np.concatenate([[0.0], np.cumsum(step)])
    d = np.clip(distances_m, 0, cum[-1])
    return np.column_stack([np.interp(d, cum, xy[:, 0]), np.interp(d, cum, xy[:, 1])])


def drive_write(*, folder: Path, frames: list[Path], rng, start: dt.datetime) -> tuple[Path, float]:
    """The drive's GPX (a fix a second with ~2 m GPS noise) and its frames linked into ``folder`` under
    dash-camera names (local time, mid-second); returns the GPX path and the drive's length in metres."""
    import gpxpy.gpx

    from city_ops.core.timeutil import city_tz

    seconds = len(frames) + 1
    line = patrol_line(length_m=SPEED_M_S * seconds + 50, rng=rng)
    fixes = _along(line, SPEED_M_S * np.arange(seconds + 1)) + rng.normal(0, 2e-5, (seconds + 1, 2))
    gpx = gpxpy.gpx.GPX()
    track, part = gpxpy.gpx.GPXTrack(name="bench patrol"), gpxpy.gpx.GPXTrackSegment()
    gpx.tracks.append(track)
    track.segments.append(part)
    for i, (lon, lat) in enumerate(fixes):
        part.points.append(gpxpy.gpx.GPXTrackPoint(lat, lon, time=start + dt.timedelta(seconds=i)))
    gpx_path = folder.parent / "track.gpx"
    gpx_path.write_text(gpx.to_xml())
    tz = city_tz()
    for i, src in enumerate(frames):
        when = (start + dt.timedelta(seconds=i + 0.5)).astimezone(tz)
        (folder / f"{when:%Y%m%d_%H%M%S}_{when.microsecond // 1000:03d}.jpg").symlink_to(src.resolve())
    return gpx_path, float(SPEED_M_S * seconds)


# ------------------------------------------------------------------------------------------------- the run


def _backend_cpu_s() -> float | None:
    """CPU seconds of this connection's database backend (a local server only), or None."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ingest(*, frames_dir: Path, gpx: Path) -> dict:
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    # As the operator types it (options given as words go through the parser's types).
    call_command("ingest_camera_run", str(frames_dir), "--track", str(gpx), "--vehicle", "bench patrol", "--sync",
                 "--json", stdout=out, stderr=err)
    return json.loads(out.getvalue())


def _per_image(clock: _Clock, n: int) -> dict:
    """Milliseconds per image of each stage (wall, and process CPU where the stage is ours to time)."""
    w, c = clock.wall, clock.cpu
    stages = {
        "upload": (w["upload"], c["upload"]),
        "upload_check_decode": (w["upload_check"], c["upload_check"]),
        "decode": (w["engine_decode"] + w["kept_copy_decode"], c["engine_decode"] + c["kept_copy_decode"]),
        "model": (w["model"], c["model"]),
        "privacy_blur_and_kept_jpeg": (w["privacy"], c["privacy"]),
        "snap": (w["snap"], c["snap"]),
        "merge_orders_condition": (w["defects"] - w["snap"], c["defects"] - c["snap"]),
        "sql_all_stages": (w["sql"], None),
    }
    return {name: {"wall_ms": round(wall * 1e3 / n, 2), **({"cpu_ms": round(cpu * 1e3 / n, 2)} if cpu is not None
                                                          else {})}
            for name, (wall, cpu) in stages.items()}


def photo_run(*, frames: list[Path], seed: int) -> dict:
    """One survey run of ``frames`` on the current database's city, rolled back; its figures."""
    from django.db import transaction
    from django.test import override_settings
    from django.utils import timezone

    from agents.roads.models import Defect, DefectSighting
    from city_ops.city.models import RoadSegment

    rng = np.random.default_rng(seed)
    start = (timezone.now() - dt.timedelta(days=1)).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="bench_photos_") as tmp:
        frames_dir = Path(tmp) / "frames"
        frames_dir.mkdir()
        with transaction.atomic():
            gpx, drive_m = drive_write(folder=frames_dir, frames=frames, rng=rng, start=start)
            clock = _Clock()
            db_cpu, wall, cpu = _backend_cpu_s(), time.perf_counter(), time.process_time()
            with override_settings(MEDIA_ROOT=str(Path(tmp) / "media")), _timing(clock):
                summary = _ingest(frames_dir=frames_dir, gpx=gpx)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            db_cpu = (_backend_cpu_s() - db_cpu) if db_cpu is not None else None
            sightings = DefectSighting.objects.filter(photo__camera_run_id=summary["run"]).count()
            defects_total = Defect.objects.count()
            transaction.set_rollback(True)
    n = max(1, summary["processed"])
    return {
        "segments": RoadSegment.objects.count(), "frames": len(frames), "drive_km": round(drive_m / 1000, 2),
        "placed": summary["placed"], "processed": summary["processed"], "failed": summary["failed"],
        "defects_new": summary["defects"], "sightings": sightings, "defects_in_city": defects_total,
        "orders": summary["kpis"]["orders_created"],
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "db_server_cpu_s": round(db_cpu, 1) if db_cpu is not None else None,
        "images_per_s": round(n / wall, 2), "images_per_cpu_s": round(n / cpu, 2),
        "queries": clock.calls["sql"], "queries_per_image": round(clock.calls["sql"] / n, 1),
        "snap_calls": clock.calls["snap"],
        "upload_s": round(clock.wall["upload"], 1), "detect_s": round(clock.wall["detect"], 1),
        "stages_ms_per_image": _per_image(clock, n),
    }


def engine_reference(*, frames: list[Path]) -> dict:
    """The bare engine (`Detector.detect`, batch ROADS_BATCH_SIZE) on the same frames: the vision stage alone."""
    from django.conf import settings

    from agents.roads.conf import conf
    from vision.engine import detector_get

    det = detector_get(model_path=settings.VISION_MODEL_PATH, providers=settings.VISION_PROVIDERS)
    det.detect([str(frames[0])])  # warm-up: session, threads
    wall, cpu = time.perf_counter(), time.process_time()
    det.detect([str(p) for p in frames], batch_size=int(conf("ROADS_BATCH_SIZE")))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"frames": len(frames), "images_per_s": round(len(frames) / wall, 2),
            "cpu_ms_per_image": round(cpu * 1e3 / len(frames), 1), "providers": det.providers}


def _reference_run(*, frames: list[Path], reference_db: str | None, database) -> dict | str:
    try:
        with database(reference_db):
            return photo_run(frames=frames, seed=6)
    except Exception as exc:  # an absent reference database is a note, not a failed benchmark
        return f"not measured: {type(exc).__name__}: {exc}"


def photos_bench(*, frames: int, reference_frames: int, reference_db: str | None, database) -> dict:
    """The survey run on this city and on the reference city, beside the bare engine; with the machine's load."""
    from agents.roads.conf import conf
    from bench.vision import SHARED_SURVEY, survey_frames_prepare

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_frames_") as tmp:
        paths = survey_frames_prepare(folder=Path(tmp), count=frames)
        source = "../shared road_survey_br" if paths[0].parent == SHARED_SURVEY else "generated (no ../shared)"
        out = {"frames_source": source, "vision_queue": "one process (-Q vision --concurrency 1), batch of "
               "ROADS_BATCH_SIZE, the engine's threads on every core", "cpu_count": os.cpu_count(),
               # no reference run asked for: the bare engine still gets one batch
               "engine_alone": engine_reference(frames=paths[: reference_frames or int(conf("ROADS_BATCH_SIZE"))]),
               "city": photo_run(frames=paths, seed=5)}
        out["reference_city"] = (_reference_run(frames=paths[:reference_frames], reference_db=reference_db,
                                                database=database)
                                 if reference_frames > 0 else "not measured: --photo-reference-frames 0")
    out["load_avg_1m"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out
