from django.apps import AppConfig


class ResultsConfig(AppConfig):
    name = "city_ops.results"
    label = "results"
    verbose_name = "Results statement"
