"""Work-order writes: create (idempotent per source), assign, move through the workflow, close by photo."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.gis.geos import Point
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from city_ops.core.roles import Role, user_has_role
from city_ops.core.services import audit_record

from .models import WorkOrder, WorkOrderEvent, WorkOrderPhoto

# Default time to fix by priority (an SLA the city can change in code review, not at 3 a.m.).
SLA = {WorkOrder.Priority.URGENT: timedelta(hours=4), WorkOrder.Priority.HIGH: timedelta(days=1),
       WorkOrder.Priority.NORMAL: timedelta(days=7), WorkOrder.Priority.LOW: timedelta(days=30)}


def _assignee_check(assignee) -> None:
    """Orders go to field crews only (an admin holds every role and passes)."""
    if not getattr(assignee, "is_active", False) or not user_has_role(assignee, Role.FIELD_CREW):
        raise ValidationError(_("%(user)s is not an active field crew member")
                              % {"user": getattr(assignee, "username", assignee)})


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
    if assignee is not None:
        _assignee_check(assignee)
    if location.srid is None:
        location.srid = 4326
    try:
        # A savepoint: two workers creating the order for the same defect at once meet the unique
        # constraint; the loser returns the winner's order instead of failing its whole transaction.
        with transaction.atomic():
            order = WorkOrder.objects.create(
                title=title[:200], location=location, priority=priority, description=description,
                source_agent=source_agent, source_ref=source_ref, segment=segment,
                due_at=due_at or timezone.now() + SLA[WorkOrder.Priority(priority)],
                created_by=user if getattr(user, "is_authenticated", False) else None,
                status=WorkOrder.Status.ASSIGNED if assignee else WorkOrder.Status.NEW, assignee=assignee,
            )
    except IntegrityError:
        winner = source_ref and WorkOrder.objects.filter(source_agent=source_agent, source_ref=source_ref).first()
        if not winner:
            raise
        return winner, False
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
        raise ValidationError(_("an order that is %(from)s cannot become %(to)s")
                              % {"from": order.status, "to": to_status.value})
    crew_own_step = (user_has_role(user, Role.FIELD_CREW) and order.assignee_id == getattr(user, "pk", None)
                     and to_status in (WorkOrder.Status.IN_PROGRESS, WorkOrder.Status.DONE))
    if not (user_has_role(user, Role.DISPATCHER) or crew_own_step):
        raise PermissionDenied("only the assigned crew may start or finish this order")
    if to_status == WorkOrder.Status.ASSIGNED:
        if assignee is None:
            raise ValidationError(_("assigning needs an assignee"))
        _assignee_check(assignee)
        order.assignee = assignee
    elif to_status == WorkOrder.Status.NEW:
        order.assignee = None  # back in the dispatcher's queue: nobody's job any more
    if to_status == WorkOrder.Status.DONE and not order.photos.filter(kind=WorkOrderPhoto.Kind.AFTER).exists():
        raise ValidationError(_("a repair is closed with an 'after' photo: upload one first"))
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
    order = WorkOrder.objects.select_for_update().get(pk=order.pk)  # the assignee as it is now
    if not user_has_role(user, Role.DISPATCHER) and order.assignee_id != getattr(user, "pk", None):
        raise PermissionDenied("only the assigned crew or a dispatcher may add photos")
    if kind not in WorkOrderPhoto.Kind.values:
        raise ValidationError(_("a photo is 'before' or 'after', not %(kind)r") % {"kind": kind})
    if order.status in (WorkOrder.Status.CANCELLED, WorkOrder.Status.VERIFIED):
        raise ValidationError(_("the order is %(status)s; it takes no more photos") % {"status": order.status})
    photo = WorkOrderPhoto.objects.create(order=order, kind=kind, image=image,
                                          uploaded_by=user if getattr(user, "is_authenticated", False) else None)
    _event(order, actor=user, note=f"{kind} photo added")
    if kind == WorkOrderPhoto.Kind.AFTER and order.status == WorkOrder.Status.IN_PROGRESS:
        work_order_transition(order=order, to_status=WorkOrder.Status.DONE, user=user, note="after photo")
    return photo
