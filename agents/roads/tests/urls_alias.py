"""The project's URLs plus the alias the lead adds to city_ops/urls.py for the field app:
    path("api/inspections/", include("agents.roads.api.upload_urls")),
(a test URLconf, so the alias is tested before it is wired)."""
from django.urls import include, path

from city_ops.urls import urlpatterns as project_patterns

urlpatterns = [path("api/inspections/", include("agents.roads.api.upload_urls")), *project_patterns]
