"""The deployment files agree with the code. There is no Docker engine in the test environment, so the
files are parsed and every name in them is checked against the project: the Celery app and queues, the
WSGI module, the management commands, the settings module, the variables the settings read, the ports
the health checks use, and the files the image copies. A renamed queue, a new setting or a moved module
fails here instead of in a production roll-out."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / "production.env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
APP_SERVICES = ("migrate", "web", "worker", "realtime-worker", "vision-worker", "beat")

# Variables that the example may set without city-ops' settings reading them, and who reads them.
READ_BY_OTHERS = {
    "DJANGO_SETTINGS_MODULE": "manage.py, city_ops.wsgi and city_ops.celery choose the settings with it",
    "POSTGRES_DB": "the postgis image creates this database",
    "POSTGRES_USER": "the postgis image creates this role",
    "POSTGRES_PASSWORD": "the postgis image sets this password",
    "REDIS_PASSWORD": "the redis service's command requires it",
}


# --- parsing helpers -------------------------------------------------------------------------------------------


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def env_example() -> dict[str, str]:
    """The uncommented KEY=VALUE lines, in Docker's env-file syntax (no quotes, no interpolation)."""
    out: dict[str, str] = {}
    for n, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f"production.env.example line {n}: not KEY=VALUE: {line!r}"
        key, value = line.split("=", 1)
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"line {n}: bad variable name {key!r}"
        assert key not in out, f"line {n}: {key} set twice"
        assert value == value.strip() and not value.startswith(("'", '"')), f"line {n}: quote or space in {key}"
        out[key] = value
    return out


def argv(command) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def option(args: list[str], *names: str) -> str | None:
    """The value of `-Q x`, `--queues x` or `--queues=x` in an argument list."""
    for i, a in enumerate(args):
        for name in names:
            if a == name and i + 1 < len(args):
                return args[i + 1]
            if name.startswith("--") and a.startswith(name + "="):
                return a.split("=", 1)[1]
    return None


def settings_modules(dotted: str) -> list[Path]:
    """The settings module and the sibling modules it star-imports from (production -> base)."""
    spec = importlib.util.find_spec(dotted)
    assert spec and spec.origin, f"settings module {dotted} not found"
    files, todo = [], [Path(spec.origin)]
    while todo:
        path = todo.pop()
        if path in files:
            continue
        files.append(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                todo.append(path.parent / f"{node.module}.py")
    return files


def env_reads(path: Path) -> set[str]:
    """Names read through django-environ (`env("X")`, `env.bool("X")`, ...) or os.environ/os.getenv."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        f = node.func
        via_environ = isinstance(f, ast.Name) and f.id == "env" or (
            isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "env")
        via_os = isinstance(f, ast.Attribute) and (
            f.attr == "getenv"
            or (f.attr in ("get", "setdefault") and isinstance(f.value, ast.Attribute) and f.value.attr == "environ"))
        if via_environ or via_os:
            names.add(first.value)
    return names


def project_env_reads() -> set[str]:
    """Variables read anywhere in the shipped code (not tests): the example may set these too."""
    names = set()
    for package in ("city_ops", "agents", "vision", "fixtures"):
        for path in (REPO / package).rglob("*.py"):
            if "tests" not in path.parts:
                names |= env_reads(path)
    return names | env_reads(REPO / "manage.py")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def gunicorn_bind_port(args: list[str]) -> int:
    bind = option(args, "--bind", "-b")
    assert bind, f"gunicorn without --bind: {args}"
    return int(bind.rsplit(":", 1)[1])


# --- checks of one command line ---------------------------------------------------------------------------------


def command_problems(args: list[str]) -> list[str]:
    """Everything in a process command line that names something the project does not have."""
    from celery.app.utils import find_app
    from celery.utils.imports import symbol_by_name
    from django.core.management import get_commands

    from city_ops.queues import Queue

    problems = []
    prog = Path(args[0]).name
    if prog == "celery":
        app_name = option(args, "-A", "--app")
        try:
            app = find_app(app_name)
            assert app.main == "city_ops", app.main
        except Exception as exc:  # noqa: BLE001 (any failure to resolve is the finding)
            problems.append(f"celery app {app_name!r} does not resolve: {exc}")
        sub = next((a for a in args[1:] if a in ("worker", "beat")), None)
        if sub is None:
            problems.append(f"celery command without worker/beat: {args}")
        if sub == "worker":
            queues = (option(args, "-Q", "--queues") or "").split(",")
            unknown = [q for q in queues if q not in {x.value for x in Queue}]
            if unknown or not queues:
                problems.append(f"unknown queues {unknown} (known: {[q.value for q in Queue]})")
            if "@" not in (option(args, "-n", "--hostname") or ""):
                problems.append("worker without a node name (-n name@%h): inspect ping cannot target it")
        if sub == "beat":
            sched = option(args, "-S", "--scheduler")
            try:
                symbol_by_name(sched)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"beat scheduler {sched!r} does not import: {exc}")
    elif prog == "gunicorn":
        positional = [a for i, a in enumerate(args[1:], 1)
                      if not a.startswith("-") and not args[i - 1].startswith("-")]
        module, _, attr = positional[0].partition(":")
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            problems.append(f"gunicorn module {module} not found")
        else:
            tree = ast.parse(Path(spec.origin).read_text())
            assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets
                        if isinstance(t, ast.Name)}
            if (attr or "application") not in assigned:
                problems.append(f"{module} defines no {attr or 'application'}")
        gunicorn_bind_port(args)
    elif prog.startswith("python") and len(args) > 2 and args[1] == "manage.py" and \
            args[2] not in get_commands():
        problems.append(f"manage.py has no command {args[2]!r}")
    return problems


# --- the compose file -------------------------------------------------------------------------------------------


def test_compose_has_every_role_and_valid_dependencies():
    services = compose()["services"]
    assert set(services) >= {"postgis", "redis", *APP_SERVICES}
    assert services["postgis"]["image"].startswith("postgis/postgis:15-3.4")
    assert services["redis"]["image"] == "redis:7"
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            assert cond["condition"] in ("service_healthy", "service_started", "service_completed_successfully")
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy; it has no check"
    for name in ("web", "worker", "realtime-worker", "vision-worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["restart"] == "no"
    assert "migrate" not in services["migrate"].get("depends_on", {})


def test_every_command_names_real_things():
    services = compose()["services"]
    problems = {}
    for name in APP_SERVICES:
        found = command_problems(argv(services[name]["command"]))
        if found:
            problems[name] = found
    assert not problems, problems
    assert argv(services["migrate"]["command"])[1:3] == ["manage.py", "migrate"]
    assert argv(services["web"]["command"])[0] == "gunicorn"
    beat = argv(services["beat"]["command"])
    assert option(beat, "--scheduler", "-S") == "django_celery_beat.schedulers:DatabaseScheduler"
    # One beat only: two would fire every schedule twice (runs are idempotent, notifications less so).
    assert (services["beat"].get("deploy") or {}).get("replicas", 1) == 1


def test_command_checks_catch_mistakes():
    # The checker itself must fail on wrong names, or the test above proves nothing.
    assert command_problems(["celery", "-A", "city_ops", "worker", "-Q", "default,gpu", "-n", "w@%h"])
    assert command_problems(["celery", "-A", "no_such_app", "beat", "--scheduler",
                             "django_celery_beat.schedulers:DatabaseScheduler"])
    assert command_problems(["gunicorn", "city_ops.wsgi_missing", "--bind", "0.0.0.0:8000"])
    assert command_problems(["python", "manage.py", "migrat"])
    assert not command_problems(["python", "manage.py", "run_agent"])


def test_every_queue_is_consumed_and_vision_is_separate():
    from city_ops.queues import Queue

    services = compose()["services"]
    consumed: dict[str, list[str]] = {}
    for name, svc in services.items():
        args = argv(svc.get("command") or [])
        if args[:1] == ["celery"] and "worker" in args:
            for q in option(args, "-Q", "--queues").split(","):
                consumed.setdefault(q, []).append(name)
    assert set(consumed) == {q.value for q in Queue}, f"queues without a worker: {set(Queue) - set(consumed)}"
    # GPU machines take the vision queue alone; the general worker never competes for photos.
    assert consumed["vision"] == ["vision-worker"]
    assert option(argv(services["vision-worker"]["command"]), "-Q") == "vision"
    # The realtime queue never waits behind planning work: its consumers take no planning or vision tasks.
    assert consumed["realtime"] and consumed["planning"]
    assert not set(consumed["realtime"]) & set(consumed["planning"] + consumed["vision"])
    # The local workers of `make demo` consume every queue too, realtime in a process of its own.
    local = (REPO / "deploy" / "local" / "workers.sh").read_text()
    local_workers = {name: queues.split(",")
                     for name, queues in re.findall(r"^\s*start_worker\s+(\S+)\s+-Q\s+(\S+)", local, re.MULTILINE)}
    assert {q for queues in local_workers.values() for q in queues} == {q.value for q in Queue}
    realtime = [name for name, queues in local_workers.items() if "realtime" in queues]
    assert len(realtime) == 1 and not {"planning", "vision"} & set(local_workers[realtime[0]])
    stopped = re.search(r'^PROCESSES="([^"]*)"', local, re.MULTILINE).group(1).split()
    assert set(local_workers) <= set(stopped), "`stop` and `status` must cover every worker"


def test_vision_worker_documents_the_gpu_variant():
    text = COMPOSE_FILE.read_text()
    svc = compose()["services"]["vision-worker"]
    assert svc["image"] != compose()["services"]["worker"]["image"], "GPU and CPU images must not share a tag"
    assert svc["build"]["args"]["ONNXRUNTIME"] == "onnxruntime"
    assert "onnxruntime-gpu" in text and "driver: nvidia" in text and "capabilities: [gpu]" in text


def test_health_checks_hit_the_ports_the_processes_listen_on():
    services = compose()["services"]
    env = env_example()
    web = services["web"]
    port = gunicorn_bind_port(argv(web["command"]))
    published = [str(p).rsplit(":", 1)[1] for p in web["ports"]]
    assert published == [str(port)], f"web publishes {published}, gunicorn binds {port}"
    test = " ".join(argv(web["healthcheck"]["test"]))
    url = urlsplit(re.search(r"https?://[^'\" ]+", test).group(0))
    assert url.port == port and url.path == "/healthz", test
    allowed = env["ALLOWED_HOSTS"].split(",")
    assert url.hostname in allowed, f"the health check's Host {url.hostname} is not in ALLOWED_HOSTS {allowed}"
    for name in ("postgis", "redis", "worker", "vision-worker"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    for name in ("worker", "vision-worker"):
        node = option(argv(services[name]["command"]), "-n").split("@")[0]
        assert f"{node}@$$HOSTNAME" in " ".join(services[name]["healthcheck"]["test"]), name
    # The Dockerfile's default command listens where the compose file expects.
    cmd = dict(dockerfile_instructions())["CMD"]
    import json

    assert gunicorn_bind_port(json.loads(cmd)) == port
    assert f"EXPOSE {port}" in DOCKERFILE.read_text()


# --- configuration ------------------------------------------------------------------------------------------------


def test_every_service_reads_production_env_and_the_settings_module_exists():
    services = compose()["services"]
    for name, svc in services.items():
        assert svc.get("env_file") == "production.env", name
    env = env_example()
    settings_module = env["DJANGO_SETTINGS_MODULE"]
    assert importlib.util.find_spec(settings_module) is not None, settings_module
    env_lines = " ".join(a for w, a in dockerfile_instructions() if w == "ENV")
    assert f"DJANGO_SETTINGS_MODULE={settings_module}" in env_lines, "the image and the env file disagree"
    assert (DEPLOY / ".gitignore").read_text().split().count("production.env") == 1


def test_env_example_lists_every_variable_the_settings_read_and_nothing_else():
    env = env_example()
    modules = settings_modules(env["DJANGO_SETTINGS_MODULE"])
    assert {m.name for m in modules} >= {"production.py", "base.py"}
    read = set().union(*(env_reads(m) for m in modules))
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "MEDIA_ROOT"} <= read  # parser sanity
    missing = sorted(read - set(env))
    assert not missing, f"settings read these but production.env.example lacks them: {missing}"
    known = read | project_env_reads() | set(READ_BY_OTHERS)
    unknown = sorted(set(env) - known)
    assert not unknown, f"production.env.example sets variables nothing reads: {unknown}"


def test_env_example_holds_no_real_secrets_and_its_urls_agree_with_compose():
    env = env_example()
    for key in ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        assert env[key].startswith("change-me"), f"{key} must be a placeholder in the example"
    db = urlsplit(env["DATABASE_URL"])
    assert db.scheme == "postgis" and db.hostname == "postgis" and db.port == 5432
    assert (db.username, db.password, db.path.lstrip("/")) == (
        env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"])
    redis = urlsplit(env["REDIS_URL"])
    assert redis.hostname == "redis" and redis.port == 6379 and redis.password == env["REDIS_PASSWORD"]
    services = compose()["services"]
    assert "--requirepass" in " ".join(argv(services["redis"]["command"]))
    assert env["DEBUG"] == "false"


def test_media_and_static_paths_line_up():
    env = env_example()
    services = compose()["services"]
    for name in ("web", "worker", "vision-worker"):
        mounts = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
        assert mounts.get(env["MEDIA_ROOT"]) == "media", f"{name} must mount the shared media volume"
    assert "media" in compose()["volumes"]
    env_lines = " ".join(a for w, a in dockerfile_instructions() if w == "ENV")
    assert f"STATIC_ROOT={env['STATIC_ROOT']}" in env_lines
    assert f"MEDIA_ROOT={env['MEDIA_ROOT']}" in env_lines
    assert env["VISION_MODEL_PATH"].startswith("/app/vision/")


def _example_environment(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env.update(env_example())
    env["STATIC_ROOT"] = str(tmp_path / "static")
    env["MEDIA_ROOT"] = str(tmp_path / "media")
    return env


def test_production_settings_load_from_the_example(tmp_path):
    """`check --deploy` under the production settings with exactly the example's values: the file parses
    (lists, integers, booleans) and nothing in it is an error."""
    out = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "ERROR"],
                         cwd=REPO, env=_example_environment(tmp_path), capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]


# A secure request (as the TLS proxy forwards it) to /healthz under the production settings; the database and
# Redis are refused at once (a closed local port), so /healthz answers 503 without waiting on a DNS lookup.
_HEADERS_SCRIPT = """
import json, django
django.setup()
from django.test import Client
r = Client().get("/healthz", HTTP_HOST="cityops.example.org", HTTP_X_FORWARDED_PROTO="https")
print(json.dumps({"status": r.status_code, **dict(r.items())}))
"""


def _production_headers(tmp_path, **env_overrides) -> dict:
    env = _example_environment(tmp_path)
    env.update(DATABASE_URL="postgis://x:y@127.0.0.1:9/x", REDIS_URL="redis://127.0.0.1:9/0",
               DJANGO_SETTINGS_MODULE=env["DJANGO_SETTINGS_MODULE"], **env_overrides)
    env = {k: v for k, v in env.items() if v is not None}
    out = subprocess.run([sys.executable, "-c", _HEADERS_SCRIPT], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_production_sends_hsts_by_default_with_an_opt_out(tmp_path):
    """HSTS for a year when the environment says nothing (and in the example); SECURE_HSTS_SECONDS=0 opts out.
    The CSP comes with every answer either way."""
    assert env_example()["SECURE_HSTS_SECONDS"] == "31536000"
    default = _production_headers(tmp_path, SECURE_HSTS_SECONDS=None)
    assert default["status"] == 503  # the database is unreachable here: headers still go out
    assert default["Strict-Transport-Security"] == "max-age=31536000"
    assert "default-src 'self'" in default["Content-Security-Policy"]
    opted_out = _production_headers(tmp_path, SECURE_HSTS_SECONDS="0")
    assert "Strict-Transport-Security" not in opted_out
    assert "default-src 'self'" in opted_out["Content-Security-Policy"]


def test_collectstatic_runs_as_in_the_image_build(tmp_path):
    """The image runs collectstatic under the production settings with a build-only key; so does this."""
    env = _example_environment(tmp_path)
    env["SECRET_KEY"] = "build-only-not-a-secret"
    out = subprocess.run([sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    static = tmp_path / "static"
    assert (static / "vendor" / "leaflet" / "leaflet.js").exists()
    assert (static / "admin" / "css" / "base.css").exists()
    assert "build-only" in (REPO / "deploy" / "Dockerfile").read_text()


# --- the image ----------------------------------------------------------------------------------------------------


def test_dockerfile_base_user_command_and_copies():
    from packaging.specifiers import SpecifierSet

    instructions = dockerfile_instructions()
    args = {}
    for word, rest in instructions:
        if word == "ARG" and "=" in rest:
            k, v = rest.split("=", 1)
            args[k] = v.strip('"')
    bases = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], rest.split()[0])
             for word, rest in instructions if word == "FROM"]
    assert bases, "no FROM"
    requires = SpecifierSet(
        re.search(r'requires-python\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text()).group(1))
    for base in bases:
        m = re.fullmatch(r"python:(3\.\d+)-slim-bookworm", base)
        assert m and m.group(1) in ("3.11", "3.12"), f"base image {base}: Python 3.11/3.12 slim-bookworm expected"
        assert f"{m.group(1)}.0" in requires, f"{base} does not satisfy requires-python {requires}"
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    words = [w for w, _ in instructions]
    assert words.index("USER") < words.index("CMD")
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    for pkg in ("gdal-bin", "libgdal-dev", "libgeos-dev", "libproj-dev", "libgl1", "postgresql-client"):
        assert re.search(rf"\b{re.escape(pkg)}\b", runs), f"apt package {pkg} missing"
    assert "collectstatic" in runs
    assert args.get("ONNXRUNTIME") == "onnxruntime"
    assert "nvidia-libs.conf" in runs and "ldconfig" in runs, "the GPU build's pip CUDA libraries must be loadable"
    # Every file the build copies from the context exists (the context is the repository root).
    for word, rest in instructions:
        if word == "COPY" and "--from=" not in rest:
            sources = [p for p in rest.split() if not p.startswith("--")][:-1]
            for src in sources:
                assert src == "." or (REPO / src).exists(), f"COPY {src}: no such path in the repository"


def test_dockerignore_keeps_local_state_and_secrets_out():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for path in (".venv", ".run", ".git", "media", "deploy/production.env", "backups"):
        assert path in ignore, f"{path} would be sent to the image build"


def test_requirements_for_the_image_swap_onnxruntime():
    def run(*extra):
        out = subprocess.run([sys.executable, str(DEPLOY / "requirements.py"), *extra], capture_output=True,
                             text=True, check=True)
        return out.stdout.splitlines()

    import tomllib

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert run() == declared
    gpu = run("--onnxruntime", "onnxruntime-gpu[cuda,cudnn]")
    onnx = [d for d in gpu if d.startswith("onnxruntime")]
    declared_ort = next(d for d in declared if d.startswith("onnxruntime"))
    assert onnx == ["onnxruntime-gpu[cuda,cudnn]" + declared_ort[len("onnxruntime"):]], \
        "exactly one ONNX Runtime per image, with the declared version range"
    assert run("--onnxruntime", "onnxruntime") == declared
    assert len(gpu) == len(declared)


@pytest.mark.parametrize("doc", ["deploy/README.md", *sorted(
    str(p.relative_to(REPO)) for p in (REPO / "docs").rglob("*.md"))])
def test_docs_name_files_that_exist(doc):
    """Paths the docs quote (`deploy/...`, `city_ops/...`) exist: docs do not outlive a move or rename."""
    text = (REPO / doc).read_text()
    for path in set(re.findall(r"`((?:deploy|docs|city_ops|agents|tests|vision|fixtures|bench)/[\w./-]+)`", text)):
        assert (REPO / path).exists() or path == "deploy/production.env", f"{doc} names {path}, which is missing"
