"""The crews' upload endpoint at the path the field app uses, POST /api/inspections/photos/ (the same view as
/api/roads/photos/). Mounted by the project's urls.py:
    path("api/inspections/", include("agents.roads.api.upload_urls")),"""
from django.urls import path

from . import views

app_name = "inspections-api"
urlpatterns = [
    path("photos/", views.PhotoListUploadView.as_view(), name="photos"),
]
