from django.urls import path

from . import views

app_name = "sanitation-api"
urlpatterns = [
    path("bins/", views.BinListView.as_view(), name="bins"),
    path("fills/", views.FillIngestView.as_view(), name="fills"),
    path("plans/", views.PlanListView.as_view(), name="plans"),
    path("plans/<int:pk>/", views.PlanDetailView.as_view(), name="plan"),
    path("plans/<int:pk>/approve/", views.PlanApproveView.as_view(), name="plan_approve"),
    path("plans/<int:pk>/edit/", views.PlanEditView.as_view(), name="plan_edit"),
    path("crew/routes/", views.CrewRouteListView.as_view(), name="crew_routes"),
    path("crew/stops/<int:pk>/", views.StopMarkView.as_view(), name="stop_mark"),
    path("routes/<int:pk>/gpx/", views.RouteGpxView.as_view(), name="route_gpx"),
]
