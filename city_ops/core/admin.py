"""Django admin for the core app (API clients, the audit log, user profiles) and the helpers every city-ops
admin module shares.

The admin is the operators' tool, not a second way around the rules: records that services own (closures,
work-order status, agent runs) are created or changed through those services here too, and records that
are history (the audit log, deliveries, events) are read-only. Geometry is edited as text (WKT, EWKT or
GeoJSON): GeoDjango's map widgets load OpenLayers and OpenStreetMap tiles from the internet at run time,
which a city's back office must not depend on (and may not be allowed to reach)."""
from __future__ import annotations

from typing import ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.gis import forms as gis_forms
from django.contrib.gis.db import models as gis_models
from django.contrib.gis.geos import GEOSGeometry, MultiLineString, MultiPoint, MultiPolygon
from django.db import transaction
from django.template import engines
from django.template.response import TemplateResponse
from django.utils.html import format_html

from city_ops.city.geovalidate import (
    GeometryInputError,
    city_geometry_check,
    geometry_coords_check,
    geometry_text_check,
    geometry_valid_check,
)

from .models import ApiClient, AuditEntry, UserProfile
from .services import api_client_create, audit_record

# --- shared helpers ------------------------------------------------------------------------------------------


class GeometryTextarea(forms.Textarea):
    """A geometry as editable text (EWKT, so the SRID shows); accepts WKT, EWKT or GeoJSON.
    No map, no remote script, no tiles."""

    def __init__(self, attrs=None):
        super().__init__(attrs={"rows": 4, "cols": 90, "spellcheck": "false", **(attrs or {})})

    def format_value(self, value):
        if isinstance(value, GEOSGeometry):
            return geometry_summary(value, limit=None)
        return super().format_value(value)


class GeometryTextField(gis_forms.GeometryField):
    """The geometry form field, forgiving one common slip: a single polygon (or line) pasted where the
    column holds multi-polygons (or multi-lines) is wrapped rather than refused."""

    _WRAP: ClassVar[dict] = {("MULTIPOLYGON", "Polygon"): MultiPolygon, ("MULTILINESTRING", "LineString"): MultiLineString,
             ("MULTIPOINT", "Point"): MultiPoint}

    def to_python(self, value):
        # The text is checked before GEOS parses it (geovalidate: unbounded numbers abort GEOS's writer).
        if isinstance(value, str) and value.strip():
            self._checked(geometry_text_check, value)
        geom = super().to_python(value)
        wrap = self._WRAP.get((self.geom_type, getattr(geom, "geom_type", None)))
        return wrap(geom, srid=geom.srid) if wrap else geom

    def clean(self, value):
        geom = super().clean(value)  # transformed to the column's SRID (WGS84 here) by now
        if geom is not None:
            self._checked(geometry_coords_check, geom)
            self._checked(geometry_valid_check, geom)
        return geom

    @staticmethod
    def _checked(check, value):
        try:
            return check(value)
        except GeometryInputError as exc:
            raise forms.ValidationError(str(exc)) from None


GEOMETRY_AS_TEXT = {gis_models.GeometryField: {"widget": GeometryTextarea, "form_class": GeometryTextField}}


def file_link(field_file, url: str) -> str:
    """A stored file as a link to the view that serves it with its permission checks: the admin never links
    MEDIA_URL (production serves none, and the local one refuses the unblurred originals)."""
    return format_html('<a href="{}">{}</a>', url, field_file.name) if field_file else "-"


class CityPlacedForm(forms.ModelForm):
    """For things placed in the city by hand (sensors, zones, bins, depots, cameras, closures): a geometry typed
    or changed here must lie within the city's extent plus its margin (geovalidate). An unchanged one is left
    alone, so a station an agency file registered abroad can still be renamed."""

    def clean(self):
        cleaned = super().clean()
        for name, field in self.fields.items():
            if isinstance(field, gis_forms.GeometryField) and name in self.changed_data and cleaned.get(name):
                try:
                    city_geometry_check(cleaned[name], what=name)
                except GeometryInputError as exc:
                    self.add_error(name, str(exc))
        return cleaned


class CityPlacedAdmin(admin.ModelAdmin):
    """Configuration placed on the city's map: geometry as text, checked to lie in the city."""

    formfield_overrides = GEOMETRY_AS_TEXT
    form = CityPlacedForm


def geometry_summary(geom, *, limit: int | None = 300) -> str:
    """A short, safe description of a geometry for displays (a district's WKT is megabytes). Any stored row can
    be shown: an empty geometry, or one whose coordinates are not finite WGS84 (written around the services),
    is described, never turned into WKT (GEOS aborts the process writing numbers like 1e200)."""
    if geom is None:
        return "-"
    if geom.empty:
        return f"{geom.geom_type} EMPTY"
    try:
        geometry_coords_check(geom)
    except GeometryInputError as exc:
        return f"{geom.geom_type} that cannot be shown ({exc})"
    text = geom.ewkt
    if limit is None or len(text) <= limit:
        return text
    return f"{geom.geom_type} with {geom.num_points} points, extent {tuple(round(v, 5) for v in geom.extent)}"


class ReadOnlyAdmin(admin.ModelAdmin):
    """History and system records: browsable and searchable, never added or edited by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """An inline list of history rows under their parent (events, deliveries, KPIs)."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AuditedAdmin(admin.ModelAdmin):
    """Hand edits made in the admin land in the audit log like service writes do (who, what, which
    fields), so the log answers "who changed this?" whichever door the change came through."""

    formfield_overrides = GEOMETRY_AS_TEXT

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        changed = {f: _json_safe(form.cleaned_data.get(f)) for f in form.changed_data}
        audit_record(action="admin.changed" if change else "admin.added", obj=obj, actor=request.user,
                     changes=changed)

    def delete_model(self, request, obj):
        pk = obj.pk
        super().delete_model(request, obj)
        audit_record(action="admin.deleted", object_type=obj._meta.label_lower, object_id=pk, actor=request.user)

    def delete_queryset(self, request, queryset):
        label, pks = queryset.model._meta.label_lower, list(queryset.values_list("pk", flat=True))
        super().delete_queryset(request, queryset)
        for pk in pks:
            audit_record(action="admin.deleted", object_type=label, object_id=pk, actor=request.user)


def _json_safe(value):
    """A form value as something the audit log's JSON column can hold."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, GEOSGeometry):
        return geometry_summary(value)
    if hasattr(value, "pk"):
        return value.pk
    if hasattr(value, "__iter__") and not isinstance(value, (bytes, bytearray)):
        return [_json_safe(v) for v in value]
    return str(value)


# --- users ---------------------------------------------------------------------------------------------------


class UserProfileInline(admin.StackedInline):
    model = UserProfile
    can_delete = False
    fields = ("language", "phone")
    verbose_name_plural = "preferences"


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Django's user admin with the city-ops preferences inline and the roles (groups) in the list."""

    inlines = (UserProfileInline,)
    list_display = ("username", "email", "roles", "is_active", "is_staff", "last_login")
    list_filter = ("groups", "is_active", "is_staff", "is_superuser")

    @admin.display(description="roles")
    def roles(self, obj) -> str:
        return ", ".join(sorted(g.name for g in obj.groups.all())) or "-"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "language", "phone")
    list_filter = ("language",)
    search_fields = ("user__username", "user__email", "phone")
    autocomplete_fields = ("user",)


# --- API clients -------------------------------------------------------------------------------------------

_TOKEN_PAGE = engines["django"].from_string(
    """{% extends "admin/base_site.html" %}
{% block content %}
<div id="content-main">
  <p><strong>Copy {{ tokens|length|pluralize:"this token,these tokens" }} now.</strong>
     Only {{ tokens|length|pluralize:"its,their" }} hash is stored: {{ tokens|length|pluralize:"it,they" }} cannot be shown again.
     A lost token is replaced with the "issue a new token" action.</p>
  <table>
    <thead><tr><th>client</th><th>scopes</th><th>token</th></tr></thead>
    <tbody>{% for client, token in tokens %}
      <tr><td>{{ client.name }}</td><td>{{ client.scopes|join:", " }}</td>
          <td><code class="api-token">{{ token }}</code></td></tr>{% endfor %}
    </tbody>
  </table>
  <p><a href="{{ back_url }}">Back to API clients</a></p>
</div>
{% endblock %}"""
)


class ApiClientForm(forms.ModelForm):
    scopes = forms.JSONField(
        initial=list, help_text='A JSON list, e.g. ["flood.readings:write", "bus.positions:write"].')

    class Meta:
        model = ApiClient
        fields = ("name", "scopes", "active")

    def clean_scopes(self):
        scopes = self.cleaned_data["scopes"]
        if not isinstance(scopes, list) or not all(isinstance(s, str) and s.strip() for s in scopes):
            raise forms.ValidationError('Scopes are a JSON list of strings, e.g. ["flood.readings:write"].')
        return [s.strip() for s in scopes]


@admin.register(ApiClient)
class ApiClientAdmin(AuditedAdmin):
    """Machine clients. The token exists in clear only on the page right after it is created (or
    replaced); the list shows its first characters so an operator can tell which token a device holds."""

    form = ApiClientForm
    list_display = ("name", "token_hint", "scope_list", "active", "created_at", "last_used_at")
    list_filter = ("active",)
    search_fields = ("name", "token_prefix")
    readonly_fields = ("token_hint", "created_at", "last_used_at")
    actions = ("token_rotate", "clients_deactivate")

    @admin.display(description="token", ordering="token_prefix")
    def token_hint(self, obj) -> str:
        return f"{obj.token_prefix}…" if obj.token_prefix else "-"

    @admin.display(description="scopes")
    def scope_list(self, obj) -> str:
        return ", ".join(obj.scopes or []) or "-"

    def get_fields(self, request, obj=None):
        return ("name", "scopes", "active") if obj is None else (
            "name", "scopes", "active", "token_hint", "created_at", "last_used_at")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)  # audited as admin.changed
            return
        with transaction.atomic():
            client, token = api_client_create(name=obj.name, scopes=obj.scopes)
            if not obj.active:
                client.active = False
                client.save(update_fields=["active"])
            audit_record(action="api_client.created", obj=client, actor=request.user,
                         changes={"scopes": client.scopes, "token_prefix": client.token_prefix})
        # The admin's own bookkeeping (log entry, redirect) uses `obj`; make it the saved row.
        obj.pk, obj.token_prefix, obj.token_hash, obj.created_at = (
            client.pk, client.token_prefix, client.token_hash, client.created_at)
        obj._state.adding = False
        obj._new_token = token

    def response_add(self, request, obj, post_url_continue=None):
        token = getattr(obj, "_new_token", None)
        if token is None:
            return super().response_add(request, obj, post_url_continue)
        return self._tokens_page(request, [(obj, token)])

    @admin.action(description="Issue a new token (the old one stops working)")
    def token_rotate(self, request, queryset):
        issued = []
        with transaction.atomic():
            for client in queryset.select_for_update():
                token = ApiClient.token_new()
                client.token_set(token)
                client.save(update_fields=["token_hash", "token_prefix"])
                audit_record(action="api_client.token_rotated", obj=client, actor=request.user,
                             changes={"token_prefix": client.token_prefix})
                issued.append((client, token))
        return self._tokens_page(request, issued)

    @admin.action(description="Deactivate (refuse their tokens)")
    def clients_deactivate(self, request, queryset):
        for client in queryset.filter(active=True):
            client.active = False
            client.save(update_fields=["active"])
            audit_record(action="api_client.deactivated", obj=client, actor=request.user)
        messages.success(request, "Deactivated.")

    def _tokens_page(self, request, tokens):
        context = {**self.admin_site.each_context(request), "title": "New API token",
                   "tokens": tokens, "back_url": "../" if "/add/" in request.path else "."}
        response = TemplateResponse(request, _TOKEN_PAGE, context)
        # A token page must not be kept by a browser or proxy cache.
        response["Cache-Control"] = "no-store"
        return response


# --- the audit log ------------------------------------------------------------------------------------------


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The audit log: append-only. Nobody edits or deletes history from the admin (superusers included)."""

    list_display = ("at", "who", "action", "object_type", "object_id", "change_summary")
    list_filter = ("action", "object_type")
    search_fields = ("action", "object_type", "object_id", "actor_label", "actor__username")
    date_hierarchy = "at"
    list_select_related = ("actor",)
    fields = ("at", "actor", "actor_label", "action", "object_type", "object_id", "changes_pretty")
    readonly_fields = fields

    @admin.display(description="who", ordering="actor_label")
    def who(self, obj) -> str:
        return obj.actor_label or (obj.actor.username if obj.actor else "system")

    @admin.display(description="changes")
    def change_summary(self, obj) -> str:
        text = ", ".join(f"{k}={v}" for k, v in (obj.changes or {}).items())
        return text[:120] + ("…" if len(text) > 120 else "")

    @admin.display(description="changes")
    def changes_pretty(self, obj):
        import json

        return format_html("<pre>{}</pre>", json.dumps(obj.changes, indent=2, ensure_ascii=False, default=str))
