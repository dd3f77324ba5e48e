"""The demo agent's decision: how far apart the city's places are by road right now, closures included."""
from __future__ import annotations

import time

import numpy as np

from city_ops.city.network import road_network


def place_matrix_compute(*, points: list[tuple[str, float, float]]) -> dict:
    """Travel-time matrix between named places on the open network, with the worst pair."""
    if len(points) < 2:
        return {"pairs": 0, "mean_min": 0.0, "max_min": 0.0, "seconds": 0.0}
    start = time.perf_counter()
    net = road_network()
    secs, metres = net.matrix([(lon, lat) for _, lon, lat in points])
    finite = np.isfinite(secs) & ~np.eye(len(points), dtype=bool)
    i, j = np.unravel_index(np.where(finite, secs, -1).argmax(), secs.shape)
    return {
        "pairs": int(finite.sum()),
        "mean_min": float(secs[finite].mean() / 60) if finite.any() else 0.0,
        "max_min": float(secs[i, j] / 60),
        "farthest": [points[i][0], points[j][0]],
        "seconds": time.perf_counter() - start,
    }
