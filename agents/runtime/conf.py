"""An agent's settings: each agent's `conf.py` lists its settings with their defaults (DEFAULTS) and reads
them through the function this module builds, so a deployment overrides any of them in its
environment-driven settings and the default is written in one place."""
from __future__ import annotations

from collections.abc import Callable

from django.conf import settings


def settings_reader(defaults: dict[str, object]) -> Callable[[str], object]:
    """`conf(name)`: Django settings first, then `defaults` (a name missing from `defaults` is a bug: KeyError)."""

    def conf(name: str):
        return getattr(settings, name, defaults[name])

    return conf
