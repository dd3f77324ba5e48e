"""Reads of the flood agent: sensor configurations for the rules, readings windows, zone membership and what
lies in a zone (spatial queries), map layers, hydrographs."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.db.models import F
from django.utils.translation import gettext_noop

from agents.flood.conf import conf
from agents.runtime.base import Headline, StatementSection
from agents.runtime.models import AgentRun
from agents.runtime.statement import Note, PeriodKpis, SummedKpi, section_summed
from city_ops.city.models import CityEvent, RoadSegment
from city_ops.core.timeutil import day_bounds
from city_ops.results.selectors import rate_stated, unit_costs_get

from .domain import (
    DepthSettings,
    GaugeSettings,
    RainfallSettings,
    RainThreshold,
    Reading,
    SensorConfig,
    SeriesReadings,
    Station,
    TrackerSettings,
    qc_settings_default,
)
from .domain.counterfactual import ThresholdSeries, threshold_callouts
from .domain.vocabulary import CANONICAL_UNITS, Level
from .models import Alert, Drill, FloodZone, Sensor, Series
from .models import Reading as ReadingRow

# Same-parameter sensors within this distance are a sensor's neighbours for the stuck-sensor check.
NEIGHBOUR_RADIUS_M = 5000
NEIGHBOURS_MAX = 4
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# A judged daily value (dated 00:00 UTC of its day) is on time once a day, and its result counts for its day and
# the day it takes an agency to publish it (instantaneous results: the tracker's two hours).
SUMMARY_INTERVAL = dt.timedelta(days=1)
SUMMARY_VALID_FOR = dt.timedelta(days=2)
# Readings the ingest refused as physically impossible: stored for the record, never read for the rules.
IMPOSSIBLE = int(ReadingRow.QC.IMPOSSIBLE)


def rainfall_settings() -> RainfallSettings:
    """The city's rainstorm signals: CMA's by default, or settings.FLOOD_RAINSTORM_SIGNALS as
    [(level name, hours, mm), ...] where a city configures its own."""
    custom = conf("FLOOD_RAINSTORM_SIGNALS")
    if not custom:
        return RainfallSettings()
    return RainfallSettings(thresholds=tuple(RainThreshold(Level.parse(level), float(hours), float(mm))
                                             for level, hours, mm in custom))


def tracker_settings() -> TrackerSettings:
    """Hysteresis hold time of the alert tracker (settings.FLOOD_HOLD_MINUTES, default 30)."""
    return TrackerSettings(hold=dt.timedelta(minutes=conf("FLOOD_HOLD_MINUTES")))


def context_window() -> dt.timedelta:
    """How far before the last evaluation a run reads back for context (QC history, rule windows)."""
    return dt.timedelta(hours=conf("FLOOD_CONTEXT_HOURS"))


def sensor_zone_pairs() -> list[tuple[int, int]]:
    """(sensor id, zone id) for every sensor that lies in a zone or is assigned to it, in a stable order."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT s.id, z.id FROM agent_flood_sensor s
              JOIN agent_flood_floodzone z ON s.geom IS NOT NULL AND ST_Intersects(z.geom, s.geom)
            UNION
            SELECT a.sensor_id, a.floodzone_id FROM agent_flood_floodzone_assigned_sensors a
            ORDER BY 1, 2
            """
        )
        return [(int(s), int(z)) for s, z in cur.fetchall()]


def sensor_neighbours() -> dict[int, list[int]]:
    """Per sensor, up to NEIGHBOURS_MAX other sensors of the same kind within NEIGHBOUR_RADIUS_M, nearest
    first (the stuck check compares a sensor with them). A k-d tree on local metres (equirectangular: exact
    enough within a city) answers for every sensor at once."""
    import numpy as np
    from scipy.spatial import cKDTree

    rows = list(Sensor.objects.exclude(geom__isnull=True).exclude(status=Sensor.Status.RETIRED)
                .order_by("id").values_list("id", "kind", "geom"))
    out: dict[int, list[int]] = defaultdict(list)
    if not rows:
        return out
    lat0 = float(np.mean([g.y for _, _, g in rows]))
    scale = np.array([111_320.0 * np.cos(np.radians(lat0)), 110_540.0])
    by_kind: dict[str, list[tuple[int, object]]] = defaultdict(list)
    for sensor_id, kind, geom in rows:
        by_kind[kind].append((sensor_id, geom))
    for members in by_kind.values():
        if len(members) < 2:
            continue
        ids = [m[0] for m in members]
        xy = np.array([(g.x, g.y) for _, g in members]) * scale
        k = min(NEIGHBOURS_MAX + 1, len(members))
        dist, idx = cKDTree(xy).query(xy, k=k, distance_upper_bound=NEIGHBOUR_RADIUS_M)
        for i, sensor_id in enumerate(ids):
            near = sorted((float(d), ids[j]) for d, j in zip(dist[i], idx[i]) if j < len(ids) and j != i)
            out[sensor_id] = [n for _, n in near[:NEIGHBOURS_MAX]]
    return out


@dataclass
class EvaluationSetup:
    """What a run needs besides readings: the core's sensor configurations (one per sensor and zone; the
    first zone of a sensor keeps the bare sensor code, others are `code@zone`), and lookups back to rows."""

    configs: list[SensorConfig]
    series_of_config: dict[str, int]  # config sensor name -> series id
    code_of_series: dict[int, str]
    parameter_of_series: dict[int, str]
    configs_of_series: dict[int, list[str]]
    fingerprint: str = ""


# A judged summary series is watched under `code/statistic` (a sensor's daily mean beside its instantaneous
# readings of the same parameter): the core keeps one track per config name.
SUMMARY_SEPARATOR = "/"


def config_sensor_code(name: str) -> str:
    """The sensor code of a config name (`code`, `code/statistic`, either with `@zone`)."""
    return name.split("@", 1)[0].split(SUMMARY_SEPARATOR, 1)[0]


def config_statistic(name: str) -> str:
    """The statistic of the series a config name watches ("" for instantaneous readings)."""
    _, _, statistic = name.split("@", 1)[0].partition(SUMMARY_SEPARATOR)
    return statistic


def configuration_fingerprint() -> str:
    """A digest of everything `evaluation_setup` reads (sensors, series thresholds, zones, assignments,
    the city's rain signals): equal digests, equal setups. One cheap query. Of a sensor's status only
    whether it is evaluated counts: a fault coming and going changes no configuration."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT md5(concat_ws('|',
              (SELECT string_agg(concat_ws(',', id, code, kind, status IN ('retired', 'maintenance'),
                                           expected_interval_s, ST_AsEWKT(geom)), ';' ORDER BY id)
                 FROM agent_flood_sensor),
              (SELECT string_agg(concat_ws(',', id, sensor_id, parameter, statistic, rule_statistic, warning_level,
                                           guaranteed_level, caution_depth, closure_depth, typical_low, typical_high,
                                           range_low, range_high), ';' ORDER BY id)
                 FROM agent_flood_series),
              (SELECT string_agg(concat_ws(',', id, code, md5(ST_AsEWKB(geom))), ';' ORDER BY id)
                 FROM agent_flood_floodzone),
              (SELECT string_agg(concat_ws(',', floodzone_id, sensor_id), ';' ORDER BY floodzone_id, sensor_id)
                 FROM agent_flood_floodzone_assigned_sensors)))
            """
        )
        digest = cur.fetchone()[0]
    return f"{digest}:{rainfall_settings()!r}:{conf('FLOOD_HOLD_MINUTES')}"


_setup_cache: dict[str, EvaluationSetup] = {}


def evaluation_setup() -> EvaluationSetup:
    """Sensor configurations for `readings_replay` from the database: each evaluated series (one whose rule
    names its statistic: an instantaneous one by default; a daily mean only where its `rule_statistic` says
    00003, else stored and charted only - of a sensor that is not retired or in maintenance) once per zone its
    sensor belongs to, with the series' thresholds and measuring range.
    Kept in the process while the configuration's fingerprint stays the same (the every-minute runs of a
    worker reuse it)."""
    fingerprint = configuration_fingerprint()
    cached = _setup_cache.get(fingerprint)
    if cached is not None:
        return cached
    setup = _evaluation_setup_build()
    setup.fingerprint = fingerprint
    _setup_cache.clear()
    _setup_cache[fingerprint] = setup
    return setup


def _evaluation_setup_build() -> EvaluationSetup:
    zones = {z.pk: z for z in FloodZone.objects.defer("geom")}
    zones_of: dict[int, list[int]] = defaultdict(list)
    for sensor_id, zone_id in sensor_zone_pairs():
        zones_of[sensor_id].append(zone_id)
    neighbours = sensor_neighbours()
    sensors = {s.pk: s for s in Sensor.objects.exclude(status__in=[Sensor.Status.RETIRED, Sensor.Status.MAINTENANCE])
               .defer("geom", "metadata")}
    rain = rainfall_settings()
    setup = EvaluationSetup([], {}, {}, {}, defaultdict(list))
    judged = Series.objects.filter(sensor_id__in=sensors, rule_statistic=F("statistic"))
    for series in judged.order_by("sensor__code", "parameter", "statistic"):
        sensor = sensors[series.sensor_id]
        setup.code_of_series[series.pk] = sensor.code
        setup.parameter_of_series[series.pk] = series.parameter
        member = sorted(zones[z].code for z in zones_of.get(sensor.pk, []))
        if not member:
            continue  # a sensor outside every zone is stored and shown, but raises no alert
        station = None
        if series.typical_low is not None and series.typical_high is not None:
            station = Station(code=sensor.code, typical_low=series.typical_low, typical_high=series.typical_high)
        overrides = {name: getattr(series, f"range_{name}") for name in ("low", "high")
                     if getattr(series, f"range_{name}") is not None}
        if series.statistic:
            # USGS statistics are daily values: one a day is on time, whatever the sensor's own interval
            overrides["expected_interval"] = SUMMARY_INTERVAL
        elif sensor.expected_interval_s:
            overrides["expected_interval"] = dt.timedelta(seconds=sensor.expected_interval_s)
        qc = qc_settings_default(parameter=series.parameter, station=station, **overrides)
        gauge = None
        if (series.parameter == "level" and series.warning_level is not None
                and series.guaranteed_level is not None and series.guaranteed_level > series.warning_level):
            gauge = GaugeSettings(warning=series.warning_level, guaranteed=series.guaranteed_level)
        depth = None
        if series.parameter == "depth":
            depth = DepthSettings(caution_cm=series.caution_depth or 15.0, closure_cm=series.closure_depth or 25.0)
        # neighbours are compared reading by reading: a daily mean has none among instantaneous series
        near = () if series.statistic else tuple(sensors[n].code for n in neighbours.get(sensor.pk, [])
                                                 if n in sensors)
        code = f"{sensor.code}{SUMMARY_SEPARATOR}{series.statistic}" if series.statistic else sensor.code
        for i, zone_code in enumerate(member):
            name = code if i == 0 else f"{code}@{zone_code}"
            setup.configs.append(SensorConfig(
                sensor=name, parameter=series.parameter, zone=zone_code, qc=qc, gauge=gauge,
                rain=rain if series.parameter == "rainfall" else None, depth=depth, neighbours=near,
                valid_for=SUMMARY_VALID_FOR if series.statistic else None))
            setup.series_of_config[name] = series.pk
            setup.configs_of_series[series.pk].append(name)
    return setup


def readings_window(*, setup: EvaluationSetup, start: dt.datetime | None, end: dt.datetime | None = None,
                    ) -> list[Reading]:
    """Readings of the configured series after `start` (all when None) and up to `end`, as core Readings
    named by config (a sensor in two zones appears under both names), each series in time order."""
    import psycopg

    names = setup.configs_of_series
    if not names:
        return []
    where, params = [f"qc <> {IMPOSSIBLE}"], []
    if start is not None:
        where.append("time > %s")
        params.append(start)
    if end is not None:
        where.append("time <= %s")
        params.append(end)
    sql = ("SELECT series_id, array_agg(time ORDER BY time), array_agg(value ORDER BY time) "
           f"FROM agent_flood_reading WHERE {' AND '.join(where)} GROUP BY series_id")
    connection.ensure_connection()
    # A server-side-binding cursor on Django's connection (same transaction) with binary results: parsing
    # hundreds of thousands of timestamps from text costs five times as much. The time range uses the BRIN
    # index; series that are not evaluated are dropped here rather than listed in the query.
    with psycopg.Cursor(connection.connection) as cur:
        cur.execute(sql, params, binary=True)
        rows = cur.fetchall()
    out: list[Reading] = []
    for series_id, times, values in sorted(rows, key=lambda r: r[0]):
        if series_id not in names:
            continue
        parameter = setup.parameter_of_series[series_id]
        unit = CANONICAL_UNITS[parameter]
        first, *others = names[series_id]
        batch = [Reading(first, parameter, t, v, unit) for t, v in zip(times, values)]
        out.extend(batch)
        for name in others:  # evidence names the real sensor, whichever zone's copy cites it
            out.extend(Reading(name, parameter, r.time, r.value, unit, 0, r.key) for r in batch)
    return out


def series_window(*, setup: EvaluationSetup, start: dt.datetime | None) -> list[SeriesReadings]:
    """The configured series' readings after `start` (all when None) as arrays, one SeriesReadings per
    sensor config: what a live run feeds the core without making a Reading per value."""
    import psycopg

    names = setup.configs_of_series
    if not names:
        return []
    where = f"WHERE qc <> {IMPOSSIBLE}" + (" AND time > %s" if start is not None else "")
    sql = ("SELECT series_id, array_agg((extract(epoch FROM time) * 1000000)::bigint ORDER BY time), "
           f"array_agg(value ORDER BY time) FROM agent_flood_reading {where} GROUP BY series_id")
    connection.ensure_connection()
    # A server-side-binding cursor on Django's connection (same transaction) with binary results; the time
    # range uses the BRIN index, and series that are not evaluated are dropped here rather than listed.
    with psycopg.Cursor(connection.connection) as cur:
        cur.execute(sql, [start] if start is not None else [], binary=True)
        return _series_arrays(setup, cur.fetchall())


def _series_arrays(setup: EvaluationSetup, rows) -> list[SeriesReadings]:
    """(series id, epoch microseconds[], values[]) rows as one SeriesReadings per sensor config (a sensor in
    two zones twice, its copy's evidence naming the real sensor); series not evaluated are dropped."""
    import numpy as np

    names = setup.configs_of_series
    out = []
    for series_id, micros, values in sorted(rows, key=lambda r: r[0]):
        if series_id not in names:
            continue
        times = np.asarray(micros, dtype=np.int64) * 1000
        vals = np.asarray(values, dtype=float)
        parameter = setup.parameter_of_series[series_id]
        first, *others = names[series_id]
        out.append(SeriesReadings(sensor=first, parameter=parameter, times_ns=times, values=vals))
        out.extend(SeriesReadings(sensor=name, parameter=parameter, times_ns=times, values=vals, key_sensor=first)
                   for name in others)
    return out


def series_after(*, setup: EvaluationSetup, after_us: dict[int, int], start: dt.datetime) -> list[SeriesReadings]:
    """The configured series' readings after each series' own time in `after_us` (epoch microseconds, UTC;
    after `start` for a series not in it), as arrays: what a live run that kept the earlier readings needs."""
    import numpy as np
    import psycopg

    ids = list(setup.configs_of_series)
    if not ids:
        return []
    start_us = (start - EPOCH) // dt.timedelta(microseconds=1)
    bounds = [after_us.get(series_id, start_us) for series_id in ids]
    # One index range per series on the (series, time) key; the lower bound on time alone keeps any plan on
    # the time index's recent end too. Bounds travel as integers (cheaper to send than a thousand datetimes).
    # Three flat arrays in one row (a run's few new readings of many series): one row to decode, split by
    # series here, rather than a row and two small arrays per series.
    sql = f"""
        SELECT array_agg(r.series_id ORDER BY r.series_id, r.time),
               array_agg((extract(epoch FROM r.time) * 1000000)::bigint ORDER BY r.series_id, r.time),
               array_agg(r.value ORDER BY r.series_id, r.time)
          FROM unnest(%s::bigint[], %s::bigint[]) AS w(series_id, after_us)
          JOIN agent_flood_reading r ON r.series_id = w.series_id
           AND r.time > timestamptz 'epoch' + w.after_us * interval '1 microsecond'
         WHERE r.time > %s AND r.qc <> {IMPOSSIBLE}
    """
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cur:
        cur.execute(sql, [ids, bounds, EPOCH + dt.timedelta(microseconds=min(bounds))], binary=True)
        series_ids, micros, values = cur.fetchone()
    if not series_ids:
        return []
    ids_ = np.array(series_ids, dtype=np.int64)
    cuts = np.flatnonzero(np.diff(ids_)) + 1
    times, vals = np.array(micros, dtype=np.int64), np.array(values, dtype=float)
    rows = zip(ids_[np.concatenate([[0], cuts])].tolist(), np.split(times, cuts), np.split(vals, cuts))
    return _series_arrays(setup, rows)


def readings_counted(*, spans: dict[int, tuple[dt.datetime, dt.datetime]]) -> dict[int, int]:
    """Per series, how many readings it has from the first to the last time of its span (inclusive)."""
    import psycopg

    if not spans:
        return {}
    ids = list(spans)
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cur:
        cur.execute(
            """
            SELECT w.series_id, count(r.time)
              FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[]) AS w(series_id, first, last)
              LEFT JOIN agent_flood_reading r ON r.series_id = w.series_id AND r.time >= w.first AND r.time <= w.last
                                             AND r.qc <> %s
             GROUP BY w.series_id
            """,
            [ids, [spans[i][0] for i in ids], [spans[i][1] for i in ids], IMPOSSIBLE],
        )
        return {int(series_id): int(n) for series_id, n in cur.fetchall()}


@dataclass
class SeriesMarks:
    """Where every series stands for the live evaluation: its newest reading time, the reading time up to
    which the evaluation has judged it (its own mark, `Series.evaluated_until`) and its backfill count.
    Times are epoch microseconds (UTC): a thousand series are compared every run, no datetime made."""

    latest: dt.datetime | None  # the newest reading time of any series
    last_us: dict[int, int]  # series id -> its newest reading time (series with readings)
    marks_us: dict[int, int]  # series id -> its mark (series some run has judged)
    backfills: dict[int, int]  # series id -> its backfill count (series that have one)

    def pending(self, *, marks_us: dict[int, int]) -> list[int]:
        """The series with a reading past their mark in `marks_us` (no mark: any reading): what a run judges,
        late readings included (a series' own mark, not the newest reading of any series, decides)."""
        return [series_id for series_id, last in self.last_us.items() if last > marks_us.get(series_id, -1)]


def us_datetime(us: int) -> dt.datetime:
    """Epoch microseconds (UTC) as an aware datetime."""
    return EPOCH + dt.timedelta(microseconds=us)


def series_marks() -> SeriesMarks:
    """Every series' newest reading time, evaluation mark and backfill count (one query, binary arrays)."""
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cur:
        cur.execute(
            """
            SELECT max(last_time), array_agg(id ORDER BY id),
                   array_agg((extract(epoch FROM last_time) * 1000000)::bigint ORDER BY id),
                   array_agg((extract(epoch FROM evaluated_until) * 1000000)::bigint ORDER BY id),
                   array_agg(backfills ORDER BY id)
              FROM agent_flood_series
            """,
            binary=True,
        )
        latest, ids, lasts, marks, backfills = cur.fetchone()
    rows = list(zip(ids or [], lasts or [], marks or [], backfills or []))
    return SeriesMarks(
        latest=latest,
        last_us={i: int(t) for i, t, _, _ in rows if t is not None},
        marks_us={i: int(m) for i, _, m, _ in rows if m is not None},
        backfills={i: int(b) for i, _, _, b in rows if b},
    )


def zone_segments(*, zone: FloodZone):
    """The road segments in a zone (spatial query)."""
    return RoadSegment.objects.filter(geom__intersects=zone.geom).order_by("id")


# What the other agents' assets are called in an alert (Asset.kind -> singular, plural).
ASSET_WORDS = {"bus_stop": ("bus stop", "bus stops"), "bin": ("bin", "bins"),
               "defect": ("open road defect", "open road defects"), "camera": ("road camera", "road cameras")}


@dataclass(frozen=True)
class ZoneExposure:
    """What lies in a flood zone: other agents' assets (bus stops, bins, open road defects, cameras: the
    runtime's `assets_in_area`, so flood imports no other agent) and the city's open work orders."""

    assets: list
    work_orders: list

    def groups(self) -> list[tuple[str, list[str]]]:
        """(what, [labels]) per kind of thing, in a stable order: e.g. ("2 bus stops", ["Rantatie", ...])."""
        by_kind: dict[str, list[str]] = defaultdict(list)
        for asset in self.assets:
            by_kind[asset.kind].append(asset.label)
        groups = [(_counted(len(labels), *ASSET_WORDS.get(kind, (kind.replace("_", " "),) * 2)), labels)
                  for kind, labels in sorted(by_kind.items())]
        if self.work_orders:
            groups.append((_counted(len(self.work_orders), "open work order", "open work orders"),
                           [f"#{o.pk} {o.title}" for o in self.work_orders]))
        return groups

    def summary(self, *, names: int = 3) -> str:
        """One line for a notification: 'In the zone: 2 bus stops (Rantatie, Satama), 1 bin (B-7).'"""
        if not self.groups():
            return "Nothing of the city's registered in the zone."
        parts = [f"{what} ({', '.join(labels[:names])}{', ...' if len(labels) > names else ''})"
                 for what, labels in self.groups()]
        return "In the zone: " + "; ".join(parts) + "."


def _counted(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def zone_exposure(*, zone: FloodZone) -> ZoneExposure:
    """The bus stops, bins, open road defects and cameras (from the other agents) and open work orders in a
    zone, for the alert's notification and the flood panel."""
    from agents.runtime.registry import assets_in_area
    from city_ops.workorders.models import WorkOrder

    orders = list(WorkOrder.objects.filter(location__within=zone.geom).exclude(status__in=WorkOrder.CLOSED_STATES)
                  .order_by("pk")[:200])
    return ZoneExposure(assets=assets_in_area(area=zone.geom, exclude="flood"), work_orders=orders)


def open_alerts():
    """Open alerts, most severe first."""
    return (Alert.objects.filter(status=Alert.Status.OPEN).select_related("zone", "sensor", "acknowledged_by")
            .order_by("-level", "raised_at", "id"))


LEVEL_COLOURS = {0: "#2e7d32", 1: "#1f6feb", 2: "#f2c200", 3: "#f57c00", 4: "#d0021b"}
FAULT_COLOUR = "#7f7f7f"


def sensor_states() -> dict[int, dict]:
    """Per sensor: the highest open alert level of its zones for its hazards, its fault, the colour to draw
    it in (grey in fault, else the level's colour, green when calm)."""
    from .domain.vocabulary import HAZARD_FOR_PARAMETER

    hazards: dict[int, set[str]] = defaultdict(set)
    for sensor_id, parameter in Series.objects.values_list("sensor_id", "parameter"):
        hazards[sensor_id].add(HAZARD_FOR_PARAMETER[parameter])
    open_by_zone: dict[tuple[int, str], int] = {}
    for zone_id, hazard, level in Alert.objects.filter(status=Alert.Status.OPEN).values_list(
            "zone_id", "hazard", "level"):
        open_by_zone[(zone_id, hazard)] = level
    states = {}
    zones_of: dict[int, list[int]] = defaultdict(list)
    for sensor_id, zone_id in sensor_zone_pairs():
        zones_of[sensor_id].append(zone_id)
    for sensor in Sensor.objects.all():
        level = max((open_by_zone.get((z, h), 0) for z in zones_of.get(sensor.pk, []) for h in hazards[sensor.pk]),
                    default=0)
        fault = sensor.status == Sensor.Status.FAULT
        states[sensor.pk] = {"level": level, "fault": fault,
                             "color": FAULT_COLOUR if fault or sensor.status != Sensor.Status.ACTIVE
                             else LEVEL_COLOURS[level]}
    return states


def sensors_geojson() -> dict:
    """Sensors as GeoJSON points with their state, colour and latest value per parameter."""
    states = sensor_states()
    latest: dict[int, list[str]] = defaultdict(list)
    for s in Series.objects.order_by("parameter"):
        if s.last_value is not None:
            latest[s.sensor_id].append(f"{s.parameter} {s.last_value:.3g} {s.unit}")
    features = []
    for sensor in Sensor.objects.exclude(geom__isnull=True).order_by("code"):
        state = states.get(sensor.pk, {"level": 0, "fault": False, "color": LEVEL_COLOURS[0]})
        features.append({
            "type": "Feature", "id": sensor.pk,
            "geometry": {"type": "Point", "coordinates": [round(sensor.geom.x, 6), round(sensor.geom.y, 6)]},
            "properties": {
                "code": sensor.code, "name": sensor.name, "kind": sensor.kind, "status": sensor.status,
                "fault": sensor.fault, "level": Level(state["level"]).label, "color": state["color"],
                "latest": "; ".join(latest.get(sensor.pk, [])),
            },
        })
    return {"type": "FeatureCollection", "features": features}


def zones_geojson() -> dict:
    """Flood zones as GeoJSON polygons with their level, colour and standby state."""
    from django.utils import timezone

    now = timezone.now()
    features = []
    for zone in FloodZone.objects.order_by("code"):
        standby = bool(zone.standby_until and zone.standby_until > now)
        features.append({
            "type": "Feature", "id": zone.pk,
            "geometry": {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]
                                                            for ring in zone.geom.coords]},
            "properties": {"code": zone.code, "name": zone.name, "kind": zone.kind,
                           "level": Level(zone.level).label, "color": LEVEL_COLOURS[zone.level],
                           "standby": standby,
                           "standby_until": zone.standby_until.isoformat() if standby else None},
        })
    return {"type": "FeatureCollection", "features": features}


# A summary series (one value a day) is charted over this many days instead of the hours of the others.
SUMMARY_CHART_DAYS = 90


def hydrograph(*, sensor: Sensor, hours: float = 24.0, end: dt.datetime | None = None) -> dict:
    """Each series of a sensor (instantaneous ones first) over the last `hours` before its latest reading (or
    `end`), a summary series (daily values) over SUMMARY_CHART_DAYS, with its label, thresholds, the
    statistic its rule judges (`rule_statistic`: its own where it is judged) and the readings QC flagged,
    for the console chart."""
    from .domain.parse_usgs import STATISTICS

    out = {"sensor": sensor.code, "name": sensor.name, "kind": sensor.kind, "series": []}
    for series in sensor.series.order_by("statistic", "parameter"):
        stop = end or series.last_time
        span = dt.timedelta(days=SUMMARY_CHART_DAYS) if series.statistic else dt.timedelta(hours=hours)
        points, flagged = [], []
        if stop is not None:
            rows = (series.readings.filter(time__gt=stop - span, time__lte=stop)
                    .order_by("time").values_list("time", "value", "qc"))
            for time, value, qc in rows:
                (flagged if qc else points).append({"t": time.isoformat(), "v": value})
        thresholds = []
        if series.parameter == "level":
            if series.warning_level is not None:
                thresholds.append({"label": "warning level", "value": series.warning_level, "level": "yellow"})
            if series.guaranteed_level is not None:
                thresholds.append({"label": "guaranteed level", "value": series.guaranteed_level, "level": "red"})
        elif series.parameter == "depth":
            thresholds.append({"label": "caution depth", "value": series.caution_depth or 15.0, "level": "blue"})
            thresholds.append({"label": "closure depth", "value": series.closure_depth or 25.0, "level": "yellow"})
        label = series.parameter
        if series.statistic:
            label += f", daily {STATISTICS.get(series.statistic, 'statistic ' + series.statistic)}"
        out["series"].append({"parameter": series.parameter, "statistic": series.statistic,
                              "rule_statistic": series.rule_statistic, "label": label,
                              "unit": series.unit, "points": points, "flagged": flagged, "thresholds": thresholds})
    return out


def drill_latest() -> Drill | None:
    """The most recent drill (the panel shows and controls one at a time), without its file."""
    return Drill.objects.defer("data").order_by("-created_at", "-id").first()


def drill_picture(*, drill: Drill) -> dict:
    """The drill's picture for the map, from its alert log as far as it has run: each zone it involves with
    the level of its open drill alerts (the highest over hazards), each of its sensors with its drill state
    (`fault`, else its zones' level for its hazards, `ok` at none) and the colour to draw it in. Its sensors
    are those its file names (and any its log names); its zones, theirs as the evaluation sees them (the
    same configurations the drill's ticks use) and any its log names."""
    levels: dict[tuple[str, str], int] = {}  # (zone, hazard) -> its open drill alert's level, 0: none
    faults: set[tuple[str, str, str]] = set()  # (zone, hazard, config name) in fault
    for event in drill.events:  # in order; each carries its alert's level after it (none once cleared)
        key = (event["zone"], event["hazard"])
        levels[key] = int(Level.parse(event["level"]))
        if event["kind"] == "sensor_fault":
            faults.add((*key, event["sensor"]))
        elif event["kind"] == "sensor_restored":
            faults.discard((*key, event["sensor"]))
    codes = set((drill.position or {}).get("sensors", []))  # drills started before it was kept: their log's
    codes |= {config_sensor_code(e["sensor"]) for e in drill.events if e.get("sensor")}
    keys_of: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for config in evaluation_setup().configs:
        if (code := config_sensor_code(config.sensor)) in codes:
            keys_of[code].add((config.zone, config.hazard))
    faulty = {config_sensor_code(name) for *_, name in faults}
    zones: dict[str, int] = {zone: 0 for keys in keys_of.values() for zone, _ in keys}
    for (zone, _), level in levels.items():
        zones[zone] = max(zones.get(zone, 0), level)
    sensors = []
    for code in sorted(codes):
        level = max((levels.get(key, 0) for key in keys_of[code]), default=0)
        fault = code in faulty
        sensors.append({"code": code, "level": Level(level).label, "fault": fault,
                        "state": "fault" if fault else Level(level).label if level else "ok",
                        "color": FAULT_COLOUR if fault else LEVEL_COLOURS[level]})
    return {
        "zones": [{"code": zone, "level": Level(level).label, "color": LEVEL_COLOURS[level],
                   "hazards": {h: Level(lv).label for (z, h), lv in sorted(levels.items()) if z == zone and lv}}
                  for zone, level in sorted(zones.items())],
        "sensors": sensors,
    }


def drill_status(*, drill: Drill) -> dict:
    """What the panel shows of a drill: its state (code and label, in the active language), the replayed
    clock and how far through the file it is, its alert log (every event, marked as a drill's) and its
    picture for the map (`drill_picture`)."""
    span = (drill.end - drill.start).total_seconds()
    done = (drill.clock - drill.start).total_seconds()
    counts: dict[str, int] = {}
    for event in drill.events:
        counts[event["kind"]] = counts.get(event["kind"], 0) + 1
    return {
        "id": drill.pk, "drill": True, "name": drill.name, "status": drill.status,
        "status_label": str(drill.get_status_display()), "speed": drill.speed,
        "step_min": drill.step_min, "start": drill.start.isoformat(), "end": drill.end.isoformat(),
        "clock": drill.clock.isoformat(), "ticks": drill.ticks, "readings": drill.readings,
        "progress": round(done / span, 4) if span > 0 else 1.0, "error": drill.error,
        "rejected": len(drill.rejected), "skipped": drill.skipped, "counts": counts,
        "events": [{k: e[k] for k in ("seq", "time", "zone", "hazard", "kind", "level", "rule", "actor")}
                   for e in drill.events],
        "map": drill_picture(drill=drill),
    }


# --- the results statement ---------------------------------------------------------------------------------
# Alerts raised and their lead time, false alarms, closures opened and the re-plans other agents made because
# of them. The evaluations every minute each cover their own readings, so their KPIs add up over the period.

STATEMENT_SPECS = [
    SummedKpi("alerts_raised", gettext_noop("Alerts raised"), gettext_noop("alerts"), better="higher", why_no_baseline=gettext_noop(
        "alerts_raised: the city kept no record of the warnings it gave before the agent, so there is no "
        "baseline")),
    SummedKpi("closures", gettext_noop("Road closures opened"), gettext_noop("closures"), better="higher", why_no_baseline=gettext_noop(
        "closures: the closures the city would have opened by hand are not recorded, so there is no baseline")),
]


def _period_bounds(date_from: dt.date, date_to: dt.date) -> tuple[dt.datetime, dt.datetime]:
    return day_bounds(date_from)[0], day_bounds(date_to)[1]


def _lead_time(kpis: PeriodKpis) -> Headline:
    """The mean lead time of the period's alerts (each evaluation stores its alerts' lead times), against none:
    without the agent the city learns of a flood when the gauge crosses its warning level."""
    runs = kpis.run_ids({"lead_time_min"})
    minutes = [m for d in AgentRun.objects.filter(pk__in=runs).values_list("details", flat=True)
               for m in (d or {}).get("lead_times_min", [])]
    value = round(sum(minutes) / len(minutes), 1) if minutes else None
    return Headline(name="lead_time_min", label=gettext_noop("Mean lead time before the warning level"),
                    unit=gettext_noop("min"), value=value, baseline=0.0 if minutes else None, better="higher")


def _false_alarms(date_from: dt.date, date_to: dt.date) -> Headline:
    """Forecast alerts raised in the period that cleared without the gauge reaching its warning level (no lead
    time was ever measured for them), against none: a city without the agent raised no early alerts. Not
    priced: each is one of the call-outs `_callouts` prices."""
    start, end = _period_bounds(date_from, date_to)
    count = Alert.objects.filter(forecast=True, raised_at__gte=start, raised_at__lt=end,
                                 status=Alert.Status.CLEARED, lead_time_min__isnull=True).count()
    return Headline(name="false_alarms", label=gettext_noop("False alarms"), unit=gettext_noop("alerts"), value=float(count),
                    baseline=0.0)


CALLOUT_HAZARDS = ("river_flood", "waterlogging")


def _threshold_series(*, start: dt.datetime, end: dt.datetime) -> list[ThresholdSeries]:
    """Each configured river gauge with a warning level and each depth sensor, per zone, with its readings
    up to `end` (from a context window before `start`, where the zones stood when the period began)."""
    setup = evaluation_setup()
    configs = [c for c in setup.configs if (c.gauge or c.depth) and c.hazard in CALLOUT_HAZARDS]
    if not configs:
        return []
    since = start - dt.timedelta(hours=float(conf("FLOOD_CONTEXT_HOURS")))
    readings: dict[str, list] = defaultdict(list)
    for r in readings_window(setup=setup, start=since, end=end):
        if r.time < end:
            readings[r.sensor].append(r)
    return [ThresholdSeries(zone=c.zone, hazard=c.hazard,
                            threshold=c.gauge.warning if c.gauge else c.depth.caution_cm,
                            times=[r.time for r in readings[c.sensor]], values=[r.value for r in readings[c.sensor]])
            for c in configs]


CALLOUTS = gettext_noop("call-outs")
CALLOUTS_NONE = gettext_noop("callouts: no river gauge with a warning level and no depth sensor is in a zone, so no "
                             "former rule can be replayed")
CALLOUTS_REPLAYED = gettext_noop(
    "callouts: the baseline replays the period's readings of %(pairs)s sensor-zone pairs under the former rule (a "
    "crew called out when a gauge reaches its warning level or a depth sensor its caution depth, no quality "
    "control, no forecast, the same %(hold)s-minute hold before an alert ends); each call-out is %(crew_hours)s "
    "crew-hours (work rates: admin, unit costs)")
REPLANS_NOTE = gettext_noop("replans_caused: a re-plan is the other agents' reaction to a closure; it has no baseline")
FALSE_ALARMS_NOTE = gettext_noop("false_alarms: not priced on their own: each is one of the call-outs in callouts")
LEAD_TIME_NONE = gettext_noop("lead_time_min: no alert of the period crossed its warning level after it was raised")


def _callouts(date_from: dt.date, date_to: dt.date) -> tuple[Headline, str]:
    """The crews the agent's river and waterlogging alerts called out (one an alert, false alarms included),
    against those the city's former rule calls out on the same readings (core.counterfactual), each
    call-out priced at the city's crew-hours per call-out (a work rate of the unit costs)."""
    start, end = _period_bounds(date_from, date_to)
    series = _threshold_series(start=start, end=end)
    label = gettext_noop("Crew call-outs for river and waterlogging alerts")
    if not series:
        return (Headline(name="callouts", label=label, unit=CALLOUTS, value=None, baseline=None), CALLOUTS_NONE)
    hold = tracker_settings().hold
    agent = Alert.objects.filter(raised_at__gte=start, raised_at__lt=end, hazard__in=CALLOUT_HAZARDS,
                                 zone__code__in={s.zone for s in series}).count()
    former = threshold_callouts(series=series, start=start, hold=hold)
    prices = unit_costs_get()
    return (Headline(name="callouts", label=label, unit=CALLOUTS, value=float(agent), baseline=float(former),
                     priced=("crew_hour",), priced_each=prices.rates["callout_crew_hours"]),
            Note(CALLOUTS_REPLAYED, pairs=len(series), hold=f"{hold.total_seconds() / 60:g}",
                 crew_hours=rate_stated(prices, "callout_crew_hours")))


def _replans(date_from: dt.date, date_to: dt.date) -> tuple[Headline, list[int]]:
    """Other agents' runs started by a closure the flood agent opened."""
    runs = list(AgentRun.objects.filter(
        trigger=AgentRun.Trigger.EVENT, event__kind=CityEvent.Kind.CLOSURE_OPENED, event__source_agent="flood",
        run_date__range=(date_from, date_to)).exclude(agent="flood").order_by("pk").values_list("pk", flat=True))
    return Headline(name="replans_caused", label=gettext_noop("Re-plans other agents made for its closures"),
                    unit=gettext_noop("runs"), value=float(len(runs)), baseline=None), runs


def flood_statement(*, date_from: dt.date, date_to: dt.date) -> StatementSection:
    kpis = PeriodKpis.load(agent="flood", date_from=date_from, date_to=date_to)
    # Most evaluations change nothing: their zero rows add nothing and would bury the runs that did.
    kpis.rows = [k for k in kpis.rows if k.value and k.name in {"alerts_raised", "closures", "lead_time_min"}]
    lead = _lead_time(kpis)
    replans, replan_runs = _replans(date_from, date_to)
    callouts, callouts_note = _callouts(date_from, date_to)
    notes = [REPLANS_NOTE, callouts_note, FALSE_ALARMS_NOTE]
    if lead.baseline is None:
        notes.append(LEAD_TIME_NONE)
    section = section_summed(kpis=kpis, specs=STATEMENT_SPECS, notes=notes,
                             extra=[callouts, lead, _false_alarms(date_from, date_to), replans])
    # The evaluations whose alerts' lead times are averaged, and other agents' runs its closures started.
    section.runs = sorted(set(section.runs) | set(kpis.run_ids({"lead_time_min"})) | set(replan_runs))
    return section
