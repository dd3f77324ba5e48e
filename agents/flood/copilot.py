"""The flood agent's copilot tools (declared in agent.py): open alerts and the state of a sensor or zone,
read through the restricted querysets the console uses."""
from __future__ import annotations

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from city_ops.copilot.places import district_resolve
from city_ops.copilot.tools import ToolFailed, ToolResult, external_text

from .models import Alert, FloodZone, Sensor
from .selectors import open_alerts

ZONE = {"type": "string", "minLength": 1, "maxLength": 200, "description": "a flood zone's code or name"}
SENSOR = {"type": "string", "minLength": 1, "maxLength": 200, "description": "a sensor's code or name"}


def _panel_link() -> dict:
    return {"label": _("Flood panel"), "url": reverse("flood:panel")}


def _zones(*, user, name: str):
    zones = FloodZone.objects.restrict(user, "view").filter(Q(code__iexact=name) | Q(name__icontains=name))
    if not zones.exists():
        raise ToolFailed(_("There is no flood zone named “%(name)s”.") % {"name": name})
    return zones


def _alert_row(alert: Alert) -> dict:
    return {"id": alert.pk, "zone": alert.zone.name, "hazard": alert.hazard, "level": alert.level_label,
            "rule": alert.rule, "raised_at": alert.raised_at.isoformat(), "closure": alert.closure_state,
            "acknowledged": alert.acknowledged_at is not None}


def _standby_row(zone: FloodZone) -> dict:
    """A zone a CAP warning put on standby; the warning's words are the sender's, so marked as outside text."""
    row = {"zone": zone.name, "until": zone.standby_until.isoformat()}
    if cap := zone.standby_source:
        row["cap_warning"] = external_text(" / ".join(t for t in (cap.headline, cap.area_desc) if t),
                                           source=f"CAP alert from {cap.sender}")
    return row


def flood_alerts(*, user, args: dict) -> ToolResult:
    alerts = open_alerts().restrict(user, "view")
    zones = FloodZone.objects.restrict(user, "view")
    if args.get("zone"):
        zones = _zones(user=user, name=args["zone"])
    if args.get("district"):
        zones = zones.filter(geom__intersects=district_resolve(args["district"]).geom)
    alerts = list(alerts.filter(zone__in=zones)[:50])
    standby = zones.filter(standby_until__gt=timezone.now()).select_related("standby_source")
    rows = [_alert_row(a) for a in alerts]
    summary = (_("%(n)d open flood alerts, highest: %(top)s.") % {
        "n": len(rows), "top": f"{alerts[0].level_label} {alerts[0].hazard} ({alerts[0].zone.name})"}
        if alerts else _("No open flood alerts."))
    return ToolResult(data={"alerts": rows, "standby": [_standby_row(z) for z in standby]}, summary=summary,
                      links=[_panel_link()])


def _sensor_state(sensor: Sensor) -> dict:
    return {"code": sensor.code, "name": sensor.name, "kind": sensor.kind, "status": sensor.status,
            "fault": sensor.fault,
            "latest": [{"parameter": s.parameter, "value": s.last_value, "unit": s.unit,
                        "at": s.last_time.isoformat() if s.last_time else None} for s in sensor.series.all()]}


def flood_status(*, user, args: dict) -> ToolResult:
    if args.get("sensor"):
        name = args["sensor"]
        sensor = (Sensor.objects.restrict(user, "view").prefetch_related("series")
                  .filter(Q(code__iexact=name) | Q(name__icontains=name)).first())
        if sensor is None:
            raise ToolFailed(_("There is no flood sensor named “%(name)s”.") % {"name": name})
        state = _sensor_state(sensor)
        values = ", ".join(f"{r['parameter']} {r['value']} {r['unit']}" for r in state["latest"] if r["value"] is not None)
        return ToolResult(data={"sensor": state}, links=[_panel_link()],
                          summary=_("Sensor %(code)s is %(status)s: %(values)s.") % {
                              "code": sensor.code, "status": sensor.status, "values": values or _("no readings")})
    zones = list(_zones(user=user, name=args["zone"]))
    open_by_zone = {a.zone_id: a for a in open_alerts().restrict(user, "view").filter(zone__in=zones)}
    rows = [{"code": z.code, "name": z.name, "level": z.level, "open_alert": _alert_row(open_by_zone[z.pk])
             if z.pk in open_by_zone else None} for z in zones]
    return ToolResult(data={"zones": rows}, links=[_panel_link()],
                      summary="; ".join(_("%(zone)s: level %(level)d") % {"zone": z.name, "level": z.level}
                                        for z in zones))
