from django.urls import path

from . import views

app_name = "bus"
urlpatterns = [
    path("", views.panel, name="panel"),
    path("plans/<int:pk>/", views.plan_detail, name="plan"),
    path("plans/<int:pk>/action/", views.plan_action, name="plan_action"),
    path("plans/<int:pk>/export.csv", views.plan_export_csv, name="plan_csv"),
    path("plans/<int:pk>/gtfs.zip", views.plan_export_gtfs, name="plan_gtfs"),
    path("plans/new/", views.plan_request, name="plan_request"),
    path("feeds/upload/", views.feed_upload, name="feed_upload"),
    path("warnings/<int:pk>/<str:decision>/", views.warning_action, name="warning_action"),
]
