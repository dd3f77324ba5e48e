"""Reads of the runtime's results: which runs' KPIs count for a day.

A daily agent may run several times for one date (the nightly plan, re-plans after a closure or a
breakdown, a dispatcher's re-plan): each run's KPIs describe the whole day again, so summing them counts the
day several times. A daily agent's figure for a date is that of its latest approved plan (the agent's
`approved_runs` hook), else of its latest succeeded scheduled run, else of its latest succeeded run; a
non-daily agent's runs (the flood agent's evaluations every minute) each cover their own readings, so
they add up. The Results page, `/api/agents/results/` and the results statement all read through here."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from .models import AgentRun, RunKpi
from .registry import UnknownAgentError, agent_get


@dataclass(frozen=True)
class CountedKpi:
    """One stored KPI row that counts for its agent's day."""

    run_id: int
    agent: str
    run_date: dt.date
    name: str
    label: str
    unit: str
    value: float
    baseline: float | None


def _daily(agent: str) -> bool:
    try:
        return agent_get(agent).daily
    except UnknownAgentError:  # KPIs of an agent no longer installed: counted the safe way, once a day
        return True


def _approved(agent: str, date_from: dt.date, date_to: dt.date) -> dict[dt.date, int]:
    try:
        return agent_get(agent).approved_runs(date_from=date_from, date_to=date_to)
    except UnknownAgentError:
        return {}


def kpis_counted(*, date_from: dt.date, date_to: dt.date, agent: str | None = None) -> list[CountedKpi]:
    """The KPI rows that count from `date_from` to `date_to` (inclusive), by date, agent and name."""
    qs = RunKpi.objects.filter(run__status=AgentRun.Status.SUCCEEDED, run_date__range=(date_from, date_to))
    if agent:
        qs = qs.filter(agent=agent)
    rows = qs.values_list("run_id", "agent", "run_date", "name", "label", "unit", "value", "baseline",
                          "run__trigger", "run__finished_at")
    by_agent: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        by_agent[row[1]].append(row)
    out: list[CountedKpi] = []
    for name, agent_rows in sorted(by_agent.items()):
        if _daily(name):
            agent_rows = _one_run_per_day(agent_rows, _approved(name, date_from, date_to))
        out += [CountedKpi(*row[:8]) for row in agent_rows]
    return sorted(out, key=lambda k: (k.run_date, k.agent, k.name, k.run_id))


def _one_run_per_day(rows: list[tuple], approved: dict[dt.date, int]) -> list[tuple]:
    """Per (date, KPI name) the row of the approved plan's run, else the latest scheduled run's, else the
    latest run's. By name, not by run: a run that did not report a KPI (a re-plan skipped) leaves the
    choice of that KPI to the others."""
    def rank(row: tuple) -> tuple:
        run_id, _agent, day, *_rest, trigger, finished_at = row
        return (approved.get(day) == run_id, trigger == AgentRun.Trigger.SCHEDULE,
                finished_at or dt.datetime.min.replace(tzinfo=dt.UTC), run_id)

    best: dict[tuple[dt.date, str], tuple] = {}
    for row in rows:
        key = (row[2], row[3])
        if key not in best or rank(row) > rank(best[key]):
            best[key] = row
    return list(best.values())


def results_daily(*, date_from: dt.date, date_to: dt.date, agent: str | None = None) -> list[dict]:
    """Per agent, day and KPI: the counted value and baseline (summed only where the agent's runs add up),
    with the runs they come from; oldest first."""
    groups: dict[tuple, list[CountedKpi]] = defaultdict(list)
    for k in kpis_counted(date_from=date_from, date_to=date_to, agent=agent):
        groups[(k.agent, k.run_date, k.name)].append(k)
    out = []
    for (agent_name, day, name), kpis in groups.items():
        baselines = [k.baseline for k in kpis if k.baseline is not None]
        out.append({"agent": agent_name, "run_date": day, "name": name, "label": kpis[0].label,
                    "unit": kpis[0].unit, "value": sum(k.value for k in kpis),
                    "baseline": sum(baselines) if baselines else None,
                    "runs": len(kpis), "run_ids": sorted(k.run_id for k in kpis)})
    return sorted(out, key=lambda r: (r["agent"], r["name"], r["run_date"]))
