from django.urls import path

from . import api_views

app_name = "notifications-api"
urlpatterns = [
    path("", api_views.NotificationListView.as_view(), name="list"),
    path("<int:pk>/ack/", api_views.NotificationAckView.as_view(), name="ack"),
]
