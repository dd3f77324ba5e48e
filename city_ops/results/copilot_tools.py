"""The results statement's copilot tool: the draft statement of a period, its headlines per agent, with a
link to the Statement page (where the charts, notes and PDF are). Dispatchers (and admins) only, like the
page."""
from __future__ import annotations

import calendar
import datetime as dt

from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from city_ops.copilot.tools import DATE_SCHEMA, Tool, ToolFailed, ToolResult, args_schema, date_arg

from .pages import PeriodError, period_parse
from .period import previous_month
from .selectors import statement_build

# What the model gets of each headline: the figures, not the daily series or the run ids (the page has them).
HEADLINE_KEYS = ("name", "label", "value", "baseline", "difference", "unit", "money")


def _period(args: dict) -> tuple[dt.date, dt.date]:
    """The period asked for: neither end given, the previous calendar month; one end given, the other end of
    that end's month (a model that heard "since the 3rd" rarely says until when)."""
    date_from, date_to = date_arg(args, "from"), date_arg(args, "to")
    if date_from is None and date_to is None:
        date_from, date_to = previous_month()
    elif date_to is None:
        date_to = date_from.replace(day=calendar.monthrange(date_from.year, date_from.month)[1])
    elif date_from is None:
        date_from = date_to.replace(day=1)
    try:  # the Statement page's checks and messages (reversed, over-long)
        return period_parse({"from": date_from.isoformat(), "to": date_to.isoformat()}, today=date_to)
    except PeriodError as exc:
        raise ToolFailed(str(exc)) from None


def results_statement(*, user, args: dict) -> ToolResult:
    date_from, date_to = _period(args)
    statement = statement_build(date_from=date_from, date_to=date_to)
    # labels in the request's language (the agents declare them with gettext_noop), the figures as built
    agents = {name: [{**{k: h[k] for k in HEADLINE_KEYS}, "label": _(h["label"])} for h in section["headlines"]]
              for name, section in statement["agents"].items()}
    period = {"from": statement["from"], "to": statement["to"]}
    url = f"{reverse('console:statement')}?{urlencode(period)}"
    return ToolResult(
        data={**period, "currency": statement["currency"], "total_money": statement["total_money"],
              "synthetic": statement["synthetic"], "agents": agents, "url": url},
        summary=_("Results statement %(from)s to %(to)s: %(n)d agents; the differences are worth %(total).2f "
                  "%(currency)s to the city.") % {**period, "n": len(agents), "total": statement["total_money"],
                                      "currency": statement["currency"]},
        links=[{"label": _("Statement %(from)s to %(to)s") % period, "url": url}])


TOOLS = (
    Tool(name="results.statement", handler=results_statement,
         description="The draft results statement of a period: per agent its headline figures against the "
                     "counterfactual baseline and what each difference is worth at the city's unit costs "
                     "(money positive when the city is better off), and the total. Without dates: the previous "
                     "calendar month; one date alone: the other end of its month.",
         schema=args_schema({"from": {**DATE_SCHEMA, "description": "first day, YYYY-MM-DD (inclusive)"},
                             "to": {**DATE_SCHEMA, "description": "last day, YYYY-MM-DD (inclusive)"}})),
)
