"""Request metrics, the per-user console language, the refusal of NUL characters in requests, and no caching
of what a signed-in user was shown."""
from __future__ import annotations

import time

from django.http import HttpResponseBadRequest, JsonResponse
from django.utils import translation
from django.utils.cache import add_never_cache_headers

from .metrics import HTTP_LATENCY, HTTP_REQUESTS
from .parsers import NUL, nul_path, nul_refusal


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


class NulCharacterMiddleware:
    """A NUL character in the path, the query string or (for Django's own views) a form field: 400 with the
    reason, before any view hands it to PostgreSQL (see parsers.py). API bodies are checked by the API's
    parsers: DRF views are CSRF-exempt and read their bodies themselves, so this leaves them unread."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        where = None
        if NUL in request.path_info:
            where = "the path"
        elif (field := nul_path(request.GET)) is not None:
            where = f"the query parameter {field}"
        elif request.method == "POST" and not getattr(view_func, "csrf_exempt", False):
            # The CSRF check has read request.POST already for these views: reading it again is free.
            if (field := nul_path(request.POST)) is not None:
                where = f"the form field {field}"
        if where is None:
            return None
        reason = nul_refusal(where)
        if request.path_info.startswith("/api/"):
            return JsonResponse({"detail": reason}, status=400)
        return HttpResponseBadRequest(reason, content_type="text/plain; charset=utf-8")


class PrivateNoStoreMiddleware:
    """An answer to a signed-in user or a machine client (a console page; an API answer to a session, a
    user's token or an ApiClient token) gets `Cache-Control: no-store`, unless its view chose its own caching
    (the blurred photos: private, an hour).

    Why: without it a browser may keep a dispatcher's pages on disk and show them from history after logout,
    and a shared proxy may keep them at all. Sits after authentication; DRF authenticates tokens in the view
    and sets `user` and `auth` on the underlying request, so token answers are covered on the way back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if _signed_in(request) and not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response


def _signed_in(request) -> bool:
    user = getattr(request, "user", None)
    return (user is not None and user.is_authenticated) or getattr(request, "auth", None) is not None
