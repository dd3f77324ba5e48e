"""Deadhead (empty running) between trips: travel time and distance on the city's road network where it
covers both stops, otherwise the straight-line default (great circle x BUS_DEADHEAD_DETOUR at
BUS_DEADHEAD_SPEED_KMH). A stop "is covered" when it snaps to the routable network within
BUS_DEADHEAD_MAX_SNAP_M: a feed from another city snaps thousands of kilometres away and falls back."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from agents.bus.conf import conf
from agents.geo import haversine_m
from city_ops.city.models import Place, RoadSegment
from city_ops.city.network import NoRouteError, road_network

from ..domain.blocking import StopPoint, StraightLineDeadhead

log = logging.getLogger(__name__)


def straight_line() -> StraightLineDeadhead:
    """The fallback, with the factors from settings (defaults: x1.3 at 25 km/h)."""
    return StraightLineDeadhead(detour=float(conf("BUS_DEADHEAD_DETOUR")),
                                speed_kmh=float(conf("BUS_DEADHEAD_SPEED_KMH")))


@dataclass
class NetworkDeadhead:
    """A deadhead callable (StopPoint, StopPoint) -> (metres, seconds) | None backed by one travel-time
    matrix from `origins` (default: the points themselves) to `points`; pairs it cannot route go to the
    straight-line fallback. A plan's deadheads all run from a trip's last stop or the depot to a trip's
    first stop or the depot: asking only those as origins halves the Dijkstras (600 instead of 1,200 on
    the scale-250 city, about 16 s of CPU)."""

    points: list[StopPoint]
    at: dt.datetime | None = None
    max_snap_m: float = 300.0
    origins: list[StopPoint] | None = None
    fallback: StraightLineDeadhead = field(default_factory=straight_line)
    road_pairs: int = 0
    fallback_pairs: int = 0

    def __post_init__(self):
        self.index: dict[StopPoint, int] = {}
        self.origin_index: dict[StopPoint, int] = {}
        self.secs = self.metres = np.zeros((0, 0))
        if not RoadSegment.objects.exists():
            return
        try:
            net = road_network(at=self.at)
            targets = self._covered(net, self.points)
            origins = targets if self.origins is None else self._covered(net, self.origins)
        except NoRouteError:
            return
        if not targets or not origins:
            return
        self.secs, self.metres = net.matrix([(p.lon, p.lat) for p in targets],
                                            sources=[(p.lon, p.lat) for p in origins])
        self.index = {p: k for k, p in enumerate(targets)}
        self.origin_index = {p: k for k, p in enumerate(origins)}

    def _covered(self, net, points: list[StopPoint]) -> list[StopPoint]:
        """The distinct located points that snap to the network within max_snap_m."""
        located = [p for p in dict.fromkeys(points) if not (pd.isna(p.lat) or pd.isna(p.lon))]
        if not located:
            return []
        _nodes, snap_m = net.snap([(p.lon, p.lat) for p in located])
        return [p for p, d in zip(located, snap_m) if d <= self.max_snap_m]

    @property
    def covered(self) -> int:
        return len(self.index)

    def __call__(self, a: StopPoint, b: StopPoint) -> tuple[float, float] | None:
        if a.stop_id == b.stop_id:
            return 0.0, 0.0
        ia, ib = self.origin_index.get(a), self.index.get(b)
        if ia is not None and ib is not None and np.isfinite(self.secs[ia, ib]):
            self.road_pairs += 1
            return float(self.metres[ia, ib]), float(self.secs[ia, ib])
        self.fallback_pairs += 1
        return self.fallback(a, b)

    def legs(self, a: list[StopPoint], b: list[StopPoint]) -> tuple[np.ndarray, np.ndarray]:
        """The pairs (a[k], b[k]) at once, as `__call__` gives each (and counted the same way)."""
        ia = np.array([self.origin_index.get(p, -1) for p in a], dtype=np.int64)
        ib = np.array([self.index.get(p, -1) for p in b], dtype=np.int64)
        same = np.array([x.stop_id == y.stop_id for x, y in zip(a, b)], dtype=bool)
        metres, secs = self.fallback.legs(a, b)
        routed = (ia >= 0) & (ib >= 0) & ~same
        routed[routed] = np.isfinite(self.secs[ia[routed], ib[routed]])
        metres[routed], secs[routed] = self.metres[ia[routed], ib[routed]], self.secs[ia[routed], ib[routed]]
        self.road_pairs += int(routed.sum())
        self.fallback_pairs += int((~routed & ~same).sum())
        return metres, secs

    @property
    def source(self) -> str:
        """How the plan's deadheads were measured: 'road network', 'straight line' or 'mixed'."""
        if self.road_pairs and self.fallback_pairs:
            return "mixed"
        return "road network" if self.road_pairs else "straight line"


def trip_end_points(*, trips: pd.DataFrame, ends: tuple[str, ...] = ("first", "last")) -> list[StopPoint]:
    """The distinct stops the trips start ("first") or end ("last") at."""
    out = []
    for end in ends:
        out.extend(StopPoint(str(s), float(a), float(o)) for s, a, o in zip(
            trips[f"{end}_stop_id"], trips[f"{end}_stop_lat"], trips[f"{end}_stop_lon"]))
    return list(dict.fromkeys(out))


def depot_choose(*, points: list[StopPoint], max_snap_m: float = 300.0, at=None) -> tuple[Place | None, StopPoint | None]:
    """The city's depot nearest the trips, when the road network covers every trip end and the depot: a
    feed from elsewhere has none, and its blocks start and end at their trips. Depots are Places of the
    first kind in BUS_DEPOT_PLACE_KINDS that exists (default: 'bus_depot', then the shared 'depot')."""
    depots = []
    for kind in conf("BUS_DEPOT_PLACE_KINDS"):
        depots = list(Place.objects.filter(kind=kind).order_by("id"))
        if depots:
            break
    located = [p for p in points if not (pd.isna(p.lat) or pd.isna(p.lon))]
    if not depots or not located or not RoadSegment.objects.exists():
        return None, None
    try:
        net = road_network(at=at)
        _n, snap = net.snap([(p.lon, p.lat) for p in located])
        _n, depot_snap = net.snap([(d.geom.x, d.geom.y) for d in depots])
    except NoRouteError:
        return None, None
    if float(np.max(snap)) > max_snap_m:
        return None, None
    lat0 = float(np.mean([p.lat for p in located]))
    lon0 = float(np.mean([p.lon for p in located]))
    usable = [(haversine_m(lat1=lat0, lon1=lon0, lat2=d.geom.y, lon2=d.geom.x), d) for d, s in zip(depots, depot_snap) if s <= max_snap_m]
    if not usable:
        return None, None
    depot = min(usable, key=lambda t: (t[0], t[1].pk))[1]
    return depot, StopPoint(f"depot:{depot.pk}", float(depot.geom.y), float(depot.geom.x))
