"""Cross-cutting records: user preferences, machine API clients and the audit log."""
from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models


class RestrictedQuerySet(models.QuerySet):
    """NetBox-style: `Model.objects.restrict(user, "view")` narrows a queryset to what the user may see.

    A model states its rule in `restrict_for(cls, queryset, user, action)`; without one, dispatchers and
    admins see everything and others nothing. Views call `restrict` rather than filtering by hand, so a
    forgotten filter cannot leak another crew's records."""

    def restrict(self, user, action: str = "view") -> "RestrictedQuerySet":
        from .roles import Role, user_has_role

        rule = getattr(self.model, "restrict_for", None)
        if rule is not None:
            return rule(self, user, action)
        if user_has_role(user, Role.DISPATCHER):
            return self
        return self.none()


class UserProfile(models.Model):
    """Per-user preferences: the console language (English or Simplified Chinese) and a phone for SMS."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    language = models.CharField(max_length=10, choices=settings.LANGUAGES, default="en")
    phone = models.CharField(max_length=32, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiClient(models.Model):
    """A machine client (sensor gateway, vehicle-location feed, camera uploader) with a token scoped to what
    it may post, e.g. `flood.readings:write`. Only the token's hash is stored; the token is shown once."""

    name = models.CharField(max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=8, editable=False)
    scopes = models.JSONField(default=list, help_text="e.g. ['flood.readings:write', 'bus.positions:write']")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    @classmethod
    def token_new(cls) -> str:
        return "cok_" + secrets.token_urlsafe(32)

    def token_set(self, token: str) -> None:
        self.token_hash = _token_hash(token)
        self.token_prefix = token[:8]

    @classmethod
    def by_token(cls, token: str) -> "ApiClient | None":
        return cls.objects.filter(token_hash=_token_hash(token), active=True).first()


class AuditEntry(models.Model):
    """Who changed what, when: one row per state change made through a service (never edited)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, blank=True, help_text="system, agent or API client name")
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label or self.actor} {self.action} {self.object_type}#{self.object_id}"
