from django.urls import path

from . import views

app_name = "copilot"
urlpatterns = [
    path("ask/", views.ask, name="ask"),
    path("<int:pk>/", views.conversation, name="conversation"),
    path("<int:pk>/decide/", views.decide, name="decide"),
]
