"""Crews on the approved plan: each sees only their own route (API, console, GPX), marks stops collected
(with the fill seen) or skipped (reason, photo), and those pickups feed the fill model."""
from __future__ import annotations

import datetime as dt
import io

import gpxpy
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from agents.runtime.services import agent_run_create, agent_run_execute
from agents.sanitation import services
from agents.sanitation.models import CollectionPlan, FillModel, Pickup
from city_ops.core.testing import client_for

from .conftest import plan_day

pytestmark = pytest.mark.django_db


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (90, 120, 60)).save(buf, "JPEG")
    return buf.getvalue()


DAY = plan_day()


@pytest.fixture
def today_plan(approved_plan, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    return approved_plan


def test_crew_sees_only_its_own_route(today_plan, users):
    plan, mine, theirs = today_plan
    crew = client_for("crew", users)
    data = crew.get(f"/api/sanitation/crew/routes/?date={DAY}").json()
    assert [r["id"] for r in data] == [mine.pk]
    assert [s["order"] for s in data[0]["stops"]] == list(range(1, mine.stops.count() + 1))
    assert data[0]["geometry"]["type"] == "LineString" and data[0]["profile"]
    assert len(client_for("dispatcher", users).get(f"/api/sanitation/crew/routes/?date={DAY}").json()) == plan.routes.count()
    page = crew.get(f"/sanitation/crew/?date={DAY}")
    assert page.status_code == 200
    body = page.content.decode()
    assert f'data-route="{mine.pk}"' in body and f'data-route="{theirs.pk}"' not in body
    theirs_stop = theirs.stops.filter(kind="bin").first()
    assert crew.post(f"/api/sanitation/crew/stops/{theirs_stop.pk}/", {"status": "collected", "observed_fill": 0.5},
                     content_type="application/json").status_code == 404
    assert crew.get(f"/sanitation/routes/{theirs.pk}/gpx/").status_code == 404
    assert crew.get(f"/api/sanitation/routes/{theirs.pk}/gpx/").status_code == 404


def test_gpx_has_the_road_track_and_the_stops_in_order(today_plan, users):
    _, mine, _ = today_plan
    resp = client_for("crew", users).get(f"/sanitation/routes/{mine.pk}/gpx/")
    assert resp.status_code == 200 and resp["Content-Type"] == "application/gpx+xml"
    assert f"route-{mine.truck.code}-" in resp["Content-Disposition"]
    gpx = gpxpy.parse(resp.content.decode())
    assert len(gpx.tracks[0].segments[0].points) == mine.geom.num_points
    stops = list(mine.stops.order_by("order"))
    points = gpx.routes[0].points
    assert len(points) == len(stops) + 2  # leave the depot, the stops, back at the depot
    assert [p.name.split()[0] for p in points[1:-1]] == [str(s.order) for s in stops]
    assert points[1].latitude == pytest.approx((stops[0].bin or stops[0].disposal_site).geom.y)
    assert points[-2].name.endswith(stops[-1].disposal_site.name)  # unload before going home
    assert len(gpx.waypoints) == len(stops)


def test_marks_become_pickups_the_fill_model_learns_from(today_plan, users):
    _, mine, _ = today_plan
    crew = client_for("crew", users)
    first, second = list(mine.stops.filter(kind="bin").order_by("order")[:2])
    resp = crew.post(f"/api/sanitation/crew/stops/{first.pk}/", {"status": "collected", "observed_fill": 0.9},
                     content_type="application/json")
    assert resp.status_code == 200, resp.content
    photo = SimpleUploadedFile("overflow.jpg", _jpeg(), content_type="image/jpeg")
    resp = crew.post(f"/api/sanitation/crew/stops/{second.pk}/",
                     {"status": "skipped", "reason": "overflowing", "photo": photo})
    assert resp.status_code == 200, resp.content
    # Collected needs the fill seen; skipped needs a reason.
    assert crew.post(f"/api/sanitation/crew/stops/{first.pk}/", {"status": "collected"},
                     content_type="application/json").status_code == 400
    assert crew.post(f"/api/sanitation/crew/stops/{second.pk}/", {"status": "skipped"},
                     content_type="application/json").status_code == 400
    collected = Pickup.objects.get(stop=first)
    skipped = Pickup.objects.get(stop=second)
    assert collected.status == "collected" and collected.observed_fill == 0.9 and collected.crew == mine.crew
    assert collected.reported_by == users.crew and not collected.overflowing
    assert skipped.status == "skipped" and skipped.overflowing and skipped.photo.name.endswith(".jpg")
    # The dispatcher sees the overflow report (with its photo); the crew member too, as it is theirs.
    assert client_for("dispatcher", users).get(f"/sanitation/pickups/{skipped.pk}/photo/").status_code == 200
    assert b"overflowing" in client_for("dispatcher", users).get("/sanitation/overflows/").content.lower()
    # Correcting a mark keeps one pickup per stop.
    crew.post(f"/api/sanitation/crew/stops/{first.pk}/", {"status": "collected", "observed_fill": 0.8},
              content_type="application/json")
    assert Pickup.objects.filter(stop=first).count() == 1 and Pickup.objects.get(stop=first).observed_fill == 0.8

    later = timezone.now() + dt.timedelta(minutes=5)
    before = {m.bin_id: m for m in FillModel.objects.filter(bin__in=[first.bin, second.bin])}
    update = services.fill_models_update(now=later, forecast_for=DAY)
    after = {m.bin_id: m for m in FillModel.objects.filter(bin__in=[first.bin, second.bin])}
    # Collected: the bin is empty since the crew's visit, and the level it saw is one more observation.
    a = after[first.bin_id]
    assert a.last_level == 0.0 and a.last_at > before[first.bin_id].last_at
    assert a.n_obs == before[first.bin_id].n_obs + 1
    # Skipped because overflowing: still full, so tomorrow it is a must-empty bin.
    b = after[second.bin_id]
    assert b.last_level == pytest.approx(1.0) and b.forecast_fill >= 1.0
    assert update.states[second.bin_id].last_level == pytest.approx(1.0)
    from agents.sanitation.plan_selectors import bins_choices_for

    choices, _ = bins_choices_for(date=DAY, trucks=list(
        mine.truck.__class__.objects.all()), states=update.states)
    by_id = {c.id: c for c in choices}
    assert by_id[f"bin:{second.bin_id}"].required
    # The emptied bin's forecast for the same day dropped: it starts again from empty.
    assert before[first.bin_id].forecast_for == a.forecast_for == DAY
    assert a.forecast_fill < before[first.bin_id].forecast_fill
    if f"bin:{first.bin_id}" in by_id:
        assert by_id[f"bin:{first.bin_id}"].level < by_id[f"bin:{second.bin_id}"].level


def test_console_marking_on_the_phone_page(today_plan, users):
    _, mine, _ = today_plan
    crew = client_for("crew", users)
    stop = mine.stops.filter(kind="bin").order_by("order").first()
    resp = crew.post(f"/sanitation/crew/stops/{stop.pk}/", {"status": "collected", "observed_fill": "60"})
    assert resp.status_code == 302 and f"#stop-{stop.pk}" in resp["Location"]
    assert Pickup.objects.get(stop=stop).observed_fill == pytest.approx(0.6)  # per cent accepted
    page = crew.get(resp["Location"].split("#")[0]).content.decode()
    assert f'id="stop-{stop.pk}" data-stop="{stop.pk}" data-status="collected"' in page


def test_marks_need_an_approved_plan(demo_city, users, settings):
    settings.SANITATION_PLAN_TIME_LIMIT_S = 0.5
    run, _ = agent_run_create(agent="sanitation", run_date=DAY, trigger="manual", enqueue=False,
                              params={"baseline": "0"})
    agent_run_execute(run_id=run.pk)
    plan = CollectionPlan.objects.get(run=run)
    stop = plan.routes.first().stops.filter(kind="bin").first()
    resp = client_for("dispatcher", users).post(f"/api/sanitation/crew/stops/{stop.pk}/",
                                                {"status": "collected", "observed_fill": 0.5},
                                                content_type="application/json")
    assert resp.status_code == 400 and "not approved" in resp.json()["detail"][0]
    assert client_for("crew", users).get(f"/api/sanitation/crew/routes/?date={DAY}").json() == []
