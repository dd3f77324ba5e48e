"""Work-order writes: create (idempotent per source), assign, move through the workflow, close by photo."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.gis.geos import Point
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from city_ops.core.roles import Role, user_has_role
from city_ops.core.services import audit_record

from .models import WorkOrder, WorkOrderEvent, WorkOrderPhoto

# Default time to fix by priority (an SLA the city can change in code review, not at 3 a.m.).
SLA = {WorkOrder.Priority.URGENT: timedelta(hours=4), WorkOrder.Priority.HIGH: timedelta(days=1),
       WorkOrder.Priority.NORMAL: timedelta(days=7), WorkOrder.Priority.LOW: timedelta(days=30)}


def _event(order, *, actor=None, actor_label="", from_status="", to_status="", note="", changes=None):
    WorkOrderEvent.objects.create(order=order, actor=actor if getattr(actor, "is_authenticated", False) else None,
                                  actor_label=actor_label or getattr(actor, "username", "system"),
                                  from_status=from_status, to_status=to_status, note=note, changes=changes or {})


@transaction.atomic
def work_order_create(
    *, title: str, location: Point, priority: int = WorkOrder.Priority.NORMAL, description: str = "",
    source_agent: str = "", source_ref: str = "", segment=None, due_at: datetime | None = None,
    assignee=None, user=None,
) -> tuple[WorkOrder, bool]:
    """Create an order, or return the existing one for the same (source_agent, source_ref)."""
    if source_ref:
        existing = WorkOrder.objects.filter(source_agent=source_agent, source_ref=source_ref).first()
        if existing:
            return existing, False
    if location.srid is None:
        location.srid = 4326
    order = WorkOrder.objects.create(
        title=title[:200], location=location, priority=priority, description=description,
        source_agent=source_agent, source_ref=source_ref, segment=segment,
        due_at=due_at or timezone.now() + SLA[WorkOrder.Priority(priority)],
        created_by=user if getattr(user, "is_authenticated", False) else None,
        status=WorkOrder.Status.ASSIGNED if assignee else WorkOrder.Status.NEW, assignee=assignee,
    )
    _event(order, actor=user, actor_label=source_agent and f"agent:{source_agent}", to_status=order.status,
           note="created")
    audit_record(action="work_order.created", obj=order, actor=user, actor_label=source_agent)
    return order, True


@transaction.atomic
def work_order_transition(*, order: WorkOrder, to_status: str, user=None, note: str = "", assignee=None) -> WorkOrder:
    """Move an order along its workflow. Crews may only start and finish their own orders; dispatchers
    assign, cancel and verify. A repair is done only with an "after" photo."""
    order = WorkOrder.objects.select_for_update().get(pk=order.pk)
    to_status = WorkOrder.Status(to_status)
    if to_status not in WorkOrder.TRANSITIONS[WorkOrder.Status(order.status)]:
        raise ValidationError(f"an order that is {order.status} cannot become {to_status}")
    is_dispatcher = user_has_role(user, Role.DISPATCHER)
    if not is_dispatcher:
        if not (user_has_role(user, Role.FIELD_CREW) and order.assignee_id == getattr(user, "pk", None)
                and to_status in (WorkOrder.Status.IN_PROGRESS, WorkOrder.Status.DONE)):
            raise PermissionDenied("only the assigned crew may start or finish this order")
    if to_status == WorkOrder.Status.ASSIGNED:
        if assignee is None:
            raise ValidationError("assigning needs an assignee")
        order.assignee = assignee
    if to_status == WorkOrder.Status.DONE and not order.photos.filter(kind=WorkOrderPhoto.Kind.AFTER).exists():
        raise ValidationError("a repair is closed with an 'after' photo: upload one first")
    from_status = order.status
    order.status = to_status
    order.closed_at = timezone.now() if to_status in WorkOrder.CLOSED_STATES else None
    order.save()
    _event(order, actor=user, from_status=from_status, to_status=to_status, note=note,
           changes={"assignee": order.assignee_id} if assignee else {})
    audit_record(action="work_order.transition", obj=order, actor=user,
                 changes={"from": from_status, "to": to_status})
    return order


@transaction.atomic
def work_order_photo_add(*, order: WorkOrder, kind: str, image, user=None) -> WorkOrderPhoto:
    """Attach a photo; an "after" photo on an order in progress closes the repair (status done)."""
    if not user_has_role(user, Role.DISPATCHER) and order.assignee_id != getattr(user, "pk", None):
        raise PermissionDenied("only the assigned crew or a dispatcher may add photos")
    photo = WorkOrderPhoto.objects.create(order=order, kind=kind, image=image,
                                          uploaded_by=user if getattr(user, "is_authenticated", False) else None)
    _event(order, actor=user, note=f"{kind} photo added")
    if kind == WorkOrderPhoto.Kind.AFTER and order.status == WorkOrder.Status.IN_PROGRESS:
        work_order_transition(order=order, to_status=WorkOrder.Status.DONE, user=user, note="after photo")
    return photo
