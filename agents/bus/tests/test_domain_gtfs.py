"""GTFS reading, validation and service-day expansion (agents.bus.domain.gtfs)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import math
import zipfile

import pandas as pd
import pytest

from agents.bus.domain.gtfs import (
    FeedError,
    feed_read,
    feed_validate,
    seconds_format,
    seconds_parse,
    service_trips,
)
from agents.bus.domain.synthetic import feed_tiny_tables, feed_zip_write

WEDNESDAY = dt.date(2024, 3, 6)


def tiny_feed(tmp_path, **changes):
    """Write the tiny feed with some tables replaced (None drops the file) and read it back."""
    tables = feed_tiny_tables()
    for name, table in changes.items():
        name = name.replace("__", ".")
        if table is None:
            tables.pop(name)
        else:
            tables[name] = table
    return feed_read(path=feed_zip_write(path=tmp_path / "feed.zip", tables=tables))


def test_times_past_midnight_parse_to_seconds_of_the_service_day():
    parsed = seconds_parse(pd.Series(["08:00:00", "25:10:00", "7:05:09", "", None, "8:7:00"]))
    assert parsed.iloc[0] == 8 * 3600
    assert parsed.iloc[1] == 25 * 3600 + 10 * 60
    assert parsed.iloc[2] == 7 * 3600 + 5 * 60 + 9
    assert parsed.iloc[3:].isna().all()
    assert seconds_format(90600) == "25:10:00"


def test_usual_times_read_as_digits_parse_as_the_pattern_does():
    """The "HH:MM:SS" fast path gives the pattern's seconds and its NaNs, on every shape around it."""
    import random
    import re

    rng = random.Random(3)
    odd = ["24:60:00", "12:5a:00", "12-30-00", "1:2:3", "123:45:06", " 09:15:00 ", "09:15:0", "0915:000",
           "٠٩:١٥:٠٠", "ab:cd:ef", "99:59:59", "00:00:00", "", None, "+1:00:00", "12:30:60"]
    values = odd + [f"{rng.randint(0, 47):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
                    for _ in range(500)]
    pattern = re.compile(r"^(\d{1,3}):([0-5]\d):([0-5]\d)$")

    def expected(value):
        match = pattern.match(value.strip()) if isinstance(value, str) else None
        return (int(match[1]) * 3600 + int(match[2]) * 60 + int(match[3])) if match else None

    parsed = seconds_parse(pd.Series(values))
    for value, got in zip(values, parsed):
        want = expected(value)
        assert (pd.isna(got) if want is None else got == want), (value, got, want)


def test_tiny_feed_reads_and_validates_clean(tmp_path):
    feed = tiny_feed(tmp_path)
    assert feed_validate(feed=feed) == []
    assert feed.has_block_id
    assert feed.timezone == "America/New_York"
    late = feed.stop_times[feed.stop_times["trip_id"] == "t6"]
    assert late["arrival_time"].max() == 25 * 3600 + 10 * 60


def test_service_trips_expands_calendar_and_frequencies(tmp_path):
    trips = service_trips(feed=tiny_feed(tmp_path), service_date=WEDNESDAY)
    assert set(trips["trip_key"]) == {"t1", "t2", "t3", "t6", "t5@12:00:00", "t5@12:20:00", "t5@12:40:00"}
    freq = trips[trips["frequency_based"]].set_index("trip_key")
    # each departure keeps the template's 30-minute running time
    assert (freq["end_s"] - freq["start_s"]).eq(1800).all()
    assert freq.loc["t5@12:40:00", "start_s"] == 12 * 3600 + 40 * 60
    assert set(freq["exact_times"]) == {1}
    row = trips.set_index("trip_key").loc["t1"]
    assert (row["first_stop_id"], row["last_stop_id"], row["block_id"]) == ("A", "B", "K1")
    assert row["first_stop_lat"] == pytest.approx(40.0)
    assert trips["start_s"].is_monotonic_increasing


def test_service_trips_exact_times_zero_is_expanded_too(tmp_path):
    tables = feed_tiny_tables()
    freq = tables["frequencies.txt"].assign(exact_times=0, end_time="12:50:00")
    trips = service_trips(feed=tiny_feed(tmp_path, frequencies__txt=freq), service_date=WEDNESDAY)
    keys = sorted(k for k in trips["trip_key"] if k.startswith("t5@"))
    assert keys == ["t5@12:00:00", "t5@12:20:00", "t5@12:40:00"]  # 12:40 < 12:50, 13:00 is not


def test_calendar_dates_swap_service_on_a_holiday(tmp_path):
    feed = tiny_feed(tmp_path)
    holiday = service_trips(feed=feed, service_date=dt.date(2024, 7, 4))
    assert holiday["trip_key"].tolist() == ["t4"]
    assert service_trips(feed=feed, service_date=dt.date(2025, 3, 5)).empty  # after the calendar ends


def _broken(name):
    t = feed_tiny_tables()
    if name == "no stops file":
        return {"stops__txt": None}, "stops.txt: required file is missing"
    if name == "no stop_lat column":
        return {"stops__txt": t["stops.txt"].drop(columns="stop_lat")}, "missing required column(s): stop_lat"
    if name == "trip to unknown route":
        trips = t["trips.txt"].copy()
        trips.loc[2, "route_id"] = "R9"
        return {"trips__txt": trips}, "route_id not in routes.txt (line 4"
    if name == "stop_time to unknown stop":
        st = t["stop_times.txt"].copy()
        st.loc[3, "stop_id"] = "ZZ"
        return {"stop_times__txt": st}, "stop_id not in stops.txt (line 5"
    if name == "trip to unknown service":
        trips = t["trips.txt"].copy()
        trips.loc[0, "service_id"] = "NOPE"
        return {"trips__txt": trips}, "service_id not in calendar.txt or calendar_dates.txt (line 2"
    if name == "time goes backwards":
        st = t["stop_times.txt"].copy()
        st.loc[1, ["arrival_time", "departure_time"]] = "07:50:00"  # t1 arrives at B before leaving A
        return {"stop_times__txt": st}, "time goes backwards along the trip (line 3"
    if name == "empty calendar":
        cal = t["calendar.txt"].copy()
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"):
            cal[day] = 0
        dates = t["calendar_dates.txt"].assign(exception_type=2)
        return {"calendar__txt": cal, "calendar_dates__txt": dates}, "service calendar is empty"
    if name == "malformed time":
        st = t["stop_times.txt"].copy()
        st.loc[4, "arrival_time"] = "8:7:00"
        return {"stop_times__txt": st}, "arrival_time is not a time H:MM:SS (line 6"
    if name == "no calendar at all":
        return {"calendar__txt": None, "calendar_dates__txt": None}, "neither calendar.txt nor calendar_dates.txt"
    raise AssertionError(name)


@pytest.mark.parametrize(
    "name",
    [
        "no stops file",
        "no stop_lat column",
        "trip to unknown route",
        "stop_time to unknown stop",
        "trip to unknown service",
        "time goes backwards",
        "empty calendar",
        "malformed time",
        "no calendar at all",
    ],
)
def test_broken_feed_raises_with_a_clear_message(tmp_path, name):
    changes, expected = _broken(name)
    feed = tiny_feed(tmp_path, **changes)
    with pytest.raises(FeedError) as info:
        feed_validate(feed=feed)
    assert expected in str(info.value)
    assert all(p.severity in ("error", "warning") for p in info.value.problems)
    with pytest.raises(FeedError):  # no half-results: planning refuses the feed too
        service_trips(feed=feed, service_date=WEDNESDAY)


def test_every_error_is_reported_in_one_pass(tmp_path):
    t = feed_tiny_tables()
    trips = t["trips.txt"].copy()
    trips.loc[2, "route_id"] = "R9"
    st = t["stop_times.txt"].copy()
    st.loc[3, "stop_id"] = "ZZ"
    with pytest.raises(FeedError) as info:
        feed_validate(feed=tiny_feed(tmp_path, trips__txt=trips, stop_times__txt=st))
    messages = [p.message for p in info.value.problems if p.severity == "error"]
    assert "route_id not in routes.txt" in messages and "stop_id not in stops.txt" in messages


def test_harmless_problems_are_warnings_and_the_rest_is_kept(tmp_path):
    t = feed_tiny_tables()
    orphan = pd.concat([t["stop_times.txt"], pd.DataFrame([{"trip_id": "ghost", "arrival_time": "09:00:00",
                                                             "departure_time": "09:00:00", "stop_id": "A",
                                                             "stop_sequence": 1}])], ignore_index=True)
    feed = tiny_feed(tmp_path, stop_times__txt=orphan, agency__txt=None)
    warnings = feed_validate(feed=feed)
    text = "\n".join(map(str, warnings))
    assert "trip_id not in trips.txt (rows ignored) (line 14" in text
    assert "agency.txt: required file is missing" in text
    assert len(service_trips(feed=feed, service_date=WEDNESDAY)) == 7


def test_not_a_zip_is_a_feed_error(tmp_path):
    bad = tmp_path / "feed.zip"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(FeedError, match="not a readable GTFS zip"):
        feed_read(path=bad)
    with pytest.raises(FeedError, match="not found"):
        feed_read(path=tmp_path / "missing.zip")


# ------------------------------------------------------------------------------------------ shared feeds


def _raw_csv(path, name):
    with zipfile.ZipFile(path) as archive:
        text = archive.read(name).decode("utf-8-sig")
    return [{k.strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


@pytest.mark.shared
def test_shared_feeds_read_and_validate(shared_dir):
    for name in ("bullrunner_gtfs.zip", "kcm_gtfs_subset.zip"):
        path = shared_dir / "benchmarks" / "gtfs" / name
        feed = feed_read(path=path)
        assert [p for p in feed_validate(feed=feed) if p.severity == "error"] == []
        assert len(feed.trips) == len(_raw_csv(path, "trips.txt"))
        assert len(feed.stop_times) == len(_raw_csv(path, "stop_times.txt"))


@pytest.mark.shared
def test_shared_bullrunner_frequencies_expand_to_every_departure(shared_dir):
    path = shared_dir / "benchmarks" / "gtfs" / "bullrunner_gtfs.zip"
    trips = service_trips(feed=feed_read(path=path), service_date=dt.date(2017, 9, 13))  # a Wednesday
    monday_trips = {r["trip_id"] for r in _raw_csv(path, "trips.txt") if r["service_id"] == "Mo"}

    def secs(clock):
        h, m, s = map(int, clock.split(":"))
        return h * 3600 + m * 60 + s

    expected = sum(
        math.ceil((secs(r["end_time"]) - secs(r["start_time"])) / int(r["headway_secs"]))
        for r in _raw_csv(path, "frequencies.txt")
        if r["trip_id"] in monday_trips
    )
    assert len(trips) == expected
    assert trips["frequency_based"].all()
    assert trips["trip_key"].str.fullmatch(r"\d+@\d\d:\d\d:\d\d").all()


@pytest.mark.shared
def test_shared_kcm_block_ids_read(shared_dir):
    path = shared_dir / "benchmarks" / "gtfs" / "kcm_gtfs_subset.zip"
    trips = service_trips(feed=feed_read(path=path), service_date=dt.date(2016, 5, 4))  # a Wednesday
    weekday = [r for r in _raw_csv(path, "trips.txt") if r["service_id"] == "113450"]
    assert set(trips["trip_key"]) == {r["trip_id"] for r in weekday}
    assert trips["block_id"].nunique() == len({r["block_id"] for r in weekday})
    assert trips["block_id"].notna().all()


@pytest.mark.parametrize("lat,lon,expected", [
    ("1e200", "-71.06", "stops.txt: stop position out of range (line 3"),
    ("inf", "-71.06", "stops.txt: stop position out of range (line 3"),
    ("42.35", "-1e308", "stops.txt: stop position out of range (line 3"),
    ("north", "-71.06", "stops.txt: stop_lat is not a number (line 3"),
    ("95", "-71.06", "stops.txt: stop position out of range (line 3"),
])
def test_stop_with_impossible_position_is_refused_by_line(tmp_path, lat, lon, expected):
    """Coordinates from a file pass the same checks as the API's (city_ops.city.geovalidate), reported by line.
    ("nan" text is read by pandas as a blank, i.e. a stop without a position: a warning, never a coordinate.)"""
    stops = feed_tiny_tables()["stops.txt"].astype(str)
    stops.loc[1, ["stop_lat", "stop_lon"]] = [lat, lon]
    with pytest.raises(FeedError) as info:
        feed_validate(feed=tiny_feed(tmp_path, stops__txt=stops))
    assert expected in str(info.value)


def test_shape_point_out_of_range_is_refused_by_line(tmp_path):
    shapes = feed_tiny_tables()["shapes.txt"].astype(str)
    shapes.loc[0, "shape_pt_lon"] = "1e200"
    with pytest.raises(FeedError) as info:
        feed_validate(feed=tiny_feed(tmp_path, shapes__txt=shapes))
    assert "shapes.txt: shape point position out of range (line 2" in str(info.value)

def test_frequencies_declaring_millions_of_departures_are_refused_before_expanding(tmp_path):
    """A 1-second headway from noon to 99:59:59 declares 316,799 trips: an error naming the row, at once."""
    import time

    from agents.bus.domain.gtfs import MAX_FREQUENCY_DEPARTURES

    freq = feed_tiny_tables()["frequencies.txt"].assign(end_time="99:59:59", headway_secs=1)
    feed = tiny_feed(tmp_path, frequencies__txt=freq)
    started = time.process_time()  # CPU, not wall: a loaded machine's queue is not the refusal's cost
    with pytest.raises(FeedError) as err:
        service_trips(feed=feed, service_date=WEDNESDAY)
    assert time.process_time() - started < 1.0
    (problem,) = [p for p in err.value.problems if "departures a day" in p.message]
    assert problem.file == "frequencies.txt" and problem.lines == (2,)
    assert f"over the limit of {MAX_FREQUENCY_DEPARTURES:,}" in problem.message

