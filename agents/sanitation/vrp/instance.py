"""The one normalised shape every routing problem takes before it is solved or checked.

Readers (VRPLIB, Solomon, Kim et al.) and the city's own database rows all end up as an `Instance`: sites
that refer by `loc` to rows of an integer distance and duration matrix, vehicle types that refer to depots
and disposal sites by position in their lists, and every number already an integer in the instance's own
units (so PyVRP's integer matrices are exact and the checker recomputes the same figures).

Units are the caller's choice but must be consistent: durations, service times and time windows in one
time unit (seconds for the city and Kim; the file's own unit, scaled by 10 for Solomon and the multi-trip
set), loads in one integer unit per load dimension. `cost_scale` says how to turn the summed objective
matrix back into the instance's published convention (10 where we work in tenths).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

NodeId = int | str
"""A site's label as the outside world knows it (a node number in a file, a bin's id in the city)."""

HORIZON = 2**40
"""'No limit' for time windows and shift ends: large, yet far below PyVRP's overflow guard."""


class InstanceError(ValueError):
    """A routing instance (file or hand-built) is broken; the message says where and why."""


@dataclass(frozen=True)
class Client:
    """A stop to serve: a bin, a customer. `demand` has one entry per load dimension (e.g. volume, weight).

    `tw_early`/`tw_late` bound the *start* of service (waiting before `tw_early` is allowed). `release` is
    the earliest time the trip that serves this client may leave its depot. An optional client
    (`required=False`) may be skipped, losing its `prize` (in objective units).
    """

    id: NodeId
    loc: int
    demand: tuple[int, ...]
    service: int = 0
    tw_early: int = 0
    tw_late: int = HORIZON
    release: int = 0
    prize: int = 0
    required: bool = True


@dataclass(frozen=True)
class Depot:
    """A base where trucks start and end their day; `tw_*` are its opening hours.

    `service` is the time a reload (multi-trip) visit takes here; start and end of the day take none.
    """

    id: NodeId
    loc: int
    tw_early: int = 0
    tw_late: int = HORIZON
    service: int = 0


@dataclass(frozen=True)
class DisposalSite:
    """A landfill or transfer station where a truck unloads; `tw_*` bound the start of the unload
    (opening hours) and `service` is how long an unload takes."""

    id: NodeId
    loc: int
    tw_early: int = 0
    tw_late: int = HORIZON
    service: int = 0


@dataclass(frozen=True)
class LunchBreak:
    """A driver's break of `duration` that must *start* between `earliest` and `latest` (clock times)."""

    earliest: int
    latest: int
    duration: int


@dataclass(frozen=True)
class VehicleType:
    """`count` identical trucks.

    - `depot`/`end_depot`: positions in `Instance.depots` (end defaults to the start depot).
    - `tw_early`/`tw_late`: the shift (leave no earlier, be back no later); `shift_duration` caps its length.
    - `capacity`: per trip, one entry per load dimension.
    - `reload_depots`: positions in `Instance.depots` where the truck may empty/reload mid-day (multi-trip).
    - `unload_sites`: positions in `Instance.disposal_sites` where it may unload; when not empty the truck
      must also unload at one of them before it returns to its depot (waste collection).
    - `daily_cap`: the most it may collect in a day over all trips, on load dimension `daily_cap_dim`.
    - `max_stops`: the most clients a truck may serve in a day.
    - `lunch`: the driver's break, if any.
    - `fixed_cost`: objective units for using a truck at all.
    - `initial_load`: what the truck already carries when it starts (a re-plan during the day): it counts
      on the first trip, goes at the first unload, and is not part of `daily_cap` (the caller passes
      the cap left for the rest of the day).
    - `unit_duration_cost`: objective units per time unit the truck is out (depart to back, waits and
      services included; the lunch break is not), so plans do not idle on the road needlessly. 0 (the
      benchmarks' convention) minimises the objective matrix alone.
    """

    name: str
    count: int
    capacity: tuple[int, ...]
    depot: int = 0
    end_depot: int | None = None
    tw_early: int = 0
    tw_late: int = HORIZON
    shift_duration: int | None = None
    reload_depots: tuple[int, ...] = ()
    unload_sites: tuple[int, ...] = ()
    daily_cap: int | None = None
    daily_cap_dim: int = 0
    max_stops: int | None = None
    lunch: LunchBreak | None = None
    fixed_cost: int = 0
    unit_duration_cost: int = 0
    initial_load: tuple[int, ...] = ()

    @property
    def end(self) -> int:
        """The depot (position) where the day ends."""
        return self.depot if self.end_depot is None else self.end_depot


@dataclass
class Instance:
    """A routing problem in normalised form (see the module docstring).

    `distance` and `duration` are square integer matrices indexed by `loc`. `objective` names the matrix
    whose sum over all legs is minimised and reported; `cost_scale` divides that sum into the published
    convention. `best_known` is in that published convention too. `time_unit` is "s" for clock times in
    seconds (messages then read H:MM:SS), else a label for the file's own unit.

    `fleet_open` says the source gave no fleet size (Kim et al.): the counts are our estimate, one above
    `fleet_bound` (the fewest trucks that can do the day), and the solve may add trucks to the first
    vehicle type when the best plan it finds breaks a rule. A fleet the source fixes is never changed.
    """

    name: str
    clients: list[Client]
    depots: list[Depot]
    vehicle_types: list[VehicleType]
    distance: np.ndarray
    duration: np.ndarray
    disposal_sites: list[DisposalSite] = field(default_factory=list)
    objective: Literal["distance", "duration"] = "distance"
    cost_scale: int = 1
    best_known: float | None = None
    fmt: str = "custom"
    coords: np.ndarray | None = None
    time_unit: str = "s"
    notes: list[str] = field(default_factory=list)
    fleet_bound: int | None = None
    fleet_open: bool = False

    def __post_init__(self) -> None:
        self.distance = np.asarray(self.distance, dtype=np.int64)
        self.duration = np.asarray(self.duration, dtype=np.int64)
        instance_validate(instance=self)

    @property
    def num_locations(self) -> int:
        """Rows (and columns) of the matrices."""
        return int(self.distance.shape[0])

    @property
    def num_load_dims(self) -> int:
        """Load dimensions (volume, weight, ...) every demand and capacity carries."""
        return len(self.vehicle_types[0].capacity)

    @property
    def objective_matrix(self) -> np.ndarray:
        """The matrix whose leg sum is the cost."""
        return self.distance if self.objective == "distance" else self.duration

    def node_kinds(self) -> dict[NodeId, tuple[str, int]]:
        """Map each node id to ('client' | 'depot' | 'disposal', position in its list)."""
        kinds: dict[NodeId, tuple[str, int]] = {}
        for kind, items in (
            ("depot", self.depots),
            ("disposal", self.disposal_sites),
            ("client", self.clients),
        ):
            for pos, item in enumerate(items):
                kinds[item.id] = (kind, pos)
        return kinds


def instance_validate(*, instance: Instance) -> None:
    """Raise `InstanceError` when the parts of an instance do not fit together (hand-built ones included)."""
    n = instance.distance.shape[0] if instance.distance.ndim == 2 else -1
    _matrices_check(instance, n)
    if instance.objective not in ("distance", "duration"):
        raise InstanceError(f"objective must be 'distance' or 'duration', not {instance.objective!r}")
    if not instance.depots:
        raise InstanceError("an instance needs at least one depot")
    if not instance.vehicle_types:
        raise InstanceError("an instance needs at least one vehicle type")
    if instance.cost_scale <= 0:
        raise InstanceError("cost_scale must be positive")
    _sites_check(instance, n)
    dims = len(instance.vehicle_types[0].capacity)
    for vt in instance.vehicle_types:
        _vehicle_type_check(vt, dims=dims, depots=len(instance.depots), sites=len(instance.disposal_sites))
    _clients_check(instance, dims)


def _matrices_check(instance: Instance, n: int) -> None:
    """Both matrices square, of one size, non-negative, zero on the diagonal."""
    for name, mat in (("distance", instance.distance), ("duration", instance.duration)):
        if mat.ndim != 2 or mat.shape[0] != mat.shape[1]:
            raise InstanceError(f"{name} matrix must be square, got shape {mat.shape}")
        if mat.shape[0] != n:
            raise InstanceError(f"distance and duration matrices differ in size ({n} vs {mat.shape[0]})")
        if (mat < 0).any():
            raise InstanceError(f"{name} matrix has negative entries")
        if np.diagonal(mat).any():
            raise InstanceError(f"{name} matrix must be zero from a location to itself")


def _sites_check(instance: Instance, n: int) -> None:
    """Every site's id unique across all sites, its location in the matrices, its window open before it closes."""
    seen: set[NodeId] = set()
    for kind, items in (
        ("depot", instance.depots),
        ("disposal site", instance.disposal_sites),
        ("client", instance.clients),
    ):
        for item in items:
            if item.id in seen:
                raise InstanceError(
                    f"node id {item.id!r} is used twice (ids must be unique across all sites)"
                )
            seen.add(item.id)
            if not 0 <= item.loc < n:
                raise InstanceError(
                    f"{kind} {item.id!r} refers to location {item.loc}, outside the {n}x{n} matrices"
                )
            if item.tw_early > item.tw_late:
                raise InstanceError(f"{kind} {item.id!r} has a time window that closes before it opens")


def _vehicle_type_check(vt: VehicleType, *, dims: int, depots: int, sites: int) -> None:
    """One vehicle type against the instance: its load dimensions, costs, depots, sites, shift and lunch."""
    where = f"vehicle type {vt.name!r}"
    if len(vt.capacity) != dims:
        raise InstanceError(f"{where} has {len(vt.capacity)} load dimensions, others have {dims}")
    if vt.count < 0:
        raise InstanceError(f"{where} has a negative count")
    if vt.fixed_cost < 0 or vt.unit_duration_cost < 0:
        raise InstanceError(f"{where} has a negative fixed or duration cost")
    if vt.initial_load and (len(vt.initial_load) != dims or any(x < 0 for x in vt.initial_load)):
        raise InstanceError(f"{where} has an initial load that is negative or not one per load dimension")
    for pos in (vt.depot, vt.end, *vt.reload_depots):
        if not 0 <= pos < depots:
            raise InstanceError(f"{where} refers to depot #{pos}; there are {depots}")
    for pos in vt.unload_sites:
        if not 0 <= pos < sites:
            raise InstanceError(f"{where} refers to disposal site #{pos}; there are {sites}")
    if vt.daily_cap is not None and not 0 <= vt.daily_cap_dim < dims:
        raise InstanceError(f"{where} caps load dimension {vt.daily_cap_dim}, which does not exist")
    if vt.tw_early > vt.tw_late:
        raise InstanceError(f"{where} has a shift that ends before it starts")
    if vt.lunch is not None and not (vt.lunch.earliest <= vt.lunch.latest and vt.lunch.duration >= 0):
        raise InstanceError(f"{where} has a lunch break whose window closes before it opens")
    if vt.lunch is not None and vt.shift_duration is not None and vt.lunch.duration >= vt.shift_duration:
        raise InstanceError(
            f"{where} has a lunch break ({vt.lunch.duration}) as long as its shift duration "
            f"({vt.shift_duration}); no route can hold it"
        )


def _clients_check(instance: Instance, dims: int) -> None:
    for client in instance.clients:
        if len(client.demand) != dims:
            raise InstanceError(
                f"client {client.id!r} has {len(client.demand)} load dimensions, vehicles have {dims}"
            )
        if any(d < 0 for d in client.demand) or client.service < 0 or client.prize < 0:
            raise InstanceError(f"client {client.id!r} has a negative demand, service time or prize")
