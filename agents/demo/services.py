"""The demo agent's decision: how far apart the city's places are by road right now, closures included."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from city_ops.city.network import road_network

from . import selectors


def demo_run(*, params: dict, progress: Callable[[int, int, str], None]) -> tuple[dict, dict]:
    """The demo agent's run: the network's size and the travel-time matrix between places, as
    (`selectors.network_stats()`, `place_matrix_compute(...)`). Two parameters exist for the runtime's own
    tests: `sleep_s` makes the run slow on purpose (the dead-worker test kills a worker mid-run) and
    `allocate_mb` takes that much memory at once (the worker memory-limit test)."""
    sleep_s = float(params.get("sleep_s", 0) or 0)
    if sleep_s:
        steps = max(1, int(sleep_s * 4))
        for i in range(steps):
            progress(i, steps, "sleeping (test)")
            time.sleep(sleep_s / steps)
    if allocate_mb := int(params.get("allocate_mb", 0) or 0):
        ballast = bytearray(allocate_mb * 2**20)
        del ballast
    progress(0, 2, "measuring the network")
    stats = selectors.network_stats()
    progress(1, 2, "travel-time matrix between places")
    matrix = place_matrix_compute(points=selectors.place_points())
    progress(2, 2, "done")
    return stats, matrix


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
