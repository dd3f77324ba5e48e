from django.urls import path

from city_ops.results import pages as results_pages

from . import views

app_name = "console"
urlpatterns = [
    path("", views.home, name="home"),
    path("map/workorders.geojson", views.workorders_geojson, name="workorders_geojson"),
    path("runs/", views.runs, name="runs"),
    path("runs/start/", views.run_start, name="run_start"),
    path("results/", views.results, name="results"),
    path("statement/", results_pages.statement, name="statement"),
    path("statement/pdf/", results_pages.statement_pdf, name="statement_pdf"),
    path("workorders/", views.workorders, name="workorders"),
    path("workorders/<int:pk>/", views.workorder_detail, name="workorder_detail"),
    path("workorders/<int:pk>/action/", views.workorder_action, name="workorder_action"),
    path("workorders/<int:pk>/photo/", views.workorder_photo, name="workorder_photo"),
    path("workorders/<int:pk>/photos/<int:photo_pk>/", views.workorder_photo_file, name="workorder_photo_file"),
    path("my-orders/", views.my_orders, name="my_orders"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/<int:pk>/ack/", views.notification_ack, name="notification_ack"),
    path("settings/language/", views.language_set, name="language"),
]
