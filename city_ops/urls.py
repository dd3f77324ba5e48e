"""Top-level URLs: the console, the REST API (with its OpenAPI schema), health, metrics, admin."""
from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from city_ops.console import views as console_views
from city_ops.core import health
from city_ops.core.views import metrics_view

api_patterns = [
    path("city/", include("city_ops.city.api.urls")),
    path("agents/", include("agents.core.api.urls")),
    path("workorders/", include("city_ops.workorders.api.urls")),
    path("notifications/", include("city_ops.notifications.api_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("schema/swagger/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger"),
    path("schema/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]
# Each agent app may add `api/urls.py`; they mount under /api/<agent>/ (see settings.AGENT_API_APPS).
for app_label, module in getattr(settings, "AGENT_API_URLS", []):
    api_patterns.append(path(f"{app_label}/", include(module)))

urlpatterns = [
    path("", include("city_ops.console.urls")),
    path("accounts/login/", console_views.RateLimitedLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include(api_patterns)),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
