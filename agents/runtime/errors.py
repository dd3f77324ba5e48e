"""Which failures are worth retrying. Only transient ones (the database or broker briefly away) are; a bug
or bad input fails the run with its error recorded, because retrying it would fail the same way."""
from __future__ import annotations

import django.db
import kombu.exceptions
import redis.exceptions


class TransientError(Exception):
    """Raise from an agent when a retry later may succeed (an upstream feed timed out, say)."""


TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    django.db.OperationalError,
    django.db.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
    ConnectionError,
    TimeoutError,
)
