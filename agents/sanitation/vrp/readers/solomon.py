"""Solomon (1987) VRPTW text files (C101.txt, R101.txt ...).

Layout: the instance name, a VEHICLE block (NUMBER, CAPACITY), then a CUSTOMER block whose rows are
``id x y demand ready due service``; customer 0 is the depot and its due date closes the day.

Convention (as the published optima, C101 827.3): Euclidean distance truncated to one decimal per edge.
We keep every distance, time window and service time in integer tenths, so PyVRP's integer arithmetic is
exact and the cost is reported as sum / 10.
"""

from __future__ import annotations

import numpy as np

from agents.sanitation.vrp.instance import Client, Depot, Instance, InstanceError, VehicleType
from agents.sanitation.vrp.readers._text import euclid_floor10, fail, integer, number, width_check
from agents.sanitation.vrp.readers.limits import MAX_LOCATIONS, MAX_QUANTITY, MAX_VEHICLES, size_check

_TENTHS = 10


def solomon_parse(*, text: str, source: str = "<solomon>") -> Instance:
    """Read Solomon-format text into an `Instance` (node ids as in the file: depot 0, customers 1..n)."""
    lines = [(n, raw.strip()) for n, raw in enumerate(text.splitlines(), start=1)]
    lines = [(n, line) for n, line in lines if line]
    if not lines:
        raise InstanceError(f"{source}: the file is empty")
    heads = _section_heads(lines, source)
    heading_line = lines[heads["VEHICLE"]][0]
    count, capacity = _vehicle_read(lines[heads["VEHICLE"] + 1 : heads["CUSTOMER"]], heading_line, source)
    rows = _customers_read(lines[heads["CUSTOMER"] + 1 :], source)
    # The distance matrix is rows squared.
    size_check(len(rows), limit=MAX_LOCATIONS, what="the count of customer rows", source=source, lineno=None)
    return _instance_build(lines[0][1], rows, count, capacity)


def _section_heads(lines: list[tuple[int, str]], source: str) -> dict[str, int]:
    """The index in `lines` of the VEHICLE and CUSTOMER headings (both required)."""
    heads = {line.upper(): i for i, (_, line) in enumerate(lines) if line.upper() in ("VEHICLE", "CUSTOMER")}
    for head in ("VEHICLE", "CUSTOMER"):
        if head not in heads:
            raise InstanceError(f"{source}: the {head} section is missing")
    return heads


def _vehicle_read(block: list[tuple[int, str]], heading_line: int, source: str) -> tuple[int, int]:
    """(number, capacity) from the lines after the VEHICLE heading: exactly one numeric row."""
    vehicle_rows = [(n, line) for n, line in block if _numeric_row(line)]
    if len(vehicle_rows) != 1:
        raise fail(
            source, heading_line, f"the VEHICLE section needs one 'NUMBER CAPACITY' row, found {len(vehicle_rows)}"
        )
    v_line, v_text = vehicle_rows[0]
    v_toks = v_text.split()
    if len(v_toks) != 2:
        raise fail(source, v_line, f"the VEHICLE row needs 2 values (number, capacity), found {len(v_toks)}")
    count = integer(v_toks[0], source=source, lineno=v_line, what="vehicle number")
    capacity = integer(v_toks[1], source=source, lineno=v_line, what="vehicle capacity")
    size_check(count, limit=MAX_VEHICLES, what="vehicle number", source=source, lineno=v_line)
    size_check(capacity, limit=MAX_QUANTITY, what="vehicle capacity", source=source, lineno=v_line)
    return count, capacity


def _customers_read(block: list[tuple[int, str]], source: str) -> list[tuple]:
    """The CUSTOMER rows (lineno, x, y, demand, ready, due, service), depot first; the column header skipped."""
    rows: list[tuple] = []
    for lineno, line in block:
        if not _numeric_row(line):
            if rows:
                raise fail(source, lineno, f"unexpected text among customer rows: {line[:40]!r}")
            continue  # the column header ('CUST NO. XCOORD. ...')
        rows.append(_customer_row(lineno, line.split(), len(rows), source))
    if len(rows) < 2:
        raise InstanceError(f"{source}: the CUSTOMER section needs the depot and at least one customer")
    return rows


def _customer_row(lineno: int, toks: list[str], expected: int, source: str) -> tuple:
    width_check(toks, fields="id x y demand ready due service", rows="customer rows", source=source, lineno=lineno)
    node = integer(toks[0], source=source, lineno=lineno, what="customer number")
    if node != expected:
        raise fail(source, lineno, f"expected customer {expected}, found {node} (rows must run 0, 1, 2 ...)")
    x = number(toks[1], source=source, lineno=lineno, what="x coordinate")
    y = number(toks[2], source=source, lineno=lineno, what="y coordinate")
    demand = integer(toks[3], source=source, lineno=lineno, what="demand")
    ready, due, service = (
        integer(t, source=source, lineno=lineno, what=w)
        for t, w in zip(toks[4:], ("ready time", "due date", "service time"))
    )
    if min(demand, ready, due, service) < 0:
        raise fail(source, lineno, "demand and times must not be negative")
    if ready > due:
        raise fail(source, lineno, f"customer {node}: ready time {ready} is after due date {due}")
    return (lineno, x, y, demand, ready, due, service)


def _instance_build(name: str, rows: list[tuple], count: int, capacity: int) -> Instance:
    """The instance in integer tenths (module docstring) from the checked rows."""
    coords = np.array([[r[1], r[2]] for r in rows])
    distance = euclid_floor10(coords)
    _, _, _, _, d_ready, d_due, _ = rows[0]
    depot = Depot(id=0, loc=0, tw_early=d_ready * _TENTHS, tw_late=d_due * _TENTHS)
    clients = [
        Client(
            id=i,
            loc=i,
            demand=(r[3],),
            service=r[6] * _TENTHS,
            tw_early=r[4] * _TENTHS,
            tw_late=r[5] * _TENTHS,
        )
        for i, r in enumerate(rows)
        if i > 0
    ]
    vt = VehicleType(
        name="vehicle", count=count, capacity=(capacity,), tw_early=depot.tw_early, tw_late=depot.tw_late
    )
    return Instance(
        name=name,
        clients=clients,
        depots=[depot],
        vehicle_types=[vt],
        distance=distance,
        duration=distance.copy(),
        objective="distance",
        cost_scale=_TENTHS,
        fmt="solomon",
        coords=coords,
        time_unit="0.1 time unit",
        notes=["distance convention trunc1 (integer tenths)"],
    )


def _numeric_row(line: str) -> bool:
    try:
        float(line.split()[0])
    except ValueError:
        return False
    return True
