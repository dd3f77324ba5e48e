"""manage.py plan_buses FEED --date YYYY-MM-DD [--layover MIN] [--json]: the minimum-fleet vehicle plan of one
service day, stored as a new draft version. FEED is a GTFS zip (imported when new) or an imported feed's id."""
import json
import logging

from django.core.management.base import BaseCommand, CommandError

from agents.bus.services.feeds import FeedImportError, feed_resolve
from agents.bus.services.plans import NoServiceError, plan_summary
from city_ops.core.timeutil import date_parse


class Command(BaseCommand):
    help = "Plan a service day's vehicle blocks: every trip exactly once, fewest buses, then least deadhead."

    def add_arguments(self, parser):
        parser.add_argument("feed", help="GTFS zip (imported if new) or the database id of an imported feed")
        parser.add_argument("--date", required=True, help="service date YYYY-MM-DD (a day in the agency's zone)")
        parser.add_argument("--layover", type=float, help="minimum layover between trips, minutes (default 5)")
        parser.add_argument("--max-wait", type=float,
                            help="longest idle wait considered between two trips of a block, minutes "
                                 "(default: any, which keeps the minimum fleet exact; a window saves memory "
                                 "on very large feeds)")
        parser.add_argument("--reason", default="", help="why this plan (stored with the version)")
        parser.add_argument("--json", action="store_true", help="print the plan summary as JSON on stdout")

    def handle(self, *args, **opts):
        from agents.bus.services.plans import plan_create

        logging.getLogger("agents.bus").setLevel(logging.WARNING if opts["json"] else logging.INFO)
        try:
            day = date_parse(opts["date"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if opts["layover"] is not None and opts["layover"] < 0:
            raise CommandError("--layover must not be negative")
        try:
            feed, imported = feed_resolve(value=opts["feed"])
        except FeedImportError as exc:
            raise CommandError(str(exc)) from None
        if imported:
            self.stderr.write(f"imported {opts['feed']} as feed #{feed.pk} ({imported.seconds:.2f} s)")
        try:
            plan = plan_create(
                feed=feed, service_date=day,
                layover_s=None if opts["layover"] is None else opts["layover"] * 60.0,
                **({} if opts["max_wait"] is None else
                   {"max_wait_s": None if opts["max_wait"] <= 0 else opts["max_wait"] * 60.0}),
                reason=opts["reason"] or "plan_buses command")
        except NoServiceError as exc:
            raise CommandError(str(exc)) from None
        out = plan_summary(plan=plan)
        if opts["json"]:
            self.stdout.write(json.dumps(out))
            return
        self.stdout.write(
            f"plan #{plan.pk} v{plan.version} for {day}: {out['trips']} trips on {out['vehicles']} buses "
            f"(lower bound {out['lower_bound']}, feed blocks {out['feed_vehicles']}), deadhead "
            f"{out['deadhead_km']} km / {out['deadhead_min']} min ({out['deadhead_source']}), solved in {out['solve_s']} s")
        for k, block in enumerate(out["blocks"], start=1):
            self.stdout.write(f"  {k:4d}: {' '.join(block)}")
