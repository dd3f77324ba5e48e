"""The platform's own map sources (city_ops.city.maplayers): the road network and the active closures."""
from __future__ import annotations

from django.db.models import F

from .maplayers import MapSource
from .models import CityProfile, RoadClosure, RoadSegment

RC = RoadSegment.RoadClass
# Which road classes a zoom shows: the city in view (zoom 10-11, 50 km across) draws its arterials only,
# a district (12-13) adds the collector roads, a street view every segment. At scale 250 this keeps a
# city-zoom tile at about a fifth of the network instead of all of it.
ROAD_CLASSES_BY_ZOOM = (
    (11, (RC.MOTORWAY, RC.TRUNK, RC.PRIMARY)),
    (13, (RC.MOTORWAY, RC.TRUNK, RC.PRIMARY, RC.SECONDARY, RC.TERTIARY)),
)


def road_classes_for(zoom: int) -> tuple[str, ...] | None:
    """The classes drawn at `zoom`; None for every class."""
    for upto, classes in ROAD_CLASSES_BY_ZOOM:
        if zoom <= upto:
            return tuple(str(c) for c in classes)
    return None


def _roads(user, zoom: int):
    classes = road_classes_for(zoom)
    qs = RoadSegment.objects.all()
    return qs if classes is None else qs.filter(road_class__in=classes)


def network_version() -> str:
    """The road network's import (version and time): a new import makes new tiles."""
    profile = CityProfile.objects.only("network_version", "updated_at").first()
    return f"{profile.network_version}:{profile.updated_at.timestamp():.6f}" if profile else "0"


def _closures(user, zoom: int):
    return RoadClosure.objects.active().restrict(user, "view")


PLATFORM_SOURCES = (
    # A city-zoom tile of the scale-250 city holds about 8,000 arterial segments: the cap sits above that.
    MapSource(id="roads", rows=_roads, geom="geom", version=network_version, cap=12_000,
              props={"name": F("name"), "class": F("road_class"), "oneway": F("oneway"), "speed": F("speed_kph")}),
    # The console keeps the closures' GeoJSON: a few live features it marks with signs, focuses by id
    # (#closure-N) and reloads when one is made; tiles would hide a few metres of closed road at city zoom.
    MapSource(id="closures", rows=_closures, geom="geom", console_tiles=False,
              props={"reason": F("reason"), "source": F("source_agent")}),
)
