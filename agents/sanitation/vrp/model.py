"""Turn an `Instance` into PyVRP data, modelling on top of PyVRP what it lacks.

PyVRP 0.14 solves capacitated, time-windowed, multi-depot, heterogeneous-fleet problems with optional
(prize) clients and multi-trip routes (`reload_depots`) natively. Three rules of waste collection are
not in it; this module encodes each so that PyVRP's own feasibility implies ours, and the independent
checker (`check.plan_check`) confirms every plan afterwards.

**Disposal sites** are PyVRP reload depots with the unload time as their service duration and the opening
hours as their time window, so a full truck empties mid-day and starts a new trip with a fresh capacity.

**Unload before returning to the depot.** Each vehicle type that must unload ends its route at a
*virtual end depot* (a copy of its home depot with its own location). The only ways in are: from a
disposal site (the plain site-to-depot leg), or from a client along a composite edge "client -> best
disposal site -> depot" whose objective is the two legs and whose duration adds the unload time. A
route can therefore never drive loaded from a client to the depot. The decoder writes the chosen site
back into the plan as the final stop. (The composite edge does not see that site's opening hours; the
checker does.)

**Daily cap across trips.** PyVRP resets the load at every reload, so no load dimension can carry a
whole day. We carry it on the *distance* dimension instead: every edge into client j costs
``BIG * w_j + objective(i, j)`` where w_j is the capped load dimension and BIG exceeds any feasible
route's objective sum, and the vehicle type's ``max_distance`` is ``BIG * cap + BIG - 1``. For a route
without time warp the objective part stays below BIG, so max_distance holds exactly when the day's load
is within the cap. The added ``BIG * w_j`` sums to a constant over all required clients; for optional
clients we add the same amount to the prize so skipping one is neither rewarded nor punished. Because
these inflated distances would mislead PyVRP's granular neighbourhoods, neighbours are computed from the
plain objective matrix (our `solve` wires that in). Without a cap, a binding daily stop limit is carried
the same way with w_j = 1. The objective is therefore always on PyVRP's distance dimension (unit distance
cost 1): the distance matrix, or travel time when `objective == "duration"`, plus the vehicle type's
`unit_duration_cost` per unit of route duration (0 unless the caller prices the truck's time, as the city
does; PyVRP lets a route start late, so a wait before the first stop is not charged). It is a whole
number: scaling every cost to price time in fractions drove PyVRP's penalties to their bounds.

**Lunch break** (a break of D that must start in [a, b]). PyVRP has no breaks, so we solve in a
*compressed clock*: the break is taken at a (or as soon as the service in progress at a ends), so every
activity that starts at or after a really starts D later. A window [e, l] on a service start becomes
[e', l'] with e' = e if e <= a else max(a, e - D) and l' = l if l < a else max(a - 1, l - D), which is
exact for starts before and after a. Vehicle shift ends, depot and site hours and release times are
mapped the same way and the shift duration shrinks by D. A plan feasible in compressed time is feasible
with the break inserted, provided no single service runs longer than b - a (the checker verifies the
break fits). All vehicle types that have a break must share it; types without one are modelled as if
they had it, which is conservative. Windows that fall entirely inside [a, a + D) cannot be expressed and
are left to the checker.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pyvrp import Client as PClient
from pyvrp import Depot as PDepot
from pyvrp import Location, ProblemData
from pyvrp import VehicleType as PVehicleType
from pyvrp.constants import MAX_VALUE

from agents.sanitation.vrp.instance import HORIZON, Instance, InstanceError, LunchBreak, NodeId

_MISSING = MAX_VALUE  # an edge PyVRP must never take
_INT_MAX = np.iinfo(np.int64).max


@dataclass
class PyvrpModel:
    """PyVRP data for an instance, and what the decoder needs to map a solution back."""

    data: ProblemData
    neighbour_data: ProblemData | None
    depot_nodes: list[NodeId | None]
    """PyVRP depot index -> node id (None for a virtual end depot)."""
    final_site: dict[tuple[int, int], int] = field(default_factory=dict)
    """(vehicle type, client position) -> disposal-site position used by the composite end edge."""
    lunch: LunchBreak | None = None
    carrier: str | None = None
    """'daily_cap', 'max_stops' or None: what the distance dimension carries besides the objective."""


def instance_model(*, instance: Instance) -> PyvrpModel:
    """Build the PyVRP `ProblemData` for an instance (see the module docstring for the encoding)."""
    lunch = _shared_lunch(instance)
    shift = _Clock(lunch)
    n_dep, n_site = len(instance.depots), len(instance.disposal_sites)
    ends = [t for t, vt in enumerate(instance.vehicle_types) if vt.unload_sites]

    # PyVRP locations, one per site: depots, disposal sites, virtual end depots, clients.
    site_loc = (
        [d.loc for d in instance.depots]
        + [s.loc for s in instance.disposal_sites]
        + [instance.depots[instance.vehicle_types[t].end].loc for t in ends]
        + [c.loc for c in instance.clients]
    )
    site_loc = np.asarray(site_loc, dtype=np.int64)
    first_client = n_dep + n_site + len(ends)
    obj = instance.objective_matrix[np.ix_(site_loc, site_loc)].copy()
    dur = instance.duration[np.ix_(site_loc, site_loc)].copy()

    final_site: dict[tuple[int, int], int] = {}
    for k, t in enumerate(ends):
        _virtual_end(instance, t, n_dep + n_site + k, first_client, obj, dur, final_site)

    carrier, weights, caps = _carrier(instance)
    dist = obj.copy()
    big = 0
    if carrier is not None:
        big = _big(instance, obj, shift)
        if big * max(int(weights.sum()), 1) >= MAX_VALUE:
            raise InstanceError(
                f"cannot model the daily {carrier} limit: loads x route length overflow PyVRP's "
                "integer range; rescale the load units"
            )
        dist[:, first_client:] += big * weights[None, :]
        np.fill_diagonal(dist, 0)
        dist[dist >= _MISSING] = _MISSING

    coords = instance.coords
    locations = [
        Location(
            x=float(coords[loc][0]) if coords is not None else 0.0,
            y=float(coords[loc][1]) if coords is not None else 0.0,
        )
        for loc in site_loc
    ]
    depots = (
        [
            PDepot(
                location=i,
                tw_early=shift.early(d.tw_early),
                tw_late=shift.late(d.tw_late),
                service_duration=d.service,
                name=str(d.id),
            )
            for i, d in enumerate(instance.depots)
        ]
        + [
            PDepot(
                location=n_dep + i,
                tw_early=shift.early(s.tw_early),
                tw_late=shift.late(s.tw_late),
                service_duration=s.service,
                name=str(s.id),
            )
            for i, s in enumerate(instance.disposal_sites)
        ]
        + [
            PDepot(
                location=n_dep + n_site + k,
                tw_early=0,
                tw_late=shift.late(instance.depots[instance.vehicle_types[t].end].tw_late),
                name=f"end:{instance.vehicle_types[t].name}",
            )
            for k, t in enumerate(ends)
        ]
    )
    clients = [
        PClient(
            location=first_client + j,
            delivery=list(c.demand),
            service_duration=c.service,
            tw_early=shift.early(c.tw_early),
            tw_late=max(shift.early(c.tw_early), shift.late(c.tw_late)),
            release_time=shift.early(c.release),
            prize=c.prize + (big * int(weights[j]) if carrier is not None and not c.required else 0),
            required=c.required,
            name=str(c.id),
        )
        for j, c in enumerate(instance.clients)
    ]

    vehicle_types = []
    for t, vt in enumerate(instance.vehicle_types):
        start, end = instance.depots[vt.depot], instance.depots[vt.end]
        tw_early = shift.early(max(vt.tw_early, start.tw_early))
        tw_late = max(tw_early, shift.late(min(vt.tw_late, end.tw_late)))
        shift_duration = _INT_MAX
        if vt.shift_duration is not None:
            shift_duration = max(0, vt.shift_duration - (lunch.duration if lunch else 0))
        max_distance = _INT_MAX
        if caps[t] is not None:
            max_distance = big * caps[t] + big - 1
        vehicle_types.append(
            PVehicleType(
                num_available=vt.count,
                capacity=list(vt.capacity),
                start_depot=vt.depot,
                end_depot=n_dep + n_site + ends.index(t) if t in ends else vt.end,
                fixed_cost=vt.fixed_cost,
                initial_load=list(vt.initial_load),
                tw_early=tw_early,
                tw_late=tw_late,
                shift_duration=shift_duration,
                max_distance=max_distance,
                unit_distance_cost=1,
                unit_duration_cost=vt.unit_duration_cost,
                reload_depots=list(vt.reload_depots) + [n_dep + s for s in vt.unload_sites],
                name=vt.name,
            )
        )

    data = ProblemData(
        locations=locations,
        clients=clients,
        depots=depots,
        vehicle_types=vehicle_types,
        distance_matrices=[dist],
        duration_matrices=[dur],
    )
    neighbour_data = data.replace(distance_matrices=[obj]) if carrier is not None else None
    depot_nodes: list[NodeId | None] = (
        [d.id for d in instance.depots] + [s.id for s in instance.disposal_sites] + [None] * len(ends)
    )
    return PyvrpModel(
        data=data,
        neighbour_data=neighbour_data,
        depot_nodes=depot_nodes,
        final_site=final_site,
        lunch=lunch,
        carrier=carrier,
    )


class _Clock:
    """Maps real clock bounds to the compressed clock that hides one lunch break (module docstring)."""

    def __init__(self, lunch: LunchBreak | None):
        self.lunch = lunch

    def early(self, value: int) -> int:
        if self.lunch is None or value <= self.lunch.earliest:
            return value
        return max(self.lunch.earliest, value - self.lunch.duration)

    def late(self, value: int) -> int:
        if self.lunch is None or value < self.lunch.earliest or value >= HORIZON:
            return value
        return max(self.lunch.earliest - 1, value - self.lunch.duration)


def _shared_lunch(instance: Instance) -> LunchBreak | None:
    lunches = {vt.lunch for vt in instance.vehicle_types if vt.lunch is not None}
    if len(lunches) > 1:
        raise InstanceError(
            "vehicle types with different lunch breaks cannot be modelled together; "
            "give them the same break window"
        )
    return lunches.pop() if lunches else None


def _virtual_end(
    instance: Instance,
    t: int,
    end_idx: int,
    first_client: int,
    obj: np.ndarray,
    dur: np.ndarray,
    final_site: dict[tuple[int, int], int],
) -> None:
    """Fill the edges into vehicle type t's virtual end depot (module docstring)."""
    vt = instance.vehicle_types[t]
    n_dep = len(instance.depots)
    home = vt.end  # the end depot's row in the expanded matrices (depots come first)
    sites = [n_dep + s for s in vt.unload_sites]
    obj[:, end_idx] = _MISSING
    dur[:, end_idx] = _MISSING
    obj[end_idx, :] = _MISSING
    dur[end_idx, :] = _MISSING
    obj[end_idx, end_idx] = dur[end_idx, end_idx] = 0
    obj[vt.depot, end_idx] = dur[vt.depot, end_idx] = 0  # an unused truck's empty route
    for row in sites:
        obj[row, end_idx] = obj[row, home]
        dur[row, end_idx] = dur[row, home]
    services = np.array([instance.disposal_sites[s].service for s in vt.unload_sites])
    via_obj = obj[first_client:, sites] + obj[sites, home][None, :]
    best = via_obj.argmin(axis=1)
    rows = np.arange(via_obj.shape[0])
    obj[first_client:, end_idx] = via_obj[rows, best]
    dur[first_client:, end_idx] = (
        dur[first_client:, sites][rows, best] + services[best] + dur[np.array(sites)[best], home]
    )
    for j, b in enumerate(best):
        final_site[(t, j)] = vt.unload_sites[int(b)]


def _carrier(instance: Instance) -> tuple[str | None, np.ndarray, list[int | None]]:
    """What the distance dimension carries: per-client weights and per-type caps in those weights."""
    n = len(instance.clients)
    capped = [vt for vt in instance.vehicle_types if vt.daily_cap is not None]
    if capped:
        dim = capped[0].daily_cap_dim
        if any(vt.daily_cap_dim != dim for vt in capped):
            raise InstanceError("daily caps on different load dimensions cannot be modelled together")
        weights = np.array([c.demand[dim] for c in instance.clients], dtype=np.int64)
        return "daily_cap", weights, [vt.daily_cap for vt in instance.vehicle_types]
    if any(vt.max_stops is not None and vt.max_stops < n for vt in instance.vehicle_types):
        return "max_stops", np.ones(n, dtype=np.int64), [vt.max_stops for vt in instance.vehicle_types]
    return None, np.zeros(n, dtype=np.int64), [None] * len(instance.vehicle_types)


def _big(instance: Instance, obj: np.ndarray, shift: _Clock) -> int:
    """A bound above any feasible route's objective sum (module docstring), plus one."""
    finite = np.where(obj >= _MISSING, 0, obj)
    n_clients = len(instance.clients)
    # A route visits each client at most once and makes at most one reload per client, plus the two ends.
    bound = int(finite.max(initial=0)) * (2 * n_clients + 2)
    if instance.objective == "duration":
        # Travel time fits inside the (compressed) shift when the route has no time warp.
        spans = [
            shift.late(min(vt.tw_late, instance.depots[vt.end].tw_late))
            - shift.early(max(vt.tw_early, instance.depots[vt.depot].tw_early))
            for vt in instance.vehicle_types
        ]
        if all(s < HORIZON // 2 for s in spans):
            bound = min(bound, max(spans))
    return max(bound, 1) + 1
