"""The console's Statement page: for a period, what each domain agent delivered against the city's
counterfactual baseline and what the difference is worth at the city's unit costs, with the same statement
as a printable PDF in the reader's language.

Thin views: the figures are `city_ops.results.selectors.statement_build`'s (through its cache,
`statement_cached`); this module reads the period
from the request and shapes the statement for the templates (labels in the user's language, one chart per
agent). The Results page leads with the same headlines (`statement_context`)."""
from __future__ import annotations

import calendar
import datetime as dt

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from city_ops.console.decorators import role_required
from city_ops.console.templatetags.console import agent_label, stored_label
from city_ops.core.roles import Role
from city_ops.core.timeutil import city_today, date_parse

from .pdf import (
    StatementFontMissing,
    notes_text,
    statement_filename,
    statement_pdf_render,
    unit_costs_text,
    unit_text,
)
from .period import MAX_DAYS
from .selectors import statement_cached

# The statement API (city_ops/results/api) serves the CSV: DRF's `format=csv` picks its CSV renderer.
CSV_PATH = "/api/results/statement/"


class PeriodError(ValueError):
    """A period the statement cannot cover; the message says why, in the user's language."""


def period_default(today: dt.date) -> tuple[dt.date, dt.date]:
    """The current month up to yesterday: a statement counts finished days only. On the first of a month
    that is the whole previous month."""
    end = today - dt.timedelta(days=1)
    return end.replace(day=1), end


def _month_bounds(raw: str) -> tuple[dt.date, dt.date]:
    try:
        first = dt.datetime.strptime(raw, "%Y-%m").date()
    except ValueError:
        raise PeriodError(_("%(month)s is not a month in the form YYYY-MM.") % {"month": raw}) from None
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def _date(raw: str) -> dt.date:
    try:
        return date_parse(raw)
    except ValueError:
        raise PeriodError(_("%(date)s is not a date in the form YYYY-MM-DD.") % {"date": raw}) from None


def period_parse(params, *, today: dt.date) -> tuple[dt.date, dt.date]:
    """The period asked for: `from` and `to` (both inclusive), else a `month` (YYYY-MM), else
    `period_default`. Raises PeriodError for a malformed, reversed or over-long period."""
    raw_from, raw_to = params.get("from", "").strip(), params.get("to", "").strip()
    month = params.get("month", "").strip()
    if raw_from or raw_to:
        if not (raw_from and raw_to):
            raise PeriodError(_("Give both dates of the period, from and to."))
        date_from, date_to = _date(raw_from), _date(raw_to)
    elif month:
        date_from, date_to = _month_bounds(month)
    else:
        return period_default(today)
    if date_to < date_from:
        raise PeriodError(_("The period ends (%(to)s) before it starts (%(from)s).") % {
            "from": date_from.isoformat(), "to": date_to.isoformat()})
    if (date_to - date_from).days + 1 > MAX_DAYS:
        raise PeriodError(_("A statement covers at most %(n)s days.") % {"n": MAX_DAYS})
    return date_from, date_to


# --- the statement, shaped for the templates ---------------------------------------------------------------

def _tone(money) -> str:
    """'gain' when the difference is worth money to the city, 'loss' when it costs, '' when not valued."""
    if money is None or money == 0:
        return ""
    return "gain" if money > 0 else "loss"


def _chart(name: str, block: dict) -> dict | None:
    """One chart per agent: the days of the period and, per headline, its daily values and baselines (the
    page switches between headlines, each with its own unit). None when the agent has no daily figures."""
    daily = block.get("daily") or []
    series = []
    for h in block["headlines"]:
        values = [day["values"].get(h["name"]) for day in daily]
        if all(v is None for v in values):  # a headline not summed from daily figures (a ratio): nothing to draw
            continue
        baselines = [day["baselines"].get(h["name"]) for day in daily]
        series.append({"name": h["name"], "label": stored_label(h["label"]), "unit": unit_text(h["unit"]),
                       "values": values,
                       "baselines": baselines if any(b is not None for b in baselines) else []})
    if not series:
        return None
    return {"id": f"statement-chart-{name}", "dates": [day["date"] for day in daily], "series": series}


def _agent_view(name: str, block: dict) -> dict:
    headlines = [{**h, "label": stored_label(h["label"]), "tone": _tone(h["money"])} for h in block["headlines"]]
    valued = [h["money"] for h in headlines if h["money"] is not None]
    return {"name": name, "label": agent_label(name), "headlines": headlines, "notes": notes_text(block),
            "learning": [{**w, "percent": None if w["forecast_mae"] is None else round(w["forecast_mae"] * 100, 1)}
                         for w in block.get("learning", [])],
            "runs": [{"id": pk, "url": reverse("agents-api:run", args=[pk])} for pk in block["runs"]],
            "money": sum(valued) if valued else None, "tone": _tone(sum(valued)) if valued else "",
            "chart": _chart(name, block)}


def statement_context(statement: dict) -> dict:
    """What the statement templates need: the statement itself, each agent's block in the user's language
    and the charts' data (passed to the page's script with `json_script`; CSP forbids inline scripts)."""
    agents = [_agent_view(name, block) for name, block in statement["agents"].items()]
    return {"statement": statement, "statement_agents": agents,
            "statement_charts": [a["chart"] for a in agents if a["chart"]],
            "statement_tone": _tone(statement["total_money"]), "unit_costs": unit_costs_text(statement)}


def _period_links(date_from: dt.date, date_to: dt.date) -> dict:
    """Links of the page: the months before and after the one the period starts in, the CSV, the PDF in
    each language."""
    query = {"from": date_from.isoformat(), "to": date_to.isoformat()}
    previous = (date_from.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
    following = (date_from.replace(day=28) + dt.timedelta(days=4)).strftime("%Y-%m")
    pdf = reverse("console:statement_pdf")
    return {
        "previous_month": f"?{urlencode({'month': previous})}", "next_month": f"?{urlencode({'month': following})}",
        "csv_url": f"{CSV_PATH}?{urlencode({**query, 'format': 'csv'})}",
        "pdf_links": [{"code": code, "name": name, "url": f"{pdf}?{urlencode({**query, 'lang': code})}"}
                      for code, name in settings.LANGUAGES],
    }


def _picker(date_from: dt.date | None, date_to: dt.date | None, params) -> dict:
    """The period picker's fields: the period shown, else what the user typed (to correct it)."""
    return {"period_from": date_from.isoformat() if date_from else params.get("from", ""),
            "period_to": date_to.isoformat() if date_to else params.get("to", ""),
            "period_month": date_from.strftime("%Y-%m") if date_from else params.get("month", "")}


def _period_statement(request) -> tuple[dt.date, dt.date, dict]:
    """The period the request asks for and its statement; PeriodError for a bad period."""
    date_from, date_to = period_parse(request.GET, today=city_today())
    return date_from, date_to, statement_cached(date_from=date_from, date_to=date_to)


@role_required(Role.DISPATCHER)
@require_GET
def statement(request):
    """The statement for a period: headlines per agent on top, a chart per agent, the table below."""
    try:
        date_from, date_to, data = _period_statement(request)
    except PeriodError as exc:
        return render(request, "results/statement.html", {"error": str(exc), **_picker(None, None, request.GET)},
                      status=400)
    return render(request, "results/statement.html", {
        **statement_context(data), **_picker(date_from, date_to, request.GET),
        **_period_links(date_from, date_to),
        "chart_labels": {"value": _("With the agent"), "baseline": _("Baseline")}})


def _text_response(text: str, status: int) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")


@role_required(Role.DISPATCHER)
@require_GET
def statement_pdf(request):
    """The statement as a printable PDF, in `lang` (a console language) or else the user's own."""
    lang = request.GET.get("lang") or translation.get_language()
    if lang not in dict(settings.LANGUAGES):
        return _text_response(_("%(lang)s is not a console language.") % {"lang": lang}, 400)
    try:
        _from, _to, data = _period_statement(request)
    except PeriodError as exc:
        return _text_response(str(exc), 400)
    with translation.override(lang):
        try:
            body = statement_pdf_render(statement=data, city_name=settings.CITY_NAME)
        except StatementFontMissing as exc:  # an installation fault the operator must fix: say which font
            return _text_response(str(exc), 503)
    response = HttpResponse(body, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{statement_filename(statement=data, lang=lang)}"'
    return response
