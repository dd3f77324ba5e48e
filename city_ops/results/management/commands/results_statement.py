"""manage.py results_statement [--from D --to D] [--issue] [--json]: the results statement of a period."""
import json

from django.core.management.base import BaseCommand, CommandError

from city_ops.core.timeutil import date_parse
from city_ops.results.period import previous_month
from city_ops.results.selectors import statement_build
from city_ops.results.services import statement_issue


class Command(BaseCommand):
    help = ("The results statement of a period (both dates inclusive; default the previous calendar month): "
            "a draft, or with --issue a new frozen version.")

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD (inclusive)")
        parser.add_argument("--issue", action="store_true", help="freeze it as the period's next version")
        parser.add_argument("--json", action="store_true", help="print the statement's JSON alone on stdout")

    def handle(self, *args, **opts):
        date_from, date_to = self._period(opts)
        if opts["issue"]:
            issued = statement_issue(date_from=date_from, date_to=date_to)
            statement = issued.content
            self.stderr.write(f"issued version {issued.version} of {date_from}..{date_to}, sha256 {issued.sha256}")
        else:
            statement = statement_build(date_from=date_from, date_to=date_to)
        if opts["json"]:
            self.stdout.write(json.dumps(statement, ensure_ascii=False, indent=1))
        else:
            self.stdout.write(_text(statement))

    def _period(self, opts):
        if bool(opts["date_from"]) != bool(opts["date_to"]):
            raise CommandError("give both --from and --to, or neither (the previous calendar month)")
        if not opts["date_from"]:
            return previous_month()
        try:
            date_from, date_to = date_parse(opts["date_from"]), date_parse(opts["date_to"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if date_to < date_from:
            raise CommandError(f"--to {date_to} is before --from {date_from}")
        return date_from, date_to


def _text(statement: dict) -> str:
    """The statement for a terminal: one line per headline, then the notes."""
    version = f"version {statement['version']}" if statement["version"] else "draft"
    lines = [f"Results statement {statement['from']} .. {statement['to']} ({version}"
             f"{', synthetic' if statement['synthetic'] else ''}), money in {statement['currency']}"]
    for agent, section in statement["agents"].items():
        lines.append(f"{agent} (runs: {len(section['runs'])})")
        for h in section["headlines"]:
            base = "no baseline" if h["baseline"] is None else f"baseline {h['baseline']:g}, diff {h['difference']:+g}"
            value = "-" if h["value"] is None else f"{h['value']:g}"
            money = "" if h["money"] is None else f", {h['money']:+,.2f}"
            lines.append(f"  {h['label']}: {value} {h['unit']} ({base}{money})")
        lines += [f"  note: {n}" for n in section["notes"]]
    lines.append(f"total: {statement['total_money']:+,.2f} {statement['currency']}")
    return "\n".join(lines)
