"""The day's headway regularity with the holding advice applied and without it, for the results statement.

The live advice cannot be un-given: a day on the road is one of the two worlds. So the evening review replays
each route the day's positions show through the seeded loop simulation (`domain.simulation`) twice, once with
every hold `domain.realtime.hold_seconds` advises applied at the timing points and once with none, the same
buses, stops, timetable headway, hours and random draws in both; the difference is what accepting the advice
is worth in excess wait. A route is set up from what its positions show (see `route_replay`); a day without
positions has no replay, and says so."""
from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import asdict, dataclass

from agents.bus.conf import conf

from ..domain.simulation import SimulationConfig, SimulationRun, holding_compare, replay_config
from ..models import Feed
from ..selectors import positions_day_routes, route_scheduled_headway
from .realtime import patterns_for


@dataclass
class RouteReplay:
    """One route's replay (`without` / `with_holding` None, and `skipped` saying why, when it cannot run)."""

    feed_id: int
    route_id: str
    buses: int
    positions: int
    stops: int = 0
    headway_s: float | None = None
    seed: int = 0
    duration_s: float = 0.0
    without: SimulationRun | None = None
    with_holding: SimulationRun | None = None
    skipped: str = ""

    def as_dict(self) -> dict:
        def run(r: SimulationRun | None) -> dict | None:
            if r is None:
                return None
            return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(r).items() if k != "hold_log"}

        return {"feed": self.feed_id, "route": self.route_id, "buses": self.buses, "positions": self.positions,
                "stops": self.stops, "headway_s": self.headway_s, "seed": self.seed,
                "duration_s": round(self.duration_s), "without": run(self.without),
                "with_holding": run(self.with_holding), "skipped": self.skipped}


@dataclass
class DayReplay:
    """The day's routes replayed, and the day's figures: excess wait and headway cv with the advice applied
    and without, each the mean over the replayed routes weighted by the headways each run measured."""

    day: dt.date
    routes: list[RouteReplay]

    @property
    def replayed(self) -> list[RouteReplay]:
        return [r for r in self.routes if r.with_holding is not None]

    def mean(self, holding: bool, field: str) -> float | None:
        runs = [run for run in (r.with_holding if holding else r.without for r in self.replayed) if run.headways]
        weight = sum(r.headways for r in runs)
        return sum(getattr(r, field) * r.headways for r in runs) / weight if weight else None


def _route_stops(feed: Feed, route_id: str) -> int:
    """The stops a bus of the route calls at round its loop: the longest pattern of each direction."""
    index = patterns_for(feed=feed)
    longest: dict[object, int] = {}
    for pattern_id in index.by_route.get(route_id, []):
        pattern = index.patterns[pattern_id]
        longest[pattern.direction_id] = max(longest.get(pattern.direction_id, 0), len(pattern.stops))
    return sum(longest.values())


def route_replay(*, day: dt.date, seen: dict, feed: Feed) -> RouteReplay:
    """Replay one route as its positions show it (`seen`: a row of `positions_day_routes`): the most buses
    reporting at once, the stops of its patterns, the timetable's headway while they reported, for as long
    as they reported. Seeded by the day, feed and route, so a review run again gives the same figures."""
    out = RouteReplay(feed_id=feed.pk, route_id=seen["route_id"], buses=seen["buses"], positions=seen["positions"],
                      seed=zlib.crc32(f"{day.isoformat()}:{feed.pk}:{seen['route_id']}".encode()))
    out.stops = _route_stops(feed, out.route_id)
    out.headway_s = route_scheduled_headway(feed=feed, route_id=out.route_id, day=day, first=seen["first"],
                                            last=seen["last"])
    if out.headway_s is None or not out.stops:
        out.skipped = "the feed has no timetable headway or stops for the route on the day"
        return out
    base = SimulationConfig(max_hold_s=float(conf("BUS_MAX_HOLD_S")))
    try:
        config = replay_config(buses=out.buses, stops=out.stops, headway_s=out.headway_s,
                               span_s=(seen["last"] - seen["first"]).total_seconds(), base=base)
    except ValueError as exc:
        out.skipped = str(exc)
        return out
    compared = holding_compare(config=config, seed=out.seed)
    out.duration_s, out.without, out.with_holding = config.duration_s, compared.without, compared.with_holding
    return out


def headways_replay(*, day: dt.date) -> DayReplay:
    """Every route with positions on the day, replayed with and without the holding advice."""
    feeds = {f.pk: f for f in Feed.objects.all()}
    return DayReplay(day=day, routes=[route_replay(day=day, seen=seen, feed=feeds[seen["feed_id"]])
                                      for seen in positions_day_routes(day=day) if seen["feed_id"] in feeds])
