"""Two test runs on one machine (CITY_OPS_TEST_DB_SUFFIX) never share a database, a Celery queue or a cache key,
even when their suffixes pick the same Redis database number."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib

import pytest
from kombu import Connection

from tests.fixtures import REPO

# Two suffixes whose Redis database numbers collide (7 + crc32 % 9): the prefixes must still keep them apart.
SUFFIXES = ("fuzz", "base")


def _test_settings(suffix: str, xdist_worker: str = "") -> dict:
    """The test settings as a run with this suffix (and, under pytest-xdist, this worker of the run) sees
    them (a fresh interpreter: settings load once)."""
    code = ("import json; from django.conf import settings as s; print(json.dumps({'db': s.DATABASES['default']"
            "['TEST']['NAME'], 'broker': s.CELERY_BROKER_URL, 'options': s.CELERY_BROKER_TRANSPORT_OPTIONS, "
            "'cache': s.CACHES['default'], 'keys': s.REDIS_KEY_PREFIX}))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "city_ops.settings.test", "CITY_OPS_TEST_DB_SUFFIX": suffix}
    env.pop("PYTEST_XDIST_WORKER", None)
    if xdist_worker:
        env["PYTEST_XDIST_WORKER"] = xdist_worker
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_suffixes_sharing_a_redis_database_get_their_own_keys():
    a, b = (_test_settings(s) for s in SUFFIXES)
    assert len({7 + zlib.crc32(s.encode()) % 9 for s in SUFFIXES}) == 1  # the case the prefixes are for
    assert a["broker"] == b["broker"]
    assert a["db"] != b["db"]
    assert a["options"]["global_keyprefix"] != b["options"]["global_keyprefix"]
    assert a["cache"]["KEY_PREFIX"] != b["cache"]["KEY_PREFIX"]
    assert a["keys"] != b["keys"]  # metrics and worker heartbeats
    assert a["options"]["visibility_timeout"] == 3600  # the base options are kept


def test_a_message_sent_by_one_run_is_not_in_the_other_runs_queue():
    """On the real Redis: one run's message waits in its own queue; the other run's same-named queue is empty."""
    a, b = (_test_settings(s) for s in SUFFIXES)
    queue = "parallel-runs-test"
    with Connection(a["broker"], transport_options=a["options"]) as ca, \
            Connection(b["broker"], transport_options=b["options"]) as cb:
        qa = ca.SimpleQueue(queue)
        qb = cb.SimpleQueue(queue)
        try:
            qa.clear()
            qb.clear()
            qa.put({"run": "a"})
            with pytest.raises(qb.Empty):
                qb.get(block=False)
            assert qa.get(timeout=5).payload == {"run": "a"}
        finally:
            qa.clear()
            qb.clear()
            qa.close()
            qb.close()


def test_the_xdist_workers_of_one_run_get_their_own_keys():
    """`make test` runs two xdist workers: with a suffix set too, each still has its own queues and keys (the
    suffix alone used to win, and one worker's Celery worker took, and its fixture purged, the other's tasks).
    pytest-django adds the worker's id to the database name."""
    gw0, gw1 = (_test_settings("fuzz", worker) for worker in ("gw0", "gw1"))
    alone = _test_settings("fuzz")
    assert gw0["db"] == gw1["db"] == alone["db"] == "test_cityops_fuzz"  # `_gw0`, `_gw1` added by pytest-django
    assert len({gw0["keys"], gw1["keys"], alone["keys"]}) == 3
    assert gw0["options"]["global_keyprefix"] != gw1["options"]["global_keyprefix"]
    assert gw0["cache"]["KEY_PREFIX"] != gw1["cache"]["KEY_PREFIX"]
