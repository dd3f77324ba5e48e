"""The bounded travel-time matrix (`RoadNetwork.node_matrix`) against a plain full Dijkstra per source: on a
generated grid with mixed speeds and one-way streets, and on the real central-Helsinki network.

The reference walks each full shortest-path tree in time order adding each node's edge to its parent's
metres, so it shares none of the matrix's code but the graph. Times must agree to rounding (the far
columns are sums taken from the other end). Metres agree where the fastest path is unique: on equal times a
reverse tree may pick another fastest path than the forward one. The grid's lengths are jittered so that
ties do not occur, and the Helsinki extract has none between the tested points: metres agree everywhere."""
from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import dijkstra

from city_ops.city.network import MATRIX_HUBS, RoadNetwork, road_network
from fixtures.road_grid import road_grid_arrays

SIDE = 60  # 3,600 junctions


def _reference(net: RoadNetwork, sources: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Times and metres by one unbounded scipy Dijkstra per source, metres summed down the tree in time order."""
    times, pred = dijkstra(net.graph_time, directed=True, indices=sources, return_predecessors=True)
    edges = net.graph_len.tocoo()
    edge_m = dict(zip(zip(edges.row.tolist(), edges.col.tolist()), edges.data.tolist()))
    metres = np.full(times.shape, np.inf)
    for r, s in enumerate(sources):
        metres[r, s] = 0.0
        for v in np.argsort(times[r], kind="stable"):
            u = pred[r, v]
            if u >= 0:
                metres[r, v] = metres[r, u] + edge_m[(int(u), int(v))]
    return times[:, targets], metres[:, targets]


def _grid(**kw) -> RoadNetwork:
    return RoadNetwork(**road_grid_arrays(side=SIDE, seed=4), **kw)


def _district(net: RoadNetwork, *, count: int = 150, seed: int = 1) -> np.ndarray:
    """Junctions clustered in a tenth of the grid, plus a depot and a transfer station in its far corner."""
    rng = np.random.default_rng(seed)
    size = int(SIDE / np.sqrt(10))
    i, j = rng.integers(30, 30 + size, count), rng.integers(25, 25 + size, count)
    near = np.unique(i * SIDE + j)
    return np.concatenate([near, [0, 3]])


def _assert_same(got, want, *, unique_paths: bool = True):
    times, metres = got
    np.testing.assert_allclose(times, want[0], rtol=1e-12, atol=1e-9)
    assert np.array_equal(np.isinf(times), np.isinf(want[0]))
    if unique_paths:
        np.testing.assert_allclose(metres, want[1], rtol=1e-9, atol=1e-6)


def test_bounded_matrix_equals_full_dijkstra_with_far_points():
    net = _grid()
    nodes = _district(net)
    assert len(nodes) > 4 * MATRIX_HUBS, "enough sources for the bounded searches"
    stats = {}
    got = net.node_matrix(sources=nodes, targets=nodes, stats=stats)
    _assert_same(got, _reference(net, nodes, nodes))
    assert np.isfinite(got[0]).all()
    # The depot and the transfer station are searched backwards, every source is bounded and none missed.
    assert stats["hubs"] == MATRIX_HUBS and stats["far_targets"] >= 2 and stats["reruns"] == 0
    assert stats["reached_per_source"] < 0.6 * len(net.node_ids)
    # The forward columns come from the same trees as a full search, the same sums bit for bit: only the
    # far columns (summed from the target's end) may differ, by rounding.
    full = net.node_matrix(sources=nodes, targets=nodes, bounded=False)
    assert (got[0] != full[0]).any(axis=0).sum() <= stats["far_targets"]


def test_bounded_matrix_other_sources_and_chunks():
    """Rows other than the columns (the bus plan's deadhead matrix), and one or a few sources per search
    call (the memory bound), give the same matrix."""
    net = _grid()
    nodes = _district(net, seed=2)
    sources = np.concatenate([nodes[::2], [SIDE * SIDE - 1]])  # and a source in the opposite corner
    want = _reference(net, sources, nodes)
    whole = net.node_matrix(sources=sources, targets=nodes)
    _assert_same(whole, want)
    for chunk_bytes in (1, 3 * 48 * SIDE * SIDE):
        stats = {}
        got = net.node_matrix(sources=sources, targets=nodes, chunk_bytes=chunk_bytes, stats=stats)
        assert np.array_equal(got[0], whole[0]) and np.array_equal(got[1], whole[1])
        assert stats["reruns"] == 0


def test_closure_keeps_unreachable_pairs_infinite():
    """A closure cuts one junction off and a 3 x 3 block off the rest: pairs across stay inf, pairs inside the
    block are found though no hub reaches them (the hubs' bound is inf there)."""
    arrays = road_grid_arrays(side=SIDE, seed=4)
    src, dst = arrays["seg_src"], arrays["seg_dst"]
    lone = 10 * SIDE + 50
    block = np.array([r * SIDE + c for r in range(5, 8) for c in range(5, 8)])
    cut = (src == lone) | (dst == lone) | (np.isin(src, block) != np.isin(dst, block))
    net = RoadNetwork(**arrays, closed=frozenset(arrays["seg_ids"][cut].tolist()))
    nodes = np.concatenate([_district(net), [lone], block[[0, 4, 8]]])
    stats = {}
    got = net.node_matrix(sources=nodes, targets=nodes, stats=stats)
    _assert_same(got, _reference(net, nodes, nodes))
    k = len(nodes) - 4  # the lone junction's row and column
    assert np.isinf(np.delete(got[0][k], k)).all() and np.isinf(np.delete(got[0][:, k], k)).all()
    inside = got[0][-3:, -3:]
    assert np.isfinite(inside).all() and np.isinf(got[0][:k, -3:]).all()
    assert stats["reruns"] == 0


def test_helsinki_matrix_equals_full_dijkstra(demo_city):
    """300 points in the south-west of the real extract and one in its far north-east corner (a depot)."""
    net = road_network()
    rng = np.random.default_rng(11)
    pts = np.column_stack([rng.uniform(24.9355, 24.942, 300), rng.uniform(60.1645, 60.170, 300)])
    routable = net.node_lonlat[net.snap_nodes]
    pts = np.vstack([pts, routable[np.argmax(routable[:, 0] + 2 * routable[:, 1])]])
    nodes, _ = net.snap(pts)
    stats = {}
    got = net.matrix(pts, stats=stats)
    # No two fastest paths tie on this extract, so the metres agree everywhere.
    _assert_same(got, _reference(net, nodes, nodes))
    assert stats["far_targets"] >= 1 and stats["reruns"] == 0
    assert stats["reached_per_source"] < 0.8 * len(net.node_ids)
    one_by_one = net.matrix(pts, chunk_bytes=1)
    assert np.array_equal(one_by_one[0], got[0]) and np.array_equal(one_by_one[1], got[1])
