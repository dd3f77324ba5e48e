from django.urls import path

from . import views

app_name = "city-api"
urlpatterns = [
    path("roads.geojson", views.RoadLayerView.as_view(), name="roads"),
    path("districts.geojson", views.DistrictLayerView.as_view(), name="districts"),
    path("places.geojson", views.PlaceLayerView.as_view(), name="places"),
    path("closures.geojson", views.ClosureLayerView.as_view(), name="closures"),
    path("closures/<int:pk>/lift/", views.ClosureLiftView.as_view(), name="closure-lift"),
    path("layers/<slug:layer>.geojson", views.MapFeaturesView.as_view(), name="layer-features"),
    path("tiles/<slug:layer>/<int:z>/<int:x>/<int:y>.mvt", views.MapTileView.as_view(), name="layer-tile"),
    path("route/", views.RouteView.as_view(), name="route"),
]
