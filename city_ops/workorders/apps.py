from django.apps import AppConfig


class WorkOrdersConfig(AppConfig):
    name = "city_ops.workorders"
    label = "workorders"
    verbose_name = "Work orders"
