"""Who may open what in the sanitation panel and API: anonymous, field crew, dispatcher, admin; crews only
their own crew's routes, stops, GPX and photos; sensor gateways only with the fills scope."""
from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from agents.sanitation import services
from city_ops.core.services import api_client_create
from city_ops.core.testing import PermissionMatrixMixin

pytestmark = pytest.mark.django_db

OK, REDIRECT, FORBIDDEN, NOT_FOUND, BAD = 200, 302, 403, 404, 400
DENIED = (401, 403)


@pytest.fixture
def world(approved_plan, users, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    plan, mine, theirs = approved_plan
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 40, 40)).save(buf, "JPEG")
    own_stop = mine.stops.filter(kind="bin").first()
    other_stop = theirs.stops.filter(kind="bin").first()
    pickup = services.stop_mark(stop=own_stop, user=users.crew, status="skipped", reason="blocked",
                                photo=SimpleUploadedFile("b.jpg", buf.getvalue()))
    return {"plan": plan.pk, "mine": mine.pk, "theirs": theirs.pk, "own_stop": own_stop.pk,
            "other_stop": other_stop.pk, "pickup": pickup.pk}


def _matrix(w: dict) -> list[tuple[str, str, dict]]:
    console_disp = {"anonymous": REDIRECT, "crew": FORBIDDEN, "dispatcher": OK, "admin": OK}
    console_post = {"anonymous": REDIRECT, "crew": FORBIDDEN, "dispatcher": REDIRECT, "admin": REDIRECT}
    api_disp = {"anonymous": DENIED, "crew": FORBIDDEN, "dispatcher": OK, "admin": OK}
    p = w["plan"]
    return [
        ("GET", "/sanitation/", console_disp),
        ("GET", "/sanitation/bins.geojson", console_disp),
        ("GET", "/sanitation/routes.geojson", console_disp),
        ("GET", "/sanitation/fill/", console_disp),
        ("GET", "/sanitation/overflows/", console_disp),
        ("POST", f"/sanitation/plans/{p}/approve/", console_post),
        ("POST", f"/sanitation/plans/{p}/move/", console_post),
        ("POST", f"/sanitation/plans/{p}/reoptimise/", console_post),
        ("POST", f"/sanitation/routes/{w['mine']}/lock/", console_post),
        ("GET", f"/sanitation/routes/{w['mine']}/gpx/", {"anonymous": REDIRECT, "crew": OK, "dispatcher": OK}),
        ("GET", f"/sanitation/routes/{w['theirs']}/gpx/", {"crew": NOT_FOUND, "dispatcher": OK}),
        ("GET", "/sanitation/crew/", {"anonymous": REDIRECT, "crew": OK, "dispatcher": OK, "admin": OK}),
        ("POST", f"/sanitation/crew/stops/{w['own_stop']}/", {"anonymous": REDIRECT, "crew": REDIRECT,
                                                               "dispatcher": REDIRECT}),
        ("POST", f"/sanitation/crew/stops/{w['other_stop']}/", {"crew": NOT_FOUND}),
        ("GET", f"/sanitation/pickups/{w['pickup']}/photo/", {"anonymous": REDIRECT, "crew": OK, "dispatcher": OK}),
        # the API
        ("GET", "/api/sanitation/bins/", api_disp),
        ("POST", "/api/sanitation/fills/", {"anonymous": DENIED, "crew": FORBIDDEN, "dispatcher": BAD}),
        ("GET", "/api/sanitation/plans/", api_disp),
        ("GET", f"/api/sanitation/plans/{p}/", api_disp),
        ("POST", f"/api/sanitation/plans/{p}/approve/", api_disp),
        ("POST", f"/api/sanitation/plans/{p}/edit/", {"anonymous": DENIED, "crew": FORBIDDEN, "dispatcher": BAD}),
        ("GET", "/api/sanitation/crew/routes/", {"anonymous": DENIED, "crew": OK, "dispatcher": OK}),
        ("POST", f"/api/sanitation/crew/stops/{w['own_stop']}/", {"anonymous": DENIED, "crew": BAD,
                                                                   "dispatcher": BAD}),
        ("POST", f"/api/sanitation/crew/stops/{w['other_stop']}/", {"crew": NOT_FOUND}),
        ("GET", f"/api/sanitation/routes/{w['mine']}/gpx/", {"anonymous": DENIED, "crew": OK, "dispatcher": OK}),
        ("GET", f"/api/sanitation/routes/{w['theirs']}/gpx/", {"crew": NOT_FOUND, "dispatcher": OK}),
    ]


class TestPermissionMatrix(PermissionMatrixMixin):
    def test_every_cell(self, users, world):
        self.matrix = _matrix(world)
        self.matrix_check(users)

    def test_matrix_covers_every_sanitation_route(self, world):
        from agents.sanitation import urls as console_urls
        from agents.sanitation.api import urls as api_urls

        covered = {url for _, url, _ in _matrix(world)}

        def concrete(prefix, pattern):
            import re

            return prefix + re.sub(r"<int:\w+>", r"\\d+", str(pattern.pattern))

        import re

        missing = []
        for prefix, mod in (("/sanitation/", console_urls), ("/api/sanitation/", api_urls)):
            for pattern in mod.urlpatterns:
                rx = re.compile("^" + concrete(prefix, pattern).replace(".", r"\.") + "$")
                if not any(rx.match(u) for u in covered):
                    missing.append(str(pattern.pattern))
        assert not missing, f"routes missing from the matrix: {missing}"


def test_fills_scope_admits_the_gateway_only(world):
    _, token = api_client_create(name="fill-gateway", scopes=["sanitation.fills:write"])
    _, other = api_client_create(name="flood-gateway", scopes=["flood.readings:write"])
    client = Client()
    body = {"readings": []}
    assert client.post("/api/sanitation/fills/", body, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert client.post("/api/sanitation/fills/", body, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {other}").status_code == 403
    # A token opens nothing else of ours.
    assert client.get("/api/sanitation/plans/", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403
