"""The arguments of each tool, read from the words of the request that asked for it. `TOOL_SLOTS` says, per
tool, which arguments to look for; each `Slot` lists alternative ways to fill one place in the schema (a
closure by its id, else by its street), the first that finds a value wins."""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from city_ops.core.timeutil import city_tz

from . import dates
from .places import Vocabulary, places_find, vocabulary

_CJK = re.compile(r"[\u4e00-\u9fff]")


@dataclass
class Context:
    """One request part: `raw` as said, `text` with numerals in digits, the city's `today`, and the part
    before it in the same request, whose places and date this part shares unless it says its own
    ("看看Kluuvi的积水预警和路面坑洞": the defects are Kluuvi's too)."""

    raw: str
    text: str
    today: dt.date
    previous: Context | None = None
    # The names of each kind, read once per request and shared by its parts.
    vocabularies: dict[frozenset[str], Vocabulary] = field(default_factory=dict)
    _places: dict[frozenset[str], dict[str, str]] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        return "zh" if _CJK.search(self.raw) else "en"

    def places(self, kinds: frozenset[str]) -> dict[str, str]:
        if kinds not in self._places:
            shared = self.previous.places(kinds) if self.previous else {}
            if kinds not in self.vocabularies:
                self.vocabularies[kinds] = vocabulary(kinds)
            self._places[kinds] = {**shared, **places_find(self.raw, kinds, self.vocabularies[kinds])}
        return self._places[kinds]

    def date(self) -> dt.date | None:
        own = dates.date_find(self.text, self.today)
        return own or (self.previous.date() if self.previous else None)


Extractor = Callable[[Context], Any]
_ROAD_KINDS = frozenset({"street", "district"})
_FLOOD_KINDS = frozenset({"zone", "district"})


def _first(patterns: list[tuple[str, Any]], text: str) -> Any:
    """The value of the first (pattern, value) pair whose pattern `text` holds."""
    for pattern, value in patterns:
        if re.search(pattern, text, re.IGNORECASE):
            return value
    return None


def _number(patterns: tuple[str, ...], text: str) -> int | None:
    for pattern in patterns:
        m = re.search(pattern, text, re.IGNORECASE)
        if m:
            return int(m[1])
    return None


# --- dates and times -------------------------------------------------------------------------------------

def date_said(ctx: Context) -> str | None:
    date = ctx.date()
    return date.isoformat() if date else None


def date_or_today(ctx: Context) -> str:
    """A required date: the one said, else today."""
    return date_said(ctx) or ctx.today.isoformat()


_UNTIL = re.compile(r"(?:until|till|through|到|直到|至)\s*", re.IGNORECASE)


def valid_to(ctx: Context) -> str | None:
    """Until when: a clock time said (18:00, 下午6点) on the day said, else today; with no time, a day
    said right after until/到 ("until Friday": the closure's schema takes a date as to the end of it)."""
    time = dates.time_find(ctx.text)
    if time is not None:
        return dates.datetime_iso(date=ctx.date() or ctx.today, time=time, tz=city_tz())
    starts = {m.end() for m in _UNTIL.finditer(ctx.text)}
    until = [s.date for s in dates.dates_all(ctx.text, ctx.today) if s.start in starts]
    return until[0].isoformat() if until else None


def _period_end(index: int) -> Extractor:
    def extract(ctx: Context) -> str | None:
        period = dates.period_find(ctx.text, ctx.today)
        return period[index].isoformat() if period else None
    return extract


def layover_min(ctx: Context) -> int | None:
    return _number((r"(\d+)\s*(?:分钟|minutes?\b|mins?\b|(?<!点)分(?!之))",), ctx.text)


# --- places ----------------------------------------------------------------------------------------------

def _place(kind: str, kinds: frozenset[str]) -> Extractor:
    return lambda ctx: ctx.places(kinds).get(kind)


_SENSOR_WORD = re.compile(r"传感器|水位计|雨量计|sensor|gauge", re.IGNORECASE)


def sensor_named(ctx: Context) -> str | None:
    """A sensor when the request says it means one ("D-PITKA传感器", "sensor RG-ESPA")."""
    return ctx.places(frozenset({"sensor"})).get("sensor") if _SENSOR_WORD.search(ctx.text) else None


def position(ctx: Context) -> list[float] | None:
    """A point typed as "lat, lon" (the way map apps copy it), given to tools as [lon, lat]."""
    m = re.search(r"(-?\d{1,2}\.\d+)\s*[,，\s]\s*(-?\d{1,3}\.\d+)", ctx.text)
    return [float(m[2]), float(m[1])] if m else None


# --- ids and names of things -----------------------------------------------------------------------------

def route(ctx: Context) -> str | None:
    m = (re.search(r"(?:route|line|线路|路线)\s*#?\s*([A-Za-z]?\d+[A-Za-z]?)(?![A-Za-z0-9])", ctx.text, re.IGNORECASE)
         or re.search(r"(?<![\d.])(\d+[A-Za-z]?)\s*(?:路|号线)", ctx.text))
    return m[1] if m else None


def closure_id(ctx: Context) -> int | None:
    return _number((r"(?:closure|封路|封闭|封锁)\s*(?:no\.?|number|id)?\s*#?\s*(\d+)",
                    r"(\d+)\s*号\s*(?:封路|封闭|封锁)", r"#\s*(\d+)"), ctx.text)


def plan_id(ctx: Context) -> int | None:
    return _number((r"\bplan\s*(?:no\.?|number|id)?\s*#?\s*(\d+)(?![\d-])",
                    r"(\d+)\s*号\s*(?:收运|清运)?\s*(?:方案|计划)", r"#\s*(\d+)"), ctx.text)


def crew(ctx: Context) -> str | None:
    """A crew member by username: "crew 2", "crew2", "2号班组" → crew2."""
    n = _number((r"\bcrew\s*#?\s*(\d+)", r"(\d+)\s*号?\s*(?:班组|小组|组|队)", r"(?:班组|小组)\s*(\d+)"), ctx.text)
    return f"crew{n}" if n is not None else None


# --- values from fixed choices ---------------------------------------------------------------------------

# 严重程度 is the word "severity", not a level.
_SEVERITY = [(r"非常严重|特别严重|极其严重|危急|危险|紧急|critical|dangerous|urgent", "critical"),
             (r"严重(?!程度)|severe|serious", "severe"), (r"中等|moderate|medium", "moderate"),
             (r"轻微|轻度|minor|small", "minor")]
_DEFECT_CLASS = [(r"坑|pothole", "pothole"), (r"裂|crack", "crack")]
_STATUS = [(r"进行中|在做|处理中|in[ -]progress|ongoing", "in_progress"),
           (r"已完成|完成了|做完|\bdone\b|finished|completed", "done"), (r"已验收|验收|verified", "verified"),
           (r"已取消|取消的|cancell?ed", "cancelled"), (r"已分配|已派|\bassigned\b(?!\s+to)", "assigned"),
           (r"新建的|新的|未分配|\bnew\b|unassigned", "new"),
           # Not states of an order but the tool's two summaries of them: not closed, and past due.
           (r"超期|逾期|过期|overdue|late\b", "overdue"), (r"未完成|未关闭|待处理|没做完|\bopen\b|outstanding", "open")]
_PRIORITY = [(r"紧急|特急|加急|马上|立刻|立即|尽快|urgent|asap|immediately", "urgent"),
             (r"高优先|优先级高|优先级：?高|high|重要", "high"),
             (r"低优先|优先级低|优先级：?低|\blow\b|不急", "low"), (r"普通|normal", "normal")]


def _choice(table: list[tuple[str, Any]]) -> Extractor:
    return lambda ctx: _first(table, ctx.text)


# --- free text -------------------------------------------------------------------------------------------

_REASON_WORDS = r"施工|游行|积水|事故|活动|维修|爆管|马拉松|抢修|construction|roadworks|parade|flooding|" \
                r"accident|event|repairs|marathon"
_REASON_AFTER = re.compile(r"(?:因为|由于|原因是|原因[:：]|because of|due to|\bfor\b)\s*(.+?)\s*"
                           r"(?:[，,。.;；!！]|\buntil\b|\btill\b|到|直到|至|$)", re.IGNORECASE)


def reason(ctx: Context) -> str:
    """Why a road closes: a known reason word, else the words after 因为/due to/for, else the request."""
    m = re.search(_REASON_WORDS, ctx.raw, re.IGNORECASE)
    if m:
        return m[0]
    m = _REASON_AFTER.search(ctx.raw)
    if m:
        return re.sub(r"^(?:an?|the)\s+", "", m[1], flags=re.IGNORECASE)
    return ctx.raw.strip()


# (pattern, Chinese title, English title) of the jobs a work order is usually for.
_TASKS = [(r"坑|pothole", "修补坑洞", "Repair pothole"), (r"裂缝|裂纹|crack", "修补裂缝", "Repair crack"),
          (r"路灯|street ?light|lamp", "修理路灯", "Fix streetlight"),
          (r"排水|下水道|雨水口|drain|gully", "疏通排水口", "Clear drain"),
          (r"路牌|标志|标牌|\bsigns?\b", "更换路牌", "Replace sign"), (r"涂鸦|graffiti", "清除涂鸦", "Remove graffiti"),
          (r"倒树|树倒|fallen tree|tree down|\btree\b", "清理倒树", "Remove fallen tree")]
_TITLED = re.compile(r"(?:titled|title|called|标题是?|名为|叫)\s*[:：]?\s*[\"“'‘「](.+?)[\"”'’」]", re.IGNORECASE)


def title(ctx: Context) -> str:
    """A work order's title: the one quoted, else the task and the street ("Repair pothole on Kaivokatu",
    "Kaivokatu修补坑洞")."""
    m = _TITLED.search(ctx.raw)
    if m:
        return m[1].strip()
    street = ctx.places(_ROAD_KINDS).get("street")
    task = next(((zh, en) for pattern, zh, en in _TASKS if re.search(pattern, ctx.raw, re.IGNORECASE)), None)
    if ctx.lang == "zh":
        return f"{street or ''}{task[0] if task else '工单'}"
    if task:
        return f"{task[1]} on {street}" if street else task[1]
    return f"Work order on {street}" if street else "Work order"


@dataclass(frozen=True)
class Slot:
    """One argument place: (name, extractor) alternatives, the first that finds a value fills it."""

    ways: tuple[tuple[str, Extractor], ...]


def _slot(*ways: tuple[str, Extractor]) -> Slot:
    return Slot(ways)


_STREET = ("street", _place("street", _ROAD_KINDS))
_DISTRICT = ("district", _place("district", _ROAD_KINDS))
_FLOOD_DISTRICT = ("district", _place("district", _FLOOD_KINDS))
_ZONE = ("zone", _place("zone", _FLOOD_KINDS))

TOOL_SLOTS: dict[str, tuple[Slot, ...]] = {
    "flood.alerts": (_slot(_ZONE), _slot(_FLOOD_DISTRICT)),
    "flood.status": (_slot(("sensor", sensor_named), _ZONE, ("sensor", _place("sensor", frozenset({"sensor"})))),),
    "city.closure_open": (_slot(_STREET), _slot(("reason", reason)), _slot(("valid_to", valid_to))),
    "city.closure_lift": (_slot(("closure_id", closure_id), _STREET),),
    "bus.plan": (_slot(("date", date_or_today)), _slot(("layover_min", layover_min))),
    "bus.warnings": (_slot(("route", route)),),
    "sanitation.plan": (_slot(("date", date_or_today)),),
    "sanitation.plan_approve": (_slot(("plan_id", plan_id), ("date", date_or_today)),),
    "sanitation.bins_at_risk": (_slot(("date", date_or_today)), _slot(_DISTRICT)),
    "roads.defects": (_slot(_STREET), _slot(_DISTRICT), _slot(("severity", _choice(_SEVERITY))),
                      _slot(("class", _choice(_DEFECT_CLASS)))),
    "workorders.list": (_slot(("status", _choice(_STATUS))), _slot(("crew", crew))),
    "workorders.create": (_slot(("title", title)), _slot(_STREET, ("position", position)),
                          _slot(("priority", _choice(_PRIORITY)))),
    "results.statement": (_slot(("from", _period_end(0))), _slot(("to", _period_end(1)))),
}


def args_extract(tool: str, ctx: Context) -> dict[str, Any]:
    """The arguments of `tool` said in `ctx`; an argument not said is left out (a required one the tool
    then refuses, by its schema)."""
    args = {}
    for slot in TOOL_SLOTS[tool]:
        for name, extract in slot.ways:
            value = extract(ctx)
            if value is not None:
                args[name] = value
                break
    return args
