"""Security headers on real responses and the local media URL: a Content-Security-Policy with nothing inline
and nothing foreign on every page, `Cache-Control: no-store` on what signed-in users and machine clients
get, and the unblurred originals of crews' photos never served by MEDIA_URL (HSTS: tests/test_deploy.py)."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from django.contrib.gis.geos import Point
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import clear_url_caches
from django.utils import timezone

from city_ops.core.services import api_client_create
from city_ops.core.testing import client_for

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = sorted([*REPO.glob("city_ops/**/templates/**/*.html"), *REPO.glob("agents/*/templates/**/*.html")])
SCRIPTS = sorted([*REPO.glob("city_ops/*/static/*/*.js"), *REPO.glob("agents/*/static/*/*.js")])


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


# --- Content-Security-Policy -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "url"), [
    ("dispatcher", "/"), ("dispatcher", "/runs/"), ("dispatcher", "/workorders/"), ("dispatcher", "/flood/"),
    ("crew", "/my-orders/"), ("anonymous", "/accounts/login/"), ("dispatcher", "/api/city/districts.geojson"),
])
def test_every_answer_carries_a_policy_of_own_files_only(users, role, url):
    resp = client_for(role, users).get(url)
    assert resp.status_code == 200
    policy = _policy(resp)
    for directive in ("default-src", "script-src", "style-src", "connect-src", "base-uri", "form-action"):
        assert policy[directive] == ["'self'"], directive
    assert policy["img-src"] == ["'self'", "data:"]  # no CITY_TILE_URL: the road network is the base layer
    assert policy["object-src"] == policy["frame-ancestors"] == ["'none'"]
    assert "unsafe" not in resp["Content-Security-Policy"]


@pytest.mark.django_db
def test_only_the_api_browsers_get_allowances(users):
    client = client_for("dispatcher", users)
    swagger = _policy(client.get("/api/schema/swagger/"))
    assert swagger["script-src"] == ["'self'"] and swagger["style-src"] == ["'self'", "'unsafe-inline'"]
    start = client.get("/api/schema/swagger/?script=")  # the split view's start-up script, from 'self'
    assert start.status_code == 200 and "SwaggerUIBundle" in start.content.decode()
    redoc = _policy(client.get("/api/schema/redoc/"))
    assert redoc["script-src"] == redoc["style-src"] == ["'self'", "'unsafe-inline'"]
    assert redoc["worker-src"] == ["blob:"] and redoc["connect-src"] == ["'self'"]


def test_a_tile_server_is_allowed_for_images_only(monkeypatch):
    monkeypatch.setenv("CITY_TILE_URL", "https://{s}.tile.example.org/{z}/{x}/{y}.png")
    from city_ops.settings import base

    try:
        directives = importlib.reload(base).CONTENT_SECURITY_POLICY["DIRECTIVES"]
        assert directives["img-src"] == ["'self'", "data:", "https://*.tile.example.org"]
        assert directives["script-src"] == directives["connect-src"] == ["'self'"]
    finally:
        monkeypatch.delenv("CITY_TILE_URL")
        importlib.reload(base)


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(REPO)))
def test_templates_hold_no_inline_script_handler_or_style(path):
    """What the policy blocks must not be in the markup: a page would silently lose its behaviour or colour
    (the browser tests catch it on the pages they open; this catches it on every template)."""
    text = path.read_text()
    assert not re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", text), "inline <script>"
    assert not re.findall(r"<[^>]*\son[a-z]+\s*=", text), "inline event handler (onclick=, onchange=, ...)"
    assert not re.findall(r"<[^>]*\sstyle\s*=", text), "style= attribute (use data-c / data-aspect or a class)"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(REPO)))
def test_scripts_build_no_style_attributes(path):
    """HTML built by scripts is parsed like a template: its style= attributes are blocked too (the CSSOM,
    element.style, is not)."""
    text = path.read_text()
    assert not re.findall(r"""\bstyle=["'\\]|setAttribute\(\s*["']style""", text)


# --- Cache-Control ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_signed_in_pages_and_api_answers_are_not_stored(users):
    for role, url in [("dispatcher", "/"), ("crew", "/my-orders/"), ("dispatcher", "/api/city/districts.geojson"),
                      ("dispatcher", "/api/workorders/")]:
        resp = client_for(role, users).get(url)
        assert resp.status_code == 200, url
        assert "no-store" in resp["Cache-Control"] and "private" in resp["Cache-Control"], (role, url)
    # A user's DRF token and a machine client's bearer token: the same, even on a refusal.
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=users.dispatcher)
    resp = Client().get("/api/workorders/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert resp.status_code == 200 and "no-store" in resp["Cache-Control"]
    _, bearer = api_client_create(name="gauge", scopes=["flood.readings:write"])
    resp = Client().get("/api/workorders/", HTTP_AUTHORIZATION=f"Bearer {bearer}")
    assert resp.status_code == 403 and "no-store" in resp["Cache-Control"]


@pytest.mark.django_db
def test_anonymous_answers_and_chosen_caching_are_left_alone(users):
    resp = Client().get("/healthz")
    assert "Cache-Control" not in resp
    # The public GTFS-Realtime feed chooses its own caching, also when a signed-in user fetches it.
    resp = client_for("dispatcher", users).get("/api/bus/gtfs-rt/trip-updates.pb")
    assert resp.status_code == 200 and resp["Cache-Control"] == "public, max-age=15"


# --- media under the local settings ---------------------------------------------------------------------------


@pytest.fixture
def local_urls(settings):
    """The URLs as the local settings (DEBUG) build them: these add MEDIA_URL."""
    import city_ops.urls

    settings.DEBUG = True
    importlib.reload(city_ops.urls)
    clear_url_caches()
    yield
    settings.DEBUG = False
    importlib.reload(city_ops.urls)
    clear_url_caches()


@pytest.fixture
def crew_photo(users):
    from agents.roads.models import InspectionPhoto

    photo = InspectionPhoto.objects.create(
        sha256="e" * 64, uploader=users.crew, taken_at=timezone.now(), taken_at_source="received",
        location=Point(24.94, 60.17, srid=4326), location_source="pin")
    photo.original.save("face.jpg", ContentFile(b"unblurred original bytes"))
    return photo


@pytest.mark.django_db
def test_media_url_never_serves_an_original(local_urls, users, crew_photo):
    name = crew_photo.original.name
    assert name.startswith("roads/originals/") and default_storage.exists(name)
    folder, file = name.rsplit("/", 1)
    for path in (name, f"roads/photos/../originals/{name.split('roads/originals/')[1]}", f"{folder}//{file}",
                 f"{folder}/./{file}"):
        for role in ("anonymous", "crew", "dispatcher", "admin"):
            resp = client_for(role, users).get(f"/media/{path}")
            assert resp.status_code == 404, (role, path, resp.status_code)
    # The permission-checked view still serves it: to admins, audited; to no one else.
    url = f"/roads/photos/{crew_photo.pk}/original"
    resp = client_for("admin", users).get(url)
    assert resp.status_code == 200 and b"".join(resp.streaming_content) == b"unblurred original bytes"
    assert resp["Cache-Control"] == "private, no-store"
    assert client_for("dispatcher", users).get(url).status_code == 403
    assert client_for("crew", users).get(url).status_code == 403


@pytest.mark.django_db
def test_media_url_serves_other_files_to_admins_only(local_urls, users):
    name = default_storage.save("workorders/2026/01/after.jpg", ContentFile(b"after photo"))
    for role, status in (("anonymous", 403), ("crew", 403), ("dispatcher", 403), ("admin", 200)):
        assert client_for(role, users).get(f"/media/{name}").status_code == status, role


@pytest.mark.django_db
def test_admin_links_files_through_their_checked_views(users, crew_photo):
    page = client_for("admin", users).get(f"/admin/agent_roads/inspectionphoto/{crew_photo.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'href="/roads/photos/{crew_photo.pk}/original"' in html and "/media/" not in html
