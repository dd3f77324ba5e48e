"""The flood agent's map tiles (city_ops.city.maplayers): sensors coloured by state."""
from __future__ import annotations

import functools

from django.db.models import CharField, F
from django.db.models.expressions import RawSQL

from city_ops.city.maplayers import MapSource

from .models import Alert, Sensor
from .selectors import FAULT_COLOUR, LEVEL_COLOURS

# A sensor's colour in SQL: grey unless active, else the highest open alert level of a zone it lies in or is
# assigned to. Unlike `sensor_states` it does not match the alert's hazard to the sensor's parameters: a
# rain gauge in a zone with an open river alert shows the zone's level (on a map, the zone's colour is the
# fact that matters; the sensor's own page has the exact state).
_COLOUR_SQL = (
    "CASE WHEN agent_flood_sensor.status <> %s THEN %s ELSE (%s::text[])[1 + coalesce(("
    "SELECT max(a.level) FROM agent_flood_alert a WHERE a.status = %s AND a.zone_id IN ("
    "SELECT z.id FROM agent_flood_floodzone z WHERE ST_Intersects(z.geom, agent_flood_sensor.geom) UNION "
    "SELECT s.floodzone_id FROM agent_flood_floodzone_assigned_sensors s WHERE s.sensor_id = agent_flood_sensor.id"
    ")), 0)] END"
)


def _sensors(user, zoom: int):
    return Sensor.objects.exclude(geom__isnull=True)


@functools.cache  # built once per process: every tile request asks for it
def sensor_sources() -> tuple[MapSource, ...]:
    colour = RawSQL(_COLOUR_SQL, (Sensor.Status.ACTIVE.value, FAULT_COLOUR,
                                  [LEVEL_COLOURS[level] for level in sorted(LEVEL_COLOURS)], Alert.Status.OPEN.value),
                    output_field=CharField())
    return (MapSource(
        id="flood-sensors", rows=_sensors, geom="geom",
        props={"code": F("code"), "name": F("name"), "kind": F("kind"), "status": F("status"), "color": colour}),)
