"""Minimum-fleet vehicle blocks: chain the day's trips into as few vehicles as possible, then least deadhead.

The model is the classic chain decomposition of a DAG: trip i may be followed by trip j when
end_i + deadhead_seconds(i -> j) + layover_s <= start_j. A set of such links in which every trip has at
most one successor and one predecessor is a bipartite matching, and vehicles = trips - links. The matching
is solved exactly by scipy's sparse min-weight full bipartite matching (LAPJVsp), with a per-link bonus M
larger than any possible deadhead saving, so the fewest vehicles always wins and deadhead breaks ties.

Scale: only links whose idle wait (start_j - end_i) is at most `max_wait_s` are built (default 2 h; it can
cost optimality when the best plan parks a bus for longer, so it is a setting: None = no window). A day with
more than LINK_BUDGET time-compatible pairs (about 2,500 trips without a window) is not given every pair: each
trip links to the earliest trips at its nearest terminals and to the soonest it can make anywhere
(`_links_bounded`), which kept the exact fleet on a 20,400-trip city day in 2.3 million links, not the
hundreds of millions (16 GB) of every pair.
"""
from __future__ import annotations

import heapq
import io
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

from agents.geo import haversine_m

from .gtfs import Feed, seconds_format

__all__ = [
    "BlockPlan",
    "PlanError",
    "StopPoint",
    "StraightLineDeadhead",
    "Violation",
    "block_trip_move",
    "blocks_baseline",
    "blocks_csv",
    "blocks_feed",
    "blocks_first_fit",
    "blocks_gtfs_tables",
    "blocks_optimise",
    "blocks_reoptimise",
    "blocks_trips_txt",
    "fleet_lower_bound",
    "plan_check",
    "plan_measure",
]

DEFAULT_LAYOVER_S = 300.0
DEFAULT_MAX_WAIT_S = 2 * 3600.0
# Past this many time-compatible trip pairs the links are bounded per trip (see `_links_bounded`): about 150
# MB of link arrays, and a matching that solves in seconds.
LINK_BUDGET = 3_000_000
NEAREST_TERMINALS = 12
# The earliest trips linked at each terminal: as many as the budget allows, never fewer than this.
MIN_PER_TERMINAL = 4
# Successors per trip anywhere in the city, earliest first (the links that reposition a bus).
SOONEST = 8
# Stop pairs whose deadhead is asked for; past it, each last stop's nearest first stops in a straight line.
PAIR_BUDGET = 1_000_000
TERMINAL_CANDIDATES = 200
# Trip x terminal rows searched at once for the soonest successors (bounds their working memory).
SOONEST_CHUNK = 2_000_000


class PlanError(ValueError):
    """A plan request that cannot be honoured (unknown trips, bad locked blocks, unreachable depot)."""


class StopPoint(NamedTuple):
    """A place a deadhead starts or ends at: a stop (or the depot) with its WGS84 position."""

    stop_id: str
    lat: float
    lon: float


Deadhead = Callable[[StopPoint, StopPoint], "tuple[float, float] | None"]


@dataclass(frozen=True)
class StraightLineDeadhead:
    """Default deadhead: great-circle distance x `detour` driven at `speed_kmh`. Returns (metres, seconds).

    Same stop -> (0, 0); a stop without a position -> None (unreachable), so only same-stop links remain.
    The lead replaces this with a road-network router of the same call shape.
    """

    detour: float = 1.3
    speed_kmh: float = 25.0

    def __call__(self, a: StopPoint, b: StopPoint) -> tuple[float, float] | None:
        if a.stop_id == b.stop_id:
            return 0.0, 0.0
        if any(pd.isna(v) for v in (a.lat, a.lon, b.lat, b.lon)):
            return None
        metres = haversine_m(lat1=a.lat, lon1=a.lon, lat2=b.lat, lon2=b.lon) * self.detour
        return metres, metres / (self.speed_kmh / 3.6)

    def legs(self, a: Sequence[StopPoint], b: Sequence[StopPoint]) -> tuple[np.ndarray, np.ndarray]:
        """The pairs (a[k], b[k]) at once, as `__call__` gives each: (metres, seconds), infinite where a
        stop has no position."""
        same = np.array([x.stop_id == y.stop_id for x, y in zip(a, b)], dtype=bool)
        metres = haversine_m(lat1=[p.lat for p in a], lon1=[p.lon for p in a],
                             lat2=[p.lat for p in b], lon2=[p.lon for p in b]) * self.detour
        metres = np.where(same, 0.0, np.where(np.isnan(metres), np.inf, metres))
        return metres, metres / (self.speed_kmh / 3.6)


@dataclass
class BlockPlan:
    """A vehicle plan: `blocks` are ordered lists of trip keys, one list per vehicle."""

    blocks: list[list[str]]
    trips: int
    vehicles: int
    lower_bound: int
    deadhead_m: float
    deadhead_s: float
    feed_vehicles: int | None
    layover_s: float
    max_wait_s: float | None
    links_considered: int = 0
    links_bounded: bool = False
    solve_s: float = 0.0
    locked: list[int] = field(default_factory=list)

    @property
    def deadhead_km(self) -> float:
        """Total deadhead (between trips, plus pull-out/pull-in with a depot) in km."""
        return self.deadhead_m / 1000.0

    def as_dict(self) -> dict:
        """JSON-ready summary (the shape the `plan` CLI prints)."""
        return {
            "trips": self.trips,
            "vehicles": self.vehicles,
            "lower_bound": self.lower_bound,
            "deadhead_km": round(self.deadhead_km, 3),
            "deadhead_min": round(self.deadhead_s / 60.0, 1),
            "feed_vehicles": self.feed_vehicles,
            "layover_s": self.layover_s,
            "max_wait_s": self.max_wait_s,
            "links_considered": self.links_considered,
            "links_bounded": self.links_bounded,
            "solve_s": round(self.solve_s, 3),
            "locked": self.locked,
            "blocks": self.blocks,
        }


@dataclass(frozen=True)
class Violation:
    """A rule a plan breaks: kind is coverage_missing, coverage_duplicate, unknown_trip, or layover."""

    kind: str
    message: str
    block: int | None = None
    trip_keys: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------- helpers


def _with_coords(trips: pd.DataFrame) -> pd.DataFrame:
    """Trips frames built by hand may lack stop positions: a deadhead callable can still work by stop id."""
    missing = [
        c for c in ("first_stop_lat", "first_stop_lon", "last_stop_lat", "last_stop_lon") if c not in trips.columns
    ]
    return trips.assign(**{c: np.nan for c in missing}) if missing else trips


def _indexed(trips: pd.DataFrame) -> pd.DataFrame:
    needed = {"trip_key", "start_s", "end_s", "first_stop_id", "last_stop_id"}
    missing = needed - set(trips.columns)
    if missing:
        raise PlanError(f"trips frame lacks column(s): {', '.join(sorted(missing))}")
    if trips["trip_key"].duplicated().any():
        dups = trips.loc[trips["trip_key"].duplicated(), "trip_key"].head(5).tolist()
        raise PlanError(f"trip keys repeat: {dups}")
    return _with_coords(trips).sort_values(["start_s", "trip_key"], kind="stable").reset_index(drop=True)


def _points(t: pd.DataFrame, end: str) -> list[StopPoint]:
    return [
        StopPoint(str(s), float(a), float(o))
        for s, a, o in zip(t[f"{end}_stop_id"], t[f"{end}_stop_lat"], t[f"{end}_stop_lon"])
    ]


def _point(row, end: str) -> StopPoint:
    return StopPoint(str(row[f"{end}_stop_id"]), float(row[f"{end}_stop_lat"]), float(row[f"{end}_stop_lon"]))


class _DeadheadCache:
    """Memoises the deadhead callable per stop pair: links number in the millions, stop pairs do not."""

    def __init__(self, deadhead: Deadhead):
        self.deadhead = deadhead
        self.cache: dict[tuple, tuple[float, float] | None] = {}

    def __call__(self, a: StopPoint, b: StopPoint) -> tuple[float, float] | None:
        key = (a, b)
        if key not in self.cache:
            value = self.deadhead(a, b)
            self.cache[key] = None if value is None else (float(value[0]), float(value[1]))
        return self.cache[key]


def fleet_lower_bound(*, trips: pd.DataFrame, layover_s: float = DEFAULT_LAYOVER_S) -> int:
    """Peak number of trips under way at once, each holding its vehicle until end + layover.

    No plan can use fewer vehicles: every trip in progress (or in its layover) at the peak instant needs
    its own bus. Intervals are half-open, matching the planner's rule that a bus freed at t may start at t.
    """
    if len(trips) == 0:
        return 0
    starts = trips["start_s"].to_numpy(float)
    ends = trips["end_s"].to_numpy(float) + float(layover_s)
    times = np.concatenate([starts, ends])
    deltas = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    # Sorting by (time, delta) puts releases (-1) before starts (+1) at the same instant.
    order = np.lexsort((deltas, times))
    return int(np.cumsum(deltas[order]).max())


class _Stops(NamedTuple):
    """One end of the trips as codes into its distinct stop points."""

    codes: np.ndarray
    points: list[StopPoint]


def _stop_codes(t: pd.DataFrame, end: str) -> _Stops:
    codes, uniq = pd.factorize(pd.Series(_points(t, end), dtype=object))
    return _Stops(codes.astype(np.int32), list(uniq))


def _legs(dead: _DeadheadCache, a: Sequence[StopPoint], b: Sequence[StopPoint]) -> tuple[np.ndarray, np.ndarray]:
    """Deadhead metres and seconds of each pair (a[k], b[k]); an unreachable pair is infinite. A deadhead
    with a `legs(a, b)` method answers them all at once (360,000 stop pairs on the scale-250 city)."""
    many = getattr(dead.deadhead, "legs", None)
    if many is not None and len(a):
        metres, secs = many(a, b)
        return np.asarray(metres, float), np.asarray(secs, float)
    metres, secs = np.empty(len(a)), np.empty(len(a))
    for k, (x, y) in enumerate(zip(a, b)):
        value = dead(x, y)
        metres[k], secs[k] = (np.inf, np.inf) if value is None else value
    return metres, secs


class _Links(NamedTuple):
    """Candidate links i -> j (indices into the trips) with their deadhead metres and seconds."""

    ii: np.ndarray
    jj: np.ndarray
    metres: np.ndarray
    secs: np.ndarray
    bounded: bool = False

    def feasible(self, t: pd.DataFrame, layover_s: float) -> _Links:
        """The links whose bus, after its deadhead and layover, is at the next trip's first stop in time."""
        starts, ends = t["start_s"].to_numpy(float), t["end_s"].to_numpy(float)
        ok = np.isfinite(self.secs) & (starts[self.jj] >= ends[self.ii] + self.secs + layover_s)
        return _Links(self.ii[ok], self.jj[ok], self.metres[ok], self.secs[ok], self.bounded)


class _TerminalPairs(NamedTuple):
    """Terminal pairs by last stop l: entries first_of[l] .. first_of[l] + count_of[l] - 1 give the first
    stops f a bus can drive to from l, nearest (by deadhead time) first, with that deadhead."""

    first: np.ndarray
    secs: np.ndarray
    metres: np.ndarray
    first_of: np.ndarray
    count_of: np.ndarray

    def nearest(self, k: int) -> _TerminalPairs:
        """The same pairs cut to the k nearest first stops of each last stop."""
        rank = np.arange(len(self.first)) - np.repeat(self.first_of, self.count_of)
        keep = rank < k
        count_of = np.minimum(self.count_of, k)
        return _TerminalPairs(self.first[keep], self.secs[keep], self.metres[keep], np.cumsum(count_of) - count_of,
                              count_of)

    def of(self, last_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row into last_codes, pair index) for every pair of each row's last stop."""
        return _expand(self.first_of[last_codes], self.count_of[last_codes])


class _Board(NamedTuple):
    """The day's departures by first stop, by start within each: one sorted key array answers "the trips
    leaving terminal f between two times" for every terminal at once."""

    order: np.ndarray  # trip indices by (first stop, start)
    key: np.ndarray  # first stop x span + start, ascending
    span: float
    region_end: np.ndarray  # per first stop, one past its last departure in `order`

    @classmethod
    def build(cls, t: pd.DataFrame, first: _Stops) -> _Board:
        order = np.lexsort((np.arange(len(t)), first.codes)).astype(np.int32)  # t is sorted by start
        span = float(t["start_s"].max()) + 1.0
        key = first.codes[order] * span + t["start_s"].to_numpy(float)[order]
        return cls(order, key, span, np.searchsorted(first.codes[order], np.arange(len(first.points)), side="right"))

    def window(self, f: np.ndarray, ready: np.ndarray, latest: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Positions [lo, hi) in `order` of the departures from f at or after `ready` (and by `latest`).
        A time past a terminal's last start would search into the next terminal's keys: clipped to its own."""
        end = self.region_end[f]
        lo = np.minimum(np.searchsorted(self.key, f * self.span + ready, side="left"), end)
        hi = end if latest is None else np.minimum(np.searchsorted(self.key, f * self.span + latest, side="right"), end)
        return lo, hi


def _plane(points: Sequence[StopPoint], lat0: float) -> np.ndarray:
    """Positions on a local plane (degrees of latitude), NaN where a stop has none: enough to rank by nearness."""
    lat = np.array([p.lat for p in points], float)
    lon = np.array([p.lon for p in points], float)
    return np.column_stack([lon * np.cos(np.radians(lat0)), lat])


def _nearby(a: Sequence[StopPoint], b: Sequence[StopPoint], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (index into a, index into b): each located a with its k nearest located b; a stop without a
    position can only be judged by the deadhead callable itself, so it is paired with every stop."""
    lats = [p.lat for p in [*a, *b] if not pd.isna(p.lat)]
    lat0 = float(np.mean(lats)) if lats else 0.0
    a_xy, b_xy = _plane(a, lat0), _plane(b, lat0)
    a_ok, b_ok = ~np.isnan(a_xy).any(axis=1), ~np.isnan(b_xy).any(axis=1)
    located_a, located_b = np.flatnonzero(a_ok), np.flatnonzero(b_ok)
    left, right = [], []
    if len(located_a) and len(located_b):
        kk = min(k, len(located_b))
        _dist, idx = cKDTree(b_xy[b_ok]).query(a_xy[a_ok], k=kk)
        left.append(np.repeat(located_a, kk))
        right.append(located_b[np.asarray(idx).reshape(len(located_a), kk).ravel()])
    for blind_a, others in ((np.flatnonzero(~a_ok), np.arange(len(b))), (located_a, np.flatnonzero(~b_ok))):
        left.append(np.repeat(blind_a, len(others)))
        right.append(np.tile(others, len(blind_a)))
    return np.concatenate(left).astype(np.int32), np.concatenate(right).astype(np.int32)


def _terminal_pairs(last: _Stops, first: _Stops, dead: _DeadheadCache) -> _TerminalPairs:
    """Every (last stop, first stop) pair a bus can drive, nearest first per last stop; past PAIR_BUDGET
    pairs, each last stop's TERMINAL_CANDIDATES nearest first stops in a straight line."""
    whole = len(last.points) * len(first.points) <= PAIR_BUDGET
    cand_l, cand_f = _nearby(last.points, first.points, len(first.points) if whole else TERMINAL_CANDIDATES)
    metres, secs = _legs(dead, [last.points[k] for k in cand_l], [first.points[k] for k in cand_f])
    ok = np.isfinite(secs)
    order = np.lexsort((cand_f[ok], metres[ok], secs[ok], cand_l[ok]))
    count_of = np.bincount(cand_l[ok], minlength=len(last.points))
    return _TerminalPairs(cand_f[ok][order], secs[ok][order], metres[ok][order], np.cumsum(count_of) - count_of,
                          count_of)


def _expand(lo: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For row r with `counts[r]` consecutive positions from `lo[r]`: (row, position) of every one."""
    total = int(counts.sum())
    rows = np.repeat(np.arange(len(lo), dtype=np.int32), counts)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    return rows, (np.arange(total) - offsets + np.repeat(lo, counts)).astype(np.int32)


def _time_window(t: pd.DataFrame, layover_s: float, max_wait_s: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Per trip, the range [lo, hi) of trips (by start) it could follow in time, deadhead not yet counted."""
    starts, ends = t["start_s"].to_numpy(float), t["end_s"].to_numpy(float)
    lo = np.searchsorted(starts, ends + layover_s, side="left")
    hi = len(t) if max_wait_s is None else np.searchsorted(starts, ends + max_wait_s, side="right")
    return lo, np.broadcast_to(hi, lo.shape)


def _links(t: pd.DataFrame, layover_s: float, max_wait_s: float | None, dead: _DeadheadCache) -> _Links:
    """The links i -> j the matching may use (indices into t), with their deadhead metres and seconds.

    A small day gets every feasible link, so its plan is exact. A city-wide day would have hundreds of
    millions (20,400 trips made 16 GB of them), so past LINK_BUDGET time-compatible pairs each trip only
    links to the trips it can reach soonest: the earliest few at each of its nearest terminals."""
    lo, hi = _time_window(t, layover_s, max_wait_s)
    if int(np.maximum(hi - lo, 0).sum()) <= LINK_BUDGET:
        return _links_all(t, lo, hi, layover_s, dead)
    return _links_bounded(t, layover_s, max_wait_s, dead)


def _links_all(t: pd.DataFrame, lo: np.ndarray, hi: np.ndarray, layover_s: float, dead: _DeadheadCache) -> _Links:
    """Every time-compatible pair whose deadhead fits, the deadhead asked once per distinct stop pair."""
    ii, jj = _expand(lo, np.maximum(hi - lo, 0))
    last, first = _stop_codes(t, "last"), _stop_codes(t, "first")
    pair = last.codes[ii].astype(np.int64) * len(first.points) + first.codes[jj]
    uniq, inverse = np.unique(pair, return_inverse=True)
    metres, secs = _legs(dead, [last.points[c // len(first.points)] for c in uniq],
                         [first.points[c % len(first.points)] for c in uniq])
    return _Links(ii, jj, metres[inverse], secs[inverse]).feasible(t, layover_s)


def _links_bounded(t: pd.DataFrame, layover_s: float, max_wait_s: float | None, dead: _DeadheadCache) -> _Links:
    """Per trip two kinds of successors, both within the wait window:
    - at each of its NEAREST_TERMINALS nearest first stops, the earliest trips it can still make there (as
      many as LINK_BUDGET allows, at least MIN_PER_TERMINAL): the cheap links, which decide the deadhead;
    - anywhere in the city, the SOONEST trips it can make (the first departure at each terminal it can
      reach, earliest first): the links that move a bus to where buses run short, which decide the fleet.
    Why so few suffice: of the trips leaving one terminal, an earlier one can stand in for a later one in
    a chain (same deadhead, and its own successors stay reachable)."""
    ends = t["end_s"].to_numpy(float)
    last, first = _stop_codes(t, "last"), _stop_codes(t, "first")
    board = _Board.build(t, first)
    pairs = _terminal_pairs(last, first, dead)
    per_terminal = max(MIN_PER_TERMINAL, LINK_BUDGET // (len(t) * NEAREST_TERMINALS))
    parts = [_links_nearest(board, pairs.nearest(NEAREST_TERMINALS), last.codes, ends, layover_s, max_wait_s,
                            per_terminal)]
    per_trip = max(1, int(pairs.count_of[last.codes].mean()))
    for chunk in np.array_split(np.arange(len(t)), max(1, len(t) * per_trip // SOONEST_CHUNK)):
        parts.append(_links_soonest(board, pairs, chunk, last.codes, ends, layover_s, max_wait_s))
    ii, jj, metres, secs = (np.concatenate(column) for column in zip(*parts))
    _uniq, first_seen = np.unique(ii.astype(np.int64) * len(t) + jj, return_index=True)
    return _Links(ii[first_seen], jj[first_seen], metres[first_seen], secs[first_seen], True).feasible(t, layover_s)


def _links_nearest(board: _Board, pairs: _TerminalPairs, last_codes: np.ndarray, ends: np.ndarray,
                   layover_s: float, max_wait_s: float | None, per_terminal: int) -> tuple[np.ndarray, ...]:
    """The earliest `per_terminal` trips each trip can make at each first stop of `pairs`."""
    rows, at = pairs.of(last_codes)
    latest = None if max_wait_s is None else ends[rows] + max_wait_s
    lo, hi = board.window(pairs.first[at], ends[rows] + pairs.secs[at] + layover_s, latest)
    took, pos = _expand(lo, np.clip(hi - lo, 0, per_terminal))
    return rows[took], board.order[pos], pairs.metres[at[took]], pairs.secs[at[took]]


def _links_soonest(board: _Board, pairs: _TerminalPairs, chunk: np.ndarray, last_codes: np.ndarray,
                   ends: np.ndarray, layover_s: float, max_wait_s: float | None) -> tuple[np.ndarray, ...]:
    """For the trips in `chunk`, the SOONEST earliest-starting trips each can make anywhere: the first
    departure it can make at each terminal laid out in a trips x terminals grid, the earliest picked per
    row by partition (a sort of 12 million rows took most of the plan's time)."""
    rows, at = pairs.of(last_codes[chunk])
    latest = None if max_wait_s is None else ends[chunk[rows]] + max_wait_s
    lo, hi = board.window(pairs.first[at], ends[chunk[rows]] + pairs.secs[at] + layover_s, latest)
    start = np.where(lo < hi, board.key[np.minimum(lo, len(board.key) - 1)] - pairs.first[at] * board.span, np.inf)
    col = at - pairs.first_of[last_codes[chunk]][rows]
    shape = (len(chunk), int(pairs.count_of.max(initial=0)))
    grid, where = np.full(shape, np.inf), np.full(shape, -1, dtype=np.int64)
    grid[rows, col], where[rows, col] = start, np.arange(len(rows))
    k = min(SOONEST, shape[1])
    if k == 0:
        return (np.zeros(0, np.int32),) * 2 + (np.zeros(0),) * 2
    best = np.argpartition(grid, k - 1, axis=1)[:, :k] if shape[1] > k else np.broadcast_to(np.arange(k), (shape[0], k))
    r, c = np.repeat(np.arange(shape[0]), k), best.ravel()
    sel = where[r, c][np.isfinite(grid[r, c])]
    return chunk[rows[sel]].astype(np.int32), board.order[lo[sel]], pairs.metres[at[sel]], pairs.secs[at[sel]]


def _depot_legs(t: pd.DataFrame, depot: StopPoint | None, dead: _DeadheadCache) -> tuple[np.ndarray, ...]:
    n = len(t)
    if depot is None:
        return np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    out_m, out_s, in_m, in_s = (np.empty(n) for _ in range(4))
    for k, (key, first, last) in enumerate(zip(t["trip_key"], _points(t, "first"), _points(t, "last"))):
        leg_out = dead(depot, first)
        leg_in = dead(last, depot)
        if leg_out is None or leg_in is None:
            raise PlanError(f"trip {key} cannot be reached from or to the depot {depot.stop_id}")
        (out_m[k], out_s[k]), (in_m[k], in_s[k]) = leg_out, leg_in
    return out_m, out_s, in_m, in_s


def _feed_vehicles(trips: pd.DataFrame) -> int | None:
    if "block_id" not in trips.columns:
        return None
    blocks = trips["block_id"].dropna()
    blocks = blocks[blocks.astype(str).str.len() > 0]
    return int(blocks.nunique()) if len(blocks) else None


# --------------------------------------------------------------------------------------------- solve


def blocks_optimise(
    *,
    trips: pd.DataFrame,
    layover_s: float = DEFAULT_LAYOVER_S,
    deadhead: Deadhead | None = None,
    depot: StopPoint | None = None,
    max_wait_s: float | None = DEFAULT_MAX_WAIT_S,
) -> BlockPlan:
    """Cover every trip exactly once with the fewest vehicles, then the least deadhead distance.

    `trips` is a `service_trips` frame (trip_key, start_s, end_s, first/last stop id/lat/lon, optional
    block_id). With a `depot`, each block also pays a pull-out to its first trip and a pull-in from its
    last, and the deadhead objective counts them; without one, blocks start and end at their trips.
    """
    started = time.perf_counter()
    t = _indexed(trips)
    n = len(t)
    dead = _DeadheadCache(deadhead or StraightLineDeadhead())
    bound = fleet_lower_bound(trips=t, layover_s=layover_s)
    if n == 0:
        return BlockPlan([], 0, 0, 0, 0.0, 0.0, None, layover_s, max_wait_s)
    links = _links(t, float(layover_s), max_wait_s, dead)
    ii, jj, dm = links.ii, links.jj, links.metres
    out_m, _out_s, in_m, _in_s = _depot_legs(t, depot, dead)

    # Integer metres keep the lexicographic objective exact in float64.
    arc = np.round(dm) - np.round(in_m[ii]) - np.round(out_m[jj])
    spread = (np.round(dm).max(initial=0) + np.round(in_m).max() + np.round(out_m).max()) + 1.0
    bonus = spread * (n + 1)  # one more link is worth more than any deadhead difference across the plan
    shift = bonus + spread + 1.0  # makes every stored weight positive (zeros would read as "no edge")
    rows = np.concatenate([ii, np.arange(n)])
    cols = np.concatenate([jj, n + np.arange(n)])  # column n+i: "trip i ends its block"
    weights = np.concatenate([arc - bonus + shift, np.full(n, shift)])
    matrix = csr_matrix((weights, (rows, cols)), shape=(n, 2 * n))
    _row_ind, col_ind = min_weight_full_bipartite_matching(matrix)

    successor = np.where(col_ind < n, col_ind, -1)
    has_pred = np.zeros(n, bool)
    has_pred[successor[successor >= 0]] = True
    keys = t["trip_key"].tolist()
    blocks: list[list[str]] = []
    for head in np.flatnonzero(~has_pred):
        chain, k = [], int(head)
        while k >= 0:
            chain.append(keys[k])
            k = int(successor[k])
        blocks.append(chain)
    start_of = dict(zip(keys, t["start_s"]))
    blocks.sort(key=lambda b: (start_of[b[0]], b[0]))
    measure = plan_measure(trips=t, blocks=blocks, deadhead=dead, depot=depot)
    return BlockPlan(
        blocks=blocks,
        trips=n,
        vehicles=len(blocks),
        lower_bound=bound,
        deadhead_m=measure["deadhead_m"],
        deadhead_s=measure["deadhead_s"],
        feed_vehicles=_feed_vehicles(t),
        layover_s=float(layover_s),
        max_wait_s=max_wait_s,
        links_considered=len(ii),
        links_bounded=links.bounded,
        solve_s=time.perf_counter() - started,
    )


def blocks_first_fit(
    *, trips: pd.DataFrame, layover_s: float = DEFAULT_LAYOVER_S, deadhead: Deadhead | None = None
) -> list[list[str]]:
    """The dispatcher's rule of thumb, the statement's baseline where the feed has no blocks: take trips by
    start time and give each to the open bus that reaches it with the shortest empty run (a bus already
    waiting at the trip's first stop first; among equals, the one that has waited longest), else a new bus.
    Why not the first bus that can reach it: no dispatcher sends a bus across town while another waits at
    the stop, and a baseline that did would overstate the agent's empty-running savings."""
    t = _indexed(trips)
    waiting = _Waiting(last=_stop_codes(t, "last"), first=_stop_codes(t, "first"),
                       dead=_DeadheadCache(deadhead or StraightLineDeadhead()))
    starts, ends = t["start_s"].to_numpy(float), t["end_s"].to_numpy(float)
    blocks: list[list[int]] = []
    for k in range(len(t)):
        stop = waiting.nearest(first=int(waiting.first.codes[k]), start_s=starts[k], layover_s=layover_s)
        if stop is None:
            blocks.append([k])
            b = len(blocks) - 1
        else:
            b = waiting.pop(stop)
            blocks[b].append(k)
        waiting.push(int(waiting.last.codes[k]), ends[k], b)
    keys = t["trip_key"].tolist()
    return [[keys[k] for k in block] for block in blocks]


class _Waiting:
    """First-fit's open buses by the last stop they wait at, longest-waiting first: at a stop only the bus
    that has waited longest can be the pick, so a trip looks at one bus per stop, and with each stop's
    longest wait in an array it looks at every stop at once (20,000 trips at 600 stops: a second, not 28 s).
    Stops are coded in the order buses first wait at them, which breaks exact ties as before."""

    def __init__(self, *, last: _Stops, first: _Stops, dead: _DeadheadCache):
        self.last, self.first, self.dead = last, first, dead
        self.heaps: list[list[tuple[float, int]]] = [[] for _ in last.points]
        self.free = np.full(len(last.points), np.inf)  # when each stop's longest-waiting bus was free
        self.legs: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _legs_to(self, first: int) -> tuple[np.ndarray, np.ndarray]:
        if first not in self.legs:
            to = self.first.points[first]
            self.legs[first] = _legs(self.dead, self.last.points, [to] * len(self.last.points))
        return self.legs[first]

    def nearest(self, *, first: int, start_s: float, layover_s: float) -> int | None:
        """The stop whose longest-waiting bus reaches the first stop in time with the shortest empty run
        (ties: the bus that has waited longest), or None when no open bus can make it."""
        metres, secs = self._legs_to(first)
        can = np.flatnonzero(self.free + secs + layover_s <= start_s)
        if not len(can):
            return None
        return int(can[np.lexsort((can, self.free[can], metres[can]))[0]])

    def pop(self, stop: int) -> int:
        block = heapq.heappop(self.heaps[stop])[1]
        self.free[stop] = self.heaps[stop][0][0] if self.heaps[stop] else np.inf
        return block

    def push(self, stop: int, free_s: float, block: int) -> None:
        heapq.heappush(self.heaps[stop], (free_s, block))
        self.free[stop] = self.heaps[stop][0][0]


def blocks_feed(*, trips: pd.DataFrame) -> list[list[str]] | None:
    """The feed's own blocks (trips sharing a block_id, by start time), or None unless every trip has one."""
    if "block_id" not in trips.columns or not len(trips):
        return None
    ids = trips["block_id"].astype("string").str.strip()
    if ids.isna().any() or (ids == "").any():
        return None
    t = _indexed(trips.assign(block_id=ids))
    return [list(group["trip_key"]) for _, group in t.groupby("block_id", sort=True)]


def blocks_baseline(
    *, trips: pd.DataFrame, layover_s: float = DEFAULT_LAYOVER_S, deadhead: Deadhead | None = None
) -> tuple[list[list[str]], str]:
    """What the city runs without the agent, and which rule that is: the feed's own blocks where every trip
    has a block_id ("feed blocks"), else the dispatcher's first-fit rule ("first-fit")."""
    feed = blocks_feed(trips=trips)
    if feed is not None:
        return feed, "feed blocks"
    return blocks_first_fit(trips=trips, layover_s=layover_s, deadhead=deadhead), "first-fit"


def plan_measure(
    *, trips: pd.DataFrame, blocks: Sequence[Sequence[str]], deadhead: Deadhead | None = None,
    depot: StopPoint | None = None,
) -> dict[str, float]:
    """Deadhead totals of a plan (between consecutive trips, plus depot legs when a depot is given)."""
    t = _with_coords(trips)
    # Stop points by trip key, made once: a row lookup per trip cost seconds on a 20,000-trip day.
    first = dict(zip(t["trip_key"], _points(t, "first")))
    last = dict(zip(t["trip_key"], _points(t, "last")))
    dead = deadhead if isinstance(deadhead, _DeadheadCache) else _DeadheadCache(deadhead or StraightLineDeadhead())
    metres = seconds = 0.0
    for block in blocks:
        if not block:
            continue
        legs = [(last[a], first[b]) for a, b in itertools.pairwise(block)]
        if depot is not None:
            legs += [(depot, first[block[0]]), (last[block[-1]], depot)]
        for a, b in legs:
            value = dead(a, b)
            if value is None:
                return {"deadhead_m": float("inf"), "deadhead_s": float("inf")}
            metres += value[0]
            seconds += value[1]
    return {"deadhead_m": metres, "deadhead_s": seconds}


# --------------------------------------------------------------------------------------------- edit


def plan_check(
    *,
    trips: pd.DataFrame,
    blocks: Sequence[Sequence[str]],
    layover_s: float = DEFAULT_LAYOVER_S,
    deadhead: Deadhead | None = None,
) -> list[Violation]:
    """Every way a (possibly hand-edited) plan breaks the rules; an empty list means it is sound.

    Coverage: every trip of `trips` in exactly one block, no unknown keys. Layover: within a block each trip
    starts no earlier than the previous trip's end + deadhead time between them + `layover_s`.
    Empty blocks are allowed (a vehicle a dispatcher emptied).
    """
    dead = _DeadheadCache(deadhead or StraightLineDeadhead())
    t = _with_coords(trips).set_index("trip_key")
    known = set(t.index)
    seen: dict[str, int] = {}
    out: list[Violation] = []
    for b, block in enumerate(blocks):
        for key in block:
            if key not in known:
                out.append(Violation("unknown_trip", f"block {b}: trip {key} is not a trip of this day", b, (key,)))
            elif key in seen:
                out.append(Violation("coverage_duplicate", f"trip {key} is in block {seen[key]} and block {b}", b, (key,)))
            else:
                seen[key] = b
        timed = [k for k in block if k in known]
        for a, c in itertools.pairwise(timed):
            prev, nxt = t.loc[a], t.loc[c]
            leg = dead(_point(prev, "last"), _point(nxt, "first"))
            if leg is None:
                out.append(Violation("layover", f"block {b}: no deadhead from {a} to {c}", b, (a, c)))
                continue
            ready = float(prev["end_s"]) + leg[1] + layover_s
            if float(nxt["start_s"]) < ready:
                out.append(
                    Violation(
                        "layover",
                        f"block {b}: trip {c} starts {seconds_format(nxt['start_s'])} but the bus is free only at "
                        f"{seconds_format(ready)} (trip {a} ends {seconds_format(prev['end_s'])} + deadhead "
                        f"{leg[1]:.0f} s + layover {layover_s:.0f} s)",
                        b,
                        (a, c),
                    )
                )
    for key in t.index:
        if key not in seen:
            out.append(Violation("coverage_missing", f"trip {key} is in no block", None, (key,)))
    return out


def block_trip_move(
    *, trips: pd.DataFrame, blocks: Sequence[Sequence[str]], trip_key: str, to_block: int
) -> list[list[str]]:
    """A copy of `blocks` with `trip_key` taken out of its block and put into `to_block` in start-time order.

    Block indices stay stable (an emptied block stays as []); `plan_check` tells whether the move is legal.
    """
    if not 0 <= to_block < len(blocks):
        raise PlanError(f"block {to_block} does not exist (plan has {len(blocks)} blocks)")
    start = trips.set_index("trip_key")["start_s"]
    if trip_key not in start.index:
        raise PlanError(f"trip {trip_key} is not a trip of this day")
    moved = [[k for k in block if k != trip_key] for block in blocks]
    moved[to_block] = sorted([*moved[to_block], trip_key], key=lambda k: (float(start.get(k, np.inf)), k))
    return moved


def blocks_reoptimise(
    *,
    trips: pd.DataFrame,
    blocks: Sequence[Sequence[str]],
    locked: Iterable[int],
    layover_s: float = DEFAULT_LAYOVER_S,
    deadhead: Deadhead | None = None,
    depot: StopPoint | None = None,
    max_wait_s: float | None = DEFAULT_MAX_WAIT_S,
) -> BlockPlan:
    """Keep the `locked` blocks as they are and re-plan every other trip of the day from scratch.

    The result lists the locked blocks first (in their original order; `plan.locked` gives their new
    indices) and then the re-solved ones. Trips missing from the old plan are planned too.
    """
    locked = sorted(set(locked))
    bad = [b for b in locked if not 0 <= b < len(blocks)]
    if bad:
        raise PlanError(f"locked block(s) {bad} do not exist (plan has {len(blocks)} blocks)")
    kept = [list(blocks[b]) for b in locked]
    kept_keys = {k for block in kept for k in block}
    unknown = kept_keys - set(trips["trip_key"])
    if unknown:
        raise PlanError(f"locked blocks hold trips that are not trips of this day: {sorted(unknown)[:5]}")
    dead = _DeadheadCache(deadhead or StraightLineDeadhead())
    rest = trips[~trips["trip_key"].isin(kept_keys)]
    plan = blocks_optimise(trips=rest, layover_s=layover_s, deadhead=dead, depot=depot, max_wait_s=max_wait_s)
    merged = kept + plan.blocks
    measure = plan_measure(trips=trips, blocks=merged, deadhead=dead, depot=depot)
    return BlockPlan(
        blocks=merged,
        trips=len(trips),
        vehicles=sum(1 for b in merged if b),
        lower_bound=fleet_lower_bound(trips=trips, layover_s=layover_s),
        deadhead_m=measure["deadhead_m"],
        deadhead_s=measure["deadhead_s"],
        feed_vehicles=_feed_vehicles(trips),
        layover_s=float(layover_s),
        max_wait_s=max_wait_s,
        links_considered=plan.links_considered,
        solve_s=plan.solve_s,
        locked=list(range(len(kept))),
    )


# --------------------------------------------------------------------------------------------- export


def _block_ids(blocks: Sequence[Sequence[str]], prefix: str) -> list[str]:
    width = max(3, len(str(len(blocks))))
    return [f"{prefix}{b + 1:0{width}d}" for b in range(len(blocks))]


def blocks_csv(*, trips: pd.DataFrame, blocks: Sequence[Sequence[str]], prefix: str = "B") -> str:
    """The plan as CSV: one row per trip with block_id, sequence in block, times and end stops."""
    t = _with_coords(trips).set_index("trip_key")
    rows = []
    for block_id, block in zip(_block_ids(blocks, prefix), blocks):
        for seq, key in enumerate(block, start=1):
            trip = t.loc[key]
            rows.append(
                {
                    "block_id": block_id,
                    "sequence": seq,
                    "trip_key": key,
                    "trip_id": trip.get("trip_id", key),
                    "route_id": trip.get("route_id", ""),
                    "direction_id": trip.get("direction_id", pd.NA),
                    "start_time": seconds_format(trip["start_s"]),
                    "end_time": seconds_format(trip["end_s"]),
                    "first_stop_id": trip["first_stop_id"],
                    "last_stop_id": trip["last_stop_id"],
                }
            )
    buffer = io.StringIO()
    pd.DataFrame(rows, columns=["block_id", "sequence", "trip_key", "trip_id", "route_id", "direction_id",
                                "start_time", "end_time", "first_stop_id", "last_stop_id"]).to_csv(buffer, index=False)
    return buffer.getvalue()


def blocks_gtfs_tables(
    *, feed: Feed, trips: pd.DataFrame, blocks: Sequence[Sequence[str]], prefix: str = "B"
) -> dict[str, pd.DataFrame]:
    """GTFS tables carrying the plan: "trips.txt" (the day's trips with block_id set) and "stop_times.txt"
    for frequency departures, which become plain trips named by their key (`trip_id@HH:MM:SS`) because a
    block can only name a concrete trip. Regular trips keep their stop_times in the feed."""
    block_of = {key: block_id for block_id, block in zip(_block_ids(blocks, prefix), blocks) for key in block}
    source = feed.trips.set_index("trip_id")
    rows = []
    for trip in trips.itertuples(index=False):
        row = source.loc[trip.trip_id].to_dict()
        row["trip_id"] = trip.trip_key
        row["block_id"] = block_of.get(trip.trip_key, "")
        rows.append(row)
    columns = [c for c in feed.trips.columns if c != "block_id"] + ["block_id"]
    out_trips = pd.DataFrame(rows).reindex(columns=columns)

    freq = trips[trips["frequency_based"]] if "frequency_based" in trips.columns else trips.iloc[0:0]
    st = feed.stop_times
    times = []
    for trip in freq.itertuples(index=False):
        template = st[st["trip_id"] == trip.trip_id].sort_values("stop_sequence")
        first = template["departure_time"].fillna(template["arrival_time"]).iloc[0]
        shifted = template.copy()
        shifted["trip_id"] = trip.trip_key
        for column in ("arrival_time", "departure_time"):
            if column in shifted.columns:
                shifted[column] = (shifted[column] - first + trip.start_s).map(
                    lambda s: "" if pd.isna(s) else seconds_format(s)
                )
        times.append(shifted)
    out_times = pd.concat(times, ignore_index=True) if times else st.iloc[0:0].copy()
    return {"trips.txt": out_trips, "stop_times.txt": out_times}


def blocks_trips_txt(*, feed: Feed, trips: pd.DataFrame, blocks: Sequence[Sequence[str]], prefix: str = "B") -> str:
    """The day's trips.txt with the plan's block_id on every trip (see `blocks_gtfs_tables`)."""
    buffer = io.StringIO()
    blocks_gtfs_tables(feed=feed, trips=trips, blocks=blocks, prefix=prefix)["trips.txt"].to_csv(buffer, index=False)
    return buffer.getvalue()
