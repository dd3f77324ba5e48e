"""Dates, periods and times as dispatchers say them, relative to the city's `today`: 今天/明天/后天/昨天,
下周一 .. 下周日, 周三, 12月8日, 本月/上个月, today/tomorrow/Monday/next Monday/Dec 8/8 December, ISO, and
times (18:00, 6pm, 下午6点). The text is expected with its numerals already in digits (`numbers.arabize`)."""
from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

_MONTHS = {name: i for i, names in enumerate(
    [(), ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",),
     ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sept", "sep"), ("october", "oct"),
     ("november", "nov"), ("december", "dec")]) for name in names}
_MONTH = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_EN_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ZH_WEEKDAY = {**{str(i): i - 1 for i in range(1, 8)}, "日": 6, "天": 6}
# Words for a day relative to today; the longest that matches wins (大后天 over 后天, "day after tomorrow"
# over "tomorrow").
_RELATIVE_DAYS = {"今天": 0, "今日": 0, "今晚": 0, "today": 0, "tonight": 0, "明天": 1, "明日": 1, "明早": 1,
                  "明晚": 1, "tomorrow": 1, "后天": 2, "day after tomorrow": 2, "大后天": 3, "昨天": -1,
                  "yesterday": -1, "前天": -2, "day before yesterday": -2}
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"


@dataclass(frozen=True)
class DateSpan:
    """A date said in the text, and where."""

    start: int
    end: int
    date: dt.date


def _year_near(today: dt.date, month: int, day: int) -> dt.date:
    """A month and day with no year: this year's, or next year's when this year's is half a year past (Jan 5
    said in December)."""
    date = dt.date(today.year, month, day)
    return date.replace(year=today.year + 1) if (today - date).days > 183 else date


def _month_day(today: dt.date, day: int) -> dt.date:
    """A day of the month with no month ("the 10th"): this month's, or next month's once it has passed."""
    date = today.replace(day=day)
    if date >= today:
        return date
    return (today.replace(day=1) + dt.timedelta(days=32)).replace(day=day)


def _week_day(today: dt.date, weekday: int, week: str) -> dt.date:
    """`weekday` (0 = Monday) of this week, next week, the week after or last week; with no week word, the
    nearest such day on or after today."""
    monday = today - dt.timedelta(days=today.weekday())
    offsets = {"this": 0, "本": 0, "这": 0, "next": 7, "下": 7, "下下": 14, "last": -7, "上": -7}
    if week:
        return monday + dt.timedelta(days=offsets[week] + weekday)
    return today + dt.timedelta(days=(weekday - today.weekday()) % 7)


_DateRule = tuple[re.Pattern, Callable[[re.Match, dt.date], dt.date]]
_DATE_RULES: list[_DateRule] = [
    (re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)"),
     lambda m, t: dt.date(int(m[1]), int(m[2]), int(m[3]))),
    (re.compile(r"(?<!\d)(\d{4})年(\d{1,2})月(\d{1,2})[日号]"),
     lambda m, t: dt.date(int(m[1]), int(m[2]), int(m[3]))),
    (re.compile(r"(?<!\d)(\d{1,2})月(\d{1,2})[日号]"), lambda m, t: _year_near(t, int(m[1]), int(m[2]))),
    (re.compile(rf"\b{_MONTH}\s+{_DAY}\b", re.I), lambda m, t: _year_near(t, _MONTHS[m[1].lower()], int(m[2]))),
    (re.compile(rf"(?<!\d){_DAY}\s+(?:of\s+)?{_MONTH}\b", re.I),
     lambda m, t: _year_near(t, _MONTHS[m[2].lower()], int(m[1]))),
    (re.compile(r"\bthe\s+(\d{1,2})(?:st|nd|rd|th)\b", re.I), lambda m, t: _month_day(t, int(m[1]))),
    (re.compile("|".join(sorted(map(re.escape, _RELATIVE_DAYS), key=len, reverse=True)), re.I),
     lambda m, t: t + dt.timedelta(days=_RELATIVE_DAYS[m[0].lower()])),
    (re.compile(r"(下下|下|本|这|上)?\s*个?(?:周|星期|礼拜)([1-7日天])"),
     lambda m, t: _week_day(t, _ZH_WEEKDAY[m[2]], m[1] or "")),
    (re.compile(rf"\b(?:(next|this|last)\s+)?({'|'.join(_EN_WEEKDAYS)})\b", re.I),
     lambda m, t: _week_day(t, _EN_WEEKDAYS.index(m[2].lower()), (m[1] or "").lower())),
]


def dates_all(text: str, today: dt.date) -> list[DateSpan]:
    """Every date in `text`, in order; where two readings overlap, the longer (大后天, not 后天)."""
    found = []
    for pattern, to_date in _DATE_RULES:
        for m in pattern.finditer(text):
            try:
                found.append(DateSpan(m.start(), m.end(), to_date(m, today)))
            except ValueError:  # 2月30日: not a date, so not read as one
                continue
    found.sort(key=lambda s: (s.start, s.start - s.end))
    kept: list[DateSpan] = []
    for span in found:
        if not kept or span.start >= kept[-1].end:
            kept.append(span)
    return kept


def date_find(text: str, today: dt.date) -> dt.date | None:
    """The first date said in `text`, if any."""
    spans = dates_all(text, today)
    return spans[0].date if spans else None


def _month_bounds(year: int, month: int) -> tuple[dt.date, dt.date]:
    return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])


def _month_shift(today: dt.date, months: int) -> tuple[dt.date, dt.date]:
    index = today.year * 12 + today.month - 1 + months
    return _month_bounds(index // 12, index % 12 + 1)


def _week_shift(today: dt.date, weeks: int) -> tuple[dt.date, dt.date]:
    monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(weeks=weeks)
    return monday, monday + dt.timedelta(days=6)


def _named_month(today: dt.date, month: int) -> tuple[dt.date, dt.date]:
    """A month named without a year: the latest one not after this month (a statement looks back)."""
    return _month_bounds(today.year if month <= today.month else today.year - 1, month)


_PeriodRule = tuple[re.Pattern, Callable[[re.Match, dt.date], tuple[dt.date, dt.date]]]
_PERIOD_RULES: list[_PeriodRule] = [
    (re.compile(r"上个?月|last month", re.I), lambda m, t: _month_shift(t, -1)),
    (re.compile(r"本月|这个?月|this month", re.I), lambda m, t: _month_shift(t, 0)),
    (re.compile(r"(?:上|last\s+)(?:周|星期|礼拜|week)(?![1-7日天])", re.I), lambda m, t: _week_shift(t, -1)),
    (re.compile(r"(?:本|这|this\s+)(?:周|星期|礼拜|week)(?![1-7日天])", re.I), lambda m, t: _week_shift(t, 0)),
    (re.compile(r"(?<![\d年])(\d{1,2})月(?!\d)"), lambda m, t: _named_month(t, int(m[1]))),
    (re.compile(rf"\b{_MONTH}\b(?!\s*\d)", re.I), lambda m, t: _named_month(t, _MONTHS[m[1].lower()])),
]


def period_find(text: str, today: dt.date) -> tuple[dt.date, dt.date] | None:
    """A period: two dates said ("from Dec 1 to Dec 6", 12月1日到12月6日), else a named month or week
    (上个月, this week, November), else one day as a period of its own."""
    spans = dates_all(text, today)
    if len(spans) >= 2:
        return spans[0].date, spans[1].date
    for pattern, to_period in _PERIOD_RULES:
        m = pattern.search(text)
        if m:
            return to_period(m, today)
    return (spans[0].date, spans[0].date) if spans else None


_AFTERNOON = ("下午", "晚上", "傍晚", "今晚", "明晚")
# In order of preference where two read the same words ("7:30 pm" is 19:30, not 7:30).
_TIME_RULES: list[tuple[re.Pattern, Callable[[re.Match], tuple[int, int]]]] = [
    (re.compile(r"(?<!\d)(1[0-2]|0?\d)(?:[:.]([0-5]\d))?\s*([ap])\.?m\b\.?", re.I),
     lambda m: (int(m[1]) % 12 + (12 if m[3].lower() == "p" else 0), int(m[2] or 0))),
    (re.compile(r"(?<!\d)([01]?\d|2[0-3])[:：]([0-5]\d)(?!\d)"), lambda m: (int(m[1]), int(m[2]))),
    (re.compile(r"(早上|上午|中午|下午|晚上|傍晚|凌晨|今晚|明早|明晚)?\s*(\d{1,2})\s*[点时](半|(\d{1,2})分?)?"),
     lambda m: _zh_time(m)),
]


def _zh_time(m: re.Match) -> tuple[int, int]:
    hour = int(m[2])
    if (m[1] in _AFTERNOON and hour < 12) or (m[1] == "中午" and hour < 3):
        hour += 12
    minute = 30 if m[3] == "半" else int(m[4] or 0)
    return hour, minute


def time_find(text: str) -> dt.time | None:
    """The first clock time said in `text`, if any (18:00, 6pm, 8am, 下午6点, 晚上8点半)."""
    hits = []
    for preference, (pattern, to_time) in enumerate(_TIME_RULES):
        m = pattern.search(text)
        if m:
            hour, minute = to_time(m)
            if hour < 24:
                hits.append((m.start(), preference, dt.time(hour, minute)))
    return min(hits)[2] if hits else None


def datetime_iso(*, date: dt.date, time: dt.time, tz: dt.tzinfo) -> str:
    """`date` at `time` in the city's zone, ISO with its offset: 2026-12-07T18:00:00+02:00."""
    return dt.datetime.combine(date, time, tzinfo=tz).isoformat()
