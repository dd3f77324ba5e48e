"""Receiving inspection photos: validate every file, find where and when each was taken, store them all or
none, and send them to the vision queue after commit. Re-sending a file already received (same content hash)
returns the photo already stored.

Where a photo was taken, in this order:
1. a pin the user dropped on the map (``location_source="pin"``): a deliberate choice wins over everything;
2. the photo's EXIF GPS tags; tags that lie (0,0 "null island", or far outside the city) refuse the upload,
   since the phone's clock and GPS may be wrong in the same file (a pin overrides them);
3. the phone's position sent with the form (``lat``/``lon``, ``location_source="phone"``);
otherwise the upload is refused as missing its location. When it was taken: EXIF DateTimeOriginal, else the
form's ``taken_at``, else the time it was received.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.contrib.gis.geos import Point
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from PIL import Image

from city_ops.city.geovalidate import GeometryInputError, city_point_check
from city_ops.core.timeutil import city_tz
from city_ops.core.uploads import UploadError, image_upload_validate
from city_ops.queues import Queue
from vision.heif import heif_brand, heif_register

from ..conf import conf
from ..domain.exif import PhotoMeta, photo_meta_read
from ..models import CameraRun, FixedCamera, InspectionPhoto

log = logging.getLogger(__name__)
_FORMAT_EXT = {"JPEG": "jpg", "PNG": "png", "HEIF": "heic", "WEBP": "webp"}
_ORIENTATION_SWAPS = {5, 6, 7, 8}
NULL_ISLAND_M = 0.0001  # degrees: a fix this close to (0, 0) is "no fix" written as zeros


class PhotoRejected(Exception):
    """An upload refused with a reason the user can act on; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400, code: str = "invalid", file_name: str = ""):
        super().__init__(message)
        self.message, self.status, self.code, self.file_name = message, status, code, file_name

    def as_dict(self) -> dict:
        """The error as the API returns it."""
        return {"file": self.file_name, "code": self.code, "detail": self.message}


class PhotosRejected(Exception):
    """Some files of a request were refused; none of the request's files was stored."""

    def __init__(self, errors: list[PhotoRejected]):
        super().__init__("; ".join(f"{e.file_name or 'upload'}: {e.message}" for e in errors))
        self.errors = errors
        self.status = max((e.status for e in errors), key=lambda s: (s == 413, s == 415, s))


@dataclass(frozen=True)
class Placement:
    """A location and time decided by the caller (a camera frame on its track, a fixed camera)."""

    lon: float
    lat: float
    location_source: str
    taken_at: dt.datetime
    taken_at_source: str


@dataclass
class FormPosition:
    """What the form says about position and time (all optional)."""

    lon: float | None = None
    lat: float | None = None
    location_source: str = "phone"
    accuracy_m: float | None = None
    taken_at: dt.datetime | None = None


@dataclass
class Received:
    """One file's outcome: its photo and whether it was stored now (False: the same content was already here)."""

    photo: InspectionPhoto
    created: bool


@dataclass
class _Prepared:
    data: bytes
    sha256: str
    file_name: str
    image_format: str
    width: int
    height: int
    location: Point
    location_source: str
    accuracy_m: float | None
    device_location: Point | None
    taken_at: dt.datetime
    taken_at_source: str
    extra: dict = field(default_factory=dict)


def form_position_parse(*, data) -> FormPosition:
    """Read lat/lon/accuracy_m/location_source/taken_at from a form or JSON mapping; PhotoRejected if malformed."""

    def _float(name: str, lo: float, hi: float) -> float | None:
        raw = data.get(name) or ""
        raw = str(raw).strip()
        if raw == "":
            return None
        try:
            value = float(raw)
        except ValueError:
            raise PhotoRejected(f"'{name}' must be a number, not {raw[:30]!r}", code="bad_field") from None
        if not lo <= value <= hi:
            raise PhotoRejected(f"'{name}' must lie between {lo} and {hi}", code="bad_field")
        return value

    lat = _float("lat", -90, 90)
    lon = _float("lon", -180, 180)
    if (lat is None) != (lon is None):
        raise PhotoRejected("send both 'lat' and 'lon', or neither", code="bad_field")
    source = str(data.get("location_source") or "phone").strip().lower()
    if source not in ("phone", "pin"):
        raise PhotoRejected("'location_source' is 'phone' or 'pin'", code="bad_field")
    taken_at = time_field_parse(raw=data.get("taken_at"))
    return FormPosition(
        lon=lon,
        lat=lat,
        location_source=source,
        accuracy_m=_float("accuracy_m", 0, 100_000),
        taken_at=taken_at,
    )


def time_field_parse(*, raw, name: str = "taken_at") -> dt.datetime | None:
    """An ISO 8601 time from a form field (zone-less = the city's time); None when empty; PhotoRejected when it
    is not a time, or names one that does not exist (month 13)."""
    raw = str(raw or "").strip()
    if not raw:
        return None
    try:
        when = parse_datetime(raw)
    except ValueError:  # well-formed but impossible: Django raises instead of returning None
        when = None
    if when is None:
        raise PhotoRejected(f"'{name}' must be an ISO 8601 time, not {raw[:40]!r}", code="bad_field")
    return when.replace(tzinfo=city_tz()) if timezone.is_naive(when) else when


def _position_check(*, lon: float, lat: float, what: str, code_prefix: str, file_name: str) -> None:
    if abs(lon) < NULL_ISLAND_M and abs(lat) < NULL_ISLAND_M:
        raise PhotoRejected(
            f"{what} is 0,0 (a position written without a GPS fix); drop a pin on the map instead",
            code=f"{code_prefix}_null_island",
            file_name=file_name,
        )
    try:
        city_point_check(lon, lat, what=f"{what} ({lat:.5f}, {lon:.5f})", margin_m=float(conf("ROADS_CITY_MARGIN_M")))
    except GeometryInputError as exc:
        raise PhotoRejected(
            f"{exc}; drop a pin on the map instead", code=f"{code_prefix}_outside_city", file_name=file_name
        ) from None


def location_resolve(
    *, meta: PhotoMeta, form: FormPosition, file_name: str = ""
) -> tuple[Point, str, float | None, Point | None]:
    """(location, source, accuracy_m, phone position) by the rules in the module docstring."""
    phone = Point(form.lon, form.lat, srid=4326) if form.lon is not None else None
    if phone is not None and form.location_source == "pin":
        _position_check(lon=form.lon, lat=form.lat, what="the pin", code_prefix="pin", file_name=file_name)
        return phone, InspectionPhoto.LocationSource.PIN, form.accuracy_m, None
    if meta.has_gps:
        _position_check(
            lon=meta.lon,
            lat=meta.lat,
            what="the photo's GPS position",
            code_prefix="exif_gps",
            file_name=file_name,
        )
        return Point(meta.lon, meta.lat, srid=4326), InspectionPhoto.LocationSource.EXIF, None, phone
    if phone is not None:
        _position_check(
            lon=form.lon, lat=form.lat, what="the phone's position", code_prefix="phone", file_name=file_name
        )
        return phone, InspectionPhoto.LocationSource.PHONE, form.accuracy_m, phone
    why = f" ({meta.gps_problem})" if meta.gps_problem else ""
    raise PhotoRejected(
        f"the photo has no usable GPS tags{why}: send the phone's position (lat, lon) or drop a pin "
        "on the map",
        code="missing_location",
        file_name=file_name,
    )


def time_resolve(
    *, meta: PhotoMeta, form: FormPosition, now: dt.datetime | None = None
) -> tuple[dt.datetime, str]:
    """(taken_at, source): EXIF time unless the camera clock is clearly wrong (in the future), else the form's,
    else now. A zone-less EXIF time is the city's local time (what a phone in the city shows)."""
    now = now or timezone.now()
    if meta.taken_at is not None:
        when = meta.taken_at if meta.taken_at.tzinfo else meta.taken_at.replace(tzinfo=city_tz())
        if when <= now + dt.timedelta(hours=1) and when.year >= 2000:
            return when, "exif"
    if form.taken_at is not None and form.taken_at <= now + dt.timedelta(hours=1):
        return form.taken_at, "request"
    return now, "received"


def _safe_name(name: str) -> str:
    base = os.path.basename(name or "").strip() or "photo"
    return re.sub(r"[^\w.\- ]", "_", base)[:200]


def _prepare(*, checked, name: str, form: FormPosition, placement: Placement | None) -> _Prepared:
    data = checked.read()
    checked.seek(0)
    with Image.open(io.BytesIO(data)) as im:
        image_format = im.format or ""
        meta = photo_meta_read(image=im)
        try:
            orientation = int(im.getexif().get(0x0112, 1) or 1)
        except Exception:  # noqa: BLE001 - a broken orientation tag means "as stored"
            orientation = 1
        w, h = im.size
    if orientation in _ORIENTATION_SWAPS:
        w, h = h, w
    if placement is not None:
        location = Point(placement.lon, placement.lat, srid=4326)
        loc_source, accuracy, device = placement.location_source, None, None
        taken_at, time_source = placement.taken_at, placement.taken_at_source
    else:
        location, loc_source, accuracy, device = location_resolve(meta=meta, form=form, file_name=name)
        taken_at, time_source = time_resolve(meta=meta, form=form)
    return _Prepared(
        data=data,
        sha256=checked.sha256,
        file_name=name,
        image_format=image_format,
        width=w,
        height=h,
        location=location,
        location_source=loc_source,
        accuracy_m=accuracy,
        device_location=device,
        taken_at=taken_at,
        taken_at_source=time_source,
    )


def photos_enqueue(*, photo_ids: Sequence[int]) -> None:
    """Send photos to the vision queue once the current transaction commits: one task per photo, or one
    batch task for several (where the GPU worker's batch size pays off)."""
    ids = [int(i) for i in photo_ids]
    if not ids:
        return

    def _send():
        from ..tasks import detect_batch, detect_photo

        size = int(conf("ROADS_BATCH_SIZE"))
        if len(ids) == 1:
            detect_photo.apply_async(args=[ids[0]], queue=Queue.VISION.value)
            return
        for start in range(0, len(ids), size):
            detect_batch.apply_async(args=[ids[start : start + size]], queue=Queue.VISION.value)

    transaction.on_commit(_send)


def photos_receive(
    *,
    files: Sequence,
    form: FormPosition | None = None,
    uploader=None,
    client_name: str = "",
    source: str = InspectionPhoto.Source.CREW,
    camera_run: CameraRun | None = None,
    fixed_camera: FixedCamera | None = None,
    placements: Sequence[Placement | None] | None = None,
    enqueue: bool = True,
    synthetic: bool = False,
) -> list[Received]:
    """Validate and store uploaded image files; all or none. Returns one Received per file, in order.

    Raises PhotosRejected (every bad file, with its reason and HTTP status) and stores nothing when any file
    is refused. A file whose content is already stored returns that photo (created False) and changes nothing.
    New photos are sent to the vision queue after commit (``enqueue``).
    """
    form = form or FormPosition()
    prepared = _uploads_prepare(files=list(files), form=form, placements=placements)
    fields = {
        "source": source,
        "uploader": uploader if getattr(uploader, "is_authenticated", False) else None,
        "client_name": client_name[:100],
        "camera_run": camera_run,
        "fixed_camera": fixed_camera,
        "synthetic": synthetic,
    }
    results: list[Received | None] = [None] * len(prepared)
    written: list[str] = []
    try:
        with transaction.atomic():
            seen: dict[str, int] = {}
            for i, item in enumerate(prepared):
                if isinstance(item, InspectionPhoto):
                    results[i] = Received(photo=item, created=False)
                elif item.sha256 in seen:  # the same file twice in one request
                    results[i] = Received(photo=results[seen[item.sha256]].photo, created=False)
                else:
                    results[i] = _photo_store(item=item, fields=fields, written=written)
                    seen[item.sha256] = i
            if enqueue:
                photos_enqueue(photo_ids=[r.photo.pk for r in results if r and r.created])
    except BaseException:
        _files_remove(names=written)  # nothing stored half: files of rows rolled back go again
        raise
    return [r for r in results if r is not None]


def _uploads_prepare(*, files: list, form: FormPosition, placements) -> list[_Prepared | InspectionPhoto]:
    """Each file read, verified and placed, or the stored photo with its content; every refusal at once."""
    if not files:
        raise PhotosRejected([PhotoRejected("no file was sent (form field 'image')", code="no_file")])
    limit = int(conf("ROADS_MAX_FILES_PER_REQUEST"))
    if len(files) > limit and placements is None:
        raise PhotosRejected(
            [PhotoRejected(f"{len(files)} files in one request; the limit is {limit}", status=413, code="too_many_files")]
        )
    placements = list(placements) if placements is not None else [None] * len(files)
    prepared: list[_Prepared | InspectionPhoto] = []
    errors: list[PhotoRejected] = []
    for upload, placement in zip(files, placements):
        try:
            prepared.append(_prepare_or_existing(upload=upload, form=form, placement=placement))
        except PhotoRejected as exc:
            errors.append(exc)
    if errors:
        raise PhotosRejected(errors)
    return prepared


def _photo_store(*, item: _Prepared, fields: dict, written: list[str]) -> Received:
    """One new photo's file and row (the file's name added to `written`), or the photo another request
    stored with the same content a moment ago."""
    retention = int(conf("ROADS_ORIGINAL_RETENTION_DAYS"))
    photo = InspectionPhoto(
        sha256=item.sha256,
        file_name=item.file_name,
        image_format=item.image_format,
        width=item.width,
        height=item.height,
        taken_at=item.taken_at,
        taken_at_source=item.taken_at_source,
        location=item.location,
        location_source=item.location_source,
        location_accuracy_m=item.accuracy_m,
        device_location=item.device_location,
        original_expires_at=timezone.now() + dt.timedelta(days=retention) if retention > 0 else None,
        **fields,
    )
    ext = _FORMAT_EXT.get(item.image_format, "img")
    photo.original.save(f"{item.sha256}.{ext}", ContentFile(item.data), save=False)
    written.append(photo.original.name)
    try:
        with transaction.atomic():
            photo.save()
    except IntegrityError:
        # Another request stored the same content a moment ago: answer with its photo.
        default_storage.delete(photo.original.name)
        written.remove(photo.original.name)
        return Received(photo=InspectionPhoto.objects.get(sha256=item.sha256), created=False)
    return Received(photo=photo, created=True)


def _files_remove(*, names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            log.warning("could not remove %s after a failed upload", name)


def _heif_rejection(*, upload, exc: UploadError, file_name: str) -> PhotoRejected:
    """The upload check's refusal, except that a HEIC libheif could not parse (cut short, damaged: Pillow then
    "cannot identify" it) is a damaged photo (400), not a file that is no image at all (415)."""
    message, status = str(exc), exc.status
    if status == 415:
        try:
            pos = upload.tell()
            upload.seek(0)
            head = upload.read(64)
            upload.seek(pos)
        except (OSError, ValueError):
            head = b""
        if heif_brand(head) and heif_register():
            message, status = "the HEIC/HEIF image is damaged or truncated (it cannot be decoded)", 400
        elif heif_brand(head):
            message = (
                "HEIC/HEIF photos cannot be read on this server (pillow-heif is missing); send JPEG or PNG"
            )
    return PhotoRejected(message, status=status, code="bad_image", file_name=file_name)


def _prepare_or_existing(
    *, upload, form: FormPosition, placement: Placement | None
) -> _Prepared | InspectionPhoto:
    # Validate first (a broken file is refused even if its hash were known), then short-cut a re-upload.
    name = _safe_name(getattr(upload, "name", "") or "")
    try:
        checked = image_upload_validate(file=upload)
    except UploadError as exc:
        raise _heif_rejection(upload=upload, exc=exc, file_name=name) from None
    except RuntimeError as exc:  # libheif's decoding errors (pillow-heif) are RuntimeErrors, not OSErrors
        raise PhotoRejected(
            f"the image is damaged or truncated: {exc}", code="bad_image", file_name=name
        ) from None
    existing = InspectionPhoto.objects.filter(sha256=checked.sha256).first()
    if existing is not None:
        return existing
    return _prepare(checked=checked, name=name, form=form, placement=placement)
