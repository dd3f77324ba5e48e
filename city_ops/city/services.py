"""Writes on the city model: closures and city events. Agents change the city only through these."""
from __future__ import annotations

import logging
from datetime import datetime

from django.contrib.gis.geos import GEOSGeometry
from django.db import transaction
from django.utils import timezone

from city_ops.core.services import audit_record

from .geovalidate import GeometryInputError
from .models import CityEvent, RoadClosure
from .osm import closure_segments_for

log = logging.getLogger(__name__)


def city_event_publish(*, kind: str, payload: dict, source_agent: str = "") -> CityEvent:
    """Record an event in the caller's transaction; the runtime dispatches it to reacting agents only after
    commit, so no agent reacts to a change that was rolled back."""
    event = CityEvent.objects.create(kind=kind, payload=payload, source_agent=source_agent)

    def _dispatch():
        from celery import current_app

        from city_ops.queues import Queue

        current_app.send_task("agents.dispatch_event", args=[event.pk], queue=Queue.DEFAULT.value)

    transaction.on_commit(_dispatch)
    return event


def closure_segments_check(*, geom: GEOSGeometry, require_segments: bool = True) -> list:
    """The segments a closure geometry would close; GeometryInputError for an empty geometry, or one covering
    no road when `require_segments`. Forms call it to refuse such a closure before anything is saved."""
    if geom.empty:
        raise GeometryInputError("the closure's geometry is empty")
    if geom.srid is None:
        geom.srid = 4326
    segments = list(closure_segments_for(geom=geom))
    if require_segments and not segments:
        raise GeometryInputError("the closure covers no road segment (draw it on a road)")
    return segments


@transaction.atomic
def closure_create(
    *, geom: GEOSGeometry, reason: str, source_agent: str = "", source_ref: str = "",
    valid_from: datetime | None = None, valid_to: datetime | None = None, user=None,
    require_segments: bool = True, segments: list | None = None,
) -> RoadClosure:
    """Close the road segments a geometry covers and publish `closure.opened`.

    GeometryInputError, with nothing written, for an empty geometry and (unless `require_segments` is False)
    for one that covers no road: such a closure changes nothing yet fires `closure.opened` and a re-plan of
    every reacting agent. The flood agent passes False: its closure records the alert's request for the zone
    even where no mapped road crosses it.

    `segments`, when the caller names them (a street by name, through the copilot), are what closes; the
    geometry drawn from them then only shows it. Why not derive them again from that geometry: a short
    side street whose middle lies within metres of the named one would close with it."""
    if segments is None:
        segments = closure_segments_check(geom=geom, require_segments=require_segments)
    elif not segments:
        raise GeometryInputError("the closure names no road segment")
    closure = RoadClosure.objects.create(
        geom=geom, reason=reason, source_agent=source_agent, source_ref=source_ref,
        valid_from=valid_from or timezone.now(), valid_to=valid_to, created_by=user,
    )
    closure.segments.set(segments)
    audit_record(action="closure.opened", obj=closure, actor=user, actor_label=source_agent,
                 changes={"reason": reason, "segments": [s.pk for s in segments]})
    city_event_publish(
        kind=CityEvent.Kind.CLOSURE_OPENED,
        payload={"closure_id": closure.pk, "segment_ids": [s.pk for s in segments], "reason": reason},
        source_agent=source_agent,
    )
    return closure


@transaction.atomic
def closure_lift(*, closure: RoadClosure, at: datetime | None = None, user=None, source_agent: str = "") -> RoadClosure:
    """End a closure (idempotent) and publish `closure.lifted`."""
    closure = RoadClosure.objects.select_for_update().get(pk=closure.pk)
    at = at or timezone.now()
    if closure.valid_to is not None and closure.valid_to <= at:
        return closure
    closure.valid_to = at
    closure.save(update_fields=["valid_to"])
    audit_record(action="closure.lifted", obj=closure, actor=user, actor_label=source_agent)
    city_event_publish(
        kind=CityEvent.Kind.CLOSURE_LIFTED,
        payload={"closure_id": closure.pk, "segment_ids": list(closure.segments.values_list("id", flat=True))},
        source_agent=source_agent,
    )
    return closure
