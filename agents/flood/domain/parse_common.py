"""Pieces every reading format shares: time and number parsing, and the collector that builds a ParseResult
(unit conversion, row errors, the stations a file names)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .units import UnitError, value_convert
from .vocabulary import CANONICAL_UNITS, ParseResult, Reading, RowError, Station


class ReadingsFormatError(ValueError):
    """A readings file that cannot be read at all (unknown format, broken JSON/XML, missing header)."""


class RowRejected(ValueError):
    """Raised inside a format parser for one bad row; the collector turns it into a RowError."""


def zone_resolve(tz: str | dt.tzinfo | None) -> dt.tzinfo | None:
    """A tzinfo from an IANA name ("Asia/Shanghai"), a tzinfo, or None."""
    if tz is None or isinstance(tz, dt.tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ReadingsFormatError(
            f"unknown time zone {tz!r}; give an IANA name such as 'Asia/Shanghai'"
        ) from None


def time_parse(text: object, *, tz: dt.tzinfo | None, what: str = "time") -> dt.datetime:
    """An ISO 8601 time as an aware UTC datetime.

    A time without an offset is only accepted when `tz` says which zone it is in: guessing would shift every
    reading by hours and move alerts with them."""
    if not isinstance(text, str) or not text.strip():
        raise RowRejected(f"missing {what}")
    raw = text.strip()
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise RowRejected(f"{what} {raw!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        if tz is None:
            raise RowRejected(f"{what} {raw!r} has no UTC offset and no time zone was given (pass tz=...)")
        value = value.replace(tzinfo=tz)
    return value.astimezone(dt.UTC)


def number_parse(value: object, *, what: str = "value") -> float:
    """A finite float from a JSON number or a numeric string; anything else is a rejected row."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowRejected(f"missing {what}")
    if isinstance(value, bool):
        raise RowRejected(f"{what} {value!r} is not a number")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise RowRejected(f"{what} {value.strip()!r} is not a number") from None
    else:
        raise RowRejected(f"{what} {value!r} is not a number")
    if not math.isfinite(number):
        raise RowRejected(f"{what} {value!r} is not a finite number")
    return number


class ReadingsCollector:
    """Accumulates readings, row errors and stations for one file, converting units on the way in."""

    def __init__(self, *, fmt: str, default_parameter_for: Callable[[str], str | None] | None = None) -> None:
        self.result = ParseResult(format=fmt)
        self._default_parameter_for = default_parameter_for
        self._stations: dict[str, Station] = {}
        self._parameters: dict[str, list[str]] = {}
        self._statistics: dict[str, list[tuple[str, str]]] = {}

    def parameter_resolve(self, *, sensor: str, parameter: str | None) -> str:
        """The row's parameter, or the sensor's default one, or a rejection saying neither is known."""
        if parameter is not None and str(parameter).strip():
            name = str(parameter).strip().lower()
            if name == "flow":
                name = "discharge"
            if name not in CANONICAL_UNITS:
                raise RowRejected(
                    f"unknown parameter {parameter!r}; expected one of {', '.join(CANONICAL_UNITS)}"
                )
            return name
        default = self._default_parameter_for(sensor) if self._default_parameter_for else None
        if not default:
            raise RowRejected(f"no parameter given and sensor {sensor!r} has no default parameter")
        if default not in CANONICAL_UNITS:
            raise RowRejected(
                f"sensor {sensor!r} has default parameter {default!r}, which is not one of "
                f"{', '.join(CANONICAL_UNITS)}"
            )
        return default

    def add(
        self, *, sensor: str, parameter: str, time: dt.datetime, value: float, unit: str | None, row: int,
        statistic: str = "",
    ) -> None:
        """Keep one reading, converted to its parameter's canonical unit (bad units reject the row);
        `statistic` for a summary value (a daily mean), empty for an instantaneous reading."""
        try:
            canonical = value_convert(value=value, unit=unit, parameter=parameter)
        except UnitError as exc:
            raise RowRejected(str(exc)) from None
        self.result.readings.append(
            Reading(
                sensor=sensor,
                parameter=parameter,
                time=time,
                value=canonical,
                unit=CANONICAL_UNITS[parameter],
                row=row,
                statistic=statistic,
            )
        )
        seen: list = self._statistics.setdefault(sensor, []) if statistic else self._parameters.setdefault(sensor, [])
        name = (parameter, statistic) if statistic else parameter
        if name not in seen:
            seen.append(name)
        if sensor not in self._stations:
            self._stations[sensor] = Station(code=sensor)

    def reject(self, *, row: int, reason: str) -> None:
        """Record one unusable row."""
        self.result.rejected.append(RowError(row=row, reason=reason))

    def station_note(self, station: Station) -> None:
        """Remember what the file says about a station (name, position, typical range); a later mention
        fills in what an earlier one left out but does not erase it."""
        earlier = self._stations.get(station.code)
        if earlier is not None:
            station = Station(
                code=station.code,
                name=station.name or earlier.name,
                lat=station.lat if station.lat is not None else earlier.lat,
                lon=station.lon if station.lon is not None else earlier.lon,
                parameters=tuple(dict.fromkeys(earlier.parameters + station.parameters)),
                typical_low=station.typical_low if station.typical_low is not None else earlier.typical_low,
                typical_high=station.typical_high
                if station.typical_high is not None
                else earlier.typical_high,
                record_high=station.record_high if station.record_high is not None else earlier.record_high,
            )
        self._stations[station.code] = station
        seen = self._parameters.setdefault(station.code, [])
        for name in station.parameters:
            if name not in seen:
                seen.append(name)

    def finish(self) -> ParseResult:
        """The ParseResult, stations listed in first-seen order with every parameter they reported."""
        stations = []
        for code, station in self._stations.items():
            params = list(station.parameters)
            for name in self._parameters.get(code, []):
                if name not in params:
                    params.append(name)
            stations.append(
                Station(
                    code=station.code,
                    name=station.name,
                    lat=station.lat,
                    lon=station.lon,
                    parameters=tuple(params),
                    typical_low=station.typical_low,
                    typical_high=station.typical_high,
                    record_high=station.record_high,
                    statistics=tuple(self._statistics.get(code, [])),
                )
            )
        self.result.stations = stations
        return self.result
