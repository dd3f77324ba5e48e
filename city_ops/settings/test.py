"""pytest: the real PostGIS and Redis of `.run/`, fast password hashing, mail kept in memory."""
from .base import *  # noqa: F401,F403
from .base import BASE_DIR, env

SECRET_KEY = env("SECRET_KEY", default="test-only-not-secret")
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; never in production
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(BASE_DIR / ".run" / "test-media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# A separate Redis database so tests never see the demo's queues.
from .base import REDIS_URL  # noqa: E402

REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/5"
CELERY_BROKER_URL = REDIS_URL
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL.rsplit("/", 1)[0] + "/6",
        "KEY_PREFIX": "cityops-test",
    }
}
LOGIN_RATE_LIMIT = "1000/m"
CITY_OPS_RUN_START_RATE = "1000/min"  # tests start many runs; test_requests.py proves the 429 with a low rate

# Parallel test runs on one machine (several developers' shells, CI shards) each need their own test
# database: CITY_OPS_TEST_DB_SUFFIX picks a distinct name, and within a run each pytest-xdist worker adds its
# own id (both together: two shells each running `-n 2` are four databases and four sets of Redis keys).
_run_suffix = env("CITY_OPS_TEST_DB_SUFFIX", default="")
_suffix = "_".join(s for s in (_run_suffix, env("PYTEST_XDIST_WORKER", default="")) if s)
if _run_suffix:
    from .base import DATABASES  # noqa: E402

    DATABASES["default"]["TEST"] = {"NAME": f"test_cityops_{_run_suffix}"}  # pytest-django adds `_gw0`
if _suffix:
    # ... and their own Redis keys, so one run's worker never takes (and its fixture never purges) another
    # run's messages. The database number picked from the suffix keeps runs apart from the demo's and the
    # plain test run's keys, but Redis has 16 databases and some pairs of suffixes share one: every broker key
    # and queue, every cache key and the project's own keys (metrics, heartbeats) carry the suffix too.
    import zlib  # noqa: E402

    from .base import CELERY_BROKER_TRANSPORT_OPTIONS  # noqa: E402

    REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + f"/{7 + zlib.crc32(_suffix.encode()) % 9}"
    CELERY_BROKER_URL = REDIS_URL
    CACHES["default"]["LOCATION"] = REDIS_URL

    REDIS_KEY_PREFIX = f"cityops-test-{_suffix}:"
    CELERY_BROKER_TRANSPORT_OPTIONS = {**CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": REDIS_KEY_PREFIX}
    CACHES["default"]["KEY_PREFIX"] = REDIS_KEY_PREFIX.rstrip(":")

# Static files come from the apps' folders (no collectstatic in tests); whitenoise looks them up per request.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True

# No persistent connections in tests: live-server threads and workers must not hold the test database open
# when pytest-django drops it at the end.
DATABASES["default"]["CONN_MAX_AGE"] = 0
# Tests commit often (every transactional test's flush, the demo city's copy, the workers' writes): none waits
# for its WAL to reach the disk. A crash could lose a test database's last commits, and it is thrown away.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c synchronous_commit=off"
