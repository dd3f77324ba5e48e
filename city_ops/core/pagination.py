"""The API's paging: `?limit=&offset=` on every list, with a maximum page size and a 400 for nonsense.

DRF's own class quietly ignores a limit it cannot read and passes any limit and offset to the database,
where `?limit=9223372036854775808` is a 500 ("bigint out of range"). Here a limit that is not a whole number
from 1 to the maximum page size (CITY_OPS_API_MAX_PAGE_SIZE), or an offset that is not one from 0 to the
largest bigint, is a 400 that names it and the range: a client asking for more than a page gets told, rather
than quietly getting less than it asked for."""
from __future__ import annotations

from django.conf import settings
from rest_framework import pagination

from .query import query_int


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
