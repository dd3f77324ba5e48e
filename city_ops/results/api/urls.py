from django.urls import path

from . import views

app_name = "results-api"
urlpatterns = [
    path("statement/", views.StatementView.as_view(), name="statement"),
]
