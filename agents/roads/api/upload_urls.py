"""The crews' upload endpoint at the path the field app uses, POST /api/inspections/photos/ (the same view as
/api/roads/photos/). Declared in the app's config (`fixed_api_urls`), mounted by the project's urls.py."""
from django.urls import path

from . import views

app_name = "inspections-api"
urlpatterns = [
    path("photos/", views.PhotoListUploadView.as_view(), name="photos"),
]
