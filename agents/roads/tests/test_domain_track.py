"""Camera frames on a GPS track (pure): GPX parsing, interpolation by time, near-duplicates, file-name times."""
from __future__ import annotations

import datetime as dt

import pytest

from agents.geo import haversine_m
from agents.roads.domain.track import TrackError, frames_place, name_time_parse, track_read

T0 = dt.datetime(2025, 5, 20, 8, 0, 0, tzinfo=dt.UTC)


def gpx(points: list[tuple[float, float, dt.datetime | None]]) -> str:
    rows = "".join(
        f'<trkpt lat="{lat}" lon="{lon}">' + (f"<time>{t.strftime('%Y-%m-%dT%H:%M:%SZ')}</time>" if t else "")
        + "</trkpt>" for lon, lat, t in points)
    return ('<?xml version="1.0"?><gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">'
            f"<trk><name>patrol</name><trkseg>{rows}</trkseg></trk></gpx>")


def straight_track(n: int = 11, step_s: int = 10):
    # due east along a parallel, ~10 m per fix at 60.17 N
    dlon = 10 / (111_320 * 0.49704)
    return track_read(text=gpx([(24.94 + i * dlon, 60.17, T0 + dt.timedelta(seconds=i * step_s)) for i in range(n)]))


def test_interpolates_between_fixes():
    track = straight_track()
    lon, lat = track.position_at(T0 + dt.timedelta(seconds=15))
    assert haversine_m(lon1=24.94, lat1=60.17, lon2=lon, lat2=lat) == pytest.approx(15.0, abs=0.3)
    assert track.name == "patrol" and track.start == T0


def test_frames_outside_the_track_are_not_placed():
    track = straight_track()
    assert track.position_at(T0 - dt.timedelta(seconds=60), tolerance_s=30) is None
    assert track.position_at(T0 + dt.timedelta(seconds=200), tolerance_s=30) is None
    assert track.position_at(T0 - dt.timedelta(seconds=10), tolerance_s=30) is not None


def test_near_duplicates_of_a_stopped_vehicle_are_skipped():
    # fixes: moving 10 m per 10 s for 50 s, then standing still for 40 s, then moving again
    dlon = 10 / (111_320 * 0.49704)
    pts = [(24.94 + i * dlon, 60.17, T0 + dt.timedelta(seconds=i * 10)) for i in range(6)]
    pts += [(24.94 + 5 * dlon, 60.17, T0 + dt.timedelta(seconds=50 + k * 10)) for k in range(1, 5)]
    pts += [(24.94 + (5 + k) * dlon, 60.17, T0 + dt.timedelta(seconds=90 + k * 10)) for k in range(1, 4)]
    track = track_read(text=gpx(pts))
    frames = [(f"f{s:03d}", T0 + dt.timedelta(seconds=s)) for s in range(0, 120, 5)]
    res = frames_place(frames=frames, track=track, min_spacing_m=4.0)
    assert res.count("placed") + res.count("duplicate") == len(frames)
    stopped = [f for f in res.frames if T0 + dt.timedelta(seconds=55) <= f.when <= T0 + dt.timedelta(seconds=90)]
    assert all(f.status == "duplicate" for f in stopped)
    placed = [f for f in res.frames if f.status == "placed"]
    gaps = [f.gap_m for f in placed if f.gap_m is not None]
    assert gaps and min(gaps) >= 4.0


def test_duplicate_check_continues_from_an_earlier_batch():
    track = straight_track()
    first = track.position_at(T0 + dt.timedelta(seconds=20))
    res = frames_place(frames=[("a", T0 + dt.timedelta(seconds=21))], track=track, last_kept=first)
    assert res.frames[0].status == "duplicate"


@pytest.mark.parametrize("text,reason", [
    ("not xml at all", "not a readable GPX"),
    (gpx([]), "no track points"),
    (gpx([(24.9, 60.1, None), (24.91, 60.1, None)]), "carry no times"),
    # impossible fixes (geovalidate) refuse the file and name the point, never reach a LineString
    (gpx([(24.9, 60.1, T0), (1e200, 60.1, T0 + dt.timedelta(seconds=5))]), r"track point 2 .*longitude"),
    (gpx([(24.9, 60.1, T0), (24.9, 95, T0 + dt.timedelta(seconds=5))]), r"track point 2 .*latitude"),
    (gpx([(24.9, 60.1, T0), (24.9, "inf", T0 + dt.timedelta(seconds=5))]), r"track point 2 .*finite"),
])
def test_bad_tracks_are_refused_with_a_reason(text, reason):
    with pytest.raises(TrackError, match=reason):
        track_read(text=text)


@pytest.mark.parametrize("name,expected", [
    ("20250520_081530.jpg", dt.datetime(2025, 5, 20, 8, 15, 30)),
    ("CAM1_20250520-081530_250.jpg", dt.datetime(2025, 5, 20, 8, 15, 30, 250000)),
    ("2025-05-20T08-15-30.123.png", dt.datetime(2025, 5, 20, 8, 15, 30, 123000)),
    ("frame_0001.jpg", None),
    ("20251340_991530.jpg", None),
])
def test_file_name_times(name, expected):
    assert name_time_parse(name=name) == expected


def test_a_refused_frame_does_not_count_as_the_last_kept_spot():
    track = straight_track()
    frames = [("a", T0), ("bad", T0 + dt.timedelta(seconds=6)), ("b", T0 + dt.timedelta(seconds=8))]
    res = frames_place(frames=frames, track=track, min_spacing_m=4.0, accept=lambda f: f.key != "bad")
    assert [f.status for f in res.frames] == ["placed", "rejected", "placed"]
    assert res.frames[2].gap_m == pytest.approx(8.0, abs=0.2)  # measured from "a", not from the refused frame
