"""Command line: solve one instance file and print the checked plan.

    python -m agents.sanitation.vrp.cli INSTANCE --time-limit 10 --seed 1 --json

With ``--json`` stdout carries the JSON document alone (progress goes to stderr). Exit status: 0 for a
plan our checker accepts, 1 for a plan it rejects, 2 for an instance that cannot be read.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from agents.sanitation.vrp.instance import InstanceError
from agents.sanitation.vrp.readers import FORMATS, instance_read
from agents.sanitation.vrp.solve import instance_solve

log = logging.getLogger("agents.sanitation.vrp")


def parser_build() -> argparse.ArgumentParser:
    """The argument parser (shared with the Django `solve_vrp` command)."""
    parser = argparse.ArgumentParser(
        prog="solve_vrp", description="Solve a routing instance with PyVRP and check the plan independently."
    )
    parser.add_argument("instance", help="instance file (VRPLIB .vrp, Solomon .txt or Kim et al. .txt)")
    parser.add_argument("--time-limit", type=float, default=10.0, help="solver time in seconds (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--format", choices=FORMATS, default=None, help="file format (default: from content)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON alone on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = parser_build().parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    try:
        instance = instance_read(path=args.instance, fmt=args.format)
    except InstanceError as exc:
        log.error("cannot read the instance: %s", exc)
        if args.json:
            print(json.dumps({"instance": args.instance, "error": str(exc)}))
        return 2
    log.info(
        "solving %s (%d clients, %s) for %.1f s",
        instance.name,
        len(instance.clients),
        instance.fmt,
        args.time_limit,
    )
    result = instance_solve(instance=instance, time_limit=args.time_limit, seed=args.seed)
    doc = result.as_dict()
    if args.json:
        print(json.dumps(doc))
    else:
        gap = (
            "" if doc["gap_pct"] is None else f" (best known {doc['best_known']}, gap {doc['gap_pct']:.2f}%)"
        )
        print(
            f"{doc['instance']}: cost {doc['cost']}{gap}, {doc['vehicles']} vehicles, "
            f"{'feasible' if doc['feasible'] else 'INFEASIBLE'}"
        )
        for i, route in enumerate(doc["routes"], start=1):
            print(f"  route {i}: {' '.join(map(str, route))}")
        for v in doc["violations"]:
            print(f"  violation [{v['rule']}]: {v['message']}")
    return 0 if result.feasible else 1


if __name__ == "__main__":
    sys.exit(main())
