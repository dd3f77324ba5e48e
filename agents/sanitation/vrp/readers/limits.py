"""What the routing readers accept, checked before anything is allocated.

A file states its own sizes (VRPLIB's DIMENSION and VEHICLES, Solomon's vehicle number, Kim's capacities)
and the readers build matrices and per-vehicle lists from them. A 197-byte file that declared
``DIMENSION : 2000000000`` once grew the solver to 22.8 GB before the kernel killed it. So every declared
size is checked twice before it drives an allocation: against the limits below, and against what the file
actually holds (a section needs a row per node, an explicit matrix its exact count of numbers).

The limits are sized for the solver, not the reader: distance and duration are dense int64 matrices (and
PyVRP copies them, once more per lunch group), so 5,000 locations is ~400 MB of matrices before PyVRP's
own; the largest public instance we solve (Kim et al., 2,100 stops) is well inside. Operators see them in
docs/operations.md ("File size limits and worker memory").
"""

from __future__ import annotations

from agents.sanitation.vrp.readers._text import fail

MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest instance file read (whole, into memory). Holds an explicit LOWER_ROW matrix of ~4,000
locations at 6-digit weights; coordinate formats need a line per location, a few hundred kB at
MAX_LOCATIONS."""

MAX_LOCATIONS = 5_000
"""Most sites (depots, clients, disposal sites) in one instance: the side of the dense matrices."""

MAX_VEHICLES = MAX_LOCATIONS
"""Most trucks a file may declare. PyVRP keeps a route per available vehicle, and a truck per location
is already 'unlimited' (CVRPLIB's convention when a file leaves the fleet open)."""

MAX_QUANTITY = 10**9
"""Largest capacity, demand or load cap (in the file's unit): sums and the daily-cap encoding (model.py
multiplies a cap by a route bound) must stay far inside PyVRP's integer range."""


def size_check(value: int, *, limit: int, what: str, source: str, lineno: int | None, low: int = 1) -> int:
    """`value` when it lies in [low, limit]; otherwise an `InstanceError` naming the limit."""
    if value < low:
        raise fail(source, lineno, f"{what} must be at least {low}, found {value}")
    if value > limit:
        raise fail(source, lineno, f"{what} {value} exceeds the limit of {limit:,} this reader accepts")
    return value
