"""Dates, periods, times and numbers as dispatchers say them, relative to a Monday (2026-12-07)."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from city_ops.copilot.grammar.dates import date_find, datetime_iso, period_find, time_find
from city_ops.copilot.grammar.numbers import arabize, chinese_number

MONDAY = dt.date(2026, 12, 7)
THURSDAY = dt.date(2026, 12, 10)


@pytest.mark.parametrize("said,today,expect", [
    ("今天", MONDAY, "2026-12-07"), ("明天", MONDAY, "2026-12-08"), ("后天", MONDAY, "2026-12-09"),
    ("大后天", MONDAY, "2026-12-10"), ("昨天", MONDAY, "2026-12-06"),
    ("下周一", MONDAY, "2026-12-14"), ("下周日", MONDAY, "2026-12-20"), ("下星期三", THURSDAY, "2026-12-16"),
    ("周三", MONDAY, "2026-12-09"), ("周三", THURSDAY, "2026-12-16"), ("周一", MONDAY, "2026-12-07"),
    ("本周五", THURSDAY, "2026-12-11"), ("上周三", MONDAY, "2026-12-02"),
    ("12月8日", MONDAY, "2026-12-08"), ("十二月八日", MONDAY, "2026-12-08"), ("1月2号", MONDAY, "2027-01-02"),
    ("tomorrow", MONDAY, "2026-12-08"), ("the day after tomorrow", MONDAY, "2026-12-09"),
    ("yesterday", MONDAY, "2026-12-06"), ("Monday", THURSDAY, "2026-12-14"),
    ("next Monday", MONDAY, "2026-12-14"), ("this Friday", MONDAY, "2026-12-11"),
    ("Dec 8", MONDAY, "2026-12-08"), ("8 December", MONDAY, "2026-12-08"), ("December 9th", MONDAY, "2026-12-09"),
    ("Jan 5", MONDAY, "2027-01-05"), ("2026-12-09", MONDAY, "2026-12-09"), ("明天", dt.date(2026, 12, 31), "2027-01-01"),
])
def test_dates_relative_to_today(said, today, expect):
    assert date_find(arabize(said), today).isoformat() == expect


def test_no_date_said_is_none_and_an_impossible_one_is_not_read():
    assert date_find("公交有哪些告警", MONDAY) is None
    assert date_find(arabize("2月30日"), MONDAY) is None


@pytest.mark.parametrize("said,expect", [
    ("上个月", ("2026-11-01", "2026-11-30")), ("本月", ("2026-12-01", "2026-12-31")),
    ("last month", ("2026-11-01", "2026-11-30")), ("上周", ("2026-11-30", "2026-12-06")),
    ("this week", ("2026-12-07", "2026-12-13")), ("November", ("2026-11-01", "2026-11-30")),
    ("11月", ("2026-11-01", "2026-11-30")), ("from Dec 1 to Dec 6", ("2026-12-01", "2026-12-06")),
    ("12月1日到12月5日", ("2026-12-01", "2026-12-05")), ("yesterday", ("2026-12-06", "2026-12-06")),
])
def test_periods(said, expect):
    start, end = period_find(arabize(said), MONDAY)
    assert (start.isoformat(), end.isoformat()) == expect


@pytest.mark.parametrize("said,expect", [
    ("18:00", "18:00"), ("6pm", "18:00"), ("until 8am", "08:00"), ("7:30 p.m.", "19:30"), ("12am", "00:00"),
    ("下午6点", "18:00"), ("下午六点", "18:00"), ("晚上8点半", "20:30"), ("早上8点", "08:00"), ("中午12点", "12:00"),
    ("10点15分", "10:15"),
])
def test_times(said, expect):
    assert time_find(arabize(said)).strftime("%H:%M") == expect


def test_datetime_carries_the_city_offset():
    helsinki = ZoneInfo("Europe/Helsinki")
    assert datetime_iso(date=MONDAY, time=dt.time(18), tz=helsinki) == "2026-12-07T18:00:00+02:00"
    assert datetime_iso(date=dt.date(2026, 7, 1), time=dt.time(8), tz=helsinki) == "2026-07-01T08:00:00+03:00"


@pytest.mark.parametrize("numeral,value", [("十五", 15), ("二十", 20), ("两", 2), ("十", 10), ("二十三", 23),
                                           ("一百零五", 105), ("三", 3)])
def test_chinese_numbers(numeral, value):
    assert chinese_number(numeral) == value


def test_arabize_rewrites_numerals_in_place():
    assert arabize("停站十分钟") == "停站10分钟"
    assert arabize("layover of eight minutes") == "layover of 8 minutes"
    assert arabize("两个班组") == "2个班组"
