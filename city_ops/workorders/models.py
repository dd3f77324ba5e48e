"""Work orders: jobs for field crews, created by agents (a defect, a flood alert) or dispatchers."""
from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models
from django.utils import timezone

from city_ops.core.models import RestrictedQuerySet


class WorkOrderQuerySet(RestrictedQuerySet):
    @staticmethod
    def restrict_for(qs, user, action):
        """Dispatchers see every order; a crew member only those assigned to them."""
        from city_ops.core.roles import Role, user_has_role

        if user_has_role(user, Role.DISPATCHER):
            return qs
        if user_has_role(user, Role.FIELD_CREW):
            return qs.filter(assignee=user)
        return qs.none()

    def overdue(self, at=None):
        at = at or timezone.now()
        return self.filter(due_at__lt=at).exclude(status__in=WorkOrder.CLOSED_STATES)


class WorkOrder(models.Model):
    """A job at a place, with a priority, an assignee, a due time (SLA) and a history of every change.
    A repair is closed by an "after" photo."""

    class Status(models.TextChoices):
        NEW = "new"
        ASSIGNED = "assigned"
        IN_PROGRESS = "in_progress"
        DONE = "done"
        VERIFIED = "verified"
        CANCELLED = "cancelled"

    class Priority(models.IntegerChoices):
        LOW = 1
        NORMAL = 2
        HIGH = 3
        URGENT = 4

    CLOSED_STATES = (Status.DONE, Status.VERIFIED, Status.CANCELLED)
    # Which status may follow which; services refuse anything else.
    TRANSITIONS = {
        Status.NEW: {Status.ASSIGNED, Status.CANCELLED},
        Status.ASSIGNED: {Status.IN_PROGRESS, Status.ASSIGNED, Status.CANCELLED, Status.NEW},
        Status.IN_PROGRESS: {Status.DONE, Status.ASSIGNED, Status.CANCELLED},
        Status.DONE: {Status.VERIFIED, Status.IN_PROGRESS},
        Status.VERIFIED: set(),
        Status.CANCELLED: set(),
    }

    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    location = models.PointField(srid=4326)
    segment = models.ForeignKey("city.RoadSegment", null=True, blank=True, on_delete=models.SET_NULL)
    priority = models.IntegerField(choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.NEW, db_index=True)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="work_orders")
    due_at = models.DateTimeField(null=True, blank=True)
    source_agent = models.CharField(max_length=40, blank=True)
    source_ref = models.CharField(max_length=100, blank=True, help_text="e.g. 'defect:12' or 'alert:7'")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    objects = WorkOrderQuerySet.as_manager()
    restrict_for = WorkOrderQuerySet.restrict_for

    class Meta:
        ordering = ["-priority", "due_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source_agent", "source_ref"], condition=~models.Q(source_ref=""),
                                    name="one_order_per_source")
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"

    @property
    def is_overdue(self) -> bool:
        return bool(self.due_at and self.due_at < timezone.now() and self.status not in self.CLOSED_STATES)


class WorkOrderEvent(models.Model):
    """One change to a work order: who, when, from which status to which, and a note."""

    order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=100, blank=True)
    from_status = models.CharField(max_length=12, blank=True)
    to_status = models.CharField(max_length=12, blank=True)
    note = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.from_status}->{self.to_status}"


class WorkOrderPhoto(models.Model):
    """A photo on a work order: "before" (the damage) or "after" (the repair, which closes it)."""

    class Kind(models.TextChoices):
        BEFORE = "before"
        AFTER = "after"

    order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="photos")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    image = models.ImageField(upload_to="workorders/%Y/%m/")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.kind} photo of order {self.order_id}"
