"""Names in tool arguments resolved against the city model. A name the city does not know fails with the
closest names it does know: the copilot tells the user, it does not pick one for them."""
from __future__ import annotations

from django.contrib.gis.geos import MultiLineString, Point
from django.utils.translation import gettext as _

from city_ops.city.models import District, RoadSegment
from city_ops.city.selectors import district_find, street_names_like, street_segments

from .tools import ToolFailed


def street_resolve(name: str) -> list[RoadSegment]:
    """The segments of a street; ToolFailed naming the closest known streets when there are none."""
    segments = list(street_segments(name=name))
    if segments:
        return segments
    near = street_names_like(name=name)
    hint = _(" Did you mean: %(names)s?") % {"names": ", ".join(near)} if near else ""
    raise ToolFailed(_("The city has no street named “%(name)s”.") % {"name": name} + hint)


def segments_resolve(ids: list[int]) -> list[RoadSegment]:
    segments = list(RoadSegment.objects.filter(pk__in=ids).order_by("pk"))
    missing = sorted(set(ids) - {s.pk for s in segments})
    if missing:
        raise ToolFailed(_("No road segment has the id %(ids)s.") % {"ids": ", ".join(map(str, missing))})
    return segments


def segments_geom(segments: list[RoadSegment]) -> MultiLineString:
    return MultiLineString([s.geom for s in segments], srid=4326)


def street_point(segments: list[RoadSegment]) -> Point:
    """A point on the street: the middle of its longest segment (where an order for "the street" goes)."""
    point = max(segments, key=lambda s: s.length_m).geom.interpolate_normalized(0.5)
    point.srid = 4326
    return point


def district_resolve(name: str) -> District:
    district = district_find(name=name)
    if district is None:
        known = ", ".join(District.objects.order_by("name").values_list("name", flat=True)[:12])
        raise ToolFailed(_("The city has no district named “%(name)s” (known: %(known)s).")
                         % {"name": name, "known": known})
    return district
