"""OASIS CAP 1.2 in and out.

Out: every alert's state changes (raised, escalated, de-escalated, cleared) are its CAP messages - an
Alert, then Updates, then a Cancel - each referencing the ones before it; `/api/flood/alerts/<id>.cap` is
the latest, and an ATOM feed lists the active alerts' latest messages.

In: a CAP message from the weather service is parsed safely (no DTD, no entities), validated against the
CAP 1.2 XSD when one is available (else the core's structural check), stored, and a rain/storm/flood
warning puts the flood zones its area covers on standby until it expires; an all-clear or a cancel of that
warning takes them off standby."""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

from django.conf import settings
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.db import transaction
from django.utils import timezone
from shapely.geometry import Polygon as ShapelyPolygon

from agents.flood.conf import conf
from city_ops.core.services import audit_record

from ..domain import (
    AtomEntry,
    CapAlertInput,
    CapArea,
    CapMessage,
    CapReference,
    alert_to_cap,
    alerts_to_atom,
    cap_parse,
)
from ..domain.cap import cap_msg_type_for
from ..domain.vocabulary import Level
from ..models import Alert, AlertEvent, CapImport, FloodZone

CAP_EVENT_KINDS = ("raised", "escalated", "de-escalated", "cleared")
# What counts as a rainstorm warning for standby: rain, storms, floods (English and Chinese event names).
RAINSTORM_EVENT = re.compile(r"rain|storm|thunder|flood|precipitation|typhoon|hurricane|暴雨|降雨|雷|洪|台风",
                             re.IGNORECASE)
STANDBY_DEFAULT = dt.timedelta(hours=12)  # a warning without `expires`
EVENT_NAMES = {"rainstorm": "Rainstorm", "river_flood": "River flood", "waterlogging": "Waterlogging"}
INSTRUCTIONS = {
    "rainstorm": "Avoid low-lying streets and underpasses; do not drive through standing water.",
    "river_flood": "Keep away from the river banks; follow the instructions of the flood control office.",
    "waterlogging": "The road is flooded: use another route; do not drive or walk through the water.",
}


def cap_sender() -> str:
    """This city's CAP sender id (settings.FLOOD_CAP_SENDER)."""
    return conf("FLOOD_CAP_SENDER")


def cap_xsd_default() -> Path | None:
    """The CAP 1.2 XSD beside the checkout (../shared/benchmarks/flood/cap/CAP-v1.2.xsd), when present.
    The schema is not in the repository; without it imports get the core's structural check."""
    shared = Path(os.environ.get("CITY_OPS_SHARED", Path(settings.BASE_DIR).parent / "shared"))
    path = shared / "benchmarks" / "flood" / "cap" / "CAP-v1.2.xsd"
    return path if path.is_file() else None


# --------------------------------------------------------------------------------------------- export


def _identifier(alert: Alert, event: AlertEvent) -> str:
    return f"{cap_sender().split('@')[-1]}.flood.{alert.pk}.{event.pk}"


def alert_cap_messages(*, alert: Alert) -> list[AlertEvent]:
    """The alert's events that are CAP messages, oldest first."""
    return list(alert.events.filter(kind__in=CAP_EVENT_KINDS).order_by("time", "id"))


def alert_cap_input(*, alert: Alert, event: AlertEvent | None = None) -> CapAlertInput:
    """The CAP input of one of the alert's messages (default: the latest), referencing every earlier one."""
    messages = alert_cap_messages(alert=alert)
    if event is None:
        if not messages:
            raise ValueError(f"alert {alert.pk} has no CAP message yet")
        event = messages[-1]
    earlier = [m for m in messages if (m.time, m.pk) < (event.time, event.pk)]
    sender = cap_sender()
    level = Level(event.previous_level if event.kind == "cleared" else event.level)
    zone = alert.zone
    hazard = EVENT_NAMES[alert.hazard]
    msg_type = cap_msg_type_for(event.kind)
    if event.kind == "cleared":
        headline = f"All clear: {hazard.lower()} in {zone.name}"
        description = f"The {hazard.lower()} alert for {zone.name} is over ({event.rule})."
    else:
        headline = f"{level.label.capitalize()} {hazard.lower()} alert: {zone.name}"
        numbers = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(event.detail.items())
                            if isinstance(v, (int, float)) and not isinstance(v, bool))
        description = f"{hazard} {level.label} in {zone.name}: rule {event.rule}" + (f" ({numbers})." if numbers
                                                                                        else ".")
    geometry = ShapelyPolygon(zone.geom.coords[0])
    return CapAlertInput(
        identifier=_identifier(alert, event), sent=event.time, level=level, event=hazard, headline=headline,
        description=description, instruction=INSTRUCTIONS[alert.hazard],
        areas=(CapArea(desc=zone.name, geometry=geometry, geocodes=(("city-ops:zone", zone.code),)),),
        msg_type=msg_type, references=tuple(CapReference(sender=sender, identifier=_identifier(alert, m), sent=m.time)
                                            for m in earlier),
        categories=("Met",) if alert.hazard == "rainstorm" else ("Met", "Infra") if alert.hazard == "waterlogging"
        else ("Met", "Env"),
        forecast=bool(alert.forecast and event.kind == "raised"), language=conf("FLOOD_CAP_LANGUAGE"),
        sender_name=conf("FLOOD_CAP_SENDER_NAME") or f"{settings.CITY_NAME} flood control",
        parameters=(("hazard", alert.hazard), ("zone", zone.code), ("rule", event.rule)),
    )


def alert_cap_xml(*, alert: Alert, event: AlertEvent | None = None) -> bytes:
    """One alert's CAP 1.2 document (its latest message unless `event` names one), times in the city's zone."""
    return alert_to_cap(alert=alert_cap_input(alert=alert, event=event), sender=cap_sender(),
                        tz=settings.CITY_TIME_ZONE)


def alerts_atom_xml(*, cap_url_for, self_url: str) -> bytes:
    """The ATOM feed of open alerts, each entry linking its latest CAP document."""
    alerts = [a for a in Alert.objects.filter(status=Alert.Status.OPEN).select_related("zone").order_by("-level", "id")
              if alert_cap_messages(alert=a)]
    entries = [AtomEntry(alert=alert_cap_input(alert=a), cap_url=cap_url_for(a)) for a in alerts]
    updated = max((e.alert.sent for e in entries), default=timezone.now())
    return alerts_to_atom(entries=entries, feed_id=self_url, title=f"{settings.CITY_NAME}: active flood alerts",
                          self_url=self_url, updated=updated, author=cap_sender(), tz=settings.CITY_TIME_ZONE)


# --------------------------------------------------------------------------------------------- import


def _geos(message: CapMessage) -> MultiPolygon | None:
    shape = message.geometry()
    if shape is None or shape.is_empty:
        return None
    geom = GEOSGeometry(shape.wkt, srid=4326)
    if geom.geom_type == "Polygon":
        geom = MultiPolygon(geom, srid=4326)
    if geom.geom_type != "MultiPolygon":
        return None
    return geom


def _all_clear(message: CapMessage) -> bool:
    if message.msg_type == "Cancel":
        return True
    return any("AllClear" in info.response_types or info.urgency == "Past" for info in message.infos)


@transaction.atomic
def cap_import(*, data: bytes, xsd_path: Path | None = None, user=None, now: dt.datetime | None = None) -> CapImport:
    """Import one CAP message (CapError with the reason when it is refused). Importing the same message
    (sender, identifier, sent) again returns the stored one."""
    message = cap_parse(data=data, xsd_path=xsd_path)
    existing = CapImport.objects.filter(sender=message.sender, identifier=message.identifier,
                                        sent=message.sent).first()
    if existing is not None:
        return existing
    now = now or timezone.now()
    info = message.infos[0] if message.infos else None
    events = " ".join(i.event for i in message.infos)
    area = _geos(message)
    record = CapImport.objects.create(
        identifier=message.identifier, sender=message.sender, sent=message.sent, msg_type=message.msg_type,
        status=message.status, event=(message.event or "")[:200], severity=message.severity or "",
        urgency=message.urgency or "", headline=((info.headline if info else "") or "")[:300],
        effective=message.effective, expires=message.expires, area=area,
        area_desc="; ".join(a.desc for a in message.areas),
        references=[{"sender": r.sender, "identifier": r.identifier, "sent": r.sent.isoformat()}
                    for r in message.references],
        rainstorm=bool(RAINSTORM_EVENT.search(events)), warnings=list(message.warnings),
        raw=data.decode("utf-8", errors="replace"), imported_by=user if getattr(user, "is_authenticated", False)
        else None)
    notes = []
    if record.rainstorm and message.status == "Actual":
        if _all_clear(message):
            referenced = CapImport.objects.filter(identifier__in=[r.identifier for r in message.references])
            released = set(FloodZone.objects.filter(standby_source__in=referenced).values_list("pk", flat=True))
            if area is not None:
                released |= set(FloodZone.objects.filter(geom__intersects=area, standby_until__isnull=False)
                                .values_list("pk", flat=True))
            n = FloodZone.objects.filter(pk__in=released).update(standby_until=None, standby_source=None)
            notes.append(f"all clear: {n} zone(s) taken off standby")
        elif area is not None:
            until = message.expires or (message.effective + STANDBY_DEFAULT)
            zones = list(FloodZone.objects.filter(geom__intersects=area).order_by("code"))
            for zone in zones:
                if zone.standby_until is None or zone.standby_until < until:
                    zone.standby_until, zone.standby_source = until, record
                    zone.save(update_fields=["standby_until", "standby_source"])
            record.zones.set(zones)
            notes.append(f"{len(zones)} zone(s) on standby until {until.isoformat()}")
            if zones and until > now:
                from city_ops.notifications.services import notification_send

                notification_send(
                    topic="flood", level=1, requires_ack=False,
                    subject=f"Standby: {message.event} warning from {message.sender}",
                    body=f"{', '.join(z.name for z in zones)} on standby until {until:%Y-%m-%d %H:%M %Z}.",
                    source_ref=f"flood-cap:{record.pk}")
        else:
            notes.append("the warning's areas have no polygon or circle (geocodes only): no zone matched")
    if notes:
        record.warnings = [*record.warnings, *notes]
        record.save(update_fields=["warnings"])
    audit_record(action="flood.cap_imported", obj=record, actor=user, actor_label="" if user else "import_cap",
                 changes={"identifier": record.identifier, "event": record.event, "notes": notes})
    return record
