"""Readings at the edges (pure core): physically impossible values (world-record rain for the interval, hard
limits, a sensor's measuring range) are flagged by QC; USGS RDB daily values keep their statistic, every
NWIS qualifier is handled, and an RDB file with no value column the agent reads is refused by name."""
from __future__ import annotations

import datetime as dt

import pytest

from agents.flood.domain import ReadingsFormatError, readings_parse
from agents.flood.domain.qc import (
    qc_settings_default,
    rainfall_record_mm,
    reading_impossible,
    series_qc,
    series_qc_run,
)

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
CFS = 0.028316846592


def _minutes(m: float) -> dt.timedelta:
    return dt.timedelta(minutes=m)


def test_rainfall_record_follows_the_wmo_records_and_interpolates_between():
    assert rainfall_record_mm(interval=_minutes(1)) == pytest.approx(38)
    assert rainfall_record_mm(interval=_minutes(42)) == pytest.approx(305)
    assert rainfall_record_mm(interval=_minutes(24 * 60)) == pytest.approx(1825)
    assert rainfall_record_mm(interval=None) == pytest.approx(1825)  # unknown interval: the day's record
    quarter = rainfall_record_mm(interval=_minutes(15))
    assert 38 < quarter < 305 and quarter == pytest.approx(172, abs=1)  # log-log between 1 and 42 min
    assert rainfall_record_mm(interval=_minutes(0.2)) == pytest.approx(38)  # never below the 1-min record
    assert rainfall_record_mm(interval=_minutes(10 * 24 * 60)) > 4936  # beyond four days: still rising


@pytest.mark.parametrize(("parameter", "value", "interval", "low", "high", "bad"), [
    ("rainfall", -5.0, _minutes(15), None, None, "below the rainfall limit 0"),
    ("rainfall", 1e20, _minutes(15), None, None, "above the world record"),
    ("rainfall", 200.0, _minutes(15), None, None, "above the world record"),
    ("rainfall", 200.0, _minutes(60), None, None, None),  # Zhengzhou 2021 had 201.9 mm in an hour
    ("rainfall", 624.0, _minutes(24 * 60), None, None, None),
    ("level", -1e15, None, None, None, "below the level limit"),
    ("level", 3.2, None, None, None, None),
    ("discharge", 1e9, None, None, None, "above the discharge limit"),
    ("depth", 40.0, None, 0.0, 30.0, "above the depth limit 30"),  # the sensor's measuring range
    ("depth", -1.0, None, 0.0, 30.0, "below the depth limit 0"),
    ("depth", 400.0, None, None, None, None),
    ("depth", float("nan"), None, None, None, "not a finite number"),
])
def test_impossible_values_are_named(parameter, value, interval, low, high, bad):
    reason = reading_impossible(parameter=parameter, value=value, interval=interval, low=low, high=high)
    assert (reason is None) if bad is None else (bad in reason), reason


def test_series_qc_flags_rain_above_the_record_for_the_gap_since_the_previous_reading():
    times = [T0 + _minutes(15 * i) for i in range(4)] + [T0 + _minutes(120)]
    values = [2.0, 200.0, 1e20, 0.0, 200.0]  # 200 mm in 15 min: impossible; in 75 min: possible
    flags = series_qc(times=times, values=values, settings=qc_settings_default(parameter="rainfall"))
    assert [(f.index, f.kind) for f in flags] == [(1, "out_of_range"), (2, "out_of_range")]
    assert "world-record" in flags[0].reason and "-5" not in flags[0].reason


def test_resumed_rain_qc_judges_the_new_reading_against_its_own_gap():
    settings = qc_settings_default(parameter="rainfall")
    times = [T0 + _minutes(15 * i) for i in range(3)]
    first = series_qc_run(times=times[:2], values=[1.0, 2.0], settings=settings)
    resumed = series_qc_run(times=times, values=[1.0, 2.0, 500.0], settings=settings, resume=first)
    assert list(resumed.flagged) == [False, False, True] and resumed.kinds[2] == "out_of_range"


RDB_DAILY = (
    "# US Geological Survey\n"
    "# Data provided for site 01646500\n"
    "#    USGS 01646500 POTOMAC RIVER NEAR WASH, DC LITTLE FALLS PUMP STA\n"
    "agency_cd\tsite_no\tdatetime\t149296_00060_00003\t149296_00060_00003_cd\t149297_00065_00001\t"
    "149297_00065_00001_cd\n"
    "5s\t15s\t20d\t14n\t10s\t14n\t10s\n"
    "USGS\t01646500\t2024-01-01\t10000\tA\t5.1\tA\n"  # line 6
    "USGS\t01646500\t2024-01-02\t12000\tP:e\t\t\n"  # 7: provisional, estimated; no stage that day
    "USGS\t01646500\t2024-01-03\tIce\tP\t5.0\tP\n"  # 8: no discharge (ice), stage kept
    "USGS\t01646500\t2024-01-04\t11000\tX\t4.9\t<\n"  # 9: discharge marked erroneous, stage a bound
    "USGS\t01646500\t2024-01-05\t9000\tA:Zq\t4.8\tA\n"  # 10: a qualifier NWIS does not list
    "USGS\t01646500\t2024-01-06\t***\t\t4.7\tEqp\n"  # 11: both unusable
)


def test_usgs_daily_values_keep_their_statistic_and_date():
    result = readings_parse(data=RDB_DAILY.encode())
    assert result.format == "usgs_rdb"
    discharge = [r for r in result.readings if r.parameter == "discharge"]
    assert [(r.time.date().isoformat(), r.statistic, r.value) for r in discharge] == [
        ("2024-01-01", "00003", pytest.approx(10000 * CFS)), ("2024-01-02", "00003", pytest.approx(12000 * CFS)),
        ("2024-01-05", "00003", pytest.approx(9000 * CFS))]
    assert all(r.time == dt.datetime.combine(r.time.date(), dt.time(), dt.UTC) for r in result.readings)
    stage = [r for r in result.readings if r.parameter == "level"]
    assert [r.statistic for r in stage] == ["00001"] * 4 and [r.row for r in stage] == [6, 8, 9, 10]
    station = result.stations[0]
    assert station.code == "01646500" and station.name.startswith("POTOMAC")
    assert station.parameters == () and set(station.statistics) == {("discharge", "00003"), ("level", "00001")}


def test_usgs_qualifiers_that_mean_no_value_reject_the_value_with_their_meaning():
    result = readings_parse(data=RDB_DAILY.encode())
    reasons = {e.row: e.reason for e in result.rejected}
    assert set(reasons) == {8, 9, 11}
    assert "'Ice' (ice affected)" in reasons[8]
    assert "'X' (erroneous)" in reasons[9]
    assert "'***' (temporarily unavailable)" in reasons[11] and "'Eqp' (equipment malfunction)" in reasons[11]
    assert any("Zq" in note for note in result.notes)  # an unlisted qualifier: value kept, noted


def test_usgs_instantaneous_values_read_their_qualifier_column():
    rdb = ("agency_cd\tsite_no\tdatetime\ttz_cd\t69928_00065\t69928_00065_cd\n"
           "5s\t15s\t20d\t6s\t14n\t10s\n"
           "USGS\t01646500\t2024-05-01 00:00\tEDT\t3.1\tP\n"
           "USGS\t01646500\t2024-05-01 00:15\tEDT\t3.2\tP:Mnt\n"
           "USGS\t01646500\t2024-05-01 00:30\tEDT\t3.3\t>\n")
    result = readings_parse(data=rdb.encode())
    assert [(r.statistic, r.row) for r in result.readings] == [("", 3), ("", 5)]
    assert [e.row for e in result.rejected] == [4] and "maintenance" in result.rejected[0].reason


def test_rdb_without_a_value_column_it_reads_names_the_columns():
    rdb = ("agency_cd\tsite_no\tdatetime\t149296_00010_00003\t149296_00010_00003_cd\n"
           "5s\t15s\t20d\t14n\t10s\n"
           "USGS\t01646500\t2024-01-01\t4.5\tA\n")
    with pytest.raises(ReadingsFormatError, match="no value column") as err:
        readings_parse(data=rdb.encode())
    assert "149296_00010_00003" in str(err.value) and "00060" in str(err.value)


def test_waterml_qualifiers_that_mean_no_value_reject_it():
    xml = ('<timeSeriesResponse xmlns="http://www.cuahsi.org/waterML/1.1/"><timeSeries name="USGS:1:00065:00000">\n'
           '<sourceInfo><siteCode>1</siteCode></sourceInfo><variable><variableCode>00065</variableCode>'
           '<unit><unitCode>ft</unitCode></unit></variable><values>\n'
           '<value dateTime="2024-01-01T00:00:00Z" qualifiers="P">3.1</value>\n'
           '<value dateTime="2024-01-01T00:15:00Z" qualifiers="P Eqp">3.2</value>\n'
           '</values></timeSeries></timeSeriesResponse>')
    result = readings_parse(data=xml.encode())
    assert [r.row for r in result.readings] == [3]
    assert [(e.row, e.reason) for e in result.rejected] == [(4, "'Eqp' (equipment malfunction) is not a value to use")]
