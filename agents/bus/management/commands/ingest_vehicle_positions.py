"""manage.py ingest_vehicle_positions FILE [--feed FEED] [--json]: store a GTFS-Realtime VehiclePositions file
(or JSON AVL pings), place every bus on its route, and print live headways, bunching and gaps per route.

Exit status (city_ops.core.exitcodes): 0 every position taken, 1 some entities skipped (listed) and the rest
stored, 2 the file is unreadable or holds no vehicle position."""
import json
import logging
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agents.bus.domain.realtime import RealtimeError
from agents.bus.services.feeds import FeedImportError, feed_resolve
from agents.bus.services.realtime import positions_ingest
from city_ops.core.exitcodes import file_unreadable, ingest_command_finish

KEYS = ("route_id", "direction_id", "vehicles", "headways_s", "bunching", "gaps", "cv", "grade", "ewt_s",
        "scheduled_headway_s", "method")


class Command(BaseCommand):
    help = "Ingest vehicle positions (GTFS-Realtime .pb or JSON AVL) and report headways per route."

    def add_arguments(self, parser):
        parser.add_argument("path", help="GTFS-Realtime VehiclePositions file (.pb) or JSON AVL pings")
        parser.add_argument("--feed", help="static feed: a GTFS zip (imported if new) or an imported feed's id "
                                           "(default: the feed with stops near the buses, if any)")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")

    def handle(self, *args, **opts):
        logging.getLogger("agents.bus").setLevel(logging.WARNING if opts["json"] else logging.INFO)
        try:
            data = Path(opts["path"]).read_bytes()
        except OSError as exc:
            raise file_unreadable(f"cannot read {opts['path']}: {exc}") from None
        feed = None
        if opts["feed"]:
            try:
                feed, _ = feed_resolve(value=opts["feed"])
            except FeedImportError as exc:
                raise CommandError(str(exc)) from None
        try:
            result = positions_ingest(data=data, feed=feed, source="file")
        except RealtimeError as exc:
            raise file_unreadable(f"{opts['path']}: {exc}") from None
        for problem in result.problems:
            self.stderr.write(f"skipped {problem}")
        summary = result.summary or {"vehicles": 0, "placed": 0, "routes": [], "advice": [], "problems": []}
        out = {"vehicles": summary["vehicles"], "placed": summary.get("placed", 0), "stored": result.stored,
               "feed": result.feed.pk if result.feed else None,
               "routes": [{k: r.get(k) for k in KEYS} for r in summary["routes"]],
               "advice": summary.get("advice", []), "problems": summary.get("problems", [])}
        if opts["json"]:
            self.stdout.write(json.dumps(out))
        else:
            self._report(out)
        ingest_command_finish(recognised=result.stored + len(result.problems), rejected=len(result.problems),
                              nothing=f"no vehicle positions in {opts['path']}")

    def _report(self, out: dict) -> None:
        self.stdout.write(f"{out['vehicles']} vehicles, {out['placed']} placed on routes "
                          f"(feed {out['feed'] or 'none'})")
        for r in out["routes"]:
            cv = "-" if r["cv"] is None else f"{r['cv']:.2f} ({r['grade']})"
            self.stdout.write(f"  route {r['route_id']} dir {r['direction_id']}: {r['vehicles']} buses, headways "
                              f"{[round(h) for h in r['headways_s']]} s, cv {cv}, bunching {r['bunching']}, "
                              f"gaps {r['gaps']}")
