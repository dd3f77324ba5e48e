from django.urls import path

from . import views

app_name = "console"
urlpatterns = [
    path("", views.home, name="home"),
    path("runs/", views.runs, name="runs"),
    path("results/", views.results, name="results"),
    path("workorders/", views.workorders, name="workorders"),
    path("my-orders/", views.my_orders, name="my_orders"),
    path("settings/language/", views.language_set, name="language"),
]
