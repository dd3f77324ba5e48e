"""Road-network service benchmark: an N x N travel-time matrix on the loaded city, our service against
networkx's textbook Dijkstra on the same graph (the reference), side by side in one run.

    .venv/bin/python bench/network.py [--points 1000] [--json]

Needs a loaded city (make demo, or `manage.py load_demo_city --synthetic --scale 20` for a larger one)."""
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
    args = ap.parse_args()
    django_setup()
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


if __name__ == "__main__":
    sys.exit(main())
