"""`manage.py detect` (the vision CLI's JSON through Django settings), `roads_crew_token`, and the agent's
daily run through the runtime's `run_agent` command."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from city_ops.core.models import AuditEntry

from .conftest import photo_bytes

pytestmark = pytest.mark.usefixtures("tiny_model")


def _detect(*args) -> tuple[list[dict], str, int]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("detect", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = int(exc.code)
    return (json.loads(out.getvalue()) if "--json" in args else out.getvalue()), err.getvalue(), code


def test_detect_json_sorted_with_errors_reported(tmp_path):
    (tmp_path / "b.jpg").write_bytes(photo_bytes(cell=(1, 2)))
    (tmp_path / "a.png").write_bytes(photo_bytes(cell=(2, 1), fmt="PNG"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.jpg").write_bytes(b"not an image")
    records, err, code = _detect(str(tmp_path), "--json")
    assert [r["image"] for r in records] == sorted(str(p) for p in (tmp_path / "a.png", tmp_path / "b.jpg",
                                                                    tmp_path / "sub" / "c.jpg"))
    assert code == 1 and "could not be read" in err
    a, b, c = records
    assert a["model"] == "grid.onnx" and [d["class"] for d in a["detections"]] == ["pothole"]
    assert b["detections"][0]["box"] == pytest.approx([160, 240, 320, 400], abs=1)
    assert a["detections"][0]["box"] != b["detections"][0]["box"]
    assert set(c) == {"image", "error"}


def test_detect_conf_and_bad_arguments(tmp_path):
    (tmp_path / "x.jpg").write_bytes(photo_bytes())
    records, _, code = _detect(str(tmp_path / "x.jpg"), "--json", "--conf", "0.999999")
    # the tiny model's confidence for a fully dark cell is 1.0; grey cells score 0
    assert code == 0 and len(records[0]["detections"]) == 1
    with pytest.raises(CommandError, match="between 0 and 1"):
        call_command("detect", str(tmp_path), "--conf", "2")
    with pytest.raises(CommandError, match="model not found"):
        call_command("detect", str(tmp_path), "--model", str(tmp_path / "none.onnx"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommandError, match="no image files"):
        call_command("detect", str(tmp_path / "empty"), stdout=io.StringIO())


def test_crew_token_command(users):
    out = io.StringIO()
    call_command("roads_crew_token", users.crew.username, stdout=out, stderr=io.StringIO())
    key = out.getvalue().strip()
    again = io.StringIO()
    call_command("roads_crew_token", users.crew.username, stdout=again, stderr=io.StringIO())
    assert len(key) == 40 and again.getvalue().strip() == key
    with pytest.raises(CommandError):
        call_command("roads_crew_token", "nobody")
    reset = io.StringIO()
    call_command("roads_crew_token", users.crew.username, "--reset", stdout=reset, stderr=io.StringIO())
    assert len(reset.getvalue().strip()) == 40 and reset.getvalue().strip() != key
    # a new key is audited (the key itself never is); showing the existing one is not a change
    entries = AuditEntry.objects.filter(action__startswith="roads.crew_token.", object_id=str(users.crew.pk))
    assert list(entries.order_by("id").values_list("action", flat=True)) == [
        "roads.crew_token.created", "roads.crew_token.reset"]
    assert all(key not in str(e.changes) for e in entries)
