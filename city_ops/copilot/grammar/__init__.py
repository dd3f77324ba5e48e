"""The grammar engine (placeholder until the parser lands: it understands nothing yet)."""
from __future__ import annotations

import datetime as dt

from ..calls import ToolCall


def grammar_parse(*, text: str, today: dt.date) -> list[ToolCall]:
    """The tool calls a request in zh-Hans or English asks for, in order; [] when nothing is understood."""
    return []
