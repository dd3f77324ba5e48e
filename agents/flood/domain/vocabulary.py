"""The flood core's shared vocabulary: alert levels, parameters, readings and stations.

Everything here is a plain value (frozen dataclass or enum) so rules and the alert tracker stay pure and
replayable: the same readings always give the same results."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import IntEnum

# The name the city's shared records (work orders, closures, events) file this agent's rows under.
AGENT = "flood"


class Level(IntEnum):
    """Alert level, ordered so that `max()` and `>` mean "more severe" (none < blue < ... < red)."""

    NONE = 0
    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def label(self) -> str:
        """Lower-case colour name used in events, settings and CAP parameters ("none", "blue"...)."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str | int | Level) -> Level:
        """A level from its colour name (any case), its number, or a Level."""
        if isinstance(text, Level):
            return text
        if isinstance(text, int):
            return cls(text)
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown alert level {text!r}; expected one of none, blue, yellow, orange, red"
            ) from None


# Canonical unit of each parameter the flood agent understands; parsers convert everything to these.
CANONICAL_UNITS: dict[str, str] = {
    "level": "m",
    "discharge": "m3/s",
    "rainfall": "mm",
    "depth": "cm",
}

# The hazard a parameter's rule watches; alerts are keyed by (zone, hazard).
HAZARD_FOR_PARAMETER: dict[str, str] = {
    "rainfall": "rainstorm",
    "level": "river_flood",
    "discharge": "river_flood",
    "depth": "waterlogging",
}


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one sensor at one time, in the parameter's canonical unit.

    `time` is timezone-aware UTC. `row` is where it came from in its file (line number for text formats,
    1-based index for JSON/XML lists) so errors and evidence can point back at the source. `id` is the
    database id once stored; evidence falls back to `sensor:parameter:time` while it is None. `statistic` is
    the source's statistic code of a summary value (USGS `00003`: the daily mean), empty for an instantaneous
    reading: a daily mean and an instantaneous value at the same time belong to different series."""

    sensor: str
    parameter: str
    time: dt.datetime
    value: float
    unit: str
    row: int = 0
    id: int | str | None = None
    statistic: str = ""

    @property
    def key(self) -> str:
        """The id rules cite as evidence: the database id when known, else sensor:parameter:ISO-time."""
        if self.id is not None:
            return str(self.id)
        return f"{self.sensor}:{self.parameter}:{self.time.astimezone(dt.UTC).isoformat()}"


@dataclass(frozen=True, slots=True)
class RowError:
    """A row a parser could not use, with a reason a person can act on; good rows are kept."""

    row: int
    reason: str


@dataclass(frozen=True)
class Station:
    """A station a file names (for `--create-sensors`): code, name, position and what it measures.

    `typical_low`/`typical_high` are the station's normal range where the source publishes one (EA's
    percentile_95 / percentile_5); quality control widens it into a plausibility band. `statistics` lists the
    summary series it reports as (parameter, statistic code), e.g. ("discharge", "00003") for daily means."""

    code: str
    name: str | None = None
    lat: float | None = None
    lon: float | None = None
    parameters: tuple[str, ...] = ()
    typical_low: float | None = None
    typical_high: float | None = None
    record_high: float | None = None
    statistics: tuple[tuple[str, str], ...] = ()


@dataclass
class ParseResult:
    """What `readings_parse` returns: the readings, the rejected rows, the stations named, the format."""

    format: str
    readings: list[Reading] = field(default_factory=list)
    rejected: list[RowError] = field(default_factory=list)
    stations: list[Station] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def utc(value: dt.datetime) -> dt.datetime:
    """`value` converted to UTC; naive datetimes are a programming error here, so they raise."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} given where an aware one is required")
    return value.astimezone(dt.UTC)
