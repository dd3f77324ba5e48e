"""The road-network service: shortest paths and travel-time matrices on the city's drivable roads, honouring
active closures. A compressed sparse graph (scipy.sparse.csgraph) is built once per process and network
version; closures only mask edges, so a new closure does not rebuild the base graph.

Points are snapped to the nearest node of the largest strongly connected component, so every snapped pair
has a route (a dead-end service road fragment would otherwise make a matrix entry infinite)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from django.conf import settings
from pyproj import Transformer
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree
from shapely.geometry import LineString

from .models import CityProfile, RoadClosure, RoadNode, RoadSegment

_lock = threading.Lock()
MATRIX_CHUNK_BYTES = 512 * 2**20
# times, predecessors and the pointer-doubling arrays of `_tree_lengths`, per source and junction
_MATRIX_BYTES_PER_CELL = 48
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
    def matrix(self, points, *, sources=None, chunk_bytes: int = MATRIX_CHUNK_BYTES) -> tuple[np.ndarray, np.ndarray]:
        """Travel time (s) and distance (m, along the fastest path) between all snapped points.

        One Dijkstra per distinct source node; distances are accumulated down each shortest-path tree.
        Sources go in chunks of about `chunk_bytes` of working arrays, keeping only the points' columns:
        a Dijkstra's arrays span every junction (2,000 sources on a 126,000-junction city would hold
        12 GB at once; in chunks the peak is the chunk plus the points x points result)."""
        nodes, _ = self.snap(points)
        src_nodes = nodes if sources is None else self.snap(sources)[0]
        uniq, inverse = np.unique(src_nodes, return_inverse=True)
        step = max(1, int(chunk_bytes // (_MATRIX_BYTES_PER_CELL * max(len(self.node_ids), 1))))
        times = np.empty((len(uniq), len(nodes)))
        lengths = np.empty((len(uniq), len(nodes)))
        for i in range(0, len(uniq), step):
            t, pred = dijkstra(self.graph_time, directed=True, indices=uniq[i:i + step], return_predecessors=True)
            m = self._tree_lengths(pred)
            m[~np.isfinite(t)] = np.inf
            times[i:i + step], lengths[i:i + step] = t[:, nodes], m[:, nodes]
        return times[inverse], lengths[inverse]

    def _tree_lengths(self, pred: np.ndarray) -> np.ndarray:
        """Length (m) from each tree's root to every node along the shortest-path trees in `pred`.

        Each node's own edge (from its predecessor) is picked among the few edges into it (the length graph
        by column: a node's in-degree of passes, no search). Then, tree by tree, pointer doubling: each
        step adds the parent's accumulated length and jumps to the grandparent, so a tree of depth d takes
        log2(d) passes. One tree at a time keeps each pass on one row (a megabyte that stays in the cache,
        plain 1-D gathers); the whole chunk at once spent more time building fancy indices than adding."""
        s, n = pred.shape
        own = self._edge_into(pred)
        out = np.empty((s, n))
        nodes = np.arange(n, dtype=pred.dtype)
        for r in range(s):
            parent = np.where(pred[r] < 0, nodes, pred[r])
            length = own[r]
            while True:
                grand = parent[parent]
                length = length + length[parent]
                if np.array_equal(grand, parent):
                    break
                parent = grand
            out[r] = length
        return out

    def _edge_into(self, pred: np.ndarray) -> np.ndarray:
        """The length of each node's edge from its predecessor in `pred` (0 at the roots and unreached)."""
        if getattr(self, "_len_csc", None) is None:  # the edges into each node, built once per network
            self._len_csc = self.graph_len.tocsc()
            self._len_csc.sort_indices()
        into = self._len_csc
        degree = np.diff(into.indptr)
        own = np.zeros(pred.shape)
        for k in range(int(degree.max(initial=0))):
            has = np.flatnonzero(degree > k)
            at = into.indptr[has] + k
            match = pred[:, has] == into.indices[at][None, :]
            own[:, has] = np.where(match, into.data[at][None, :], own[:, has])
        return own

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


def _base_arrays(version: int) -> dict:
    key = ("base", version)
    if key in _cache:
        return _cache[key]
    nodes = list(RoadNode.objects.order_by("id").values_list("id", "geom"))
    node_ids = np.array([n[0] for n in nodes], dtype=np.int64)
    node_lonlat = np.array([(n[1].x, n[1].y) for n in nodes], dtype=float).reshape(-1, 2)
    index = {nid: i for i, nid in enumerate(node_ids.tolist())}
    segs = list(RoadSegment.objects.order_by("id").values_list(
        "id", "source_id", "target_id", "length_m", "speed_kph", "oneway", "geom"))
    base = dict(
        node_ids=node_ids,
        node_lonlat=node_lonlat,
        seg_ids=np.array([s[0] for s in segs], dtype=np.int64),
        seg_src=np.array([index[s[1]] for s in segs], dtype=np.int64),
        seg_dst=np.array([index[s[2]] for s in segs], dtype=np.int64),
        seg_len=np.array([s[3] for s in segs], dtype=float),
        seg_time=np.array([s[3] / (s[4] / 3.6) for s in segs], dtype=float),
        seg_oneway=np.array([s[5] for s in segs], dtype=bool),
        seg_coords={s[0]: list(s[6].coords) for s in segs},
    )
    _cache[key] = base
    return base


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
