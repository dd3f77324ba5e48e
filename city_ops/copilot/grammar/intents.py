"""Which tool a request (or each part of it) asks for: a table of intents, each a few groups of keywords in
zh-Hans and English that must all be present. Chinese has no spaces between words, so keywords are matched
as substrings of the text with its numerals in digits (建1个工单; English ones on word boundaries where a
substring would mislead), not through a tokenizer.

Adding a phrase: put the word in the right group below. Adding a tool: add an `Intent` in order of
specificity (the first that matches a clause wins: "create a work order for the pothole" is
`workorders.create`, not `roads.defects`) and its arguments in `slots.TOOL_SLOTS`."""
from __future__ import annotations

import re
from dataclasses import dataclass

# Shared keyword groups.
_CLOSURE = r"封闭|封路|封锁|closure|road ?block"
_WORK_ORDER = r"工单|work ?orders?|\bjobs?\b|tickets?"
_BUS = r"公交|巴士|\bbus|\d+\s*(?:路|号线)|线路|\broute\b|\blines?\b"
_WASTE = r"垃圾|收运|清运|环卫|waste|garbage|refuse|trash|sanitation|collection"
_PLAN = r"计划|方案|规划|路线|排|\bplan|\broutes?\b|schedule"
_FLOOD = r"积水|内涝|洪水|水浸|淹|flood"
_ALERT = r"预警|报警|警报|告警|alerts?\b|alarms?\b|warnings?\b"


@dataclass(frozen=True)
class Intent:
    """`tool` is asked for when every group of one of `any_of` matches."""

    tool: str
    any_of: tuple[tuple[re.Pattern, ...], ...]
    # The intent needs a place of one of these kinds said in the clause (flood.status names its zone or
    # sensor; "what's the status" alone is not a flood question).
    needs_place: frozenset[str] = frozenset()


def _intent(tool: str, *alternatives: tuple[str, ...], needs_place: tuple[str, ...] = ()) -> Intent:
    return Intent(tool, tuple(tuple(re.compile(group, re.IGNORECASE) for group in groups)
                              for groups in alternatives), frozenset(needs_place))


INTENTS: tuple[Intent, ...] = (
    _intent("city.closure_lift", (r"解除|撤销|撤掉|取消|结束|\blift|\bremove|\bcancel|\bend\b", _CLOSURE),
            (r"解封|恢复通行|重新开放|re-?open",), (r"\bopen\b", r"\bagain\b")),
    _intent("city.closure_open", (r"封闭|封路|封锁|封掉|封1?下|封上|关闭|\bclose\b|\bshut\b|block off|"
                                  r"\b(?:need|want|have|get)\b.*\bclosed\b|\bclosed\s+(?:until|till|for|due|because)",)),
    _intent("workorders.create",
            (r"新建|创建|建1?个|开1?个|开张|派1?个|下1?个|\bcreate\b|\braise\b|\bopen an?\b|\blog an?\b|"
             r"\bfile an?\b|\bmake an?\b|\badd an?\b|\bneed an?\b|\bnew (?:work ?order|job|ticket)\b(?!s)",
             _WORK_ORDER)),
    _intent("workorders.list", (_WORK_ORDER,),
            (r"\bcrew\s*\d|\d+\s*号?\s*班组", r"working on|\bdoing\b|手上|在做|任务|干什么")),
    _intent("sanitation.plan_approve", (r"批准|审批|核准|通过|\bapprove|sign off", _PLAN)),
    _intent("sanitation.bins_at_risk", (r"垃圾桶|桶|\bbins?\b|containers?", r"满|溢|风险|at risk|overflow|\bfull\b")),
    _intent("sanitation.plan", (_WASTE, _PLAN)),
    _intent("bus.warnings", (_BUS, r"串车|大间隔|间隔|bunch|gaps?\b|headway|" + _ALERT), (r"串车|bunching|headway",)),
    _intent("bus.plan", (_BUS, r"排班|重排|排|计划|调度|停站|\bplan|re-?plan|schedul|blocks?\b|layover"),
            (r"排班|停站|layover",)),
    _intent("flood.alerts", (_FLOOD, _ALERT), (r"\bflooded\b|淹了|被淹|有(?:没有)?(?:积水|内涝)",)),
    _intent("flood.status", (_FLOOD + r"|水位|读数|水深|传感器|水位计|water|level|reading|depth|sensor|gauge",),
            needs_place=("zone", "sensor")),
    _intent("roads.defects", (r"坑|裂缝|裂纹|路面|病害|破损|defects?|potholes?|cracks?|damage",)),
    _intent("results.statement", (r"结算单|结算|账单|对账|成果报告|绩效|statement|pay.by.result",)),
)

# Where one request asks for two things: "看看积水预警，再看看公交告警", "flood alerts and bus warnings".
# A part that asks for nothing by itself (", high priority", "因为游行") belongs to the part before it. A comma
# before a decimal is a coordinate's ("60.1699, 24.9384"), not a break.
_CLAUSE_BREAK = re.compile(r"[，,](?!\s*-?\d+\.\d)|[；;。！!？?\n]|\band then\b|\bthen\b|\band also\b|\band\b|"
                           r"\balso\b|然后|再|并且|同时|另外|还有|和", re.IGNORECASE)


def clauses_split(text: str) -> list[tuple[int, int]]:
    """The parts of `text` between clause breaks, as (start, end) spans; empty parts dropped."""
    spans, start = [], 0
    for m in _CLAUSE_BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(s, e) for s, e in spans if text[s:e].strip()]


def intent_match(text: str, has_place) -> Intent | None:
    """The first intent whose keywords `text` holds; `has_place(kinds)` says whether a place of those
    kinds is named (asked only of intents that need one)."""
    for intent in INTENTS:
        if not any(all(group.search(text) for group in groups) for groups in intent.any_of):
            continue
        if intent.needs_place and not has_place(intent.needs_place):
            continue
        return intent
    return None
