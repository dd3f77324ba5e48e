"""The sanitation agent's settings, each read from Django settings with a default (so a deployment overrides
any of them in its environment-driven settings without this app changing)."""

from __future__ import annotations

from agents.runtime.conf import settings_reader

DEFAULTS: dict[str, object] = {
    # Solver seconds per plan when a run does not set its own `time_limit`.
    "SANITATION_PLAN_TIME_LIMIT_S": 10.0,
}

conf = settings_reader(DEFAULTS)  # a SANITATION_* setting (Django settings first, then the default above)
