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
route's objective sum (`_big`: the shift's span at the fastest edge's pace, a day's driving whatever the
number of bins, so BIG times a 2,000-bin district's kilograms stays within PyVRP's integer range), and the vehicle type's ``max_distance`` is ``BIG * cap + BIG - 1``. For a route
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
break fits). Windows that fall entirely inside [a, a + D) cannot be expressed and are left to the checker.

**Each crew its own break.** One PyVRP problem has one clock, so trucks whose crews break at different
times are split into *lunch groups* (`lunch_groups`): the fewest groups in which every crew's window
contains one common instant. A group is modelled with one break: the common window [max earliest, min
latest] and the longest duration. That is exact for every crew in it (a break at a time each allows;
a crew with a shorter break just waits out the rest, and arriving early never breaks a rule) and
conservative: it costs something when the common window is much later than a crew's own earliest (the
compressed clock takes the break at its start), when durations differ (the shorter crews idle), and
when a service runs past the narrower window's end. Types without a break join the first group and are
modelled as if they had its break, likewise conservative. When there are several groups, each client
gets one copy per group with that group's compressed windows, at a location of its own; every group is
a routing profile in which the other groups' copies cannot be reached, and a client's copies form a
mutually exclusive `ClientGroup` (required when the client is), the pattern PyVRP's documentation uses
for access restrictions and multiple time windows. Depots and disposal sites get one copy per group for
their compressed hours. So one solve plans every crew on its own clock and still decides which crews
take which bins; the cost is a problem as many times larger as there are groups (granular neighbours
are computed within each group's copies), and a bin moves between groups only by swapping its copies,
which PyVRP's search does rarely. Hence `merged=True`: one clock that hides every group's break in turn
(a plan feasible with all breaks taken is feasible with a crew's own alone, since arriving earlier never
breaks a rule); every move applies, but each crew is modelled idle through the other groups' breaks.
`solve.instance_solve` runs the merged model, then the per-group one from its plan, and keeps the better.
The checker verifies each route against its own truck's break, not the group's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pyvrp import Client as PClient
from pyvrp import ClientGroup, Location, ProblemData
from pyvrp import Depot as PDepot
from pyvrp import VehicleType as PVehicleType
from pyvrp.constants import MAX_VALUE

from agents.sanitation.vrp.instance import HORIZON, Instance, InstanceError, LunchBreak, NodeId, VehicleType

_MISSING = MAX_VALUE  # an edge PyVRP must never take
_INT_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class LunchGroup:
    """Vehicle types (positions) whose crews' break windows overlap, and the one break the compressed clock
    models for all of them (module docstring); `lunch` is None when no type in the instance has one."""

    lunch: LunchBreak | None
    types: tuple[int, ...]


@dataclass
class PyvrpModel:
    """PyVRP data for an instance, and what the decoder needs to map a solution back."""

    data: ProblemData
    neighbour_data: ProblemData | None
    depot_nodes: list[NodeId | None]
    """PyVRP depot index -> node id (None for a virtual end depot)."""
    final_site: dict[tuple[int, int], int] = field(default_factory=dict)
    """(vehicle type, PyVRP client index) -> disposal-site position used by the composite end edge."""
    groups: list[LunchGroup] = field(default_factory=list)
    type_group: list[int] = field(default_factory=list)
    """Vehicle type -> its lunch group (the clock, profile and copies of clients and sites it uses)."""
    num_clients: int = 0
    """Clients of the instance; PyVRP client g * num_clients + j is group g's copy of client j."""
    num_fixed: int = 0
    """Depots plus disposal sites; PyVRP depot g * num_fixed + i is group g's copy of site i."""
    carrier: str | None = None
    """'daily_cap', 'max_stops' or None: what the distance dimension carries besides the objective."""

    def client_index(self, *, vehicle_type: int, client: int) -> int:
        """The PyVRP client that stands for the instance's `client` on a route of `vehicle_type`."""
        return self.type_group[vehicle_type] * self.num_clients + client

    def depot_index(self, *, vehicle_type: int, pos: int) -> int:
        """The PyVRP depot for the site at `pos` (depots first, then disposal sites) on such a route."""
        return self.type_group[vehicle_type] * self.num_fixed + pos

    def client_of(self, index: int) -> int:
        """The instance's client (position) behind a PyVRP client index."""
        return index % self.num_clients


def lunch_groups(*, vehicle_types: Sequence[VehicleType]) -> list[LunchGroup]:
    """Partition vehicle types into the fewest groups whose break windows share an instant (module
    docstring): repeatedly take the earliest closing window among those left and every window that opens
    by then (the greedy stabbing of intervals, which is optimal). Types without a break join the first."""
    left = sorted(
        (t for t, vt in enumerate(vehicle_types) if vt.lunch is not None),
        key=lambda t: (vehicle_types[t].lunch.latest, vehicle_types[t].lunch.earliest, t),
    )
    groups: list[LunchGroup] = []
    while left:
        stab = vehicle_types[left[0]].lunch.latest
        members = [t for t in left if vehicle_types[t].lunch.earliest <= stab]
        left = [t for t in left if vehicle_types[t].lunch.earliest > stab]
        lunches = [vehicle_types[t].lunch for t in members]
        common = LunchBreak(
            earliest=max(b.earliest for b in lunches), latest=stab, duration=max(b.duration for b in lunches)
        )
        groups.append(LunchGroup(lunch=common, types=tuple(sorted(members))))
    bare = tuple(t for t, vt in enumerate(vehicle_types) if vt.lunch is None)
    if not groups:
        return [LunchGroup(lunch=None, types=bare)]
    groups[0] = LunchGroup(lunch=groups[0].lunch, types=tuple(sorted(groups[0].types + bare)))
    return groups


def _clocks(groups: list[LunchGroup], n_types: int, merged: bool) -> tuple[list[_Clock], list[int]]:
    """The clock of each lunch group (one shared clock when `merged`), and each vehicle type's group."""
    type_group = [0] * n_types
    if merged:
        return [_Clock([g.lunch for g in groups if g.lunch is not None])], type_group
    for g, group in enumerate(groups):
        for t in group.types:
            type_group[t] = g
    return [_Clock([group.lunch] if group.lunch is not None else []) for group in groups], type_group


def _pyvrp_depots(instance: Instance, clocks: list[_Clock], ends: list[int], type_group: list[int]) -> list[PDepot]:
    """Each group's copies of the depots and disposal sites on its clock, then the virtual end depots."""
    n_dep, n_fixed = len(instance.depots), len(instance.depots) + len(instance.disposal_sites)
    depots = []
    for clock in clocks:
        depots += [
            PDepot(
                location=i,
                tw_early=clock.early(d.tw_early),
                tw_late=clock.late(d.tw_late),
                service_duration=d.service,
                name=str(d.id),
            )
            for i, d in enumerate(instance.depots)
        ]
        depots += [
            PDepot(
                location=n_dep + i,
                tw_early=clock.early(s.tw_early),
                tw_late=clock.late(s.tw_late),
                service_duration=s.service,
                name=str(s.id),
            )
            for i, s in enumerate(instance.disposal_sites)
        ]
    depots += [
        PDepot(
            location=n_fixed + k,
            tw_early=0,
            tw_late=clocks[type_group[t]].late(instance.depots[instance.vehicle_types[t].end].tw_late),
            name=f"end:{instance.vehicle_types[t].name}",
        )
        for k, t in enumerate(ends)
    ]
    return depots


def _pyvrp_clients(
    instance: Instance, clocks: list[_Clock], *, first_client: int, big: int, weights: np.ndarray, carrier: str | None
) -> tuple[list[PClient], list[ClientGroup]]:
    """Each group's copies of the clients on its clock (a carried limit's weight paid back as prize for an
    optional one), and with several groups the client groups that make one copy of each required."""
    n_cli, n_groups = len(instance.clients), len(clocks)
    grouped = n_groups > 1
    clients = [
        PClient(
            location=first_client + g * n_cli + j,
            delivery=list(c.demand),
            service_duration=c.service,
            tw_early=clock.early(c.tw_early),
            tw_late=max(clock.early(c.tw_early), clock.late(c.tw_late)),
            release_time=clock.early(c.release),
            prize=c.prize + (big * int(weights[j]) if carrier is not None and not c.required else 0),
            required=c.required and not grouped,  # a group's copies are optional; the group is required
            group=j if grouped else None,
            name=str(c.id),
        )
        for g, clock in enumerate(clocks)
        for j, c in enumerate(instance.clients)
    ]
    client_groups = []
    if grouped:
        client_groups = [
            ClientGroup([g * n_cli + j for g in range(n_groups)], required=c.required, name=str(c.id))
            for j, c in enumerate(instance.clients)
        ]
    return clients, client_groups


def _pyvrp_vehicle_types(
    instance: Instance,
    clocks: list[_Clock],
    type_group: list[int],
    *,
    ends: list[int],
    big: int,
    caps: list[int | None],
) -> list[PVehicleType]:
    """Each vehicle type on its group's clock and profile, its daily limit carried as distance."""
    n_dep, n_fixed, n_groups = len(instance.depots), len(instance.depots) + len(instance.disposal_sites), len(clocks)
    vehicle_types = []
    for t, vt in enumerate(instance.vehicle_types):
        g, shift = type_group[t], clocks[type_group[t]]
        start, end = instance.depots[vt.depot], instance.depots[vt.end]
        tw_early = shift.early(max(vt.tw_early, start.tw_early))
        tw_late = max(tw_early, shift.late(min(vt.tw_late, end.tw_late)))
        shift_duration = _INT_MAX
        if vt.shift_duration is not None:
            shift_duration = max(0, vt.shift_duration - shift.duration)
        max_distance = _INT_MAX
        if caps[t] is not None:
            max_distance = big * caps[t] + big - 1
        vehicle_types.append(
            PVehicleType(
                num_available=vt.count,
                capacity=list(vt.capacity),
                start_depot=g * n_fixed + vt.depot,
                end_depot=n_groups * n_fixed + ends.index(t) if t in ends else g * n_fixed + vt.end,
                fixed_cost=vt.fixed_cost,
                initial_load=list(vt.initial_load),
                tw_early=tw_early,
                tw_late=tw_late,
                shift_duration=shift_duration,
                max_distance=max_distance,
                unit_distance_cost=1,
                unit_duration_cost=vt.unit_duration_cost,
                profile=g,
                reload_depots=[g * n_fixed + d for d in vt.reload_depots]
                + [g * n_fixed + n_dep + s for s in vt.unload_sites],
                name=vt.name,
            )
        )
    return vehicle_types


def _neighbour_data(
    data: ProblemData, client_group: np.ndarray, obj: np.ndarray, dur: np.ndarray
) -> ProblemData:
    """Neighbours from the plain objective, and only among one group's copies (PyVRP would otherwise read
    the inflated distances, or one profile's matrix for all)."""
    cross = (client_group[:, None] >= 0) & (client_group[None, :] >= 0)
    cross &= client_group[:, None] != client_group[None, :]
    return data.replace(
        distance_matrices=[np.where(cross, _MISSING, obj)],
        duration_matrices=[np.where(cross, _MISSING, dur)],
        vehicle_types=[v.replace(profile=0) for v in data.vehicle_types()],
    )


def instance_model(*, instance: Instance, merged: bool = False) -> PyvrpModel:
    """Build the PyVRP `ProblemData` for an instance (see the module docstring for the encoding). With
    `merged`, lunch groups share one clock that hides every group's break (conservative, one copy of
    each client); otherwise each group has its own clock, and its own copies when there are several."""
    groups = lunch_groups(vehicle_types=instance.vehicle_types)
    clocks, type_group = _clocks(groups, len(instance.vehicle_types), merged)
    n_groups = len(clocks)
    n_dep, n_site, n_cli = len(instance.depots), len(instance.disposal_sites), len(instance.clients)
    n_fixed = n_dep + n_site
    ends = [t for t, vt in enumerate(instance.vehicle_types) if vt.unload_sites]

    # PyVRP locations, one per site: depots, disposal sites, virtual end depots, then the clients once per
    # lunch group (a copy's location is its own, so a profile can bar the other groups from it).
    site_loc = (
        [d.loc for d in instance.depots]
        + [s.loc for s in instance.disposal_sites]
        + [instance.depots[instance.vehicle_types[t].end].loc for t in ends]
        + [c.loc for c in instance.clients] * n_groups
    )
    site_loc = np.asarray(site_loc, dtype=np.int64)
    first_client = n_fixed + len(ends)
    obj = instance.objective_matrix[np.ix_(site_loc, site_loc)].copy()
    dur = instance.duration[np.ix_(site_loc, site_loc)].copy()

    final_site: dict[tuple[int, int], int] = {}
    for k, t in enumerate(ends):
        _virtual_end(instance, t, n_fixed + k, first_client, obj, dur, final_site)

    carrier, weights, caps = _carrier(instance)
    weights = np.tile(weights, n_groups)
    dist = obj.copy()
    big = 0
    if carrier is not None:
        big = _big(instance, obj, dur, [clocks[g] for g in type_group])
        if big * max(int(weights[:n_cli].sum()), 1) >= MAX_VALUE:
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
    grouped = n_groups > 1
    clients, client_groups = _pyvrp_clients(
        instance, clocks, first_client=first_client, big=big, weights=weights, carrier=carrier
    )
    vehicle_types = _pyvrp_vehicle_types(instance, clocks, type_group, ends=ends, big=big, caps=caps)

    # A profile per lunch group: its own clients' copies reachable, the other groups' copies not.
    client_group = np.full(len(site_loc), -1)
    client_group[first_client:] = np.repeat(np.arange(n_groups), n_cli)
    dists, durs = [], []
    for g in range(n_groups):
        barred = (client_group >= 0) & (client_group != g)
        dists.append(_barred(dist, barred) if grouped else dist)
        durs.append(_barred(dur, barred) if grouped else dur)
    data = ProblemData(
        locations=locations,
        clients=clients,
        depots=_pyvrp_depots(instance, clocks, ends, type_group),
        vehicle_types=vehicle_types,
        distance_matrices=dists,
        duration_matrices=durs,
        groups=client_groups,
    )
    neighbour_data = _neighbour_data(data, client_group, obj, dur) if carrier is not None or grouped else None
    depot_nodes: list[NodeId | None] = (
        ([d.id for d in instance.depots] + [s.id for s in instance.disposal_sites]) * n_groups + [None] * len(ends)
    )
    return PyvrpModel(
        data=data,
        neighbour_data=neighbour_data,
        depot_nodes=depot_nodes,
        final_site=final_site,
        groups=groups,
        type_group=type_group,
        num_clients=n_cli,
        num_fixed=n_fixed,
        carrier=carrier,
    )


def _barred(matrix: np.ndarray, barred: np.ndarray) -> np.ndarray:
    """A copy of `matrix` in which the `barred` locations cannot be reached or left."""
    out = matrix.copy()
    out[barred, :] = _MISSING
    out[:, barred] = _MISSING
    np.fill_diagonal(out, 0)
    return out


class _Clock:
    """Maps real clock bounds to the compressed clock that hides lunch breaks (module docstring): one
    break per lunch group, or every group's break one after the other (`instance_model(merged=True)`)."""

    def __init__(self, lunches: Sequence[LunchBreak]):
        self.steps: list[tuple[int, int]] = []  # (compressed start, duration) of each hidden break
        for lunch in sorted(lunches, key=lambda b: (b.earliest, b.latest)):
            self.steps.append((self.early(lunch.earliest), lunch.duration))
        self.duration = sum(d for _, d in self.steps)

    def early(self, value: int) -> int:
        for start, duration in self.steps:
            if value > start:
                value = max(start, value - duration)
        return value

    def late(self, value: int) -> int:
        if value >= HORIZON:
            return value
        for start, duration in self.steps:
            if value >= start:
                value = max(start - 1, value - duration)
        return value


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


def _big(instance: Instance, obj: np.ndarray, dur: np.ndarray, clocks: list[_Clock]) -> int:
    """A bound above any feasible route's objective sum (module docstring), plus one; `clocks` is each
    vehicle type's (its lunch group's) compressed clock.

    A route visits each client at most once and reloads at most once per client, so it has at most
    L = 2n + 2 legs. The plain bound, L times the longest edge, times a 2,000-bin district's kilograms
    overflows PyVRP's integer range. But a route without time warp drives within its shift (span S), and
    every edge's objective is at most r x its duration + c, for a pace r (the fastest edge of a minute or
    more: shorter ones are all rounding) and c the most any edge exceeds that pace by (a few metres where
    metres and seconds were rounded apart, 0 when the objective is the duration). So a route costs at most
    r x S + c x L: a day's driving plus a little per leg."""
    finite = (obj < _MISSING) & (dur < _MISSING)
    np.fill_diagonal(finite, False)
    legs = 2 * len(instance.clients) + 2
    bound = int(np.where(finite, obj, 0).max(initial=0)) * legs
    spans = [
        shift.late(min(vt.tw_late, instance.depots[vt.end].tw_late))
        - shift.early(max(vt.tw_early, instance.depots[vt.depot].tw_early))
        for vt, shift in zip(instance.vehicle_types, clocks, strict=True)
    ]
    if all(s < HORIZON // 2 for s in spans) and finite.any():
        o, d = obj[finite].astype(np.float64), dur[finite].astype(np.float64)
        long_ = d >= 60
        pace = float((o[long_] / d[long_]).max()) if long_.any() else 0.0
        excess = float(np.maximum(o - pace * d, 0).max())
        bound = min(bound, int(np.ceil(pace * max(spans) + excess * legs)))
    return max(bound, 1) + 1
