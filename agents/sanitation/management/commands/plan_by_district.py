"""manage.py plan_by_district [--date YYYY-MM-DD] [--time-limit S] [--max-bins N] [--assume-level F]
[--wait S] [--json]: plan a day district by district in parallel on the planning queue (one task per
district; as many planning workers as are running take them) and, with --wait, print the districts'
figures and their sums once the last district is done. Exit status 1 when --wait runs out first."""
import json
import time

from django.core.management.base import BaseCommand, CommandError

from agents.sanitation.domain.planner import next_service_day
from agents.sanitation.models import CityPlan
from agents.sanitation.services.city_plans import city_plan_start
from city_ops.core.timeutil import city_today, date_parse


class Command(BaseCommand):
    help = "Plan a day district by district in parallel on the planning queue; sum km and trucks."

    def add_arguments(self, parser):
        parser.add_argument("--date", help="the day to plan (default: the next service day)")
        parser.add_argument("--time-limit", type=float, default=60.0, help="solver seconds per district")
        parser.add_argument("--max-bins", type=int, help="at most this many candidate bins per district")
        parser.add_argument("--assume-level", type=float,
                            help="offer bins the fill model cannot forecast yet as optional at this level")
        parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for every district")
        parser.add_argument("--json", action="store_true", help="print the result as JSON alone on stdout")

    def handle(self, *args, **opts):
        try:
            date = date_parse(opts["date"]) if opts["date"] else next_service_day(city_today())
        except ValueError:
            raise CommandError(f"--date {opts['date']!r} is not a date (YYYY-MM-DD)") from None
        if opts["time_limit"] <= 0 or (opts["max_bins"] is not None and opts["max_bins"] < 1):
            raise CommandError("--time-limit and --max-bins must be positive")
        plan = city_plan_start(date=date, time_limit=opts["time_limit"], max_bins=opts["max_bins"],
                               assume_level=opts["assume_level"])
        self.stderr.write(f"city plan #{plan.pk} for {date}: {plan.districts.count()} districts sent to the "
                          "planning queue")
        deadline = time.monotonic() + opts["wait"]
        while opts["wait"] and time.monotonic() < deadline:
            plan.refresh_from_db()
            if plan.status == CityPlan.Status.DONE:
                break
            time.sleep(1)
        doc = _document(plan)
        self.stdout.write(json.dumps(doc) if opts["json"] else _text(doc))
        if opts["wait"] and plan.status != CityPlan.Status.DONE:
            raise CommandError(f"not every district was done after {opts['wait']} s")


def _document(plan: CityPlan) -> dict:
    return {"id": plan.pk, "date": str(plan.date), "status": plan.status, "kpis": plan.kpis,
            "districts": [{"district": p.district.code, "status": p.status, "trucks": len(p.truck_ids),
                           "kpis": {k: v for k, v in p.kpis.items() if k != "notes"}, "error": p.error}
                          for p in plan.districts.select_related("district").order_by("district__code")]}


def _text(doc: dict) -> str:
    lines = [f"city plan #{doc['id']} {doc['date']}: {doc['status']}"]
    for d in doc["districts"]:
        k = d["kpis"]
        lines.append(f"  {d['district']}: {d['status']}, {d['trucks']} trucks given, {k.get('trucks_used', '-')} "
                     f"used, {k.get('bins_visited', '-')} bins, {k.get('km', '-')} km, {k.get('wall_s', '-')} s"
                     + (f" ({d['error']})" if d["error"] else ""))
    if doc["kpis"]:
        k = doc["kpis"]
        lines.append(f"  city: {k['km']} km, {k['trucks_used']} trucks, {k['bins_visited']} bins in {k['wall_s']} s")
    return "\n".join(lines)
