"""manage.py ingest_camera_run DIR --track TRACK.gpx --vehicle NAME [--time-offset S] [--sync] [--json]

Places a patrol camera's frames on the vehicle's GPS track by capture time (EXIF DateTimeOriginal, else a
timestamp in the file name, else the file's mtime; zone-less times are the city's local time), skips
near-duplicates of the same spot, stores the rest and sends them to the vision queue in batches. `--sync`
runs detection here instead (no worker needed) and shows its progress; `--wait` follows the workers.

Exit status (city_ops.core.exitcodes): 0 every frame taken, 1 some frames rejected (listed) and the rest kept,
2 the folder or track is unreadable or the folder holds no frame."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand

from city_ops.core.exitcodes import file_unreadable, ingest_command_finish


class Command(BaseCommand):
    help = (
        "Ingest a folder of patrol-camera frames placed on a GPX track; detection runs on the vision queue."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--track", type=Path, required=True, help="the vehicle's GPX track")
        parser.add_argument("--vehicle", default="", help="vehicle name (default: the folder's name)")
        parser.add_argument(
            "--time-offset",
            type=float,
            default=0.0,
            help="seconds to add to the frames' times (camera clock drift)",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--sync", action="store_true", help="run detection in this process (no worker)")
        mode.add_argument("--wait", action="store_true", help="wait for the workers and show progress")
        parser.add_argument("--timeout", type=float, default=600.0, help="seconds --wait waits at most")
        parser.add_argument("--json", action="store_true", help="print a JSON summary alone on stdout")

    def handle(self, *args, **opts):
        from agents.roads.models import CameraRun, InspectionPhoto
        from agents.roads.selectors import camera_run_kpis
        from agents.roads.services.cameras import CameraRunError, camera_run_ingest_directory
        from agents.roads.services.detection import photos_detect

        directory: Path = opts["directory"]
        if not directory.is_dir():
            raise file_unreadable(f"{directory} is not a directory")
        if not opts["track"].is_file():
            raise file_unreadable(f"{opts['track']} does not exist")
        say = self.stderr.write
        try:
            run, outcome = camera_run_ingest_directory(
                directory=directory,
                gpx=opts["track"].read_bytes(),
                vehicle=opts["vehicle"] or directory.name,
                offset_s=opts["time_offset"],
                progress=say,
                enqueue=not opts["sync"],
            )
        except CameraRunError as exc:
            raise file_unreadable(str(exc)) from None
        say(
            f"camera run #{run.pk}: {len(outcome.placed)} frames placed, {outcome.duplicate} near-duplicates "
            f"skipped, {outcome.off_track} off the track, {len(outcome.rejected)} rejected"
        )
        for r in outcome.rejected:
            say(f"  rejected {r['file']}: {r['detail']}")
        if opts["sync"]:
            from agents.roads.conf import conf

            ids = list(
                InspectionPhoto.objects.filter(camera_run=run, status=InspectionPhoto.Status.RECEIVED)
                .order_by("taken_at")
                .values_list("pk", flat=True)
            )
            size = int(conf("ROADS_BATCH_SIZE"))
            for start in range(0, len(ids), size):
                photos_detect(photo_ids=ids[start : start + size])
                run.refresh_from_db()
                say(
                    f"detection {run.frames_processed + run.frames_failed}/{run.frames_placed}: "
                    f"{run.defects_found} defects"
                )
        elif opts["wait"]:
            deadline = time.monotonic() + opts["timeout"]
            while True:
                run.refresh_from_db()
                say(
                    f"detection {run.frames_processed + run.frames_failed}/{run.frames_placed} ({run.progress_pct} %)"
                )
                if run.status == CameraRun.Status.DONE or time.monotonic() > deadline:
                    break
                time.sleep(2)
        run.refresh_from_db()
        kpis = camera_run_kpis(run=run)
        summary = {
            "run": run.pk,
            "vehicle": run.vehicle,
            "status": run.status,
            "placed": run.frames_placed,
            "duplicate": run.frames_duplicate,
            "off_track": run.frames_off_track,
            "rejected": outcome.rejected,
            "processed": run.frames_processed,
            "failed": run.frames_failed,
            "defects": run.defects_found,
            "kpis": kpis,
        }
        if opts["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            mean = kpis["mean_inference_ms"]
            self.stdout.write(
                f"camera run #{run.pk} ({run.status}): {summary['placed']} placed, "
                f"{summary['duplicate']} near-duplicates, {summary['processed']} processed, "
                f"{summary['defects']} new defects, {kpis['sightings_merged']} sightings merged, "
                f"{kpis['orders_created']} orders created"
                + (f", {mean:.1f} ms model time per frame" if mean is not None else "")
            )
        ingest_command_finish(
            recognised=len(outcome.placed) + outcome.duplicate + outcome.off_track + len(outcome.rejected),
            rejected=len(outcome.rejected), nothing=f"no frames in {directory}")
