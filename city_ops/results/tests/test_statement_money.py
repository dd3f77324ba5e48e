"""Every agent's statement carries money: the roads inspection against a manual patrol of the same km, late
repairs at the contract's penalty, flood call-outs against the former threshold rule on the same readings, sanitation truck-days and bus
empty running at their running cost. The unit costs come from the admin's one row; a figure without money
always has a note that says why; and the Statement page, cached, follows a change of the unit costs."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.test import Client

from agents.flood.tests.conftest import world  # noqa: F401 (the flood agent's test zones and sensors)
from agents.runtime.models import AgentRun, RunKpi
from city_ops.core.services import user_create
from city_ops.results.models import UNIT_COST_DEFAULTS, WORK_RATE_DEFAULTS, UnitCosts
from city_ops.results.selectors import headline_money, statement_build, unit_costs_get

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 5, 6)
ROADS_KPIS = {"km_inspected": (10.0, None), "defects_found": (6.0, None), "repairs_in_sla": (3.0, 4.0),
              "repairs_done": (4.0, None), "repair_hours": (50.0, 72.0)}


def _stored_run(agent: str, kpis: dict[str, tuple[float, float | None]], day: dt.date = DAY) -> AgentRun:
    """A succeeded scheduled run with its stored KPIs (value, baseline): what the statement reads."""
    run = AgentRun.objects.create(agent=agent, run_date=day, trigger=AgentRun.Trigger.SCHEDULE,
                                  status=AgentRun.Status.SUCCEEDED)
    RunKpi.objects.bulk_create(RunKpi(run=run, agent=agent, run_date=day, name=name, value=value, baseline=base)
                               for name, (value, base) in kpis.items())
    return run


def _headlines(statement: dict, agent: str) -> dict[str, dict]:
    return {h["name"]: h for h in statement["agents"][agent]["headlines"]}


def _admin_sets_unit_costs(users_prefix: str, **costs) -> None:
    """The city's admin edits the one row of unit costs through the admin form, the door a city uses."""
    from city_ops.core.roles import Role

    admin = user_create(username=f"{users_prefix}-costs-admin", password="pw-costs-admin-1", roles=[Role.ADMIN])
    client = Client()
    client.force_login(admin)
    form = {"currency": "CNY", **{k: "" for k in {**UNIT_COST_DEFAULTS, **WORK_RATE_DEFAULTS}},
            **{k: str(v) for k, v in costs.items()}}
    url = "/admin/results/unitcosts/1/change/" if UnitCosts.objects.exists() else "/admin/results/unitcosts/add/"
    resp = client.post(url, form)
    assert resp.status_code == 302, resp.content[:2000]


def test_roads_inspection_is_worth_the_patrol_it_replaces_and_late_repairs_cost_the_penalty():
    run = _stored_run("roads", ROADS_KPIS)
    heads = _headlines(statement_build(date_from=DAY, date_to=DAY), "roads")
    inspection, in_sla = heads["inspection_crew_hours"], heads["repairs_in_sla"]
    # 6 defects reviewed at 2 minutes; 10 km patrolled at 2.5 km per crew-hour; at 80 CNY a crew-hour.
    assert (inspection["value"], inspection["baseline"]) == (pytest.approx(0.2), pytest.approx(4.0))
    assert inspection["unit"] == "crew-h" and inspection["difference"] == pytest.approx(-3.8)
    assert inspection["money"] == pytest.approx(3.8 * UNIT_COST_DEFAULTS["per_crew_hour"])
    assert in_sla["difference"] == -1 and in_sla["money"] == 0.0  # no penalty until the city sets its own
    notes = statement_build(date_from=DAY, date_to=DAY)["agents"]["roads"]["notes"]
    assert any("at 2.5 (the documented default) km per crew-hour" in n for n in notes)
    assert run.pk in statement_build(date_from=DAY, date_to=DAY)["agents"]["roads"]["runs"]


def test_unit_costs_set_in_the_admin_price_the_new_figures(users):
    _stored_run("roads", ROADS_KPIS)
    _stored_run("sanitation", {"trucks_used": (3.0, 5.0), "km": (100.0, 120.0)})
    _stored_run("bus", {"deadhead_km": (40.0, 50.0), "vehicles": (10.0, 10.0)})
    # the city's own costs, and its own patrol rate (a work rate, beside the costs)
    _admin_sets_unit_costs("a", per_crew_hour=100, per_late_repair=500, per_truck_day=300, per_bus_km=2,
                           patrol_km_per_crew_hour=5)
    prices = unit_costs_get()
    assert {"per_crew_hour", "per_late_repair", "per_truck_day", "per_bus_km",
            "patrol_km_per_crew_hour"}.isdisjoint(prices.defaults)
    assert prices.rates["patrol_km_per_crew_hour"] == 5.0 and "review_min_per_defect" in prices.defaults
    statement = statement_build(date_from=DAY, date_to=DAY)
    roads, sanitation, bus = (_headlines(statement, a) for a in ("roads", "sanitation", "bus"))
    assert roads["inspection_crew_hours"]["baseline"] == pytest.approx(2.0)
    assert roads["inspection_crew_hours"]["money"] == pytest.approx((2.0 - 0.2) * 100)
    assert roads["repairs_in_sla"]["money"] == -500.0  # one repair late: the city pays, so it reads as a loss
    assert sanitation["trucks_used"]["money"] == 600.0  # two truck-days fewer than the fixed schedule
    co2 = 1.07 * UNIT_COST_DEFAULTS["per_tonne_co2"] / 1000
    assert bus["deadhead_km"]["money"] == pytest.approx(round(10 * (2 + co2), 2))
    assert statement["unit_costs"]["per_truck_day"] == 300.0 and "per_truck_day" not in statement["unit_costs"]["defaults"]
    assert any("at 5 (set for this city) km per crew-hour" in n and "2 (the documented default) minutes each" in n
               for n in statement["agents"]["roads"]["notes"])
    assert statement["unit_costs"]["patrol_km_per_crew_hour"] == 5.0
    assert "callout_crew_hours" in statement["unit_costs"]["defaults"]


@pytest.mark.usefixtures("world")
def test_flood_call_outs_against_the_former_threshold_rule_on_the_same_readings():
    """The river gauge idles near 3 m, one reading jumps to 6 m and falls back (a spike), then the river rises
    through its 5 m warning level. The former rule calls a crew out for the spike and for the crossing; the
    agent's quality control holds the spike back, so its one alert is one call-out fewer."""
    from agents.flood.models import Alert
    from agents.flood.tests.conftest import T0, evaluate, ingest, series_rows

    idle = [3.0 + 0.01 * (i % 3) for i in range(12)]
    ingest(series_rows("L-1", "level", idle + [6.0] + idle + [3.0 + 0.1 * i for i in range(36)]))
    evaluate()
    period = {"date_from": T0.date() - dt.timedelta(days=1), "date_to": T0.date() + dt.timedelta(days=1)}
    statement = statement_build(**period)
    callouts = _headlines(statement, "flood")["callouts"]
    agent_alerts = Alert.objects.filter(hazard="river_flood").count()
    assert callouts["value"] == agent_alerts == 1 and callouts["baseline"] == 2
    assert callouts["money"] == 1 * 3.0 * UNIT_COST_DEFAULTS["per_crew_hour"]  # 3 crew-hours a call-out, the default
    notes = statement["agents"]["flood"]["notes"]
    assert any(n.startswith("callouts: ") and "each call-out is 3 (the documented default) crew-hours" in n
               for n in notes)
    assert _headlines(statement, "flood")["false_alarms"]["money"] is None  # counted within the call-outs
    assert any(n.startswith("false_alarms: ") for n in notes)


def test_money_is_null_only_with_a_note_and_never_minus_zero():
    _stored_run("roads", ROADS_KPIS)
    _stored_run("sanitation", {"trucks_used": (3.0, 3.0), "bins_visited": (80.0, 60.0)})
    statement = statement_build(date_from=DAY, date_to=DAY)
    for agent, section in statement["agents"].items():
        for h in section["headlines"]:
            if h["money"] is None:
                assert any(n.startswith(f"{h['name']}: ") for n in section["notes"]), (agent, h["name"])
            else:
                assert str(h["money"]) != "-0.0", (agent, h["name"])
    from agents.runtime.base import Headline

    late = Headline("repairs_in_sla", "x", value=3.0, baseline=4.0, better="higher", priced=("late_repair",))
    assert str(headline_money(late, unit_costs_get())) == "0.0"


def test_the_statement_page_is_cached_until_the_unit_costs_change(users):
    """The page builds the statement once per period and state of the data: a second view is served from the
    cache, and the admin's change of a unit cost is seen at once."""
    from city_ops.core.testing import client_for
    from city_ops.results.selectors import statement_cache_key, statement_cached

    _stored_run("sanitation", {"trucks_used": (3.0, 5.0)})
    first = statement_cached(date_from=DAY, date_to=DAY)
    assert cache.get(statement_cache_key(DAY, DAY)) == first  # kept: the next view reads it from the cache
    RunKpi.objects.filter(name="trucks_used").update(value=2.0)  # behind the key's back: the cache still answers
    assert statement_cached(date_from=DAY, date_to=DAY) == first
    _admin_sets_unit_costs("b", per_truck_day=100)
    money = _headlines(statement_cached(date_from=DAY, date_to=DAY), "sanitation")["trucks_used"]["money"]
    assert money == 300.0  # built afresh at the new cost, with the KPI as it is now
    two_days = statement_cached(date_from=DAY, date_to=DAY + dt.timedelta(days=1))
    _stored_run("sanitation", {"trucks_used": (4.0, 5.0)}, day=DAY + dt.timedelta(days=1))  # the next day's run
    money = _headlines(statement_cached(date_from=DAY, date_to=DAY + dt.timedelta(days=1)),
                       "sanitation")["trucks_used"]["money"]
    assert _headlines(two_days, "sanitation")["trucks_used"]["money"] == 300.0 and money == 400.0
    page = client_for("dispatcher", users).get(f"/statement/?from={DAY}&to={DAY}")
    assert page.status_code == 200 and "vs. 5 truck-days" in page.content.decode()  # the baseline with its unit
    assert statement_cached(date_from=DAY - dt.timedelta(days=400), date_to=DAY - dt.timedelta(days=399))
    assert statement_cache_key(DAY - dt.timedelta(days=400), DAY - dt.timedelta(days=399)) is None  # no runs


def test_work_rates_refuse_nonsense_and_a_city_keeps_the_rate_it_had_set(users, settings):
    """A patrol of 0 km an hour is refused by the admin with the reason, and nothing is saved; the migration
    that moved the rates from Django settings into the unit costs copies a rate the city had set there."""
    import importlib

    from django.apps import apps

    from city_ops.core.roles import Role

    admin = user_create(username="rates-admin", password="pw-rates-admin-1", roles=[Role.ADMIN])
    client = Client()
    client.force_login(admin)
    form = {"currency": "CNY", **{k: "" for k in {**UNIT_COST_DEFAULTS, **WORK_RATE_DEFAULTS}},
            "patrol_km_per_crew_hour": "0"}
    resp = client.post("/admin/results/unitcosts/add/", form)
    assert resp.status_code == 200 and "greater than or equal to 0.01" in resp.content.decode()
    assert not UnitCosts.objects.exists()

    migration = importlib.import_module("city_ops.results.migrations.0003_work_rates")
    settings.FLOOD_CALLOUT_CREW_HOURS = 4.5
    migration.rates_from_settings(apps, None)
    prices = unit_costs_get()
    assert prices.rates["callout_crew_hours"] == 4.5 and "callout_crew_hours" not in prices.defaults
    assert prices.rates["patrol_km_per_crew_hour"] == WORK_RATE_DEFAULTS["patrol_km_per_crew_hour"]
