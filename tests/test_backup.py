"""`make backup` / `make restore` (deploy/local/backup.sh) round-trip a real PostGIS database and the media
folder. The script runs against a scratch database created for the test in the local cluster, never the
demo database or the test database, and the scratch database is dropped afterwards."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "deploy" / "local" / "backup.sh"


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))
    return found[-1].parent if found else None


@pytest.fixture
def scratch_db():
    """A database of its own (name unique to this process) with PostGIS and a table of rows."""
    if _pg_bin() is None or shutil.which("bash") is None:
        pytest.fail("pg_dump is not installed: `make test` installs PostgreSQL's client tools")
    db = settings.DATABASES["default"]
    conninfo = {"host": db["HOST"], "port": db["PORT"], "user": db["USER"], "password": db["PASSWORD"]}
    name = f"cityops_backup_test_{os.getpid()}"
    assert name not in (db["NAME"], db.get("TEST", {}).get("NAME"))
    with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"postgis://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{name}"
    try:
        with psycopg.connect(dbname=name, **conninfo) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
            conn.execute("CREATE TABLE gauge (id serial PRIMARY KEY, name text NOT NULL, "
                         "geom geometry(Point, 4326) NOT NULL, level_m double precision)")
            conn.execute("INSERT INTO gauge (name, geom, level_m) SELECT 'gauge ' || i, "
                         "ST_SetSRID(ST_MakePoint(24.9 + i / 1000.0, 60.16), 4326), i * 0.1 "
                         "FROM generate_series(1, 250) AS i")
        yield {"url": url, "name": name, "conninfo": {**conninfo, "dbname": name}}
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **conninfo) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def _rows(conninfo) -> list[tuple]:
    with psycopg.connect(**conninfo) as conn:
        return conn.execute("SELECT id, name, ST_AsText(geom), level_m FROM gauge ORDER BY id").fetchall()


def test_backup_and_restore_round_trip(scratch_db, tmp_path):
    media = tmp_path / "media"
    (media / "workorders" / "2026" / "07").mkdir(parents=True)
    photo = media / "workorders" / "2026" / "07" / "pothole.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg, but bytes to get back")
    env = {**os.environ, "DATABASE_URL": scratch_db["url"], "BACKUP_DIR": str(tmp_path / "backups"),
           "MEDIA_ROOT": str(media)}
    before = _rows(scratch_db["conninfo"])
    assert len(before) == 250

    done = _run("backup", env=env)
    assert done.returncode == 0, done.stderr
    dump = Path(done.stdout.strip().splitlines()[-1])
    assert dump.parent == tmp_path / "backups" and dump.suffix == ".dump" and dump.stat().st_size > 0
    assert dump.with_name(dump.name.replace(".dump", ".media.tar.gz")).exists()
    # The dump is of the scratch database named in the environment, not the checkout's own database.
    listing = subprocess.run([str(_pg_bin() / "pg_restore"), "--list", str(dump)], capture_output=True,
                             text=True, check=True).stdout
    assert "TABLE public gauge" in listing and "django_migrations" not in listing

    # Lose data: rows deleted, one changed, the photo gone.
    with psycopg.connect(**scratch_db["conninfo"]) as conn:
        conn.execute("DELETE FROM gauge WHERE id > 100")
        conn.execute("UPDATE gauge SET level_m = -1 WHERE id = 1")
    photo.unlink()
    assert len(_rows(scratch_db["conninfo"])) == 100

    done = _run("restore", str(dump), env=env)
    assert done.returncode == 0, done.stderr
    assert _rows(scratch_db["conninfo"]) == before
    assert photo.read_bytes().startswith(b"\xff\xd8\xff\xe0 not really")


def test_restore_of_a_broken_dump_changes_nothing(scratch_db, tmp_path):
    env = {**os.environ, "DATABASE_URL": scratch_db["url"], "BACKUP_DIR": str(tmp_path / "backups"),
           "MEDIA_ROOT": str(tmp_path / "media")}
    done = _run("backup", env=env)
    assert done.returncode == 0, done.stderr
    dump = Path(done.stdout.strip().splitlines()[-1])
    broken = tmp_path / "broken.dump"
    broken.write_bytes(dump.read_bytes()[:-64])  # a copy cut off in its last table's data
    with psycopg.connect(**scratch_db["conninfo"]) as conn:
        conn.execute("DELETE FROM gauge WHERE id > 10")
    failed = _run("restore", str(broken), env=env)
    assert failed.returncode != 0
    assert len(_rows(scratch_db["conninfo"])) == 10  # as before the attempt: not half-restored, not emptied


def test_usage_errors_are_clear(tmp_path):
    env = {**os.environ, "DATABASE_URL": "postgis://nobody@127.0.0.1:1/none"}
    out = _run("restore", str(tmp_path / "missing.dump"), env=env)
    assert out.returncode == 1 and "no such file" in out.stderr
    out = _run("bogus", env=env)
    assert out.returncode == 2 and "usage" in out.stderr
