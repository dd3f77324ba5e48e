"""VRPLIB files: CVRP (CVRPLIB A/X sets), VRPTW, and the multi-trip MTVRPTWR set (Yang 2023).

We parse the text ourselves rather than through `vrplib.read_instance` because a broken file must be
reported by line number (the library raises bare numpy or index errors); the tests cross-check our
figures against `vrplib` on the shared files.

Distance conventions follow each set's published values:

- ``nint`` (CVRP): Euclidean rounded to the nearest integer per edge (A-n32-k5 optimum 784).
- ``trunc1`` (VRPTW): Euclidean truncated to one decimal per edge; we work in integer tenths (times and
  service too) and report cost / 10, as for Solomon.
- ``x10floor`` (MTVRPTWR): floor(10 x Euclidean) with times x 10, reported in those units (C201R0.25
  optimum 15006), which is how PyVRP/Instances states its reference values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from agents.sanitation.vrp.instance import HORIZON, Client, Depot, Instance, InstanceError, VehicleType
from agents.sanitation.vrp.readers._text import (
    euclid_ceil,
    euclid_floor10,
    euclid_nint,
    fail,
    integer,
    number,
)
from agents.sanitation.vrp.readers.limits import MAX_LOCATIONS, MAX_QUANTITY, MAX_VEHICLES, size_check

CONVENTIONS = ("nint", "trunc1", "x10floor")
_SPEC = re.compile(r"^([A-Za-z_]+)\s*:\s*(.*)$")
_EXPLICIT_FORMATS = ("FULL_MATRIX", "LOWER_ROW", "LOWER_DIAG_ROW", "UPPER_ROW", "UPPER_DIAG_ROW")


@dataclass
class _Section:
    name: str
    lineno: int
    rows: list[tuple[int, list[str]]] = field(default_factory=list)


def vrplib_parse(*, text: str, source: str = "<vrplib>", convention: str | None = None) -> Instance:
    """Read VRPLIB text into an `Instance` (node ids are the file's: depot 1, clients 2..n).

    `convention` overrides the distance rule picked from TYPE (see the module docstring).
    """
    spec, sections = _split(text, source)
    dim_value, dim_line = _spec(spec, "DIMENSION", source)
    dim = integer(dim_value, source=source, lineno=dim_line, what="DIMENSION")
    size_check(dim, limit=MAX_LOCATIONS, what="DIMENSION", source=source, lineno=dim_line, low=2)
    convention = _convention_pick(spec, sections, convention, source)
    time_factor = 1 if convention == "nint" else 10

    # Per-node sections first: each must hold a row per node, so DIMENSION is held against the file's
    # content before the distance matrix (DIMENSION squared) is allocated.
    coords = _node_rows(sections, "NODE_COORD_SECTION", dim, 2, source, required=False)
    demand_rows = _node_rows(sections, "DEMAND_SECTION", dim, None, source, required=True)
    demand = [tuple(_quantity(t, ln, "demand", source) for t in toks) for ln, toks in demand_rows]
    distance = _distances(spec, sections, coords, dim, convention, source)
    depot_ids = _depot_ids(sections, dim, source)
    depots, depot_pos, clients = _nodes_build(spec, sections, dim, depot_ids, demand, time_factor, source)

    vehicle_types = _vehicle_types(spec, sections, depots, depot_pos, clients, demand, source)
    name = spec.get("NAME", (source, None))[0].strip() or source
    notes = [f"distance convention {convention}"]
    notes += [
        f"ignored section {s.name} (line {s.lineno})" for s in sections.values() if s.name not in _KNOWN
    ]
    return Instance(
        name=name,
        clients=clients,
        depots=depots,
        vehicle_types=vehicle_types,
        distance=distance,
        duration=distance.copy(),
        objective="distance",
        cost_scale=10 if convention == "trunc1" else 1,
        fmt="vrplib",
        coords=coords_array(coords),
        best_known=_comment_best(spec),
        notes=notes,
        time_unit="time unit" if time_factor == 1 else "0.1 time unit",
    )


def _convention_pick(spec: dict, sections: dict, convention: str | None, source: str) -> str:
    """The distance convention: the one asked for, else the one TYPE and the sections imply (module
    docstring). A TYPE with time windows and no TIME_WINDOW_SECTION is refused here."""
    kind = spec.get("TYPE", ("CVRP", None))[0].strip().upper()
    has_tw = "TIME_WINDOW_SECTION" in sections
    if convention is None:
        if "VEHICLES_RELOAD_DEPOT_SECTION" in sections or kind.startswith("MT"):
            convention = "x10floor"
        elif has_tw or "TW" in kind:
            convention = "trunc1"
        else:
            convention = "nint"
    if convention not in CONVENTIONS:
        raise InstanceError(f"{source}: unknown distance convention {convention!r}; use one of {CONVENTIONS}")
    if "TW" in kind and not has_tw:
        raise fail(source, spec["TYPE"][1], f"TYPE {kind} needs a TIME_WINDOW_SECTION, and there is none")
    return convention


def _nodes_build(
    spec: dict, sections: dict, dim: int, depot_ids: list[int], demand: list[tuple], time_factor: int, source: str
) -> tuple[list[Depot], dict[int, int], list[Client]]:
    """Depots (and each depot node's position among them) and clients, with their windows, service and
    release times in the file's time unit times `time_factor`."""
    tw = _node_rows(sections, "TIME_WINDOW_SECTION", dim, 2, source, required=False)
    release = _node_rows(sections, "RELEASE_TIME_SECTION", dim, 1, source, required=False)
    service = _node_rows(sections, "SERVICE_TIME_SECTION", dim, 1, source, required=False)
    uniform_service = 0.0
    if "SERVICE_TIME" in spec:
        value, line = spec["SERVICE_TIME"]
        uniform_service = number(value, source=source, lineno=line, what="SERVICE_TIME")

    def time_of(rows, idx: int, col: int, what: str) -> int:
        lineno, toks = rows[idx]
        return _scaled_time(toks[col], time_factor, source, lineno, what)

    depots: list[Depot] = []
    depot_pos: dict[int, int] = {}
    clients: list[Client] = []
    for idx in range(dim):
        node = idx + 1
        early = time_of(tw, idx, 0, "time window start") if tw else 0
        late = time_of(tw, idx, 1, "time window end") if tw else HORIZON
        if early > late:
            raise fail(
                source, tw[idx][0], f"node {node}: time window [{early}, {late}] closes before it opens"
            )
        if node in depot_ids:
            depot_pos[node] = len(depots)
            depots.append(Depot(id=node, loc=idx, tw_early=early, tw_late=late))
            continue
        svc = (
            time_of(service, idx, 0, "service time")
            if service
            else _scaled_time(str(uniform_service), time_factor, source, None, "SERVICE_TIME")
        )
        clients.append(
            Client(
                id=node,
                loc=idx,
                demand=demand[idx],
                service=svc,
                tw_early=early,
                tw_late=late,
                release=time_of(release, idx, 0, "release time") if release else 0,
            )
        )
    return depots, depot_pos, clients


_KNOWN = {
    "NODE_COORD_SECTION",
    "DEMAND_SECTION",
    "DEPOT_SECTION",
    "TIME_WINDOW_SECTION",
    "SERVICE_TIME_SECTION",
    "RELEASE_TIME_SECTION",
    "VEHICLES_RELOAD_DEPOT_SECTION",
    "VEHICLES_DEPOT_SECTION",
    "EDGE_WEIGHT_SECTION",
}


def coords_array(rows: list[tuple[int, list[str]]] | None) -> np.ndarray | None:
    """Coordinates as an (n, 2) float array, or None when the file has none."""
    if not rows:
        return None
    return np.array([[float(t) for t in toks] for _, toks in rows])


def _split(text: str, source: str) -> tuple[dict[str, tuple[str, int]], dict[str, _Section]]:
    """Split into 'KEY : value' specifications and data sections (rows of tokens with line numbers)."""
    spec: dict[str, tuple[str, int]] = {}
    sections: dict[str, _Section] = {}
    current: _Section | None = None
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        head = line.split()[0].rstrip(":").upper()
        if head == "EOF":
            break
        if head.endswith("_SECTION"):
            if head in sections:
                raise fail(source, lineno, f"{head} appears twice")
            current = sections[head] = _Section(head, lineno)
            rest = line.split(None, 1)[1:]  # some writers put the first value on the header line
            if rest and rest[0].strip(" :"):
                current.rows.append((lineno, rest[0].strip(" :").split()))
            continue
        match = _SPEC.match(line)
        if match and not _looks_numeric(line.split()[0]):
            spec[match.group(1).upper()] = (match.group(2).strip(), lineno)
            current = None
            continue
        if current is None:
            raise fail(source, lineno, f"data outside any section: {line[:40]!r}")
        current.rows.append((lineno, line.split()))
    return spec, sections


def _looks_numeric(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _spec(spec: dict[str, tuple[str, int]], key: str, source: str) -> tuple[str, int]:
    if key not in spec:
        raise InstanceError(f"{source}: the {key} specification is missing")
    return spec[key]


def _node_rows(sections, name: str, dim: int, width: int | None, source: str, *, required: bool):
    """Rows of a per-node section, ordered by node id, each (lineno, values without the id).

    Checks that every node 1..dim appears exactly once with `width` values (any fixed width if None).
    """
    if name not in sections:
        if required:
            raise InstanceError(f"{source}: the {name} is missing")
        return None
    section = sections[name]
    if len(section.rows) != dim:
        last = section.rows[-1][0] if section.rows else section.lineno
        raise fail(source, last, f"{name} has {len(section.rows)} rows, DIMENSION says {dim}")
    ordered: list[tuple[int, list[str]] | None] = [None] * dim
    widths: set[int] = set()
    for lineno, toks in section.rows:
        node = integer(toks[0], source=source, lineno=lineno, what=f"{name} node id")
        values = toks[1:]
        if width is not None and len(values) != width:
            raise fail(source, lineno, f"{name} rows need a node id and {width} values, found {len(values)}")
        if width is None:
            if not values:
                raise fail(source, lineno, f"{name} row for node {node} has no value")
            widths.add(len(values))
            if len(widths) > 1:
                raise fail(source, lineno, f"{name} rows have differing numbers of values")
        if not 1 <= node <= dim:
            raise fail(source, lineno, f"{name} names node {node}, outside 1..{dim}")
        if ordered[node - 1] is not None:
            raise fail(source, lineno, f"{name} lists node {node} twice")
        for tok in values:
            number(tok, source=source, lineno=lineno, what=f"{name} value")
        ordered[node - 1] = (lineno, values)
    return ordered


def _depot_ids(sections, dim: int, source: str) -> list[int]:
    if "DEPOT_SECTION" not in sections:
        raise InstanceError(f"{source}: the DEPOT_SECTION is missing")
    section = sections["DEPOT_SECTION"]
    ids: list[int] = []
    for lineno, toks in section.rows:
        for tok in toks:
            node = integer(tok, source=source, lineno=lineno, what="depot id")
            if node == -1:
                break
            if not 1 <= node <= dim:
                raise fail(source, lineno, f"depot {node} is outside 1..{dim}")
            ids.append(node)
    if not ids:
        raise fail(source, section.lineno, "DEPOT_SECTION names no depot")
    return ids


def _distances(spec, sections, coords, dim: int, convention: str, source: str) -> np.ndarray:
    ewt_value, ewt_line = spec.get("EDGE_WEIGHT_TYPE", ("EUC_2D", None))
    ewt = ewt_value.strip().upper()
    if ewt in ("EUC_2D", "CEIL_2D"):
        if coords is None:
            raise InstanceError(
                f"{source}: EDGE_WEIGHT_TYPE {ewt} needs a NODE_COORD_SECTION, and there is none"
            )
        xy = coords_array(coords)
        if convention == "nint":
            return euclid_ceil(xy) if ewt == "CEIL_2D" else euclid_nint(xy)
        return euclid_floor10(xy)
    if ewt == "EXPLICIT":
        return _explicit(spec, sections, dim, source)
    raise fail(
        source,
        ewt_line,
        f"unknown EDGE_WEIGHT_TYPE {ewt_value!r}; this reader knows EUC_2D, CEIL_2D and EXPLICIT",
    )


def _explicit(spec, sections, dim: int, source: str) -> np.ndarray:
    fmt_value, fmt_line = _spec(spec, "EDGE_WEIGHT_FORMAT", source)
    fmt = fmt_value.strip().upper()
    if fmt not in _EXPLICIT_FORMATS:
        raise fail(
            source,
            fmt_line,
            f"unknown EDGE_WEIGHT_FORMAT {fmt_value!r}; known: {', '.join(_EXPLICIT_FORMATS)}",
        )
    if "EDGE_WEIGHT_SECTION" not in sections:
        raise InstanceError(f"{source}: EDGE_WEIGHT_TYPE EXPLICIT needs an EDGE_WEIGHT_SECTION")
    section = sections["EDGE_WEIGHT_SECTION"]
    needed = _explicit_count(fmt, dim)
    found = sum(len(toks) for _, toks in section.rows)
    if found != needed:  # counted before anything the size of the matrix is built
        raise fail(
            source,
            section.lineno,
            f"EDGE_WEIGHT_SECTION has {found} values, {fmt} for DIMENSION {dim} needs {needed}",
        )
    values = np.array(
        [_edge_weight(t, ln, source) for ln, toks in section.rows for t in toks], dtype=np.int64
    )
    if fmt == "FULL_MATRIX":
        return values.reshape(dim, dim)
    # The values run row by row along the triangle the format names (numpy's index order too).
    diag = fmt.endswith("DIAG_ROW")
    if fmt.startswith("LOWER"):
        rows, cols = np.tril_indices(dim, k=0 if diag else -1)
    else:
        rows, cols = np.triu_indices(dim, k=0 if diag else 1)
    mat = np.zeros((dim, dim), dtype=np.int64)
    mat[rows, cols] = values
    mat[cols, rows] = values
    return mat


def _explicit_count(fmt: str, dim: int) -> int:
    """How many numbers an EDGE_WEIGHT_SECTION of this format holds for DIMENSION `dim`."""
    if fmt == "FULL_MATRIX":
        return dim * dim
    return dim * (dim + 1) // 2 if fmt.endswith("DIAG_ROW") else dim * (dim - 1) // 2


def _edge_weight(token: str, lineno: int, source: str) -> int:
    """A weight as a whole number (fractional ones round), within MAX_QUANTITY."""
    value = round(number(token, source=source, lineno=lineno, what="edge weight"))
    return size_check(value, limit=MAX_QUANTITY, what="edge weight", source=source, lineno=lineno, low=0)


def _quantity(token: str, lineno: int, what: str, source: str) -> int:
    """A whole, non-negative amount (demand, capacity) within MAX_QUANTITY."""
    value = integer(token, source=source, lineno=lineno, what=what)
    return size_check(value, limit=MAX_QUANTITY, what=what, source=source, lineno=lineno, low=0)


def _scaled_time(token: str, factor: int, source: str, lineno: int | None, what: str) -> int:
    """A time value x factor as an integer; the time-windowed sets are integral in the file's unit."""
    value = number(token, source=source, lineno=lineno or 0, what=what) * factor
    if value < 0:
        raise fail(source, lineno, f"{what} must not be negative, found {token}")
    return math.floor(value + 1e-9)


def _vehicle_types(spec, sections, depots, depot_pos, clients, demand, source) -> list[VehicleType]:
    dims = len(demand[0])
    if "CAPACITY" in spec:
        value, line = spec["CAPACITY"]
        capacity = _quantity(value, line, "CAPACITY", source)
        cap = (capacity,) * dims
    elif any(any(d) for d in demand):
        raise InstanceError(f"{source}: the CAPACITY specification is missing")
    else:
        cap = (HORIZON,) * dims
    if "VEHICLES" in spec:
        value, line = spec["VEHICLES"]
        count = integer(value, source=source, lineno=line, what="VEHICLES")
        size_check(count, limit=MAX_VEHICLES, what="VEHICLES", source=source, lineno=line)
    else:
        count = max(1, len(clients))  # CVRPLIB leaves the fleet open: one truck per client is 'unlimited'

    home = [depot_pos[depots[0].id]] * count
    if "VEHICLES_DEPOT_SECTION" in sections:
        home = _per_vehicle(sections["VEHICLES_DEPOT_SECTION"], count, depot_pos, source, single=True)
    reloads: list[tuple[int, ...]] = [()] * count
    if "VEHICLES_RELOAD_DEPOT_SECTION" in sections:
        reloads = _per_vehicle(
            sections["VEHICLES_RELOAD_DEPOT_SECTION"], count, depot_pos, source, single=False
        )

    groups: dict[tuple[int, tuple[int, ...]], int] = {}
    for vehicle in range(count):
        key = (home[vehicle] if isinstance(home[vehicle], int) else home[vehicle][0], tuple(reloads[vehicle]))
        groups[key] = groups.get(key, 0) + 1
    types = []
    for (depot, reload), num in groups.items():
        d = depots[depot]
        types.append(
            VehicleType(
                name=f"vehicle@{d.id}" + ("+reload" if reload else ""),
                count=num,
                capacity=cap,
                depot=depot,
                tw_early=d.tw_early,
                tw_late=d.tw_late,
                reload_depots=reload,
            )
        )
    return types


def _per_vehicle(section: _Section, count: int, depot_pos: dict[int, int], source: str, *, single: bool):
    rows: list = [None] * count
    if len(section.rows) != count:
        last = section.rows[-1][0] if section.rows else section.lineno
        raise fail(source, last, f"{section.name} has {len(section.rows)} rows, VEHICLES says {count}")
    for lineno, toks in section.rows:
        vehicle = integer(toks[0], source=source, lineno=lineno, what="vehicle number")
        if not 1 <= vehicle <= count:
            raise fail(source, lineno, f"{section.name} names vehicle {vehicle}, outside 1..{count}")
        if len(toks) < 2:
            raise fail(source, lineno, f"{section.name} row for vehicle {vehicle} names no depot")
        ids = [integer(t, source=source, lineno=lineno, what="depot id") for t in toks[1:]]
        for node in ids:
            if node not in depot_pos:
                raise fail(source, lineno, f"{section.name}: node {node} is not a depot")
        positions = tuple(depot_pos[node] for node in ids)
        rows[vehicle - 1] = positions[0] if single else positions
    return rows


def _comment_best(spec) -> float | None:
    comment = spec.get("COMMENT", ("", None))[0]
    match = re.search(r"(?:optimal|best)\s+value\s*:?\s*([0-9.]+)", comment, re.IGNORECASE)
    return float(match.group(1)) if match else None
