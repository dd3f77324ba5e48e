from django.urls import path

from . import views

app_name = "agents-api"
urlpatterns = [
    path("", views.AgentListView.as_view(), name="agents"),
    path("runs/", views.AgentRunListView.as_view(), name="runs"),
    path("runs/<int:pk>/", views.AgentRunDetailView.as_view(), name="run"),
    path("results/", views.ResultsView.as_view(), name="results"),
]
