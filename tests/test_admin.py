"""The Django admin of the platform apps: every model is registered, every page renders with the real city
loaded and loads nothing from the internet, history is read-only, and writes that services own (closures,
API tokens, work-order workflow, agent runs) go through those services."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point, Polygon
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from agents.runtime import contract
from agents.runtime.models import AgentRun
from agents.runtime.services import agent_run_create, agent_run_execute
from city_ops.city.models import CityEvent, CityProfile, RoadClosure
from city_ops.core.models import ApiClient, AuditEntry
from city_ops.results.models import UnitCosts
from city_ops.results.services import statement_issue

pytestmark = pytest.mark.django_db
APP_LABELS = ("core", "city", "workorders", "notifications", "agents_core", "results")
REMOTE_ASSET = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


def platform_models():
    return [m for m in apps.get_models() if m._meta.app_label in APP_LABELS]


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root-admin-test", "root@example.org", "pw-root-123")


@pytest.fixture
def root_client(root) -> Client:
    c = Client()
    c.force_login(root)
    return c


def centre_box(half_w: float = 0.002, half_h: float = 0.001) -> Polygon:
    x1, y1, x2, y2 = CityProfile.objects.get().bounds.extent
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    box = Polygon.from_bbox((cx - half_w, cy - half_h, cx + half_w, cy + half_h))
    box.srid = 4326
    return box


@pytest.fixture
def one_of_everything(demo_city, users, root, settings, tmp_path):
    """At least one row of every platform model, made through the services."""
    from city_ops.city.services import closure_create
    from city_ops.core.services import api_client_create
    from city_ops.notifications.models import Subscription
    from city_ops.notifications.services import notification_send
    from city_ops.workorders.services import work_order_create, work_order_photo_add

    settings.MEDIA_ROOT = str(tmp_path / "media")
    closure_create(geom=centre_box(), reason="burst main", user=users.dispatcher)
    api_client_create(name="gauge gateway", scopes=["flood.readings:write"])
    order, _ = work_order_create(title="Pothole on Bulevardi", location=centre_box().centroid, user=users.dispatcher,
                                 assignee=users.crew)
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (90, 90, 90)).save(buf, "JPEG")
    work_order_photo_add(order=order, kind="before", user=users.crew,
                         image=SimpleUploadedFile("before.jpg", buf.getvalue(), content_type="image/jpeg"))
    Subscription.objects.create(role="dispatcher", topic="flood", min_level=1, channels=["console", "email"])
    notification_send(topic="flood", level=2, subject="Underpass flooding", location=centre_box().centroid)
    run, _ = agent_run_create(agent="demo", enqueue=False)
    agent_run_execute(run_id=run.pk, worker="admin-test")
    UnitCosts.objects.create(pk=1, per_truck_km=3.5)
    statement_issue(date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 31), user=users.dispatcher)
    return {"order": order, "run": run}


def test_every_platform_model_is_registered():
    """Registered, or shown inline on a registered model's page (an agent run's attempts): the rule the agent
    contract applies to the agents too."""
    missing = [line for label in APP_LABELS for line in contract.admin_missing(apps.get_app_config(label))]
    assert not missing, f"not in the admin: {missing}"


def test_every_page_renders_and_loads_nothing_remote(root_client, one_of_everything):
    problems = []
    for model in platform_models():
        if not admin.site.is_registered(model):
            continue  # shown inline on its parent's page (test_every_platform_model_is_registered)
        info = (model._meta.app_label, model._meta.model_name)
        pages = [reverse("admin:{}_{}_changelist".format(*info))]
        model_admin = admin.site._registry[model]
        if model_admin.search_fields:
            pages += [pages[0] + "?q=Bulevardi", pages[0] + "?q=42"]
        obj = model.objects.order_by("pk").first()
        assert obj is not None, f"fixture made no {model._meta.label}"
        pages.append(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
        if model_admin.has_add_permission(_request_for(root_client)):
            pages.append(reverse("admin:{}_{}_add".format(*info)))
        for url in pages:
            resp = root_client.get(url)
            if resp.status_code != 200:
                problems.append(f"{url}: HTTP {resp.status_code}")
            elif REMOTE_ASSET.search(resp.content.decode()):
                problems.append(f"{url}: loads {REMOTE_ASSET.search(resp.content.decode()).group(0)}...")
    assert not problems, "\n".join(problems)


def _request_for(client):
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.get(username="root-admin-test")
    return request


def test_geometry_is_edited_as_text_without_a_map(root_client, demo_city):
    from city_ops.city.models import District

    district = District.objects.order_by("pk").first()
    page = root_client.get(reverse("admin:city_district_change", args=[district.pk])).content.decode()
    assert re.search(r"<textarea[^>]*name=\"geom\"[^>]*>\s*SRID=4326;MULTIPOLYGON", page)
    assert "ol.js" not in page and "openlayers" not in page.lower() and "tile.openstreetmap" not in page


def test_history_is_read_only(root_client, one_of_everything):
    entry = AuditEntry.objects.order_by("pk").first()
    change = reverse("admin:core_auditentry_change", args=[entry.pk])
    assert root_client.get(reverse("admin:core_auditentry_add")).status_code == 403
    assert root_client.post(change, {"action": "forged"}).status_code == 403
    assert root_client.post(reverse("admin:core_auditentry_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    page = root_client.get(change).content.decode()
    assert 'name="_save"' not in page
    entry.refresh_from_db()
    assert entry.action != "forged"
    run = one_of_everything["run"]
    assert root_client.post(reverse("admin:agents_core_agentrun_change", args=[run.pk]),
                            {"status": "pending"}).status_code == 403


def test_api_client_token_is_shown_once_and_only_its_hash_is_kept(root_client, root):
    resp = root_client.post(reverse("admin:core_apiclient_add"),
                            {"name": "river gateway", "scopes": '["flood.readings:write"]', "active": "on"})
    assert resp.status_code == 200
    token = re.search(r'class="api-token">(cok_[\w-]+)<', resp.content.decode()).group(1)
    assert "no-store" in resp["Cache-Control"]
    client = ApiClient.objects.get(name="river gateway")
    assert client.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert client.token_prefix == token[:8] and ApiClient.by_token(token) == client
    assert client.scopes == ["flood.readings:write"]
    # Never again in clear: not in the list, not on the change page.
    listing = root_client.get(reverse("admin:core_apiclient_changelist")).content.decode()
    detail = root_client.get(reverse("admin:core_apiclient_change", args=[client.pk])).content.decode()
    assert token not in listing and token not in detail and client.token_prefix in listing
    audit = AuditEntry.objects.get(action="api_client.created")
    assert audit.actor == root and token not in str(audit.changes)

    # A new token replaces the old one, shown once too.
    resp = root_client.post(reverse("admin:core_apiclient_changelist"),
                            {"action": "token_rotate", "_selected_action": [client.pk]})
    new = re.search(r'class="api-token">(cok_[\w-]+)<', resp.content.decode()).group(1)
    assert new != token and ApiClient.by_token(token) is None and ApiClient.by_token(new) == client


def test_bad_scopes_are_refused(root_client):
    resp = root_client.post(reverse("admin:core_apiclient_add"),
                            {"name": "bad", "scopes": '"flood.readings:write"', "active": "on"})
    assert resp.status_code == 200 and "JSON list of strings" in resp.content.decode()
    assert not ApiClient.objects.filter(name="bad").exists()


def test_closure_added_in_admin_goes_through_the_service(root_client, root, demo_city):
    box = centre_box()
    resp = root_client.post(reverse("admin:city_roadclosure_add"), {
        "geom": box.wkt, "reason": "gas leak", "source_ref": "call 112-7",
        "valid_from_0": "2026-07-01", "valid_from_1": "08:00:00", "valid_to_0": "", "valid_to_1": "",
    })
    assert resp.status_code == 302, resp.content.decode()[-2000:]
    closure = RoadClosure.objects.get(reason="gas leak")
    assert closure.segments.count() > 0 and closure.created_by == root and closure.geom.srid == 4326
    assert AuditEntry.objects.filter(action="closure.opened", object_id=str(closure.pk), actor=root).exists()
    opened = CityEvent.objects.get(kind="closure.opened")
    assert opened.payload["closure_id"] == closure.pk

    # The change page is a view; ending the closure is the lift action (closure_lift).
    assert root_client.post(reverse("admin:city_roadclosure_change", args=[closure.pk]),
                            {"reason": "edited"}).status_code == 403
    root_client.post(reverse("admin:city_roadclosure_changelist"),
                     {"action": "closures_lift", "_selected_action": [closure.pk]})
    closure.refresh_from_db()
    assert closure.valid_to is not None and closure.reason == "gas leak"
    assert CityEvent.objects.filter(kind="closure.lifted", payload__closure_id=closure.pk).exists()


def test_bad_geometry_text_is_a_form_error(root_client):
    resp = root_client.post(reverse("admin:city_roadclosure_add"), {
        "geom": "POLYGON((not numbers))", "reason": "x", "valid_from_0": "2026-07-01", "valid_from_1": "08:00:00"})
    assert resp.status_code == 200 and "Invalid geometry value" in resp.content.decode()
    assert not RoadClosure.objects.exists()


def test_work_order_actions_follow_the_workflow(root_client, one_of_everything):
    order = one_of_everything["order"]
    root_client.post(reverse("admin:workorders_workorder_changelist"),
                     {"action": "orders_verify", "_selected_action": [order.pk]})
    order.refresh_from_db()
    assert order.status == "assigned"  # an assigned order cannot be verified: refused, not forced
    root_client.post(reverse("admin:workorders_workorder_changelist"),
                     {"action": "orders_cancel", "_selected_action": [order.pk]})
    order.refresh_from_db()
    assert order.status == "cancelled" and order.closed_at is not None
    assert order.events.filter(to_status="cancelled").exists()
    # Status is not a form field on the change page.
    page = root_client.get(reverse("admin:workorders_workorder_change", args=[order.pk])).content.decode()
    assert 'name="status"' not in page and 'name="title"' in page


def test_work_order_edit_is_audited(root_client, root, one_of_everything):
    order = one_of_everything["order"]
    url = reverse("admin:workorders_workorder_change", args=[order.pk])
    resp = root_client.post(url, {
        "title": "Deep pothole on Bulevardi", "description": "", "priority": "4",
        "due_at_0": "2026-07-02", "due_at_1": "12:00:00",
        "photos-TOTAL_FORMS": "1", "photos-INITIAL_FORMS": "1", "photos-MIN_NUM_FORMS": "0",
        "photos-MAX_NUM_FORMS": "1000", "photos-0-id": str(order.photos.get().pk), "photos-0-order": str(order.pk),
        "events-TOTAL_FORMS": str(order.events.count()), "events-INITIAL_FORMS": str(order.events.count()),
        "events-MIN_NUM_FORMS": "0", "events-MAX_NUM_FORMS": "1000",
        **{f"events-{i}-id": str(e.pk) for i, e in enumerate(order.events.order_by("at", "id"))},
        **{f"events-{i}-order": str(order.pk) for i in range(order.events.count())},
    })
    assert resp.status_code == 302, resp.content.decode()[-3000:]
    order.refresh_from_db()
    assert order.title == "Deep pothole on Bulevardi" and order.priority == 4
    audit = AuditEntry.objects.get(action="admin.changed", object_id=str(order.pk))
    assert audit.actor == root and set(audit.changes) >= {"title", "priority"}


def test_agent_run_again_and_cancel_use_the_runtime(root_client, root, one_of_everything):
    run = one_of_everything["run"]
    root_client.post(reverse("admin:agents_core_agentrun_changelist"),
                     {"action": "runs_again", "_selected_action": [run.pk]})
    again = AgentRun.objects.exclude(pk=run.pk).get()
    assert (again.agent, again.run_date, again.trigger, again.status) == ("demo", run.run_date, "manual", "pending")
    assert f"#{run.pk}" in again.reason and again.created_by == root
    root_client.post(reverse("admin:agents_core_agentrun_changelist"),
                     {"action": "runs_cancel", "_selected_action": [run.pk, again.pk]})
    run.refresh_from_db()
    again.refresh_from_db()
    assert run.status == "succeeded" and again.status == "cancelled"  # a finished run is left alone


def test_subscription_form_needs_a_role_or_a_user(root_client):
    url = reverse("admin:notifications_subscription_add")
    base = {"topic": "flood", "min_level": "2", "escalate_after_min": "15", "area": ""}
    resp = root_client.post(url, {**base, "role": "", "user": ""})
    assert resp.status_code == 200 and "exactly one" in resp.content.decode()
    # A single polygon pasted into the multi-polygon column is accepted (wrapped), not refused.
    area = Polygon.from_bbox((24.93, 60.16, 24.96, 60.17))
    resp = root_client.post(url, {**base, "role": "dispatcher", "channels": ["console", "email"], "area": area.wkt})
    assert resp.status_code == 302
    from city_ops.notifications.models import Subscription

    sub = Subscription.objects.get(topic="flood")
    assert sub.channels == ["console", "email"] and sub.area.geom_type == "MultiPolygon"
    assert sub.area.contains(Point(24.945, 60.165, srid=4326)) and not sub.area.contains(Point(24.9, 60.1, srid=4326))


@pytest.mark.django_db
def test_admin_role_without_superuser_manages_models(client):
    from city_ops.core.roles import Role
    from city_ops.core.services import user_create

    admin = user_create(username="role-admin", password="pw-role-admin-1", roles=[Role.ADMIN])
    assert not admin.is_superuser and admin.is_staff
    client.force_login(admin)
    page = client.get("/admin/")
    assert page.status_code == 200 and b"Work orders" in page.content
    assert client.get("/admin/workorders/workorder/").status_code == 200
    dispatcher = user_create(username="disp-x", password="pw-disp-x-12", roles=[Role.DISPATCHER])
    client.force_login(dispatcher)
    assert client.get("/admin/workorders/workorder/").status_code == 302  # not staff: sent to login
