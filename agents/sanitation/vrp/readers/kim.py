"""The waste-collection VRPTW format of Kim, Kim & Sahoo (2006), e.g. ``102_stop.txt``.

Five header lines, each ``value // comment``:

1. vehicle capacity per trip (yards, real),
2. the most a truck may collect in a day over all trips (yards, real),
3. the most regular stops a truck may serve in a day,
4. the lunch break in seconds; by the format's definition it starts between 11:00 and 12:00,
5. the speed in miles per hour.

Then a column header (``Stop_ID X(feet) Y(feet) Early_St_Time Late_St_Time Svice_Time Load Stop_Type``)
and one row per site: a unique Stop_ID (0, 1, 2 ... in most files; the 1,351- and 1,599-stop files use
the city's own ids), coordinates in feet, the window for the *start* of service as HHMM clock times,
service in seconds, load in yards, and a type: 0 depot (its window is the working day), 1 stop,
2 landfill (its service is the unload time; its load column is a dummy).

Some files write clock times as hundredths of an hour (``1675`` for 16:45, ``0875`` for 8:45): a minute
field of 60 or more cannot be HHMM, and where one appears (the 1,932- and 2,100-stop files, whose minute
fields are otherwise 00, 50 and 75) we read every clock time of that file as hours x 100.

Distances are Manhattan in feet; travel time is that distance at the file's speed, in whole seconds per
leg. The objective is total travel time (seconds). Loads are kept in hundredths of a yard so the
fractional capacities stay exact integers. The file gives no fleet size: we allow one truck more than
a lower bound (`kim_fleet_lower_bound`: load over the daily cap, stops over the daily stop limit, and the
day's work in time over a truck's working day), record both, and mark the fleet open, so the solve may
add trucks when the best plan it finds with these breaks a rule (solve.py).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from agents.sanitation.vrp.instance import (
    Client,
    Depot,
    DisposalSite,
    Instance,
    InstanceError,
    LunchBreak,
    VehicleType,
)
from agents.sanitation.vrp.readers._text import fail, integer, number, width_check
from agents.sanitation.vrp.readers.limits import MAX_LOCATIONS, MAX_QUANTITY, size_check

LOAD_UNITS_PER_YARD = 100
LUNCH_EARLIEST = 11 * 3600
LUNCH_LATEST = 12 * 3600
_HEADER_FIELDS = ("vehicle capacity", "daily load cap", "daily stop limit", "lunch duration", "speed")


def kim_parse(*, text: str, source: str = "<kim>") -> Instance:
    """Read Kim et al. text into an `Instance` (node ids as in the file: its Stop_IDs)."""
    header, rows = _lines_split(text, source)
    capacity_yd, cap_yd, max_stops_f, lunch_s, mph = header
    _header_check(header, source)
    # The matrices below are rows squared.
    size_check(len(rows), limit=MAX_LOCATIONS, what="the count of site rows", source=source, lineno=None)

    hundredths = _hour_hundredths(rows)
    sites = [_site(lineno, toks, index, source, hundredths) for index, (lineno, toks) in enumerate(rows)]
    _ids_check(rows, sites, source)
    depot, landfills, stops = _sites_by_type(sites, source)

    coords = np.array([[s["x"], s["y"]] for s in sites])
    distance, duration = _travel_matrices(coords, mph)
    capacity = _load_units(capacity_yd)
    clients = _clients(stops, capacity, source)
    vt = VehicleType(
        name="truck",
        count=1,  # sized below, from the instance
        capacity=(capacity,),
        depot=0,
        tw_early=depot["early"],
        tw_late=depot["late"],
        unload_sites=tuple(range(len(landfills))),
        daily_cap=_load_units(cap_yd),
        max_stops=int(max_stops_f),
        lunch=LunchBreak(earliest=LUNCH_EARLIEST, latest=LUNCH_LATEST, duration=round(lunch_s)),
    )
    instance = Instance(
        name=_name(source),
        clients=clients,
        depots=[Depot(id=depot["id"], loc=depot["loc"], tw_early=depot["early"], tw_late=depot["late"])],
        disposal_sites=[
            DisposalSite(
                id=s["id"], loc=s["loc"], tw_early=s["early"], tw_late=s["late"], service=s["service"]
            )
            for s in landfills
        ],
        vehicle_types=[vt],
        distance=distance,
        duration=duration,
        objective="duration",
        cost_scale=1,
        fmt="kim",
        coords=coords,
        notes=[f"loads in 1/{LOAD_UNITS_PER_YARD} yd; travel time at {mph:g} mph, Manhattan feet"],
    )
    _fleet_size(instance)
    return instance


def _lines_split(text: str, source: str) -> tuple[list[float], list[tuple[int, list[str]]]]:
    """The five header values and the site rows (line number, tokens), the column header checked between."""
    header: list[float] = []
    rows: list[tuple[int, list[str]]] = []
    seen_columns = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if len(header) < len(_HEADER_FIELDS):
            header.append(_header_value(line, lineno, len(header), source))
            continue
        if not seen_columns:
            if not line.lower().startswith("stop_id"):
                raise fail(
                    source, lineno, f"expected the column header 'Stop_ID X(feet) ...', found {line[:30]!r}"
                )
            seen_columns = True
            continue
        rows.append((lineno, line.split()))
    if len(header) < len(_HEADER_FIELDS):
        raise InstanceError(
            f"{source}: the header needs {len(_HEADER_FIELDS)} lines "
            f"({', '.join(_HEADER_FIELDS)}), found {len(header)}"
        )
    if not seen_columns:
        raise InstanceError(f"{source}: the 'Stop_ID ...' column header and the site rows are missing")
    return header, rows


def _header_value(line: str, lineno: int, index: int, source: str) -> float:
    value = line.split("//", 1)[0].split()
    if not value:
        raise fail(source, lineno, f"expected the {_HEADER_FIELDS[index]} ('value // comment')")
    return number(value[0], source=source, lineno=lineno, what=_HEADER_FIELDS[index])


def _header_check(header: list[float], source: str) -> None:
    capacity_yd, cap_yd, max_stops_f, lunch_s, mph = header
    if min(capacity_yd, cap_yd, max_stops_f, mph) <= 0 or lunch_s < 0:
        raise InstanceError(f"{source}: capacity, daily cap, stop limit and speed must be positive")
    for what, value in zip(_HEADER_FIELDS[:3], header[:3], strict=True):
        if value * LOAD_UNITS_PER_YARD > MAX_QUANTITY:
            raise InstanceError(
                f"{source}: the {what} {value:g} exceeds the limit of "
                f"{MAX_QUANTITY // LOAD_UNITS_PER_YARD:,} this reader accepts"
            )


def _ids_check(rows: list[tuple[int, list[str]]], sites: list[dict], source: str) -> None:
    seen: dict[int, int] = {}
    for (lineno, _), site in zip(rows, sites, strict=True):
        if site["id"] in seen:
            raise fail(source, lineno, f"Stop_ID {site['id']} is used twice (first on line {seen[site['id']]})")
        seen[site["id"]] = lineno


def _sites_by_type(sites: list[dict], source: str) -> tuple[dict, list[dict], list[dict]]:
    """The one depot (type 0), the landfills (2) and the regular stops (1); each must be there."""
    depots = [s for s in sites if s["type"] == 0]
    landfills = [s for s in sites if s["type"] == 2]
    stops = [s for s in sites if s["type"] == 1]
    if len(depots) != 1:
        raise InstanceError(f"{source}: this format needs exactly one depot (type 0), found {len(depots)}")
    if not landfills:
        raise InstanceError(f"{source}: no landfill (type 2) to unload at")
    if not stops:
        raise InstanceError(f"{source}: no regular stop (type 1) to serve")
    return depots[0], landfills, stops


def _travel_matrices(coords: np.ndarray, mph: float) -> tuple[np.ndarray, np.ndarray]:
    """Manhattan feet, and whole seconds at `mph`, between every two sites."""
    feet = np.abs(coords[:, None, :] - coords[None, :, :]).sum(axis=2)
    feet_per_second = mph * 5280.0 / 3600.0
    distance = np.floor(feet + 0.5).astype(np.int64)
    duration = np.floor(feet / feet_per_second + 0.5).astype(np.int64)
    return distance, duration


def _clients(stops: list[dict], capacity: int, source: str) -> list[Client]:
    clients = [
        Client(
            id=s["id"],
            loc=s["loc"],
            demand=(s["load"],),
            service=s["service"],
            tw_early=s["early"],
            tw_late=s["late"],
        )
        for s in stops
    ]
    big_stop = max(c.demand[0] for c in clients)
    if big_stop > capacity:
        raise InstanceError(
            f"{source}: a stop's load ({big_stop / LOAD_UNITS_PER_YARD} yd) exceeds the truck"
        )
    return clients


def _fleet_size(instance: Instance) -> None:
    """The file gives no fleet: allow one truck more than the lower bound, and say so (module docstring)."""
    bound = kim_fleet_lower_bound(instance=instance)
    instance.vehicle_types = [replace(instance.vehicle_types[0], count=bound + 1)]
    instance.fleet_bound, instance.fleet_open = bound, True
    instance.notes.append(
        f"fleet not given: lower bound {bound} trucks (load, stops and time); allowing {bound + 1}"
    )


def kim_fleet_lower_bound(*, instance: Instance) -> int:
    """Trucks needed at least: the day's load over the daily cap, stops over the daily stop limit, and
    the day's work over one truck's working day (`_time_bound`). Reads the first vehicle type."""
    vt = instance.vehicle_types[0]
    total = sum(c.demand[vt.daily_cap_dim] for c in instance.clients)
    bounds = [1, _time_bound(instance, vt)]
    if vt.daily_cap:
        bounds.append(math.ceil(total / vt.daily_cap))
    if vt.max_stops:
        bounds.append(math.ceil(len(instance.clients) / vt.max_stops))
    return max(bounds)


def _time_bound(instance: Instance, vt: VehicleType) -> int:
    """Trucks needed for the time the day's work takes at least, against the time one truck has.

    Work: every service; every unload (a trip per truckload at least, each ending at a landfill, at the
    quickest landfill's unload time); and travel, counted as one leg into each client and into each
    unload, each at least the quickest leg that can lead there. A truck has its shift less the lunch
    break (or, skipping it, the part of the shift before or after the break's window), less the
    quickest drive from a landfill home. Where time binds (a high daily cap) this exceeds the load bound.
    """
    dur = instance.duration
    dim = vt.daily_cap_dim
    clients = np.array([c.loc for c in instance.clients])
    sites = np.array([instance.disposal_sites[s].loc for s in vt.unload_sites])
    if not len(sites):
        return 1
    into = dur[:, clients].astype(float)
    into[clients, np.arange(len(clients))] = np.inf  # a stop is not reached from itself
    trips = math.ceil(sum(c.demand[dim] for c in instance.clients) / vt.capacity[dim])
    unload = min(instance.disposal_sites[s].service for s in vt.unload_sites)
    work = (
        sum(c.service for c in instance.clients)
        + into.min(axis=0).sum()
        + trips * (unload + dur[np.ix_(clients, sites)].min())
    )
    start = max(vt.tw_early, instance.depots[vt.depot].tw_early)
    end = min(vt.tw_late, instance.depots[vt.end].tw_late)
    shift = end - start if vt.shift_duration is None else min(end - start, vt.shift_duration)
    if vt.lunch is not None:
        skipping = max(vt.lunch.earliest - start, end - vt.lunch.latest)
        shift = max(shift - vt.lunch.duration, min(shift, skipping))
    per_truck = shift - dur[sites, instance.depots[vt.end].loc].min()
    return math.ceil(work / per_truck) if per_truck > 0 else 1


def _site(lineno: int, toks: list[str], index: int, source: str, hundredths: bool) -> dict:
    width_check(toks, fields="id x y early late service load type", rows="site rows", source=source, lineno=lineno)
    node = integer(toks[0], source=source, lineno=lineno, what="Stop_ID")
    kind = integer(toks[7], source=source, lineno=lineno, what="Stop_Type")
    if kind not in (0, 1, 2):
        raise fail(source, lineno, f"Stop_Type must be 0 (depot), 1 (stop) or 2 (landfill), found {kind}")
    early = _clock(toks[3], source, lineno, "Early_St_Time", hundredths)
    late = _clock(toks[4], source, lineno, "Late_St_Time", hundredths)
    if early > late:
        raise fail(source, lineno, f"stop {node}: window {toks[3]}-{toks[4]} closes before it opens")
    service = integer(toks[5], source=source, lineno=lineno, what="service time (s)")
    load = number(toks[6], source=source, lineno=lineno, what="load (yards)")
    if service < 0 or load < 0:
        raise fail(source, lineno, "service time and load must not be negative")
    return {
        "id": node,
        "loc": index,
        "x": number(toks[1], source=source, lineno=lineno, what="X (feet)"),
        "y": number(toks[2], source=source, lineno=lineno, what="Y (feet)"),
        "early": early,
        "late": late,
        "service": service,
        "load": _load_units(load) if kind == 1 else 0,
        "type": kind,
    }


def _hour_hundredths(rows: list[tuple[int, list[str]]]) -> bool:
    """Whether the file writes clock times as hours x 100 (module docstring): a minute field >= 60."""
    return any(
        tok.isdigit() and int(tok) % 100 >= 60 for _, toks in rows if len(toks) == 8 for tok in toks[3:5]
    )


def _clock(token: str, source: str, lineno: int, what: str, hundredths: bool) -> int:
    """HHMM (0000..2400), or hours x 100 when the file writes them so, to seconds after midnight."""
    if not token.isdigit() or len(token) > 4:
        raise fail(source, lineno, f"{what} must be a clock time HHMM, found {token!r}")
    hours, rest = divmod(int(token), 100)
    seconds = hours * 3600 + rest * (36 if hundredths else 60)
    if (rest >= 60 and not hundredths) or seconds > 24 * 3600:
        raise fail(source, lineno, f"{what} {token!r} is not a time of day")
    return seconds


def _load_units(yards: float) -> int:
    return round(yards * LOAD_UNITS_PER_YARD)


def _name(source: str) -> str:
    stem = source.replace("\\", "/").rsplit("/", 1)[-1]
    return stem.rsplit(".", 1)[0] if "." in stem else stem
