"""Reading files in, readings out: `readings_parse` detects the format from the content and dispatches.

Formats (names for `fmt`):
- `csv`: header `sensor,parameter,time,value[,unit]` (parameter optional when the sensor has a default)
- `json`: a list of objects with those keys, or `{"readings": [...]}`
- `ea_api`: UK Environment Agency flood-monitoring API readings (`items[]`, `measure` URL)
- `ea_telemetry`: EA "check for flooding" telemetry (`ts`/`_` pairs, station record, rainfall `minutes`)
- `usgs_rdb`: USGS NWIS RDB instantaneous values (tab-separated, `tz_cd` column) or daily values (summary
  readings that keep their statistic), each with its qualifier column
- `waterml`: USGS WaterML 1.1 XML (`timeSeriesResponse`)

Every value comes out in its parameter's canonical unit (level m, discharge m3/s, rainfall mm, depth cm),
every time as aware UTC; bad rows are listed by row number and the good ones kept."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from .parse_common import ReadingsCollector, ReadingsFormatError, zone_resolve
from .parse_ea import ea_api_parse, ea_telemetry_parse
from .parse_tabular import csv_parse, json_records_parse
from .parse_usgs import rdb_parse, waterml_parse
from .vocabulary import ParseResult

FORMATS = ("csv", "json", "ea_api", "ea_telemetry", "usgs_rdb", "waterml")

__all__ = ["FORMATS", "ReadingsFormatError", "readings_format_detect", "readings_parse"]


def _text_decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ReadingsFormatError(f"file is not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def _json_kind(document: object) -> str:
    """Which JSON reading format a decoded document is."""
    if isinstance(document, dict):
        if "items" in document:
            return "ea_api"
        if "minutes" in document or ("station" in document and "telemetry" in document):
            return "ea_telemetry"
        if "readings" in document:
            return "json"
    if isinstance(document, list):
        first = next((item for item in document if isinstance(item, dict)), None)
        if first is not None and "ts" in first and "_" in first:
            return "ea_telemetry"
        return "json"
    raise ReadingsFormatError(
        "JSON is not a readings document: expected a list of readings, "
        '{"readings": [...]}, an EA `items` document or EA telemetry'
    )


def readings_format_detect(*, data: bytes) -> str:
    """The format name of `data`, judged from its content (not its file name)."""
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "waterml"
    if head[:1] in (b"{", b"["):
        try:
            return _json_kind(json.loads(_text_decode(data)))
        except json.JSONDecodeError as exc:
            raise ReadingsFormatError(
                f"broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
    text = _text_decode(data[:65536])
    first = next((line for line in text.splitlines() if line.strip() and not line.startswith("#")), "")
    if head.startswith(b"#") or ("\t" in first and "agency_cd" in first.split("\t")):
        return "usgs_rdb"
    return "csv"


def readings_parse(
    *,
    data: bytes,
    fmt: str | None = None,
    tz: str | dt.tzinfo | None = None,
    default_parameter_for: Callable[[str], str | None] | None = None,
    sensor: str | None = None,
) -> ParseResult:
    """Parse a readings file of any supported format into a ParseResult.

    `fmt` forces a format (see FORMATS); `tz` is the zone of times written without an offset (otherwise
    such rows are rejected, except in RDB where the `tz_cd` column names the zone); `default_parameter_for`
    gives a sensor's parameter when a CSV/JSON row omits it; `sensor` names the gauge for EA telemetry that
    does not name one itself. Raises ReadingsFormatError when the file as a whole cannot be read."""
    kind = fmt or readings_format_detect(data=data)
    if kind not in FORMATS:
        raise ReadingsFormatError(f"unknown format {kind!r}; expected one of {', '.join(FORMATS)}")
    zone = zone_resolve(tz)
    collector = ReadingsCollector(fmt=kind, default_parameter_for=default_parameter_for)
    if kind == "waterml":
        waterml_parse(data=data, collector=collector, tz=zone)
    elif kind == "csv":
        csv_parse(text=_text_decode(data), collector=collector, tz=zone)
    elif kind == "usgs_rdb":
        rdb_parse(text=_text_decode(data), collector=collector, tz=zone)
    else:
        try:
            document = json.loads(_text_decode(data))
        except json.JSONDecodeError as exc:
            raise ReadingsFormatError(
                f"broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
        if kind == "json":
            records = document.get("readings") if isinstance(document, dict) else document
            if not isinstance(records, list):
                raise ReadingsFormatError('JSON readings must be a list or {"readings": [...]}')
            json_records_parse(records=records, collector=collector, tz=zone)
        elif kind == "ea_api":
            if not isinstance(document, dict):
                raise ReadingsFormatError("EA flood-monitoring document must be an object with `items`")
            ea_api_parse(document=document, collector=collector, tz=zone)
        else:
            ea_telemetry_parse(document=document, collector=collector, tz=zone, sensor=sensor)
    return collector.finish()
