"""A statement as `city_ops.results.selectors.statement_build` returns it, with the awkward cases the pages and
the PDF must show: baselines that could not be computed (null, with the reason in the notes), a day without
a value, a figure no run reported (null value), a negative money figure, and Chinese text in a note (a crew's remark, a street name)."""
from __future__ import annotations

import datetime as dt

from agents.roads.selectors import INSPECTION_RATES
from agents.runtime.statement import NO_RUN, Note, note_parts
from city_ops.results.selectors import RATE_DEFAULT, RATE_SET

NO_DEFECTS = Note(NO_RUN, name="defects_found")
RATES = Note(INSPECTION_RATES, patrol=Note(RATE_DEFAULT, value="2.5"), review=Note(RATE_SET, value="3"))


def _headline(name, label, value, baseline, unit, money):
    difference = None if baseline is None else round(value - baseline, 3)
    return {"name": name, "label": label, "value": value, "baseline": baseline, "difference": difference,
            "unit": unit, "money": money}


def _daily(date_from: dt.date, days: int, series: dict[str, tuple[float, float | None]]) -> list[dict]:
    """`days` days of values that drift a little around each headline's (value, baseline) per day; the third
    day has no value for the first headline (the agent did not run that day)."""
    out = []
    for i in range(days):
        values, baselines = {}, {}
        for j, (name, (value, baseline)) in enumerate(series.items()):
            wobble = 1 + 0.04 * ((i * 7 + j * 3) % 5 - 2)
            values[name] = None if (i == 2 and j == 0) else round(value * wobble, 2)
            baselines[name] = None if baseline is None else round(baseline, 2)
        out.append({"date": (date_from + dt.timedelta(days=i)).isoformat(), "values": values,
                    "baselines": baselines})
    return out


def statement_sample(*, date_from: dt.date = dt.date(2026, 11, 1), days: int = 30,
                     synthetic: bool = True, version: int | None = None) -> dict:
    date_to = date_from + dt.timedelta(days=days - 1)
    agents = {
        "sanitation": {
            "headlines": [
                _headline("distance_km", "Distance driven", 2436.5, 2890.0, "km", 3854.2),
                _headline("truck_hours", "Truck hours", 402.0, 455.5, "h", 6687.5),
                _headline("km_per_bin", "Distance per bin emptied", 0.98, 1.42, "km", None),
                _headline("overflows", "Overflows", 3, 11, "", 1200.0),
            ],
            "runs": [101, 102, 103, 104],
            "notes": ["The fixed schedule is replayed on the days' fills: measured at 212 bins, "
                      "estimated by the fill model at 96.",
                      "Bin 88 on 中山路 was reported full by a crew (满溢) on 2026-11-04."],
            "daily": _daily(date_from, days, {"distance_km": (81.2, 96.3), "truck_hours": (13.4, 15.2),
                                              "overflows": (0.1, 0.4)}),
            "learning": [{"week_from": "2026-11-01", "week_to": "2026-11-07", "forecast_mae": 0.0712, "forecasts": 840},
                         {"week_from": "2026-11-29", "week_to": "2026-11-30", "forecast_mae": None, "forecasts": 0}],
        },
        "bus": {
            "headlines": [
                _headline("vehicles", "Vehicles in service", 41, 44, "buses", 15600.0),
                _headline("deadhead_km", "Deadhead distance", 612.0, 540.0, "km", -540.0),
                _headline("ewt_min", "Excess wait time", 1.7, None, "min", None),
            ],
            "runs": [201, 202],
            "notes": ["Excess wait time has no baseline this period: no vehicle positions were recorded "
                      "without holding advice."],
            "daily": _daily(date_from, days, {"vehicles": (41, 44), "deadhead_km": (20.4, 18.0),
                                              "ewt_min": (1.7, None)}),
        },
        "flood": {
            "headlines": [
                _headline("alerts", "Alerts raised", 4, None, "", None),
                _headline("lead_time_min", "Warning lead time", 47.5, None, "min", None),
                _headline("false_alarms", "False alarms", 1, None, "", None),
            ],
            "runs": [],
            "notes": ["No baseline for flood warnings: the city issued none before the agent, so there is "
                      "nothing to compare with."],
            "daily": [],
        },
        "roads": {
            "headlines": [
                _headline("km_inspected", "Road inspected", 318.4, 240.0, "km", 0.0),
                _headline("repaired_in_sla", "Repaired within SLA", 0.86, 0.9, "share", -950.0),
                _headline("mean_repair_h", "Mean time to repair", 52.0, 72.0, "h", 2400.0),
                _headline("defects_found", "Defects found", None, None, "defects", None),
            ],
            "runs": [301],
            "notes": [str(NO_DEFECTS), str(RATES)],
            # the notes as made: a page says them in its reader's language (a nested note too)
            "notes_i18n": [note_parts(NO_DEFECTS), note_parts(RATES)],
            "daily": _daily(date_from, days, {"km_inspected": (10.6, 8.0), "mean_repair_h": (52.0, 72.0)}),
        },
    }
    total = sum(h["money"] for a in agents.values() for h in a["headlines"] if h["money"] is not None)
    return {"from": date_from.isoformat(), "to": date_to.isoformat(), "currency": "CNY", "synthetic": synthetic,
            "version": version, "sha256": ("3f7a" * 16) if version else None,
            "unit_costs": {"per_truck_km": 4.0, "per_truck_hour": 125.0, "per_bus_day": 1200.0,
                           "per_crew_hour": 80.0, "per_tonne_co2": 60.0,
                           "patrol_km_per_crew_hour": 2.5, "review_min_per_defect": 3.0,
                           "defaults": ["per_truck_km", "per_bus_day", "per_crew_hour", "per_tonne_co2",
                                        "patrol_km_per_crew_hour"],
                           "co2_kg_per_truck_km": 0.9, "co2_kg_per_bus_km": 1.05},
            "agents": agents,
            "total_money": round(total, 2)}


def sanitation_days_seed(*, days: list[dt.date], km: float = 40.0, km_baseline: float = 50.0) -> list[int]:
    """A succeeded scheduled sanitation run per day with the KPIs the statement sums (distance and
    truck-hours, each against its replayed baseline), as the agent stores them; the runs' ids."""
    from agents.runtime.models import AgentRun, RunKpi
    from agents.runtime.services import agent_run_create

    ids = []
    for day in days:
        run, _ = agent_run_create(agent="sanitation", run_date=day, trigger=AgentRun.Trigger.SCHEDULE,
                                  enqueue=False)
        AgentRun.objects.filter(pk=run.pk).update(status=AgentRun.Status.SUCCEEDED)
        RunKpi.objects.create(run=run, agent="sanitation", run_date=day, name="km", label="Distance driven",
                              unit="km", value=km, baseline=km_baseline)
        RunKpi.objects.create(run=run, agent="sanitation", run_date=day, name="hours", label="Truck-hours",
                              unit="h", value=6.0, baseline=7.5)
        ids.append(run.pk)
    return ids
