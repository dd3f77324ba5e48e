"""A tool call as both engines produce it: the dotted tool name and its arguments, JSON-ready."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """`tool` is the dotted name (`bus.plan`); `args` follow the tool's JSON schema: dates as ISO
    `YYYY-MM-DD` in the city's time zone, streets as the city model names them, `position` as [lon, lat]."""

    tool: str
    args: dict[str, Any] = field(default_factory=dict)
