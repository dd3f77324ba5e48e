"""The flood panel: sensors on the map coloured by state, each sensor's hydrograph with its thresholds,
active alerts with acknowledge / escalate / confirm-lift actions, closures, zones on standby, recent events,
and drills (a readings file or a bundled scenario replayed in memory, started, paused and stopped here).
Thin: reads through selectors, changes through services."""
from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_POST

from agents.runtime.models import AgentRun
from city_ops.city.geovalidate import city_extent
from city_ops.city.models import CityProfile, RoadClosure
from city_ops.console.decorators import role_required
from city_ops.core.roles import Role

from .domain import CapError
from .domain.vocabulary import Level
from .models import Alert, AlertEvent, CapImport, Drill, FloodZone, Sensor
from .scenarios import SCENARIOS
from .selectors import LEVEL_COLOURS, drill_latest, drill_status, open_alerts, sensor_states, zone_exposure
from .services import (
    alert_acknowledge,
    alert_escalate,
    cap_import,
    cap_xsd_default,
    closure_lift_confirm,
    drill_pause,
    drill_resume,
    drill_start,
    drill_stop,
)
from .services.drills import MAX_DRILL_BYTES

MAX_CAP_BYTES = 2 * 1024 * 1024
DRILL_SPEEDS = (60.0, 300.0, 900.0, 3600.0, 0.0)  # x real time; 0: as fast as possible


@role_required(Role.DISPATCHER)
def panel(request):
    """The duty room's page."""
    profile = CityProfile.objects.first()
    states = sensor_states()
    sensors = list(Sensor.objects.restrict(request.user).prefetch_related("series"))
    for s in sensors:
        s.state = states.get(s.pk, {"level": 0, "color": LEVEL_COLOURS[0], "fault": False})
        s.level_label = Level(s.state["level"]).label
    now = timezone.now()
    zones = list(FloodZone.objects.restrict(request.user).order_by("-level", "code"))
    for z in zones:
        z.on_standby = bool(z.standby_until and z.standby_until > now)
        z.level_label = Level(z.level).label
    alerts = list(open_alerts().restrict(request.user))
    exposures = {}  # one lookup per zone, however many alerts it has
    for a in alerts:
        a.exposure = exposures.setdefault(a.zone_id, zone_exposure(zone=a.zone))
    drill = drill_latest()
    return render(request, "flood/panel.html", {
        "drill": drill, "drill_state": _drill_words(drill_status(drill=drill)) if drill else None,
        "scenarios": list(SCENARIOS.values()), "drill_speeds": DRILL_SPEEDS, "drill_actions": [
            ({"name": "pause", "when": "running"}, _("Pause")), ({"name": "resume", "when": "paused"}, _("Resume")),
            ({"name": "stop", "when": "running paused"}, _("Stop"))],
        "alerts": alerts, "zones": zones, "sensors": sensors,
        "events": AlertEvent.objects.restrict(request.user).select_related("zone", "actor").order_by("-created_at",
                                                                                                      "-id")[:25],
        "closures": RoadClosure.objects.active().filter(source_agent="flood").order_by("-valid_from")[:20],
        "caps": CapImport.objects.restrict(request.user).prefetch_related("zones")[:5],
        "run": AgentRun.objects.filter(agent="flood").exclude(status=AgentRun.Status.PENDING).first(),
        "levels": [level.label for level in Level if level > Level.NONE],
        "level_colours": {Level(k).label: v for k, v in LEVEL_COLOURS.items()},
        "bounds": city_extent(),
        "attribution": (profile.attribution if profile and profile.attribution else "© OpenStreetMap contributors"),
        "tile_url": settings.CITY_TILE_URL, "tile_attribution": settings.CITY_TILE_ATTRIBUTION,
    })


_ACTIONS = {"acknowledge": alert_acknowledge, "escalate": alert_escalate, "confirm_lift": closure_lift_confirm}


@require_POST
@role_required(Role.DISPATCHER)
def alert_action(request, pk: int):
    """Acknowledge, escalate (one level, or to the level chosen) or confirm a closure lift."""
    alert = get_object_or_404(Alert.objects.restrict(request.user, "change").select_related("zone"), pk=pk)
    action = request.POST.get("action", "")
    if action not in _ACTIONS:
        messages.error(request, _("Unknown action."))
        return redirect(reverse("flood:panel"))
    kwargs = {}
    if action == "escalate":
        raw = request.POST.get("level", "")
        try:
            kwargs = {"level": int(Level.parse(raw)) if raw else None, "note": request.POST.get("note", "")[:300]}
        except ValueError:
            messages.error(request, _("Choose a level: blue, yellow, orange or red."))
            return redirect(reverse("flood:panel"))
    try:
        alert = _ACTIONS[action](alert=alert, user=request.user, **kwargs)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        # the level's colour name in the user's language (its msgids come from flood/_level.html)
        level = pgettext("flood warning level", alert.level_label)
        done = {"acknowledge": _("acknowledged"), "escalate": _("escalated to %(level)s") % {"level": level},
                "confirm_lift": _("closure lifted")}[action]
        messages.success(request, _("Alert in %(zone)s: %(done)s.") % {"zone": alert.zone.name, "done": done})
    return redirect(reverse("flood:panel"))


@require_POST
@role_required(Role.DISPATCHER)
def cap_upload(request):
    """Import a CAP file from the weather service."""
    upload = request.FILES.get("file")
    if upload is None or upload.size == 0:
        messages.error(request, _("Choose a CAP file to import."))
    elif upload.size > MAX_CAP_BYTES:
        messages.error(request, _("The file is too large for a CAP message."))
    else:
        try:
            record = cap_import(data=upload.read(), xsd_path=cap_xsd_default(), user=request.user)
        except CapError as exc:
            messages.error(request, _("CAP refused: %(reason)s") % {"reason": exc})
        else:
            messages.success(request, _("Imported %(event)s from %(sender)s: %(notes)s") % {
                "event": record.event or record.msg_type, "sender": record.sender,
                "notes": "; ".join(record.warnings) or _("no zone affected")})
    return redirect(reverse("flood:panel"))


def _number(raw: str, default: float) -> float:
    try:
        return float(raw) if raw not in (None, "") else default
    except ValueError:
        raise ValidationError(_("Speed and tick length are numbers.")) from None


@require_POST
@role_required(Role.DISPATCHER)
def drill_begin(request):
    """Start a drill of a bundled scenario or an uploaded readings file."""
    back = reverse("flood:panel") + "#flood-drill"
    key, upload = request.POST.get("scenario", ""), request.FILES.get("file")
    try:
        speed = _number(request.POST.get("speed"), 60.0)
        step = dt.timedelta(minutes=_number(request.POST.get("step_min"), 15.0))
        if key:
            if key not in SCENARIOS:
                raise ValidationError(_("Unknown scenario."))
            name, data = SCENARIOS[key].title, SCENARIOS[key].build()
        elif upload is not None and upload.size:
            if upload.size > MAX_DRILL_BYTES:
                raise ValidationError(_("The file is too large for a drill."))
            name, data = upload.name, upload.read()
        else:
            raise ValidationError(_("Choose a scenario or a readings file."))
        drill = drill_start(data=data, name=name, user=request.user, speed=speed, step=step, scenario=key)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Drill started: %(name)s (%(n)s readings).") % {"name": drill.name,
                                                                                   "n": drill.readings})
    return redirect(back)


_DRILL_ACTIONS = {"pause": drill_pause, "resume": drill_resume, "stop": drill_stop}


def _drill_words(state: dict) -> dict:
    """A drill's status with the words the panel shows in the user's language beside each code (the msgids
    of levels and event kinds come from flood/_level.html and flood/_event_kind.html)."""
    for event in state["events"]:
        event["kind_label"] = pgettext("flood alert event", event["kind"])
        event["level_label"] = pgettext("flood warning level", event["level"])
    for zone in state["map"]["zones"]:
        zone["level_label"] = pgettext("flood warning level", zone["level"])
    sensor_words = {"ok": pgettext("flood drill sensor state", "ok"),
                    "fault": pgettext("flood drill sensor state", "fault")}
    for sensor in state["map"]["sensors"]:
        sensor["state_label"] = sensor_words.get(sensor["state"]) or pgettext("flood warning level", sensor["state"])
    return state


@require_POST
@role_required(Role.DISPATCHER)
def drill_action(request, pk: int):
    """Pause, resume or stop a drill."""
    drill = get_object_or_404(Drill.objects.restrict(request.user, "change").defer("data"), pk=pk)
    action = request.POST.get("action", "")
    if action not in _DRILL_ACTIONS:
        messages.error(request, _("Unknown action."))
    else:
        try:
            _DRILL_ACTIONS[action](drill=drill, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    return redirect(reverse("flood:panel") + "#flood-drill")


@role_required(Role.DISPATCHER)
def drill_state(request, pk: int):
    """A drill's state, replayed clock, alert log and map picture as JSON, with its words in the user's
    language (the panel polls it while the drill runs)."""
    drill = get_object_or_404(Drill.objects.restrict(request.user).defer("data"), pk=pk)
    return JsonResponse(_drill_words(drill_status(drill=drill)))
