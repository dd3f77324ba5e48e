"""The evening review's KPIs: the day's headway checks and the replay of its positions with and without the
holding advice, each reported where there is something to report, never invented."""
from __future__ import annotations

import datetime as dt

from agents.bus.agent import headways_result
from agents.bus.domain.simulation import SimulationConfig, holding_compare
from agents.bus.services.agent_run import HeadwayReview
from agents.bus.services.replay import DayReplay, RouteReplay

DAY = dt.date(2026, 12, 3)
CHECKS = {"n": 4, "good": 3, "cv": 0.31, "ewt": 42.0, "decided": 1, "warnings": {"bunching": 2, "gap": 1},
          "by_route": [{"route_id": "R1", "direction_id": 0, "cv": 0.31, "ewt": 42.0, "n": 4}]}
NO_CHECKS = {"n": 0, "good": 0, "cv": None, "ewt": None, "decided": 0, "warnings": {"bunching": 0, "gap": 0},
             "by_route": []}


def _replayed(route_id: str, seed: int) -> RouteReplay:
    compared = holding_compare(config=SimulationConfig(buses=4, stops=24, headway_s=600.0), seed=seed)
    return RouteReplay(feed_id=1, route_id=route_id, buses=4, positions=50, stops=24, headway_s=600.0, seed=seed,
                       duration_s=10800.0, without=compared.without, with_holding=compared.with_holding)


def test_checks_and_replay_side_by_side_the_replay_weighted_by_headways():
    routes = [_replayed("R1", 1), _replayed("R2", 2),
              RouteReplay(feed_id=1, route_id="R3", buses=1, positions=3, skipped="1 bus on the route: headways need two")]
    result = headways_result(HeadwayReview(day=DAY, day_stats=CHECKS, replay=DayReplay(day=DAY, routes=routes), pruned=0))
    kpis = {k.name: k for k in result.kpis}
    assert {"headway_cv", "ewt_s", "grade_c_or_better", "replay_ewt_min", "replay_cv"} <= set(kpis)
    runs = [(r.with_holding, r.without) for r in routes[:2]]
    weighted = sum(w.ewt_s * w.headways for w, _ in runs) / sum(w.headways for w, _ in runs)
    assert kpis["replay_ewt_min"].value == round(weighted / 60.0, 3)
    assert kpis["replay_ewt_min"].baseline > kpis["replay_ewt_min"].value  # holding evens the service out
    assert result.summary.startswith(f"{DAY}: mean headway cv 0.31") and "replay of 2 route(s)' positions" in result.summary
    assert [r["skipped"] for r in result.details["replay"]] == ["", "", "1 bus on the route: headways need two"]


def test_a_day_without_positions_reports_no_figure_either_way():
    empty = headways_result(HeadwayReview(day=DAY, day_stats=NO_CHECKS, replay=DayReplay(day=DAY, routes=[]), pruned=0))
    assert empty.kpis == [] and "no headways measured" in empty.summary
    skipped = RouteReplay(feed_id=1, route_id="R3", buses=1, positions=3, skipped="1 bus on the route: headways need two")
    only_checks = headways_result(HeadwayReview(day=DAY, day_stats=CHECKS, replay=DayReplay(day=DAY, routes=[skipped]),
                                                pruned=0))
    assert not any(k.name.startswith("replay_") for k in only_checks.kpis) and "replay" not in only_checks.summary
