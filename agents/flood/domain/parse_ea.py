"""UK Environment Agency readings: the flood-monitoring API (`items[]` with a `measure` URL) and the
telemetry JSON behind the "check for flooding" service (`ts`/`_` pairs, a station record, rainfall
`minutes.values`)."""

from __future__ import annotations

import datetime as dt
import json

from .parse_common import ReadingsCollector, ReadingsFormatError, RowRejected, number_parse, time_parse
from .vocabulary import Station

# flood-monitoring API parameter names -> ours; temperature and wind are not flood parameters
_EA_PARAMETERS = {"level": "level", "flow": "discharge", "rainfall": "rainfall"}

# check-for-flooding station_type: S river stage, M multi, C coastal, G groundwater, R rainfall
_STATION_TYPE_PARAMETER = {"S": "level", "M": "level", "C": "level", "G": "level", "R": "rainfall"}


def measure_split(measure: str) -> tuple[str, str, str, str]:
    """(station reference, parameter, qualifier, unit name) from an EA measure id or URL.

    Measure ids read `{station}-{parameter}-{qualifier}-{valueType}-{period}-{unitName}`, e.g.
    `1491TH-level-stage-i-15_min-mASD` or `E72639-flow--i-15_min-m3_s` (empty qualifier). Station references
    may themselves contain dashes, so the five known parts are taken from the right."""
    notation = measure.rstrip("/").rsplit("/", 1)[-1]
    parts = notation.split("-")
    if len(parts) < 6:
        raise RowRejected(
            f"measure {measure!r} is not an EA measure id (station-parameter-qualifier-type-period-unit)"
        )
    station = "-".join(parts[:-5])
    parameter, qualifier, _value_type, _period, unit = parts[-5:]
    return station, parameter, qualifier, unit


def ea_api_parse(*, document: dict, collector: ReadingsCollector, tz: dt.tzinfo | None) -> None:
    """Readings from the EA flood-monitoring API (`/data/readings`, `/id/measures/{id}/readings`...)."""
    items = document.get("items")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise ReadingsFormatError("EA flood-monitoring document has no `items` list")
    for index, item in enumerate(items, start=1):
        try:
            if not isinstance(item, dict):
                raise RowRejected(f"item is a {type(item).__name__}, not an object")
            measure = item.get("measure")
            if isinstance(measure, dict):  # `_view=full` embeds the measure object
                measure = measure.get("@id") or measure.get("notation")
            if not isinstance(measure, str) or not measure:
                raise RowRejected("missing measure")
            station, ea_parameter, qualifier, unit = measure_split(measure)
            parameter = _EA_PARAMETERS.get(ea_parameter)
            if parameter is None:
                raise RowRejected(f"EA parameter {ea_parameter!r} is not used by flood control")
            # Weirs report an upstream and a downstream stage under one station: keep them apart.
            sensor = f"{station}-downstream" if "downstream" in qualifier.lower() else station
            time = time_parse(item.get("dateTime"), tz=tz, what="dateTime")
            if isinstance(item.get("value"), list):
                raise RowRejected("value is a list (the API occasionally merges two readings); skipped")
            value = number_parse(item.get("value"))
            collector.add(sensor=sensor, parameter=parameter, time=time, value=value, unit=unit, row=index)
        except RowRejected as exc:
            collector.reject(row=index, reason=str(exc))


def _float_or_none(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number


def _station_from_record(record: dict) -> Station:
    """A Station from a check-for-flooding station record (name, position, typical range)."""
    code = str(record.get("telemetry_id") or record.get("rloi_id") or "").strip()
    if not code:
        raise ReadingsFormatError("EA station record has neither telemetry_id nor rloi_id")
    lat = lon = None
    coordinates = record.get("coordinates")
    if isinstance(coordinates, str) and coordinates.strip():
        try:
            point = json.loads(coordinates)
            lon, lat = (float(c) for c in point["coordinates"][:2])
        except (ValueError, KeyError, TypeError):
            lat = lon = None
    parameter = _STATION_TYPE_PARAMETER.get(str(record.get("station_type", "S")).upper(), "level")
    # EA's percentile_95 is the level exceeded 95% of the time (bottom of the normal range) and percentile_5
    # the level exceeded 5% of the time (top of it).
    return Station(
        code=code,
        name=record.get("external_name") or record.get("agency_name"),
        lat=lat,
        lon=lon,
        parameters=(parameter,),
        typical_low=_float_or_none(record.get("percentile_95")),
        typical_high=_float_or_none(record.get("percentile_5")),
        record_high=_float_or_none(record.get("highest_level") or record.get("por_max_value")),
    )


def _pairs_take(
    *, pairs: list, collector: ReadingsCollector, sensor: str, parameter: str, tz: dt.tzinfo | None
) -> None:
    for index, pair in enumerate(pairs, start=1):
        try:
            if not isinstance(pair, dict):
                raise RowRejected(f"item is a {type(pair).__name__}, not an object")
            if pair.get("err") is True:
                raise RowRejected("the agency flagged this value as erroneous (err=true)")
            time = time_parse(pair.get("ts"), tz=tz, what="ts")
            value = number_parse(pair.get("_"), what="value (`_`)")
            collector.add(sensor=sensor, parameter=parameter, time=time, value=value, unit="m", row=index)
        except RowRejected as exc:
            collector.reject(row=index, reason=str(exc))


def ea_telemetry_parse(
    *, document: object, collector: ReadingsCollector, tz: dt.tzinfo | None, sensor: str | None
) -> None:
    """Check-for-flooding telemetry: a bare `ts`/`_` list, a station record with `telemetry`, or rainfall.

    The bare list and the rainfall document do not say which gauge they belong to, so `sensor` must be
    given for them; the station record names its own (telemetry_id, e.g. E9140)."""
    if isinstance(document, list):
        if not sensor:
            raise ReadingsFormatError("this EA telemetry list does not name its station; pass sensor=...")
        # River, coastal and groundwater telemetry are all levels in metres unless the sensor says otherwise.
        parameter = _default_or(collector, sensor, "level")
        _pairs_take(pairs=document, collector=collector, sensor=sensor, parameter=parameter, tz=tz)
        return
    if not isinstance(document, dict):
        raise ReadingsFormatError("EA telemetry JSON must be a list or an object")
    if "minutes" in document:
        _rainfall_take(document=document, collector=collector, tz=tz, sensor=sensor)
        return
    record = document.get("station")
    telemetry = document.get("telemetry")
    if not isinstance(record, dict) or not isinstance(telemetry, list):
        raise ReadingsFormatError("EA station document needs a `station` object and a `telemetry` list")
    station = _station_from_record(record)
    if sensor:
        station = Station(
            code=sensor,
            name=station.name,
            lat=station.lat,
            lon=station.lon,
            parameters=station.parameters,
            typical_low=station.typical_low,
            typical_high=station.typical_high,
            record_high=station.record_high,
        )
    collector.station_note(station)
    _pairs_take(
        pairs=telemetry, collector=collector, sensor=station.code, parameter=station.parameters[0], tz=tz
    )


def _default_or(collector: ReadingsCollector, sensor: str, fallback: str) -> str:
    try:
        return collector.parameter_resolve(sensor=sensor, parameter=None)
    except RowRejected:
        return fallback


def _rainfall_take(
    *, document: dict, collector: ReadingsCollector, tz: dt.tzinfo | None, sensor: str | None
) -> None:
    """Rain gauge totals per interval from `minutes.values` (the 15-minute series; `hours` repeats the same
    rain summed per hour, so it is not read as well)."""
    if not sensor:
        raise ReadingsFormatError("this EA rainfall document does not name its gauge; pass sensor=...")
    minutes = document.get("minutes")
    values = minutes.get("values") if isinstance(minutes, dict) else None
    if not isinstance(values, list):
        raise ReadingsFormatError("EA rainfall document has no `minutes.values` list")
    collector.station_note(Station(code=sensor, parameters=("rainfall",)))
    for index, item in enumerate(values, start=1):
        try:
            if not isinstance(item, dict):
                raise RowRejected(f"item is a {type(item).__name__}, not an object")
            time = time_parse(item.get("dateTime"), tz=tz, what="dateTime")
            value = number_parse(item.get("value"))
            collector.add(sensor=sensor, parameter="rainfall", time=time, value=value, unit="mm", row=index)
        except RowRejected as exc:
            collector.reject(row=index, reason=str(exc))
