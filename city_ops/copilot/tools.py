"""What the copilot may call: a `Tool` is a dotted name, a description, the JSON schema of its arguments,
whether it writes, the roles that may use it and the handler that runs it as the requesting user.

Tools are declared where the code they call lives: an agent in its `agent.py` (`Agent.tools`), a platform
app in its `copilot_tools.py` (`TOOLS`); `city_ops.copilot.registry` discovers both. Handlers call the
app's existing services and selectors with the user, so a tool can do no more than the user could; they
say what went wrong by raising `ToolRefused` (the user may not) or `ToolFailed` (it cannot be done)."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from city_ops.core.roles import Role, user_has_role

if TYPE_CHECKING:
    from agents.runtime.base import RunParam

# A model endpoint's function names allow only letters, digits, `_` and `-` (OpenAI: at most 64).
WIRE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
NAME = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")
DATE_SCHEMA = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
EVERYONE = (Role.DISPATCHER, Role.FIELD_CREW)
STREET = {"type": "string", "minLength": 1, "maxLength": 200, "description": "a street name as the city model has it"}
DISTRICT = {"type": "string", "minLength": 1, "maxLength": 100, "description": "a district's name or code"}


class ToolRefused(Exception):
    """The user may not do this (their role, or the object is not theirs): nothing was done."""


class ToolFailed(Exception):
    """It cannot be done as asked (an unknown street, no plan for that date): nothing was done."""


@dataclass
class ToolResult:
    """What a handler returns: JSON data, a one-line summary in the active language (the grammar engine's
    answer is made of these) and links to the objects it touched ({"label", "url"})."""

    data: Any
    summary: str
    links: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Tool:
    """One callable thing. `handler(*, user, args) -> ToolResult`; a write also has `describe(*, user, args)
    -> str`, the sentence a proposal shows (what will change), which resolves the arguments the way the
    handler will and raises ToolFailed for the same unknown street before anyone confirms."""

    name: str
    description: str
    schema: dict
    handler: Callable[..., ToolResult]
    writes: bool = False
    roles: tuple[Role, ...] = (Role.DISPATCHER,)
    describe: Callable[..., str] | None = None

    @property
    def wire_name(self) -> str:
        return wire_name(self.name)

    def validator(self) -> Draft202012Validator:
        return Draft202012Validator(self.schema, format_checker=Draft202012Validator.FORMAT_CHECKER)

    def wire_schema(self) -> dict:
        """The schema a model sees: without the top-level `oneOf` several endpoints refuse in function
        parameters (what it said moves into the description); the full schema still validates every call."""
        schema = {k: v for k, v in self.schema.items() if k != "oneOf"}
        if one_of := self.schema.get("oneOf"):
            names = [n for alt in one_of for n in alt.get("required", [])]
            schema["description"] = f"Give exactly one of: {', '.join(names)}."
        return schema

    def allows(self, user) -> bool:
        return user_has_role(user, *self.roles)


def wire_name(name: str) -> str:
    """`bus.plan` -> `bus__plan`: the name on the wire to a model."""
    return name.replace(".", "__")


def dotted_name(wire: str) -> str:
    return wire.replace("__", ".")


def args_schema(properties: dict, *, required: tuple[str, ...] = (), one_of: tuple[str, ...] = ()) -> dict:
    """An object schema that refuses unknown arguments; `one_of` names the ways to name one thing (a street,
    segment ids, ...), each optional, exactly one of them required."""
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    if one_of:
        schema["oneOf"] = [{"required": [name]} for name in one_of]
    return schema


def run_params_schema(run_params: tuple[RunParam, ...], names: tuple[str, ...], *,
                      date_help: str = "the day, YYYY-MM-DD in the city's time zone") -> dict:
    """The arguments of a tool that starts an agent's run: `date` (the run's date, or the agent's own
    `date` parameter where it declares one) and the named run parameters, generated from the agent's
    `run_params` so a range changed there changes here."""
    declared = {p.name: p for p in run_params}
    properties = {"date": declared["date"].json_schema() if "date" in declared
                  else {**DATE_SCHEMA, "description": date_help}}
    properties.update({name: declared[name].json_schema() for name in names if name != "date"})
    return args_schema(properties)


def external_text(text: str, *, source: str) -> dict:
    """Text that came from outside the city's own code (a CAP feed, a crew's note): the model gets it as
    marked data, never as part of its instructions."""
    return {"untrusted_external_text": text, "source": source}


def tool_problems(tool: Tool, *, prefix: str) -> list[str]:
    """What is wrong with a declaration: its name (dotted, under `prefix`, fit for the wire), its schema,
    a write without roles or without the sentence its proposal shows."""
    problems = []
    if not NAME.fullmatch(tool.name) or not tool.name.startswith(f"{prefix}.") or not WIRE_NAME.fullmatch(
            tool.wire_name):
        problems.append(f"tool {tool.name!r} must be named '{prefix}.<verb>' (lower case, letters, digits, _)")
    try:
        Draft202012Validator.check_schema(tool.schema)
        if tool.schema.get("type") != "object":
            problems.append(f"tool {tool.name}: its schema must describe an object of arguments")
    except SchemaError as exc:
        problems.append(f"tool {tool.name}: invalid JSON schema: {exc.message}")
    if tool.writes and (not tool.roles or tool.describe is None):
        problems.append(f"tool {tool.name} writes, so it must name the roles allowed and describe its proposal")
    if not tool.description:
        problems.append(f"tool {tool.name} has no description")
    return problems


def date_arg(args: dict, key: str = "date", *, default: dt.date | None = None) -> dt.date | None:
    """A date argument (the schema's format check has already refused 2026-02-30) as a date."""
    return dt.date.fromisoformat(args[key]) if args.get(key) else default


def run_request_tool(*, agent: str, verb: str, description: str, run_params: tuple[RunParam, ...],
                     params: tuple[str, ...] = ()) -> Tool:
    """A write tool that asks for a run of `agent` through `agent_run_request` (the runtime's user entry
    point: its parameter checks, and an identical pending request answered with the same run). `date` is the
    run's date (tomorrow, the day nightly plans are for, when not given); `params` are the agent's run
    parameters the tool offers, their schema generated from `run_params`."""
    declared = {p.name for p in run_params}

    def request(args: dict) -> tuple[dt.date, dict]:
        from city_ops.core.timeutil import city_today

        day = date_arg(args, default=city_today() + dt.timedelta(days=1))
        return day, {k: v for k, v in args.items() if k in declared}

    def describe(*, user, args: dict) -> str:
        from django.utils.translation import gettext as _

        day, run_args = request(args)
        extra = "".join(f", {k} = {v}" for k, v in run_args.items() if k != "date")
        return _("Start a %(agent)s planning run for %(date)s%(extra)s; the new plan is a draft to review.") % {
            "agent": agent, "date": day.isoformat(), "extra": extra}

    def handler(*, user, args: dict) -> ToolResult:
        from django.urls import reverse
        from django.utils.translation import gettext as _

        from agents.runtime.services import RunParamsError, agent_run_request

        day, run_args = request(args)
        try:
            run, created = agent_run_request(agent=agent, run_date=day, params=run_args, user=user,
                                             reason="asked through the copilot")
        except RunParamsError as exc:
            raise ToolFailed(str(exc)) from None
        summary = (_("Requested a %(agent)s plan for %(date)s: run #%(id)d.") if created else
                   _("A %(agent)s plan for %(date)s is already queued: run #%(id)d."))
        return ToolResult(data={"run_id": run.pk, "created": created, "status": run.status, "date": day.isoformat()},
                          summary=summary % {"agent": agent, "date": day.isoformat(), "id": run.pk},
                          links=[{"label": _("Run #%(id)d") % {"id": run.pk},
                                  "url": f"{reverse('console:runs')}?agent={agent}"}])

    return Tool(name=f"{agent}.{verb}", description=description, writes=True, handler=handler, describe=describe,
                schema=run_params_schema(run_params, params))
