"""One exit-status rule for the commands that load a file (city_ops.core.exitcodes): 0 nothing rejected, 1 some
rows rejected and the rest kept, 2 the file is unreadable or nothing in it was recognised. The rule itself,
and each command's 2 (its 0 and 1 are tested beside the command: agents/*/tests); `ingest_readings` from
the shell, where the status is what a script sees."""
from __future__ import annotations

import io
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from city_ops.core.exitcodes import EXIT_OK, EXIT_SOME_REJECTED, EXIT_UNREADABLE, ingest_exit_status


def test_the_rule():
    assert ingest_exit_status(recognised=5, rejected=0) == EXIT_OK == 0
    assert ingest_exit_status(recognised=5, rejected=2) == EXIT_SOME_REJECTED == 1
    assert ingest_exit_status(recognised=2, rejected=2) == 1  # every row refused, each with its reason
    assert ingest_exit_status(recognised=0, rejected=0) == EXIT_UNREADABLE == 2


def _status(name: str, *args) -> tuple[int, str]:
    try:
        call_command(name, *args, stdout=io.StringIO(), stderr=io.StringIO())
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, ""


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "content", "extra", "says"), [
    ("ingest_readings", b"sensor,parameter,time,value\n", (), "nothing recognised"),
    ("ingest_readings", b'{"readings": [1, 2', (), "broken JSON"),
    ("ingest_fills", b"sensor_id,at,fill\n", (), "nothing recognised: no fill readings"),
    ("ingest_fills", b"\xff\xfe\x00garbage", (), "not UTF-8"),
    ("ingest_vehicle_positions", b"\x08\x96\x01garbage", (), ""),
    ("import_gtfs", b"not a zip file", (), ""),
    ("import_cap", b"<alert>not CAP</alert>", (), "refused"),
])
def test_an_unreadable_or_empty_file_exits_2(tmp_path, name, content, extra, says):
    path = tmp_path / "input"
    path.write_bytes(content)
    status, message = _status(name, str(path), *extra)
    assert status == 2, message
    assert says in message
    assert _status(name, str(tmp_path / "missing"), *extra)[0] == 2


@pytest.mark.django_db
def test_a_camera_run_without_its_folder_or_track_exits_2(tmp_path):
    track = tmp_path / "track.gpx"
    track.write_text("<gpx/>")
    assert _status("ingest_camera_run", str(tmp_path / "missing"), "--track", str(track))[0] == 2
    assert _status("ingest_camera_run", str(tmp_path), "--track", str(tmp_path / "none.gpx"))[0] == 2
    assert _status("ingest_camera_run", str(tmp_path), "--track", str(track))[0] == 2  # a track without points


def test_ingest_readings_exit_status_reaches_the_shell(db, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("sensor,parameter,time,value\n")
    db = settings.DATABASES["default"]
    env = {"DJANGO_SETTINGS_MODULE": "city_ops.settings.test", "PATH": "/usr/bin:/bin",
           "DATABASE_URL": f"postgis://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    proc = subprocess.run([sys.executable, "manage.py", "ingest_readings", str(empty), "--no-evaluate"],
                          cwd=settings.BASE_DIR, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and "nothing recognised" in proc.stderr, proc.stderr
