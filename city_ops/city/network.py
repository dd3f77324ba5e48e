"""The road-network service: shortest paths and travel-time matrices on the city's drivable roads, honouring
active closures. A compressed sparse graph (scipy.sparse.csgraph) is built once per process and network
version; closures only mask edges, so a new closure does not rebuild the base graph.

Points are snapped to the nearest node of the largest strongly connected component, so every snapped pair
has a route (a dead-end service road fragment would otherwise make a matrix entry infinite)."""
from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import numpy as np
import shapely
from django.conf import settings
from django.db import connection
from pyproj import Transformer
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree
from shapely.geometry import LineString

from .models import CityProfile, RoadClosure, RoadNode, RoadSegment

_lock = threading.Lock()
MATRIX_CHUNK_BYTES = 512 * 2**20
# a Dijkstra's times and predecessors per source and junction, with room for scipy's own working arrays
_MATRIX_BYTES_PER_CELL = 48
# the hubs whose searches bound a matrix's pairs, and the most targets searched backwards (`node_matrix`)
MATRIX_HUBS = 12
MATRIX_FAR_MAX = 16
# sources per bounded Dijkstra call: scipy takes one limit per call, the group's largest (16 measured best
# on a district: fewer pay each call's fixed cost more often, more search further and fill larger arrays)
_LIMIT_GROUP = 16
_cache: dict[tuple, "RoadNetwork"] = {}


class NoRouteError(Exception):
    """No drivable path connects the two points (e.g. every way out is closed)."""


@dataclass
class Path:
    """A route on the network: the nodes and segments it uses, its length, time and geometry (lon/lat)."""

    node_ids: list[int]
    segment_ids: list[int]
    length_m: float
    time_s: float
    coords: list[tuple[float, float]] = field(default_factory=list)

    @property
    def geometry(self) -> LineString:
        return LineString(self.coords)


class RoadNetwork:
    """An immutable snapshot of the drivable graph with a set of closed segments left out."""

    def __init__(self, *, node_ids, node_lonlat, seg_ids, seg_src, seg_dst, seg_len, seg_time, seg_oneway,
                 seg_coords, metric_srid: int, closed: frozenset[int] = frozenset()):
        self.node_ids = node_ids
        self.node_lonlat = node_lonlat
        self.index_of = {nid: i for i, nid in enumerate(node_ids.tolist())}
        self.seg_ids, self.seg_coords = seg_ids, seg_coords
        self.closed = closed
        self._to_metric = Transformer.from_crs(4326, metric_srid, always_xy=True)
        keep = ~np.isin(seg_ids, np.fromiter(closed, dtype=np.int64, count=len(closed)))
        # Directed edge arrays: forward for every segment, backward for two-way ones.
        fwd = keep
        bwd = keep & ~seg_oneway
        src = np.concatenate([seg_src[fwd], seg_dst[bwd]])
        dst = np.concatenate([seg_dst[fwd], seg_src[bwd]])
        self.e_len = np.concatenate([seg_len[fwd], seg_len[bwd]])
        self.e_time = np.concatenate([seg_time[fwd], seg_time[bwd]])
        self.e_seg = np.concatenate([seg_ids[fwd], seg_ids[bwd]])
        self.e_reversed = np.concatenate([np.zeros(fwd.sum(), bool), np.ones(bwd.sum(), bool)])
        n = len(node_ids)
        # Keep the fastest of parallel edges: sort by time descending so the last write (fastest) wins.
        order = np.argsort(-self.e_time, kind="stable")
        self.edge_at = {}
        for k in order:
            self.edge_at[(int(src[k]), int(dst[k]))] = int(k)
        pairs = np.array(list(self.edge_at.keys()), dtype=np.int64).reshape(-1, 2)
        ks = np.fromiter(self.edge_at.values(), dtype=np.int64, count=len(self.edge_at))
        # csgraph treats explicit zeros as missing edges; a tiny floor keeps zero-length edges.
        self.graph_time = csr_matrix((np.maximum(self.e_time[ks], 1e-6), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        self.graph_len = csr_matrix((np.maximum(self.e_len[ks], 1e-6), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, labels = connected_components(self.graph_time, directed=True, connection="strong")
        if n:
            main = np.bincount(labels).argmax()
            self.snap_nodes = np.flatnonzero(labels == main)
        else:
            self.snap_nodes = np.array([], dtype=np.int64)
        xy = np.column_stack(self._to_metric.transform(node_lonlat[:, 0], node_lonlat[:, 1])) if n else np.zeros((0, 2))
        self._tree = cKDTree(xy[self.snap_nodes]) if n else None

    # --- snapping -------------------------------------------------------------------------------------
    def snap(self, points: list[tuple[float, float]] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest routable node index for each (lon, lat), and the snap distance in metres."""
        if self._tree is None:
            raise NoRouteError("the road network is empty: import one first (manage.py import_osm)")
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        x, y = self._to_metric.transform(pts[:, 0], pts[:, 1])
        dist, idx = self._tree.query(np.column_stack([x, y]))
        return self.snap_nodes[idx], dist

    # --- queries ---------------------------------------------------------------------------------------
    def matrix(self, points, *, sources=None, chunk_bytes: int = MATRIX_CHUNK_BYTES, bounded: bool = True,
               stats: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Travel time (s) and distance (m, along the fastest path) between the snapped points: rows are
        `sources` (the points themselves by default), columns the points. See `node_matrix`."""
        nodes, _ = self.snap(points)
        src_nodes = nodes if sources is None else self.snap(sources)[0]
        return self.node_matrix(sources=src_nodes, targets=nodes, chunk_bytes=chunk_bytes, bounded=bounded,
                                stats=stats)

    def node_matrix(self, *, sources, targets, chunk_bytes: int = MATRIX_CHUNK_BYTES, bounded: bool = True,
                    stats: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Travel time (s) and distance (m, along the fastest path) from each source node to each target node,
        inf where no open road connects them. Exact: the times of one full Dijkstra per source.

        One Dijkstra per distinct source, bounded by time (scipy's `limit`): a few hubs among the targets
        give every pair an upper bound (`_pair_bounds`), and a source's search stops past its largest bound
        to a target, so a district's bin searches about its district, not the whole city; what a bounded
        search reaches is settled exactly. The few far targets (a depot or transfer station across the city,
        `_far_targets`) would raise every source's bound to the city's size: their columns come from one
        search each on the reversed graph instead. Distances are accumulated down each shortest-path tree
        over the nodes it reached (`_tree_lengths`). Sources go in chunks of about `chunk_bytes` of
        working arrays, keeping only the targets' columns: a Dijkstra's arrays span every junction (2,000
        sources on a 126,000-junction city would hold 12 GB at once).

        `bounded=False` searches the whole graph from every source (the benchmark's reference). `stats`,
        when given, receives the hubs, the far targets, the mean nodes reached per source and `reruns`: the
        sources searched again without a bound because a pair was left unreached (the safety net; the
        bounds make it never happen)."""
        uniq_s, inv_s = np.unique(np.asarray(sources, dtype=np.int64), return_inverse=True)
        uniq_t, inv_t = np.unique(np.asarray(targets, dtype=np.int64), return_inverse=True)
        out = (np.full((len(uniq_s), len(uniq_t)), np.inf), np.full((len(uniq_s), len(uniq_t)), np.inf))
        # Below a few sources per hub the hubs' own searches would cost more than the bounds save.
        bounds = self._pair_bounds(uniq_s, uniq_t) if bounded and len(uniq_s) > 4 * MATRIX_HUBS else None
        far = np.zeros(len(uniq_t), dtype=bool) if bounds is None else self._far_targets(bounds)
        limits = np.full(len(uniq_s), np.inf) if bounds is None else _limit(bounds.pair[:, ~far], axis=1)
        near = np.flatnonzero(~far)
        step = max(1, int(chunk_bytes // (_MATRIX_BYTES_PER_CELL * max(len(self.node_ids), 1))))
        rows = np.arange(len(uniq_s))
        reached = self._forward_columns(uniq_s, limits, uniq_t[near], rows=rows, cols=near, out=out, step=step)
        for c in np.flatnonzero(far):
            reached += self._reverse_column(uniq_s, uniq_t[c], _limit(bounds.pair[:, c], axis=0), col=c, out=out)
        missed = np.array([], dtype=np.int64)
        if bounds is not None:
            missed = np.flatnonzero((np.isinf(out[0][:, near]) & np.isfinite(bounds.pair[:, near])).any(axis=1))
            reached += self._forward_columns(uniq_s[missed], np.full(len(missed), np.inf), uniq_t[near],
                                             rows=missed, cols=near, out=out, step=step)
        if stats is not None:
            stats.update(hubs=0 if bounds is None else bounds.hubs, far_targets=int(far.sum()),
                         reruns=len(missed), reached_per_source=reached / max(len(uniq_s), 1))
        return out[0][inv_s][:, inv_t], out[1][inv_s][:, inv_t]

    def _pair_bounds(self, sources: np.ndarray, targets: np.ndarray) -> "_Bounds | None":
        """An upper bound of every (source, target) time through a few hubs: d(s, t) <= d(s, h) + d(h, t).

        The hubs are targets of the network's main strongly connected component (each reaches, and is
        reached from, every snapped point): the one nearest the targets' median position, then each time the
        target farthest (round trip) from the hubs so far, among the 95 % nearest the first hub so that an
        outlying depot does not take a hub. One forward and one reverse Dijkstra per hub."""
        cand = targets[np.isin(targets, self.snap_nodes)]
        if not len(cand):
            return None
        lonlat = self.node_lonlat[cand]
        centre = np.median(lonlat, axis=0)
        scale = np.array([np.cos(np.radians(centre[1])), 1.0])
        hub = cand[np.argmin((((lonlat - centre) * scale) ** 2).sum(axis=1))]
        fwd, rev, spread, eligible = [], [], np.full(len(cand), np.inf), None
        for _ in range(min(MATRIX_HUBS, len(cand))):
            fwd.append(dijkstra(self.graph_time, directed=True, indices=hub))
            rev.append(dijkstra(self._graph_time_rev, directed=True, indices=hub))
            trip = fwd[-1][cand] + rev[-1][cand]
            spread = np.minimum(spread, trip)
            if eligible is None:
                eligible = trip <= np.quantile(trip, 0.95)
            if not (spread[eligible] > 0).any():
                break
            hub = cand[np.argmax(np.where(eligible, spread, -1.0))]
        pair = np.full((len(sources), len(targets)), np.inf)
        for f, r in zip(fwd, rev):
            np.minimum(pair, r[sources][:, None] + f[targets][None, :], out=pair)
        return _Bounds(pair=pair, ball=np.sort(fwd[0]), hubs=len(fwd))

    def _far_targets(self, bounds: "_Bounds") -> np.ndarray:
        """The targets (a mask) whose columns are searched backwards, one reverse Dijkstra each.

        Candidates are the `MATRIX_FAR_MAX` targets with the largest median bound from the sources (the
        depot and transfer station of a district in the city's corner). The j farthest of them are made far
        for the j that minimises the estimated work: the nodes all sources' bounded searches reach plus
        those of the j reverse searches, a search of limit r reaching about as many nodes as lie within r of
        the first hub."""
        pair = bounds.pair
        typical = np.median(pair, axis=0)
        cand = np.argsort(-typical, kind="stable")[:MATRIX_FAR_MAX]
        rest = np.ones(pair.shape[1], dtype=bool)
        rest[cand] = False
        limits = _limit(pair[:, rest], axis=1)
        column_cost = np.array([bounds.reach(_limit(pair[:, c], axis=0)) for c in cand])
        cost = np.empty(len(cand) + 1)
        for j in range(len(cand), -1, -1):  # j: the j farthest candidates are far
            cost[j] = bounds.reach(limits).sum() + column_cost[:j].sum()
            if j:
                limits = np.maximum(limits, _limit(pair[:, cand[j - 1]][:, None], axis=1))
        far = np.zeros(pair.shape[1], dtype=bool)
        far[cand[:int(np.argmin(cost))]] = True
        return far

    def _forward_columns(self, sources, limits, targets, *, rows, cols, out, step: int) -> int:
        """Fill `out` (times, lengths) at `rows` x `cols` by searches from `sources` with their `limits`.

        scipy takes one limit per call: sources go sorted by limit, a few per call (at most `step`, the
        memory bound), each call at its largest. Returns the nodes the searches reached."""
        order = np.argsort(limits, kind="stable")
        size = min(step, _LIMIT_GROUP) if np.isfinite(limits).any() else step
        reached = 0
        for i in range(0, len(order), size):
            g = order[i:i + size]
            t, pred = dijkstra(self.graph_time, directed=True, indices=sources[g], return_predecessors=True,
                               limit=limits[g].max())
            at = np.ix_(rows[g], cols)
            out[0][at] = t[:, targets]
            out[1][at] = self._tree_lengths(pred, roots=sources[g], targets=targets, edges=self._edges_into)
            reached += int((pred >= 0).sum())
        return reached

    def _reverse_column(self, sources, target, limit: float, *, col: int, out) -> int:
        """Fill column `col` of `out` (times, lengths) from `sources` to `target`: one Dijkstra from the target
        on the reversed graph, the metres accumulated down its tree along the forward edges."""
        t, pred = dijkstra(self._graph_time_rev, directed=True, indices=[target], return_predecessors=True,
                           limit=limit)
        out[0][:, col] = t[0, sources]
        out[1][:, col] = self._tree_lengths(pred, roots=[target], targets=sources, edges=self._edges_out)[0]
        return int((pred >= 0).sum())

    def _tree_lengths(self, pred: np.ndarray, *, roots, targets: np.ndarray, edges) -> np.ndarray:
        """Length (m) from each tree's root to `targets` along the shortest-path trees in `pred` (inf where
        a tree did not reach): `edges` (an `_edge_table`) holds, per node, the edges a tree can enter it by.

        Tree by tree over the nodes it reached (a bounded tree costs what it reached, not the city): each
        node's own edge is picked among its few edges in (`_edge_lengths`), then pointer doubling: each step
        adds the parent's accumulated length and jumps to the grandparent, so a tree of depth d takes log2(d)
        passes of plain 1-D gathers."""
        out = np.full((len(pred), len(targets)), np.inf)
        local = np.empty(pred.shape[1], dtype=np.int64)  # a node's place in the current tree (reached only)
        for r, row in enumerate(pred):
            reached = np.flatnonzero(row >= 0)
            tree = np.append(reached, roots[r])  # the root last: its predecessor is -9999 like the unreached
            local[tree] = np.arange(len(tree))
            parent = np.append(local[row[reached]], len(reached))
            length = np.append(_edge_lengths(edges, nodes=reached, ends=row[reached]), 0.0)
            while True:
                grand = parent[parent]
                length = length + length[parent]
                if np.array_equal(grand, parent):
                    break
                parent = grand
            hit = (row[targets] >= 0) | (targets == roots[r])
            out[r, hit] = length[local[targets[hit]]]
        return out

    @cached_property
    def _graph_time_rev(self) -> csr_matrix:
        """The time graph with every edge turned round: a search on it finds the times from every node."""
        return self.graph_time.T.tocsr()

    @cached_property
    def _edges_into(self) -> tuple[np.ndarray, np.ndarray]:
        """The edges into each node, by their tails (a forward tree enters a node by one of them)."""
        return _edge_table(self.graph_len.tocsc())

    @cached_property
    def _edges_out(self) -> tuple[np.ndarray, np.ndarray]:
        """The edges out of each node, by their heads (a tree on the reversed graph enters by one of them)."""
        return _edge_table(self.graph_len)

    def path(self, origin: tuple[float, float], destination: tuple[float, float]) -> Path:
        """The fastest path between two (lon, lat) points, with its segments and geometry."""
        (a, b), _ = self.snap([origin, destination])
        times, pred = dijkstra(self.graph_time, directed=True, indices=[a], return_predecessors=True)
        if not np.isfinite(times[0, b]):
            raise NoRouteError("no open road connects these points")
        seq = [b]
        while seq[-1] != a:
            seq.append(pred[0, seq[-1]])
        seq.reverse()
        seg_ids, coords, length, time_s = [], [], 0.0, 0.0
        for u, v in zip(seq[:-1], seq[1:]):
            k = self.edge_at[(int(u), int(v))]
            seg_ids.append(int(self.e_seg[k]))
            length += float(self.e_len[k])
            time_s += float(self.e_time[k])
            c = self.seg_coords[int(self.e_seg[k])]
            c = c[::-1] if self.e_reversed[k] else c
            coords.extend(c if not coords else c[1:])
        if not coords:
            coords = [tuple(self.node_lonlat[a]), tuple(self.node_lonlat[a])]
        return Path([int(self.node_ids[i]) for i in seq], seg_ids, length, time_s, coords)


@dataclass
class _Bounds:
    """Upper bounds of a matrix's pair times through hubs, and the first hub's sorted times to every node."""

    pair: np.ndarray
    ball: np.ndarray
    hubs: int

    def reach(self, limit):
        """About how many nodes a search bounded at `limit` settles: those within it of the first hub."""
        return np.searchsorted(self.ball, limit, side="right")


def _limit(bound: np.ndarray, *, axis: int):
    """A search limit that reaches every bound in `bound` along `axis` (0 where there is none): the bounds
    are sums of other searches' times, so a hair above them absorbs the rounding of a different sum order."""
    return bound.max(axis=axis, initial=0.0) * (1 + 1e-9) + 1e-9


def _edge_table(graph) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a compressed graph, the other ends of its edges (padded with -1) and their lengths: a
    node's few edges side by side, so that finding one is a row gather and a compare."""
    n = graph.shape[0]
    degree = np.diff(graph.indptr)
    row = np.repeat(np.arange(n), degree)
    slot = np.arange(graph.nnz) - graph.indptr[row]
    ends = np.full((n, int(degree.max(initial=0))), -1, dtype=graph.indices.dtype)
    lengths = np.zeros(ends.shape)
    ends[row, slot], lengths[row, slot] = graph.indices, graph.data
    return ends, lengths


def _edge_lengths(table: tuple[np.ndarray, np.ndarray], *, nodes: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The length of the edge between nodes[i] and ends[i], looked up in `nodes`' rows of `_edge_table`."""
    others, lengths = table
    slot = (others[nodes] == ends[:, None]).argmax(axis=1)
    return lengths[nodes, slot]


class SegmentCoords(Mapping):
    """Each segment's (lon, lat) vertices by segment id, kept as one flat array with each segment's offset.
    Why not a dict of lists: at 250,000 segments building the tuples through GEOS took 6 s of a 16 s cold
    graph build, and the lists were most of the graph's memory; a route asks for a few dozen segments."""

    def __init__(self, *, seg_ids: np.ndarray, coords: np.ndarray, starts: np.ndarray):
        self._ids, self._coords, self._starts = seg_ids, coords, starts  # seg_ids ascending

    def __getitem__(self, seg_id: int) -> list[tuple[float, float]]:
        i = int(np.searchsorted(self._ids, seg_id))
        if i >= len(self._ids) or self._ids[i] != seg_id:
            raise KeyError(seg_id)
        return [tuple(p) for p in self._coords[self._starts[i]:self._starts[i + 1]].tolist()]

    def __iter__(self):
        return iter(self._ids.tolist())

    def __len__(self) -> int:
        return len(self._ids)


def _base_arrays(version: int) -> dict:
    key = ("base", version)
    if key in _cache:
        return _cache[key]
    base = {**_nodes_read(), **_segments_read()}
    index = np.searchsorted(base["node_ids"], np.concatenate([base["seg_src"], base["seg_dst"]]))
    base["seg_src"], base["seg_dst"] = np.split(index, 2)  # node ids to row numbers (node_ids ascending)
    _cache[key] = base
    return base


def _nodes_read() -> dict:
    """Node ids (ascending) and their lon/lat, read as plain numbers: a GEOS object per row cost seconds."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, ST_X(geom), ST_Y(geom) FROM {RoadNode._meta.db_table} ORDER BY id")
        rows = np.array(cursor.fetchall(), dtype=float).reshape(-1, 3)
    return {"node_ids": rows[:, 0].astype(np.int64), "node_lonlat": rows[:, 1:3].copy()}


def _segments_read() -> dict:
    """Segments (ascending id) with their end nodes' ids, length, travel time and vertices (WKB decoded
    by shapely in one vectorised call)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, source_id, target_id, length_m, speed_kph, oneway, ST_AsBinary(geom) "
            f"FROM {RoadSegment._meta.db_table} ORDER BY id"
        )
        rows = cursor.fetchall()
    seg_ids = np.array([r[0] for r in rows], dtype=np.int64)
    length = np.array([r[3] for r in rows], dtype=float)
    speed = np.array([r[4] for r in rows], dtype=float)
    geoms = shapely.from_wkb(np.array([bytes(r[6]) for r in rows], dtype=object))
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    starts = np.searchsorted(owner, np.arange(len(rows) + 1))
    return {
        "seg_ids": seg_ids,
        "seg_src": np.array([r[1] for r in rows], dtype=np.int64),
        "seg_dst": np.array([r[2] for r in rows], dtype=np.int64),
        "seg_len": length,
        "seg_time": length / (speed / 3.6),
        "seg_oneway": np.array([r[5] for r in rows], dtype=bool),
        "seg_coords": SegmentCoords(seg_ids=seg_ids, coords=coords, starts=starts),
    }


def closed_segment_ids(*, at: datetime | None = None) -> frozenset[int]:
    """Segments closed at `at` (now by default): linked to an active closure."""
    ids = RoadClosure.objects.active(at).values_list("segments__id", flat=True)
    return frozenset(i for i in ids if i is not None)


def road_network(*, at: datetime | None = None, honour_closures: bool = True) -> RoadNetwork:
    """The city's road network as it is at `at` (closures applied), cached per process."""
    profile = CityProfile.objects.first()
    version = profile.network_version if profile else 0
    closed = closed_segment_ids(at=at) if honour_closures else frozenset()
    key = (version, closed)
    with _lock:
        net = _cache.get(key)
        if net is None:
            base = _base_arrays(version)
            srid = profile.metric_srid if profile else settings.CITY_METRIC_SRID
            net = RoadNetwork(**base, metric_srid=srid, closed=closed)
            # Keep a handful of closure variants; drop everything of older network versions.
            for k in [k for k in _cache if k[0] not in ("base", version) or (k[0] == "base" and k[1] != version)]:
                _cache.pop(k, None)
            _cache[key] = net
        return net


def network_cache_clear() -> None:
    with _lock:
        _cache.clear()
