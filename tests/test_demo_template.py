"""The demo city template (tests/demo_template.py) on a small loader: what it keeps, what it leaves, and a copy
that replaces whatever the tables held."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.gis.geos import Point

from city_ops.city.models import Place
from tests.demo_template import DemoTemplate, demo_template_once, demo_template_restore, demo_template_take
from tests.fixtures import PATIENCE_S, REPO


def _place(name: str) -> Place:
    return Place.objects.create(name=name, kind="landmark", geom=Point(24.94, 60.17, srid=4326))


def _load() -> None:
    for name in ("Market Square", "Esplanadi", "Design Museum"):
        _place(name)


def _names() -> list[str]:
    return sorted(Place.objects.values_list("name", flat=True))


def test_the_template_holds_the_loaders_rows_and_the_database_is_left_as_it_was(db):
    _place("Left by an earlier test")
    template = demo_template_take(_load)
    assert _names() == ["Left by an earlier test"]  # the load was rolled back
    assert list(template.tables) == ["city_place"]

    demo_template_restore(template)
    assert _names() == ["Design Museum", "Esplanadi", "Market Square"]  # the loader's rows alone
    assert _place("New").pk > max(Place.objects.exclude(name="New").values_list("pk", flat=True))

    demo_template_restore(template)  # again, over a table that holds rows written in this transaction
    assert _names() == ["Design Museum", "Esplanadi", "Market Square"]


def _blocked_on(lock: Path, proc: subprocess.Popen) -> None:
    """Wait until `proc` waits for the lock on `lock` (a blocked request shows in /proc/locks with `->`)."""
    inode = f":{lock.stat().st_ino} "
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if any("->" in line and inode in line for line in Path("/proc/locks").read_text().splitlines()):
            return
        time.sleep(0.05)
    raise AssertionError("the other worker never waited for the lock")


def test_once_per_run_the_first_worker_takes_the_template_and_the_other_reads_it(tmp_path):
    """Two pytest-xdist workers of a run, the second started while the first takes the template (it holds the
    lock): the load runs once, and the second gets what the first took."""
    shared = tmp_path / "demo_city.template"
    template = DemoTemplate(tables={"city_place": b"PGCOPY rows"}, sequences={"city_place": "seq"},
                            media={"roads/a.jpg": b"jpeg"})
    # The other worker, a separate process: it asks while this one holds the lock, so it waits, then reads.
    waiter = ("import sys; from pathlib import Path; from tests.demo_template import demo_template_once; "
              "t = demo_template_once(lambda: sys.exit('loaded a second time'), shared=Path(sys.argv[1])); "
              "print(t.media['roads/a.jpg'].decode(), t.tables['city_place'].decode())")
    other = None

    def take() -> DemoTemplate:
        nonlocal other
        other = subprocess.Popen([sys.executable, "-c", waiter, str(shared)], cwd=REPO, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _blocked_on(shared.with_name(shared.name + ".lock"), other)
        return template

    assert demo_template_once(take, shared=shared) == template
    out, err = other.communicate(timeout=60)
    assert other.returncode == 0, err
    assert out.split() == ["jpeg", "PGCOPY", "rows"]
    assert demo_template_once(lambda: pytest.fail("taken again"), shared=shared) == template


def test_a_take_that_fails_leaves_nothing_for_the_other_worker(tmp_path):
    shared = tmp_path / "demo_city.template"

    def broken() -> DemoTemplate:
        raise RuntimeError("the loader failed")

    with pytest.raises(RuntimeError, match="the loader failed"):
        demo_template_once(broken, shared=shared)
    assert not shared.exists()  # the other worker takes it itself (and fails with the reason), never half a file
    template = DemoTemplate(tables={}, sequences={}, media={})
    assert demo_template_once(lambda: template, shared=shared) == template
