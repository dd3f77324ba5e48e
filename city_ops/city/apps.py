from django.apps import AppConfig


class CityConfig(AppConfig):
    name = "city_ops.city"
    label = "city"
    verbose_name = "City: roads, districts, closures, events"
