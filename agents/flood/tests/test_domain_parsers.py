"""Reading parsers: every format, unit conversion, time zones, row errors, safe XML, the real EA samples."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from agents.flood.domain.parsers import ReadingsFormatError, readings_format_detect, readings_parse

UTC = dt.UTC
FT = 0.3048
CFS = 0.028316846592


def _by_row(result):
    return {error.row: error.reason for error in result.rejected}


# ----------------------------------------------------------------------------------------------- CSV / JSON


def test_csv_keeps_good_rows_and_reports_bad_ones_by_line_number():
    data = (
        b"sensor,parameter,time,value\n"  # line 1
        b"RG-1,rainfall,2026-07-01T08:00:00+08:00,12.5\n"  # 2 good
        b"RG-1,rainfall,2026-07-01T08:15:00+08:00,abc\n"  # 3 bad value
        b"RG-1,rainfall,yesterday,1\n"  # 4 bad time
        b",rainfall,2026-07-01T08:30:00+08:00,1\n"  # 5 no sensor
        b"RG-1,rainfall,2026-07-01T08:30:00,1\n"  # 6 no offset, no tz
        b"WL-9,level,2026-07-01T00:45:00Z,3.25\n"  # 7 good
        b"RG-1,rainfall,2026-07-01T08:45:00+08:00,nan\n"  # 8 not finite
        b"RG-1,snow,2026-07-01T08:45:00+08:00,1\n"  # 9 unknown parameter
    )
    result = readings_parse(data=data)
    assert result.format == "csv"
    assert [(r.sensor, r.row) for r in result.readings] == [("RG-1", 2), ("WL-9", 7)]
    assert result.readings[0].time == dt.datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    assert result.readings[0].unit == "mm" and result.readings[1].unit == "m"
    errors = _by_row(result)
    assert set(errors) == {3, 4, 5, 6, 8, 9}
    assert "not a number" in errors[3]
    assert "ISO 8601" in errors[4]
    assert "missing sensor" in errors[5]
    assert "no UTC offset" in errors[6]
    assert "finite" in errors[8]
    assert "unknown parameter" in errors[9]
    assert {s.code: s.parameters for s in result.stations} == {"RG-1": ("rainfall",), "WL-9": ("level",)}


def test_csv_naive_times_take_the_given_zone():
    data = b"sensor,parameter,time,value\nRG-1,rainfall,2026-07-01 08:00,3\n"
    result = readings_parse(data=data, tz="Asia/Shanghai")
    assert result.readings[0].time == dt.datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
    assert not result.rejected


def test_csv_parameter_column_optional_resolved_per_sensor():
    data = b"sensor,time,value\nWL-1,2026-07-01T00:00:00Z,2.5\nXX-9,2026-07-01T00:00:00Z,1\n"
    defaults = {"WL-1": "level"}
    result = readings_parse(data=data, default_parameter_for=defaults.get)
    assert [(r.sensor, r.parameter) for r in result.readings] == [("WL-1", "level")]
    assert "XX-9" in _by_row(result)[3] and "no default parameter" in _by_row(result)[3]


def test_csv_optional_unit_column_converts_to_canonical_units():
    data = (
        b"sensor,parameter,time,value,unit\n"
        b"WL-1,level,2026-07-01T00:00:00Z,10,ft\n"
        b"Q-1,discharge,2026-07-01T00:00:00Z,1000,cfs\n"
        b"RG-1,rainfall,2026-07-01T00:00:00Z,2,in\n"
        b"D-1,depth,2026-07-01T00:00:00Z,250,mm\n"
        b"D-2,depth,2026-07-01T00:00:00Z,3,furlong\n"
    )
    result = readings_parse(data=data)
    values = {r.sensor: (r.value, r.unit) for r in result.readings}
    assert values["WL-1"] == (pytest.approx(10 * FT), "m")
    assert values["Q-1"] == (pytest.approx(1000 * CFS), "m3/s")
    assert values["RG-1"] == (pytest.approx(50.8), "mm")
    assert values["D-1"] == (pytest.approx(25.0), "cm")
    assert "furlong" in _by_row(result)[6]


def test_csv_without_required_columns_is_a_format_error():
    with pytest.raises(ReadingsFormatError, match="lacks column"):
        readings_parse(data=b"station,when,reading\nA,2026-07-01T00:00:00Z,1\n", fmt="csv")


def test_json_list_and_wrapped_forms_number_rows_from_one():
    records = [
        {"sensor": "D-1", "parameter": "depth", "time": "2026-07-01T00:00:00Z", "value": 12},
        {"sensor": "D-1", "parameter": "depth", "time": "2026-07-01T00:05:00Z"},
        "not an object",
        {"sensor": "D-1", "parameter": "depth", "time": "2026-07-01T00:10:00Z", "value": "30.5"},
    ]
    for payload in (records, {"readings": records}):
        result = readings_parse(data=json.dumps(payload).encode())
        assert result.format == "json"
        assert [(r.row, r.value) for r in result.readings] == [(1, 12.0), (4, 30.5)]
        errors = _by_row(result)
        assert "missing value" in errors[2] and "not an object" in errors[3]


# ----------------------------------------------------------------------------------------------- EA


def test_ea_flood_monitoring_api_readings():
    base = "http://environment.data.gov.uk/flood-monitoring/id/measures/"
    document = {
        "@context": "http://environment.data.gov.uk/flood-monitoring/meta/context.jsonld",
        "meta": {"publisher": "Environment Agency", "version": "0.9"},
        "items": [
            {
                "@id": "x/1",
                "dateTime": "2016-09-07T10:30:00Z",
                "measure": base + "1491TH-level-stage-i-15_min-mASD",
                "value": 0.162,
            },
            {
                "@id": "x/2",
                "dateTime": "2016-09-07T10:30:00Z",
                "measure": base + "E72639-flow--i-15_min-m3_s",
                "value": 12.5,
            },
            {
                "@id": "x/3",
                "dateTime": "2016-09-07T10:30:00Z",
                "measure": base + "E7050-rainfall-tipping_bucket_raingauge-t-15_min-mm",
                "value": 0.4,
            },
            {
                "@id": "x/4",
                "dateTime": "2016-09-07T10:30:00Z",
                "measure": base + "1491TH-level-downstream_stage-i-15_min-mASD",
                "value": 0.1,
            },
            {
                "@id": "x/5",
                "dateTime": "2016-09-07T10:30:00Z",
                "measure": base + "E1234-temperature-dry_bulb-i-15_min-deg_C",
                "value": 17,
            },
            {
                "@id": "x/6",
                "dateTime": "2016-09-07T10:30:00Z",
                "measure": base + "1491TH-level-stage-i-15_min-mASD",
                "value": [0.1, 0.2],
            },
            {
                "@id": "x/7",
                "dateTime": "not a time",
                "measure": base + "1491TH-level-stage-i-15_min-mASD",
                "value": 0.2,
            },
        ],
    }
    result = readings_parse(data=json.dumps(document).encode())
    assert result.format == "ea_api"
    got = {(r.sensor, r.parameter): (r.value, r.unit) for r in result.readings}
    assert got == {
        ("1491TH", "level"): (0.162, "m"),
        ("E72639", "discharge"): (12.5, "m3/s"),
        ("E7050", "rainfall"): (0.4, "mm"),
        ("1491TH-downstream", "level"): (0.1, "m"),
    }
    errors = _by_row(result)
    assert set(errors) == {5, 6, 7}
    assert "temperature" in errors[5] and "list" in errors[6] and "ISO 8601" in errors[7]


def test_ea_telemetry_list_needs_a_sensor_name():
    data = json.dumps([{"ts": "2020-10-13T16:00Z", "_": 1.2, "err": False}]).encode()
    assert readings_format_detect(data=data) == "ea_telemetry"
    with pytest.raises(ReadingsFormatError, match="sensor="):
        readings_parse(data=data)
    result = readings_parse(data=data, sensor="E9140")
    assert [(r.sensor, r.parameter, r.value) for r in result.readings] == [("E9140", "level", 1.2)]


def test_ea_telemetry_rows_flagged_by_the_agency_are_rejected():
    data = json.dumps(
        [
            {"ts": "2020-10-13T16:00Z", "_": 1.2, "err": False},
            {"ts": "2020-10-13T15:45Z", "_": 9.9, "err": True},
            {"ts": "2020-10-13T15:30Z", "_": None, "err": False},
        ]
    ).encode()
    result = readings_parse(data=data, sensor="E9140")
    assert len(result.readings) == 1
    errors = _by_row(result)
    assert "err=true" in errors[2] and "missing" in errors[3]


@pytest.mark.shared
def test_ea_beeding_bridge_level_series(shared_dir):
    path = shared_dir / "benchmarks/flood/timeseries/ea_beeding_bridge_level_15min_2020-10.json"
    result = readings_parse(data=path.read_bytes(), sensor="E9140")
    assert result.format == "ea_telemetry"
    assert len(result.readings) == 480 and not result.rejected
    times = sorted(r.time for r in result.readings)
    assert times[0] == dt.datetime(2020, 10, 8, 16, 15, tzinfo=UTC)
    assert times[-1] == dt.datetime(2020, 10, 13, 16, 0, tzinfo=UTC)
    assert {r.unit for r in result.readings} == {"m"}
    assert min(r.value for r in result.readings) == pytest.approx(-0.933)


@pytest.mark.shared
def test_ea_station_record_gives_code_position_and_typical_range(shared_dir):
    path = shared_dir / "benchmarks/flood/timeseries/ea_beeding_bridge_station_and_telemetry.json"
    result = readings_parse(data=path.read_bytes())
    assert len(result.readings) == 480
    assert [s.code for s in result.stations] == ["E9140"]
    station = result.stations[0]
    assert station.name == "Beeding Bridge"
    assert station.lat == pytest.approx(50.88284, abs=1e-4) and station.lon == pytest.approx(
        -0.30684, abs=1e-4
    )
    # EA: percentile_95 is the bottom of the normal range, percentile_5 its top
    assert (station.typical_low, station.typical_high) == (0.353, 2.84)
    assert station.record_high == pytest.approx(4.007)
    assert station.parameters == ("level",)


@pytest.mark.shared
def test_ea_rainfall_minutes_values(shared_dir):
    path = shared_dir / "benchmarks/flood/timeseries/ea_rainfall_15min_2023-07.json"
    result = readings_parse(data=path.read_bytes(), sensor="RG-EA")
    assert result.format == "ea_telemetry"
    assert len(result.readings) == 481 and not result.rejected
    assert {r.parameter for r in result.readings} == {"rainfall"}
    assert sum(r.value for r in result.readings) == pytest.approx(56.0)
    # both time spellings in the file ("...:00Z" and "...:00.000Z") parse to the same clock
    assert len({r.time for r in result.readings}) == 481


# ----------------------------------------------------------------------------------------------- USGS

RDB = """#
# ---------------------------------- WARNING ----------------------------------------
# Some of the data that you have obtained from this U.S. Geological Survey database
# may not have received Director's approval. Any such data values are qualified
# as provisional and are subject to revision.
#
# File-format description:  http://help.waterdata.usgs.gov/faq/about-tab-delimited-output
#
# Data for the following 1 site(s) are contained in this file
#    USGS 01646500 POTOMAC RIVER NEAR WASH, DC LITTLE FALLS PUMP STA
# -----------------------------------------------------------------------------------
#
# Data provided for site 01646500
#            TS   parameter     Description
#         69928       00060     Discharge, cubic feet per second
#         69929       00065     Gage height, feet
#
# Data-value qualification codes included in this output:
#     P  Provisional data subject to revision.
#
agency_cd\tsite_no\tdatetime\ttz_cd\t69928_00060\t69928_00060_cd\t69929_00065\t69929_00065_cd
5s\t15s\t20d\t6s\t14n\t10s\t14n\t10s
USGS\t01646500\t2024-06-29 00:00\tEDT\t2010\tP\t3.42\tP
USGS\t01646500\t2024-06-29 00:15\tEDT\t2030\tP\t\t
USGS\t01646500\t2024-06-29 00:30\tEDT\tEqp\tP\t3.45\tP
USGS\t01646500\t2024-06-29 00:45\tXYZ\t2040\tP\t3.46\tP
USGS\t01646500\t2024-06-29 01:00\tEDT\t2050\tP
USGS\t01646500\t2024-01-15 12:00\tEST\t1500\tA\t2.10\tA
"""


def test_usgs_rdb_converts_units_and_uses_tz_cd():
    result = readings_parse(data=RDB.encode())
    assert result.format == "usgs_rdb"
    level = sorted((r for r in result.readings if r.parameter == "level"), key=lambda r: r.time)
    flow = sorted((r for r in result.readings if r.parameter == "discharge"), key=lambda r: r.time)
    # EDT is UTC-4, EST UTC-5: both come out in UTC
    assert flow[1].time == dt.datetime(2024, 6, 29, 4, 0, tzinfo=UTC)
    assert flow[0].time == dt.datetime(2024, 1, 15, 17, 0, tzinfo=UTC)
    assert flow[1].value == pytest.approx(2010 * CFS) and flow[1].unit == "m3/s"
    assert level[1].value == pytest.approx(3.42 * FT) and level[1].unit == "m"
    assert {r.sensor for r in result.readings} == {"01646500"}
    # the missing gage height at 00:15 is no error; the discharge on that line is kept
    assert any(r.row == 24 and r.parameter == "discharge" for r in result.readings)
    errors = _by_row(result)
    assert set(errors) == {25, 26, 27}
    assert "equipment malfunction" in errors[25]
    assert any(
        r.row == 25 and r.parameter == "level" for r in result.readings
    )  # good value on a bad line kept
    assert "tz_cd" in errors[26]
    assert "fields" in errors[27]
    station = result.stations[0]
    assert station.code == "01646500" and station.name.startswith("POTOMAC RIVER")
    assert set(station.parameters) == {"level", "discharge"}


def test_usgs_rdb_without_format_line_is_refused():
    broken = "agency_cd\tsite_no\tdatetime\ttz_cd\t1_00065\nUSGS\t1\t2024-06-29 00:00\tEDT\t1.0\n"
    with pytest.raises(ReadingsFormatError, match="column-definition"):
        readings_parse(data=broken.encode(), fmt="usgs_rdb")


WATERML = b"""<?xml version="1.0" encoding="UTF-8"?>
<ns1:timeSeriesResponse xmlns:ns1="http://www.cuahsi.org/waterML/1.1/"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <ns1:queryInfo>
    <ns1:queryURL>http://waterservices.usgs.gov/nwis/iv/format=waterml,1.1&amp;sites=01646500</ns1:queryURL>
  </ns1:queryInfo>
  <ns1:timeSeries name="USGS:01646500:00065:00000">
    <ns1:sourceInfo xsi:type="ns1:SiteInfoType">
      <ns1:siteName>POTOMAC RIVER NEAR WASH, DC LITTLE FALLS PUMP STA</ns1:siteName>
      <ns1:siteCode network="NWIS" agencyCode="USGS">01646500</ns1:siteCode>
      <ns1:timeZoneInfo siteUsesDaylightSavingsTime="true">
        <ns1:defaultTimeZone zoneOffset="-05:00" zoneAbbreviation="EST"/>
        <ns1:daylightSavingsTimeZone zoneOffset="-04:00" zoneAbbreviation="EDT"/>
      </ns1:timeZoneInfo>
      <ns1:geoLocation>
        <ns1:geogLocation xsi:type="ns1:LatLonPointType" srs="EPSG:4326">
          <ns1:latitude>38.94977778</ns1:latitude>
          <ns1:longitude>-77.12763889</ns1:longitude>
        </ns1:geogLocation>
      </ns1:geoLocation>
    </ns1:sourceInfo>
    <ns1:variable ns1:oid="45807202">
      <ns1:variableCode network="NWIS" vocabulary="NWIS:UnitValues" default="true">00065</ns1:variableCode>
      <ns1:variableName>Gage height, ft</ns1:variableName>
      <ns1:unit><ns1:unitCode>ft</ns1:unitCode></ns1:unit>
      <ns1:noDataValue>-999999.0</ns1:noDataValue>
    </ns1:variable>
    <ns1:values>
      <ns1:value qualifiers="P" dateTime="2024-06-29T00:00:00.000-04:00">3.42</ns1:value>
      <ns1:value qualifiers="P" dateTime="2024-06-29T00:15:00.000-04:00">-999999</ns1:value>
      <ns1:value qualifiers="P" dateTime="2024-06-29T00:30:00.000">3.45</ns1:value>
      <ns1:value qualifiers="P" dateTime="2024-06-29T00:45:00.000-04:00">n/a</ns1:value>
    </ns1:values>
  </ns1:timeSeries>
  <ns1:timeSeries name="USGS:01646500:00045:00006">
    <ns1:sourceInfo xsi:type="ns1:SiteInfoType">
      <ns1:siteName>POTOMAC RIVER NEAR WASH, DC LITTLE FALLS PUMP STA</ns1:siteName>
      <ns1:siteCode network="NWIS" agencyCode="USGS">01646500</ns1:siteCode>
    </ns1:sourceInfo>
    <ns1:variable>
      <ns1:variableCode network="NWIS">00045</ns1:variableCode>
      <ns1:unit><ns1:unitCode>in</ns1:unitCode></ns1:unit>
    </ns1:variable>
    <ns1:values>
      <ns1:value dateTime="2024-06-29T00:15:00.000-04:00">0.12</ns1:value>
    </ns1:values>
  </ns1:timeSeries>
  <ns1:timeSeries name="USGS:01646500:00010:00000">
    <ns1:sourceInfo><ns1:siteCode>01646500</ns1:siteCode></ns1:sourceInfo>
    <ns1:variable><ns1:variableCode>00010</ns1:variableCode></ns1:variable>
    <ns1:values><ns1:value dateTime="2024-06-29T00:15:00.000-04:00">24.1</ns1:value></ns1:values>
  </ns1:timeSeries>
</ns1:timeSeriesResponse>
"""


def test_waterml_values_units_station_and_rejections():
    result = readings_parse(data=WATERML)
    assert result.format == "waterml"
    got = sorted((r.parameter, r.time, round(r.value, 6)) for r in result.readings)
    assert got == [
        ("level", dt.datetime(2024, 6, 29, 4, 0, tzinfo=UTC), round(3.42 * FT, 6)),
        ("rainfall", dt.datetime(2024, 6, 29, 4, 15, tzinfo=UTC), round(0.12 * 25.4, 6)),
    ]
    reasons = [e.reason for e in result.rejected]
    assert len(reasons) == 3
    assert any("noDataValue" in r for r in reasons)
    assert any("no UTC offset" in r for r in reasons)
    assert any("not a number" in r for r in reasons)
    assert all(e.row > 20 for e in result.rejected)  # source line numbers of the <value> elements
    assert any("00010" in note for note in result.notes)
    station = next(s for s in result.stations if s.code == "01646500")
    assert station.lat == pytest.approx(38.94977778) and station.lon == pytest.approx(-77.12763889)
    # with the zone given, the offset-less value is accepted
    zoned = readings_parse(data=WATERML, tz="America/New_York")
    assert len(zoned.readings) == 3


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<ns1:timeSeriesResponse xmlns:ns1="http://www.cuahsi.org/waterML/1.1/">
  <ns1:timeSeries><ns1:sourceInfo><ns1:siteName>&lol9;</ns1:siteName></ns1:sourceInfo></ns1:timeSeries>
</ns1:timeSeriesResponse>
"""


def test_billion_laughs_is_rejected_not_expanded():
    with pytest.raises(ReadingsFormatError, match="DTD"):
        readings_parse(data=BILLION_LAUGHS)


def test_external_entity_is_rejected():
    payload = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<ns1:timeSeriesResponse xmlns:ns1="http://www.cuahsi.org/waterML/1.1/">&x;</ns1:timeSeriesResponse>'
    )
    with pytest.raises(ReadingsFormatError, match="refused"):
        readings_parse(data=payload, fmt="waterml")


def test_undeclared_entity_reference_is_rejected():
    with pytest.raises(ReadingsFormatError, match="refused"):
        readings_parse(data=b"<timeSeriesResponse>&lol9;</timeSeriesResponse>")


# ----------------------------------------------------------------------------------------------- detection


def test_format_detection_and_forcing():
    assert readings_format_detect(data=b"sensor,time,value\n") == "csv"
    assert readings_format_detect(data=RDB.encode()) == "usgs_rdb"
    assert readings_format_detect(data=WATERML) == "waterml"
    assert readings_format_detect(data=b'{"items": []}') == "ea_api"
    assert readings_format_detect(data=b'{"readings": []}') == "json"
    assert readings_format_detect(data=b'{"minutes": {"values": []}}') == "ea_telemetry"
    with pytest.raises(ReadingsFormatError, match="unknown format"):
        readings_parse(data=b"x", fmt="xlsx")
    with pytest.raises(ReadingsFormatError, match="broken JSON"):
        readings_parse(data=b'{"readings": [')
    with pytest.raises(ReadingsFormatError, match="UTF-8"):
        readings_parse(data=b"sensor,time,value\n\xff\xfe,1,2\n")
