"""Reads of the results statement: the unit costs in force and the statement of a period, built from each
agent's `statement_section` (agents are reached through the registry, never imported here)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Count, Max
from django.utils.translation import gettext_noop

from agents.runtime.base import Headline
from agents.runtime.models import AgentRun
from agents.runtime.registry import agents_all
from agents.runtime.statement import Note, note_parts

from .conf import conf
from .models import DEFAULT_CURRENCY, UNIT_COST_DEFAULTS, WORK_RATE_DEFAULTS, IssuedStatement, UnitCosts


@dataclass(frozen=True)
class Prices:
    """The unit costs and work rates in force: the city's where it set them, the documented defaults
    elsewhere."""

    currency: str
    costs: dict[str, float]
    defaults: tuple[str, ...]  # the cost and rate fields the city has not set
    rates: dict[str, float]

    def per(self, priced: tuple[str, ...]) -> float:
        """What one unit of a figure priced as `priced` (names of unit costs) costs the city."""
        per_co2_kg = self.costs["per_tonne_co2"] / 1000.0
        unit = {
            "truck_km": self.costs["per_truck_km"],
            "truck_hour": self.costs["per_truck_hour"],
            "truck_day": self.costs["per_truck_day"],
            "bus_day": self.costs["per_bus_day"],
            "bus_km": self.costs["per_bus_km"],
            "crew_hour": self.costs["per_crew_hour"],
            "late_repair": self.costs["per_late_repair"],
            "truck_km_co2": float(conf("RESULTS_CO2_KG_PER_TRUCK_KM")) * per_co2_kg,
            "bus_km_co2": float(conf("RESULTS_CO2_KG_PER_BUS_KM")) * per_co2_kg,
        }
        return sum(unit[name] for name in priced)


def unit_costs_get() -> Prices:
    row = UnitCosts.objects.filter(pk=1).first()
    values, defaults = {}, []
    for name, default in {**UNIT_COST_DEFAULTS, **WORK_RATE_DEFAULTS}.items():
        value = getattr(row, name, None) if row else None
        values[name] = default if value is None else float(value)
        if value is None:
            defaults.append(name)
    return Prices(currency=(row.currency if row else "") or DEFAULT_CURRENCY,
                  costs={k: values[k] for k in UNIT_COST_DEFAULTS}, defaults=tuple(defaults),
                  rates={k: values[k] for k in WORK_RATE_DEFAULTS})


RATE_DEFAULT = gettext_noop("%(value)s (the documented default)")
RATE_SET = gettext_noop("%(value)s (set for this city)")


def rate_stated(prices: Prices, name: str) -> Note:
    """A work rate's value and whether it is the documented default or the city's own, for the note that
    says which rate a headline was counted with."""
    return Note(RATE_DEFAULT if name in prices.defaults else RATE_SET, value=f"{prices.rates[name]:g}")


def headline_money(headline: Headline, prices: Prices) -> float | None:
    """What the difference is worth to the city, positive when it is better off; None without a baseline or
    a unit cost for the figure."""
    if headline.baseline is None or headline.value is None or not headline.priced:
        return None
    gain = headline.baseline - headline.value if headline.better == "lower" else headline.value - headline.baseline
    return round(gain * headline.priced_each * prices.per(headline.priced), 2) + 0.0  # + 0.0: never "-0.0"


def _headline_json(h: Headline, prices: Prices) -> dict:
    has_both = h.baseline is not None and h.value is not None
    return {"name": h.name, "label": h.label, "value": h.value, "baseline": h.baseline,
            "difference": round(h.value - h.baseline, 6) if has_both else None, "unit": h.unit,
            "money": headline_money(h, prices)}


NOT_PRICED = gettext_noop("%(name)s: not priced (no unit cost applies to it)")


def _unpriced_notes(headlines: list[Headline], notes: list[str]) -> list[str]:
    """A note for each compared figure without money, unless the agent's notes already say why."""
    return [Note(NOT_PRICED, name=h.name) for h in headlines
            if h.baseline is not None and not h.priced and not any(n.startswith(f"{h.name}: ") for n in notes)]


def _synthetic(run_ids: list[int]) -> bool:
    """Whether any run the statement sums was simulated (a demo's generated history marks its runs so)."""
    return AgentRun.objects.filter(pk__in=run_ids, params__synthetic=True).exists()


def statement_build(*, date_from: dt.date, date_to: dt.date) -> dict:
    """The draft statement of the period (both dates inclusive): per agent its headlines against their
    baselines with the money of each difference, the runs summed, notes, and the daily series."""
    if date_to < date_from:
        raise ValueError(f"the period ends ({date_to}) before it starts ({date_from})")
    prices = unit_costs_get()
    agents, run_ids = {}, []
    for agent in agents_all():
        section = agent.statement_section(date_from=date_from, date_to=date_to)
        if section is None:
            continue
        notes = section.notes + _unpriced_notes(section.headlines, section.notes)
        agents[agent.name] = {
            "headlines": [_headline_json(h, prices) for h in section.headlines],
            # the notes in English, and as made (template and arguments) for a page to say in its language
            "runs": section.runs, "notes": [str(n) for n in notes], "notes_i18n": [note_parts(n) for n in notes],
            "daily": section.daily,
            "learning": section.learning,
        }
        run_ids += section.runs
    money = [h["money"] for a in agents.values() for h in a["headlines"] if h["money"] is not None]
    return {
        "from": date_from.isoformat(), "to": date_to.isoformat(), "currency": prices.currency,
        "synthetic": _synthetic(run_ids), "version": None, "sha256": None,
        "unit_costs": {**prices.costs, **prices.rates, "defaults": list(prices.defaults),
                       "co2_kg_per_truck_km": float(conf("RESULTS_CO2_KG_PER_TRUCK_KM")),
                       "co2_kg_per_bus_km": float(conf("RESULTS_CO2_KG_PER_BUS_KM"))},
        "agents": agents, "total_money": round(sum(money), 2),
    }


# How long a page may show a cached statement at most: the key below follows the runs, the approvals and the
# unit costs; what it cannot see (a late sensor reading of a past day, an alert of the period clearing, a
# changed setting) shows within this time.
STATEMENT_CACHE_S = 300


def statement_cache_key(date_from: dt.date, date_to: dt.date) -> str | None:
    """The period and the state of everything the statement sums: its days' runs (a new, finished or failed
    run changes the count or the latest times), the approved plans the agents name, the unit costs row. None
    for a period without runs: nothing in the key would tell its data apart, and there is little to sum."""
    runs = AgentRun.objects.filter(run_date__range=(date_from, date_to)).aggregate(
        n=Count("pk"), last=Max("pk"), created=Max("created_at"), finished=Max("finished_at"))
    if not runs["n"]:
        return None
    approved = [sorted(a.approved_runs(date_from=date_from, date_to=date_to).values()) for a in agents_all()]
    costs = UnitCosts.objects.filter(pk=1).values_list("updated_at", flat=True).first()
    state = json.dumps([runs, approved, costs], default=str, sort_keys=True)
    return f"results:statement:{date_from}:{date_to}:{hashlib.sha256(state.encode()).hexdigest()[:32]}"


def statement_cached(*, date_from: dt.date, date_to: dt.date) -> dict:
    """`statement_build`'s draft for the console pages, from the cache while nothing it sums has changed
    (building a month takes about a second on a city with history). Issuing and the API build afresh."""
    key = statement_cache_key(date_from, date_to)
    statement = cache.get(key) if key else None
    if statement is None:
        statement = statement_build(date_from=date_from, date_to=date_to)
        if key:
            cache.set(key, statement, STATEMENT_CACHE_S)
    return statement


def statement_digest(statement: dict) -> str:
    """SHA-256 of the statement's canonical JSON (keys sorted, no spaces, UTF-8), its `sha256` key left out:
    anyone holding the issued JSON can recompute it."""
    body = {k: v for k, v in statement.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def statement_issued_get(*, date_from: dt.date, date_to: dt.date, version: int | None = None,
                         user=None) -> IssuedStatement | None:
    """An issued version of the period (the latest without `version`), as `user` may see it."""
    qs = IssuedStatement.objects.filter(date_from=date_from, date_to=date_to)
    if user is not None:
        qs = qs.restrict(user, "view")
    return qs.filter(version=version).first() if version is not None else qs.order_by("-version").first()
