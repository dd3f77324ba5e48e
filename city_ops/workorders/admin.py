"""Django admin for work orders.

Status and assignee move only through the workflow service (`work_order_transition`), which enforces the
allowed transitions and the "after photo closes a repair" rule: the admin shows them read-only and offers
the dispatcher-side transitions (cancel, verify) as actions. Descriptive fields (title, description,
priority, due time) are editable and audited. Events are history; photos are added by crews through the
API (validated and privacy-blurred there), so the admin only lists and, if needed, deletes them."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from city_ops.core.admin import AuditedAdmin, ReadOnlyInline, file_link

from .models import WorkOrder, WorkOrderEvent, WorkOrderPhoto
from .services import work_order_create, work_order_transition


class WorkOrderEventInline(ReadOnlyInline):
    model = WorkOrderEvent
    fields = ("at", "actor_label", "from_status", "to_status", "note")
    readonly_fields = fields


class WorkOrderPhotoInline(ReadOnlyInline):
    model = WorkOrderPhoto
    fields = ("kind", "image_link", "uploaded_by", "uploaded_at")
    readonly_fields = fields

    @admin.display(description="image")
    def image_link(self, obj):
        return file_link(obj.image, reverse("console:workorder_photo_file", args=(obj.order_id, obj.pk)))


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "overdue")]

    def queryset(self, request, queryset):
        return queryset.overdue() if self.value() == "yes" else queryset


@admin.register(WorkOrder)
class WorkOrderAdmin(AuditedAdmin):
    list_display = ("id", "title", "status", "priority", "assignee", "due_at", "overdue", "source_agent",
                    "created_at")
    list_filter = ("status", "priority", OverdueFilter, "source_agent")
    search_fields = ("title", "description", "source_ref", "=id")
    date_hierarchy = "created_at"
    list_select_related = ("assignee",)
    raw_id_fields = ("segment",)  # a city has 10^5 segments: no dropdown of them
    autocomplete_fields = ("assignee",)
    inlines = (WorkOrderPhotoInline, WorkOrderEventInline)
    actions = ("orders_cancel", "orders_verify")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("title", "description", "location", "priority", "due_at", "segment", "assignee")
        return ("title", "description", "priority", "due_at", "status", "assignee", "location", "segment",
                "source_agent", "source_ref", "created_by", "created_at", "updated_at", "closed_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("status", "assignee", "location", "segment", "source_agent", "source_ref", "created_by",
                "created_at", "updated_at", "closed_at")

    @admin.display(boolean=True, description="overdue")
    def overdue(self, obj) -> bool:
        return obj.is_overdue

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        order, _ = work_order_create(
            title=data["title"], description=data.get("description", ""), location=data["location"],
            priority=data["priority"], due_at=data.get("due_at"), segment=data.get("segment"),
            assignee=data.get("assignee"), user=request.user)
        obj.pk, obj.status, obj.created_at = order.pk, order.status, order.created_at
        obj._state.adding = False

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    def _transition(self, request, queryset, to_status: WorkOrder.Status) -> None:
        done, refused = 0, []
        for order in queryset:
            try:
                work_order_transition(order=order, to_status=to_status, user=request.user, note="admin")
                done += 1
            except (ValidationError, PermissionDenied) as exc:
                refused.append(f"#{order.pk}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}")
        if done:
            messages.success(request, f"{done} order(s) now {to_status.label.lower()}.")
        for line in refused:
            messages.warning(request, line)

    @admin.action(description="Cancel", permissions=["change"])
    def orders_cancel(self, request, queryset):
        self._transition(request, queryset, WorkOrder.Status.CANCELLED)

    @admin.action(description="Verify the repair (done -> verified)", permissions=["change"])
    def orders_verify(self, request, queryset):
        self._transition(request, queryset, WorkOrder.Status.VERIFIED)


@admin.register(WorkOrderEvent)
class WorkOrderEventAdmin(admin.ModelAdmin):
    list_display = ("order", "at", "actor_label", "from_status", "to_status", "note")
    list_filter = ("to_status",)
    search_fields = ("note", "actor_label", "=order__id")
    date_hierarchy = "at"
    list_select_related = ("order",)
    fields = ("order", "at", "actor", "actor_label", "from_status", "to_status", "note", "changes")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WorkOrderPhoto)
class WorkOrderPhotoAdmin(AuditedAdmin):
    """Photos: listed, and deletable (audited) when one must go, e.g. on a privacy request."""

    list_display = ("id", "order", "kind", "uploaded_by", "uploaded_at")
    list_filter = ("kind",)
    search_fields = ("=order__id", "image")
    date_hierarchy = "uploaded_at"
    list_select_related = ("order", "uploaded_by")
    fields = ("order", "kind", "image", "uploaded_by", "uploaded_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
