"""The road inspection console panel (mounted under /roads/ by the AppConfig)."""

from django.urls import path

from . import views

app_name = "roads"
urlpatterns = [
    path("", views.panel, name="panel"),
    path("map/defects.geojson", views.defects_geojson, name="defects_geojson"),
    path("map/conditions.geojson", views.conditions_geojson, name="conditions_geojson"),
    path("upload/", views.upload, name="upload"),
    path("photos/", views.photos, name="photos"),
    path("photos/<int:pk>/", views.photo_detail, name="photo_detail"),
    path("photos/<int:pk>/status.json", views.photo_status, name="photo_status"),
    path("photos/<int:pk>/image.jpg", views.photo_image, name="photo_image"),
    path("photos/<int:pk>/original", views.photo_original, name="photo_original"),
    path("defects/<int:pk>/", views.defect_detail, name="defect_detail"),
    path("defects/<int:pk>/order/", views.defect_order, name="defect_order"),
    path("camera-runs/<int:pk>/progress.json", views.camera_run_progress, name="camera_run_progress"),
    path("report/", views.report, name="report"),
    path("report.pdf", views.report_pdf, name="report_pdf"),
    path("my-orders/", views.my_orders_redirect, name="my_orders"),
]
