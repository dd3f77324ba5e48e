"""Fixtures of the sanitation tests (the platform's - demo_city, users, browser - come from tests/fixtures.py,
which the root conftest registers): an approved plan with the test crews on its routes."""
from __future__ import annotations

import pytest


@pytest.fixture
def approved_plan(demo_city, users, settings):
    """The next service day's plan, approved, with `crew` on one route's crew and `crew_other` on another's
    (when the solver put the day on one truck, a dispatcher's move gives a second truck a route).
    Returns (plan, crew's route, crew_other's route)."""
    from agents.runtime.services import agent_run_create, agent_run_execute
    from agents.sanitation import services
    from agents.sanitation.models import CollectionPlan, Truck

    settings.SANITATION_PLAN_TIME_LIMIT_S = 0.5
    run, _ = agent_run_create(agent="sanitation", run_date=plan_day(), trigger="manual", enqueue=False,
                              params={"baseline": "0"})
    assert agent_run_execute(run_id=run.pk).status == "succeeded"
    plan = CollectionPlan.objects.get(run=run)
    if plan.routes.count() < 2:
        route = plan.routes.get()
        waste = route.stops.filter(kind="bin").first().bin.waste_type
        other = Truck.objects.filter(waste_types__contains=[waste]).exclude(pk=route.truck_id).first()
        stop = route.stops.filter(kind="bin", bin__waste_type=waste).first()
        plan = services.plan_stop_move(plan=plan, bin=stop.bin, truck=other, user=users.dispatcher)
    routes = list(plan.routes.select_related("crew", "truck").order_by("order"))
    routes[0].crew.members.add(users.crew)
    routes[1].crew.members.add(users.crew_other)
    plan = services.plan_approve(plan=plan, user=users.dispatcher)
    for r in routes:
        r.refresh_from_db()
    return plan, routes[0], routes[1]


def plan_day():
    """The next service day after today (Monday to Saturday): what the nightly run plans, whatever weekday
    the tests run on."""
    import datetime as dt

    from city_ops.core.timeutil import city_today

    day = city_today() + dt.timedelta(days=1)
    return day + dt.timedelta(days=1) if day.weekday() == 6 else day


# A hand-made 4-node CVRPLIB instance (optimum 22), for the readers, the solver and the command line.
TINY_CVRP = """NAME : tiny-cvrp
COMMENT : hand-made (Optimal value: 22)
TYPE : CVRP
DIMENSION : 4
EDGE_WEIGHT_TYPE : EUC_2D
CAPACITY : 10
NODE_COORD_SECTION
1 0 0
2 3 4
3 6 8
4 1 1
DEMAND_SECTION
1 0
2 4
3 5
4 7
DEPOT_SECTION
1
-1
EOF
"""
