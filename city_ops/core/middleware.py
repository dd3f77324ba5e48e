"""Request metrics and the per-user console language."""
from __future__ import annotations

import time

from django.utils import translation

from .metrics import HTTP_LATENCY, HTTP_REQUESTS


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        HTTP_LATENCY.observe(time.perf_counter() - start)
        HTTP_REQUESTS.labels(request.method, str(response.status_code)).inc()
        return response


class UserLanguageMiddleware:
    """A logged-in user's chosen language wins over the browser's Accept-Language (set per user)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            profile = getattr(user, "profile", None)
            if profile is not None and profile.language:
                translation.activate(profile.language)
                request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        return response
