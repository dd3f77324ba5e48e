"""Whole numbers from query strings and forms, checked before they reach a query.

`str.isdigit()` is not enough: it accepts "²" (which `int()` refuses: a 500) and any number of digits
(PostgreSQL's bigint ends at 9223372036854775807: a DataError, another 500)."""
from __future__ import annotations

import re

from rest_framework.exceptions import ValidationError

BIGINT_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII only; 19 digits hold every bigint, longer is out of range


def whole_number(raw: str | None, *, low: int = 0, high: int = BIGINT_MAX) -> int | None:
    """`raw` as an int when it is a plain whole number within [low, high], else None."""
    text = (raw or "").strip()
    if not _DIGITS.fullmatch(text) or not low <= int(text) <= high:
        return None
    return int(text)


def query_int(raw: str, *, name: str, low: int, high: int = BIGINT_MAX) -> int:
    """A whole number from an API query parameter, within [low, high]; a 400 naming the parameter otherwise."""
    number = whole_number(raw, low=low, high=high)
    if number is None:
        raise ValidationError({name: f"{raw[:40]!r} is not a whole number from {low} to {high}"})
    return number
