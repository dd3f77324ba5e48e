"""The road agent's API, mounted under /api/roads/ by the AppConfig."""
from django.urls import path

from . import views

app_name = "roads-api"
urlpatterns = [
    path("photos/", views.PhotoListUploadView.as_view(), name="photos"),
    path("photos/<int:pk>/", views.PhotoDetailView.as_view(), name="photo"),
    path("defects/", views.DefectListView.as_view(), name="defects"),
    path("defects/<int:pk>/", views.DefectDetailView.as_view(), name="defect"),
    path("camera-runs/", views.CameraRunListView.as_view(), name="camera-runs"),
    path("camera-runs/<int:pk>/", views.CameraRunDetailView.as_view(), name="camera-run"),
    path("camera-runs/<int:pk>/frames/", views.CameraRunFramesView.as_view(), name="camera-run-frames"),
    path("camera-runs/<int:pk>/finish/", views.CameraRunFinishView.as_view(), name="camera-run-finish"),
    path("cameras/", views.FixedCameraListView.as_view(), name="cameras"),
    path("cameras/<int:pk>/snapshots/", views.FixedCameraSnapshotView.as_view(), name="camera-snapshots"),
]
