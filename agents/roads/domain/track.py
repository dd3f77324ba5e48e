"""Patrol-camera frames on the vehicle's GPS track (no Django).

A camera shoots a frame every few metres; the vehicle's logger records a GPX track. Each frame's capture time
places it on the track (linear interpolation between the two track points around it). Frames of the same
spot (the vehicle waiting at lights) are near-duplicates: only the first of a run of frames closer than a
spacing threshold to the last kept one is kept.

Frame capture time, in this order (the first that is present wins):
1. EXIF ``DateTimeOriginal`` (+ ``SubSecTimeOriginal``, + ``OffsetTimeOriginal`` when the camera writes it);
2. a timestamp in the file name: ``YYYYMMDD_HHMMSS[_mmm]``, ``YYYYMMDD-HHMMSS``, ``YYYY-MM-DDTHH-MM-SS[.fff]``
   (the patterns dash cameras use);
3. the file's modification time (last resort: copying files often resets it, hence last).
A time without a zone is read in ``naive_tz`` (the city's zone by default); GPX times are UTC.
"""
from __future__ import annotations

import bisect
import datetime as dt
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image

from agents.geo import haversine_m
from city_ops.city.geovalidate import GeometryInputError, lonlat_check

from .exif import exif_time_read

_NAME_TIME = [
    re.compile(r"(?P<y>\d{4})(?P<mo>\d{2})(?P<d>\d{2})[_-](?P<h>\d{2})(?P<mi>\d{2})(?P<s>\d{2})(?:[_.-](?P<ms>\d{1,6}))?"),
    re.compile(r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})[T_ ](?P<h>\d{2})[-:.](?P<mi>\d{2})[-:.](?P<s>\d{2})"
               r"(?:[.,](?P<ms>\d{1,6}))?"),
]


class TrackError(Exception):
    """The GPX file cannot be used: not GPX, no points, or points without times."""


@dataclass
class Track:
    """Time-ordered GPS fixes: epoch seconds, longitudes, latitudes."""

    times: list[float]
    lons: list[float]
    lats: list[float]
    name: str = ""

    @property
    def start(self) -> dt.datetime:
        """Time of the first fix (UTC)."""
        return dt.datetime.fromtimestamp(self.times[0], dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """Time of the last fix (UTC)."""
        return dt.datetime.fromtimestamp(self.times[-1], dt.UTC)

    def position_at(self, when: dt.datetime, *, tolerance_s: float = 30.0) -> tuple[float, float] | None:
        """(lon, lat) at an aware time, interpolated between the fixes around it; None off the track.

        Within ``tolerance_s`` before the first or after the last fix the end point is used (loggers start a
        little after the camera); further out the frame cannot be placed.
        """
        t = when.timestamp()
        if t < self.times[0] - tolerance_s or t > self.times[-1] + tolerance_s:
            return None
        i = bisect.bisect_right(self.times, t)
        if i <= 0:
            return self.lons[0], self.lats[0]
        if i >= len(self.times):
            return self.lons[-1], self.lats[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        if t1 - t0 > 10 * max(tolerance_s, 1.0):
            # A gap in the log (tunnel, logger off): interpolating across it would invent a path.
            nearest = i - 1 if t - t0 <= t1 - t else i
            if min(t - t0, t1 - t) > tolerance_s:
                return None
            return self.lons[nearest], self.lats[nearest]
        f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
        return (self.lons[i - 1] + f * (self.lons[i] - self.lons[i - 1]),
                self.lats[i - 1] + f * (self.lats[i] - self.lats[i - 1]))

    def coords(self) -> list[tuple[float, float]]:
        """The track as (lon, lat) pairs (for a LineString)."""
        return list(zip(self.lons, self.lats))


def _fix(point, n: int) -> tuple[float, float]:
    """(lon, lat) of the n-th timed point, checked (geovalidate): one impossible fix refuses the file, naming it,
    rather than drawing a line to the other side of the Earth or being dropped unseen."""
    try:
        return lonlat_check(point.longitude, point.latitude, what=f"track point {n} ({point.time:%Y-%m-%d %H:%M:%S})")
    except GeometryInputError as exc:
        raise TrackError(str(exc)) from None


def track_read(*, text: str | bytes) -> Track:
    """Parse GPX text into a Track (all tracks and segments, then routes, sorted by time).

    Raises TrackError with a human-readable reason for a file that is not GPX or has no timed points.
    """
    import gpxpy
    import gpxpy.gpx

    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        gpx = gpxpy.parse(text)
    except (gpxpy.gpx.GPXException, ValueError) as exc:
        raise TrackError(f"not a readable GPX file: {exc}") from None
    points = [p for trk in gpx.tracks for seg in trk.segments for p in seg.points]
    if not points:
        points = [p for rte in gpx.routes for p in rte.points]
    if not points:
        raise TrackError("the GPX file holds no track points")
    timed = [p for p in points if p.time is not None]
    if not timed:
        raise TrackError("the GPX track points carry no times, so frames cannot be placed on it")
    rows = sorted(
        ((p.time if p.time.tzinfo else p.time.replace(tzinfo=dt.UTC)).timestamp(), *_fix(p, n))
        for n, p in enumerate(timed, start=1)
    )
    # Drop fixes with duplicate times (some loggers repeat the last fix).
    dedup = [rows[0]] + [r for prev, r in itertools.pairwise(rows) if r[0] > prev[0]]
    name = (gpx.tracks[0].name if gpx.tracks and gpx.tracks[0].name else "") or ""
    return Track(times=[r[0] for r in dedup], lons=[r[1] for r in dedup], lats=[r[2] for r in dedup], name=name)


def name_time_parse(*, name: str) -> dt.datetime | None:
    """A naive time from a dash-camera file name (see the module docstring), or None."""
    for pattern in _NAME_TIME:
        m = pattern.search(name)
        if not m:
            continue
        try:
            ms = m.group("ms") or ""
            return dt.datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), int(m["s"]),
                               int(ms.ljust(6, "0")) if ms else 0)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class FrameTime:
    """A frame's capture time (aware) and where it came from: 'exif', 'filename' or 'mtime'."""

    when: dt.datetime
    source: str


def frame_time_read(*, path: Path, naive_tz: ZoneInfo | dt.tzinfo, offset_s: float = 0.0) -> FrameTime:
    """Capture time of a frame file: EXIF, else the file name, else mtime; ``offset_s`` corrects the camera clock."""
    when, source = None, ""
    try:
        with Image.open(path) as im:
            when = exif_time_read(exif=im.getexif())
            source = "exif" if when else ""
    except Exception:  # noqa: BLE001 - unreadable: the name or mtime gives the time; the upload check rejects it
        when = None
    if when is None:
        when = name_time_parse(name=path.name)
        source = "filename" if when else ""
    if when is None:
        return FrameTime(dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC) + dt.timedelta(seconds=offset_s),
                         "mtime")
    if when.tzinfo is None:
        when = when.replace(tzinfo=naive_tz)
    return FrameTime(when + dt.timedelta(seconds=offset_s), source)


@dataclass
class FramePlacement:
    """One frame's fate: 'placed' (lon/lat set), 'duplicate' (same spot as the previous kept frame),
    'off_track' (its time lies outside the GPS track) or 'rejected' (refused by the caller's ``accept``)."""

    key: str
    when: dt.datetime
    status: str
    lon: float | None = None
    lat: float | None = None
    gap_m: float | None = None  # distance to the previous kept frame


@dataclass
class PlacementResult:
    """All frames in time order with their placement, and counts."""

    frames: list[FramePlacement] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many frames got ``status``."""
        return sum(1 for f in self.frames if f.status == status)


def frames_place(*, frames: Sequence[tuple[str, dt.datetime]], track: Track, min_spacing_m: float = 4.0,
                 tolerance_s: float = 30.0, last_kept: tuple[float, float] | None = None,
                 accept: Callable[[FramePlacement], bool] | None = None) -> PlacementResult:
    """Place (key, aware time) frames on the track in time order; skip near-duplicates of the same spot.

    ``last_kept`` continues the duplicate check from an earlier batch of the same run. ``accept`` is asked for
    each frame about to be kept (the caller stores it there); a frame it refuses (not a readable image) is
    'rejected' and does not count as the last kept spot, so the next good frame there is kept instead.
    """
    out = PlacementResult()
    for key, when in sorted(frames, key=lambda f: (f[1], f[0])):
        pos = track.position_at(when, tolerance_s=tolerance_s)
        if pos is None:
            out.frames.append(FramePlacement(key=key, when=when, status="off_track"))
            continue
        gap = haversine_m(lon1=last_kept[0], lat1=last_kept[1], lon2=pos[0], lat2=pos[1]) if last_kept else None
        if gap is not None and gap < min_spacing_m:
            out.frames.append(FramePlacement(key=key, when=when, status="duplicate", lon=pos[0], lat=pos[1], gap_m=gap))
            continue
        frame = FramePlacement(key=key, when=when, status="placed", lon=pos[0], lat=pos[1], gap_m=gap)
        if accept is not None and not accept(frame):
            frame.status = "rejected"
        else:
            last_kept = pos
        out.frames.append(frame)
    return out
