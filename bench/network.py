"""Road-network service benchmark: an N x N travel-time matrix on the loaded city, our service against
networkx's textbook Dijkstra on the same graph (the reference), side by side in one run.

    .venv/bin/python bench/network.py [--points 1000] [--json]
    .venv/bin/python bench/network.py --district [--side 346] [--points 2000] [--json]

Needs a loaded city (make demo, or `manage.py load_demo_city --synthetic --scale 20` for a larger one).
`--district` needs none: a sanitation district's matrix on a generated grid of side x side junctions
(fixtures/road_grid.py; 346 gives 119,716, about the scale-250 city), the points clustered in a tenth of the
city plus a depot and a transfer station in its corner, the bounded searches against full ones."""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from _django import django_setup


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--reference-sources", type=int, default=50,
                    help="networkx is slow: time this many sources and scale up")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--district", action="store_true", help="a district on a generated grid (no database)")
    ap.add_argument("--side", type=int, default=346, help="--district: junctions per side of the grid")
    args = ap.parse_args()
    django_setup()
    if args.district:
        return _print(district_matrix(side=args.side, points=args.points), as_json=args.json)
    import networkx as nx

    from city_ops.city.models import CityProfile, RoadSegment
    from city_ops.city.network import network_cache_clear, road_network

    profile = CityProfile.objects.first()
    if not RoadSegment.objects.exists():
        print("no city loaded: run `make demo` or manage.py load_demo_city first", file=sys.stderr)
        return 1
    x1, y1, x2, y2 = profile.bounds.extent
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(x1, x2, args.points), rng.uniform(y1, y2, args.points)])

    network_cache_clear()
    t0 = time.perf_counter()
    net = road_network()
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    secs, metres = net.matrix(pts)
    t_matrix = time.perf_counter() - t0

    # Reference: networkx single-source Dijkstra per source on the same directed graph and snapped nodes.
    g = nx.DiGraph()
    coo = net.graph_time.tocoo()
    g.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist()))
    nodes, _ = net.snap(pts)
    k = min(args.reference_sources, len(nodes))
    t0 = time.perf_counter()
    for s in nodes[:k]:
        nx.single_source_dijkstra_path_length(g, int(s), weight="weight")
    t_ref = (time.perf_counter() - t0) * len(nodes) / k
    ok = bool(np.isfinite(secs).all())
    out = {
        "city": profile.name, "segments": RoadSegment.objects.count(), "points": args.points,
        "graph_build_s": round(t_build, 3), "matrix_s": round(t_matrix, 3),
        "networkx_reference_s": round(t_ref, 3), "speedup_vs_networkx": round(t_ref / t_matrix, 1),
        "all_pairs_routable": ok,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['city']}: {out['segments']} segments, {args.points} x {args.points} matrix")
        print(f"  graph build            {t_build:8.3f} s")
        print(f"  city-ops matrix        {t_matrix:8.3f} s   (times and distances)")
        print(f"  networkx reference     {t_ref:8.3f} s   (times only; {k} sources timed, scaled)")
        print(f"  ratio                  {t_ref / t_matrix:8.1f} x faster")
    return 0


def district_matrix(*, side: int, points: int, seed: int = 1) -> dict:
    """The bounded matrix against full searches (`bounded=False`, the previous implementation's searches) on
    a generated grid: `points` clustered in a tenth of the city, and two far points in its corner."""
    from city_ops.city.network import RoadNetwork
    from fixtures.road_grid import road_grid_arrays

    arrays = road_grid_arrays(side=side, seed=seed)
    net = RoadNetwork(**arrays)
    lonlat = arrays["node_lonlat"]
    lo, hi = lonlat.min(axis=0), lonlat.max(axis=0)
    rng = np.random.default_rng(seed)
    corner = lo + (hi - lo) * 0.45  # the district: a square of a tenth of the area, off the centre
    cluster = corner + rng.random((points, 2)) * (hi - lo) / np.sqrt(10)
    far = lo + (hi - lo) * np.array([[0.01, 0.01], [0.01, 0.03]])  # depot and transfer station
    pts = np.vstack([cluster, far])
    nodes, _ = net.snap(pts)
    runs = {}
    for name, bounded in (("full", False), ("bounded", True)):
        stats = {}
        t0, c0 = time.perf_counter(), time.process_time()
        secs, metres = net.matrix(pts, bounded=bounded, stats=stats)
        runs[name] = (secs, metres, time.perf_counter() - t0, time.process_time() - c0, stats)
    (t_ref, m_ref, wall_ref, cpu_ref, _), (t_new, m_new, wall_new, cpu_new, stats) = runs["full"], runs["bounded"]
    return {
        "junctions": len(net.node_ids), "points": len(pts),
        "full_wall_s": round(wall_ref, 2), "full_cpu_s": round(cpu_ref, 2),
        "bounded_wall_s": round(wall_new, 2), "bounded_cpu_s": round(cpu_new, 2),
        "cpu_ratio": round(cpu_ref / cpu_new, 2), "wall_ratio": round(wall_ref / wall_new, 2),
        "max_abs_time_diff_s": float(np.abs(t_new - t_ref).max()),
        # only the far columns (summed from the target's end) may differ at all, by rounding
        "target_nodes_differing": len(np.unique(nodes[(t_new != t_ref).any(axis=0)])),
        "max_abs_metres_diff": float(np.abs(m_new - m_ref).max()),
        "far_targets": stats["far_targets"], "reruns": stats["reruns"],
        "reached_per_source": round(stats["reached_per_source"]),
    }


def _print(out: dict, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(out))
    else:
        print(f"district matrix, {out['points']} points, grid of {out['junctions']} junctions")
        for key, value in out.items():
            print(f"  {key:24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
