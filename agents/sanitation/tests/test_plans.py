"""Plans on the real demo city (real OSM roads, PostGIS): the nightly run's plan checked independently from
what was stored, routes along the roads, KPIs against the fixed schedule; re-planning around a closure and
after a breakdown; edits (move a bin, lock a route, re-optimise) checked; approval."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise

import pytest
from django.contrib.gis.geos import LineString

from agents.runtime.models import AgentRun
from agents.runtime.services import agent_run_create, agent_run_execute, event_dispatch
from agents.sanitation import services
from agents.sanitation.models import Bin, CollectionPlan, FillModel, Pickup, Truck
from agents.sanitation.plan_selectors import plan_candidates, plan_trucks, problem_build, stored_routes
from agents.sanitation.vrp import plan_check
from city_ops.city.models import CityEvent, RoadSegment
from city_ops.city.services import city_event_publish, closure_create
from city_ops.core.models import AuditEntry

from .conftest import plan_day

pytestmark = pytest.mark.django_db
TOMORROW = plan_day()


@pytest.fixture(autouse=True)
def quick_solver(settings):
    settings.SANITATION_PLAN_TIME_LIMIT_S = 0.5


def nightly(date=TOMORROW, baseline: bool = False, **params) -> AgentRun:
    params.setdefault("baseline", "1" if baseline else "0")  # the fixed schedule's routing only where checked
    run, _ = agent_run_create(
        agent="sanitation", run_date=date, trigger="schedule", params=params, enqueue=False
    )
    run = agent_run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    return run


def recheck(plan: CollectionPlan) -> list:
    """Rebuild the plan's problem from the database and run the independent checker on the stored routes."""
    trucks = plan_trucks(plan) + [r.truck for r in plan.routes.all() if not r.truck.in_service]
    problem = problem_build(date=plan.date, trucks=trucks, choices=plan_candidates(plan))
    routes, _ = stored_routes(plan, problem)
    return plan_check(instance=problem.instance, routes=routes)


def test_nightly_plan_on_the_demo_city_is_feasible_and_follows_the_roads(demo_city):
    run = nightly(baseline=True)
    plan = CollectionPlan.objects.get(run=run)
    assert plan.date == TOMORROW and plan.version == 1 and plan.status == "draft" and plan.feasible
    assert recheck(plan) == []  # the stored plan, checked again from the database rows
    kpis = {k.name: k for k in run.kpis.all()}
    assert kpis["km"].value > 0 and kpis["km"].baseline > 0  # the fixed schedule, routed by the same solver
    assert kpis["hours"].baseline > 0 and kpis["bins_visited"].baseline > 0
    assert 0 < kpis["forecast_mae"].value < 25  # per cent of a bin
    assert kpis["unserved_mandatory"].value == 0
    # Every mandatory bin is on a route; every route unloads before it goes home.
    required = {k for k, c in plan.candidates.items() if c["required"]}
    visited = {f"bin:{b}" for b in plan.routes.values_list("stops__bin", flat=True) if b}
    assert required <= visited
    segs = {s.pk: s for s in RoadSegment.objects.all()}
    for route in plan.routes.prefetch_related("stops"):
        stops = list(route.stops.order_by("order"))
        assert stops[-1].kind == "disposal" and stops[-1].load_after_l == 0
        assert all(s.load_after_l <= route.truck.capacity_l for s in stops)
        assert route.depart_at < route.back_at and all(s.arrival <= s.start <= s.departure for s in stops)
        # The geometry follows the road graph: each segment starts where the previous one ended.
        ids = route.segment_ids
        assert len(ids) > 10
        for a, b in pairwise(ids):
            assert {segs[a].source_id, segs[a].target_id} & {segs[b].source_id, segs[b].target_id}
        assert route.geom.num_points > len(stops)
        assert route.distance_m == pytest.approx(sum(segs[i].length_m for i in ids), abs=0.1)
    # The run taught the fill model: every bin has rates, a forecast for the plan day and an error.
    models = FillModel.objects.all()
    assert models.count() == Bin.objects.count()
    assert all(m.forecast_for == TOMORROW and len(m.rates) == 7 for m in models)
    assert models.filter(mae__isnull=False).count() > 0.9 * models.count()


def test_replan_around_a_closure_avoids_the_closed_road(demo_city):
    plan = CollectionPlan.objects.get(run=nightly())
    route = max(plan.routes.all(), key=lambda r: len(r.segment_ids))
    segment = RoadSegment.objects.get(pk=route.segment_ids[len(route.segment_ids) // 2])
    closure = closure_create(geom=LineString(segment.geom.coords, srid=4326), reason="burst water main")
    closed = set(closure.segments.values_list("id", flat=True))
    assert segment.pk in closed
    ev = CityEvent.objects.filter(kind="closure.opened").latest("pk")
    (run,) = [r for r in event_dispatch(event_id=ev.pk) if r.agent == "sanitation"]
    run = agent_run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    new = CollectionPlan.objects.get(date=plan.date, version=2)
    assert new.parent_id == plan.pk and "closure.opened" in new.reason and "burst water main" in new.reason
    assert set(new.closed_segments) >= closed
    for r in new.routes.all():
        assert not closed & set(r.segment_ids), f"{r.truck} still drives a closed segment"
    assert new.feasible and recheck(new) == []

    # The same bins are asked for (a closure changes roads, not fill; only the loads are re-forecast for
    # the new visiting times), and every must-empty bin is still planned unless the closure cut it off.
    def asked(p):
        return {
            k: {f: v for f, v in c.items() if not f.startswith("demand")} for k, c in p.candidates.items()
        }

    assert asked(new) == asked(plan)
    required = {k for k, c in new.candidates.items() if c["required"]}
    new_bins = {f"bin:{b}" for b in new.routes.values_list("stops__bin", flat=True) if b}
    assert required <= new_bins | set(new.kpis.get("unreachable", []))


def test_a_closure_elsewhere_leaves_the_plan_alone(demo_city):
    plan = CollectionPlan.objects.get(run=nightly())
    from city_ops.city.osm import closure_segments_for

    used = {s for r in plan.routes.all() for s in r.segment_ids}
    # A street no route drives (nor its other carriageway, which a line along it would close too).
    unused = next(
        s
        for s in RoadSegment.objects.exclude(pk__in=used).order_by("pk")
        if not used
        & set(closure_segments_for(geom=LineString(s.geom.coords, srid=4326)).values_list("pk", flat=True))
    )
    closure_create(geom=LineString(unused.geom.coords, srid=4326), reason="street party")
    ev = CityEvent.objects.filter(kind="closure.opened").latest("pk")
    (run,) = [r for r in event_dispatch(event_id=ev.pk) if r.agent == "sanitation"]
    run = agent_run_execute(run_id=run.pk)
    assert run.status == "succeeded" and "does not use" in run.summary
    assert CollectionPlan.objects.filter(date=plan.date).count() == 1


def test_breakdown_replans_without_the_truck(demo_city):
    plan = CollectionPlan.objects.get(run=nightly())
    broken = plan.routes.order_by("-distance_m").first().truck
    ev = city_event_publish(kind="vehicle.breakdown", payload={"truck": broken.code, "reason": "hydraulics"})
    (run,) = [r for r in event_dispatch(event_id=ev.pk) if r.agent == "sanitation"]
    assert agent_run_execute(run_id=run.pk).status == "succeeded"
    broken.refresh_from_db()
    assert not broken.in_service and broken.out_of_service_reason == "hydraulics"
    assert AuditEntry.objects.filter(action="sanitation.truck_broke_down", object_id=str(broken.pk)).exists()
    new = CollectionPlan.objects.get(date=plan.date, version=2)
    assert "breakdown of " + broken.code in new.reason
    assert not new.routes.filter(truck=broken).exists()
    required = {k for k, c in new.candidates.items() if c["required"]}
    assert (
        required <= {f"bin:{b}" for b in new.routes.values_list("stops__bin", flat=True) if b}
        or not new.feasible
    )
    # A bus breakdown is not ours: no sanitation run.
    ev = city_event_publish(kind="vehicle.breakdown", payload={"vehicle": "bus-1042"}, source_agent="bus")
    assert [r.agent for r in event_dispatch(event_id=ev.pk)] == []


def test_edits_move_lock_reoptimise_and_approve(demo_city, users):
    plan = CollectionPlan.objects.get(run=nightly())
    routes = [
        r
        for r in plan.routes.select_related("truck").order_by("order")
        if r.stops.filter(bin__waste_type="mixed").exists()
    ]
    source = max(routes, key=lambda r: r.stops.count())
    other = next(
        t
        for t in Truck.objects.filter(waste_types__contains=["mixed"]).order_by("code")
        if t.pk != source.truck_id
    )
    # A bin without an overflow deadline (one due at 07:00 fits only where the solver put it).
    stop = next(
        st
        for st in source.stops.filter(kind="bin", bin__waste_type="mixed").order_by("order")
        if plan.candidates[f"bin:{st.bin_id}"].get("deadline_s") is None
    )
    moved = services.plan_stop_move(plan=plan, bin=stop.bin, truck=other, user=users.dispatcher)
    assert moved.version == 2 and moved.parent_id == plan.pk and stop.bin.code in moved.reason
    assert moved.routes.get(truck=other).stops.filter(bin=stop.bin).exists()
    assert not moved.routes.filter(truck=source.truck, stops__bin=stop.bin).exists()
    assert moved.feasible and recheck(moved) == []
    # A move the checker refuses: a bin into a truck that cannot take its waste... is kept feasible only if
    # its time window allows; here the window closes before any truck starts.
    late = stop.bin
    Bin.objects.filter(pk=late.pk).update(access_from=dt.time(3), access_to=dt.time(4))
    with pytest.raises(services.PlanEditError, match="breaks|no place"):
        services.plan_stop_move(plan=moved, bin=late, truck=source.truck, user=users.dispatcher)
    Bin.objects.filter(pk=late.pk).update(access_from=dt.time(0), access_to=dt.time(23, 59, 59))
    bio = Bin.objects.filter(waste_type="bio", pk__in=[int(k[4:]) for k in moved.candidates]).first()
    mixed_only = Truck.objects.exclude(waste_types__contains=["bio"]).first()
    if bio is not None:
        with pytest.raises(services.PlanEditError, match="does not collect biowaste"):
            services.plan_stop_move(plan=moved, bin=bio, truck=mixed_only, user=users.dispatcher)
    # Lock one route, re-optimise the rest: the locked route comes back stop for stop.
    keep = moved.routes.order_by("order").first()
    services.plan_route_lock(route=keep, locked=True, user=users.dispatcher)
    elsewhere = moved.routes.exclude(pk=keep.pk).first().stops.filter(kind="bin").first().bin
    with pytest.raises(services.PlanEditError, match="locked"):
        services.plan_stop_move(plan=moved, bin=elsewhere, truck=keep.truck, user=users.dispatcher)
    again = services.plan_reoptimise(plan=moved, user=users.dispatcher, options=services.PlanOptions(time_limit=0.5))
    assert again.version == 3 and again.reason.startswith("re-optimised, keeping " + keep.truck.code)
    kept = again.routes.get(truck=keep.truck)
    assert kept.locked
    assert list(kept.stops.order_by("order").values_list("bin", "disposal_site")) == list(
        keep.stops.order_by("order").values_list("bin", "disposal_site")
    )
    assert set(again.candidates) == set(moved.candidates)
    # Approval: an older version cannot be approved once a newer exists; the newest can.
    with pytest.raises(services.PlanEditError, match="newer version"):
        services.plan_approve(plan=plan, user=users.dispatcher)
    approved = services.plan_approve(plan=again, user=users.dispatcher)
    assert approved.status == "approved" and approved.approved_by == users.dispatcher
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.plan_approve(plan=again, user=users.crew)


def test_reoptimise_runs_as_an_agent_run(demo_city, users):
    plan = CollectionPlan.objects.get(run=nightly())
    run, _ = agent_run_create(
        agent="sanitation",
        run_date=plan.date,
        trigger="replan",
        user=users.dispatcher,
        params={"action": "reoptimise", "plan_id": plan.pk},
        enqueue=False,
    )
    run = agent_run_execute(run_id=run.pk)
    assert run.status == "succeeded", run.error
    new = CollectionPlan.objects.get(run=run)
    assert new.version == 2 and new.reason == "re-optimised" and new.created_by == users.dispatcher


def test_demo_bins_lie_on_real_streets_and_are_found_by_area(demo_city):
    from django.contrib.gis.geos import Polygon

    from agents.runtime.registry import assets_in_area
    from city_ops.city.models import CityProfile

    bins = list(Bin.objects.select_related("segment"))
    assert len(bins) == 120 and all(b.segment_id for b in bins)
    # On its street: within a metre of the segment it was snapped to (degrees -> metres at 60° N, roughly).
    assert max(b.geom.distance(b.segment.geom) for b in bins) * 111_000 < 1.0
    assert all(b.street == b.segment.name for b in bins)
    x1, y1, x2, y2 = CityProfile.objects.get().bounds.extent
    west = Polygon.from_bbox((x1, y1, (x1 + x2) / 2, y2))
    west.srid = 4326
    found = [a for a in assets_in_area(area=west) if a.agent == "sanitation"]
    expected = {b.code for b in bins if b.geom.x < (x1 + x2) / 2}
    assert {a.id for a in found} == expected and 0 < len(expected) < len(bins)
    assert all(a.kind == "bin" and " L " in a.label for a in found)


# --- re-plans on the road ------------------------------------------------------------------------------------


def _day_under_way(users, marks_until: dt.time):
    """Today's plan, approved, with the crews' marks of every bin stop planned before `marks_until` on the
    first route (one of them skipped: blocked), none on the others; marks are stamped at their planned
    start. Returns the plan, the marked route and its marked stops."""
    from city_ops.core.timeutil import city_today, city_tz

    today = city_today()
    plan = services.plan_approve(
        plan=CollectionPlan.objects.get(run=nightly(date=today)), user=users.dispatcher
    )
    cutoff = dt.datetime.combine(today, marks_until, tzinfo=city_tz())
    # The route with the most required bins still to come after the marks (then the most in all): which
    # route that is depends on the day's forecast, and a route whose required bins all lie before the cutoff
    # would leave a re-plan nothing required to hand over.
    route = max(
        plan.routes.select_related("truck"),
        key=lambda r: (
            r.stops.filter(kind="bin", start__lt=cutoff).count() >= 3,
            r.stops.filter(kind="bin", required=True, start__gte=cutoff).count(),
            r.stops.filter(kind="bin", required=True).count(),
        ),
    )
    stops = [s for s in route.stops.order_by("order") if s.kind == "bin" and s.start < cutoff]
    assert len(stops) >= 3, "the first route should have some stops done by then"
    # On a light day (few bins due) a truck may finish every required bin before the cutoff: the crews then
    # have marked all but the route's last required bin, so a re-plan still has required work to hand over.
    required_at = [k for k, s in enumerate(stops) if s.required]
    later = route.stops.filter(kind="bin", required=True, start__gte=cutoff).exists()
    if not later and required_at and required_at[-1] >= 3:
        stops = stops[: required_at[-1]]
    for k, stop in enumerate(stops):
        if k == 1:
            pickup = services.stop_mark(stop=stop, user=users.dispatcher, status="skipped", reason="blocked")
        else:
            pickup = services.stop_mark(
                stop=stop, user=users.dispatcher, status="collected", observed_fill=0.6
            )
        Pickup.objects.filter(pk=pickup.pk).update(at=stop.start)
    return plan, route, stops


def _recheck_on_road(plan: CollectionPlan, parent: CollectionPlan, now, positions=None) -> list:
    """The stored routes of a plan re-planned on the road, checked again from the database rows: each
    truck from where the marks put it at `now`."""
    from agents.sanitation.plan_selectors import trucks_in_flight

    trucks = plan_trucks(plan) + [r.truck for r in plan.routes.all() if not r.truck.in_service]
    starts, _, _ = trucks_in_flight(plan=parent, now=now, trucks=trucks, positions=positions)
    problem = problem_build(date=plan.date, trucks=trucks, choices=plan_candidates(plan), starts=starts)
    routes, _ = stored_routes(plan, problem)
    return plan_check(instance=problem.instance, routes=routes)


def test_a_replan_on_the_road_starts_each_truck_where_it_is(demo_city, users):
    from city_ops.city.network import road_network
    from city_ops.core.timeutil import city_tz

    plan, route, done = _day_under_way(users, dt.time(8, 30))
    now = dt.datetime.combine(plan.date, dt.time(9, 30), tzinfo=city_tz())
    new = services.plan_create(
        date=plan.date,
        reason="re-plan after closure.opened #test",
        replan=services.Replan(parent=plan, reuse_candidates=True, now=now),
        options=services.PlanOptions(time_limit=0.5, baseline=False),
    )
    assert new.version == plan.version + 1 and new.feasible, new.violations
    assert _recheck_on_road(new, plan, now) == []
    # What the crews dealt with (collected or skipped) is not visited again.
    done_bins = {s.bin_id for s in done}
    assert not new.routes.filter(stops__bin__in=done_bins).exists()
    # Every must-empty bin not yet done is still planned, and nothing is served before now.
    required = {k for k, c in plan.candidates.items() if c["required"]} - {f"bin:{b}" for b in done_bins}
    assert required <= {f"bin:{b}" for b in new.routes.values_list("stops__bin", flat=True) if b}
    assert all(s.start >= now for r in new.routes.all() for s in r.stops.all())
    # The marked truck starts at its last marked bin (snapped to the road graph) with what its crew
    # loaded since the last unload planned before that bin: the litres of the fill they saw.
    last = done[-1]
    unload = max(
        (s.order for s in route.stops.all() if s.kind == "disposal" and s.order < last.order), default=0
    )
    loaded = min(
        round(sum(0.6 * s.bin.capacity_l for k, s in enumerate(done) if k != 1 and s.order > unload)),
        route.truck.capacity_l,
    )
    mine = new.routes.get(truck=route.truck)
    assert mine.profile[0]["label"] == f"at {last.bin.code}" and mine.profile[0]["load_l"] == loaded
    assert mine.depart_at >= now
    net = road_network()
    node, _ = net.snap([(last.bin.geom.x, last.bin.geom.y)])
    assert mine.geom.coords[0] == pytest.approx(tuple(net.node_lonlat[int(node[0])]), abs=1e-9)
    import gpxpy

    gpx = gpxpy.parse(services.route_gpx(route=mine))
    assert gpx.routes[0].points[0].name == f"0 at {last.bin.code}"
    first = mine.stops.order_by("order").first()
    if first.kind == "bin":
        assert first.load_after_l == loaded + new.candidates[f"bin:{first.bin_id}"]["demand_l"]
    else:
        assert first.load_after_l == 0
    # The trucks without marks start from their depot, not before now.
    for r in new.routes.exclude(truck=route.truck):
        assert r.profile[0]["label"] == "depot" and r.depart_at >= now and r.profile[0]["load_l"] == 0


def test_a_breakdown_on_the_road_hands_the_rest_to_the_others(demo_city, users):
    from city_ops.core.timeutil import city_tz

    plan, route, done = _day_under_way(users, dt.time(7, 30))
    broken = route.truck
    Truck.objects.filter(pk=broken.pk).update(in_service=False)
    now = dt.datetime.combine(plan.date, dt.time(9, 0), tzinfo=city_tz())
    other = (
        Truck.objects.filter(in_service=True, waste_types__contains=["mixed"]).exclude(pk=broken.pk).first()
    )
    reported = Bin.objects.exclude(
        pk__in=plan.routes.filter(stops__bin__isnull=False).values_list("stops__bin", flat=True)
    ).first()
    positions = {other.code: (reported.geom.x, reported.geom.y)}
    new = services.plan_create(
        date=plan.date,
        reason=f"re-plan after breakdown of {broken.code}",
        replan=services.Replan(
            parent=plan, reuse_candidates=True, exclude_truck_ids=frozenset({broken.pk}), now=now, positions=positions
        ),
        options=services.PlanOptions(time_limit=0.5, baseline=False),
    )
    assert new.feasible, new.violations
    assert _recheck_on_road(new, plan, now, positions) == []
    assert not new.routes.filter(truck=broken).exists()
    # The broken truck's bins not yet done are on the other trucks now; the done ones on none.
    left = {s.bin_id for s in route.stops.filter(kind="bin")} - {s.bin_id for s in done}
    required_left = {b for b in left if plan.candidates[f"bin:{b}"]["required"]}
    planned = set(new.routes.values_list("stops__bin", flat=True))
    assert required_left and required_left <= planned
    assert not planned & {s.bin_id for s in done}
    # A truck that reported where it is starts there.
    mine = new.routes.filter(truck=other).first()
    if mine is not None:
        assert mine.profile[0]["label"] == "reported position" and mine.depart_at >= now
