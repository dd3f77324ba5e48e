"""The API's paging: `?limit=&offset=` on every list, with a maximum page size and a 400 for nonsense.

DRF's own class quietly ignores a limit it cannot read and passes any limit and offset to the database,
where `?limit=9223372036854775808` is a 500 ("bigint out of range"). Here a limit that is not a whole number
from 1 to the maximum page size (CITY_OPS_API_MAX_PAGE_SIZE), or an offset that is not one from 0 to the
largest bigint, is a 400 that names it and the range: a client asking for more than a page gets told, rather
than quietly getting less than it asked for."""
from __future__ import annotations

import re

from django.conf import settings
from rest_framework import pagination
from rest_framework.exceptions import ValidationError

BIGINT_MAX = 2**63 - 1  # PostgreSQL's OFFSET is a bigint
_DIGITS = re.compile(r"[0-9]{1,19}")  # 19 digits hold every bigint; longer is out of range before int()


def query_int(raw: str, *, name: str, low: int, high: int = BIGINT_MAX) -> int:
    """A whole number from a query parameter, within [low, high]; ValidationError naming the parameter."""
    text = raw.strip()
    if not _DIGITS.fullmatch(text) or not low <= int(text) <= high:
        raise ValidationError({name: f"{raw[:40]!r} is not a whole number from {low} to {high}"})
    return int(text)


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    @property
    def max_limit(self) -> int:
        return settings.CITY_OPS_API_MAX_PAGE_SIZE

    def get_limit(self, request) -> int:
        raw = request.query_params.get(self.limit_query_param, "")
        if not raw:
            return self.default_limit
        return query_int(raw, name=self.limit_query_param, low=1, high=self.max_limit)

    def get_offset(self, request) -> int:
        raw = request.query_params.get(self.offset_query_param, "")
        return query_int(raw, name=self.offset_query_param, low=0) if raw else 0
