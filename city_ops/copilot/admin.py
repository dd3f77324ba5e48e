"""Django admin for the copilot: conversations with their turns and calls, read-only (they change through
the copilot's services only; the audit log holds who confirmed what)."""
from __future__ import annotations

from django.contrib import admin

from city_ops.core.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import Call, Conversation, Turn


class TurnInline(ReadOnlyInline):
    model = Turn
    fields = ("created_at", "text", "engine", "fallback_reason", "answer")
    readonly_fields = fields


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ("id", "user", "engine", "created_at")
    list_filter = ("engine",)
    inlines = [TurnInline]


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    list_display = ("id", "tool", "status", "writes", "turn", "created_at", "decided_at")
    list_filter = ("status", "writes", "tool")
