"""Routing benchmark: each shared instance solved through our model and checker at a fixed time limit,
against its published reference value; for the VRPLIB files also plain PyVRP on the same file for the same
time (the reference measured in the same run), so the table shows what our modelling layer costs or adds.

    .venv/bin/python bench/vrp.py [--time-limit 10] [--seed 1] [--json] [--no-reference] [--kim]

Instances: ../shared/benchmarks/vrp (CVRPLIB A-n32-k5 and X-n101-k25, Solomon C101 and R101, the multi-trip
C201R0.25, Kim et al.'s waste collection from 102 to 2,100 stops; `--kim` runs those alone, the table in
agents/sanitation/README.md). Times are wall clock on whatever else the machine runs; the load average is
printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyvrp
from pyvrp.stop import MaxRuntime

from agents.sanitation.vrp import instance_read, instance_solve

SHARED = Path(os.environ.get("CITY_OPS_SHARED", ROOT.parent / "shared")) / "benchmarks" / "vrp"

# file, aim (max gap % to the published value, or None for "feasible within the fleet aim"),
# PyVRP's own rounding for the plain reference run (None: no VRPLIB file to hand it)
CASES = [
    ("A-n32-k5.vrp", 0.0, "round"),
    ("X-n101-k25.vrp", 0.5, "round"),
    ("C101.txt", 0.0, None),
    ("R101.txt", 1.0, None),
    ("C201R0.25.vrp", 2.0, "dimacs"),
    *((f"kim_{n}_stop.txt", None, None) for n in (102, 335, 444, 804, 1051, 1351, 1599, 1932, 2100)),
]


def case_run(
    name: str, aim: float | None, rounding: str | None, *, time_limit: float, seed: int, reference: bool
) -> dict:
    """Solve one instance (and, when asked, plain PyVRP on the same file) and judge it against its aim."""
    instance = instance_read(path=SHARED / name)
    started = time.perf_counter()
    result = instance_solve(instance=instance, time_limit=time_limit, seed=seed)
    wall = time.perf_counter() - started
    row = {
        "instance": instance.name,
        "cost": result.cost,
        "best_known": instance.best_known,
        "gap_pct": None if result.gap_pct is None else round(result.gap_pct, 3),
        "aim": None,
        "met": None,
        "vehicles": result.vehicles,
        "feasible": result.feasible,
        "fleet_bound": result.fleet_bound,
        "fleet_allowed": result.fleet_allowed,
        "time_s": round(wall, 2),
        "reference_cost": None,
        "cost_over_reference": None,
    }
    if aim is not None:
        row["aim"] = f"gap <= {aim:g}%"
        row["met"] = result.feasible and result.gap_pct is not None and result.gap_pct <= aim + 1e-9
    else:  # the file gives no fleet: the solve grows it from the bound where the plan needs more
        row["aim"] = f"feasible (fleet bound {result.fleet_bound}, allowed {result.fleet_allowed})"
        row["met"] = result.feasible
    if reference and rounding is not None:
        data = pyvrp.read(SHARED / name, round_func=rounding)
        ref = pyvrp.solve(data, MaxRuntime(time_limit), seed=seed, display=False).best
        if ref.is_feasible():
            row["reference_cost"] = ref.distance()
            row["cost_over_reference"] = round(result.cost / ref.distance(), 4)
    return row


def table_print(rows: list[dict], *, time_limit: float, load: tuple[float, float]) -> None:
    """A plain-text table of the rows."""
    cols = [
        ("instance", 16),
        ("cost", 9),
        ("best_known", 10),
        ("gap_pct", 7),
        ("vehicles", 8),
        ("feasible", 8),
        ("fleet_bound", 11),
        ("fleet_allowed", 13),
        ("time_s", 6),
        ("reference_cost", 14),
        ("cost_over_reference", 19),
        ("met", 5),
        ("aim", 0),
    ]
    print(
        f"time limit {time_limit:g} s per instance; load average {load[0]:.2f} before, {load[1]:.2f} after "
        f"({os.cpu_count()} CPUs, shared with other jobs)"
    )
    print("  ".join(name.ljust(width) for name, width in cols).rstrip())
    for row in rows:
        cells = ["-" if row[name] is None else str(row[name]) for name, _ in cols]
        print("  ".join(c.ljust(w) for c, (_, w) in zip(cells, cols, strict=True)).rstrip())


def main(argv: list[str] | None = None) -> int:
    """Run every case that has its file; returns 1 when an aim is missed, 2 when no file is there."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON alone on stdout")
    ap.add_argument("--no-reference", action="store_true", help="skip the plain PyVRP reference runs")
    ap.add_argument("--kim", action="store_true", help="only the Kim et al. instances")
    args = ap.parse_args(argv)
    cases = [c for c in CASES if (SHARED / c[0]).is_file() and (c[0].startswith("kim_") or not args.kim)]
    if not cases:
        print(f"no instances under {SHARED}", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]
    rows = []
    for name, aim, rounding in cases:
        print(f"solving {name} ...", file=sys.stderr)
        rows.append(
            case_run(
                name,
                aim,
                rounding,
                time_limit=args.time_limit,
                seed=args.seed,
                reference=not args.no_reference,
            )
        )
    load = (load_before, os.getloadavg()[0])
    if args.json:
        print(
            json.dumps({"time_limit": args.time_limit, "seed": args.seed, "load_average": load, "rows": rows})
        )
    else:
        table_print(rows, time_limit=args.time_limit, load=load)
    return 0 if all(r["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
