from django.urls import path

from . import views

app_name = "flood-api"
urlpatterns = [
    path("readings/", views.ReadingsIngestView.as_view(), name="readings"),
    path("sensors.geojson", views.SensorLayerView.as_view(), name="sensors"),
    path("zones.geojson", views.ZoneLayerView.as_view(), name="zones"),
    path("sensors/<int:pk>/hydrograph/", views.HydrographView.as_view(), name="hydrograph"),
    path("alerts/", views.AlertListView.as_view(), name="alerts"),
    path("alerts.atom", views.AlertAtomView.as_view(), name="alerts-atom"),
    path("alerts/<int:pk>/", views.AlertDetailView.as_view(), name="alert"),
    path("alerts/<int:pk>.cap", views.AlertCapView.as_view(), name="alert-cap"),
    path("alerts/<int:pk>/acknowledge/", views.AlertAcknowledgeView.as_view(), name="alert-acknowledge"),
    path("alerts/<int:pk>/escalate/", views.AlertEscalateView.as_view(), name="alert-escalate"),
    path("alerts/<int:pk>/confirm-lift/", views.ClosureLiftConfirmView.as_view(), name="alert-confirm-lift"),
    path("cap/", views.CapImportView.as_view(), name="cap-import"),
]
