"""A tool call from either engine, checked and run as the requesting user.

`call_prepare` is what an engine does with each call it chose: an unknown tool, a role that may not use it
or arguments that fail its schema are refused (never repaired); a read runs at once; a write becomes a
proposal (the sentence of what will change, and the call), run later by `call_execute` once the user
confirms. A handler's refusal or failure leaves nothing behind: each run is its own savepoint."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from city_ops.core.roles import user_roles

from .calls import ToolCall
from .registry import UnknownToolError, tool_get
from .tools import Tool, ToolFailed, ToolRefused

DONE, PROPOSED, REFUSED, FAILED = "done", "proposed", "refused", "failed"


@dataclass
class CallOutcome:
    tool: str
    args: Any
    writes: bool
    status: str
    result: Any = None
    reason: str = ""
    links: list[dict] = field(default_factory=list)
    summary: str = ""

    def as_json(self) -> dict:
        return {"tool": self.tool, "args": self.args, "writes": self.writes, "status": self.status,
                "result": self.result, "reason": self.reason}


def refused(call: ToolCall, reason: str, *, writes: bool = False) -> CallOutcome:
    return CallOutcome(tool=call.tool, args=call.args, writes=writes, status=REFUSED, reason=reason, summary=reason)


def _checked(*, user, call: ToolCall) -> tuple[Tool | None, CallOutcome | None]:
    """The tool when the user may call it with these arguments; otherwise the refusal saying why."""
    try:
        tool = tool_get(call.tool)
    except UnknownToolError:
        return None, refused(call, _("There is no tool named “%(tool)s”.") % {"tool": call.tool})
    if not tool.allows(user):
        roles = ", ".join(sorted(r.value for r in user_roles(user))) or _("none")
        return None, refused(call, _("Your role (%(roles)s) may not use %(tool)s: it needs %(needed)s. Nothing "
                                     "was done.") % {"roles": roles, "tool": tool.name,
                                                     "needed": " or ".join(r.value for r in tool.roles)},
                             writes=tool.writes)
    if not isinstance(call.args, dict):
        return None, refused(call, _("The arguments of %(tool)s must be an object.") % {"tool": tool.name},
                             writes=tool.writes)
    errors = sorted(tool.validator().iter_errors(call.args), key=lambda e: list(e.path))
    if errors:
        where = "/".join(map(str, errors[0].path)) or _("arguments")
        return None, refused(call, _("Invalid arguments for %(tool)s (%(where)s: %(error)s); nothing was done.")
                             % {"tool": tool.name, "where": where, "error": errors[0].message}, writes=tool.writes)
    return tool, None


def _guarded(call: ToolCall, tool: Tool, run) -> CallOutcome:
    """Run `run()` in a savepoint; a refusal or failure becomes the outcome, with nothing written."""
    try:
        with transaction.atomic():
            return run()
    except (ToolRefused, PermissionDenied) as exc:
        return CallOutcome(tool=tool.name, args=call.args, writes=tool.writes, status=REFUSED, reason=str(exc),
                           summary=str(exc))
    except (ToolFailed, ValidationError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        return CallOutcome(tool=tool.name, args=call.args, writes=tool.writes, status=FAILED, reason=reason,
                           summary=reason)


def _run(*, user, call: ToolCall, tool: Tool) -> CallOutcome:
    def run() -> CallOutcome:
        out = tool.handler(user=user, args=call.args)
        return CallOutcome(tool=tool.name, args=call.args, writes=tool.writes, status=DONE, result=out.data,
                           links=out.links, summary=out.summary)

    return _guarded(call, tool, run)


def call_prepare(*, user, call: ToolCall) -> CallOutcome:
    """Check a call; run it when it reads, propose it when it writes."""
    tool, refusal = _checked(user=user, call=call)
    if refusal is not None:
        return refusal
    if not tool.writes:
        return _run(user=user, call=call, tool=tool)

    def propose() -> CallOutcome:
        sentence = tool.describe(user=user, args=call.args)
        return CallOutcome(tool=tool.name, args=call.args, writes=True, status=PROPOSED,
                           result={"proposal": sentence}, summary=sentence)

    return _guarded(call, tool, propose)


def call_execute(*, user, call: ToolCall) -> CallOutcome:
    """Run a confirmed proposal, checked again: the user's roles or the city may have changed since."""
    tool, refusal = _checked(user=user, call=call)
    return refusal if refusal is not None else _run(user=user, call=call, tool=tool)
