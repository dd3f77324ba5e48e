"""The results statement: it reconciles with the stored run KPIs of exactly the runs it lists (a re-plan is
never added to the plan it replaces), a missing baseline is null with its reason, issuing freezes versions
with their SHA-256, and the command and the API give the same JSON (the API to dispatchers and admins)."""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command

from agents.flood.tests.conftest import world  # noqa: F401 (the flood agent's test zones and sensors)
from agents.runtime.base import Headline
from agents.runtime.models import RunKpi
from city_ops.core.models import AuditEntry
from city_ops.core.testing import client_for
from city_ops.results.models import UNIT_COST_DEFAULTS, WORK_RATE_DEFAULTS, IssuedStatement, UnitCosts
from city_ops.results.period import previous_month
from city_ops.results.selectors import headline_money, statement_build, statement_digest, unit_costs_get
from city_ops.results.services import statement_issue

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 3, 4)
KEYS = {"from", "to", "currency", "synthetic", "version", "sha256", "unit_costs", "agents", "total_money"}
HEADLINE_KEYS = {"name", "label", "value", "baseline", "difference", "unit", "money"}


def _sanitation_run(day: dt.date, trigger: str) -> int:
    from agents.runtime.services import agent_run_create, agent_run_execute

    run, _ = agent_run_create(agent="sanitation", run_date=day, trigger=trigger, enqueue=False,
                              params={"time_limit": 0.5, "seed": 1}, reason=f"test {trigger}")
    assert agent_run_execute(run_id=run.pk).status == "succeeded"
    return run.pk


def _kpis(run_id: int) -> dict[str, RunKpi]:
    return {k.name: k for k in RunKpi.objects.filter(run_id=run_id)}


def _headlines(statement: dict, agent: str) -> dict[str, dict]:
    return {h["name"]: h for h in statement["agents"][agent]["headlines"]}


def test_statement_reconciles_with_the_runs_it_lists_and_never_adds_a_replan(demo_city, users):
    """The nightly plan and a dispatcher's re-plan of the same day: the statement counts one of them (the
    approved plan's run, else the scheduled one), and its figures are exactly that run's stored KPIs."""
    from agents.sanitation.models import CollectionPlan
    from agents.sanitation.services import plan_approve
    from agents.sanitation.tests.conftest import plan_day

    day = plan_day()
    nightly, replan = _sanitation_run(day, "schedule"), _sanitation_run(day, "manual")

    def check(expected_run: int) -> dict:
        statement = statement_build(date_from=day, date_to=day)
        section = statement["agents"]["sanitation"]
        assert section["runs"] == [expected_run]
        stored, heads = _kpis(expected_run), _headlines(statement, "sanitation")
        for name in ("km", "hours", "trucks_used", "bins_visited", "unserved_mandatory"):
            assert heads[name]["value"] == pytest.approx(stored[name].value), name
            assert heads[name]["baseline"] == pytest.approx(stored[name].baseline), name
            assert heads[name]["difference"] == pytest.approx(stored[name].value - stored[name].baseline)
        assert heads["km_per_bin"]["value"] == pytest.approx(stored["km"].value / stored["bins_visited"].value, rel=1e-5)
        assert section["daily"] == [{"date": day.isoformat(),
                                     "values": {n: pytest.approx(stored[n].value) for n in section["daily"][0]["values"]},
                                     "baselines": section["daily"][0]["baselines"]}]
        return statement

    statement = check(nightly)  # nothing approved: the scheduled run, not the later re-plan, not both
    prices = unit_costs_get()
    km = _headlines(statement, "sanitation")["km"]
    per_km = UNIT_COST_DEFAULTS["per_truck_km"] + 1.34 * UNIT_COST_DEFAULTS["per_tonne_co2"] / 1000
    assert prices.defaults == (*UNIT_COST_DEFAULTS, *WORK_RATE_DEFAULTS) and statement["currency"] == "CNY"
    assert km["money"] == pytest.approx(round((km["baseline"] - km["value"]) * per_km, 2))

    plan_approve(plan=CollectionPlan.objects.get(run_id=replan), user=users.dispatcher)
    check(replan)  # the approved plan's run
    # The same rule behind /api/agents/results/: one row per day and KPI, from the approved plan's run.
    rows = client_for("dispatcher", users).get("/api/agents/results/?days=366&agent=sanitation").json()
    km_rows = [r for r in rows if r["name"] == "km" and r["run_date"] == day.isoformat()]
    assert km_rows == [{"agent": "sanitation", "run_date": day.isoformat(), "name": "km", "unit": "km",
                        "value": pytest.approx(_kpis(replan)["km"].value),
                        "baseline": pytest.approx(_kpis(replan)["km"].baseline), "run_ids": [replan]}]


def test_a_baseline_that_cannot_be_computed_is_null_with_its_reason(demo_city):
    """The sanitation runs store no fixed-schedule overflows and the roads runs no patrol finds: those
    baselines are null, their difference and money too, and the notes say why."""
    from agents.runtime.services import agent_run_create, agent_run_execute

    day = dt.date.today()
    run, _ = agent_run_create(agent="roads", run_date=day, trigger="schedule", enqueue=False)
    assert agent_run_execute(run_id=run.pk).status == "succeeded"
    statement = statement_build(date_from=day, date_to=day)
    roads = statement["agents"]["roads"]
    found = _headlines(statement, "roads")["defects_found"]
    assert found["value"] == _kpis(run.pk)["defects_found"].value and roads["runs"] == [run.pk]
    assert found["baseline"] is found["difference"] is found["money"] is None
    assert any(n.startswith("defects_found: ") and "no baseline" in n for n in roads["notes"])
    overflows = _headlines(statement, "sanitation")["overflows"]  # no sanitation run at all that day
    assert overflows["value"] is overflows["baseline"] is None
    assert _headlines(statement, "roads")["km_inspected"]["value"] == _kpis(run.pk)["km_inspected"].value
    assert set(statement["agents"]) == {"sanitation", "bus", "flood", "roads"}  # the demo agent has no part


def test_bus_days_and_empty_running_against_the_citys_own_blocking(demo_city):
    """The nightly bus plan against the same trips blocked the city's way (the feed's blocks, else first-fit),
    priced per bus-day and the empty running per bus-km and at its CO2."""
    from agents.bus.models import VehiclePlan
    from agents.runtime.services import agent_run_create, agent_run_execute

    day = dt.date(2026, 12, 3)
    run, _ = agent_run_create(agent="bus", run_date=day, trigger="schedule", enqueue=False)
    assert agent_run_execute(run_id=run.pk).status == "succeeded"
    plan = VehiclePlan.objects.get(run=run)
    statement = statement_build(date_from=day, date_to=day)
    buses, empty = _headlines(statement, "bus")["vehicles"], _headlines(statement, "bus")["deadhead_km"]
    assert statement["agents"]["bus"]["runs"] == [run.pk]
    assert (buses["value"], buses["baseline"]) == (plan.vehicles, plan.baseline_vehicles)
    assert buses["money"] == pytest.approx((plan.baseline_vehicles - plan.vehicles) * UNIT_COST_DEFAULTS["per_bus_day"])
    assert empty["baseline"] == pytest.approx(plan.baseline_deadhead_km)
    per_km = UNIT_COST_DEFAULTS["per_bus_km"] + 1.07 * UNIT_COST_DEFAULTS["per_tonne_co2"] / 1000
    assert empty["money"] == pytest.approx(round((plan.baseline_deadhead_km - plan.deadhead_km) * per_km, 2))
    # no positions that day: no replay, and the notes say so
    assert _headlines(statement, "bus")["replay_ewt_min"]["value"] is None
    assert any(n.startswith("replay_ewt_min: no bus positions") for n in statement["agents"]["bus"]["notes"])


def test_money_is_positive_when_the_city_is_better_off_at_its_own_costs():
    UnitCosts.objects.create(pk=1, currency="EUR", per_truck_km=2.0, per_bus_day=500.0)
    prices = unit_costs_get()
    assert prices.currency == "EUR" and "per_truck_km" not in prices.defaults and "per_truck_hour" in prices.defaults
    fewer_km = Headline("km", "km", value=80.0, baseline=100.0, priced=("truck_km",))
    more_buses = Headline("vehicles", "buses", value=12.0, baseline=10.0, priced=("bus_day",))
    more_bins = Headline("bins", "bins", value=90.0, baseline=60.0, better="higher", priced=("truck_km",))
    assert headline_money(fewer_km, prices) == 40.0
    assert headline_money(more_buses, prices) == -1000.0
    assert headline_money(more_bins, prices) == 60.0
    assert headline_money(Headline("x", "x", value=1.0, baseline=None, priced=("truck_km",)), prices) is None


def test_issuing_freezes_versions_with_their_sha256(users):
    first = statement_issue(date_from=DAY, date_to=DAY + dt.timedelta(days=30), user=users.dispatcher)
    UnitCosts.objects.create(pk=1, currency="USD")
    second = statement_issue(date_from=DAY, date_to=DAY + dt.timedelta(days=30), user=users.dispatcher)
    assert (first.version, second.version) == (1, 2)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.content["currency"] == "CNY" and second.content["currency"] == "USD"  # the old one kept as issued
    for issued in (first, second):
        assert set(issued.content) == KEYS and issued.content["version"] == issued.version
        assert issued.content["sha256"] == issued.sha256 == statement_digest(issued.content)
    assert first.sha256 != second.sha256
    assert AuditEntry.objects.filter(action="results.statement.issued").count() == 2


def _command(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("results_statement", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_json_is_the_statement_alone_and_issue_adds_a_version():
    out, _ = _command("--from", "2026-03-01", "--to", "2026-03-31", "--json")
    doc = json.loads(out)
    assert set(doc) == KEYS and doc["from"] == "2026-03-01" and doc["to"] == "2026-03-31"
    assert doc["version"] is doc["sha256"] is None and doc["synthetic"] is False
    for section in doc["agents"].values():
        assert set(section) == {"headlines", "runs", "notes", "notes_i18n", "daily", "learning"}
        # each note as made beside its English text: what the pages say in their reader's language
        assert [n["template"] % n["args"] if n["args"] else n["template"] for n in section["notes_i18n"]] == \
            section["notes"]
        assert section["learning"] == []  # no bins, no fill model: nothing learned to show
        assert all(set(h) == HEADLINE_KEYS for h in section["headlines"])
    out, err = _command("--from", "2026-03-01", "--to", "2026-03-31", "--issue", "--json")
    issued = json.loads(out)
    assert issued["version"] == 1 and "issued version 1" in err
    assert IssuedStatement.objects.get(version=1).sha256 == issued["sha256"]
    text, _ = _command("--from", "2026-03-01", "--to", "2026-03-31")
    assert text.startswith("Results statement 2026-03-01 .. 2026-03-31 (draft)")


def test_command_refuses_a_bad_period():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="before"):
        _command("--from", "2026-03-31", "--to", "2026-03-01")
    with pytest.raises(CommandError, match="both"):
        _command("--from", "2026-03-01")
    assert previous_month(dt.date(2026, 1, 15)) == (dt.date(2025, 12, 1), dt.date(2025, 12, 31))


def test_api_statement_json_csv_versions_and_bad_input(users):
    client = client_for("dispatcher", users)
    doc = client.get("/api/results/statement/?from=2026-03-01&to=2026-03-31").json()
    assert set(doc) == KEYS and doc["from"] == "2026-03-01"
    assert client.get("/api/results/statement/").json()["from"] == previous_month()[0].isoformat()
    resp = client.get("/api/results/statement/?from=2026-03-01&to=2026-03-31&format=csv")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("text/csv")
    lines = resp.content.decode().splitlines()
    headlines = sum(len(s["headlines"]) for s in doc["agents"].values())
    assert lines[0].startswith("from,to,version,sha256,agent,name,") and len(lines) == 1 + headlines
    issued = statement_issue(date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 31), user=users.dispatcher)
    got = client.get("/api/results/statement/?from=2026-03-01&to=2026-03-31&version=1").json()
    assert got["sha256"] == issued.sha256 and got["version"] == 1
    assert client.get("/api/results/statement/?from=2026-03-01&to=2026-03-31&version=2").status_code == 404
    for bad in ("from=2026-03-31&to=2026-03-01", "from=2026-03-01", "from=March&to=2026-03-31"):
        resp = client.get(f"/api/results/statement/?{bad}")
        assert resp.status_code == 400, bad
    assert client_for("crew", users).get("/api/results/statement/").status_code == 403
    assert client_for("admin", users).get("/api/results/statement/?format=csv").status_code == 200


def test_sanitation_overflows_are_replayed_both_ways_on_the_demo_history(demo_city):
    """The demo's two weeks of fills and crews' collections: the overflows under what the crews did and under
    the fixed schedule, replayed on the same fills from the same levels, with how the fills were known."""
    from city_ops.core.timeutil import city_today

    today = city_today()
    _sanitation_run(today, "schedule")  # the fill models learn the demo's history (every run refits them)
    statement = statement_build(date_from=today - dt.timedelta(days=14), date_to=today - dt.timedelta(days=1))
    overflow = _headlines(statement, "sanitation")["overflow_bin_days"]
    assert overflow["value"] is not None and overflow["baseline"] is not None
    assert overflow["difference"] == overflow["value"] - overflow["baseline"] and overflow["money"] is None
    note = next(n for n in statement["agents"]["sanitation"]["notes"] if n.startswith("overflow_bin_days:"))
    assert "measured for" in note and "collections crews recorded" in note
    print("overflow bin-days, crews' collections vs fixed schedule:", overflow["value"], overflow["baseline"], note)
    # what the fill model learned: its day-ahead error in each week of the period, as it saw more days
    learning = statement["agents"]["sanitation"]["learning"]
    assert [(w["week_from"], w["week_to"]) for w in learning] == [
        ((today - dt.timedelta(days=14)).isoformat(), (today - dt.timedelta(days=8)).isoformat()),
        ((today - dt.timedelta(days=7)).isoformat(), (today - dt.timedelta(days=1)).isoformat())]
    assert all(w["forecasts"] > 0 and 0 < w["forecast_mae"] < 0.5 for w in learning), learning
    print("fill-forecast error per week:", learning)


@pytest.mark.usefixtures("world")
def test_flood_alerts_and_lead_time_add_up_over_the_evaluations():
    """The flood agent's evaluations each cover their own readings, so the period sums them: an evaluation run
    that raised the river alert about 2 h before the gauge crossed its warning level, and one with nothing new."""
    from agents.flood.tests.conftest import ingest, series_rows
    from agents.runtime.services import agent_run_create, agent_run_execute

    ingest(series_rows("L-1", "level", [3.0 + 0.1 * i for i in range(36)]))
    runs = []
    for _ in range(2):
        run, _ = agent_run_create(agent="flood", trigger="monitor", enqueue=False)
        assert agent_run_execute(run_id=run.pk).status == "succeeded"
        runs.append(run)
    day = runs[0].run_date
    statement = statement_build(date_from=day, date_to=day)
    heads, section = _headlines(statement, "flood"), statement["agents"]["flood"]
    raised = _kpis(runs[0].pk)["alerts_raised"].value
    assert raised >= 1 and heads["alerts_raised"]["value"] == raised and section["runs"] == [runs[0].pk]
    assert heads["lead_time_min"]["value"] == pytest.approx(120, abs=15) and heads["lead_time_min"]["baseline"] == 0
    assert heads["lead_time_min"]["difference"] == heads["lead_time_min"]["value"]
    assert heads["false_alarms"]["value"] == 0 and heads["replans_caused"]["value"] == 0
    assert heads["alerts_raised"]["baseline"] is None and any(n.startswith("alerts_raised: ") for n in section["notes"])


def test_bus_excess_wait_replayed_with_and_without_the_holding_advice(demo_city):
    """A day whose buses reported their positions (the demo history's morning peak) and a planned day with
    none: the evening review replays the first with the holding advice applied and without, and the statement
    shows exactly the review's stored figures, the grades of both, and why the second day counts neither way."""
    from agents.bus.models import VehiclePosition
    from agents.runtime.models import AgentRun
    from agents.runtime.services import agent_run_create, agent_run_execute
    from fixtures.history.bus import POSITIONS_SOURCE, BusHistory

    day, quiet = dt.date(2026, 12, 3), dt.date(2026, 12, 4)
    for d in (day, quiet):
        run, _ = agent_run_create(agent="bus", run_date=d, trigger="schedule", enqueue=False)
        assert agent_run_execute(run_id=run.pk).status == "succeeded"
    line = BusHistory(dispatcher=None).day(day, last=True)
    assert VehiclePosition.objects.filter(source=POSITIONS_SOURCE).count() > 20, line
    review = AgentRun.objects.get(agent="bus", run_date=day, trigger="monitor")
    stored = _kpis(review.pk)
    replayed = [r for r in review.details["replay"] if r["with_holding"]]
    assert replayed and all(r["buses"] >= 2 and r["stops"] > 0 and r["headway_s"] > 0 for r in replayed)
    assert all(r["skipped"] for r in review.details["replay"] if not r["with_holding"])  # each says why
    # holding evens the headways out: less excess wait and a lower cv than the same replay without it
    assert stored["replay_ewt_min"].value < stored["replay_ewt_min"].baseline
    assert stored["replay_cv"].value < stored["replay_cv"].baseline

    statement = statement_build(date_from=day, date_to=quiet)
    bus, heads = statement["agents"]["bus"], _headlines(statement, "bus")
    assert review.pk in bus["runs"]
    for name in ("replay_ewt_min", "replay_cv"):
        assert heads[name]["value"] == pytest.approx(stored[name].value), name
        assert heads[name]["baseline"] == pytest.approx(stored[name].baseline), name
        assert heads[name]["money"] is None
        assert any(n.startswith(f"{name}: not priced: ") for n in bus["notes"]), bus["notes"]
    assert heads["vehicles"]["baseline"] is not None  # both days' plans count
    grades = next(n for n in bus["notes"] if n.startswith("replay_cv: headway regularity graded"))
    assert f"(cv {stored['replay_cv'].value:g})" in grades and f"(cv {stored['replay_cv'].baseline:g})" in grades
    missing = next(n for n in bus["notes"] if n.startswith("replay_ewt_min: no bus positions"))
    assert f"1 of the period's planned days ({quiet.isoformat()})" in missing
    print(review.summary)
