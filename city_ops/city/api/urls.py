from django.urls import path

from . import views

app_name = "city-api"
urlpatterns = [
    path("roads.geojson", views.RoadLayerView.as_view(), name="roads"),
    path("districts.geojson", views.DistrictLayerView.as_view(), name="districts"),
    path("places.geojson", views.PlaceLayerView.as_view(), name="places"),
    path("closures.geojson", views.ClosureLayerView.as_view(), name="closures"),
    path("closures/<int:pk>/lift/", views.ClosureLiftView.as_view(), name="closure-lift"),
    path("route/", views.RouteView.as_view(), name="route"),
]
