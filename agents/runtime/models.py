"""Agent runs and their outcome KPIs: the record of what each agent achieved (the city pays for results)."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from city_ops.core.models import RestrictedQuerySet


class AgentRun(models.Model):
    """One run of one agent. Created first (the idempotency key), then executed by id on a worker.

    A scheduled run is unique per (agent, date): a beat tick or a task delivered twice produces no second
    plan. Re-plans (after a closure, a breakdown, a dispatcher's request) are new runs with their reason."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        EVENT = "event"
        REPLAN = "replan"
        MONITOR = "monitor"  # periodic evaluation (every minute): many per day, never deduplicated by date

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    agent = models.CharField(max_length=40, db_index=True)
    run_date = models.DateField(help_text="the day the run is for, in the city's time zone")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    reason = models.CharField(max_length=300, blank=True)
    params = models.JSONField(default=dict, blank=True)
    event = models.ForeignKey("city.CityEvent", null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    summary = models.CharField(max_length=300, blank=True)
    details = models.JSONField(default=dict, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_message = models.CharField(max_length=200, blank=True)
    # Set on runs a user asked for (services.agent_run_request): a hash of agent, trigger, date and params.
    # While such a run is pending or running, the same request again gets that run (a burst of clicks).
    request_key = models.CharField(max_length=64, blank=True, default="")

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "run_date"], condition=Q(trigger="schedule"), name="one_scheduled_run_per_agent_day"
            ),
            models.UniqueConstraint(
                fields=["request_key"], condition=Q(status__in=["pending", "running"]) & ~Q(request_key=""),
                name="one_active_run_per_request",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.agent} {self.run_date} ({self.trigger}, {self.status})"

    @property
    def duration_s(self) -> float | None:
        """From the first attempt's start to the end: what the run cost the city in time, a dead worker's
        lost minutes included. Each attempt's own time is in `attempt_history`."""
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @staticmethod
    def restrict_for(qs, user, action):
        from city_ops.core.roles import Role, user_has_role

        if user_has_role(user, Role.DISPATCHER):
            return qs
        return qs.none()


class AgentRunAttempt(models.Model):
    """One execution of a run by one worker process: a run re-done after its worker died keeps the history
    of the attempt that was lost (when, where, for how long), not only a counter."""

    class Outcome(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        RETRIED = "retried"  # a transient error: the run went back to pending for Celery's retry
        WORKER_LOST = "worker_lost"  # the reaper found the worker dead and took the run back

    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="attempt_history")
    number = models.PositiveSmallIntegerField()
    worker = models.CharField(max_length=200, help_text="host:pid of the process that executed it")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.RUNNING)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="one_attempt_per_run_number")]

    def __str__(self) -> str:
        return f"run {self.run_id} attempt {self.number} ({self.outcome})"

    @property
    def duration_s(self) -> float | None:
        return (self.ended_at - self.started_at).total_seconds() if self.ended_at else None


class RunKpi(models.Model):
    """One outcome figure of a run, kept as a row (not only JSON) so results can be summed per agent and day."""

    run = models.ForeignKey(AgentRun, on_delete=models.CASCADE, related_name="kpis")
    agent = models.CharField(max_length=40)
    run_date = models.DateField()
    name = models.CharField(max_length=60)
    label = models.CharField(max_length=120, blank=True)
    value = models.FloatField()
    unit = models.CharField(max_length=20, blank=True)
    baseline = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["agent", "run_date", "name"])]

    def __str__(self) -> str:
        return f"{self.agent}.{self.name}={self.value:g}{self.unit}"
