"""Django admin for notifications: subscriptions are configuration (edited here, audited); notifications
and their deliveries are history (read-only), with one operator action: retry failed deliveries."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Q

from city_ops.core.admin import GEOMETRY_AS_TEXT, AuditedAdmin, ReadOnlyAdmin, ReadOnlyInline
from city_ops.core.roles import Role
from city_ops.queues import Queue

from .models import Delivery, Notification, Subscription


class SubscriptionForm(forms.ModelForm):
    role = forms.ChoiceField(choices=[("", "(one user: pick below)")] + [(r.value, r.value) for r in Role],
                             required=False, help_text="Everyone holding this role, or leave empty and pick a user.")
    channels = forms.MultipleChoiceField(choices=Subscription.Channel.choices, required=False,
                                         widget=forms.CheckboxSelectMultiple,
                                         help_text="None ticked: the console only.")
    webhook_url = forms.URLField(required=False, assume_scheme="https",
                                 help_text="Empty: the globally configured NOTIFY_WEBHOOK_URL.")

    class Meta:
        model = Subscription
        fields = ("role", "user", "topic", "min_level", "area", "channels", "webhook_url", "escalate_after_min",
                  "escalate_to")

    def clean(self):
        data = super().clean()
        if bool(data.get("role")) == bool(data.get("user")):
            raise forms.ValidationError("Choose a role or one user (exactly one).")
        if Subscription.Channel.WEBHOOK in (data.get("channels") or []) and not data.get("webhook_url"):
            from django.conf import settings

            if not settings.NOTIFY_WEBHOOK_URL:
                self.add_error("webhook_url", "The webhook channel needs a URL (none is configured globally).")
        return data


@admin.register(Subscription)
class SubscriptionAdmin(AuditedAdmin):
    form = SubscriptionForm
    list_display = ("id", "who", "topic_or_all", "min_level", "channel_list", "has_area", "escalate_after_min",
                    "escalate_to")
    list_filter = ("role", "topic", "min_level")
    search_fields = ("role", "topic", "user__username")
    list_select_related = ("user", "escalate_to")
    autocomplete_fields = ("user", "escalate_to")
    formfield_overrides = GEOMETRY_AS_TEXT

    @admin.display(description="who")
    def who(self, obj) -> str:
        return obj.user.username if obj.user_id else f"role: {obj.role}"

    @admin.display(description="topic")
    def topic_or_all(self, obj) -> str:
        return obj.topic or "(all)"

    @admin.display(description="channels")
    def channel_list(self, obj) -> str:
        return ", ".join(obj.channels or []) or "console"

    @admin.display(boolean=True, description="area")
    def has_area(self, obj) -> bool:
        return obj.area is not None


class DeliveryInline(ReadOnlyInline):
    model = Delivery
    fields = ("channel", "target", "status", "attempts", "sent_at", "detail")
    readonly_fields = fields


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("id", "recipient", "topic", "level", "subject", "created_at", "requires_ack",
                    "acknowledged_at", "escalate_at", "failed_deliveries")
    list_filter = ("topic", "level", "requires_ack", ("acknowledged_at", admin.EmptyFieldListFilter))
    search_fields = ("subject", "body", "source_ref", "recipient__username")
    date_hierarchy = "created_at"
    list_select_related = ("recipient",)
    fields = ("recipient", "topic", "level", "subject", "body", "source_ref", "created_at", "read_at",
              "requires_ack", "acknowledged_at", "escalate_at", "escalate_to", "escalated_from")
    readonly_fields = fields
    inlines = (DeliveryInline,)
    actions = ("deliveries_retry",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_failed=Count("deliveries", filter=Q(deliveries__status="failed")))

    @admin.display(description="failed deliveries", ordering="n_failed")
    def failed_deliveries(self, obj) -> int:
        return getattr(obj, "n_failed", 0)

    @admin.action(description="Retry failed deliveries", permissions=["view"])
    def deliveries_retry(self, request, queryset):
        ids = list(queryset.filter(deliveries__status="failed").values_list("pk", flat=True).distinct())
        if not ids:
            messages.info(request, "None of these has a failed delivery.")
            return

        def send():
            from .tasks import deliver_notifications

            deliver_notifications.apply_async(args=[ids], queue=Queue.DEFAULT.value)

        transaction.on_commit(send)
        messages.success(request, f"Retrying deliveries of {len(ids)} notification(s) on the worker.")


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("id", "notification", "channel", "target", "status", "attempts", "sent_at", "detail")
    list_filter = ("channel", "status")
    search_fields = ("target", "detail", "=notification__id")
    list_select_related = ("notification",)
    fields = ("notification", "channel", "target", "status", "attempts", "sent_at", "detail")
    readonly_fields = fields
