"""Token authentication for machine clients: `Authorization: Bearer cok_...`. A user's own DRF token
(`Token ...`) is handled by DRF's TokenAuthentication; this one authenticates an ApiClient, not a user."""
from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework import authentication, exceptions

from .models import ApiClient


class ApiClientAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid bearer header.")
        client = ApiClient.by_token(header[1].decode(errors="replace"))
        if client is None:
            raise exceptions.AuthenticationFailed("Unknown or inactive API client token.")
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=timezone.now())
        return (AnonymousUser(), client)

    def authenticate_header(self, request):
        return self.keyword
