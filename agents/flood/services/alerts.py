"""Alerts in the database and their effects on the city: the tracker's events become Alert and AlertEvent
rows, road closures (through the city's closure service, never another agent), work orders for crews,
notifications for yellow and above, and `zone.level_changed` city events. Dispatchers acknowledge alerts,
escalate them by hand and confirm closure lifts here; each action goes through the persisted tracker so
the next run knows about it."""
from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from city_ops.city.services import city_event_publish, closure_create, closure_lift
from city_ops.core.services import audit_record
from city_ops.notifications.services import notification_acknowledge, notification_send
from city_ops.workorders.models import WorkOrder
from city_ops.workorders.services import work_order_create

from ..domain import AlertEvent as CoreEvent
from ..domain import AlertStateError, AlertTracker, LeadTime
from ..domain.vocabulary import AGENT, Level
from ..models import Alert, AlertEvent, FloodZone, Sensor, TrackerState
from .faults import sensor_events_apply

log = logging.getLogger(__name__)

HAZARD_TEXT = {"rainstorm": "rainstorm", "river_flood": "river flood", "waterlogging": "waterlogging"}
NOTIFY_FROM = Level.YELLOW  # notifications (with acknowledgement and escalation) from yellow up


def alert_ref(alert: Alert) -> str:
    """The source_ref other records (closures, work orders, notifications) cite an alert by."""
    return f"flood-alert:{alert.pk}"


def _label(level: int) -> str:
    return Level(level).label


def tracker_state_lock(*, with_state: bool = True) -> TrackerState:
    """The live tracker row, locked for the rest of the transaction (runs and dispatcher actions queue).
    Without `with_state` the tracker's JSON is read only when used (a worker may hold it already)."""
    rows = TrackerState.objects.select_for_update()
    state, _ = (rows if with_state else rows.defer("state")).get_or_create(name="live")
    return state


def tracker_load(state: TrackerState) -> AlertTracker:
    """The tracker resumed from its row (a fresh one when none was saved)."""
    from ..selectors import tracker_settings

    if state.state:
        return AlertTracker.state_load(state.state, settings=tracker_settings())
    return AlertTracker(settings=tracker_settings())


# --------------------------------------------------------------------------------------------- effects


def _notify(*, alert: Alert, level: int, subject: str, body: str, requires_ack: bool | None = None) -> None:
    zone = alert.zone
    notification_send(topic="flood", level=level, subject=subject, body=body, location=zone.geom.centroid,
                      source_ref=alert_ref(alert), requires_ack=requires_ack)


def _zone_levels_publish(*, zones: Iterable[FloodZone]) -> list[int]:
    """Set each zone's level to its highest open alert and publish `zone.level_changed` where it moved,
    with the zone's outline so other agents (bus detours, bin routes) can act without asking us."""
    changed = []
    for zone in zones:
        level = max(Alert.objects.filter(zone=zone, status=Alert.Status.OPEN).values_list("level", flat=True),
                    default=0)
        if level == zone.level:
            continue
        previous, zone.level = zone.level, level
        zone.save(update_fields=["level"])
        hazards = sorted(set(Alert.objects.filter(zone=zone, status=Alert.Status.OPEN)
                             .values_list("hazard", flat=True)))
        city_event_publish(kind="zone.level_changed", source_agent=AGENT, payload={
            "zone_id": zone.pk, "zone_code": zone.code, "zone_name": zone.name, "zone_kind": zone.kind,
            "level": _label(level), "level_value": level, "previous_level": _label(previous),
            "hazards": hazards, "geometry": {"type": "Polygon", "coordinates": zone.geom.coords},
        })
        changed.append(zone.pk)
    return changed


def _closure_open(*, alert: Alert, event: CoreEvent) -> None:
    """Close the zone's roads (the zone outline: the road network leaves out the segments it covers) and
    send a crew with a pump where the zone is an underpass or a low road."""
    zone = alert.zone
    if alert.closure is None or alert.closure.valid_to is not None:
        alert.closure = closure_create(
            geom=zone.geom.clone(), reason=f"Flooded: {zone.name} ({event.detail.get('depth_cm', '?')} cm)",
            source_agent=AGENT, source_ref=alert_ref(alert), require_segments=False)
    alert.closure_state = Alert.Closure.REQUESTED
    from ..selectors import zone_segments

    segment = zone_segments(zone=zone).first()
    work_order_create(
        title=f"Deploy pump to {zone.get_kind_display().lower()} {zone.name}", location=zone.geom.centroid,
        priority=WorkOrder.Priority.URGENT if alert.level >= Level.ORANGE else WorkOrder.Priority.HIGH,
        description=(f"Water {event.detail.get('depth_cm', '?')} cm deep at {event.time:%Y-%m-%d %H:%M} UTC; the "
                     f"road is closed. Pump it out and report when it is clear."),
        source_agent=AGENT, source_ref=f"{alert_ref(alert)}:pump", segment=segment)
    _notify(alert=alert, level=max(alert.level, Level.YELLOW), subject=f"Road closed: {zone.name} is flooded",
            body=f"{event.detail.get('depth_cm', '?')} cm of water; the closure is in the road network now.")


def _closure_close(*, alert: Alert) -> None:
    if alert.closure is not None:
        closure_lift(closure=alert.closure, source_agent=AGENT)
    alert.closure_state = Alert.Closure.LIFTED


def _alert_row(*, event: CoreEvent, zone: FloodZone, sensor: Sensor | None) -> Alert | None:
    """The alert row an event is about: created when raised, else the zone's open one for its hazard."""
    if event.kind == "raised":
        return Alert.objects.create(
            key=event.alert_id, zone=zone, hazard=event.hazard, level=event.level, tracker_level=event.level,
            max_level=event.level, rule=event.rule, evidence=list(event.evidence), sensor=sensor,
            forecast=bool(event.detail.get("forecast")), raised_at=event.time)
    if not event.alert_id:
        return None
    alert = (Alert.objects.select_for_update(of=("self",)).select_related("zone", "closure")
             .filter(zone=zone, hazard=event.hazard, status=Alert.Status.OPEN).first())
    if alert is None:
        log.warning("event %s for %s has no open alert row; stored without one", event.kind, event.alert_id)
    return alert


def _event_row(*, event: CoreEvent, alert: Alert | None, zone: FloodZone, code: str, run) -> AlertEvent:
    return AlertEvent(
        alert=alert, zone=zone, hazard=event.hazard, seq=event.seq, kind=event.kind, time=event.time,
        level=event.level, previous_level=event.previous_level, rule=event.rule, evidence=list(event.evidence),
        sensor_code=code, actor_label=event.actor or "", detail=_json_safe(event.detail), run=run)


def events_apply(*, events: Sequence[CoreEvent], zones: dict[str, FloodZone], sensors: dict[str, Sensor],
                 run=None) -> dict[str, int]:
    """Store the tracker's events and act on them (see module doc): the event rows in one insert, in the
    tracker's order; the sensor faults and restorations together (services/faults.py). Returns counts per
    event kind."""
    from ..selectors import config_sensor_code

    counts: dict[str, int] = {}
    touched: dict[int, FloodZone] = {}
    rows: list[AlertEvent] = []
    sensor_events: list[tuple[CoreEvent, Sensor | None, FloodZone]] = []
    for event in events:
        counts[event.kind] = counts.get(event.kind, 0) + 1
        zone = zones[event.zone]
        code = config_sensor_code(event.sensor) if event.sensor else ""
        sensor = sensors.get(code)
        alert = _alert_row(event=event, zone=zone, sensor=sensor)
        rows.append(_event_row(event=event, alert=alert, zone=zone, code=code, run=run))
        if event.kind in ("sensor_fault", "sensor_restored"):
            sensor_events.append((event, sensor, zone))
        elif alert is not None:
            touched[zone.pk] = zone
            _alert_event_act(alert=alert, event=event, sensor=sensor)
            alert.save()
    AlertEvent.objects.bulk_create(rows)
    sensor_events_apply(events=sensor_events)
    _zone_levels_publish(zones=touched.values())
    return counts


def _alert_event_act(*, alert: Alert, event: CoreEvent, sensor: Sensor | None) -> None:
    """An alert event's effect on its row (saved by the caller) and on the city."""
    zone = alert.zone
    if event.kind in ("raised", "escalated"):
        alert.tracker_level = event.level
        alert.level = max(event.level, alert.manual_level)
        alert.max_level = max(alert.max_level, alert.level)
        alert.rule, alert.evidence, alert.sensor = event.rule, list(event.evidence), sensor or alert.sensor
        if event.kind == "escalated":
            alert.acknowledged_by = alert.acknowledged_at = None  # a higher level needs a new acknowledgement
        if alert.level >= NOTIFY_FROM:
            _notify(alert=alert, level=alert.level,
                    subject=f"{_label(alert.level).upper()} {HAZARD_TEXT[alert.hazard]} alert: {zone.name}",
                    body=_alert_body(alert, event))
    elif event.kind == "de-escalated":
        alert.tracker_level = event.level
        alert.level = max(event.level, alert.manual_level)
    elif event.kind == "cleared":
        alert.tracker_level = 0
        alert.status, alert.cleared_at = Alert.Status.CLEARED, event.time
        if alert.max_level >= NOTIFY_FROM:
            _notify(alert=alert, level=0, requires_ack=False,
                    subject=f"All clear: {HAZARD_TEXT[alert.hazard]} in {zone.name}",
                    body=f"Below every threshold for {event.detail.get('below_for_minutes', '?')} min.")
    elif event.kind == "acknowledged":  # recorded inputs (drills); live acknowledgements come below
        alert.acknowledged_at = event.time
    elif event.kind == "closure_requested":
        _closure_open(alert=alert, event=event)
    elif event.kind == "closure_lift_proposed":
        alert.closure_state = Alert.Closure.LIFT_PROPOSED
        _notify(alert=alert, level=max(alert.level, Level.YELLOW), requires_ack=True,
                subject=f"Reopen {zone.name}? The water has stayed down",
                body=f"Depth below the closure depth for {event.detail.get('clear_minutes', '?')} min. "
                     f"Confirm the closure lift in the flood panel after checking the road.")
    elif event.kind == "closure_lift_withdrawn":
        alert.closure_state = Alert.Closure.REQUESTED
    elif event.kind == "closure_lifted":
        _closure_close(alert=alert)


def _alert_body(alert: Alert, event: CoreEvent) -> str:
    detail = ", ".join(f"{k} {v}" for k, v in sorted(event.detail.items()) if not isinstance(v, (dict, list)))
    return (f"Rule {event.rule} at {event.time:%Y-%m-%d %H:%M} UTC (sensor {event.sensor or '-'}); {detail}. "
            f"{_exposure_line(alert.zone)} Acknowledge it in the flood panel.")


def _exposure_line(zone: FloodZone) -> str:
    """What the people told must think of: the bus stops, bins, open defects and work orders in the zone."""
    from ..selectors import zone_exposure

    return zone_exposure(zone=zone).summary()


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, float) and math.isnan(value):  # NaN is not JSON
        return None
    return value


def lead_times_store(*, lead_times: Sequence[LeadTime]) -> list[float]:
    """Note on each alert how long before the warning-level crossing it was raised (the lead-time KPI)."""
    minutes = []
    for lead in lead_times:
        alert = Alert.objects.filter(key=lead.alert_id).order_by("-id").first()
        if alert is not None:
            alert.lead_time_min = lead.minutes
            alert.save(update_fields=["lead_time_min"])
        minutes.append(lead.minutes)
    return minutes


# --------------------------------------------------------------------------------------------- dispatcher actions


def _actor(user) -> str:
    return getattr(user, "username", "") or "dispatcher"


def _action_event(*, alert: Alert, kind: str, user, time: dt.datetime, rule: str, level: int | None = None,
                  previous: int | None = None, detail: dict | None = None, seq: int | None = None) -> AlertEvent:
    return AlertEvent.objects.create(
        alert=alert, zone=alert.zone, hazard=alert.hazard, seq=seq, kind=kind, time=time,
        level=alert.level if level is None else level, previous_level=alert.level if previous is None else previous,
        rule=rule, actor=user if getattr(user, "is_authenticated", False) else None, actor_label=_actor(user),
        detail=detail or {})


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user, now: dt.datetime | None = None) -> Alert:
    """A dispatcher acknowledges an open alert: the tracker records it (so a later escalation asks again),
    the alert shows who and when, and the dispatcher's own notifications of it stop escalating."""
    now = now or timezone.now()
    state = tracker_state_lock()
    alert = Alert.objects.select_for_update(of=("self",)).select_related("zone").get(pk=alert.pk)
    if alert.status != Alert.Status.OPEN:
        raise ValidationError("only an open alert can be acknowledged")
    tracker = tracker_load(state)
    seq = None
    try:
        [event] = tracker.acknowledge(zone=alert.zone.code, hazard=alert.hazard, actor=_actor(user), time=now)
        seq = event.seq
        state.state = tracker.state_dump()
        state.save(update_fields=["state", "updated_at"])
    except AlertStateError:
        pass  # raised by hand only (no tracker alert): acknowledging it is still the dispatcher's record
    alert.acknowledged_by, alert.acknowledged_at = user, now
    alert.save(update_fields=["acknowledged_by", "acknowledged_at", "updated_at"])
    _action_event(alert=alert, kind="acknowledged", user=user, time=now, rule="dispatcher", seq=seq)
    from city_ops.notifications.models import Notification

    for note in Notification.objects.filter(recipient=user, source_ref=alert_ref(alert), acknowledged_at__isnull=True):
        notification_acknowledge(notification=note, user=user)
    audit_record(action="flood.alert_acknowledged", obj=alert, actor=user)
    return alert


@transaction.atomic
def alert_escalate(*, alert: Alert, user, level: int | None = None, note: str = "",
                   now: dt.datetime | None = None) -> Alert:
    """A dispatcher raises an open alert by hand (one level, or to `level`): the level holds as a floor
    while the alert is open, notifications go out at the new level and the zone's level follows."""
    now = now or timezone.now()
    alert = Alert.objects.select_for_update(of=("self",)).select_related("zone").get(pk=alert.pk)
    if alert.status != Alert.Status.OPEN:
        raise ValidationError("only an open alert can be escalated")
    target = int(level) if level is not None else alert.level + 1
    if target > Level.RED:
        raise ValidationError("the alert is already red, the highest level")
    if target <= alert.level:
        raise ValidationError(f"escalating means going above {_label(alert.level)}")
    previous = alert.level
    alert.manual_level = alert.level = target
    alert.max_level = max(alert.max_level, target)
    alert.acknowledged_by = alert.acknowledged_at = None
    alert.save()
    _action_event(alert=alert, kind="escalated", user=user, time=now, rule="dispatcher_escalation",
                  level=target, previous=previous, detail={"note": note[:300]} if note else {})
    _notify(alert=alert, level=target,
            subject=f"{_label(target).upper()} {HAZARD_TEXT[alert.hazard]} alert: {alert.zone.name} (escalated by "
                    f"{_actor(user)})",
            body=f"{note or 'Escalated by hand in the flood panel.'} {_exposure_line(alert.zone)}")
    _zone_levels_publish(zones=[alert.zone])
    audit_record(action="flood.alert_escalated", obj=alert, actor=user,
                 changes={"from": _label(previous), "to": _label(target), "note": note[:300]})
    return alert


@transaction.atomic
def closure_lift_confirm(*, alert: Alert, user, now: dt.datetime | None = None) -> Alert:
    """A dispatcher confirms that a closed road may reopen (only once the tracker proposed it: the water
    stayed below closure depth minus the margin for the hold time). The closure is lifted in the city's
    road network at once."""
    now = now or timezone.now()
    state = tracker_state_lock()
    alert = Alert.objects.select_for_update(of=("self",)).select_related("zone", "closure").get(pk=alert.pk)
    if alert.closure_state != Alert.Closure.LIFT_PROPOSED:
        raise ValidationError("no closure lift is proposed for this alert: the water has not stayed down yet")
    tracker = tracker_load(state)
    try:
        [event] = tracker.closure_lift_confirm(zone=alert.zone.code, hazard=alert.hazard, actor=_actor(user),
                                               time=now)
    except AlertStateError as exc:
        raise ValidationError(str(exc)) from None
    state.state = tracker.state_dump()
    state.save(update_fields=["state", "updated_at"])
    _closure_close(alert=alert)
    alert.save()
    _action_event(alert=alert, kind="closure_lifted", user=user, time=now, rule="dispatcher_confirmed",
                  seq=event.seq)
    audit_record(action="flood.closure_lift_confirmed", obj=alert, actor=user,
                 changes={"closure": alert.closure_id})
    return alert
