"""The work orders' copilot tools: list the orders the user may see, create one (dispatchers)."""
from __future__ import annotations

from django.contrib.gis.geos import Point
from django.urls import reverse
from django.utils.translation import gettext as _

from city_ops.city.geovalidate import GeometryInputError, city_point_check
from city_ops.city.selectors import segment_nearest
from city_ops.copilot.places import street_point, street_resolve
from city_ops.copilot.tools import EVERYONE, STREET, Tool, ToolFailed, ToolResult, args_schema, external_text

from .models import WorkOrder
from .services import work_order_create

PRIORITIES = {"low": WorkOrder.Priority.LOW, "normal": WorkOrder.Priority.NORMAL, "high": WorkOrder.Priority.HIGH,
              "urgent": WorkOrder.Priority.URGENT}
LIST_LIMIT = 20


def _order_link(order: WorkOrder) -> dict:
    return {"label": _("Work order #%(id)d") % {"id": order.pk},
            "url": reverse("console:workorder_detail", args=[order.pk])}


def _order_row(order: WorkOrder) -> dict:
    """An order for the model: its own fields, and what people wrote on it marked as outside text."""
    row = {"id": order.pk, "title": order.title, "status": order.status, "priority": order.get_priority_display(),
           "assignee": order.assignee.username if order.assignee else None,
           "due_at": order.due_at.isoformat() if order.due_at else None, "overdue": order.is_overdue}
    if order.description:
        row["description"] = external_text(order.description, source="work order description")
    notes = [e.note for e in order.events.all() if e.note and e.note != "created"]
    if notes:
        row["notes"] = [external_text(n, source="crew or dispatcher note") for n in notes[-3:]]
    return row


def workorders_list(*, user, args: dict) -> ToolResult:
    qs = WorkOrder.objects.restrict(user, "view").select_related("assignee").prefetch_related("events")
    status = args.get("status")
    if status == "open":
        qs = qs.exclude(status__in=WorkOrder.CLOSED_STATES)
    elif status == "overdue":
        qs = qs.overdue()
    elif status:
        qs = qs.filter(status=status)
    if args.get("crew"):
        qs = qs.filter(assignee__username__iexact=args["crew"])
    total = qs.count()
    orders = list(qs[:LIST_LIMIT])
    return ToolResult(data={"count": total, "orders": [_order_row(o) for o in orders]},
                      summary=_("%(n)d work orders%(first)s.") % {
                          "n": total, "first": (": " + "; ".join(f"#{o.pk} {o.title}" for o in orders[:3])) if orders
                          else ""},
                      links=[_order_link(o) for o in orders[:5]])


def _place(args: dict):
    """(point, segment, words) for the order: the middle of the named street, or the given position."""
    if args.get("street"):
        segments = street_resolve(args["street"])
        point = street_point(segments)
        return point, max(segments, key=lambda s: s.length_m), args["street"]
    try:
        lon, lat = city_point_check(*args["position"], what="the work order")
    except GeometryInputError as exc:
        raise ToolFailed(str(exc)) from None
    point = Point(lon, lat, srid=4326)
    return point, segment_nearest(point=point), f"{lon:.5f}, {lat:.5f}"


def _priority(args: dict) -> int:
    value = args.get("priority", "normal")
    return PRIORITIES[value] if isinstance(value, str) else value


def workorder_create_describe(*, user, args: dict) -> str:
    _point, _segment, where = _place(args)
    return _("Create a work order “%(title)s” at %(where)s, priority %(priority)s.") % {
        "title": args["title"], "where": where, "priority": WorkOrder.Priority(_priority(args)).label}


def workorder_create(*, user, args: dict) -> ToolResult:
    point, segment, where = _place(args)
    order, _created = work_order_create(title=args["title"], location=point, segment=segment,
                                        priority=_priority(args), user=user)
    return ToolResult(data={"work_order_id": order.pk, "status": order.status},
                      summary=_("Created work order #%(id)d “%(title)s” at %(where)s.") % {
                          "id": order.pk, "title": order.title, "where": where},
                      links=[_order_link(order)])


TOOLS = (
    Tool(name="workorders.list", handler=workorders_list, roles=EVERYONE,
         description="Work orders the user may see (a crew member: their own), most urgent first; filter by "
                     "status (or 'open', 'overdue') and by the crew member's username.",
         schema=args_schema({
             "status": {"type": "string", "enum": [*WorkOrder.Status.values, "open", "overdue"]},
             "crew": {"type": "string", "minLength": 1, "maxLength": 150, "description": "assignee's username"}})),
    Tool(name="workorders.create", writes=True, handler=workorder_create, describe=workorder_create_describe,
         description="Create a work order with a title, on a street (by name) or at a position [lon, lat].",
         schema=args_schema({
             "title": {"type": "string", "minLength": 1, "maxLength": 200},
             "street": STREET,
             "position": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
                          "description": "[lon, lat] in WGS84"},
             "priority": {"oneOf": [{"type": "string", "enum": list(PRIORITIES)},
                                    {"type": "integer", "minimum": 1, "maximum": 4}]}},
             required=("title",), one_of=("street", "position"))),
)
