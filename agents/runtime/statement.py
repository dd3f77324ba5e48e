"""Helpers every agent's `statement_section` uses: headlines summed from the KPIs that count for each day
(selectors.kpis_counted), so the statement reconciles with the stored run KPIs, and the per-day series of a
section's chart. Per-agent logic (which KPIs, which baselines) stays in each agent's selectors."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.utils.translation import gettext_noop

from .base import Headline, StatementSection
from .selectors import CountedKpi, kpis_counted


class Note(str):
    """A note of the statement: its English text (what the JSON's `notes` carry and code and tests read), made
    from a template marked with gettext_noop where it is defined (%(name)s placeholders) and its arguments,
    so that a page can say it in its reader's language from `parts()` (city_ops.results renders them). An
    argument that is itself a Note is said in that language too."""

    template: str
    args: dict

    def __new__(cls, template: str, **args):
        note = super().__new__(cls, template % args if args else template)
        note.template, note.args = template, args
        return note

    def parts(self) -> dict:
        return {"template": self.template,
                "args": {k: v.parts() if isinstance(v, Note) else v for k, v in self.args.items()}}


def note_parts(note: str) -> dict:
    """What a page needs to say a note in its reader's language (a plain string is its own template)."""
    return note.parts() if isinstance(note, Note) else {"template": str(note), "args": {}}


NO_RUN = gettext_noop("%(name)s: no run of the period reported it")
DAYS_WITHOUT_BASELINE = gettext_noop("%(name)s: no baseline on %(missing)s of the period's days (%(days)s), so "
                                     "the period is not compared")
NO_BASELINE_STORED = gettext_noop("%(name)s: no counterfactual baseline was stored")


def days_listed(days: list[dt.date], most: int = 5) -> str:
    """The first `most` dates, ISO, comma-separated, with "..." when there are more."""
    return ", ".join(d.isoformat() for d in days[:most]) + ("..." if len(days) > most else "")


@dataclass(frozen=True)
class SummedKpi:
    """A headline that is the period's sum of one stored KPI (and of its stored baseline)."""

    name: str
    label: str
    unit: str
    priced: tuple[str, ...] = ()
    better: str = "lower"
    why_no_baseline: str = ""  # the note when no run of the period stored a baseline for it
    per_day: bool = False  # the mean of the counted days' figures (a day's mean wait), not their sum


@dataclass
class PeriodKpis:
    """The KPI rows that count for one agent over a period, with the sums the headlines are made of."""

    agent: str
    rows: list[CountedKpi]

    @classmethod
    def load(cls, *, agent: str, date_from: dt.date, date_to: dt.date) -> PeriodKpis:
        return cls(agent=agent, rows=kpis_counted(date_from=date_from, date_to=date_to, agent=agent))

    def of(self, name: str) -> list[CountedKpi]:
        return [k for k in self.rows if k.name == name]

    def total(self, name: str) -> float | None:
        rows = self.of(name)
        return round(sum(k.value for k in rows), 6) if rows else None

    def baseline_total(self, name: str) -> tuple[float | None, str]:
        """The sum of the stored baselines, or None and why: a period compares like with like only if every
        counted day of the figure has its baseline."""
        rows = self.of(name)
        if not rows:
            return None, Note(NO_RUN, name=name)
        missing = sorted({k.run_date for k in rows if k.baseline is None})
        if len(missing) == len({k.run_date for k in rows}):
            return None, ""
        if missing:
            return None, Note(DAYS_WITHOUT_BASELINE, name=name, missing=len(missing), days=days_listed(missing))
        return round(sum(k.baseline for k in rows), 6), ""

    def run_ids(self, names: set[str] | None = None) -> list[int]:
        return sorted({k.run_id for k in self.rows if names is None or k.name in names})

    def daily(self, names: set[str]) -> list[dict]:
        """Per day: the values and baselines of `names` (a chart's series)."""
        days: dict[dt.date, dict] = defaultdict(lambda: {"values": {}, "baselines": {}})
        for k in self.rows:
            if k.name in names:
                day = days[k.run_date]
                day["values"][k.name] = round(day["values"].get(k.name, 0.0) + k.value, 6)
                if k.baseline is not None or k.name not in day["baselines"]:
                    prior = day["baselines"].get(k.name)
                    day["baselines"][k.name] = (None if k.baseline is None
                                                else round((prior or 0.0) + k.baseline, 6))
        return [{"date": d.isoformat(), **v} for d, v in sorted(days.items())]

    def headline(self, spec: SummedKpi, notes: list[str]) -> Headline:
        """The spec's headline; a missing baseline's reason goes to `notes`."""
        value, (baseline, why) = self.total(spec.name), self.baseline_total(spec.name)
        if baseline is None:
            notes.append(why or spec.why_no_baseline or Note(NO_BASELINE_STORED, name=spec.name))
        if spec.per_day:
            days = len({k.run_date for k in self.of(spec.name)})
            value, baseline = ratio(value, days), ratio(baseline, days)
        return Headline(name=spec.name, label=spec.label, value=value, baseline=baseline,
                        unit=spec.unit, priced=spec.priced, better=spec.better)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None where either is missing or the denominator is zero."""
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 6)


def section_summed(*, kpis: PeriodKpis, specs: list[SummedKpi], extra: list[Headline] = (),
                   notes: list[str] = (), also: set[str] = frozenset()) -> StatementSection:
    """A section of summed headlines (then `extra` ones), the runs they sum and their daily series; `also`
    names the other KPIs the `extra` headlines are made of, whose runs and days count too."""
    notes = list(notes)
    names = {s.name for s in specs} | set(also)
    headlines = [kpis.headline(s, notes) for s in specs] + list(extra)
    return StatementSection(headlines=headlines, runs=kpis.run_ids(names), notes=notes, daily=kpis.daily(names))
