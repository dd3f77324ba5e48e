"""The statement's default period: the previous calendar month in the city's time zone."""
from __future__ import annotations

import datetime as dt

from city_ops.core.timeutil import city_today

# A statement covers at most a year (both ends counted): the finance office's longest period.
MAX_DAYS = 366


def previous_month(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    first_this = (today or city_today()).replace(day=1)
    last_prev = first_this - dt.timedelta(days=1)
    return last_prev.replace(day=1), last_prev
