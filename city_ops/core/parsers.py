"""Request text PostgreSQL cannot store, refused at the door.

PostgreSQL text and jsonb cannot hold a NUL character (`\\x00`, JSON's `\\u0000`): one in a query parameter,
a form field or a JSON body used to reach the database and end as a 500 (DataError). It is never meaningful
input, so every request carrying one is a 400 that says so: Django views through `NulCharacterMiddleware`,
the API through these parsers (DRF views are CSRF-exempt and parse their own bodies, after the middleware).
The API's default parsers are these; a view that names its parsers imports them from here."""
from __future__ import annotations

from collections.abc import Mapping

from django.http import QueryDict
from rest_framework import parsers
from rest_framework.exceptions import ParseError

NUL = "\x00"


def nul_path(data, path: str = "") -> str | None:
    """Where the first NUL character in parsed request data is (`params.x`, `items[2]`, a form field's
    name), or None when there is none. Keys count as much as values."""
    if isinstance(data, str):
        return path if NUL in data else None
    if isinstance(data, QueryDict):  # a form or query string: every value of every field
        return next((key for key in data for value in [key, *data.getlist(key)] if NUL in str(value)), None)
    if isinstance(data, Mapping):
        for key, value in data.items():
            here = f"{path}.{key}" if path else str(key)
            if NUL in str(key):
                return here
            if (found := nul_path(value, here)) is not None:
                return found
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            if (found := nul_path(value, f"{path}[{i}]")) is not None:
                return found
    return None


def nul_refusal(where: str) -> str:
    shown = where.replace(NUL, "\\u0000") or "the request"
    return f"a NUL character (\\u0000) in {shown} is not allowed"


def _checked(data):
    if (where := nul_path(data)) is not None:
        raise ParseError(nul_refusal(where))
    return data


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _checked(super().parse(stream, media_type, parser_context))


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        return _checked(super().parse(stream, media_type, parser_context))


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        _checked(result.data)
        return result
