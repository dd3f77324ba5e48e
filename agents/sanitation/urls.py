from django.urls import path

from . import views

app_name = "sanitation"
urlpatterns = [
    path("", views.panel, name="panel"),
    path("bins.geojson", views.bins_geojson, name="bins_geojson"),
    path("routes.geojson", views.routes_geojson, name="routes_geojson"),
    path("plans/<int:pk>/approve/", views.plan_approve, name="plan_approve"),
    path("plans/<int:pk>/move/", views.plan_move, name="plan_move"),
    path("plans/<int:pk>/reoptimise/", views.plan_reoptimise, name="plan_reoptimise"),
    path("routes/<int:pk>/lock/", views.route_lock, name="route_lock"),
    path("routes/<int:pk>/gpx/", views.route_gpx, name="route_gpx"),
    path("fill/", views.fill_models, name="fill"),
    path("overflows/", views.overflows, name="overflows"),
    path("crew/", views.crew_route, name="crew"),
    path("crew/stops/<int:pk>/", views.crew_stop_mark, name="stop_mark"),
    path("pickups/<int:pk>/photo/", views.pickup_photo, name="pickup_photo"),
]
