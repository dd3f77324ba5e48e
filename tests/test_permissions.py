"""Who may open what: a permission matrix over every console view and API endpoint (anonymous, field crew,
dispatcher, admin), crews seeing only their own work orders, machine tokens limited to their scopes, and
the login rate limit."""
from __future__ import annotations

import io
import random
import re
from dataclasses import dataclass

import pytest
from django.contrib.gis.geos import LineString, Point
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, path
from PIL import Image
from rest_framework.response import Response
from rest_framework.views import APIView

from agents.runtime import contract
from agents.runtime.services import agent_run_create
from city_ops.city.services import closure_create
from city_ops.core.permissions import scope_permission
from city_ops.core.roles import Role
from city_ops.core.services import api_client_create
from city_ops.core.testing import PermissionMatrixMixin, client_for
from city_ops.notifications.models import Notification
from city_ops.workorders.services import work_order_create, work_order_photo_add

pytestmark = pytest.mark.django_db

OK, REDIRECT, FORBIDDEN, NOT_FOUND = 200, 302, 403, 404
API_DENIED = (401, 403)


# --- a test-only endpoint guarded by a machine-client scope (no platform endpoint takes tokens yet) --------

class _ScopedReadingsView(APIView):
    permission_classes = (scope_permission("test.readings:write", Role.DISPATCHER),)

    def post(self, request):
        return Response({"ok": True, "client": getattr(request.auth, "name", None)})


urlpatterns = [path("scoped/", _ScopedReadingsView.as_view())]


@dataclass
class World:
    own: int  # a work order assigned to `crew`
    other: int  # one assigned to `crew_other`
    photo: int  # a photo on `own`
    other_photo: int
    note: int  # a notification to `crew`
    run: int
    closure: int


def _jpeg(size=(32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 90, 60)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def world(users, settings, tmp_path) -> World:
    settings.MEDIA_ROOT = str(tmp_path)
    own, _ = work_order_create(title="Pothole on Bulevardi", location=Point(24.94, 60.165), assignee=users.crew,
                               user=users.dispatcher)
    other, _ = work_order_create(title="Drain blocked", location=Point(24.95, 60.16), assignee=users.crew_other,
                                 user=users.dispatcher)
    photo = work_order_photo_add(order=own, kind="before", image=SimpleUploadedFile("b.jpg", _jpeg()),
                                 user=users.dispatcher)
    other_photo = work_order_photo_add(order=other, kind="before", image=SimpleUploadedFile("c.jpg", _jpeg()),
                                       user=users.dispatcher)
    note = Notification.objects.create(recipient=users.crew, subject="Flood warning", level=2, requires_ack=True)
    run, _ = agent_run_create(agent="demo", enqueue=False)
    # The matrix needs a closure row, not a road network: the service's no-road refusal is waived here.
    closure = closure_create(geom=LineString((24.94, 60.16), (24.941, 60.161), srid=4326), reason="test",
                             require_segments=False)
    return World(own=own.pk, other=other.pk, photo=photo.pk, other_photo=other_photo.pk, note=note.pk,
                 run=run.pk, closure=closure.pk)


def _matrix(w: World) -> list[tuple[str, str, dict]]:
    """(method, url, {role: status}) for every console view and every platform API endpoint.

    POSTs carry an empty JSON body: a 400/302 from the view's own validation shows the role check let the
    request through, a 401/403 that it did not."""
    console_disp = {"anonymous": REDIRECT, "crew": FORBIDDEN, "dispatcher": OK, "admin": OK}
    api_crew = {"anonymous": API_DENIED, "crew": OK, "dispatcher": OK, "admin": OK}
    api_disp = {"anonymous": API_DENIED, "crew": FORBIDDEN, "dispatcher": OK, "admin": OK}
    return [
        # console: dispatchers land on the map, crews are sent to their orders
        ("GET", "/", {"anonymous": REDIRECT, "crew": REDIRECT, "dispatcher": OK, "admin": OK}),
        ("GET", "/map/workorders.geojson", console_disp),
        ("GET", "/runs/", console_disp),
        ("POST", "/runs/start/", {"anonymous": REDIRECT, "crew": FORBIDDEN, "dispatcher": REDIRECT, "admin": REDIRECT}),
        ("GET", "/results/", console_disp),
        ("GET", "/statement/", console_disp),
        ("GET", "/statement/pdf/", console_disp),
        ("GET", "/workorders/", console_disp),
        ("GET", f"/workorders/{w.own}/", {"anonymous": REDIRECT, "crew": OK, "dispatcher": OK, "admin": OK}),
        ("GET", f"/workorders/{w.other}/", {"crew": NOT_FOUND, "dispatcher": OK}),
        ("POST", f"/workorders/{w.own}/action/", {"anonymous": REDIRECT, "crew": REDIRECT, "dispatcher": REDIRECT}),
        ("POST", f"/workorders/{w.other}/action/", {"crew": NOT_FOUND}),
        ("POST", f"/workorders/{w.own}/photo/", {"anonymous": REDIRECT, "crew": REDIRECT, "dispatcher": REDIRECT}),
        ("POST", f"/workorders/{w.other}/photo/", {"crew": NOT_FOUND}),
        ("GET", f"/workorders/{w.own}/photos/{w.photo}/", {"anonymous": REDIRECT, "crew": OK, "dispatcher": OK}),
        ("GET", f"/workorders/{w.other}/photos/{w.other_photo}/", {"crew": NOT_FOUND, "dispatcher": OK}),
        ("GET", f"/workorders/{w.own}/photos/{w.other_photo}/", {"crew": NOT_FOUND, "dispatcher": NOT_FOUND}),
        ("GET", "/my-orders/", {"anonymous": REDIRECT, "crew": OK, "dispatcher": OK, "admin": OK}),
        ("GET", "/notifications/", {"anonymous": REDIRECT, "crew": OK, "dispatcher": OK, "admin": OK}),
        ("POST", f"/notifications/{w.note}/ack/", {"anonymous": REDIRECT, "crew": REDIRECT, "dispatcher": NOT_FOUND,
                                                   "admin": NOT_FOUND}),
        ("POST", "/settings/language/", {"anonymous": REDIRECT, "crew": REDIRECT, "dispatcher": REDIRECT}),
        # API: the city's layers are for everyone signed in; writing closures is the dispatchers'
        ("GET", "/api/city/roads.geojson", api_crew),
        ("GET", "/api/city/districts.geojson", api_crew),
        ("GET", "/api/city/places.geojson", api_crew),
        ("GET", "/api/city/closures.geojson", api_crew),
        # the map's tiles and viewport GeoJSON: each layer keeps its own roles (an empty tile is a 204)
        ("GET", "/api/city/tiles/roads/16/0/0.mvt", {"anonymous": API_DENIED, "crew": 204, "dispatcher": 204,
                                                     "admin": 204}),
        ("GET", "/api/city/tiles/roads-defects/16/0/0.mvt", {"anonymous": API_DENIED, "crew": FORBIDDEN,
                                                             "dispatcher": 204, "admin": 204}),
        ("GET", "/api/city/layers/roads.geojson?bbox=24.9,60.1,25.0,60.2&zoom=14", api_crew),
        ("GET", "/api/city/layers/sanitation-bins.geojson?bbox=24.9,60.1,25.0,60.2&zoom=14", api_disp),
        ("POST", "/api/city/closures.geojson", {"anonymous": API_DENIED, "crew": FORBIDDEN, "dispatcher": 400}),
        ("POST", f"/api/city/closures/{w.closure}/lift/", {"anonymous": API_DENIED, "crew": FORBIDDEN, "dispatcher": OK}),
        ("POST", "/api/city/route/", {"anonymous": API_DENIED, "crew": 400, "dispatcher": 400}),
        # API: agents, runs and results are the dispatchers'
        ("GET", "/api/agents/", api_disp),
        ("GET", "/api/agents/runs/", api_disp),
        ("POST", "/api/agents/runs/", {"anonymous": API_DENIED, "crew": FORBIDDEN, "dispatcher": 400, "admin": 400}),
        ("GET", f"/api/agents/runs/{w.run}/", api_disp),
        ("GET", "/api/agents/results/", api_disp),
        # API: the results statement (JSON, CSV) is the dispatchers' and admins'
        ("GET", "/api/results/statement/", api_disp),
        ("GET", "/api/results/statement/?format=csv", api_disp),
        # API: work orders (crews: their own)
        ("GET", "/api/workorders/", api_crew),
        ("POST", "/api/workorders/", {"anonymous": API_DENIED, "crew": FORBIDDEN, "dispatcher": 400}),
        ("GET", f"/api/workorders/{w.own}/", api_crew),
        ("GET", f"/api/workorders/{w.other}/", {"crew": NOT_FOUND, "dispatcher": OK}),
        ("POST", f"/api/workorders/{w.own}/transition/", {"anonymous": API_DENIED, "crew": 400, "dispatcher": 400}),
        ("POST", f"/api/workorders/{w.other}/transition/", {"crew": NOT_FOUND}),
        # the photo endpoint takes multipart only: 415 for a JSON body means the role check passed
        ("POST", f"/api/workorders/{w.own}/photos/", {"anonymous": API_DENIED, "crew": 415, "dispatcher": 415}),
        ("POST", f"/api/workorders/{w.other}/photos/", {"crew": NOT_FOUND}),
        # API: one's own notifications
        ("GET", "/api/notifications/", api_crew),
        ("POST", f"/api/notifications/{w.note}/ack/", {"anonymous": API_DENIED, "crew": OK, "dispatcher": NOT_FOUND}),
        # the copilot's console pages: crews and dispatchers, each their own conversations only (none here: 404)
        ("POST", "/copilot/ask/", {"anonymous": REDIRECT, "crew": REDIRECT, "dispatcher": REDIRECT}),
        ("GET", "/copilot/999999/", {"anonymous": REDIRECT, "crew": NOT_FOUND, "dispatcher": NOT_FOUND}),
        ("POST", "/copilot/999999/decide/", {"anonymous": REDIRECT, "crew": NOT_FOUND, "dispatcher": NOT_FOUND}),
        # API: the copilot, for crews and dispatchers (each gets the tools of their role; empty body: 400)
        ("POST", "/api/copilot/", {"anonymous": API_DENIED, "crew": 400, "dispatcher": 400, "admin": 400}),
        # the API description: for anyone signed in (it names every endpoint, so not for the world)
        ("GET", "/api/schema/", {"anonymous": API_DENIED, "crew": OK, "dispatcher": OK}),
        ("GET", "/api/schema/swagger/", {"anonymous": API_DENIED, "crew": OK}),
        ("GET", "/api/schema/redoc/", {"anonymous": API_DENIED, "crew": OK}),
        # public by design: health and metrics (no people or places in them)
        ("GET", "/metrics", {"anonymous": OK}),
        ("GET", "/healthz", {"anonymous": (200, 503)}),
        # Django admin: admins only (crews and dispatchers are not staff)
        ("GET", "/admin/", {"anonymous": REDIRECT, "crew": REDIRECT, "dispatcher": REDIRECT, "admin": OK}),
    ]


class TestPermissionMatrix(PermissionMatrixMixin):
    def test_every_cell(self, users, world):
        self.matrix = _matrix(world)
        self.matrix_check(users)

    def test_matrix_covers_every_route(self, world):
        """A new console view or API endpoint must be added to a matrix: the platform's above, or the
        matrix in the tests of the agent that mounts it (agents/runtime/contract.py reads those)."""
        covered = {_route_of(url) for _, url, _ in _matrix(world)}
        covered |= {_route_of("/" + url) for cfg in _agent_apps() for url in contract.app_matrix_urls(cfg)}
        missing = [route for route, _ in _routes() if _is_guarded(route) and route not in covered]
        assert not missing, f"routes missing from the permission matrix: {missing}"


# --- every route, including those agents add later ----------------------------------------------------------

def _routes(patterns=None, prefix: str = ""):
    """(route, callback) for every URL pattern, with converters left in (e.g. 'workorders/<int:pk>/')."""
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            yield from _routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.callback


def _route_of(url: str) -> str:
    """The route a concrete URL of the matrix belongs to."""
    for route, _ in _routes():
        if _concrete(route, 0) is not None and contract.route_regex(route).fullmatch(url.lstrip("/").split("?")[0]):
            return route
    return url


def _concrete(route: str, pk: int) -> str | None:
    """A URL for a route, with every int converter set to `pk`; None for regex or path routes."""
    if route.startswith("^") or "(?P" in route or "<path:" in route:
        return None
    url = re.sub(r"<int:\w+>", str(pk), route)
    url = re.sub(r"<(?:str|slug|uuid):\w+>", "x", url)
    return "/" + url


# Routes that are public or belong to Django itself (its login, password reset, admin).
PUBLIC_PREFIXES = ("accounts/", "i18n/", "admin/", "healthz", "metrics", "static/", "media/")


def _is_guarded(route: str) -> bool:
    return not route.startswith(PUBLIC_PREFIXES)


def _agent_apps() -> list:
    from django.apps import apps

    return [cfg for cfg in apps.get_app_configs() if getattr(cfg, "url_prefix", None)]


def _declared_public(callback) -> bool:
    """An API view that names AllowAny itself is public on purpose (e.g. a GTFS-Realtime feed); that line
    is what a reviewer checks. Everything else must refuse strangers."""
    from rest_framework.permissions import AllowAny

    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    return AllowAny in tuple(getattr(view_class, "permission_classes", ()) or ())


def test_anonymous_is_refused_everywhere(db):
    """Every route that is not public - agents' panels and APIs included - refuses an anonymous visitor:
    the console sends them to the login page, the API answers 401/403."""
    client = Client()
    wrong = []
    for route, callback in _routes():
        url = _concrete(route, 1)
        if url is None or route.startswith(PUBLIC_PREFIXES) or _declared_public(callback):
            continue
        resp = client.get(url)
        if resp.status_code == 405:  # POST-only: ask the way a form would
            resp = client.post(url)
        if route.startswith("api/"):
            if resp.status_code not in API_DENIED:
                wrong.append(f"{url}: {resp.status_code}")
        elif resp.status_code != 302 or not resp["Location"].startswith("/accounts/login/"):
            wrong.append(f"{url}: {resp.status_code} {resp.get('Location', '')}")
    assert not wrong, "open to anonymous visitors:\n" + "\n".join(wrong)


def test_crews_never_open_dispatcher_pages(users):
    """Every console view that does not name the field-crew role answers a crew member with 403."""
    client = client_for("crew", users)
    checked, wrong = 0, []
    for route, callback in _routes():
        roles = getattr(callback, "required_roles", None)
        url = _concrete(route, 1)
        if roles is None or url is None or Role.FIELD_CREW in roles:
            continue
        checked += 1
        resp = client.get(url)
        if resp.status_code == 405:
            resp = client.post(url)
        if resp.status_code != 403:
            wrong.append(f"{url}: {resp.status_code}")
    assert checked >= 4 and not wrong, wrong


def test_every_console_view_states_its_roles():
    """A console view without role_required would be open to any signed-in user: none may exist."""
    from city_ops.console import urls

    bare = [p.name for p in urls.urlpatterns if not getattr(p.callback, "required_roles", None)]
    assert not bare, f"console views without role_required: {bare}"


def test_forbidden_page_is_the_consoles(users):
    resp = client_for("crew", users).get("/runs/")
    assert resp.status_code == 403
    assert b'id="error-403"' in resp.content and b"My orders" in resp.content  # the crew's own nav is there


# --- crews see only their own work orders -------------------------------------------------------------------

def test_crews_only_see_their_own_orders(users, world):
    crew = client_for("crew", users)
    listed = {o["id"] for o in crew.get("/api/workorders/").json()["results"]}
    assert listed == {world.own}
    page = crew.get("/my-orders/").content.decode()
    assert "Pothole on Bulevardi" in page and "Drain blocked" not in page
    # the other crew's order is invisible by id on every path, not just forbidden
    for url in (f"/api/workorders/{world.other}/", f"/workorders/{world.other}/",
                f"/workorders/{world.other}/photos/{world.other_photo}/"):
        assert crew.get(url).status_code == 404, url
    resp = crew.post(f"/api/workorders/{world.other}/transition/", {"status": "in_progress"},
                     content_type="application/json")
    assert resp.status_code == 404
    dispatcher = client_for("dispatcher", users)
    assert {o["id"] for o in dispatcher.get("/api/workorders/").json()["results"]} == {world.own, world.other}


def test_crew_cannot_cancel_even_their_own_order(users, world):
    crew = client_for("crew", users)
    resp = crew.post(f"/api/workorders/{world.own}/transition/", {"status": "cancelled"},
                     content_type="application/json")
    assert resp.status_code == 403
    assert crew.post(f"/workorders/{world.own}/action/", {"action": "cancel"}).status_code == 403
    from city_ops.workorders.models import WorkOrder

    assert WorkOrder.objects.get(pk=world.own).status == "assigned"


# --- machine clients ------------------------------------------------------------------------------------------

@pytest.mark.urls("tests.test_permissions")
def test_machine_token_needs_its_scope(users):
    _, good = api_client_create(name="gauge-gateway", scopes=["test.readings:write"])
    _, other = api_client_create(name="bus-feed", scopes=["bus.positions:write"])
    inactive_client, inactive = api_client_create(name="old-gateway", scopes=["test.readings:write"])
    inactive_client.active = False
    inactive_client.save()
    c = Client()

    def post(token=None):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        return c.post("/scoped/", {}, content_type="application/json", **headers)

    ok = post(good)
    assert ok.status_code == 200 and ok.json()["client"] == "gauge-gateway"
    assert post(other).status_code == 403  # a real token, the wrong scope
    assert post(inactive).status_code in API_DENIED
    assert post("cok_not-a-token").status_code in API_DENIED
    assert post().status_code in API_DENIED
    # people: the roles the endpoint names
    assert client_for("dispatcher", users).post("/scoped/", {}, content_type="application/json").status_code == 200
    assert client_for("crew", users).post("/scoped/", {}, content_type="application/json").status_code == 403


def test_machine_token_opens_no_peoples_endpoints(world):
    _, token = api_client_create(name="everything", scopes=["test.readings:write", "bus.positions:write"])
    c = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    for url in ("/api/workorders/", "/api/city/roads.geojson", "/api/agents/runs/", "/api/notifications/"):
        assert c.get(url).status_code in API_DENIED, url


# --- login ------------------------------------------------------------------------------------------------------

def _address() -> str:
    # A fresh address per run: the limiter's counters live in the shared test cache.
    return "10.{}.{}.{}".format(*(random.randint(1, 254) for _ in range(3)))


def test_login_rate_limit_refuses_repeated_failures(users, settings):
    settings.LOGIN_RATE_LIMIT = "3/h"
    c, addr = Client(), _address()
    for _ in range(3):
        resp = c.post("/accounts/login/", {"username": "crew", "password": "wrong"}, REMOTE_ADDR=addr)
        assert resp.status_code == 200 and b"did not match" in resp.content
    # The fourth attempt is refused before the password is even checked - the right one too.
    resp = c.post("/accounts/login/", {"username": "crew", "password": "pw-crew-123"}, REMOTE_ADDR=addr)
    assert resp.status_code == 429 and b'id="login-refused"' in resp.content
    assert "_auth_user_id" not in c.session
    # Another address is not affected.
    resp = Client().post("/accounts/login/", {"username": "crew", "password": "pw-crew-123"}, REMOTE_ADDR=_address())
    assert resp.status_code == 302


def test_successful_logins_do_not_count(users, settings):
    settings.LOGIN_RATE_LIMIT = "2/h"
    addr = _address()
    for _ in range(4):
        resp = Client().post("/accounts/login/", {"username": "dispatcher", "password": "pw-disp-123"},
                             REMOTE_ADDR=addr)
        assert resp.status_code == 302


def test_login_lands_each_role_on_its_page(users):
    for username, password, landing in (("dispatcher", "pw-disp-123", "/"), ("crew", "pw-crew-123", "/my-orders/")):
        c = Client()
        resp = c.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=_address(),
                      follow=True)
        assert resp.status_code == 200 and resp.request["PATH_INFO"] == landing, username


def test_language_switch_refuses_foreign_next(users):
    c = client_for("crew", users)
    resp = c.post("/settings/language/", {"language": "en", "next": "https://evil.example/"})
    assert resp.status_code == 302 and resp["Location"] == "/"

