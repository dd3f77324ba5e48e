"""EXIF reading (pure): GPS written by PIL into a real JPEG, times with offsets, broken tags."""
from __future__ import annotations

import datetime as dt
import io

import pytest
from PIL import Image

from agents.roads.domain.exif import exif_time_parse, photo_meta_read
from agents.roads.domain.synthetic import gps_exif


def _jpeg(exif) -> Image.Image:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (120, 120, 120)).save(buf, "JPEG", exif=exif)
    return Image.open(io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize("lon,lat", [(24.94512, 60.16987), (-73.98565, 40.74844), (151.2153, -33.8568)])
def test_gps_round_trip_through_a_jpeg(lon, lat):
    meta = photo_meta_read(image=_jpeg(gps_exif(lon=lon, lat=lat)))
    assert meta.has_gps and meta.gps_problem is None
    assert meta.lon == pytest.approx(lon, abs=1e-6) and meta.lat == pytest.approx(lat, abs=1e-6)


def test_no_gps_and_no_time():
    meta = photo_meta_read(image=_jpeg(Image.Exif()))
    assert not meta.has_gps and meta.gps_problem is None and meta.taken_at is None


@pytest.mark.parametrize("lat_degrees,problem", [
    ((60, 0), "cannot be read"),  # a zero denominator
    # out of range: the shared check (city_ops.city.geovalidate) every coordinate passes
    ((4_000_000_000, 1), "latitude 4e+09 is outside -90..90"),
])
def test_bad_gps_is_a_problem_not_a_crash(lat_degrees, problem):
    from PIL.TiffImagePlugin import IFDRational

    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (IFDRational(*lat_degrees), IFDRational(10, 1), IFDRational(0, 1))
    gps[3], gps[4] = "E", (IFDRational(24, 1), IFDRational(56, 1), IFDRational(0, 1))
    meta = photo_meta_read(image=_jpeg(exif))
    assert not meta.has_gps and problem in meta.gps_problem


def test_capture_time_with_offset_and_without():
    meta = photo_meta_read(image=_jpeg(gps_exif(taken="2025:06:01 10:20:30")))
    assert meta.taken_at == dt.datetime(2025, 6, 1, 10, 20, 30) and meta.taken_at.tzinfo is None
    when = exif_time_parse(value="2025:06:01 10:20:30", offset="+03:00", subsec="25")
    assert when == dt.datetime(2025, 6, 1, 7, 20, 30, 250000, tzinfo=dt.UTC)


@pytest.mark.parametrize("raw", ["0000:00:00 00:00:00", "garbage", "", None, "2025:13:40 99:00:00"])
def test_unusable_times_are_none(raw):
    assert exif_time_parse(value=raw) is None
