"""The one interface every agent implements.

An agent is a class with a `name`, what it `reads`, the `events` it reacts to, its `schedules`, and a
`run(ctx)` that gathers inputs through its selectors, decides, acts through its services and returns an
`AgentResult` with its outcome KPIs. The runtime (services.agent_run_execute) owns everything around it:
claiming, timing, errors, storing KPIs. Agents never import each other; they meet in the city model and
through the hooks below (`demo_data_load`, `assets_in_area`, and for the results statement `approved_runs`
and `statement_section`)."""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from city_ops.queues import Queue

if TYPE_CHECKING:
    from django.contrib.gis.geos import GEOSGeometry

    from city_ops.city.maplayers import MapSource
    from city_ops.copilot.tools import Tool

    from .models import AgentRun


@dataclass(frozen=True)
class Kpi:
    """One outcome figure of a run: what the city pays for (buses saved, km saved, alerts raised...).
    `baseline` is the figure the run is compared with, where there is one (e.g. the fixed schedule's km)."""

    name: str
    value: float
    unit: str = ""
    baseline: float | None = None
    label: str = ""


@dataclass
class AgentResult:
    """What a run achieved: KPIs, a one-line summary for the console, and free-form details."""

    kpis: list[Kpi] = field(default_factory=list)
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Headline:
    """One figure of an agent's results statement over a period, against its counterfactual baseline (what the
    city would have had without the agent on the same days), or None with the reason in the section's notes.

    `priced` names the unit costs (city_ops.results) one unit of the figure costs the city, e.g.
    ("truck_km", "truck_km_co2"), and `priced_each` how many of those units one unit of the figure is (a false
    alarm is `priced_each` crew-hours of a call-out); `better` says which way is good for the city ("lower" for
    a cost, "higher" for bins emptied), so the money of a difference is positive when the city is better off."""

    name: str
    label: str
    value: float | None
    baseline: float | None
    unit: str = ""
    priced: tuple[str, ...] = ()
    better: str = "lower"
    priced_each: float = 1.0


@dataclass
class StatementSection:
    """An agent's part of the results statement: its headlines, the runs they sum (ids), notes (every missing
    baseline's reason), per day the values and baselines the headlines sum, for a chart, and what its models
    learned: their error week by week (`week_from`, `week_to`, `forecast_mae`, `forecasts`), where it has one."""

    headlines: list[Headline] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    daily: list[dict] = field(default_factory=list)
    learning: list[dict] = field(default_factory=list)


@dataclass
class RunContext:
    """Everything an agent's run gets: the run row (id, date, trigger, reason, params) and a progress hook."""

    run: "AgentRun"

    @property
    def run_date(self) -> dt.date:
        return self.run.run_date

    @property
    def params(self) -> dict:
        return self.run.params

    def progress(self, done: int, total: int, message: str = "") -> None:
        """Record progress on the run row (the console and `run_agent` show it)."""
        from .services import agent_run_progress

        agent_run_progress(run_id=self.run.pk, done=done, total=total, message=message)


@dataclass(frozen=True)
class Schedule:
    """A beat entry the runtime creates for an agent (editable in the admin afterwards).
    `crontab` fields use the city's time zone; `every_s` makes an interval schedule instead. It starts an
    agent run (`trigger`, `for_tomorrow`), or with `task` sends that Celery task (no arguments) on the
    default queue instead: the agent's upkeep that is no run of the agent (partitions, pruning)."""

    name: str
    crontab: dict[str, str] | None = None
    every_s: int | None = None
    trigger: str = "schedule"
    for_tomorrow: bool = False
    task: str | None = None


# Keys the runtime and the agents' own views set on a run (an event's kind and payload, the closure or plan a
# re-plan is about, the action an edit asks for). A user never sets them: a forged `plan_id` or `payload`
# would make an agent act on something nobody asked about.
RUNTIME_PARAMS = frozenset({"event_id", "event_kind", "payload", "closure_id", "plan_id", "action"})
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


@dataclass(frozen=True)
class RunParam:
    """One run parameter a user may set (API, console, `run_agent --param`), declared by the agent.

    `type` is int, float, bool, str or dt.date; `min`/`max` bound numbers, `choices` bounds strings. Values
    arrive as JSON values or as text (a command line, a form), so `clean` accepts both and returns the typed
    value stored on the run (a date as its ISO text, since params are JSON)."""

    name: str
    type: type
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def clean(self, value: Any) -> Any:
        """The value, typed and checked; ValueError with the reason (without the name) otherwise."""
        if self.type is bool:
            return self._bool(value)
        if self.type is dt.date:
            try:
                return dt.date.fromisoformat(str(value)).isoformat()
            except ValueError:
                raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None
        if self.type is str:
            text = str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else None
            if text is None or (self.choices and text not in self.choices):
                raise ValueError(f"{value!r} is not one of {', '.join(self.choices) or 'a text'}")
            return text
        return self._number(value)

    def _bool(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in _TRUE:
            return True
        if str(value).strip().lower() in _FALSE:
            return False
        raise ValueError(f"{value!r} is not a yes/no value (true, false, 1, 0)")

    def _number(self, value: Any) -> int | float:
        # bool is an int in Python; `true` for a time limit is a mistake, not 1 second.
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"{value!r} is not a number")
        try:
            number = self.type(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{value!r} is not {'an integer' if self.type is int else 'a number'}") from None
        if self.type is int and isinstance(value, float) and number != value:
            raise ValueError(f"{value!r} is not an integer")
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"{value!r} is not a finite number")
        if (self.min is not None and number < self.min) or (self.max is not None and number > self.max):
            raise ValueError(f"{value!r} is outside {self._bounds()}")
        return number

    def json_schema(self) -> dict:
        """The parameter as a JSON schema property: what the copilot's run-starting tools offer a model and
        validate a call with, generated here so the declaration stays the one source."""
        if self.type is bool:
            schema: dict[str, Any] = {"type": "boolean"}
        elif self.type is dt.date:
            schema = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
        elif self.type is str:
            schema = {"type": "string", **({"enum": list(self.choices)} if self.choices else {})}
        else:
            schema = {"type": "integer" if self.type is int else "number"}
            schema.update({k: v for k, v in (("minimum", self.min), ("maximum", self.max)) if v is not None})
        return {**schema, "description": self.help} if self.help else schema

    def describe(self) -> str:
        """`name (type, range)`: for error messages, `run_agent --help` and the console."""
        kind = "date" if self.type is dt.date else self.type.__name__
        if self.choices:
            kind += ": " + "|".join(self.choices)
        elif self.min is not None or self.max is not None:
            kind += f", {self._bounds()}"
        return f"{self.name} ({kind})"

    def _bounds(self) -> str:
        low = "" if self.min is None else f"{self.min:g}"
        high = "" if self.max is None else f"{self.max:g}"
        return f"{low or '-inf'} to {high or 'inf'}"


@dataclass(frozen=True)
class Asset:
    """Something an agent owns at a place (a bus stop, a bin), as other agents and the console see it."""

    agent: str
    kind: str
    id: str
    label: str
    lon: float
    lat: float


class Agent:
    """Base class. Subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    label: ClassVar[str] = ""
    description: ClassVar[str] = ""
    reads: ClassVar[tuple[str, ...]] = ()  # what it reads, for docs and the console
    queue: ClassVar[Queue] = Queue.PLANNING
    events: ClassVar[tuple[str, ...]] = ()  # CityEvent kinds it reacts to
    schedules: ClassVar[tuple[Schedule, ...]] = ()
    daily: ClassVar[bool] = True  # a scheduled run per date is produced once (idempotency key)
    console_url_name: ClassVar[str] = ""  # the agent's console panel (a URL name), linked from the top bar
    # Pages field crews reach from the top bar: (url name, label) pairs, e.g. a photo upload or today's route.
    crew_links: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Layers the console map offers: dicts of id, label, url (GeoJSON), on, and optional color/kind/refresh.
    map_layers: ClassVar[tuple[dict, ...]] = ()
    # Layers drawn as vector tiles at any city size (city_ops.city.maplayers.MapSource, each `id` a layer's id):
    # the console draws those from /api/city/tiles/<id>/{z}/{x}/{y}.mvt instead of the layer's GeoJSON url.
    map_sources: ClassVar[tuple["MapSource", ...]] = ()
    # What a user may set on a run (everything else is refused at request time; see RUNTIME_PARAMS).
    run_params: ClassVar[tuple[RunParam, ...]] = ()
    # The names of its settings (their defaults live in the agent's conf.py: `setting_names = tuple(DEFAULTS)`).
    setting_names: ClassVar[tuple[str, ...]] = ()
    # What the copilot may call on this agent (city_ops.copilot.tools.Tool), each named `<agent name>.<verb>`.
    tools: ClassVar[tuple["Tool", ...]] = ()

    def run(self, ctx: RunContext) -> AgentResult:
        raise NotImplementedError

    def demo_data_load(self, *, scale: int = 1, synthetic: bool = False,
                       history_days: int | None = None) -> dict[str, int]:
        """Create this agent's demo data on the loaded city (deterministic). Returns counts for the log.
        `scale` multiplies it with the city; `history_days` is the days of simulated history to add (None:
        the agent's demo default, 0: none)."""
        return {}

    def assets_in_area(self, *, area: "GEOSGeometry") -> list[Asset]:
        """The agent's assets inside `area` (spatial query), for other agents and the console."""
        return []

    def approved_runs(self, *, date_from: dt.date, date_to: dt.date) -> dict[dt.date, int]:
        """A planning agent's approved plans in the period: date -> the run whose KPIs describe that plan.
        A day's results are that run's (agents.runtime.selectors.kpis_counted), never a sum over re-plans."""
        return {}

    def statement_section(self, *, date_from: dt.date, date_to: dt.date) -> StatementSection | None:
        """What the agent delivered from `date_from` to `date_to` (both inclusive) against its counterfactual,
        for the city's results statement; None: the agent has no part in it (the demo agent)."""
        return None

    def event_params(self, *, event) -> dict | None:
        """Turn a city event into run parameters, or None to ignore this particular event."""
        return {"event_id": event.pk, "event_kind": event.kind}
