"""The run's KPIs compare the plan with the fixed schedule like with like where their totals cannot: they
empty different bins, so distance is also given per bin emptied (the panel shows it beside them)."""
from __future__ import annotations

import datetime as dt

from agents.sanitation.agent import collection_result
from agents.sanitation.models import CollectionPlan
from agents.sanitation.services.agent_run import CollectionRun
from agents.sanitation.services.fill import FillUpdate


def _result(**kpis):
    plan = CollectionPlan(date=dt.date(2026, 12, 1), version=1, feasible=True, kpis=kpis)
    update = FillUpdate(states={}, mae=None, mae_n=0, fallback=0, bins=0)
    return {k.name: k for k in collection_result(CollectionRun(update=update, overflows=0, plans=[plan])).kpis}


def test_more_bins_for_more_km_reads_as_less_distance_per_bin():
    # The demo's day: 88 bins in 25.8 km against the schedule's 62 in 21.9 km: +18 % km, but less per bin.
    kpis = _result(km=25.8, bins_visited=88, baseline_km=21.9, baseline_bins=62)
    assert kpis["km"].value > kpis["km"].baseline
    per_bin = kpis["km_per_bin"]
    assert per_bin.unit == "km/bin" and per_bin.value == round(25.8 / 88, 4)
    assert per_bin.baseline == round(21.9 / 62, 4) and per_bin.value < per_bin.baseline


def test_no_per_bin_figure_without_bins_and_no_baseline_without_the_schedules():
    assert "km_per_bin" not in _result(km=0.0, bins_visited=0, baseline_km=10.0, baseline_bins=30)
    assert _result(km=12.0, bins_visited=40)["km_per_bin"].baseline is None


def test_the_panel_shows_distance_per_bin_beside_the_totals(db, users):
    from city_ops.core.testing import client_for

    day = dt.date(2026, 12, 1)
    CollectionPlan.objects.create(date=day, version=1, feasible=True,
                                  kpis={"km": 25.8, "bins_visited": 88, "baseline_km": 21.9, "baseline_bins": 62})
    page = client_for("dispatcher", users).get(f"/sanitation/?date={day}").content.decode()
    row = page[page.index('id="km-per-bin"'):].split("</tr>")[0]
    assert "0.29 km" in row and "0.35 km" in row
    CollectionPlan.objects.create(date=day, version=2, feasible=True, kpis={"km": 25.8, "bins_visited": 88})
    row = client_for("dispatcher", users).get(f"/sanitation/?date={day}").content.decode()
    row = row[row.index('id="km-per-bin"'):].split("</tr>")[0]
    assert "0.29 km" in row and "–" in row  # a plan without the schedule's figures: no per-bin baseline
