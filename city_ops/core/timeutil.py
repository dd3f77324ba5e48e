"""Times are stored in UTC and shown and scheduled in the city's own zone."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone


def city_tz() -> ZoneInfo:
    return ZoneInfo(settings.CITY_TIME_ZONE)


def city_today() -> dt.date:
    return timezone.now().astimezone(city_tz()).date()


def date_parse(value: str) -> dt.date:
    """YYYY-MM-DD, with an error that says what was wrong."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a date in the form YYYY-MM-DD") from None


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants where a day in the city's zone starts and ends."""
    tz = city_tz()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    return start, start + dt.timedelta(days=1)
