"""Who may do what in the bus panel and API: every view walked as anonymous, crew, dispatcher and admin."""
from __future__ import annotations

import datetime as dt

import pytest

from agents.bus.services.feeds import feed_import
from agents.bus.services.plans import plan_create
from city_ops.core.testing import PermissionMatrixMixin

pytestmark = pytest.mark.django_db
DENIED = (401, 403)


class TestBusPermissions(PermissionMatrixMixin):
    def test_matrix(self, users, tiny_zip):
        feed = feed_import(path=tiny_zip).feed
        plan = plan_create(feed=feed, service_date=dt.date(2024, 3, 6))
        p, f = plan.pk, feed.pk
        console = {"anonymous": 302, "crew": 403, "dispatcher": 200, "admin": 200}
        console_post = {"anonymous": 302, "crew": 403, "dispatcher": 302, "admin": 302}
        api = {"anonymous": DENIED, "crew": 403, "dispatcher": 200, "admin": 200}
        self.matrix = [
            ("GET", "/bus/", console),
            ("GET", f"/bus/plans/{p}/", console),
            ("GET", f"/bus/plans/{p}/export.csv", console),
            ("GET", f"/bus/plans/{p}/gtfs.zip", console),
            ("POST", f"/bus/plans/{p}/action/", console_post),
            # The empty body names no feed: a 404 shows the role check let the dispatcher through.
            ("POST", "/bus/plans/new/", {"anonymous": 302, "crew": 403, "dispatcher": 404, "admin": 404}),
            ("POST", "/bus/feeds/upload/", console_post),
            ("POST", "/bus/warnings/999/accept/", {"anonymous": 302, "crew": 403, "dispatcher": 404, "admin": 404}),
            ("GET", "/api/bus/feeds/", api),
            ("POST", "/api/bus/feeds/", {"anonymous": DENIED, "crew": 403, "dispatcher": 400, "admin": 400}),
            ("GET", f"/api/bus/feeds/{f}/", api),
            ("GET", "/api/bus/plans/", api),
            ("GET", f"/api/bus/plans/{p}/", api),
            ("GET", f"/api/bus/plans/{p}/export/", api),
            ("POST", f"/api/bus/plans/{p}/edit/", {"anonymous": DENIED, "crew": 403, "dispatcher": 400, "admin": 400}),
            ("POST", f"/api/bus/plans/{p}/approve/", {"anonymous": DENIED, "crew": 403, "dispatcher": (200, 409),
                                                      "admin": (200, 409)}),
            ("GET", "/api/bus/warnings/", api),
            ("POST", "/api/bus/warnings/999/accept/", {"anonymous": DENIED, "crew": 403, "dispatcher": 404}),
            ("GET", "/api/bus/detours/", api),
            ("POST", "/api/bus/positions/", {"anonymous": DENIED, "crew": 403, "dispatcher": 400, "admin": 400}),
            ("GET", "/api/bus/layers/routes/", {"anonymous": DENIED, "crew": 200, "dispatcher": 200}),
            ("GET", "/api/bus/layers/stops/", {"anonymous": DENIED, "crew": 200, "dispatcher": 200}),
            ("GET", "/api/bus/layers/vehicles/", {"anonymous": DENIED, "crew": 200, "dispatcher": 200}),
            ("GET", "/api/bus/layers/detours/", {"anonymous": DENIED, "crew": 200, "dispatcher": 200}),
            # public on purpose, like any agency's realtime feeds
            ("GET", "/api/bus/gtfs-rt/trip-updates.pb", {"anonymous": 200, "crew": 200, "dispatcher": 200}),
            ("GET", "/api/bus/gtfs-rt/alerts.pb", {"anonymous": 200, "crew": 200, "dispatcher": 200}),
        ]
        self.matrix_check(users)
        plan.refresh_from_db()
        assert plan.status == "approved" and plan.approved_by == users.dispatcher

    def test_every_console_view_names_its_roles(self):
        from django.urls import get_resolver

        from agents.bus import urls

        for pattern in urls.urlpatterns:
            assert getattr(pattern.callback, "required_roles", None), f"{pattern.name} has no role check"
        assert get_resolver().resolve("/bus/").url_name == "panel"
