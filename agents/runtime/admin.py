"""Django admin for the agent runtime: runs and their KPIs are records of what happened (read-only); an
operator cancels pending runs or starts a new run like a past one through the runtime's services, so the
idempotency rules and the audit log apply. The beat schedules (django_celery_beat's "Periodic tasks")
are edited in the admin too; their times are in the city's time zone."""
from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html

from city_ops.core.admin import ReadOnlyAdmin, ReadOnlyInline

from .models import AgentRun, AgentRunAttempt, RunKpi
from .registry import UnknownAgentError
from .services import agent_run_cancel, agent_run_create


class RunKpiInline(ReadOnlyInline):
    model = RunKpi
    fields = ("name", "label", "value", "unit", "baseline")
    readonly_fields = fields


class AgentRunAttemptInline(ReadOnlyInline):
    model = AgentRunAttempt
    fields = ("number", "worker", "started_at", "ended_at", "outcome")
    readonly_fields = fields


@admin.register(AgentRun)
class AgentRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "agent", "run_date", "trigger", "status", "attempts", "claimed_by", "started_at",
                    "duration", "progress", "summary")
    list_filter = ("agent", "status", "trigger", "run_date")
    search_fields = ("=id", "agent", "reason", "summary", "error", "claimed_by")
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("agent", "run_date", "trigger", "reason", "params", "event", "created_by", "status",
                           "summary")}),
        ("timing", {"fields": ("created_at", "enqueued_at", "claimed_by", "started_at", "heartbeat_at",
                               "finished_at", "attempts", "progress")}),
        ("outcome", {"fields": ("details", "error_pre")}),
    )
    readonly_fields = ("agent", "run_date", "trigger", "reason", "params", "event", "created_by", "status",
                       "summary", "created_at", "enqueued_at", "claimed_by", "started_at", "heartbeat_at",
                       "finished_at", "attempts", "progress", "details", "error_pre")
    inlines = (AgentRunAttemptInline, RunKpiInline)
    actions = ("runs_cancel", "runs_again")

    @admin.display(description="duration")
    def duration(self, obj) -> str:
        d = obj.duration_s
        return "-" if d is None else f"{d:.1f} s"

    @admin.display(description="progress")
    def progress(self, obj) -> str:
        if not obj.progress_total:
            return obj.progress_message or "-"
        return f"{obj.progress_done}/{obj.progress_total} {obj.progress_message}".strip()

    @admin.display(description="error")
    def error_pre(self, obj):
        return format_html("<pre>{}</pre>", obj.error) if obj.error else "-"

    # The actions change state through services, so they need only the view permission on this
    # otherwise read-only page (operators are staff with view rights; superusers have all).
    @admin.action(description="Cancel (pending runs only)", permissions=["view"])
    def runs_cancel(self, request, queryset):
        cancelled = 0
        for run in queryset.filter(status=AgentRun.Status.PENDING):
            cancelled += agent_run_cancel(run=run, user=request.user).status == AgentRun.Status.CANCELLED
        messages.success(request, f"{cancelled} run(s) cancelled; runs already started are left alone.")

    @admin.action(description="Run again (a new manual run with the same date and parameters)",
                  permissions=["view"])
    def runs_again(self, request, queryset):
        created = []
        for run in queryset:
            try:
                new, _ = agent_run_create(agent=run.agent, run_date=run.run_date, trigger=AgentRun.Trigger.MANUAL,
                                          reason=f"again, like run #{run.pk} (admin)", params=run.params,
                                          user=request.user)
            except UnknownAgentError as exc:
                messages.error(request, f"run #{run.pk}: {exc}")
                continue
            created.append(new.pk)
        if created:
            messages.success(request, f"enqueued run(s) {', '.join(f'#{pk}' for pk in created)}.")


@admin.register(RunKpi)
class RunKpiAdmin(ReadOnlyAdmin):
    list_display = ("agent", "run_date", "name", "value", "unit", "baseline", "run")
    list_filter = ("agent", "name")
    search_fields = ("agent", "name", "label", "=run__id")
    date_hierarchy = "run_date"
    list_select_related = ("run",)
    fields = ("run", "agent", "run_date", "name", "label", "value", "unit", "baseline")
    readonly_fields = fields


@admin.register(AgentRunAttempt)
class AgentRunAttemptAdmin(ReadOnlyAdmin):
    """Each attempt at a run (its worker, start, end, outcome): the history a re-done run keeps."""

    list_display = ("run", "number", "worker", "started_at", "ended_at", "outcome")
    list_filter = ("outcome",)
    search_fields = ("=run__id", "worker")
    list_select_related = ("run",)
    fields = ("run", "number", "worker", "started_at", "ended_at", "outcome")
    readonly_fields = fields
