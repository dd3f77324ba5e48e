"""GTFS static feeds: read (partridge), validate, and expand one service day into concrete trips.

Times are kept as seconds since "noon minus 12 h" of the service day, which is what GTFS means by a time;
so 25:10:00 is 90 600 s and belongs to the day the trip started. Row numbers in problems are file line
numbers (the header is line 1), so a dispatcher can open the file and find the row.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import partridge as ptg

from city_ops.city.geovalidate import LAT_RANGE, LON_RANGE

__all__ = [
    "Feed",
    "FeedError",
    "Problem",
    "feed_read",
    "feed_validate",
    "seconds_format",
    "seconds_parse",
    "service_ids_active",
    "service_trips",
]

TABLES = (
    "agency",
    "routes",
    "stops",
    "shapes",
    "trips",
    "stop_times",
    "calendar",
    "calendar_dates",
    "frequencies",
)
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# Columns a table must have to be usable here. "error" tables are the ones the planner cannot do without.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "agency.txt": ("agency_name", "agency_timezone"),
    "stops.txt": ("stop_id", "stop_lat", "stop_lon"),
    "routes.txt": ("route_id",),
    "trips.txt": ("route_id", "service_id", "trip_id"),
    "stop_times.txt": ("trip_id", "stop_id", "stop_sequence"),
    "calendar.txt": ("service_id", *DAYS, "start_date", "end_date"),
    "calendar_dates.txt": ("service_id", "date", "exception_type"),
    "frequencies.txt": ("trip_id", "start_time", "end_time", "headway_secs"),
    "shapes.txt": ("shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence"),
}
CORE_FILES = ("stops.txt", "routes.txt", "trips.txt", "stop_times.txt")
_LINES_SHOWN = 10

# A frequencies.txt row declares its departures by its span and headway (a 1-second headway over 99 hours
# is 356,400 trips), and service_trips builds a row for each: the total is checked first. A metropolitan
# bus network runs ~60,000 trips a day; docs/operations.md ("File size limits and worker memory"). (The
# zip's declared unpacked sizes are checked on import, services.feeds.feed_zip_check.)
MAX_FREQUENCY_DEPARTURES = 200_000


@dataclass(frozen=True)
class Problem:
    """One finding about a feed: `severity` is "error" (the feed cannot be used) or "warning"."""

    severity: str
    file: str
    message: str
    lines: tuple[int, ...] = ()
    count: int = 0

    def __str__(self) -> str:
        text = f"{self.severity}: {self.file}: {self.message}"
        if self.lines:
            more = ", ..." if self.count > len(self.lines) else ""
            text += f" (line {', '.join(map(str, self.lines))}{more}; {self.count} row(s))"
        return text


class FeedError(Exception):
    """The feed cannot be read or used; `problems` lists every finding (errors first)."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        self.problems = list(problems or [])
        errors = [p for p in self.problems if p.severity == "error"]
        detail = "".join(f"\n  - {p}" for p in errors)
        super().__init__(f"{message}{detail}")


@dataclass
class Feed:
    """A GTFS feed as typed DataFrames. Each frame keeps the file's row order: line number = index + 2.

    Times (arrival_time, departure_time, start_time, end_time) are float seconds (NaN where blank);
    calendar dates are pandas Timestamps. `files` names the files present in the archive.
    """

    path: str
    files: frozenset[str]
    agency: pd.DataFrame
    routes: pd.DataFrame
    stops: pd.DataFrame
    shapes: pd.DataFrame
    trips: pd.DataFrame
    stop_times: pd.DataFrame
    calendar: pd.DataFrame
    calendar_dates: pd.DataFrame
    frequencies: pd.DataFrame
    read_problems: list[Problem] = field(default_factory=list)
    validated: bool = False
    _trip_ends: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def has_block_id(self) -> bool:
        """Whether trips.txt carries any block_id (the agency's own vehicle blocks)."""
        return "block_id" in self.trips.columns and bool(self.trips["block_id"].notna().any())

    @property
    def timezone(self) -> str | None:
        """The first agency's timezone (GTFS requires all agencies to share it), or None."""
        if "agency_timezone" in self.agency.columns and len(self.agency):
            value = self.agency["agency_timezone"].dropna()
            return str(value.iloc[0]) if len(value) else None
        return None


# --------------------------------------------------------------------------------------------- times


def seconds_parse(values: pd.Series) -> pd.Series:
    """GTFS "H:MM:SS" strings (hours may pass 24) to float seconds; blank or malformed values give NaN."""
    text = values.astype("string").str.strip()
    out = pd.Series(np.nan, index=values.index, dtype=float)
    usual = (text.str.len() == 8).fillna(False).to_numpy(dtype=bool)
    if usual.any():
        seconds, valid = _hh_mm_ss(text[usual].tolist())
        out.iloc[np.flatnonzero(usual)[valid]] = seconds[valid]
        usual[usual] = valid
    # A feed's million stop times are nearly all "HH:MM:SS", read above as digits at once: 0.07 s of CPU for
    # 124,000 where the pattern per value took 0.5 s (two columns of a city's 1.1 million: 9 s); the rest go
    # by the pattern.
    rest = ~usual
    if rest.any():
        parts = text[rest].str.extract(r"^(\d{1,3}):([0-5]\d):([0-5]\d)$")
        nums = parts.apply(pd.to_numeric, errors="coerce").astype(float)
        out[rest] = (nums[0] * 3600 + nums[1] * 60 + nums[2]).astype(float)
    return out


def _hh_mm_ss(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Seconds of 8-character "HH:MM:SS" strings, and which of them are that shape (digits, colons, minutes
    and seconds under 60)."""
    digits = np.array(texts, dtype="U8").view(np.uint32).reshape(-1, 8).astype(np.int64) - ord("0")
    colons = (digits[:, [2, 5]] == ord(":") - ord("0")).all(axis=1)
    valid = colons & ((digits[:, [0, 1, 3, 4, 6, 7]] >= 0) & (digits[:, [0, 1, 3, 4, 6, 7]] <= 9)).all(axis=1)
    valid &= (digits[:, 3] <= 5) & (digits[:, 6] <= 5)
    seconds = ((digits[:, 0] * 10 + digits[:, 1]) * 3600 + (digits[:, 3] * 10 + digits[:, 4]) * 60
               + digits[:, 6] * 10 + digits[:, 7]).astype(float)
    return seconds, valid


def seconds_format(seconds: float) -> str:
    """Seconds since service-day start as GTFS "HH:MM:SS" (25:10:00 stays 25:10:00)."""
    s = round(float(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# --------------------------------------------------------------------------------------------- read


def _archive_files(path: Path) -> frozenset[str]:
    if path.is_dir():
        return frozenset(name for _root, _dirs, files in os.walk(path) for name in files)
    try:
        with zipfile.ZipFile(path) as archive:
            return frozenset(
                os.path.basename(name) for name in archive.namelist() if not name.endswith("/")
            )
    except (zipfile.BadZipFile, OSError) as exc:
        raise FeedError(f"{path} is not a readable GTFS zip: {exc}") from exc


def _lines(mask: pd.Series) -> tuple[tuple[int, ...], int]:
    index = mask[mask].index
    return tuple(int(i) + 2 for i in index[:_LINES_SHOWN]), len(index)


def _numeric(
    df: pd.DataFrame, column: str, file: str, problems: list[Problem], *, integer: bool = False
) -> None:
    """Type a column in place; values that do not parse become NaN and are reported with their lines."""
    if column not in df.columns:
        return
    raw = df[column]
    parsed = pd.to_numeric(raw, errors="coerce")
    bad = raw.notna() & parsed.isna()
    if bad.any():
        lines, count = _lines(bad)
        problems.append(Problem("error", file, f"{column} is not a number", lines, count))
    if integer:
        frac = parsed.notna() & parsed.mod(1).ne(0)
        if frac.any():
            lines, count = _lines(frac)
            problems.append(Problem("error", file, f"{column} must be a whole number", lines, count))
        df[column] = parsed.where(~frac).astype("Int64")
    else:
        df[column] = parsed.astype(float)


def _times(df: pd.DataFrame, column: str, file: str, problems: list[Problem]) -> None:
    if column not in df.columns:
        return
    raw = df[column]
    parsed = seconds_parse(raw)
    bad = raw.notna() & raw.astype("string").str.strip().ne("") & parsed.isna()
    if bad.any():
        lines, count = _lines(bad)
        problems.append(Problem("error", file, f"{column} is not a time H:MM:SS", lines, count))
    df[column] = parsed


def _dates(df: pd.DataFrame, column: str, file: str, problems: list[Problem]) -> None:
    if column not in df.columns:
        return
    raw = df[column]
    parsed = pd.to_datetime(raw, format="%Y%m%d", errors="coerce")
    bad = raw.notna() & parsed.isna()
    if bad.any():
        lines, count = _lines(bad)
        problems.append(Problem("error", file, f"{column} is not a date YYYYMMDD", lines, count))
    df[column] = parsed


def feed_read(*, path: str | os.PathLike) -> Feed:
    """Read a GTFS zip (or unpacked folder) with partridge into typed DataFrames.

    Uses partridge's raw loader (no pruning, so broken references survive for `feed_validate` to report)
    and types the columns here, noting every value that does not parse. Raises `FeedError` only when the
    archive itself cannot be opened or a file is not CSV; everything else is left to `feed_validate`.
    """
    path = Path(path)
    if not path.exists():
        raise FeedError(f"GTFS feed not found: {path}")
    files = _archive_files(path)
    try:
        raw = ptg.load_raw_feed(str(path))
    except (ValueError, shutil.ReadError, OSError) as exc:
        raise FeedError(f"{path} is not a readable GTFS feed: {exc}") from exc

    frames: dict[str, pd.DataFrame] = {}
    for table in TABLES:
        try:
            with warnings.catch_warnings():
                # partridge 1.1 calls DataFrame.rename(inplace=True), deprecated in pandas 3.1 (works still).
                warnings.filterwarnings("ignore", message=".*inplace.*", category=Warning)
                df = getattr(raw, table)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise FeedError(f"{table}.txt in {path} is not valid CSV: {exc}") from exc
        frames[table] = df.copy().reset_index(drop=True)

    problems: list[Problem] = []
    for column in ("stop_lat", "stop_lon"):
        _numeric(frames["stops"], column, "stops.txt", problems)
    if "location_type" in frames["stops"].columns:
        _numeric(frames["stops"], "location_type", "stops.txt", problems, integer=True)
    for column in ("shape_pt_lat", "shape_pt_lon", "shape_dist_traveled"):
        _numeric(frames["shapes"], column, "shapes.txt", problems)
    _numeric(frames["shapes"], "shape_pt_sequence", "shapes.txt", problems, integer=True)
    _numeric(frames["trips"], "direction_id", "trips.txt", problems, integer=True)
    st = frames["stop_times"]
    _numeric(st, "stop_sequence", "stop_times.txt", problems, integer=True)
    _numeric(st, "shape_dist_traveled", "stop_times.txt", problems)
    for column in ("arrival_time", "departure_time"):
        _times(st, column, "stop_times.txt", problems)
    for day in DAYS:
        _numeric(frames["calendar"], day, "calendar.txt", problems, integer=True)
    for column in ("start_date", "end_date"):
        _dates(frames["calendar"], column, "calendar.txt", problems)
    _dates(frames["calendar_dates"], "date", "calendar_dates.txt", problems)
    _numeric(frames["calendar_dates"], "exception_type", "calendar_dates.txt", problems, integer=True)
    freq = frames["frequencies"]
    for column in ("start_time", "end_time"):
        _times(freq, column, "frequencies.txt", problems)
    _numeric(freq, "headway_secs", "frequencies.txt", problems, integer=True)
    _numeric(freq, "exact_times", "frequencies.txt", problems, integer=True)

    return Feed(path=str(path), files=files, read_problems=problems, **frames)


# --------------------------------------------------------------------------------------------- validate


def _problem(problems: list[Problem], severity: str, file: str, message: str, mask=None) -> None:
    if mask is None:
        problems.append(Problem(severity, file, message))
        return
    if not mask.any():
        return
    lines, count = _lines(mask)
    problems.append(Problem(severity, file, message, lines, count))


def _check_columns(feed: Feed, problems: list[Problem]) -> set[str]:
    """Missing files and columns; returns the files usable for deeper checks."""
    usable: set[str] = set()
    for file, columns in REQUIRED_COLUMNS.items():
        table = getattr(feed, file.removesuffix(".txt"))
        present = file in feed.files
        if not present:
            if file in CORE_FILES:
                _problem(problems, "error", file, "required file is missing")
            elif file == "agency.txt":
                _problem(problems, "warning", file, "required file is missing (time zone unknown)")
            continue
        missing = [c for c in columns if c not in table.columns]
        severity = "warning" if file in ("agency.txt", "shapes.txt") else "error"
        if missing:
            _problem(problems, severity, file, f"missing required column(s): {', '.join(missing)}")
            continue
        usable.add(file)
    if "stop_times.txt" in usable and not (
        {"arrival_time", "departure_time"} & set(feed.stop_times.columns)
    ):
        _problem(problems, "error", "stop_times.txt", "missing columns arrival_time and departure_time")
        usable.discard("stop_times.txt")
    if "calendar.txt" not in feed.files and "calendar_dates.txt" not in feed.files:
        _problem(problems, "error", "calendar.txt", "neither calendar.txt nor calendar_dates.txt is present")
    return usable


def _check_ids(feed: Feed, usable: set[str], problems: list[Problem]) -> None:
    for file, column in (("stops.txt", "stop_id"), ("routes.txt", "route_id"), ("trips.txt", "trip_id")):
        if file not in usable:
            continue
        ids = getattr(feed, file.removesuffix(".txt"))[column]
        _problem(problems, "error", file, f"{column} is blank", ids.isna())
        _problem(problems, "error", file, f"duplicate {column}", ids.notna() & ids.duplicated(keep="first"))


def _check_references(feed: Feed, usable: set[str], problems: list[Problem]) -> None:
    trips, st = feed.trips, feed.stop_times
    if {"trips.txt", "routes.txt"} <= usable:
        _problem(problems, "error", "trips.txt", "route_id not in routes.txt", ~trips["route_id"].isin(feed.routes["route_id"]))
    if {"stop_times.txt", "stops.txt"} <= usable:
        _problem(problems, "error", "stop_times.txt", "stop_id not in stops.txt", ~st["stop_id"].isin(feed.stops["stop_id"]))
    if {"stop_times.txt", "trips.txt"} <= usable:
        orphan = ~st["trip_id"].isin(trips["trip_id"])
        _problem(problems, "warning", "stop_times.txt", "trip_id not in trips.txt (rows ignored)", orphan)
        counts = st["trip_id"].value_counts()
        n_stops = trips["trip_id"].map(counts).fillna(0)
        _problem(problems, "error", "trips.txt", "trip has fewer than two stop_times", n_stops < 2)
    if "trips.txt" in usable:
        services: set = set()
        if "calendar.txt" in usable:
            services |= set(feed.calendar["service_id"].dropna())
        if "calendar_dates.txt" in usable:
            services |= set(feed.calendar_dates["service_id"].dropna())
        if "calendar.txt" in usable or "calendar_dates.txt" in usable:
            _problem(problems, "error", "trips.txt", "service_id not in calendar.txt or calendar_dates.txt",
                     ~trips["service_id"].isin(services))
        if "shape_id" in trips.columns and "shapes.txt" in usable:
            known = trips["shape_id"].isna() | trips["shape_id"].isin(feed.shapes["shape_id"])
            _problem(problems, "warning", "trips.txt", "shape_id not in shapes.txt", ~known)
    if {"frequencies.txt", "trips.txt"} <= usable:
        _problem(problems, "warning", "frequencies.txt", "trip_id not in trips.txt (rows ignored)",
                 ~feed.frequencies["trip_id"].isin(trips["trip_id"]))
    if {"stops.txt", "stop_times.txt"} <= usable:
        used = feed.stops["stop_id"].isin(st["stop_id"])
        no_xy = feed.stops["stop_lat"].isna() | feed.stops["stop_lon"].isna()
        _problem(problems, "warning", "stops.txt", "stop served by trips has no position (no deadhead to it)", used & no_xy)
        _problem(problems, "error", "stops.txt", "stop position out of range",
                 _out_of_range(feed.stops, "stop_lon", "stop_lat"))
    if "shapes.txt" in usable and {"shape_pt_lat", "shape_pt_lon"} <= set(feed.shapes.columns):
        _problem(problems, "error", "shapes.txt", "shape point position out of range",
                 _out_of_range(feed.shapes, "shape_pt_lon", "shape_pt_lat"))


def _out_of_range(df: pd.DataFrame, lon: str, lat: str) -> pd.Series:
    """Rows whose position is present but not finite WGS84 (the ranges of city_ops.city.geovalidate; inf and
    1e200 land here, "nan" text was already reported as not a number)."""
    present = df[lat].notna() & df[lon].notna()
    return present & ~(df[lat].between(*LAT_RANGE) & df[lon].between(*LON_RANGE))


def _check_times(feed: Feed, usable: set[str], problems: list[Problem]) -> None:
    if "stop_times.txt" not in usable:
        return
    st = feed.stop_times
    arr = st["arrival_time"] if "arrival_time" in st.columns else pd.Series(np.nan, index=st.index)
    dep = st["departure_time"] if "departure_time" in st.columns else pd.Series(np.nan, index=st.index)
    seq = st["stop_sequence"]
    _problem(problems, "error", "stop_times.txt", "stop_sequence is blank", seq.isna())
    dup = st.duplicated(subset=["trip_id", "stop_sequence"], keep="first") & seq.notna()
    _problem(problems, "error", "stop_times.txt", "stop_sequence repeats within the trip", dup)
    _problem(problems, "error", "stop_times.txt", "departure_time is before arrival_time", arr > dep)

    order = st.assign(_arr=arr.fillna(dep), _dep=dep.fillna(arr)).sort_values(
        ["trip_id", "stop_sequence"], kind="stable"
    )
    group = order.groupby("trip_id", sort=False)
    previous = group["_dep"].shift(1).groupby(order["trip_id"], sort=False).ffill()
    backwards = (order["_arr"] < previous).reindex(st.index, fill_value=False)
    _problem(problems, "error", "stop_times.txt", "time goes backwards along the trip", backwards)
    ends = group.head(1).index.union(group.tail(1).index)
    untimed = pd.Series(False, index=st.index)
    untimed.loc[ends] = order.loc[ends, "_arr"].isna()
    _problem(problems, "error", "stop_times.txt", "first or last stop of a trip has no time", untimed)
    late = order["_dep"] > 48 * 3600
    _problem(problems, "warning", "stop_times.txt", "time later than 48:00:00", late.reindex(st.index, fill_value=False))


def _check_calendar(feed: Feed, usable: set[str], problems: list[Problem]) -> None:
    active_somewhere = False
    if "calendar.txt" in usable:
        cal = feed.calendar
        days = cal[list(DAYS)]
        _problem(problems, "error", "calendar.txt", "weekday flag must be 0 or 1", ~days.isin([0, 1]).all(axis=1))
        _problem(problems, "error", "calendar.txt", "end_date is before start_date", cal["end_date"] < cal["start_date"])
        span = (cal["end_date"] - cal["start_date"]).dt.days
        # A range of a week or more covers every weekday; a shorter one must contain a flagged weekday.
        for idx, row in cal[days.eq(1).any(axis=1) & span.ge(0)].iterrows():
            if span[idx] >= 6 or any(
                int(row[DAYS[(row["start_date"] + pd.Timedelta(days=k)).weekday()]]) == 1
                for k in range(int(span[idx]) + 1)
            ):
                active_somewhere = True
                break
    if "calendar_dates.txt" in usable:
        cd = feed.calendar_dates
        _problem(problems, "error", "calendar_dates.txt", "exception_type must be 1 or 2", ~cd["exception_type"].isin([1, 2]))
        active_somewhere = active_somewhere or bool(cd["exception_type"].eq(1).any())
    if ("calendar.txt" in usable or "calendar_dates.txt" in usable) and not active_somewhere:
        _problem(problems, "error", "calendar.txt", "service calendar is empty: no service runs on any date")


def _check_frequencies(feed: Feed, usable: set[str], problems: list[Problem]) -> None:
    if "frequencies.txt" not in usable:
        return
    fr = feed.frequencies
    _problem(problems, "error", "frequencies.txt", "start_time or end_time is blank", fr["start_time"].isna() | fr["end_time"].isna())
    _problem(problems, "error", "frequencies.txt", "end_time is not after start_time", fr["end_time"] <= fr["start_time"])
    _problem(problems, "error", "frequencies.txt", "headway_secs must be positive", ~(fr["headway_secs"] > 0))
    if "exact_times" in fr.columns:
        _problem(problems, "error", "frequencies.txt", "exact_times must be 0 or 1",
                 fr["exact_times"].notna() & ~fr["exact_times"].isin([0, 1]))
    # What service_trips would expand them to, counted before it does (invalid rows count as none).
    departures = np.ceil((fr["end_time"] - fr["start_time"]) / fr["headway_secs"].astype(float))
    departures = departures.where(departures.gt(0) & np.isfinite(departures), 0)
    if departures.sum() > MAX_FREQUENCY_DEPARTURES:
        _problem(problems, "error", "frequencies.txt",
                 f"the rows expand to {int(departures.sum()):,} departures a day, over the limit of "
                 f"{MAX_FREQUENCY_DEPARTURES:,} (MAX_FREQUENCY_DEPARTURES); the largest rows are listed",
                 departures.ge(departures.nlargest(_LINES_SHOWN).min()))


def feed_validate(*, feed: Feed) -> list[Problem]:
    """Check a feed through; return the warnings, or raise `FeedError` listing every error and warning.

    Errors (the feed cannot be planned on): missing required files or columns, broken references
    (trip -> route, stop_time -> stop, trip -> service), duplicate ids, unparseable values, times that go
    backwards along a trip, untimed first/last stops, an empty service calendar. Warnings: a missing
    agency.txt, orphan stop_times or frequencies rows, unknown shape ids, stops without positions.
    All checks run before anything is raised, so one pass shows every problem.
    """
    problems = list(feed.read_problems)
    usable = _check_columns(feed, problems)
    _check_ids(feed, usable, problems)
    _check_references(feed, usable, problems)
    _check_times(feed, usable, problems)
    _check_calendar(feed, usable, problems)
    _check_frequencies(feed, usable, problems)
    if feed.timezone:
        try:
            import zoneinfo

            zoneinfo.ZoneInfo(feed.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            _problem(problems, "warning", "agency.txt", f"unknown agency_timezone {feed.timezone!r}")
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity != "error"]
    if errors:
        raise FeedError(f"GTFS feed {feed.path} has {len(errors)} error(s)", errors + warnings)
    feed.validated = True
    return warnings


# --------------------------------------------------------------------------------------------- service day


def service_ids_active(*, feed: Feed, service_date: dt.date) -> set[str]:
    """Service ids running on a date: calendar.txt weekday ranges, plus calendar_dates additions, less removals."""
    day = pd.Timestamp(service_date)
    active: set[str] = set()
    cal = feed.calendar
    if len(cal) and "start_date" in cal.columns:
        weekday = DAYS[day.weekday()]
        running = cal[(cal[weekday] == 1) & (cal["start_date"] <= day) & (cal["end_date"] >= day)]
        active |= set(running["service_id"])
    cd = feed.calendar_dates
    if len(cd) and "date" in cd.columns:
        today = cd[cd["date"] == day]
        active |= set(today.loc[today["exception_type"] == 1, "service_id"])
        active -= set(today.loc[today["exception_type"] == 2, "service_id"])
    return active


def _trip_ends(feed: Feed) -> pd.DataFrame:
    """Per trip: first/last stop and first departure/last arrival (computed once per feed)."""
    if feed._trip_ends is not None:
        return feed._trip_ends
    st = feed.stop_times
    arr = st["arrival_time"] if "arrival_time" in st.columns else pd.Series(np.nan, index=st.index)
    dep = st["departure_time"] if "departure_time" in st.columns else pd.Series(np.nan, index=st.index)
    order = pd.DataFrame(
        {
            "trip_id": st["trip_id"],
            "stop_id": st["stop_id"],
            "seq": st["stop_sequence"],
            "dep": dep.fillna(arr),
            "arr": arr.fillna(dep),
        }
    ).sort_values(["trip_id", "seq"], kind="stable")
    group = order.groupby("trip_id", sort=False)
    first = group.head(1).set_index("trip_id")
    last = group.tail(1).set_index("trip_id")
    stops = feed.stops.drop_duplicates("stop_id").set_index("stop_id")
    ends = pd.DataFrame(
        {
            "first_stop_id": first["stop_id"],
            "first_stop_lat": first["stop_id"].map(stops["stop_lat"]).astype(float),
            "first_stop_lon": first["stop_id"].map(stops["stop_lon"]).astype(float),
            "last_stop_id": last["stop_id"],
            "last_stop_lat": last["stop_id"].map(stops["stop_lat"]).astype(float),
            "last_stop_lon": last["stop_id"].map(stops["stop_lon"]).astype(float),
            "start_s": first["dep"].astype(float),
            "end_s": last["arr"].astype(float),
        }
    )
    feed._trip_ends = ends
    return ends


TRIP_COLUMNS = [
    "trip_key",
    "trip_id",
    "route_id",
    "direction_id",
    "service_id",
    "shape_id",
    "block_id",
    "first_stop_id",
    "first_stop_lat",
    "first_stop_lon",
    "last_stop_id",
    "last_stop_lat",
    "last_stop_lon",
    "start_s",
    "end_s",
    "frequency_based",
    "exact_times",
]


def service_trips(*, feed: Feed, service_date: dt.date) -> pd.DataFrame:
    """Every trip that runs on `service_date`, one row per vehicle trip, sorted by start time.

    Frequency-based trips (frequencies.txt, exact_times 0 or 1) are expanded into departures every
    headway_secs from start_time while before end_time, each keyed `trip_id@HH:MM:SS` and timed by the
    template trip's stop_times shifted to that departure. For exact_times=0 the departures are the
    nominal ones: GTFS promises only the headway, which is all a vehicle plan needs.
    Columns: see TRIP_COLUMNS (block_id is NA where the feed has none). Validates the feed first.
    """
    if not feed.validated:
        feed_validate(feed=feed)
    active = service_ids_active(feed=feed, service_date=service_date)
    trips = feed.trips[feed.trips["service_id"].isin(active)].copy()
    for column in ("direction_id", "shape_id", "block_id"):
        if column not in trips.columns:
            trips[column] = pd.NA
    trips = trips.join(_trip_ends(feed), on="trip_id", how="inner")
    trips["trip_key"] = trips["trip_id"]
    trips["frequency_based"] = False
    trips["exact_times"] = pd.array([pd.NA] * len(trips), dtype="Int64")

    freq = feed.frequencies
    if len(freq) and "trip_id" in freq.columns:
        freq = freq[freq["trip_id"].isin(trips["trip_id"])]
        templates = trips.set_index("trip_id")
        departures = []
        for row in freq.itertuples(index=False):
            template = templates.loc[row.trip_id]
            times = np.arange(float(row.start_time), float(row.end_time), float(row.headway_secs))
            duration = float(template["end_s"]) - float(template["start_s"])
            exact = int(row.exact_times) if "exact_times" in freq.columns and pd.notna(row.exact_times) else 0
            block = pd.DataFrame([template.to_dict()] * len(times))
            block["trip_id"] = row.trip_id
            block["trip_key"] = [f"{row.trip_id}@{seconds_format(t)}" for t in times]
            block["start_s"] = times
            block["end_s"] = times + duration
            block["frequency_based"] = True
            block["exact_times"] = exact
            departures.append(block)
        trips = trips[~trips["trip_id"].isin(freq["trip_id"])]
        if departures:
            trips = pd.concat([trips, *departures], ignore_index=True)
    out = trips.reindex(columns=TRIP_COLUMNS)
    out["exact_times"] = out["exact_times"].astype("Int64")
    out["direction_id"] = out["direction_id"].astype("Int64")
    out["frequency_based"] = out["frequency_based"].astype(bool)
    return out.sort_values(["start_s", "trip_key"], kind="stable").reset_index(drop=True)
