"""The grammar engine: the embedded default and the fallback when no model endpoint answers. A deterministic
parser of dispatchers' requests in zh-Hans and English: `intents` says which tool each part of a request asks
for, `slots` reads its arguments (`dates`, `numbers`, `places` underneath). See docs/operations.md, "Copilot
grammar engine", for what it understands and how to teach it a phrase."""
from __future__ import annotations

import datetime as dt

from ..calls import ToolCall
from .intents import Intent, clauses_split, intent_match
from .numbers import arabize
from .slots import Context, args_extract


def _context(text: str, start: int, end: int, today: dt.date, vocabularies: dict,
             previous: Context | None = None) -> Context:
    raw = text[start:end]
    return Context(raw=raw, text=arabize(raw), today=today, previous=previous, vocabularies=vocabularies)


def _parts(text: str, today: dt.date) -> list[tuple[Intent, Context]]:
    """Each part of the request that asks for a tool, with the parts after it that ask for nothing
    (", high priority", "因为游行") joined on; the leading ones join the first part. The joined part is
    read again as a whole: "明天的收运方案没问题，批准" approves the plan its first half names."""
    spans: list[tuple[int, int]] = []
    lead = None
    vocabularies: dict = {}
    for start, end in clauses_split(text):
        ctx = _context(text, start, end, today, vocabularies)
        if _intent_of(ctx):
            spans.append((start if lead is None or spans else lead, end))
        elif spans:
            spans[-1] = (spans[-1][0], end)
        elif lead is None:
            lead = start
    parts: list[tuple[Intent, Context]] = []
    for start, end in spans:
        ctx = _context(text, start, end, today, vocabularies, parts[-1][1] if parts else None)
        parts.append((_intent_of(ctx), ctx))
    return parts


def _intent_of(ctx: Context) -> Intent | None:
    return intent_match(ctx.text, lambda kinds: bool(set(ctx.places(kinds)) & kinds))


def grammar_parse(*, text: str, today: dt.date) -> list[ToolCall]:
    """The tool calls a request in zh-Hans or English asks for, in order; [] when nothing is understood.
    A request whose parts ask for nothing alone ("公交，明天重排") is read whole."""
    parts = _parts(text, today) or _parts_whole(text, today)
    calls: list[ToolCall] = []
    for intent, ctx in parts:
        call = ToolCall(tool=intent.tool, args=args_extract(intent.tool, ctx))
        if calls and _same_call(calls[-1], call):
            calls[-1] = ToolCall(tool=call.tool, args={**calls[-1].args, **call.args})
        else:
            calls.append(call)
    return calls


def _same_call(before: ToolCall, after: ToolCall) -> bool:
    """Whether a part only adds to the call before it ("重排明天的公交，停站5分钟": the layover is the same
    re-plan's): the same tool, and no argument said differently ("close Bulevardi, close Kaivokatu" are two)."""
    return before.tool == after.tool and all(before.args.get(k, v) == v for k, v in after.args.items())


def _parts_whole(text: str, today: dt.date) -> list[tuple[Intent, Context]]:
    ctx = _context(text, 0, len(text), today, {})
    intent = _intent_of(ctx)
    return [(intent, ctx)] if intent else []
