"""Camera runs and fixed cameras: frames placed on a GPS track (or at the camera's spot), near-duplicates of
the same spot skipped, the rest stored like any photo and sent to the vision queue in batches."""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.gis.geos import LineString
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import F
from django.utils import timezone
from PIL import Image

from city_ops.city.geovalidate import GeometryInputError, city_check
from city_ops.core.services import audit_record
from city_ops.core.timeutil import city_tz

from ..conf import conf
from ..domain.exif import exif_time_read
from ..domain.track import Track, TrackError, frame_time_read, frames_place, name_time_parse, track_read
from ..models import CameraRun, FixedCamera, InspectionPhoto
from .photos import PhotosRejected, Placement, photos_enqueue, photos_receive

log = logging.getLogger(__name__)
FRAME_SUFFIXES = {".jpg", ".jpeg", ".png", ".heic", ".heif"}


class CameraRunError(Exception):
    """A camera run cannot start or take frames (bad track, run already finished...)."""


@dataclass
class FrameIn:
    """A frame to ingest: the upload, its capture time (aware) and where the time came from."""

    upload: object
    when: dt.datetime | None
    time_source: str


@dataclass
class FramesOutcome:
    """What happened to one batch of frames."""

    placed: list[int] = field(default_factory=list)  # photo ids stored (new or already known)
    duplicate: int = 0
    off_track: int = 0
    rejected: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-ready counts and reasons."""
        return {
            "placed": len(self.placed),
            "duplicate": self.duplicate,
            "off_track": self.off_track,
            "rejected": self.rejected,
        }


def run_track(run: CameraRun) -> Track:
    """The run's stored GPS track."""
    pts = run.track_points or []
    return Track(
        times=[p[0] for p in pts], lons=[p[1] for p in pts], lats=[p[2] for p in pts], name=run.track_name
    )


def camera_run_start(*, vehicle: str, gpx: str | bytes, user=None, client_name: str = "") -> CameraRun:
    """Start a run from the vehicle's GPX track; CameraRunError for a track that cannot place frames."""
    vehicle = (vehicle or "").strip()
    if not vehicle:
        raise CameraRunError("name the vehicle")
    try:
        track = track_read(text=gpx)
    except TrackError as exc:
        raise CameraRunError(str(exc)) from None
    coords = track.coords()
    try:
        city_check(coords, what="the GPX track", margin_m=float(conf("ROADS_CITY_MARGIN_M")))
    except GeometryInputError as exc:
        raise CameraRunError(str(exc)) from None
    line = LineString(coords if len(coords) > 1 else coords * 2, srid=4326)
    run = CameraRun.objects.create(
        vehicle=vehicle[:60],
        track_name=track.name[:200],
        track=line,
        track_points=[[round(t, 3), lon, lat] for t, lon, lat in zip(track.times, track.lons, track.lats)],
        track_start=track.start,
        track_end=track.end,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        client_name=client_name[:100],
    )
    audit_record(
        action="camera_run.started",
        obj=run,
        actor=user,
        actor_label=client_name,
        changes={"vehicle": vehicle, "track_points": len(coords)},
    )
    return run


def _last_kept_before(run: CameraRun, when: dt.datetime) -> tuple[float, float] | None:
    prev = (
        InspectionPhoto.objects.filter(camera_run=run, taken_at__lte=when)
        .order_by("-taken_at", "-id")
        .values_list("location", flat=True)
        .first()
    )
    return (prev.x, prev.y) if prev is not None else None


def camera_frames_add(*, run: CameraRun, frames: Sequence[FrameIn], enqueue: bool = True) -> FramesOutcome:
    """Place frames on the run's track, skip near-duplicates and off-track ones, store the rest.

    A bad frame (not an image, truncated) is reported and skipped; the others are kept. Stored frames are sent
    to the vision queue in batches of ROADS_BATCH_SIZE (``enqueue``).
    """
    if run.status == CameraRun.Status.DONE:
        raise CameraRunError(f"camera run #{run.pk} is finished; start a new run")
    out = FramesOutcome()
    timed = [(str(i), f.when) for i, f in enumerate(frames) if f.when is not None]
    for i, f in enumerate(frames):
        if f.when is None:
            out.rejected.append(
                {
                    "file": getattr(f.upload, "name", str(i)),
                    "code": "no_time",
                    "detail": "no capture time (EXIF, file name or taken_at) to place it on the track",
                }
            )
    track = run_track(run)
    first = min((w for _, w in timed), default=None)
    new_ids: list[int] = []

    def store(fp) -> bool:
        # Called in time order for each frame about to be kept: store it, or report why it cannot be.
        frame = frames[int(fp.key)]
        try:
            received = photos_receive(
                files=[frame.upload],
                source=InspectionPhoto.Source.VEHICLE,
                camera_run=run,
                uploader=run.created_by,
                client_name=run.client_name,
                enqueue=False,
                placements=[
                    Placement(
                        lon=fp.lon,
                        lat=fp.lat,
                        location_source=InspectionPhoto.LocationSource.TRACK,
                        taken_at=fp.when,
                        taken_at_source=frame.time_source,
                    )
                ],
            )
        except PhotosRejected as exc:
            out.rejected.extend(e.as_dict() for e in exc.errors)
            return False
        out.placed.append(received[0].photo.pk)
        if received[0].created:
            new_ids.append(received[0].photo.pk)
        return True

    if timed:
        placement = frames_place(
            frames=timed,
            track=track,
            min_spacing_m=float(conf("ROADS_FRAME_MIN_SPACING_M")),
            tolerance_s=float(conf("ROADS_TRACK_TOLERANCE_S")),
            last_kept=_last_kept_before(run, first),
            accept=store,
        )
        out.duplicate = placement.count("duplicate")
        out.off_track = placement.count("off_track")
    CameraRun.objects.filter(pk=run.pk).update(
        frames_received=F("frames_received") + len(frames),
        frames_placed=F("frames_placed") + len(new_ids),
        frames_duplicate=F("frames_duplicate") + out.duplicate,
        frames_off_track=F("frames_off_track") + out.off_track,
        frames_rejected=F("frames_rejected") + len(out.rejected),
    )
    if enqueue:
        photos_enqueue(photo_ids=new_ids)
    return out


def camera_run_finish(*, run: CameraRun) -> CameraRun:
    """No more frames: the run is processing until detection has finished every placed frame (then done)."""
    CameraRun.objects.filter(pk=run.pk, status=CameraRun.Status.RECEIVING).update(
        status=CameraRun.Status.PROCESSING
    )
    CameraRun.objects.filter(
        pk=run.pk,
        status=CameraRun.Status.PROCESSING,
        frames_placed__lte=F("frames_processed") + F("frames_failed"),
    ).update(status=CameraRun.Status.DONE, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def upload_time_read(*, upload, fallback: dt.datetime | None = None) -> tuple[dt.datetime | None, str]:
    """A posted frame's capture time: EXIF, else its file name, else ``fallback`` (the request's taken_at)."""
    tz = city_tz()
    when, source = None, ""
    try:
        pos = upload.tell()
        with Image.open(io.BytesIO(upload.read())) as im:
            when = exif_time_read(exif=im.getexif())
        upload.seek(pos)
        source = "exif" if when else ""
    except Exception:  # noqa: BLE001 - an unreadable file is refused by the upload check later
        upload.seek(0)
    if when is None and (when := name_time_parse(name=getattr(upload, "name", "") or "")):
        source = "filename"
    if when is None and fallback is not None:
        when, source = fallback, "request"
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when, source


def directory_frames(*, directory: Path, offset_s: float = 0.0) -> list[tuple[Path, FrameIn]]:
    """The image files of a folder (sorted by name) with their capture times (see core.track)."""
    tz = city_tz()
    paths = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)
    out = []
    for path in paths:
        ft = frame_time_read(path=path, naive_tz=tz, offset_s=offset_s)
        upload = SimpleUploadedFile(path.name, path.read_bytes())
        out.append((path, FrameIn(upload=upload, when=ft.when, time_source=ft.source)))
    return out


def camera_run_ingest_directory(
    *,
    directory: Path,
    gpx: str | bytes,
    vehicle: str,
    offset_s: float = 0.0,
    user=None,
    batch: int = 50,
    progress: Callable[[str], None] | None = None,
    enqueue: bool = True,
) -> tuple[CameraRun, FramesOutcome]:
    """The `ingest_camera_run` command's work: start a run, add the folder's frames in chunks, finish it."""
    run = camera_run_start(vehicle=vehicle, gpx=gpx, user=user)
    frames = directory_frames(directory=directory, offset_s=offset_s)
    total = FramesOutcome()
    for start in range(0, len(frames), batch):
        chunk = [f for _, f in frames[start : start + batch]]
        res = camera_frames_add(run=run, frames=chunk, enqueue=enqueue)
        total.placed += res.placed
        total.duplicate += res.duplicate
        total.off_track += res.off_track
        total.rejected += res.rejected
        if progress:
            progress(
                f"frames {min(start + batch, len(frames))}/{len(frames)}: placed {len(total.placed)}, "
                f"near-duplicates {total.duplicate}, off the track {total.off_track}, "
                f"rejected {len(total.rejected)}"
            )
    return camera_run_finish(run=run), total


def fixed_camera_snapshot(
    *,
    camera: FixedCamera,
    upload,
    taken_at: dt.datetime | None = None,
    client_name: str = "",
    enqueue: bool = True,
):
    """A fixed camera's snapshot: placed at the camera, snapped to the segment it watches, sent to detection."""
    if not camera.active:
        raise CameraRunError(f"camera {camera.name} is not active")
    when, source = upload_time_read(upload=upload, fallback=taken_at)
    if when is None or when > timezone.now() + dt.timedelta(hours=1):
        when, source = timezone.now(), "received"
    received = photos_receive(
        files=[upload],
        source=InspectionPhoto.Source.FIXED,
        fixed_camera=camera,
        client_name=client_name,
        enqueue=enqueue,
        placements=[
            Placement(
                lon=camera.location.x,
                lat=camera.location.y,
                location_source=InspectionPhoto.LocationSource.CAMERA,
                taken_at=when,
                taken_at_source=source,
            )
        ],
    )
    return received[0]
