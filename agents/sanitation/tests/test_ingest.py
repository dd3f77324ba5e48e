"""Fill readings in: the API (machine token with the sanitation.fills:write scope) and `manage.py ingest_fills`
are idempotent, report bad rows by row/line number and keep the good ones; a broken file is refused clearly."""
from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from agents.sanitation.models import Bin, FillReading
from city_ops.core.services import api_client_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def sensors(demo_city):
    FillReading.objects.all().delete()
    return list(Bin.objects.exclude(sensor_id="").order_by("code")[:3])


def test_api_batch_is_idempotent_and_reports_bad_rows(sensors):
    _, token = api_client_create(name="gateway", scopes=["sanitation.fills:write"])
    _, wrong = api_client_create(name="buses", scopes=["bus.positions:write"])
    a, b, c = sensors
    batch = {"readings": [
        {"sensor_id": a.sensor_id, "at": "2026-03-02T06:00:00+02:00", "fill": 0.42},
        {"sensor_id": b.sensor_id, "at": "2026-03-02T06:00:00", "fill_pct": 55},  # city time, per cent
        {"sensor_id": "FS-NOPE", "at": "2026-03-02T06:00:00+02:00", "fill": 0.3},
        {"bin": c.code, "at": "yesterday", "fill": 0.3},
        {"sensor_id": a.sensor_id, "at": "2026-03-02T07:00:00+02:00", "fill": 3.2},
        {"sensor_id": a.sensor_id, "at": "2026-03-02T06:00:00+02:00", "fill": 0.42},  # repeated in the batch
    ]}
    client = Client()
    url = "/api/sanitation/fills/"
    assert client.post(url, batch, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {wrong}").status_code == 403
    resp = client.post(url, batch, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert resp.status_code == 201
    doc = resp.json()
    assert (doc["received"], doc["created"], doc["duplicates"], doc["rejected"]) == (6, 2, 1, 3)
    errors = {e["row"]: e["message"] for e in doc["errors"]}
    assert set(errors) == {3, 4, 5}
    assert "FS-NOPE" in errors[3] and "ISO 8601" in errors[4] and "outside 0-1.5" in errors[5]
    assert FillReading.objects.count() == 2
    assert FillReading.objects.get(bin=b).fill == pytest.approx(0.55)
    assert FillReading.objects.get(bin=b).at.isoformat() == "2026-03-02T04:00:00+00:00"  # Helsinki is UTC+2
    # The same batch again stores nothing new.
    again = client.post(url, batch, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert (again["created"], again["duplicates"], again["rejected"]) == (0, 3, 3)
    assert FillReading.objects.count() == 2


def test_csv_command_is_idempotent_and_reports_lines(sensors, tmp_path, capsys):
    a, b, _ = sensors
    path = tmp_path / "fills.csv"
    path.write_text(
        "sensor_id,at,fill\n"
        f"{a.sensor_id},2026-03-02T06:00:00+02:00,0.4\n"
        f"{a.sensor_id},2026-03-02T12:00:00+02:00,0.5\n"
        "\n"
        f"{b.sensor_id},2026-03-02T06:00:00+02:00,lots\n"
        f"{b.sensor_id},2026-03-02T12:00:00+02:00,0.61\n"
        f",2026-03-02T12:00:00+02:00,0.1\n"
    )
    with pytest.raises(CommandError, match="2 rows rejected") as some:
        call_command("ingest_fills", str(path), "--json")
    assert some.value.returncode == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["created"], doc["duplicates"], doc["rejected"]) == (3, 0, 2)
    assert {e["row"]: e["message"] for e in doc["errors"]} == {
        5: "fill level 'lots' is not a number", 7: "no bin ('sensor_id' or 'bin')"}
    with pytest.raises(CommandError):
        call_command("ingest_fills", str(path), "--json")
    doc = json.loads(capsys.readouterr().out)
    assert (doc["created"], doc["duplicates"]) == (0, 3)
    assert FillReading.objects.count() == 3
    # A clean file exits normally.
    good = tmp_path / "good.csv"
    good.write_text(f"bin,at,fill_pct\n{a.code},2026-03-03T06:00:00+02:00,70\n")
    call_command("ingest_fills", str(good), "--json")
    assert json.loads(capsys.readouterr().out)["created"] == 1


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"time,level\n2026-03-02,0.4\n", "lacks sensor_id"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
])
def test_broken_files_are_refused_clearly(db, tmp_path, capsys, content, message):
    path = tmp_path / "broken.csv"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message) as err:
        call_command("ingest_fills", str(path), "--json")
    assert err.value.returncode == 2
    assert message in json.loads(capsys.readouterr().out)["error"]
    with pytest.raises(CommandError, match="cannot read"):
        call_command("ingest_fills", str(tmp_path / "missing.csv"))
