"""Who may see and do what: the permission matrix of the road agent's console and API for every role, crews
seeing only their own uploads (dispatchers all), and unblurred originals for admins only."""

from __future__ import annotations

import pytest
from django.test import Client

from agents.roads.services.detection import photos_detect
from agents.roads.services.photos import photos_receive
from city_ops.core.testing import PermissionMatrixMixin

from .conftest import photo_bytes, spot_on, upload_file

pytestmark = pytest.mark.usefixtures("tiny_model")


def _two_crews_photos(segment, users):
    a, b = spot_on(segment, 0.3), spot_on(segment, 0.7)
    mine = photos_receive(
        files=[upload_file(photo_bytes(lon=a.lon, lat=a.lat, seed=1))], uploader=users.crew, enqueue=False
    )[0].photo
    theirs = photos_receive(
        files=[upload_file(photo_bytes(lon=b.lon, lat=b.lat, seed=2, cell=(2, 1)))],
        uploader=users.crew_other,
        enqueue=False,
    )[0].photo
    photos_detect(photo_ids=[mine.pk, theirs.pk])
    mine.refresh_from_db()
    theirs.refresh_from_db()
    return mine, theirs


class TestMatrix(PermissionMatrixMixin):
    def test_matrix(self, long_segment, users):
        mine, _ = _two_crews_photos(long_segment, users)
        defect = mine.sightings.first().defect
        p = mine.pk
        self.matrix = [
            ("GET", "/roads/", {"anonymous": 302, "crew": 403, "dispatcher": 200, "admin": 200}),
            ("GET", "/roads/upload/", {"anonymous": 302, "crew": 200, "dispatcher": 200, "admin": 200}),
            ("GET", "/roads/photos/", {"anonymous": 302, "crew": 200, "dispatcher": 200}),
            ("GET", f"/roads/photos/{p}/", {"anonymous": 302, "crew": 200, "dispatcher": 200}),
            ("GET", f"/roads/photos/{p}/image.jpg", {"anonymous": 302, "crew": 200, "dispatcher": 200}),
            ("GET", f"/roads/photos/{p}/status.json", {"anonymous": 302, "crew": 200, "dispatcher": 200}),
            (
                "GET",
                f"/roads/photos/{p}/original",
                {"anonymous": 302, "crew": 403, "dispatcher": 403, "admin": 200},
            ),
            ("GET", f"/roads/defects/{defect.pk}/", {"anonymous": 302, "crew": 200, "dispatcher": 200}),
            (
                "POST",
                f"/roads/defects/{defect.pk}/order/",
                {"anonymous": 302, "crew": 403, "dispatcher": 302},
            ),
            ("GET", "/roads/map/defects.geojson", {"anonymous": 302, "crew": 403, "dispatcher": 200}),
            ("GET", "/roads/map/conditions.geojson", {"anonymous": 302, "crew": 403, "dispatcher": 200}),
            ("GET", "/roads/report/", {"anonymous": 302, "crew": 403, "dispatcher": 200}),
            ("GET", f"/roads/report/?segment={long_segment.pk}", {"crew": 403, "dispatcher": 200}),
            ("GET", "/roads/report.pdf", {"anonymous": 302, "crew": 403, "dispatcher": 200, "admin": 200}),
            ("GET", f"/roads/report.pdf?segment={long_segment.pk}", {"crew": 403, "dispatcher": 200}),
            ("GET", "/roads/my-orders/", {"anonymous": 302, "crew": 302, "dispatcher": 302}),
            ("GET", "/api/roads/photos/", {"anonymous": (401, 403), "crew": 200, "dispatcher": 200}),
            ("GET", f"/api/roads/photos/{p}/", {"anonymous": (401, 403), "crew": 200, "dispatcher": 200}),
            ("GET", "/api/roads/defects/", {"anonymous": (401, 403), "crew": 200, "dispatcher": 200}),
            ("GET", "/api/roads/camera-runs/", {"anonymous": (401, 403), "crew": 403, "dispatcher": 200}),
            (
                "POST",
                "/api/roads/camera-runs/",
                {"anonymous": (401, 403), "crew": 403, "dispatcher": (400, 415)},
            ),
            ("GET", "/api/roads/cameras/", {"anonymous": (401, 403), "crew": 403, "dispatcher": 200}),
            # the upload endpoint's other address (city_ops/urls.py mounts agents.roads.api.upload_urls)
            ("GET", "/api/inspections/photos/", {"anonymous": (401, 403), "crew": 200, "dispatcher": 200}),
            ("GET", f"/api/roads/defects/{defect.pk}/", {"anonymous": (401, 403), "crew": 200, "dispatcher": 200}),
            # No such camera run or camera: a 404 (or the 415 of a JSON body on a multipart endpoint) shows
            # the role check let the request through; strangers and crews are refused before the lookup.
            ("GET", "/roads/camera-runs/999999/progress.json", {"anonymous": 302, "crew": 403, "dispatcher": 404}),
            ("GET", "/api/roads/camera-runs/999999/", {"anonymous": (401, 403), "crew": 403, "dispatcher": 404}),
            ("POST", "/api/roads/camera-runs/999999/frames/",
             {"anonymous": (401, 403), "crew": 403, "dispatcher": (404, 415)}),
            ("POST", "/api/roads/camera-runs/999999/finish/", {"anonymous": (401, 403), "crew": 403, "dispatcher": 404}),
            ("POST", "/api/roads/cameras/999999/snapshots/",
             {"anonymous": (401, 403), "crew": 403, "dispatcher": (404, 415)}),
        ]
        self.matrix_check(users)


def test_crews_see_only_their_own_uploads_dispatchers_all(long_segment, users, settings):
    settings.ROADS_AUTO_ASSIGN = False  # a crew also sees defects whose repair is assigned to them
    mine, theirs = _two_crews_photos(long_segment, users)
    crew = Client()
    crew.force_login(users.crew)
    listed = [p["id"] for p in crew.get("/api/roads/photos/").json()["results"]]
    assert listed == [mine.pk]
    for url in (
        f"/api/roads/photos/{theirs.pk}/",
        f"/roads/photos/{theirs.pk}/",
        f"/roads/photos/{theirs.pk}/image.jpg",
        f"/roads/photos/{theirs.pk}/status.json",
    ):
        assert crew.get(url).status_code == 404, url
    page = crew.get("/roads/photos/").content.decode()
    assert f'data-photo="{mine.pk}"' in page and f'data-photo="{theirs.pk}"' not in page
    their_defect = theirs.sightings.first().defect
    assert crew.get(f"/roads/defects/{their_defect.pk}/").status_code == 404
    assert [d["id"] for d in crew.get("/api/roads/defects/").json()["results"]] == [
        mine.sightings.first().defect_id
    ]
    dispatcher = Client()
    dispatcher.force_login(users.dispatcher)
    assert sorted(p["id"] for p in dispatcher.get("/api/roads/photos/").json()["results"]) == sorted(
        [mine.pk, theirs.pk]
    )
    assert dispatcher.get(f"/roads/photos/{theirs.pk}/image.jpg").status_code == 200


def test_the_shown_image_is_the_blurred_copy_never_the_original(long_segment, users):
    mine, _ = _two_crews_photos(long_segment, users)
    crew = Client()
    crew.force_login(users.crew)
    shown = b"".join(crew.get(f"/roads/photos/{mine.pk}/image.jpg").streaming_content)
    with mine.original.open("rb") as fh:
        original = fh.read()
    assert shown != original and shown[:2] == b"\xff\xd8"
    admin = Client()
    admin.force_login(users.admin)
    assert b"".join(admin.get(f"/roads/photos/{mine.pk}/original").streaming_content) == original
