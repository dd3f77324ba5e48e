"""A district of 2,000 bins with the trucks' daily weight cap (issue 18): the cap is carried on PyVRP's distance
dimension as BIG x kilograms, and BIG used to be the longest edge times the number of legs, which times the
district's kilograms overflowed PyVRP's integer range (refused). BIG is now a day's driving, whatever the
number of bins; and a plan under the smaller BIG still keeps every truck within its cap."""
from __future__ import annotations

import numpy as np
import pytest
from pyvrp.constants import MAX_VALUE

from agents.sanitation.vrp import Client, Depot, DisposalSite, Instance, VehicleType, instance_solve
from agents.sanitation.vrp import model as vrp_model

H = 3600
SPEED = 10  # metres per second on every edge


def district(n: int, *, cap_kg: int = 6000, seed: int = 5) -> Instance:
    """n optional bins of 60 to 140 kg in a 20 km square, a depot and a transfer station, ten trucks with a
    daily cap of `cap_kg`; distances in metres, times at SPEED."""
    rng = np.random.default_rng(seed)
    xy = np.vstack([[0, 0], [20_000, 20_000], rng.uniform(0, 20_000, (n, 2))])
    metres = np.rint(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(axis=2))).astype(np.int64)
    clients = [Client(id=f"bin:{k}", loc=2 + k, demand=(800, int(rng.integers(60, 140))), service=60,
                      prize=3000, required=False) for k in range(n)]
    trucks = VehicleType(name="truck", count=10, capacity=(16_000, 3000), tw_early=6 * H, tw_late=14 * H + 1800,
                         unload_sites=(0,), daily_cap=cap_kg, daily_cap_dim=1, fixed_cost=15_000)
    return Instance(name=f"district-{n}", clients=clients, depots=[Depot(id="depot", loc=0)],
                    disposal_sites=[DisposalSite(id="site", loc=1, service=900)], vehicle_types=[trucks],
                    distance=metres, duration=np.rint(metres / SPEED).astype(np.int64), objective="distance")


def test_a_2000_bin_district_with_a_daily_cap_is_modelled_within_pyvrps_range():
    inst = district(2000)
    kilograms = sum(c.demand[1] for c in inst.clients)
    longest_edge_bound = int(inst.distance.max()) * (2 * len(inst.clients) + 2)
    assert longest_edge_bound * kilograms >= MAX_VALUE  # what the model refused before
    model = vrp_model.instance_model(instance=inst)  # no InstanceError
    assert model.carrier == "daily_cap"
    # BIG is a day's driving at the fastest pace plus the rounding of short edges per leg, not the leg bound.
    span = 8 * H + 1800
    first_client = 3  # PyVRP's locations: the depot, the site, the truck's virtual end depot, then the bins
    dist = model.data.distance_matrices()[0]
    big = int(dist[0, first_client] - inst.distance[0, 2]) // inst.clients[0].demand[1]
    assert SPEED * span <= big <= 1.01 * SPEED * span + 6 * (2 * len(inst.clients) + 2)
    assert big * kilograms < MAX_VALUE


@pytest.mark.parametrize("cap_kg", [1500, 3000])
def test_the_smaller_big_still_keeps_every_truck_within_its_daily_cap(cap_kg):
    inst = district(150, cap_kg=cap_kg)
    result = instance_solve(instance=inst, time_limit=30, seed=1, max_iterations=300)
    assert result.feasible, result.violations
    kg = {c.id: c.demand[1] for c in inst.clients}
    loads = [sum(kg.get(v, 0) for v in r.visits) for r in result.routes]
    assert loads and max(loads) <= cap_kg
    # The cap binds: the trucks together collect more than one truck's cap, each no more than its own.
    assert sum(loads) > cap_kg
