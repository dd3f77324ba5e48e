from django.urls import path

from . import views

app_name = "bus-api"
urlpatterns = [
    path("feeds/", views.FeedListView.as_view(), name="feeds"),
    path("feeds/<int:pk>/", views.FeedDetailView.as_view(), name="feed"),
    path("plans/", views.PlanListView.as_view(), name="plans"),
    path("plans/<int:pk>/", views.PlanDetailView.as_view(), name="plan"),
    path("plans/<int:pk>/approve/", views.PlanApproveView.as_view(), name="plan-approve"),
    path("plans/<int:pk>/edit/", views.PlanEditView.as_view(), name="plan-edit"),
    path("plans/<int:pk>/export/", views.PlanExportView.as_view(), name="plan-export"),
    path("positions/", views.PositionsIngestView.as_view(), name="positions"),
    path("warnings/", views.WarningListView.as_view(), name="warnings"),
    path("warnings/<int:pk>/<str:decision>/", views.WarningDecideView.as_view(), name="warning-decide"),
    path("detours/", views.DetourListView.as_view(), name="detours"),
    path("layers/routes/", views.RoutesLayerView.as_view(), name="layer-routes"),
    path("layers/stops/", views.StopsLayerView.as_view(), name="layer-stops"),
    path("layers/vehicles/", views.VehiclesLayerView.as_view(), name="layer-vehicles"),
    path("layers/detours/", views.DetoursLayerView.as_view(), name="layer-detours"),
    path("gtfs-rt/trip-updates.pb", views.TripUpdatesView.as_view(), name="gtfs-rt-trip-updates"),
    path("gtfs-rt/alerts.pb", views.AlertsView.as_view(), name="gtfs-rt-alerts"),
]
