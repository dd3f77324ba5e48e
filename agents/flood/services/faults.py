"""Sensor faults and restorations of one evaluation, acted on together: the sensors' states written in bulk,
and the notices and inspection orders grouped the way a dispatcher thinks of them. Many sensors going
quiet at once is one incident (a gateway, the power, the network), reported once with the list; several
of one zone, one notice and order for the zone; a lone fault, the sensor's own notice and order."""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.gis.geos import MultiPoint

from city_ops.notifications.services import notification_send
from city_ops.workorders.models import WorkOrder
from city_ops.workorders.services import work_order_create

from ..conf import conf
from ..domain import AlertEvent as CoreEvent
from ..domain.vocabulary import AGENT, Level
from ..models import FloodZone, Sensor

LISTED = 50  # sensor codes named in a group's work order before "and N more"


@dataclass(frozen=True)
class NewFault:
    """A sensor that went into fault in this evaluation, seen from `zone`."""

    event: CoreEvent
    sensor: Sensor
    zone: FloodZone

    @property
    def kind(self) -> str:
        return str(self.event.detail.get("fault"))

    @property
    def reason(self) -> str:
        return str(self.event.detail.get("reason", self.event.detail.get("fault", "")))


def sensor_events_apply(*, events: Sequence[tuple[CoreEvent, Sensor | None, FloodZone]]) -> None:
    """Act on the evaluation's `sensor_fault` and `sensor_restored` events (in order, each with its sensor
    row and zone): the sensors' statuses and faults written in bulk, then the faults reported,
    grouped (see module doc), and a mass restoration announced once."""
    changed, faults, restored = _sensor_states_advance(events=events)
    _sensor_states_store(sensors=changed)
    _faults_report(faults=faults)
    if len(restored) >= int(conf("FLOOD_FAULT_OUTAGE_MIN")):
        _restoration_report(sensors=restored, time=max(e.time for e, *_ in events))


def _sensor_states_advance(*, events) -> tuple[list[Sensor], list[NewFault], list[Sensor]]:
    """The sensor rows' new states, event by event as the tracker emitted them: the rows changed, the new
    faults, and the sensors back in service at the end."""
    changed: dict[int, Sensor] = {}
    faults: list[NewFault] = []
    for event, sensor, zone in events:
        if sensor is None:
            continue
        if event.kind == "sensor_fault":
            fault = NewFault(event=event, sensor=sensor, zone=zone)
            if sensor.status == Sensor.Status.FAULT and sensor.fault.startswith(fault.kind):
                continue  # the same fault seen from the sensor's other zone
            sensor.status, sensor.fault = Sensor.Status.FAULT, f"{fault.kind}: {fault.reason}"[:200]
            faults.append(fault)
        elif sensor.status == Sensor.Status.FAULT:
            sensor.status, sensor.fault = Sensor.Status.ACTIVE, ""
        else:
            continue
        changed[sensor.pk] = sensor
    restored = [s for s in changed.values() if s.status == Sensor.Status.ACTIVE]
    return list(changed.values()), faults, restored


def _sensor_states_store(*, sensors: list[Sensor]) -> None:
    """One UPDATE per distinct (status, fault text): an outage's faults share a few texts, restorations one
    (Django's bulk_update spends about a millisecond of CPU a row building its CASE)."""
    pks: dict[tuple[str, str], list[int]] = {}
    for sensor in sensors:
        pks.setdefault((sensor.status, sensor.fault), []).append(sensor.pk)
    for (status, fault), ids in pks.items():
        Sensor.objects.filter(pk__in=ids).update(status=status, fault=fault)


def _faults_report(*, faults: list[NewFault]) -> None:
    """One outage notice and order when FLOOD_FAULT_OUTAGE_MIN sensors or more went into fault; below
    that, one per zone where FLOOD_FAULT_GROUP_MIN of its sensors did, and one per sensor for the rest."""
    first: dict[int, NewFault] = {}  # each sensor under the zone it was first seen failing from
    for fault in faults:
        first.setdefault(fault.sensor.pk, fault)
    if len(first) >= int(conf("FLOOD_FAULT_OUTAGE_MIN")):
        _outage_report(faults=list(first.values()))
        return
    by_zone: dict[int, list[NewFault]] = {}
    for fault in first.values():
        by_zone.setdefault(fault.zone.pk, []).append(fault)
    grouped = set()
    for zone_faults in by_zone.values():
        if len(zone_faults) >= int(conf("FLOOD_FAULT_GROUP_MIN")):
            _zone_report(faults=zone_faults)
            grouped |= {f.sensor.pk for f in zone_faults}
    for fault in faults:
        if fault.sensor.pk not in grouped:
            _sensor_report(fault=fault)


def _sensor_report(*, fault: NewFault) -> None:
    """A lone fault: the sensor's own notice and, where it has a position, an "Inspect sensor" order."""
    sensor, kind = fault.sensor, fault.kind
    notification_send(topic="flood", level=1, subject=f"Sensor fault: {sensor.code} is {kind}",
                      body=f"{sensor.name}: {fault.reason}. Its readings raise no flood alert until it is fixed.",
                      location=sensor.geom, source_ref=f"flood-sensor:{sensor.pk}", requires_ack=False)
    if sensor.geom is not None:
        work_order_create(title=f"Inspect sensor {sensor.code} ({kind})", location=sensor.geom,
                          description=f"{sensor.name}: {fault.reason}", source_agent=AGENT,
                          source_ref=f"flood-sensor:{sensor.pk}:{fault.event.time:%Y%m%dT%H%M}")


def _zone_report(*, faults: list[NewFault]) -> None:
    """Several sensors of one zone at once: one notice and one order at the zone, listing them."""
    zone, n, kinds, since = faults[0].zone, len(faults), _kinds(faults), _since(faults)
    notification_send(
        topic="flood", level=1, subject=f"Sensor faults: {n} sensors of {zone.name} are {kinds}",
        body=f"{n} sensors of {zone.name} went {kinds} together since {since:%Y-%m-%d %H:%M} UTC: "
             f"{_codes(faults)}. Their readings raise no flood alert until they are fixed.",
        location=zone.geom.centroid, source_ref=f"flood-zone-sensors:{zone.pk}", requires_ack=False)
    work_order_create(
        title=f"Inspect {n} sensors of {zone.name} ({kinds})", location=zone.geom.centroid,
        description=f"{kinds.capitalize()} since {since:%Y-%m-%d %H:%M} UTC: {_codes(faults)}.", source_agent=AGENT,
        source_ref=f"flood-zone-sensors:{zone.pk}:{_stamp(faults)}")


def _outage_report(*, faults: list[NewFault]) -> None:
    """Many sensors at once: one notice (yellow: the city is partly blind to floods until it is fixed, so a
    dispatcher acknowledges it) and one order to check the network, at the sensors' centroid."""
    n, kinds, since = len(faults), _kinds(faults), _since(faults)
    zones = len({f.zone.pk for f in faults})
    where = MultiPoint([f.sensor.geom or f.zone.geom.centroid for f in faults], srid=4326).centroid
    ref = f"flood-outage:{_stamp(faults)}"
    notification_send(
        topic="flood", level=Level.YELLOW, subject=f"Sensor outage: {n} sensors in {zones} zones {kinds}",
        body=f"{n} sensors in {zones} zones went {kinds} together since {since:%Y-%m-%d %H:%M} UTC: likely a "
             f"gateway, power or network failure. Their readings raise no flood alert until they report again.",
        location=where, source_ref=ref)
    work_order_create(
        title=f"Check the sensor network: {n} sensors {kinds} since {since:%H:%M}", location=where,
        priority=WorkOrder.Priority.HIGH, source_agent=AGENT, source_ref=ref,
        description=f"{n} sensors in {zones} zones went {kinds} together since {since:%Y-%m-%d %H:%M} UTC (likely "
                    f"a gateway, power or network failure): {_codes(faults)}.")


def _restoration_report(*, sensors: list[Sensor], time: dt.datetime) -> None:
    """A mass restoration, announced once (single ones are not: the sensor's status says it)."""
    points = [s.geom for s in sensors if s.geom is not None]
    notification_send(
        topic="flood", level=1, requires_ack=False, subject=f"Sensors back: {len(sensors)} sensors report again",
        body=f"{len(sensors)} sensors report good readings again at {time:%Y-%m-%d %H:%M} UTC.",
        location=MultiPoint(points, srid=4326).centroid if points else None,
        source_ref=f"flood-outage-restored:{time:%Y%m%dT%H%M}")


def _kinds(faults: list[NewFault]) -> str:
    return " or ".join(sorted({f.kind for f in faults}))


def _since(faults: list[NewFault]) -> dt.datetime:
    """When the first of them went quiet (a fault's `since`; its time where it has none)."""
    return min(dt.datetime.fromisoformat(str(f.event.detail["since"])) if f.event.detail.get("since")
               else f.event.time for f in faults)


def _stamp(faults: list[NewFault]) -> str:
    """The group's source_ref time: the evaluation's last fault time, the same when it is applied again."""
    return f"{max(f.event.time for f in faults):%Y%m%dT%H%M}"


def _codes(faults: list[NewFault]) -> str:
    codes = [f.sensor.code for f in faults]
    more = f" and {len(codes) - LISTED} more" if len(codes) > LISTED else ""
    return ", ".join(codes[:LISTED]) + more

