"""Drills: `replay_readings` runs a file through the live loop tick by tick; the alert log is the same on
every run and whatever the tick, equals one replay through the core, and leaves the live alerts alone."""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command

from agents.flood.domain import readings_parse, readings_replay
from agents.flood.models import Alert, AlertEvent, Reading
from agents.flood.selectors import evaluation_setup

from .conftest import csv_text, series_rows
from .test_agent_rules import FLOOD, STORM

pytestmark = pytest.mark.django_db


def _drill(path, *args) -> dict:
    out = io.StringIO()
    call_command("replay_readings", str(path), "--json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def storm_file(world, tmp_path):
    rows = (series_rows("R-1", "rainfall", STORM) + series_rows("L-1", "level", [3.0 + 0.1 * i for i in range(36)])
            + series_rows("D-1", "depth", FLOOD, minutes=5) + [("GHOST", "depth", dt.datetime(2026, 7, 1, tzinfo=dt.UTC), 9)])
    path = tmp_path / "storm.csv"
    path.write_text(csv_text(rows))
    return path


def test_drill_log_is_deterministic_and_independent_of_the_tick(storm_file):
    first = _drill(storm_file, "--speed", "0")
    second = _drill(storm_file, "--speed", "0")
    coarse = _drill(storm_file, "--speed", "0", "--step-min", "60")
    assert first["events"] == second["events"] == coarse["events"]
    assert first["ticks"] > coarse["ticks"] > 1
    kinds = {e["kind"] for e in first["events"]}
    assert {"raised", "escalated", "closure_requested", "closure_lift_proposed", "closure_lifted", "cleared"} <= kinds
    lifted = next(e for e in first["events"] if e["kind"] == "closure_lifted")
    proposed = next(e for e in first["events"] if e["kind"] == "closure_lift_proposed")
    assert lifted["actor"] == "drill:auto-confirm"
    assert dt.datetime.fromisoformat(lifted["time"]) - dt.datetime.fromisoformat(proposed["time"]) == \
        dt.timedelta(minutes=10)
    assert first["skipped"] == {"not a sensor of this city (or in no zone)": 1}
    # the same log one replay through the core gives
    setup = evaluation_setup()
    parsed = readings_parse(data=storm_file.read_bytes())
    whole = readings_replay(readings=parsed.readings, sensors=setup.configs,
                            auto_confirm_after=dt.timedelta(minutes=10), auto_actor="drill:auto-confirm")
    assert first["events"] == whole.event_log()
    # a drill never touches the live state
    assert not Alert.objects.exists() and not AlertEvent.objects.exists() and not Reading.objects.exists()


def test_recorded_confirmations_replace_the_automatic_ones(storm_file, tmp_path):
    auto = _drill(storm_file)
    proposed = next(e for e in auto["events"] if e["kind"] == "closure_lift_proposed")
    inputs = tmp_path / "inputs.json"
    at = dt.datetime.fromisoformat(proposed["time"]) + dt.timedelta(minutes=25)
    inputs.write_text(json.dumps([{"time": at.isoformat(), "kind": "closure_lift_confirm", "zone": "UND",
                                   "actor": "wang.fang"}]))
    recorded = _drill(storm_file, "--inputs", str(inputs), "--auto-confirm-min", "-1")
    lifted = next(e for e in recorded["events"] if e["kind"] == "closure_lifted")
    assert lifted["actor"] == "wang.fang" and lifted["time"] == at.isoformat()


def test_drill_paces_at_the_requested_speed(storm_file, monkeypatch):
    from agents.flood.services import drill_replay

    slept = []
    result = drill_replay(data=storm_file.read_bytes(), speed=60, step=dt.timedelta(minutes=15), sleep=slept.append)
    assert slept and set(slept) == {15.0}  # 15 min of readings per 15 s at 60 x
    assert len(slept) == result.ticks - 1


def test_drill_refuses_bad_arguments(storm_file):
    with pytest.raises(CommandError, match="--speed"):
        _drill(storm_file, "--speed", "-2")
    with pytest.raises(CommandError, match="cannot read"):
        _drill(storm_file.parent / "nope.csv")
