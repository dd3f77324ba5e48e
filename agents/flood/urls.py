"""The flood console panel (mounted under /flood/ by the AppConfig)."""
from django.urls import path

from . import views

app_name = "flood"
urlpatterns = [
    path("", views.panel, name="panel"),
    path("alerts/<int:pk>/action/", views.alert_action, name="alert_action"),
    path("cap/import/", views.cap_upload, name="cap_upload"),
]
