from django.urls import path

from . import views

app_name = "copilot-api"
urlpatterns = [path("", views.CopilotView.as_view(), name="ask")]
