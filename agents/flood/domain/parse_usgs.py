"""USGS NWIS readings: RDB (tab-separated, `#` comments, a column-definition line) and WaterML 1.1 XML."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from .parse_common import ReadingsCollector, ReadingsFormatError, RowRejected, number_parse, time_parse
from .safexml import UnsafeXmlError, local_name, xml_parse_safe
from .vocabulary import Station

# USGS parameter codes the flood agent uses: code -> (our parameter, the unit USGS reports it in)
USGS_PARAMETERS: dict[str, tuple[str, str]] = {
    "00065": ("level", "ft"),  # gage height, feet
    "00060": ("discharge", "ft3/s"),  # discharge, cubic feet per second
    "00045": ("rainfall", "in"),  # precipitation, total, inches
}

# NWIS tz_cd values -> UTC offset in hours (standard and daylight variants are separate codes)
TZ_CODES: dict[str, float] = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "AST": -4,
    "ADT": -3,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
    "AKST": -9,
    "AKDT": -8,
    "HST": -10,
    "HDT": -9,
    "SST": -11,
    "CHST": 10,
    "GST": 10,
}

# NWIS value qualifiers (https://help.waterdata.usgs.gov/codes-and-parameters, instantaneous and daily value
# qualification codes). The codes below stand in the value column instead of a number, or beside a number in
# its `_cd` column: either way the value is not one to judge a flood on, and its row is rejected with the
# meaning in words (nothing is stored for it, so a later file with the real value is a new reading).
_VALUE_CODES = {
    "Ice": "ice affected",
    "Eqp": "equipment malfunction",
    "Bkw": "backwater",
    "Dis": "discontinued",
    "Ssn": "parameter monitored seasonally",
    "Mnt": "maintenance",
    "Rat": "rating being developed",
    "Fld": "flood damage",
    "Dry": "dry",
    "Zfl": "zero flow",
    "Tst": "test",
    "***": "temporarily unavailable",
    "Pr": "partial record",
    "--": "parameter not determined",
    "X": "erroneous",
}
# Qualifiers of a usable number: stored as it is and judged by QC like any reading. Provisional values (P) are
# what USGS revises later; the revised value arriving in a later file replaces the stored one as a revision
# (the old value is kept). `<`/`>` bound the true value (below/above what is written): for flood warning the
# written value is the best there is.
USABLE_QUALIFIERS = {
    "A": "approved for publication",
    "P": "provisional, subject to revision",
    "e": "edited or estimated",
    "E": "computed from estimated values",
    "&": "computed from affected values",
    "<": "true value below the one written",
    ">": "true value above the one written",
    "R": "revised",
    "1": "write protected",
    "2": "remark write protected",
    "4": "computed from fewer values than the period holds",
    "5": "value affected by a new rating",
}

_VALUE_COLUMN = re.compile(r"^(\d+)_(\d{5})(?:_(\d{5}))?$")
# Statistic codes of daily values (the third part of a daily column's name)
STATISTICS = {"00001": "maximum", "00002": "minimum", "00003": "mean", "00006": "sum", "00008": "median"}
_FORMAT_CELL = re.compile(r"^\d*[sdn]$", re.IGNORECASE)
_SITE_COMMENT = re.compile(r"^#\s+(USGS|[A-Z]{2,})\s+(\d{8,15})\s+(.+?)\s*$")


def rdb_parse(*, text: str, collector: ReadingsCollector, tz: dt.tzinfo | None) -> None:
    """NWIS RDB instantaneous or daily values; row numbers are line numbers in the file.

    Instantaneous values (`<ts>_<parameter>` columns): times are local to the site and the `tz_cd` column names
    the zone (EST, EDT...), so no `tz` is needed; without a tz_cd column the `tz` argument decides and
    offset-less times are otherwise rejected. Daily values (`<ts>_<parameter>_<statistic>` columns, dates
    without a time) are summary readings that keep their statistic, dated 00:00 UTC of their day. Each value's
    `_cd` column holds its qualifiers (see USABLE_QUALIFIERS and _VALUE_CODES). A file with none of the value
    columns the flood agent reads raises ReadingsFormatError naming the columns it has."""
    lines = text.splitlines()
    site_names, header, header_line = _rdb_header(lines)
    _rdb_definition_check(lines, header, header_line)
    columns = _rdb_columns_required(header, header_line)
    index = {name: i for i, name in enumerate(header)}
    sensors_for_site: dict[tuple[str, str], str] = {}
    unknown: set[str] = set()
    for number in range(header_line + 2, len(lines) + 1):
        line = lines[number - 1]
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            collector.reject(
                row=number, reason=f"{len(cells)} tab-separated fields where the header has {len(header)}"
            )
            continue
        row = _RdbRow(number=number, cells=cells, index=index, columns=columns)
        unknown |= _rdb_row_read(row, collector=collector, sensors_for_site=sensors_for_site, tz=tz)
    if unknown:
        collector.result.notes.append(f"qualifiers not in the NWIS list, values kept: {', '.join(sorted(unknown))}")
    for site, name in site_names.items():
        params = tuple(sorted({p for (s, p) in sensors_for_site if s == site and "_" not in p}))
        collector.station_note(Station(code=site, name=name, parameters=params))


def _rdb_header(lines: list[str]) -> tuple[dict[str, str], list[str], int]:
    """The site names of the leading comments, the column names and their line number."""
    site_names: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if line.startswith("#"):
            match = _SITE_COMMENT.match(line)
            if match:
                site_names[match.group(2)] = match.group(3)
            continue
        if line.strip():
            return site_names, [cell.strip() for cell in line.split("\t")], number
    raise ReadingsFormatError("RDB file has no column-name line after its comments")


def _rdb_definition_check(lines: list[str], header: list[str], header_line: int) -> None:
    """The key columns are named, and the line after the names defines one cell per column (5s 15s 20d ...)."""
    for needed in ("site_no", "datetime"):
        if needed not in header:
            raise ReadingsFormatError(f"RDB column-name line (line {header_line}) lacks {needed!r}")
    if header_line >= len(lines):
        raise ReadingsFormatError(f"RDB file ends after its column-name line (line {header_line})")
    formats = lines[header_line].split("\t")
    if len(formats) != len(header) or not all(_FORMAT_CELL.match(cell.strip()) for cell in formats):
        raise ReadingsFormatError(
            f"RDB line {header_line + 1} should be the column-definition line "
            f"(like 5s<TAB>15s<TAB>20d), one cell per column"
        )


def _rdb_columns_required(header: list[str], header_line: int) -> list[tuple[str, str, str, str]]:
    """The value columns the flood agent reads; a file with none is refused, naming the ones it has."""
    columns = _rdb_value_columns(header)
    if not columns:
        others = [name for name in header if name not in ("agency_cd", "site_no", "datetime", "tz_cd")]
        raise ReadingsFormatError(
            f"RDB line {header_line}: no value column the flood agent reads (<ts>_<parameter> or "
            f"<ts>_<parameter>_<statistic> with parameter {', '.join(USGS_PARAMETERS)}); "
            f"the value columns are {', '.join(others) or 'none'}"
        )
    return columns


@dataclass(frozen=True)
class _RdbRow:
    """One data line of the right width: its line number, its cells, and where each column is."""

    number: int
    cells: list[str]
    index: dict[str, int]
    columns: list[tuple[str, str, str, str]]

    def cell(self, name: str, default: str | None = None) -> str | None:
        return self.cells[self.index[name]] if name in self.index else default


def _rdb_row_read(
    row: _RdbRow, *, collector: ReadingsCollector, sensors_for_site: dict[tuple[str, str], str],
    tz: dt.tzinfo | None,
) -> set[str]:
    """Add the row's usable values to `collector` and reject the rest with their reasons, the row's good
    values kept; returns the qualifiers met that are not in the NWIS list."""
    site = row.cell("site_no").strip()
    try:
        if not site:
            raise RowRejected("missing site_no")
        time = _rdb_time(row.cell("datetime"), row.cell("tz_cd"), tz=tz)
    except RowRejected as exc:
        collector.reject(row=row.number, reason=str(exc))
        return set()
    problems = []
    unknown: set[str] = set()
    for column, ts_id, code, statistic in row.columns:
        raw = row.cell(column).strip()
        if not raw:
            continue  # no value for this parameter at this time: not an error (series differ in step)
        parameter, unit = USGS_PARAMETERS[code]
        sensor = _sensor_for(sensors_for_site, site=site, parameter=parameter, ts_id=ts_id, statistic=statistic)
        qualifiers = _qualifiers(row.cell(column + "_cd", ""))
        unusable = _unusable(raw, *qualifiers)
        if unusable:
            problems.append(f"{column}: {unusable}")
            continue
        unknown.update(q for q in qualifiers if q not in USABLE_QUALIFIERS)
        if statistic and len(row.cell("datetime").strip()) != 10:
            problems.append(f"{column}: a daily value needs a date without a time")
            continue
        try:
            collector.add(
                sensor=sensor,
                parameter=parameter,
                time=time,
                value=number_parse(raw, what=column),
                unit=unit,
                row=row.number,
                statistic=statistic,
            )
        except RowRejected as exc:
            problems.append(str(exc))
    if problems:
        collector.reject(row=row.number, reason="; ".join(problems))
    return unknown


def _unusable(*codes: str) -> str | None:
    """Why a value with these codes (its value cell and qualifiers) is not one to use, or None."""
    found = [code for code in codes if code in _VALUE_CODES]
    if not found:
        return None
    return ", ".join(f"{code!r} ({_VALUE_CODES[code]})" for code in found) + " is not a value to use"


def _qualifiers(cell: str) -> list[str]:
    """The qualifier codes of one `_cd` cell (NWIS joins several with ':' or ',', e.g. `P:e`)."""
    return [code for code in re.split(r"[:,\s]+", cell.strip()) if code]


def _rdb_value_columns(header: list[str]) -> list[tuple[str, str, str, str]]:
    """(column, time-series id, parameter code, statistic code or "") for each value column the flood agent
    uses."""
    found = []
    for name in header:
        match = _VALUE_COLUMN.match(name)
        if match and match.group(2) in USGS_PARAMETERS:
            found.append((name, match.group(1), match.group(2), match.group(3) or ""))
    return found


def _sensor_for(known: dict[tuple[str, str], str], *, site: str, parameter: str, ts_id: str,
                statistic: str = "") -> str:
    """The site number, or site-tsid when a site reports one parameter (one statistic of it) from two
    sensors."""
    key = (site, f"{parameter}_{statistic}" if statistic else parameter)
    if key not in known:
        known[key] = ts_id
    return site if known[key] == ts_id else f"{site}-{ts_id}"


def _rdb_time(value: str, tz_code: str | None, *, tz: dt.tzinfo | None) -> dt.datetime:
    raw = value.strip()
    if not raw:
        raise RowRejected("missing datetime")
    if len(raw) == 10:  # a daily value's date: the day, whatever the site's zone
        return time_parse(raw, tz=dt.UTC, what="date")
    if tz_code is not None and tz_code.strip():
        code = tz_code.strip().upper()
        if code not in TZ_CODES:
            raise RowRejected(f"unknown tz_cd {tz_code.strip()!r}")
        zone = dt.timezone(dt.timedelta(hours=TZ_CODES[code]))
        return time_parse(raw, tz=zone, what="datetime")
    return time_parse(raw, tz=tz, what="datetime")


def waterml_parse(*, data: bytes, collector: ReadingsCollector, tz: dt.tzinfo | None) -> None:
    """WaterML 1.1 `timeSeriesResponse`; row = the source line of each `<value>` element. A value whose
    `qualifiers` attribute holds a code that means no value (Ice, Eqp, X...) is rejected with its meaning."""
    try:
        root = xml_parse_safe(data=data)
    except UnsafeXmlError as exc:
        raise ReadingsFormatError(f"WaterML refused: {exc}") from None
    if local_name(root) != "timeSeriesResponse":
        raise ReadingsFormatError(
            f"root element is <{local_name(root)}>, not a WaterML 1.1 <timeSeriesResponse>"
        )
    sensors_for_site: dict[tuple[str, str], str] = {}
    for series in _children(root, "timeSeries"):
        source = _child(series, "sourceInfo")
        variable = _child(series, "variable")
        site_code = _text(_child(source, "siteCode")) if source is not None else None
        code = _text(_child(variable, "variableCode")) if variable is not None else None
        line = series.sourceline or 0
        if not site_code or not code:
            collector.reject(
                row=line, reason="timeSeries without sourceInfo/siteCode or variable/variableCode"
            )
            continue
        if code not in USGS_PARAMETERS:
            collector.result.notes.append(
                f"line {line}: variable {code} at site {site_code} is not a flood parameter; skipped"
            )
            continue
        parameter, default_unit = USGS_PARAMETERS[code]
        unit_element = _child(variable, "unit")
        unit = _text(_child(unit_element, "unitCode")) if unit_element is not None else None
        unit = unit or _text(_child(variable, "unitCode")) or default_unit
        no_data = _text(_child(variable, "noDataValue"))
        no_data_value = float(no_data) if no_data not in (None, "") else None
        option = series.get("name", "")
        sensor = _sensor_for(sensors_for_site, site=site_code, parameter=parameter, ts_id=option or code)
        collector.station_note(_waterml_station(source, site_code, parameter))
        for values in _children(series, "values"):
            for element in _children(values, "value"):
                row = element.sourceline or 0
                try:
                    unusable = _unusable(_text(element) or "", *_qualifiers(element.get("qualifiers") or ""))
                    if unusable:
                        raise RowRejected(unusable)
                    number = number_parse(_text(element))
                    if no_data_value is not None and number == no_data_value:
                        raise RowRejected(f"value {number:g} is the series' noDataValue")
                    time = _waterml_time(element, tz=tz)
                    collector.add(
                        sensor=sensor, parameter=parameter, time=time, value=number, unit=unit, row=row
                    )
                except RowRejected as exc:
                    collector.reject(row=row, reason=str(exc))


def _waterml_time(element, *, tz: dt.tzinfo | None) -> dt.datetime:
    utc_text = element.get("dateTimeUTC")
    text = element.get("dateTime")
    if text and ("+" in text[10:] or "-" in text[10:] or text.endswith("Z")):
        return time_parse(text, tz=None, what="dateTime")
    if utc_text:
        return time_parse(utc_text, tz=dt.UTC, what="dateTimeUTC")
    offset = element.get("timeOffset")
    if text and offset:
        try:
            sign = -1 if offset.strip().startswith("-") else 1
            hours, minutes = offset.strip().lstrip("+-").split(":")[:2]
            zone = dt.timezone(sign * dt.timedelta(hours=int(hours), minutes=int(minutes)))
        except ValueError:
            raise RowRejected(f"timeOffset {offset!r} is not ±HH:MM") from None
        return time_parse(text, tz=zone, what="dateTime")
    return time_parse(text, tz=tz, what="dateTime")


def _waterml_station(source, site_code: str, parameter: str) -> Station:
    name = _text(_child(source, "siteName"))
    lat = lon = None
    geo = _child(source, "geoLocation")
    point = _child(geo, "geogLocation") if geo is not None else None
    if point is not None:
        try:
            lat = float(_text(_child(point, "latitude")) or "nan")
            lon = float(_text(_child(point, "longitude")) or "nan")
        except ValueError:
            lat = lon = None
        if lat is not None and lon is not None and not (math.isfinite(lat) and math.isfinite(lon)):
            lat = lon = None
    return Station(code=site_code, name=name, lat=lat, lon=lon, parameters=(parameter,))


def _children(element, name: str):
    if element is None:
        return []
    return [child for child in element if local_name(child) == name]


def _child(element, name: str):
    if element is None:
        return None
    for child in element:
        if local_name(child) == name:
            return child
    return None


def _text(element) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip()
