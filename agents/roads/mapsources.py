"""The roads agent's map tiles (city_ops.city.maplayers): open defects coloured by severity."""
from __future__ import annotations

import functools

from django.db.models import Case, CharField, F, Value, When
from django.db.models.functions import Cast, Concat
from django.urls import reverse

from city_ops.city.maplayers import MapSource
from city_ops.core.roles import Role

from .models import Defect
from .selectors import SEVERITY_COLORS


def _defects(user, zoom: int):
    return Defect.objects.restrict(user).active()


def _detail_url():
    """The defect page's address built in SQL (the same URL `reverse` gives, the id put in its place)."""
    head, tail = reverse("roads:defect_detail", args=[987654321]).split("987654321")
    return Concat(Value(head), Cast("pk", CharField()), Value(tail), output_field=CharField())


@functools.cache  # built once per process: every tile request asks for it
def defect_sources() -> tuple[MapSource, ...]:
    colour = Case(*(When(severity_level=level, then=Value(c)) for level, c in SEVERITY_COLORS.items()),
                  default=Value("#8a3ffc"), output_field=CharField())
    return (MapSource(
        id="roads-defects", rows=_defects, geom="location", roles=(Role.DISPATCHER,),
        props={"class": F("class_name"), "severity_level": F("severity_level"), "priority_score": F("priority_score"),
               "sightings": F("sightings_count"), "status": F("status"), "color": colour, "url": _detail_url()}),)
