"""The flood console panel (mounted under /flood/ by the AppConfig)."""
from django.urls import path

from . import views

app_name = "flood"
urlpatterns = [
    path("", views.panel, name="panel"),
    path("alerts/<int:pk>/action/", views.alert_action, name="alert_action"),
    path("cap/import/", views.cap_upload, name="cap_upload"),
    path("drills/start/", views.drill_begin, name="drill_start"),
    path("drills/<int:pk>/", views.drill_state, name="drill_state"),
    path("drills/<int:pk>/action/", views.drill_action, name="drill_action"),
]
