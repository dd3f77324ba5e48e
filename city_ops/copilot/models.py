"""Conversations with the copilot: each request (a turn) and the tool calls it led to, proposals included.
Nothing here is edited by hand; rows change through city_ops.copilot.services only (and are audited)."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from city_ops.core.models import RestrictedQuerySet


class OwnQuerySet(RestrictedQuerySet):
    @staticmethod
    def restrict_for(qs, user, action):
        """A conversation is its user's alone: not even a dispatcher reads or confirms another's."""
        if not getattr(user, "is_authenticated", False):
            return qs.none()
        field = "user" if qs.model is Conversation else "turn__conversation__user"
        return qs.filter(**{field: user})


class Engine(models.TextChoices):
    LLM = "llm"
    GRAMMAR = "grammar"


class Conversation(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    engine = models.CharField(max_length=8, choices=Engine.choices, help_text="the engine of its latest turn")

    objects = OwnQuerySet.as_manager()
    restrict_for = OwnQuerySet.restrict_for

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"conversation #{self.pk} ({self.user_id})"


class Turn(models.Model):
    """One request and its answer."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="turns")
    text = models.TextField()
    answer = models.TextField(blank=True)
    engine = models.CharField(max_length=8, choices=Engine.choices)
    fallback_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]


class Call(models.Model):
    """One tool call: done (a read, or a confirmed write), proposed (a write awaiting confirmation until
    `expires_at`), refused (not allowed, invalid arguments, expired, cancelled) or failed (could not be done)."""

    class Status(models.TextChoices):
        DONE = "done", _("done")
        PROPOSED = "proposed", _("proposed")
        REFUSED = "refused", _("refused")
        FAILED = "failed", _("failed")

    turn = models.ForeignKey(Turn, on_delete=models.CASCADE, related_name="calls")
    tool = models.CharField(max_length=64)
    args = models.JSONField(default=dict, blank=True)
    writes = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=Status.choices, db_index=True)
    result = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True)
    links = models.JSONField(default=list, blank=True)
    summary = models.TextField(blank=True, help_text="the one-line outcome an answer is made of")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = OwnQuerySet.as_manager()
    restrict_for = OwnQuerySet.restrict_for

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.tool} ({self.status})"
