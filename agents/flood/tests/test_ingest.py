"""Ingest: the command's JSON (bad rows by row number, duplicates on re-ingest) and exit status, unit conversion to the
sensor's units, time zones, agency formats with --create-sensors, the API's token scope, and one
evaluation per burst of ingests."""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from agents.flood.models import Reading, Sensor, Series
from agents.runtime.models import AgentRun
from city_ops.core.services import api_client_create

pytestmark = pytest.mark.django_db

CFS = 0.028316846592


def _command(path, *args, status: int = 0) -> dict:
    """The command's JSON, checking its exit status (0 nothing rejected, 1 some rows rejected)."""
    out = io.StringIO()
    try:
        call_command("ingest_readings", str(path), "--json", "--no-evaluate", *args, stdout=out)
    except CommandError as exc:
        assert exc.returncode == status, exc
    else:
        assert status == 0
    return json.loads(out.getvalue())


def test_command_reports_bad_rows_by_line_and_counts_duplicates_on_reingest(world, tmp_path):
    path = tmp_path / "gateway.csv"
    path.write_text(
        "sensor,parameter,time,value\n"  # line 1
        "D-1,depth,2026-07-01T00:00:00Z,1.5\n"  # 2 good
        "D-1,depth,not-a-time,2\n"  # 3 bad time
        "NOPE,depth,2026-07-01T00:05:00Z,1\n"  # 4 unknown sensor
        "\n"  # 5 blank: skipped, still counted as a line
        "D-1,depth,2026-07-01T00:10:00Z,abc\n"  # 6 bad value
        "D-1,,2026-07-01T00:15:00+03:00,2.0\n"  # 7 good: D-1's only parameter, offset normalised to UTC
        "L-1,,2026-07-01T00:15:00Z,3.0\n"  # 8 L-1 measures level and discharge: which?
        "L-1,level,2026-07-01T00:20:00,3.0\n"  # 9 no offset and no --tz
        "R-1,depth,2026-07-01T00:20:00Z,3.0\n"  # 10 R-1 is a rain gauge
        "D-1,depth,2026-07-01T00:00:00Z,1.5\n"  # 11 repeated in the file
        "D-1,depth,2099-07-01T00:00:00Z,1.5\n"  # 12 from the future
    )
    first = _command(path, status=1)
    assert first["accepted"] == 2 and first["duplicates"] == 1
    rows = {r["row"]: r["reason"] for r in first["rejected"]}
    assert list(rows) == [3, 4, 6, 8, 9, 10, 12]
    assert "ISO 8601" in rows[3] and "unknown sensor 'NOPE'" in rows[4] and "not a number" in rows[6]
    assert "default parameter" in rows[8] and "no UTC offset" in rows[9] and "does not measure depth" in rows[10]
    assert "future" in rows[12]
    assert sorted(Reading.objects.values_list("time", flat=True)) == [
        dt.datetime(2026, 6, 30, 21, 15, tzinfo=dt.UTC), dt.datetime(2026, 7, 1, tzinfo=dt.UTC)]
    again = _command(path, status=1)
    assert again == {"accepted": 0, "duplicates": 3, "revised": 0, "rejected": first["rejected"], "flagged": []}
    assert Reading.objects.count() == 2
    series = Series.objects.get(sensor__code="D-1")
    assert series.last_time == dt.datetime(2026, 7, 1, tzinfo=dt.UTC) and series.last_value == 1.5


def test_units_are_converted_to_the_sensors_and_naive_times_take_tz(world, tmp_path):
    path = tmp_path / "usgs-ish.csv"
    path.write_text("sensor,parameter,time,value,unit\n"
                    "L-1,level,2026-07-01 08:00,10,ft\n"
                    "L-1,discharge,2026-07-01 08:00,100,cfs\n"
                    "D-1,depth,2026-07-01 08:00,0.3,m\n")
    assert _command(path, "--tz", "Asia/Shanghai")["accepted"] == 3
    values = {r.series.parameter: (r.value, r.time) for r in Reading.objects.select_related("series")}
    at = dt.datetime(2026, 7, 1, 0, 0, tzinfo=dt.UTC)
    assert values["level"] == (pytest.approx(3.048), at)
    assert values["discharge"] == (pytest.approx(100 * CFS), at)
    assert values["depth"] == (pytest.approx(30.0), at)


def test_unreadable_file_is_a_clear_error(world, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"readings": [1, 2')
    with pytest.raises(CommandError, match="broken JSON at line 1") as broken:
        call_command("ingest_readings", str(path))
    with pytest.raises(CommandError, match="cannot read") as missing:
        call_command("ingest_readings", str(tmp_path / "missing.csv"))
    assert broken.value.returncode == missing.value.returncode == 2


def test_ea_api_readings_with_create_sensors(db, tmp_path):
    measure = "http://environment.data.gov.uk/flood-monitoring/id/measures/E72639-level-stage-i-15_min-mASD"
    path = tmp_path / "ea.json"
    path.write_text(json.dumps({"items": [
        {"dateTime": "2026-07-01T00:00:00Z", "measure": measure, "value": 1.25},
        {"dateTime": "2026-07-01T00:15:00Z", "measure": measure, "value": 1.3},
        {"dateTime": "2026-07-01T00:30:00Z", "measure": measure, "value": [1.3, 1.31]},
    ]}))
    refused = _command(path, status=1)
    assert refused["accepted"] == 0 and [r["row"] for r in refused["rejected"]] == [1, 2, 3]
    created = _command(path, "--create-sensors", status=1)
    assert created["accepted"] == 2 and [r["row"] for r in created["rejected"]] == [3]
    sensor = Sensor.objects.get(code="E72639")
    assert sensor.kind == "river" and list(sensor.series.values_list("parameter", "unit")) == [("level", "m")]


@pytest.mark.shared
def test_real_ea_station_file_registers_its_station_with_position(db, shared_dir):
    path = shared_dir / "benchmarks/flood/timeseries/ea_beeding_bridge_station_and_telemetry.json"
    result = _command(path, "--create-sensors")
    assert result["accepted"] > 0
    sensor = Sensor.objects.get(code="E9140")
    assert sensor.name == "Beeding Bridge" and sensor.geom is not None
    assert -1.0 < sensor.geom.x < 0.0 and 50.5 < sensor.geom.y < 51.5  # West Sussex
    series = sensor.series.get(parameter="level")
    assert series.typical_low is not None and series.typical_high > series.typical_low
    assert _command(path)["duplicates"] == result["accepted"]


def test_api_needs_the_readings_scope(world, users):
    _, good = api_client_create(name="gauge-gateway", scopes=["flood.readings:write"])
    _, other = api_client_create(name="bus-feed", scopes=["bus.positions:write"])
    body = "sensor,parameter,time,value\nD-1,depth,2026-07-01T00:00:00Z,4\nX,depth,2026-07-01T00:00:00Z,4\n"
    url = "/api/flood/readings/"
    anon = Client().post(url, body, content_type="text/csv")
    assert anon.status_code in (401, 403)
    wrong = Client().post(url, body, content_type="text/csv", HTTP_AUTHORIZATION=f"Bearer {other}")
    assert wrong.status_code == 403
    ok = Client().post(url, body, content_type="text/csv", HTTP_AUTHORIZATION=f"Bearer {good}")
    assert ok.status_code == 200, ok.content
    assert ok.json() == {"accepted": 1, "duplicates": 0, "revised": 0,
                         "rejected": [{"row": 3, "reason": ok.json()["rejected"][0]["reason"]}], "flagged": []}
    # a gateway may not register sensors; a dispatcher may
    assert Client().post(url + "?create_sensors=1", body, content_type="text/csv",
                         HTTP_AUTHORIZATION=f"Bearer {good}").status_code == 403
    dispatcher = Client()
    dispatcher.force_login(users.dispatcher)
    resp = dispatcher.post(url + "?create_sensors=1", body, content_type="text/csv")
    assert resp.json()["accepted"] == 1 and Sensor.objects.filter(code="X").exists()
    crew = Client()
    crew.force_login(users.crew)
    assert crew.post(url, body, content_type="text/csv").status_code == 403
    assert Client().post(url, "not,a,readings\nfile", content_type="text/csv",
                         HTTP_AUTHORIZATION=f"Bearer {good}").status_code == 400


def test_a_burst_of_ingests_asks_for_one_evaluation(world, django_capture_on_commit_callbacks):
    from agents.flood.services import readings_ingest

    for minute in range(3):
        body = f"sensor,parameter,time,value\nD-1,depth,2026-07-01T00:0{minute}:00Z,1\n".encode()
        with django_capture_on_commit_callbacks(execute=True):
            readings_ingest(data=body)
    runs = AgentRun.objects.filter(agent="flood")
    assert runs.count() == 1
    run = runs.get()
    assert run.status == "pending" and run.trigger == "monitor" and "readings ingested" in run.reason
    # once that run has started, the next ingest asks again
    AgentRun.objects.filter(pk=run.pk).update(status="running")
    with django_capture_on_commit_callbacks(execute=True):
        readings_ingest(data=b"sensor,parameter,time,value\nD-1,depth,2026-07-01T00:09:00Z,1\n")
    assert runs.count() == 2
