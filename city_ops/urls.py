"""Top-level URLs: the console, the REST API (with its OpenAPI schema), health, metrics, admin."""
from csp.decorators import csp_update
from django.apps import apps
from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from city_ops.console import views as console_views
from city_ops.core import health
from city_ops.core.views import media_serve, metrics_view

api_patterns = [
    path("city/", include("city_ops.city.api.urls")),
    path("agents/", include("agents.runtime.api.urls")),
    path("workorders/", include("city_ops.workorders.api.urls")),
    path("results/", include("city_ops.results.api.urls")),
    path("notifications/", include("city_ops.notifications.api_urls")),
    path("copilot/", include("city_ops.copilot.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The API browsers are third-party pages under the site's CSP: Swagger UI as the split view (its start-up
    # script is a file, not inline) with its inline <style>; ReDoc starts from an inline script and injects
    # its styles and a search worker. Only these two pages get those allowances (signed-in users only).
    path("schema/swagger/", csp_update({"style-src": ["'unsafe-inline'"]})(
        SpectacularSwaggerSplitView.as_view(url_name="schema")), name="swagger"),
    path("schema/redoc/", csp_update({"script-src": ["'unsafe-inline'"], "style-src": ["'unsafe-inline'"],
                                      "worker-src": ["blob:"]})(
        SpectacularRedocView.as_view(url_name="schema")), name="redoc"),
]
# An agent app mounts its own API and console panel by naming them on its AppConfig (`api_urls`,
# `console_urls`, under `url_prefix`; `fixed_api_urls` for API paths that devices outside are configured
# with), so adding an agent needs no edit here.
console_panels = []
for cfg in apps.get_app_configs():
    prefix = getattr(cfg, "url_prefix", None)
    if prefix and getattr(cfg, "api_urls", None):
        api_patterns.append(path(f"{prefix}/", include(cfg.api_urls)))
    if prefix and getattr(cfg, "console_urls", None):
        console_panels.append(path(f"{prefix}/", include(cfg.console_urls)))
    for mount, module in getattr(cfg, "fixed_api_urls", {}).items():
        api_patterns.append(path(f"{mount}/", include(module)))

urlpatterns = [
    path("", include("city_ops.console.urls")),
    path("copilot/", include("city_ops.copilot.urls")),
    *console_panels,
    path("accounts/login/", console_views.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include(api_patterns)),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
]
if settings.DEBUG:
    # Local only; admins only, never the unblurred originals (city_ops.core.views.media_serve).
    urlpatterns += static(settings.MEDIA_URL, view=media_serve, document_root=settings.MEDIA_ROOT)
