"""Notifications to people: in the console, by e-mail, and through a webhook (the city's SMS or messaging
gateway), with subscriptions per role and area, escalation when not acknowledged, and a delivery record."""
from __future__ import annotations

from django.conf import settings
from django.contrib.gis.db import models

from city_ops.core.models import RestrictedQuerySet


class Subscription(models.Model):
    """Who hears about what: a role (or one user), an optional area, the channels, and a minimum level."""

    class Channel(models.TextChoices):
        CONSOLE = "console"
        EMAIL = "email"
        WEBHOOK = "webhook"

    role = models.CharField(max_length=20, blank=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    area = models.MultiPolygonField(srid=4326, null=True, blank=True, help_text="empty: the whole city")
    topic = models.CharField(max_length=40, blank=True, help_text="e.g. 'flood', empty for all")
    min_level = models.PositiveSmallIntegerField(default=0, help_text="0 info .. 4 red")
    channels = models.JSONField(default=list)
    webhook_url = models.URLField(blank=True)
    escalate_after_min = models.PositiveIntegerField(default=15)
    escalate_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")

    def __str__(self) -> str:
        return f"{self.user or self.role} {self.topic or '*'} >= {self.min_level}"


class NotificationQuerySet(RestrictedQuerySet):
    @staticmethod
    def restrict_for(qs, user, action):
        """Everyone sees their own notifications; admins see all."""
        from city_ops.core.roles import Role, user_roles

        if Role.ADMIN in user_roles(user):
            return qs
        if user is not None and user.is_authenticated:
            return qs.filter(recipient=user)
        return qs.none()


class Notification(models.Model):
    """One message to one person. Acknowledging it stops its escalation."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    topic = models.CharField(max_length=40, blank=True)
    level = models.PositiveSmallIntegerField(default=0)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    source_ref = models.CharField(max_length=100, blank=True)
    location = models.PointField(srid=4326, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    requires_ack = models.BooleanField(default=False)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    escalate_at = models.DateTimeField(null=True, blank=True, db_index=True)
    escalate_to = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    escalated_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)

    objects = NotificationQuerySet.as_manager()
    restrict_for = NotificationQuerySet.restrict_for

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"to {self.recipient}: {self.subject}"


class Delivery(models.Model):
    """One attempt to deliver a notification on one channel, with its outcome."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=10)
    status = models.CharField(max_length=10, default="pending")  # pending, sent, failed
    attempts = models.PositiveSmallIntegerField(default=0)
    target = models.CharField(max_length=300, blank=True,
                              help_text="where it goes: the webhook URL (empty: NOTIFY_WEBHOOK_URL or the e-mail)")
    detail = models.CharField(max_length=300, blank=True, help_text="the outcome: the error of the last attempt")
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"{self.channel} {self.status}"
