"""Minimum-fleet blocking, plan checks, edits and exports (agents.bus.domain.blocking)."""
from __future__ import annotations

import csv
import datetime as dt
import io

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from agents.bus.domain import blocking
from agents.bus.domain.blocking import (
    PlanError,
    StopPoint,
    StraightLineDeadhead,
    block_trip_move,
    blocks_baseline,
    blocks_csv,
    blocks_first_fit,
    blocks_gtfs_tables,
    blocks_optimise,
    blocks_reoptimise,
    blocks_trips_txt,
    fleet_lower_bound,
    plan_check,
)
from agents.bus.domain.gtfs import feed_read, service_trips
from agents.bus.domain.synthetic import feed_synthetic_write, feed_tiny_tables, feed_zip_write

MIN = 60.0


def make_trips(rows):
    """rows: (key, start minute, end minute, first stop, last stop)."""
    return pd.DataFrame(
        [
            {"trip_key": k, "trip_id": k, "route_id": "R", "start_s": s * MIN, "end_s": e * MIN,
             "first_stop_id": a, "last_stop_id": b}
            for k, s, e, a, b in rows
        ]
    )


def table_deadhead(table):
    """Deadhead from a {(from, to): (metres, minutes)} table; same stop is free, absent pairs unreachable."""

    def deadhead(a: StopPoint, b: StopPoint):
        if a.stop_id == b.stop_id:
            return 0.0, 0.0
        hit = table.get((a.stop_id, b.stop_id))
        return None if hit is None else (hit[0], hit[1] * MIN)

    return deadhead


def test_first_fit_uses_three_buses_where_two_suffice():
    # T3 (at P) can follow T1 or T2, T4 (at S) only T1. First-fit gives T3 to T1's bus and strands T4.
    trips = make_trips([("T1", 480, 540, "X", "P"), ("T2", 480, 540, "Y", "Q"),
                        ("T3", 550, 600, "P", "Z"), ("T4", 551, 600, "S", "Z")])
    dead = table_deadhead({("Q", "P"): (3000, 5), ("P", "S"): (3000, 5), ("Q", "S"): (20000, 30)})
    assert len(blocks_first_fit(trips=trips, deadhead=dead)) == 3
    plan = blocks_optimise(trips=trips, deadhead=dead)
    assert plan.vehicles == 2 == plan.lower_bound
    assert sorted(plan.blocks) == [["T1", "T4"], ["T2", "T3"]]
    assert plan.deadhead_m == 6000
    assert plan_check(trips=trips, blocks=plan.blocks, deadhead=dead) == []


def test_baseline_is_the_feeds_own_blocks_else_first_fit():
    """The statement's counterfactual: the blocks the feed itself gives (block_id on every trip), and where
    any trip lacks one, the first-fit rule a dispatcher would use."""
    trips = make_trips([("T1", 480, 540, "X", "P"), ("T2", 480, 540, "Y", "Q"),
                        ("T3", 550, 600, "P", "Z"), ("T4", 551, 600, "S", "Z")])
    dead = table_deadhead({("Q", "P"): (3000, 5), ("P", "S"): (3000, 5), ("Q", "S"): (20000, 30)})
    blocks, rule = blocks_baseline(trips=trips.assign(block_id=["b1", "b2", "b2", "b3"]), deadhead=dead)
    assert rule == "feed blocks" and blocks == [["T1"], ["T2", "T3"], ["T4"]]
    blocks, rule = blocks_baseline(trips=trips.assign(block_id=["b1", "b2", "", "b3"]), deadhead=dead)
    assert rule == "first-fit" and blocks == blocks_first_fit(trips=trips, deadhead=dead) and len(blocks) == 3


def test_fewer_buses_beat_less_deadhead():
    trips = make_trips([("T1", 480, 540, "A", "P"), ("T2", 600, 660, "F", "A")])
    dead = table_deadhead({("P", "F"): (20000, 40)})
    plan = blocks_optimise(trips=trips, deadhead=dead)
    assert plan.blocks == [["T1", "T2"]]
    assert plan.deadhead_m == 20000 and plan.deadhead_s == 40 * MIN
    # 40 min deadhead + 25 min layover no longer fits into the 60 min wait: two buses, no deadhead.
    later = blocks_optimise(trips=trips, deadhead=dead, layover_s=25 * MIN)
    assert later.vehicles == 2 and later.deadhead_m == 0


def test_least_deadhead_among_minimum_fleet_plans():
    # Both pairings need 2 buses; crossing them costs 2 x 2 km.
    trips = make_trips([("a", 480, 540, "X", "P"), ("b", 480, 540, "X", "Q"),
                        ("c", 570, 600, "Q", "X"), ("d", 570, 600, "P", "X")])
    dead = table_deadhead({("P", "Q"): (2000, 5), ("Q", "P"): (2000, 5)})
    plan = blocks_optimise(trips=trips, deadhead=dead)
    assert plan.vehicles == 2
    assert sorted(plan.blocks) == [["a", "d"], ["b", "c"]]
    assert plan.deadhead_m == 0


def test_layover_is_respected_back_to_back():
    trips = make_trips([("T1", 480, 540, "A", "A"), ("T2", 544, 600, "A", "A"), ("T3", 605, 660, "A", "A")])
    plan = blocks_optimise(trips=trips, layover_s=5 * MIN)
    # T2 starts 4 min after T1 ends: too soon. T3 starts 5 min after T2: just in time, and also after T1.
    assert plan.vehicles == 2 == plan.lower_bound
    assert plan_check(trips=trips, blocks=plan.blocks, layover_s=5 * MIN) == []
    assert blocks_optimise(trips=trips, layover_s=0).vehicles == 1


def test_lower_bound_counts_layover():
    trips = make_trips([("a", 480, 540, "A", "A"), ("b", 540, 600, "A", "A"), ("c", 500, 560, "A", "A")])
    assert fleet_lower_bound(trips=trips, layover_s=0) == 2  # a ends as b starts: one bus can do both
    assert fleet_lower_bound(trips=trips, layover_s=5 * MIN) == 3
    assert fleet_lower_bound(trips=trips.iloc[0:0], layover_s=0) == 0


def test_wait_window_is_a_setting_that_can_cost_buses():
    trips = make_trips([("early", 480, 540, "A", "A"), ("late", 780, 840, "A", "A")])  # 4 h apart
    assert blocks_optimise(trips=trips).vehicles == 2  # the default 2 h window drops the link
    assert blocks_optimise(trips=trips, max_wait_s=None).vehicles == 1


def test_depot_legs_are_counted():
    trips = make_trips([("T1", 480, 540, "A", "B"), ("T2", 560, 620, "B", "A")])
    depot = StopPoint("DEPOT", np.nan, np.nan)
    dead = table_deadhead({("DEPOT", "A"): (4000, 8), ("A", "DEPOT"): (4000, 8),
                           ("DEPOT", "B"): (9000, 15), ("B", "DEPOT"): (9000, 15)})
    plan = blocks_optimise(trips=trips, deadhead=dead, depot=depot)
    assert plan.blocks == [["T1", "T2"]]
    assert plan.deadhead_m == 8000 and plan.deadhead_s == 16 * MIN  # out to A, back from A
    with pytest.raises(PlanError, match="depot"):
        blocks_optimise(trips=trips, deadhead=table_deadhead({}), depot=depot)


def _networkx_optimum(trips, layover_s, deadhead):
    """Independent reference: max matching with min deadhead via networkx min-cost max-flow."""
    g = nx.DiGraph()
    rows = list(trips.itertuples(index=False))
    for t in rows:
        g.add_edge("s", ("out", t.trip_key), capacity=1, weight=0)
        g.add_edge(("in", t.trip_key), "t", capacity=1, weight=0)
    for a in rows:
        for b in rows:
            leg = deadhead(StopPoint(a.last_stop_id, a.last_stop_lat, a.last_stop_lon),
                           StopPoint(b.first_stop_id, b.first_stop_lat, b.first_stop_lon))
            if a.trip_key != b.trip_key and leg is not None and a.end_s + leg[1] + layover_s <= b.start_s:
                g.add_edge(("out", a.trip_key), ("in", b.trip_key), capacity=1, weight=round(leg[0]))
    flow = nx.max_flow_min_cost(g, "s", "t")
    links = sum(flow["s"].values())
    return len(rows) - links, nx.cost_of_flow(g, flow)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_an_independent_min_cost_flow_on_random_days(seed):
    rng = np.random.default_rng(seed)
    stops = {f"S{k}": (40 + rng.uniform(0, 0.05), -75 + rng.uniform(0, 0.05)) for k in range(5)}
    rows = []
    for k in range(30):
        start = rng.uniform(6 * 3600, 12 * 3600)
        a, b = rng.choice(list(stops), 2)
        rows.append({"trip_key": f"k{k}", "start_s": start, "end_s": start + rng.uniform(900, 3600),
                     "first_stop_id": a, "first_stop_lat": stops[a][0], "first_stop_lon": stops[a][1],
                     "last_stop_id": b, "last_stop_lat": stops[b][0], "last_stop_lon": stops[b][1]})
    trips = pd.DataFrame(rows)
    dead = StraightLineDeadhead()
    plan = blocks_optimise(trips=trips, max_wait_s=None, deadhead=dead)
    vehicles, metres = _networkx_optimum(trips, 300.0, dead)
    assert plan.vehicles == vehicles
    assert plan.deadhead_m == pytest.approx(metres, abs=len(trips))  # integer-metre rounding only
    assert plan_check(trips=trips, blocks=plan.blocks) == []
    assert plan.lower_bound <= plan.vehicles <= len(blocks_first_fit(trips=trips))


def test_plan_check_finds_coverage_and_layover_breaks():
    trips = make_trips([("T1", 480, 540, "A", "A"), ("T2", 560, 600, "A", "A"), ("T3", 545, 590, "A", "A")])
    plan = blocks_optimise(trips=trips)
    assert plan_check(trips=trips, blocks=plan.blocks) == []
    kinds = {v.kind for v in plan_check(trips=trips, blocks=[["T1", "T2"], ["T1", "GHOST"]])}
    assert kinds == {"coverage_duplicate", "unknown_trip", "coverage_missing"}
    # T3 starts 5 min after T1 ends at the same stop: legal behind T1 at a 5 min layover, not at 6.
    moved = block_trip_move(trips=trips, blocks=[["T1"], ["T3"], ["T2"]], trip_key="T3", to_block=0)
    assert moved == [["T1", "T3"], [], ["T2"]]
    assert plan_check(trips=trips, blocks=moved, layover_s=5 * MIN) == []
    broken = plan_check(trips=trips, blocks=moved, layover_s=6 * MIN)
    assert [v.kind for v in broken] == ["layover"] and broken[0].trip_keys == ("T1", "T3")
    assert "09:05:00" in broken[0].message and "09:06:00" in broken[0].message
    with pytest.raises(PlanError):
        block_trip_move(trips=trips, blocks=moved, trip_key="T3", to_block=7)


@pytest.fixture(scope="module")
def synthetic_day(tmp_path_factory):
    path = feed_synthetic_write(path=tmp_path_factory.mktemp("syn") / "syn.zip", routes=4, seed=7)
    feed = feed_read(path=path)
    return feed, service_trips(feed=feed, service_date=dt.date(2024, 3, 6))


def test_synthetic_day_is_covered_once_with_layover(synthetic_day):
    _feed, trips = synthetic_day
    plan = blocks_optimise(trips=trips, layover_s=300)
    assert plan.trips == len(trips) > 500
    assert plan_check(trips=trips, blocks=plan.blocks, layover_s=300) == []
    assert plan.lower_bound <= plan.vehicles <= len(blocks_first_fit(trips=trips, layover_s=300))
    assert plan.feed_vehicles is None


def test_reoptimise_keeps_locked_blocks(synthetic_day):
    _feed, trips = synthetic_day
    plan = blocks_optimise(trips=trips)
    # A dispatcher splits every unlocked block into single trips, then asks for a re-plan.
    locked = {0, 3}
    messy = [plan.blocks[b] for b in sorted(locked)] + [[k] for b, blk in enumerate(plan.blocks) if b not in locked for k in blk]
    again = blocks_reoptimise(trips=trips, blocks=messy, locked={0, 1})
    assert again.blocks[:2] == [plan.blocks[0], plan.blocks[3]] and again.locked == [0, 1]
    assert plan_check(trips=trips, blocks=again.blocks) == []
    assert plan.vehicles <= again.vehicles <= plan.vehicles + len(locked) < len(messy)
    with pytest.raises(PlanError):
        blocks_reoptimise(trips=trips, blocks=messy, locked={len(messy)})


def test_exports_csv_and_gtfs_trips_with_block_id(tmp_path):
    feed = feed_read(path=feed_zip_write(path=tmp_path / "tiny.zip", tables=feed_tiny_tables()))
    trips = service_trips(feed=feed, service_date=dt.date(2024, 3, 6))
    plan = blocks_optimise(trips=trips)
    rows = list(csv.DictReader(io.StringIO(blocks_csv(trips=trips, blocks=plan.blocks))))
    assert sorted(r["trip_key"] for r in rows) == sorted(trips["trip_key"])
    assert len({r["block_id"] for r in rows}) == plan.vehicles
    text = blocks_trips_txt(feed=feed, trips=trips, blocks=plan.blocks)
    out = pd.read_csv(io.StringIO(text), dtype=str)
    assert set(out["trip_id"]) == set(trips["trip_key"]) and out["block_id"].notna().all()
    tables = blocks_gtfs_tables(feed=feed, trips=trips, blocks=plan.blocks)
    st = tables["stop_times.txt"].set_index(["trip_id", "stop_sequence"])
    assert st.loc[("t5@12:20:00", 1), "departure_time"] == "12:20:00"
    assert st.loc[("t5@12:20:00", 2), "arrival_time"] == "12:50:00"


# ------------------------------------------------------------------------------------------ shared feeds


@pytest.mark.shared
def test_shared_bullrunner_day_plan_covers_every_departure(shared_dir):
    feed = feed_read(path=shared_dir / "benchmarks" / "gtfs" / "bullrunner_gtfs.zip")
    trips = service_trips(feed=feed, service_date=dt.date(2017, 9, 13))
    plan = blocks_optimise(trips=trips, layover_s=300)
    assert plan_check(trips=trips, blocks=plan.blocks, layover_s=300) == []
    assert sum(len(b) for b in plan.blocks) == len(trips)
    assert plan.lower_bound <= plan.vehicles <= len(blocks_first_fit(trips=trips, layover_s=300))
    assert all("@" in key for block in plan.blocks for key in block)


@pytest.mark.shared
def test_shared_kcm_weekday_plan_against_the_feed_blocks(shared_dir):
    feed = feed_read(path=shared_dir / "benchmarks" / "gtfs" / "kcm_gtfs_subset.zip")
    trips = service_trips(feed=feed, service_date=dt.date(2016, 5, 4))
    plan = blocks_optimise(trips=trips)
    assert plan.feed_vehicles == trips["block_id"].nunique()
    assert plan_check(trips=trips, blocks=plan.blocks) == []
    assert plan.lower_bound <= plan.vehicles <= plan.feed_vehicles


def _random_day(seed: int, trips: int, stops: int) -> pd.DataFrame:
    """Trips between random stops a few km apart, starting on the minute through the day."""
    rng = np.random.default_rng(seed)
    where = {f"S{k}": (40 + rng.uniform(0, 0.05), -75 + rng.uniform(0, 0.05)) for k in range(stops)}
    rows = []
    for k in range(trips):
        start = float(rng.integers(6 * 60, 20 * 60)) * MIN
        a, b = rng.choice(list(where), 2)
        rows.append({"trip_key": f"k{k}", "start_s": start, "end_s": start + float(rng.integers(15, 60)) * MIN,
                     "first_stop_id": a, "first_stop_lat": where[a][0], "first_stop_lon": where[a][1],
                     "last_stop_id": b, "last_stop_lat": where[b][0], "last_stop_lon": where[b][1]})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", [0, 1])
def test_bounded_links_keep_the_fleet_and_deadhead_of_every_link(monkeypatch, seed):
    """Past LINK_BUDGET each trip links only to the earliest trips at its nearest terminals (a city-wide
    day would otherwise hold hundreds of millions of links): on a day small enough to solve both ways,
    the bounded plan needs the same buses and the same empty running as the plan over every link."""
    trips = _random_day(seed, trips=600, stops=30)
    exact = blocks_optimise(trips=trips, max_wait_s=None)
    monkeypatch.setattr(blocking, "LINK_BUDGET", 100_000)
    bounded = blocks_optimise(trips=trips, max_wait_s=None)
    assert not exact.links_bounded and bounded.links_bounded
    assert bounded.links_considered < exact.links_considered / 2
    assert bounded.vehicles == exact.vehicles
    assert bounded.deadhead_m == pytest.approx(exact.deadhead_m, rel=0.01)
    assert plan_check(trips=trips, blocks=bounded.blocks) == []


def test_bounded_links_honour_the_wait_window_and_stops_without_positions(monkeypatch):
    """The window still bounds a bus's idle wait; stops with no position are paired with every terminal
    (only the deadhead callable can judge them), so a table of deadheads by stop id still plans."""
    monkeypatch.setattr(blocking, "LINK_BUDGET", 0)
    trips = make_trips([("T1", 480, 540, "A", "P"), ("T2", 560, 620, "F", "A"), ("T3", 900, 960, "A", "A")])
    dead = table_deadhead({("P", "F"): (3000, 10)})
    plan = blocks_optimise(trips=trips, deadhead=dead, max_wait_s=2 * 3600)
    assert plan.links_bounded and plan.blocks == [["T1", "T2"], ["T3"]]  # T3 is 4.7 h after T2: no link
    assert blocks_optimise(trips=trips, deadhead=dead, max_wait_s=None).blocks == [["T1", "T2", "T3"]]


def test_first_fit_sees_every_waiting_bus_at_once():
    """First-fit compares every stop's longest-waiting bus in one pass: the bus waiting at the trip's own
    stop wins over one a short run away, and among equal runs the bus that has waited longest."""
    trips = make_trips([("a", 480, 540, "X", "P"), ("b", 490, 545, "X", "Q"), ("c", 500, 550, "X", "P"),
                        ("d", 600, 660, "P", "X"), ("e", 601, 660, "Q", "X")])
    dead = table_deadhead({("P", "Q"): (1000, 3), ("Q", "P"): (1000, 3)})
    assert blocks_first_fit(trips=trips, deadhead=dead) == [["a", "d"], ["b", "e"], ["c"]]
