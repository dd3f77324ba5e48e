from django.urls import path

from . import views

app_name = "workorders-api"
urlpatterns = [
    path("", views.WorkOrderListView.as_view(), name="list"),
    path("<int:pk>/", views.WorkOrderDetailView.as_view(), name="detail"),
    path("<int:pk>/transition/", views.WorkOrderTransitionView.as_view(), name="transition"),
    path("<int:pk>/photos/", views.WorkOrderPhotoView.as_view(), name="photos"),
]
