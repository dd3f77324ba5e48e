"""What crews do with their routes: mark each stop collected (with the fill they saw) or skipped (why, with
a photo), which records the pickup the fill model learns from; and take the route along as GPX."""

from __future__ import annotations

import gpxpy
import gpxpy.gpx
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from city_ops.core.roles import Role, user_has_role
from city_ops.core.services import audit_record

from ..models import CollectionPlan, Pickup, PlanRoute, PlanStop

MAX_OBSERVED_FILL = 1.5


def _may_work(route: PlanRoute, user) -> bool:
    if user_has_role(user, Role.DISPATCHER):
        return True
    return bool(route.crew_id) and route.crew.members.filter(pk=user.pk).exists()


@transaction.atomic
def stop_mark(
    *,
    stop: PlanStop,
    user,
    status: str,
    observed_fill: float | None = None,
    reason: str = "",
    overflowing: bool = False,
    photo: UploadedFile | None = None,
    note: str = "",
) -> Pickup:
    """Record what the crew did at a bin stop. Marking the same stop again corrects the record (one pickup
    per stop). Only the route's crew (or a dispatcher) may, and only on an approved plan."""
    route = stop.route
    if not _may_work(route, user):
        raise PermissionDenied("this stop is not on your crew's route")
    status_now = CollectionPlan.objects.filter(pk=route.plan_id).values_list("status", flat=True).first()
    if status_now != CollectionPlan.Status.APPROVED:  # read now: an approval may have come since
        raise ValidationError("the plan is not approved: there is nothing to mark yet")
    if stop.kind != PlanStop.Kind.BIN or stop.bin_id is None:
        raise ValidationError("only bin stops are marked")
    if status not in Pickup.Status.values:
        raise ValidationError(f"status must be one of {', '.join(Pickup.Status.values)}")
    if observed_fill is not None:
        observed_fill = float(observed_fill)
        if not 0.0 <= observed_fill <= MAX_OBSERVED_FILL:
            raise ValidationError(f"observed fill must be between 0 and {MAX_OBSERVED_FILL:g}")
    if status == Pickup.Status.COLLECTED:
        if observed_fill is None:
            raise ValidationError("say how full the bin was (observed fill, 0-1.5)")
        reason = ""
    else:
        if reason not in Pickup.Reason.values:
            raise ValidationError(f"a skipped stop needs a reason: {', '.join(Pickup.Reason.values)}")
    if reason == Pickup.Reason.OVERFLOWING:
        overflowing = True
    fields = {
        "bin_id": stop.bin_id,
        "at": timezone.now(),
        "status": status,
        "reason": reason,
        "observed_fill": observed_fill,
        "overflowing": overflowing or (observed_fill or 0) > 1.0,
        "note": note[:300],
        "crew": route.crew,
        "reported_by": user,
    }
    pickup = Pickup.objects.select_for_update().filter(stop=stop).first()
    if pickup is None:
        pickup = Pickup(stop=stop, **fields)
    else:
        for k, v in fields.items():
            setattr(pickup, k, v)
    if photo is not None:
        pickup.photo.save(photo.name or "photo.jpg", photo, save=False)
    pickup.save()
    audit_record(
        action=f"sanitation.stop_{status}",
        obj=pickup,
        actor=user,
        changes={"stop": stop.pk, "bin": stop.bin_id, "observed_fill": observed_fill, "reason": reason},
    )
    return pickup


def route_gpx(*, route: PlanRoute) -> str:
    """The route as GPX 1.1: the road geometry as a track, and the stops in order as a route with
    waypoints (name, planned time, what to do) that navigation apps show."""
    gpx = gpxpy.gpx.GPX()
    gpx.creator = "city-ops sanitation"
    name = f"{route.truck.code} {route.plan.date} (plan v{route.plan.version})"
    gpx.name = name
    track = gpxpy.gpx.GPXTrack(name=name)
    segment = gpxpy.gpx.GPXTrackSegment()
    if route.geom is not None:
        for lon, lat in route.geom.coords:
            segment.points.append(gpxpy.gpx.GPXTrackPoint(latitude=lat, longitude=lon))
    track.segments.append(segment)
    gpx.tracks.append(track)
    rte = gpxpy.gpx.GPXRoute(name=name)
    depot = route.truck.depot
    head = (route.profile or [{}])[0].get("label", "depot")
    if head != "depot" and route.geom is not None:  # re-planned on the road: it starts where the truck was
        lon, lat = route.geom.coords[0]
        rte.points.append(
            gpxpy.gpx.GPXRoutePoint(latitude=lat, longitude=lon, name=f"0 {head}", time=route.depart_at)
        )
    else:
        rte.points.append(
            gpxpy.gpx.GPXRoutePoint(
                latitude=depot.geom.y, longitude=depot.geom.x, name=f"0 {depot.name}", time=route.depart_at
            )
        )
    for stop in route.stops.select_related("bin", "disposal_site").order_by("order"):
        site = stop.bin or stop.disposal_site
        label = stop.bin.code if stop.bin else f"unload: {stop.disposal_site.name}"
        desc = (
            f"{stop.bin.capacity_l} L {stop.bin.get_waste_type_display()}, {stop.bin.street}".strip(", ")
            if stop.bin
            else f"unload ({stop.disposal_site.unload_min} min)"
        )
        point = gpxpy.gpx.GPXRoutePoint(
            latitude=site.geom.y,
            longitude=site.geom.x,
            name=f"{stop.order} {label}",
            time=stop.arrival,
            description=desc,
        )
        rte.points.append(point)
        gpx.waypoints.append(
            gpxpy.gpx.GPXWaypoint(
                latitude=site.geom.y,
                longitude=site.geom.x,
                name=f"{stop.order} {label}",
                time=stop.arrival,
                description=desc,
            )
        )
    rte.points.append(
        gpxpy.gpx.GPXRoutePoint(
            latitude=depot.geom.y,
            longitude=depot.geom.x,
            name=f"{route.stops.count() + 1} {depot.name}",
            time=route.back_at,
        )
    )
    gpx.routes.append(rte)
    return gpx.to_xml(version="1.1")
