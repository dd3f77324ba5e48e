"""Settings every environment shares. Anything that differs between machines comes from the environment
(12-factor): DATABASE_URL, REDIS_URL, SECRET_KEY, ALLOWED_HOSTS, MEDIA_ROOT, ... The local services script
writes `.run/env` for a developer's checkout; environment variables win over it."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab  # noqa: F401  (re-exported for agent schedules)

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
# `.run/env` is written by deploy/local/services.sh; a real deployment sets variables instead.
if (BASE_DIR / ".run" / "env").exists():
    environ.Env.read_env(BASE_DIR / ".run" / "env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "django_celery_beat",
    # the city model and shared services
    "city_ops.core",
    "city_ops.city",
    "city_ops.workorders",
    "city_ops.notifications",
    "city_ops.console",
    "city_ops.results",
    "city_ops.copilot",
    # the agent runtime, then one app per agent
    "agents.runtime",
    "agents.demo",
    "agents.flood",
    "agents.bus",
    "agents.roads",
    "agents.sanitation",
] + env.list("CITY_OPS_EXTRA_APPS", default=[])

MIDDLEWARE = [
    "city_ops.core.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "city_ops.core.middleware.NulCharacterMiddleware",  # after the CSRF check, which reads the form first
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "city_ops.core.middleware.PrivateNoStoreMiddleware",
    "city_ops.core.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "city_ops.urls"
WSGI_APPLICATION = "city_ops.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "city_ops" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "city_ops.core.context_processors.city",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default="postgis://cityops@127.0.0.1:55432/cityops")}
DATABASES["default"]["ENGINE"] = "django.contrib.gis.db.backends.postgis"
DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "city_ops.core.roles.RoleAdminBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "city_ops" / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"  # stored in UTC; shown and scheduled in the city's own zone (CITY_TIME_ZONE)

STATIC_URL = "/static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Uploads: phones send 3-12 MB photos; anything much larger is refused before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = 30 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
CITY_OPS_MAX_UPLOAD_BYTES = env.int("CITY_OPS_MAX_UPLOAD_BYTES", default=25 * 1024 * 1024)

# --- the city --------------------------------------------------------------------------------------------
CITY_NAME = env("CITY_NAME", default="Helsinki (demo)")
CITY_TIME_ZONE = env("CITY_TIME_ZONE", default="Europe/Helsinki")
# Distances are measured in a metric CRS; geometry is stored in WGS84 (SRID 4326).
CITY_METRIC_SRID = env.int("CITY_METRIC_SRID", default=3067)  # ETRS-TM35FIN for Helsinki; UTM elsewhere
CITY_TILE_URL = env("CITY_TILE_URL", default="")  # empty: the console draws the road network as base layer
CITY_TILE_ATTRIBUTION = env("CITY_TILE_ATTRIBUTION", default="")
# Writes that place something in the city (closures, work orders, photos, sensors placed by hand) must lie
# within the box around its road network grown by this margin (city_ops.city.geovalidate).
CITY_EXTENT_MARGIN_M = env.float("CITY_EXTENT_MARGIN_M", default=2000.0)

# --- Redis and Celery ------------------------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:56379/0")
# Put before the project's own Redis keys (metrics, heartbeats): test runs beside each other set their own.
REDIS_KEY_PREFIX = ""
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None  # results are rows in the database (AgentRun), not Celery results
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is redelivered; tasks are idempotent for that
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TIMEZONE = CITY_TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_SEND_TASK_EVENTS = True
# A running run whose worker showed no sign of life (liveness key, heartbeat) for this long is taken back;
# the heartbeat beats every quarter of it. With the reaper every 20 s a dead worker's run is back within
# 60 s (docs/operations.md "Recovery after a dead worker").
CITY_OPS_RUN_DEAD_AFTER_S = env.int("CITY_OPS_RUN_DEAD_AFTER_S", default=40)
# A pending run not claimed this long after it was sent has its message sent again (a lost message).
CITY_OPS_RUN_STALE_AFTER_S = env.int("CITY_OPS_RUN_STALE_AFTER_S", default=300)
# Address space each worker process may take (RLIMIT_AS, set in city_ops/celery.py): a runaway run then fails
# with a MemoryError instead of taking the machine from the other workers and the database. 0: no limit.
CITY_OPS_WORKER_MEMORY_LIMIT_MB = env.int("CITY_OPS_WORKER_MEMORY_LIMIT_MB", default=4096)
# A prefork child still holding over half of that (resident, in KiB) after a task is replaced by a fresh one.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = CITY_OPS_WORKER_MEMORY_LIMIT_MB * 1024 // 2 or None

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL.rsplit("/", 1)[0] + "/1",
        "KEY_PREFIX": "cityops",
    }
}

# --- API ---------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        "city_ops.core.authentication.ApiClientAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["city_ops.core.permissions.DenyAll"],  # every view states its roles
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # The project's parsers refuse a NUL character in a body with a 400 (PostgreSQL cannot store one).
    "DEFAULT_PARSER_CLASSES": [
        "city_ops.core.parsers.JSONParser",
        "city_ops.core.parsers.FormParser",
        "city_ops.core.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "city_ops.core.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_THROTTLE_RATES": {"login": "10/min"},
}
# The most rows one page of any API list returns (`?limit=` above it is a 400; see docs/operations.md).
CITY_OPS_API_MAX_PAGE_SIZE = env.int("CITY_OPS_API_MAX_PAGE_SIZE", default=1000)
# Per user: requests that start agent runs or edit plans (a burst of different ones; identical ones are one run).
CITY_OPS_RUN_START_RATE = env("CITY_OPS_RUN_START_RATE", default="30/min")
# The copilot (docs/operations.md, "Copilot"): an OpenAI-compatible chat-completions endpoint with tool calling
# (empty: the embedded grammar engine serves every request), its model and key, and the limits per request.
COPILOT_LLM_BASE_URL = env("COPILOT_LLM_BASE_URL", default="")
COPILOT_LLM_MODEL = env("COPILOT_LLM_MODEL", default="glm-4-9b-chat")
COPILOT_LLM_API_KEY = env("COPILOT_LLM_API_KEY", default="")
COPILOT_LLM_TIMEOUT_S = env.float("COPILOT_LLM_TIMEOUT_S", default=20.0)  # wall time of one request's exchange
COPILOT_LLM_MAX_TOKENS = env.int("COPILOT_LLM_MAX_TOKENS", default=8000)  # prompt + completion, all rounds
COPILOT_MAX_TOOL_CALLS = env.int("COPILOT_MAX_TOOL_CALLS", default=8)
COPILOT_PROPOSAL_TTL_S = env.int("COPILOT_PROPOSAL_TTL_S", default=600)  # a write proposal expires unconfirmed
# Optional: a vision model on the same endpoint describes each new road defect's crop in one line (empty: off).
COPILOT_VLM_MODEL = env("COPILOT_VLM_MODEL", default="")
COPILOT_VLM_TIMEOUT_S = env.float("COPILOT_VLM_TIMEOUT_S", default=15.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "city-ops API",
    "DESCRIPTION": "Flood control, bus dispatch, road inspection and sanitation routing for a city utility.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # API docs for signed-in users (and tokens); the schema names every endpoint, so not for the world.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "WorkOrderStatusEnum": "city_ops.workorders.models.WorkOrder.Status",
        "AgentRunStatusEnum": "agents.runtime.models.AgentRun.Status",
    },
}

# --- Security ------------------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
LOGIN_RATE_LIMIT = env("LOGIN_RATE_LIMIT", default="10/m")


def _tile_source(url: str) -> list[str]:
    """The CSP source a tile URL template loads from: `https://{s}.tile.example.org/{z}/{x}/{y}.png` ->
    `https://*.tile.example.org`; nothing for a relative URL (tiles served by this site are 'self')."""
    parts = urlsplit(url.replace("{s}", "*"))
    return [f"{parts.scheme}://{parts.netloc}"] if parts.scheme and parts.netloc else []


# Content-Security-Policy (django-csp): every script, style, font and image is this site's own (Leaflet and
# Chart.js are vendored), so nothing inline and nothing from elsewhere runs. No 'unsafe-inline': pages pass
# data to scripts with json_script / data- attributes and set colours through the CSSOM (console/page.js).
# data: images are Leaflet's blank tile and the empty favicon; map tiles come from CITY_TILE_URL's host.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", *_tile_source(CITY_TILE_URL)],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Mail and notifications --------------------------------------------------------------------------------------
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="city-ops@localhost")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
NOTIFY_WEBHOOK_URL = env("NOTIFY_WEBHOOK_URL", default="")
NOTIFY_ESCALATE_AFTER_MIN = env.int("NOTIFY_ESCALATE_AFTER_MIN", default=15)

# --- Vision ------------------------------------------------------------------------------------------------
VISION_MODEL_PATH = env("VISION_MODEL_PATH", default=str(BASE_DIR / "vision" / "models" / "road_damage.onnx"))
VISION_PROVIDERS = env.list("VISION_PROVIDERS", default=["CUDAExecutionProvider", "CPUExecutionProvider"])

# Debian 12 ships GDAL 3.6; the warning is about GDAL reading files we never hand it (we parse uploads with
# Pillow and OSM with pyrosm, never GDAL drivers on user input).
SILENCED_SYSTEM_CHECKS = ["gis.W001"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["stderr"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
