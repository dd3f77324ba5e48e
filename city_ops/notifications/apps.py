from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "city_ops.notifications"
    label = "notifications"
    verbose_name = "Notifications"
