"""Readings at the edges, through the ingest and the live evaluation on the real database: impossible values are
stored flagged and drive no rule, readings before a sensor's installation are refused, a changed value is a
revision (old value kept, the rules judge the series again), USGS daily values become daily series that are
charted and judged only where the series' rule names their statistic, and `ingest_readings` exits 0/1/2 by the
shared rule."""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from agents.flood.models import Alert, Reading, ReadingRevision, Sensor, Series
from agents.flood.selectors import evaluation_setup, hydrograph

from .conftest import T0, csv_text, evaluate, ingest, series_rows
from .test_domain_edges import RDB_DAILY

pytestmark = pytest.mark.django_db


def _qc(code: str, parameter: str) -> list[tuple[float, int]]:
    return list(Reading.objects.filter(series__sensor__code=code, series__parameter=parameter)
                .order_by("time").values_list("value", "qc"))


def test_impossible_values_are_stored_flagged_and_raise_nothing(world):
    rows = (series_rows("R-1", "rainfall", [1.0, -5.0, 1e20, 2.0])
            + series_rows("L-1", "level", [3.0, -1e15, 3.1])
            + series_rows("D-1", "depth", [2.0, 2.0, 1e6, 2.0], minutes=1))
    result = ingest(rows)
    assert result.accepted == 11 and result.rejected == []
    reasons = [e.reason for e in result.flagged]
    assert len(reasons) == 4
    assert any("-5 is below the rainfall limit 0" in r for r in reasons)
    assert any("above the world record" in r for r in reasons)
    assert any("-1e+15 is below the level limit" in r for r in reasons)
    impossible = int(Reading.QC.IMPOSSIBLE)
    assert _qc("R-1", "rainfall") == [(1.0, 0), (-5.0, impossible), (1e20, impossible), (2.0, 0)]
    assert Series.objects.get(sensor__code="D-1").last_value == 2.0
    evaluate()
    assert not Alert.objects.exists()
    # the evaluation's own QC pass leaves the ingest's flag alone
    assert _qc("D-1", "depth") == [(2.0, 0), (2.0, 0), (1e6, impossible), (2.0, 0)]


def test_a_sensors_measuring_range_bounds_what_it_can_report(world):
    Series.objects.filter(sensor__code="D-1").update(range_low=0.0, range_high=30.0)
    result = ingest(series_rows("D-1", "depth", [10.0, 40.0, -1.0], minutes=1))
    assert [e.reason.split(": ", 1)[1] for e in result.flagged] == [
        "40 is above the depth limit 30", "-1 is below the depth limit 0"]


def test_rain_is_judged_against_the_record_for_the_interval_since_the_series_last_reading(world):
    ingest(series_rows("R-1", "rainfall", [1.0]))
    later = ingest([("R-1", "rainfall", T0 + dt.timedelta(minutes=15), 200.0),
                    ("R-1", "rainfall", T0 + dt.timedelta(hours=3), 200.0)])
    # 200 mm in the 15 minutes since the stored reading: impossible; in the next 2 h 45 min: a record storm
    assert [e.row for e in later.flagged] == [2] and "15 min" in later.flagged[0].reason


def test_readings_before_the_sensors_installation_are_rejected(world):
    Sensor.objects.filter(code="D-1").update(installed_on=dt.date(2020, 1, 1))
    result = ingest([("D-1", "depth", dt.datetime(1899, 12, 31, tzinfo=dt.UTC), 3.0),
                     ("D-1", "depth", T0, 3.0)])
    assert result.accepted == 1
    assert [(e.row, e.reason) for e in result.rejected] == [
        (2, "time 1899-12-31T00:00:00+00:00 is before the sensor was installed (2020-01-01)")]
    # without an installation day there is no lower bound (USGS daily values go back to the 1800s)
    assert ingest([("L-1", "level", dt.datetime(1899, 12, 31, tzinfo=dt.UTC), 3.0)]).accepted == 1


def test_a_changed_value_is_a_revision_and_the_old_one_is_kept(world):
    first = ingest(series_rows("D-1", "depth", [1.5, 2.0], minutes=1))
    assert (first.accepted, first.duplicates, first.revised) == (2, 0, 0)
    again = ingest(series_rows("D-1", "depth", [1.5, 2.5], minutes=1))
    assert (again.accepted, again.duplicates, again.revised) == (0, 1, 1)
    assert _qc("D-1", "depth") == [(1.5, 0), (2.5, 0)]
    kept = ReadingRevision.objects.get()
    assert (kept.time, kept.value, kept.qc) == (T0 + dt.timedelta(minutes=1), 2.0, 0) and kept.replaced_at
    assert Series.objects.get(sensor__code="D-1").last_value == 2.5
    same = ingest(series_rows("D-1", "depth", [1.5, 2.5], minutes=1))
    assert (same.accepted, same.duplicates, same.revised) == (0, 2, 0)
    # a revision to an impossible value takes the flag; the replaced value stays on record
    ingest(series_rows("D-1", "depth", [1.5, 1e6], minutes=1))
    assert _qc("D-1", "depth")[1] == (1e6, int(Reading.QC.IMPOSSIBLE))
    assert list(ReadingRevision.objects.order_by("id").values_list("value", flat=True)) == [2.0, 2.5]


def test_a_revised_reading_already_judged_is_judged_again(world):
    calm = [2.0, 2.5, 3.0, 3.5, 4.0, 4.5]
    ingest(series_rows("D-1", "depth", calm, minutes=1))
    evaluate()  # this worker keeps its run's carry: the revision must not be judged from the old values
    series = Series.objects.get(sensor__code="D-1")
    assert series.evaluated_until == T0 + dt.timedelta(minutes=5) and not Alert.objects.exists()
    revised = ingest(series_rows("D-1", "depth", [*calm[:3], 8.0, 12.0, 16.0], minutes=1))
    assert revised.revised == 3
    assert Series.objects.get(pk=series.pk).evaluated_until < T0 + dt.timedelta(minutes=3)
    evaluate()
    alert = Alert.objects.get()
    assert alert.zone.code == "UND" and alert.level_label == "blue"  # 16 cm: at the caution depth (15)
    assert Series.objects.get(pk=series.pk).evaluated_until == T0 + dt.timedelta(minutes=5)


def test_usgs_daily_values_become_daily_series_charted_and_not_judged_by_default(db, tmp_path):
    from agents.flood.services import readings_ingest

    result = readings_ingest(data=RDB_DAILY.encode(), create_sensors=True, evaluate=False)
    assert (result.accepted, len(result.rejected)) == (7, 3)
    sensor = Sensor.objects.get(code="01646500")
    assert sorted(sensor.series.values_list("parameter", "statistic")) == [("discharge", "00003"), ("level", "00001")]
    # an instantaneous series of the same parameter is another series
    Series.objects.create(sensor=sensor, parameter="discharge", unit="m3/s")
    again = readings_ingest(data=RDB_DAILY.encode(), evaluate=False)
    assert (again.accepted, again.duplicates) == (0, 7)
    assert not any(c.sensor.startswith("01646500") for c in evaluation_setup().configs)
    chart = hydrograph(sensor=sensor)
    daily = [s for s in chart["series"] if s["statistic"] == "00003"][0]
    assert daily["label"] == "discharge, daily mean" and len(daily["points"]) == 3
    assert daily["rule_statistic"] == ""  # no rule names the daily mean: stored and charted only
    assert chart["series"][0]["statistic"] == ""  # instantaneous first


STAGE_DAY = dt.datetime(2024, 1, 3, tzinfo=dt.UTC)


def _daily_stage(days: dict[str, float]) -> bytes:
    """An RDB file of a station's daily mean gage height (feet) on the given days."""
    head = ("# US Geological Survey\n#    USGS 01646500 POTOMAC RIVER NEAR WASH, DC LITTLE FALLS PUMP STA\n"
            "agency_cd\tsite_no\tdatetime\t149298_00065_00003\t149298_00065_00003_cd\n5s\t15s\t20d\t14n\t10s\n")
    return (head + "".join(f"USGS\t01646500\t{day}\t{feet}\tP\n" for day, feet in days.items())).encode()


# 19 ft of daily mean on STAGE_DAY is 5.79 m: above the river reach's warning level (5 m), below orange (6 m)
CROSSING = _daily_stage({"2024-01-03": 19})


def _daily_stage_station(world) -> tuple[Series, Series]:
    """A station on the river reach with a daily mean series (two calm days, 10 and 12 ft) and an
    instantaneous one beside it, both with the reach's thresholds, and the instantaneous gage height of the
    next day and a quarter judged already, well below the warning level: the live order, where an agency's
    daily mean of a day arrives the day after."""
    from agents.flood.services import readings_ingest

    calm = readings_ingest(data=_daily_stage({"2024-01-01": 10, "2024-01-02": 12}), create_sensors=True,
                           evaluate=False)
    assert calm.accepted == 2
    sensor = Sensor.objects.get(code="01646500")
    world.zones["RIV"].assigned_sensors.add(sensor)
    daily = Series.objects.get(sensor=sensor, statistic="00003")
    Series.objects.filter(pk=daily.pk).update(warning_level=5.0, guaranteed_level=7.0)
    Series.objects.create(sensor=sensor, parameter="level", unit="m", warning_level=5.0, guaranteed_level=7.0)
    ingest(series_rows("01646500", "level", [3.0 + 0.01 * (i % 5) for i in range(31)], minutes=60,
                       start=STAGE_DAY))
    return Series.objects.get(pk=daily.pk), Series.objects.get(sensor=sensor, statistic="")


def _daily_crossing_arrives() -> None:
    from agents.flood.services import readings_ingest

    assert readings_ingest(data=CROSSING, evaluate=False).accepted == 1
    evaluate()


def test_an_instantaneous_rule_ignores_the_daily_series(world):
    daily, instantaneous = _daily_stage_station(world)
    names = {c.sensor for c in evaluation_setup().configs}
    assert "01646500" in names and "01646500/00003" not in names
    evaluate()
    _daily_crossing_arrives()
    # 5.79 m of daily mean is above the warning level, but the series' rule names no statistic
    assert not Alert.objects.exists()
    assert Sensor.objects.get(code="01646500").status == Sensor.Status.ACTIVE
    # a rule can name only the series' own statistic: another would judge nothing
    instantaneous.rule_statistic = "00003"
    with pytest.raises(ValidationError, match="only this series' own statistic"):
        instantaneous.full_clean()


def test_the_sensors_admin_page_shows_each_series_rule_statistic(world, client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root-rulestat", "r@example.org", "pw-123-x"))
    page = client.get(f"/admin/agent_flood/sensor/{world.sensors['L-1'].pk}/change/")
    assert page.status_code == 200
    assert b'name="series-0-rule_statistic"' in page.content and b"the statistic the rule judges" in page.content


def test_a_daily_series_raises_an_alert_where_its_rule_names_its_statistic(world):
    daily, _ = _daily_stage_station(world)
    daily.rule_statistic = "00003"
    daily.full_clean()
    daily.save()
    names = {c.sensor for c in evaluation_setup().configs}
    assert {"01646500", "01646500/00003"} <= names  # both watched, each under its own name
    evaluate()
    assert not Alert.objects.exists()
    _daily_crossing_arrives()  # 30 hours behind the instantaneous readings, as daily values come
    alert = Alert.objects.get()
    assert (alert.zone.code, alert.hazard, alert.level_label, alert.rule) == (
        "RIV", "river_flood", "yellow", "level>=warning")
    # raised at the daily mean's own time, on its sensor, citing the daily reading (not the instantaneous one
    # of the same time); one value a day is on time, so the sensor is not called silent
    assert alert.raised_at == STAGE_DAY and alert.sensor.code == "01646500"
    assert alert.evidence == [f"01646500/00003:level:{STAGE_DAY.isoformat()}"]
    assert Sensor.objects.get(code="01646500").status == Sensor.Status.ACTIVE


def _status(path, *args) -> tuple[int, dict | None]:
    out = io.StringIO()
    try:
        call_command("ingest_readings", str(path), "--json", "--no-evaluate", *args, stdout=out,
                     stderr=io.StringIO())
    except CommandError as exc:
        return exc.returncode, json.loads(out.getvalue()) if out.getvalue() else None
    return 0, json.loads(out.getvalue())


def test_ingest_readings_exit_status(world, tmp_path):
    clean = tmp_path / "clean.csv"
    clean.write_text(csv_text(series_rows("D-1", "depth", [1.0, 2.0])))
    assert _status(clean)[0] == 0
    assert _status(clean) == (0, {"accepted": 0, "duplicates": 2, "revised": 0, "rejected": [], "flagged": []})
    some = tmp_path / "some.csv"
    some.write_text(csv_text(series_rows("D-1", "depth", [3.0], start=T0 + dt.timedelta(hours=1)))
                    + "D-1,depth,yesterday,1\n")
    status, doc = _status(some)
    assert status == 1 and doc["accepted"] == 1 and [r["row"] for r in doc["rejected"]] == [3]
    empty = tmp_path / "empty.csv"
    empty.write_text("sensor,parameter,time,value\n")
    with pytest.raises(CommandError, match="nothing recognised: no readings in .*empty.csv") as err:
        call_command("ingest_readings", str(empty), stdout=io.StringIO(), stderr=io.StringIO())
    assert err.value.returncode == 2
    unread = tmp_path / "temperature.rdb"
    unread.write_text("agency_cd\tsite_no\tdatetime\t1_00010\n5s\t15s\t20d\t14n\nUSGS\t1\t2024-01-01\t4\n")
    with pytest.raises(CommandError, match="no value column .* the value columns are 1_00010") as err:
        call_command("ingest_readings", str(unread), stdout=io.StringIO(), stderr=io.StringIO())
    assert err.value.returncode == 2
    temperature = tmp_path / "temperature.xml"
    temperature.write_text(
        '<timeSeriesResponse xmlns="http://www.cuahsi.org/waterML/1.1/"><timeSeries name="USGS:1:00010:00000">'
        '<sourceInfo><siteCode>1</siteCode></sourceInfo><variable><variableCode>00010</variableCode></variable>'
        '<values><value dateTime="2024-01-01T00:00:00Z">4.5</value></values></timeSeries></timeSeriesResponse>')
    with pytest.raises(CommandError, match="variable 00010 at site 1 is not a flood parameter") as err:
        call_command("ingest_readings", str(temperature), stdout=io.StringIO(), stderr=io.StringIO())
    assert err.value.returncode == 2


def test_the_api_answers_revised_and_refuses_a_body_with_no_reading(world, users):
    from django.test import Client

    client = Client()
    client.force_login(users.dispatcher)
    url = "/api/flood/readings/"
    body = csv_text(series_rows("D-1", "depth", [1.0]))
    assert client.post(url, body, content_type="text/csv").json()["revised"] == 0
    changed = client.post(url, body.replace(",1.0", ",1.25"), content_type="text/csv").json()
    assert (changed["accepted"], changed["duplicates"], changed["revised"]) == (0, 0, 1)
    empty = client.post(url, "sensor,parameter,time,value\n", content_type="text/csv")
    assert empty.status_code == 400 and "no readings" in empty.json()["detail"]


def test_a_run_does_not_move_a_mark_a_revision_moved_back_meanwhile(world):
    from agents.flood.selectors import EPOCH
    from agents.flood.services.evaluation import _marks_store

    def us(t: dt.datetime) -> int:
        return (t - EPOCH) // dt.timedelta(microseconds=1)

    series = Series.objects.get(sensor__code="D-1")
    read, revised, judged = T0, T0 - dt.timedelta(minutes=5), T0 + dt.timedelta(minutes=10)
    Series.objects.filter(pk=series.pk).update(evaluated_until=revised)  # what the ingest did meanwhile
    _marks_store(marks_us={series.pk: us(judged)}, read_us={series.pk: us(read)})
    assert Series.objects.get(pk=series.pk).evaluated_until == revised  # the next run judges from there
    _marks_store(marks_us={series.pk: us(judged)}, read_us={series.pk: us(revised)})
    assert Series.objects.get(pk=series.pk).evaluated_until == judged
