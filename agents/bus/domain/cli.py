"""Command line for the bus core (the Django management commands will wrap the same calls).

    python -m agents.bus.domain.cli plan FEED.zip --date YYYY-MM-DD [--layover MIN] [--json]
    python -m agents.bus.domain.cli positions FILE.pb [--feed GTFS.zip] [--json]

With --json, stdout carries the JSON document alone; warnings and progress go to stderr.
Exit status: 0 ok, 2 bad input (unreadable or invalid feed / payload).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

from .blocking import StopPoint, blocks_csv, blocks_optimise, blocks_trips_txt
from .gtfs import FeedError, feed_read, feed_validate, service_trips
from .realtime import RealtimeError, patterns_build, positions_summary, vehicle_positions_read

log = logging.getLogger("agents.bus.domain.cli")


def _feed(path: str):
    started = time.perf_counter()
    feed = feed_read(path=path)
    for problem in feed_validate(feed=feed):
        log.warning("%s", problem)
    log.info("read %s in %.2f s", path, time.perf_counter() - started)
    return feed


def _plan(args: argparse.Namespace) -> dict:
    feed = _feed(args.feed)
    day = dt.date.fromisoformat(args.date)
    trips = service_trips(feed=feed, service_date=day)
    if trips.empty:
        log.warning("no trips run on %s", day)
    depot = None
    if args.depot:
        lat, lon = (float(v) for v in args.depot.split(","))
        depot = StopPoint("depot", lat, lon)
    plan = blocks_optimise(
        trips=trips,
        layover_s=args.layover * 60.0,
        depot=depot,
        max_wait_s=None if args.max_wait <= 0 else args.max_wait * 60.0,
    )
    if args.csv:
        Path(args.csv).write_text(blocks_csv(trips=trips, blocks=plan.blocks))
    if args.trips_txt:
        Path(args.trips_txt).write_text(blocks_trips_txt(feed=feed, trips=trips, blocks=plan.blocks))
    return {"date": day.isoformat(), **plan.as_dict()}


def _positions(args: argparse.Namespace) -> dict:
    batch = vehicle_positions_read(data=Path(args.file).read_bytes())
    for problem in batch.problems:
        log.warning("%s", problem)
    patterns = patterns_build(feed=_feed(args.feed)) if args.feed else None
    return positions_summary(positions=batch, patterns=patterns, speed_kmh=args.speed, max_hold_s=args.max_hold)


def _print_plan(out: dict) -> None:
    print(f"{out['date']}: {out['trips']} trips -> {out['vehicles']} vehicles "
          f"(lower bound {out['lower_bound']}, feed blocks {out['feed_vehicles']}), "
          f"deadhead {out['deadhead_km']} km / {out['deadhead_min']} min, solved in {out['solve_s']} s")
    for k, block in enumerate(out["blocks"], start=1):
        print(f"  {k:4d}: {' '.join(block)}")


def _print_positions(out: dict) -> None:
    print(f"{out['vehicles']} vehicles, {out['placed']} placed on routes")
    for r in out["routes"]:
        cv = "-" if r["cv"] is None else f"{r['cv']:.2f} ({r['grade']})"
        print(f"  route {r['route_id']} dir {r['direction_id']}: {r['vehicles']} buses, headways "
              f"{[round(h) for h in r['headways_s']]} s, cv {cv}, bunching {r['bunching']}, gaps {r['gaps']}")
    for a in out["advice"]:
        what = f"hold {a['vehicle_id']} at stop {a['stop_id']} for {a['seconds']} s" if a["action"] == "hold" \
            else f"dispatch a standby bus to stop {a['stop_id']}"
        print(f"  advice route {a['route_id']}: {what} ({a['reason']})")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m agents.bus.domain.cli", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="minimum-fleet vehicle blocks for one service day")
    plan.add_argument("feed", help="GTFS zip")
    plan.add_argument("--date", required=True, help="service date YYYY-MM-DD")
    plan.add_argument("--layover", type=float, default=5.0, help="minimum layover, minutes (default 5)")
    plan.add_argument("--max-wait", type=float, default=120.0,
                      help="longest idle wait between trips of a block, minutes (default 120; 0 = no limit)")
    plan.add_argument("--depot", help="depot position LAT,LON (pull-out/pull-in deadheads)")
    plan.add_argument("--csv", help="also write the blocks as CSV to this path")
    plan.add_argument("--trips-txt", help="also write trips.txt with block_id to this path")
    pos = sub.add_parser("positions", help="live headways, bunching and holding advice")
    pos.add_argument("file", help="GTFS-Realtime VehiclePositions .pb, or JSON AVL pings")
    pos.add_argument("--feed", help="static GTFS zip for shapes, schedule and speeds")
    pos.add_argument("--speed", type=float, default=18.0, help="bus speed km/h where no feed gives it")
    pos.add_argument("--max-hold", type=float, default=180.0, help="longest hold advised, seconds")
    for p in (plan, pos):
        p.add_argument("--json", action="store_true", help="print JSON only on stdout")
    args = parser.parse_args(argv)
    # Our own stderr handler (not basicConfig): stdout must stay pure JSON whatever the host configured.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        out = _plan(args) if args.command == "plan" else _positions(args)
    except (FeedError, RealtimeError, OSError, ValueError) as exc:
        log.error("%s", exc)
        return 2
    finally:
        log.removeHandler(handler)
    if args.json:
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
    elif args.command == "plan":
        _print_plan(out)
    else:
        _print_positions(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
