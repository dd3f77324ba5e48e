"""The city model's copilot tools: open and lift road closures, through the closure services, as the user."""
from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from city_ops.copilot.places import segments_geom, segments_resolve, street_resolve
from city_ops.copilot.tools import STREET, Tool, ToolFailed, ToolResult, args_schema
from city_ops.core.timeutil import city_tz, day_bounds

from .models import RoadClosure
from .services import closure_create, closure_lift

SEGMENT_IDS = {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1, "maxItems": 500,
               "description": "road segment ids"}
VALID_TO = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})?)?$",
            "description": "until when: YYYY-MM-DD (to the end of that day) or YYYY-MM-DDTHH:MM[:SS][+HH:MM] "
                           "(without an offset: the city's time)"}


def _until(text: str | None) -> dt.datetime | None:
    """`valid_to` in the city's time zone: a date closes to the end of that day."""
    if not text:
        return None
    try:
        until = day_bounds(dt.date.fromisoformat(text))[1] if len(text) == 10 else dt.datetime.fromisoformat(text)
        until = until if until.tzinfo else until.replace(tzinfo=city_tz())
    except ValueError:
        raise ToolFailed(_("“%(value)s” is not a time the calendar has.") % {"value": text}) from None
    if until <= timezone.now():
        raise ToolFailed(_("“%(value)s” has passed: a closure must end in the future.") % {"value": text})
    return until


def _segments(args: dict):
    if args.get("street"):
        return street_resolve(args["street"])
    return segments_resolve(args["segment_ids"])


def _where(args: dict, segments) -> str:
    return args.get("street") or _("%(n)d road segments") % {"n": len(segments)}


def _closure_link(closure: RoadClosure) -> dict:
    return {"label": _("Closure #%(id)d on the map") % {"id": closure.pk},
            "url": f"{reverse('console:home')}#closure-{closure.pk}"}


def closure_open_describe(*, user, args: dict) -> str:
    segments = _segments(args)
    until = _until(args.get("valid_to"))
    return _("Close %(where)s (%(n)d segments) %(until)s, reason: %(reason)s. Buses and trucks re-plan around it.") % {
        "where": _where(args, segments), "n": len(segments), "reason": args["reason"],
        "until": _("until %(t)s") % {"t": f"{until.astimezone(city_tz()):%Y-%m-%d %H:%M}"} if until
        else _("until lifted")}


def closure_open(*, user, args: dict) -> ToolResult:
    segments = _segments(args)
    closure = closure_create(geom=segments_geom(segments), segments=segments, reason=args["reason"],
                             source_agent="dispatcher", valid_to=_until(args.get("valid_to")), user=user)
    count = closure.segments.count()
    return ToolResult(data={"closure_id": closure.pk, "segments": count},
                      summary=_("Closed %(where)s: closure #%(id)d, %(n)d segments.") % {
                          "where": _where(args, segments), "id": closure.pk, "n": count},
                      links=[_closure_link(closure)])


def _closures_to_lift(*, user, args: dict) -> list[RoadClosure]:
    qs = RoadClosure.objects.restrict(user, "change").active()
    if args.get("closure_id"):
        qs = qs.filter(pk=args["closure_id"])
        what = f"#{args['closure_id']}"
    else:
        qs = qs.filter(segments__in=street_resolve(args["street"])).distinct()
        what = args["street"]
    closures = list(qs.order_by("pk"))
    if not closures:
        raise ToolFailed(_("There is no open closure %(what)s that you may lift.") % {"what": what})
    return closures


def closure_lift_describe(*, user, args: dict) -> str:
    closures = _closures_to_lift(user=user, args=args)
    return _("Lift %(list)s. Buses and trucks re-plan.") % {
        "list": "; ".join(_("closure #%(id)d (%(reason)s)") % {"id": c.pk, "reason": c.reason} for c in closures)}


def closure_lift_run(*, user, args: dict) -> ToolResult:
    lifted = [closure_lift(closure=c, user=user, source_agent="dispatcher")
              for c in _closures_to_lift(user=user, args=args)]
    return ToolResult(data={"lifted": [c.pk for c in lifted]},
                      summary=_("Lifted closure %(ids)s.") % {"ids": ", ".join(f"#{c.pk}" for c in lifted)},
                      links=[_closure_link(c) for c in lifted])


TOOLS = (
    Tool(name="city.closure_open", writes=True, handler=closure_open, describe=closure_open_describe,
         description="Close a road (a street by name, or road segments by id) from now, with a reason; every "
                     "agent re-plans around it.",
         schema=args_schema({"street": STREET, "segment_ids": SEGMENT_IDS,
                             "reason": {"type": "string", "minLength": 1, "maxLength": 200},
                             "valid_to": VALID_TO}, required=("reason",), one_of=("street", "segment_ids"))),
    Tool(name="city.closure_lift", writes=True, handler=closure_lift_run, describe=closure_lift_describe,
         description="Lift (end) an open road closure, by its id or by the street it closes.",
         schema=args_schema({"closure_id": {"type": "integer", "minimum": 1}, "street": STREET},
                            one_of=("closure_id", "street"))),
)
