"""The demo agent's settings: none (it reads the city and writes nothing of its own). Kept so every agent
has the same shape (agents/runtime/contract.py)."""

from __future__ import annotations

from agents.runtime.conf import settings_reader

DEFAULTS: dict[str, object] = {}

conf = settings_reader(DEFAULTS)
