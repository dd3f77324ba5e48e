"""The sanitation agent's map tiles (city_ops.city.maplayers): active bins coloured by forecast fill."""
from __future__ import annotations

import functools

from django.db.models import Case, CharField, F, Value, When

from city_ops.city.maplayers import MapSource
from city_ops.core.roles import Role

from .models import Bin
from .views import FILL_CALM, FILL_COLOURS, FILL_UNKNOWN

FILL = "fill_model__forecast_fill"


def _bins(user, zoom: int):
    return Bin.objects.filter(active=True)


@functools.cache  # built once per process: every tile request asks for it
def bin_sources() -> tuple[MapSource, ...]:
    colour = Case(When(**{f"{FILL}__isnull": True}, then=Value(FILL_UNKNOWN)),
                  *(When(**{f"{FILL}__gte": at}, then=Value(c)) for at, c in FILL_COLOURS),
                  default=Value(FILL_CALM), output_field=CharField())
    return (MapSource(
        id="sanitation-bins", rows=_bins, geom="geom", roles=(Role.DISPATCHER,),
        props={"title": F("code"), "street": F("street"), "litres": F("capacity_l"), "waste": F("waste_type"),
               "forecast": F(FILL), "color": colour}),)
