"""Crew uploads through the API on the real city: every bad case answers a clear 4xx and stores nothing (no
row, no file); the same file again is idempotent; EXIF GPS, the phone's position and a pin each place a photo."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.test import Client
from PIL import Image
from rest_framework.authtoken.models import Token

from agents.roads.models import InspectionPhoto

from .conftest import photo_bytes, spot_on, upload_file

URL = "/api/roads/photos/"


def _media_files(settings) -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return [str(p) for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run on-commit callbacks (the enqueue) when the request's transaction would have committed."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def _post(client, *files, **data):
    return client.post(URL, {"image": list(files), **data})


def _nothing_stored(settings):
    assert InspectionPhoto.objects.count() == 0
    assert _media_files(settings) == []


def test_exif_gps_places_the_photo_and_queues_detection(crew_client, here, users, no_broker, commit):
    data = photo_bytes(lon=here.lon, lat=here.lat, taken="2025:06:01 10:20:30")
    with commit():
        resp = _post(crew_client, upload_file(data))
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["created"] == 1 and body["existing"] == 0
    photo = InspectionPhoto.objects.get(pk=body["photos"][0]["id"])
    assert photo.location_source == "exif" and photo.uploader == users.crew
    assert photo.location.x == pytest.approx(here.lon, abs=1e-6) and photo.location.y == pytest.approx(
        here.lat, abs=1e-6
    )
    assert photo.taken_at_source == "exif" and photo.taken_at.year == 2025
    assert photo.status == "received" and photo.width == 640 and photo.height == 480
    assert body["photos"][0]["image_url"] is None  # nothing is shown before detection has blurred it
    assert no_broker == [("photo", photo.pk)]


def test_same_file_again_is_idempotent(crew_client, here, no_broker, settings, commit):
    data = photo_bytes(lon=here.lon, lat=here.lat)
    with commit():
        first = _post(crew_client, upload_file(data))
    files_after_first = sorted(_media_files(settings))
    with commit():
        again = _post(crew_client, upload_file(data, name="renamed.jpg"))  # and even without a location now
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["photos"][0]["id"] == first.json()["photos"][0]["id"]
    assert again.json()["created"] == 0 and again.json()["photos"][0]["created"] is False
    assert InspectionPhoto.objects.count() == 1 and sorted(_media_files(settings)) == files_after_first
    assert len(no_broker) == 1  # detection is not queued twice


def test_phone_position_when_the_photo_has_no_gps(crew_client, here, no_broker):
    resp = _post(
        crew_client,
        upload_file(photo_bytes()),
        lat=str(here.lat),
        lon=str(here.lon),
        accuracy_m="6",
        taken_at="2025-06-01T09:00:00+03:00",
    )
    assert resp.status_code == 201, resp.content
    photo = InspectionPhoto.objects.get()
    assert photo.location_source == "phone" and photo.location_accuracy_m == 6
    assert photo.device_location is not None  # the crew's own position (purged after the retention period)
    assert photo.taken_at_source == "request" and photo.taken_at.isoformat() == "2025-06-01T06:00:00+00:00"


def test_a_pin_wins_over_exif_that_lies(crew_client, here, no_broker):
    data = photo_bytes(lon=0.0, lat=0.0)
    refused = _post(crew_client, upload_file(data))
    assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "exif_gps_null_island"
    pinned = _post(
        crew_client, upload_file(data), lat=str(here.lat), lon=str(here.lon), location_source="pin"
    )
    assert pinned.status_code == 201
    assert InspectionPhoto.objects.get().location_source == "pin"


def test_several_photos_in_one_request(crew_client, long_segment, no_broker, commit):
    a, b = spot_on(long_segment, 0.2), spot_on(long_segment, 0.8)
    with commit():
        resp = _post(
            crew_client,
            upload_file(photo_bytes(lon=a.lon, lat=a.lat, seed=1), "a.jpg"),
            upload_file(photo_bytes(lon=b.lon, lat=b.lat, seed=2, fmt="PNG"), "b.png", "image/png"),
        )
    assert resp.status_code == 201 and resp.json()["created"] == 2
    assert sorted(InspectionPhoto.objects.values_list("image_format", flat=True)) == ["JPEG", "PNG"]
    assert no_broker == [("batch", [p["id"] for p in resp.json()["photos"]])]


def _bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buf, "PNG")  # 100 MP that compress to a few kB
    return buf.getvalue()


def _truncated(here) -> bytes:
    data = photo_bytes(lon=here.lon, lat=here.lat)
    return data[: len(data) // 2]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    "case,make,status,words",
    [
        ("not an image", lambda h: b"%PDF-1.4 not a photo at all", 415, "not an image"),
        ("truncated", _truncated, 400, "truncated"),
        ("decompression bomb", lambda h: _bomb_png(), 400, "pixels"),
        ("missing location", lambda h: photo_bytes(), 400, "no usable GPS"),
        ("GPS 0,0", lambda h: photo_bytes(lon=0.0, lat=0.0), 400, "0,0"),
        ("far outside the city", lambda h: photo_bytes(lon=116.39, lat=39.91), 400, "outside the city"),
        ("GIF", lambda h: _gif(), 415, "GIF"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_stored(
    crew_client, here, settings, no_broker, commit, case, make, status, words
):
    with commit():
        resp = _post(crew_client, upload_file(make(here)))
    assert resp.status_code == status, (case, resp.content)
    assert words.lower() in resp.json()["detail"].lower(), resp.json()
    _nothing_stored(settings)
    assert no_broker == []


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20)).save(buf, "GIF")
    return buf.getvalue()


def test_oversized_upload_is_refused(crew_client, here, settings, no_broker):
    settings.CITY_OPS_MAX_UPLOAD_BYTES = 2_000
    resp = _post(crew_client, upload_file(photo_bytes(lon=here.lon, lat=here.lat)))
    assert resp.status_code == 413 and "limit" in resp.json()["detail"]
    _nothing_stored(settings)


def test_one_bad_file_stores_none_of_the_request(crew_client, here, settings, no_broker):
    good = upload_file(photo_bytes(lon=here.lon, lat=here.lat), "good.jpg")
    bad = upload_file(photo_bytes(lon=0.0, lat=0.0, seed=5), "bad.jpg")
    resp = _post(crew_client, good, bad)
    assert resp.status_code == 400
    assert [e["file"] for e in resp.json()["errors"]] == ["bad.jpg"]
    _nothing_stored(settings)


@pytest.mark.parametrize(
    "data,words",
    [
        ({"lat": "60.1"}, "both"),
        ({"lat": "north", "lon": "24.9"}, "number"),
        ({"lat": "95", "lon": "24.9"}, "between"),
        ({"taken_at": "yesterday"}, "ISO 8601"),
        ({"taken_at": "2025-13-45T10:00:00"}, "ISO 8601"),  # well-formed, impossible: a 400, never a 500
        ({"location_source": "guess"}, "location_source"),
    ],
)
def test_malformed_form_fields(crew_client, here, settings, no_broker, data, words):
    resp = _post(crew_client, upload_file(photo_bytes(lon=here.lon, lat=here.lat)), **data)
    assert resp.status_code == 400 and words in resp.json()["detail"]
    _nothing_stored(settings)


def test_no_file(crew_client, city, no_broker):
    resp = crew_client.post(URL, {"lat": "60.17", "lon": "24.94"})
    assert resp.status_code == 400 and "no file" in resp.json()["detail"]


def test_crew_token_auth(users, here, no_broker, city):
    token = Token.objects.create(user=users.crew)
    c = Client()
    resp = c.post(
        URL,
        {"image": [upload_file(photo_bytes(lon=here.lon, lat=here.lat))]},
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )
    assert resp.status_code == 201
    assert InspectionPhoto.objects.get().uploader == users.crew
    assert Client().post(URL, {"image": [upload_file(photo_bytes(seed=3))]}).status_code in (401, 403)


def test_the_field_app_path_api_inspections_photos(crew_client, here, no_broker):
    resp = crew_client.post(
        "/api/inspections/photos/", {"image": [upload_file(photo_bytes(lon=here.lon, lat=here.lat))]}
    )
    assert resp.status_code == 201
    assert (
        crew_client.post(
            "/api/inspections/photos/", {"image": [upload_file(photo_bytes(lon=here.lon, lat=here.lat))]}
        ).status_code
        == 200
    )


def test_console_upload_page_posts_the_same_way(crew_client, here, no_broker):
    page = crew_client.get("/roads/upload/")
    assert page.status_code == 200 and b'capture="environment"' in page.content
    resp = crew_client.post(
        "/roads/upload/", {"image": [upload_file(photo_bytes(lon=here.lon, lat=here.lat))]}
    )
    photo = InspectionPhoto.objects.get()
    assert resp.status_code == 302 and resp["Location"] == f"/roads/photos/{photo.pk}/"
    refused = crew_client.post(
        "/roads/upload/", {"image": [upload_file(photo_bytes(lon=0.0, lat=0.0, seed=9))]}, follow=True
    )
    assert "0,0" in refused.content.decode() and InspectionPhoto.objects.count() == 1


def test_files_are_removed_when_the_database_write_fails(crew_client, here, settings, no_broker, monkeypatch):
    """A failure after the file was written (the row insert) leaves no orphan file behind."""
    from agents.roads.models import InspectionPhoto as Model

    def boom(self, *a, **kw):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Model, "save", boom)
    with pytest.raises(RuntimeError):
        _post(crew_client, upload_file(photo_bytes(lon=here.lon, lat=here.lat)))
    assert _media_files(settings) == []
    assert not os.path.exists(os.path.join(settings.MEDIA_ROOT, "roads", "originals", "x"))
