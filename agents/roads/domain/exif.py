"""What a photo says about itself: GPS position and capture time from its EXIF block (no Django).

Phones write GPS as degrees/minutes/seconds rationals with N/S and E/W references in the GPS IFD, and the
capture time as ``DateTimeOriginal`` (local clock, no zone) with an optional ``OffsetTimeOriginal``. A broken
or absent tag is reported, never raised: the caller decides whether another source (the phone's position, a
pin, the request's time) replaces it.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from PIL import Image

from city_ops.city.geovalidate import GeometryInputError, lonlat_check

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
TAG_DATETIME = 0x0132
TAG_DATETIME_ORIGINAL = 0x9003
TAG_OFFSET_TIME_ORIGINAL = 0x9011
TAG_SUBSEC_TIME_ORIGINAL = 0x9291
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 1, 2, 3, 4

_EXIF_TIME = re.compile(r"^\s*(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET = re.compile(r"^\s*([+-])(\d{2}):?(\d{2})\s*$")


@dataclass(frozen=True)
class PhotoMeta:
    """Position and time read from a photo's EXIF; ``gps_problem`` says why GPS tags present were unusable."""

    lon: float | None = None
    lat: float | None = None
    gps_problem: str | None = None
    taken_at: dt.datetime | None = None  # aware when the photo names its offset, else naive local time

    @property
    def has_gps(self) -> bool:
        """True when the photo carries a readable GPS position."""
        return self.lon is not None and self.lat is not None


def _rational(value) -> float:
    # PIL gives IFDRational (a zero denominator reads as nan) or a (num, den) pair from older writers.
    if isinstance(value, tuple) and len(value) == 2:
        num, den = value
        return float(num) / float(den) if den else math.nan
    return float(value)


def _dms(value) -> float:
    parts = [_rational(v) for v in (value if isinstance(value, (tuple, list)) else (value,))]
    if not parts or any(math.isnan(p) or p < 0 for p in parts):
        raise ValueError("unreadable degrees/minutes/seconds")
    deg = parts[0] + (parts[1] / 60 if len(parts) > 1 else 0) + (parts[2] / 3600 if len(parts) > 2 else 0)
    return deg


def _ref(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip("\x00 ").upper()[:1]


def exif_gps_read(*, exif: Image.Exif) -> tuple[float | None, float | None, str | None]:
    """(lon, lat, problem) from an EXIF block's GPS IFD; (None, None, None) when there are no GPS tags."""
    try:
        gps = exif.get_ifd(GPS_IFD)
    except Exception:  # noqa: BLE001 - a corrupt IFD is "no usable GPS", not a failed upload
        return None, None, "the GPS tags are corrupt"
    if not gps or GPS_LAT not in gps or GPS_LON not in gps:
        return None, None, None
    try:
        lat = _dms(gps[GPS_LAT])
        lon = _dms(gps[GPS_LON])
    except (ValueError, TypeError, ZeroDivisionError):
        return None, None, "the GPS tags cannot be read"
    if _ref(gps.get(GPS_LAT_REF)) == "S":
        lat = -lat
    if _ref(gps.get(GPS_LON_REF)) == "W":
        lon = -lon
    try:
        lon, lat = lonlat_check(lon, lat, what="the GPS tags give an impossible position")
    except GeometryInputError as exc:
        return None, None, str(exc)
    return lon, lat, None


def exif_time_parse(*, value: str | bytes | None, offset: str | bytes | None = None,
                    subsec: str | bytes | None = None) -> dt.datetime | None:
    """An EXIF 'YYYY:MM:DD HH:MM:SS' time (plus optional '+HH:MM' offset and sub-seconds), or None."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not value:
        return None
    m = _EXIF_TIME.match(str(value))
    if not m:
        return None
    try:
        when = dt.datetime(*(int(g) for g in m.groups()))
    except ValueError:  # "0000:00:00 00:00:00" from cameras whose clock was never set
        return None
    if subsec:
        digits = "".join(ch for ch in (subsec.decode("ascii", "replace") if isinstance(subsec, bytes) else str(subsec))
                         if ch.isdigit())[:6]
        if digits:
            when = when.replace(microsecond=int(digits.ljust(6, "0")))
    if isinstance(offset, bytes):
        offset = offset.decode("ascii", "replace")
    if offset and (o := _OFFSET.match(str(offset))):
        sign = 1 if o.group(1) == "+" else -1
        when = when.replace(tzinfo=dt.timezone(sign * dt.timedelta(hours=int(o.group(2)), minutes=int(o.group(3)))))
    return when


def exif_time_read(*, exif: Image.Exif) -> dt.datetime | None:
    """The capture time: DateTimeOriginal (with its offset and sub-seconds), else the file's DateTime."""
    try:
        sub = exif.get_ifd(EXIF_IFD)
    except Exception:  # noqa: BLE001 - a corrupt sub-IFD is "no EXIF time"
        sub = {}
    when = exif_time_parse(value=sub.get(TAG_DATETIME_ORIGINAL), offset=sub.get(TAG_OFFSET_TIME_ORIGINAL),
                           subsec=sub.get(TAG_SUBSEC_TIME_ORIGINAL))
    return when or exif_time_parse(value=exif.get(TAG_DATETIME))


def photo_meta_read(*, image: Image.Image) -> PhotoMeta:
    """GPS position and capture time of an opened image (nothing raised for missing or broken tags)."""
    try:
        exif = image.getexif()
    except Exception:  # noqa: BLE001 - broken EXIF must not lose the photo
        return PhotoMeta(gps_problem="the EXIF block is corrupt")
    lon, lat, problem = exif_gps_read(exif=exif)
    return PhotoMeta(lon=lon, lat=lat, gps_problem=problem, taken_at=exif_time_read(exif=exif))
