"""Per-user rate limits on requests that start work (agent runs, plan edits), in the Redis cache."""
from __future__ import annotations

import math
from functools import wraps

from django.conf import settings
from django.http import HttpResponse
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import UserRateThrottle


class RunStartThrottle(UserRateThrottle):
    """At most `CITY_OPS_RUN_START_RATE` run-starting or plan-editing requests per user (429 with Retry-After
    beyond). Identical requests are already folded into one run (agent_run_request); this bounds a burst of
    *different* ones, each a minutes-long plan on the planning queue. Reads are never throttled."""

    scope = "run_start"

    def get_rate(self) -> str:
        # Read per request, not frozen at import like DRF's THROTTLE_RATES, so a deployment (or a test) can
        # change it through settings alone.
        return settings.CITY_OPS_RUN_START_RATE

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


def run_start_limited(view):
    """The same per-user limit for the console's forms that start runs or edit plans (Django views): 429
    with Retry-After, sharing the API's counts, so a burst cannot go around the API through the console."""

    @wraps(view)
    def limited(request, *args, **kwargs):
        throttle = RunStartThrottle()
        if throttle.allow_request(request, None):
            return view(request, *args, **kwargs)
        wait = math.ceil(throttle.wait() or 1)
        response = HttpResponse(f"Too many runs started or plans edited; try again in {wait} s.", status=429,
                                content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(wait)
        return response

    return limited
