"""Template helpers for the console: the agent panels in the top bar, translated status labels, the
unread-notification badge."""
from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from agents.runtime.registry import agents_all

register = template.Library()

# Model choices carry English labels; the console shows these translated ones instead.
STATUS_LABELS = {
    # work orders
    "new": _("New"),
    "assigned": _("Assigned"),
    "in_progress": _("In progress"),
    "done": _("Done"),
    "verified": _("Verified"),
    "cancelled": _("Cancelled"),
    # agent runs
    "pending": _("Pending"),
    "running": _("Running"),
    "succeeded": _("Succeeded"),
    "failed": _("Failed"),
    # a run's attempts (besides running, succeeded, failed)
    "retried": _("Retried"),
    "worker_lost": _("Worker lost"),
    # deliveries
    "sent": _("Sent"),
}
PRIORITY_LABELS = {1: _("Low"), 2: _("Normal"), 3: _("High"), 4: _("Urgent")}
TRIGGER_LABELS = {
    "schedule": _("Schedule"),
    "manual": _("Manual"),
    "event": _("Event"),
    "replan": _("Re-plan"),
    "monitor": _("Monitor"),
}
LEVEL_LABELS = {0: _("Info"), 1: _("Green"), 2: _("Yellow"), 3: _("Orange"), 4: _("Red")}


@register.filter
def stored_label(value) -> str:
    """A label stored in English (a KPI's, marked with gettext_noop where it is defined) in the user's language.

    Run KPIs keep their English label in the database so a report reads the same whatever language the run was
    started in; the console translates at display time, and a label without a translation shows as stored.
    """
    return gettext(str(value)) if value else ""


@register.filter
def status_label(value) -> str:
    """A work order's, run's or delivery's status in the user's language."""
    return STATUS_LABELS.get(str(value), value)


@register.filter
def priority_label(value) -> str:
    return PRIORITY_LABELS.get(int(value), value) if value is not None else ""


@register.filter
def trigger_label(value) -> str:
    return TRIGGER_LABELS.get(str(value), value)


@register.filter
def level_label(value) -> str:
    return LEVEL_LABELS.get(int(value), value) if value is not None else ""


@register.simple_tag(takes_context=True)
def agent_nav_items(context) -> list[dict]:
    """Top-bar links to agent panels: every registered agent that names a `console_url_name` (a URL its
    app mounts). A panel is added by its agent alone; the base template does not change."""
    request = context.get("request")
    current = getattr(getattr(request, "resolver_match", None), "view_name", "")
    items = []
    for agent in agents_all():
        url_name = getattr(agent, "console_url_name", "")
        if not url_name:
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:  # the agent's app is not mounted in this deployment
            continue
        items.append({"url": url, "label": gettext(agent.label or agent.name), "name": agent.name,
                      "active": current == url_name})
    return items


@register.simple_tag(takes_context=True)
def crew_nav_items(context) -> list[dict]:
    """Top-bar links for field crews: each agent's `crew_links` (url name, label) that resolve here."""
    request = context.get("request")
    current = getattr(getattr(request, "resolver_match", None), "view_name", "")
    items = []
    for agent in agents_all():
        for url_name, label in getattr(agent, "crew_links", ()):
            try:
                url = reverse(url_name)
            except NoReverseMatch:
                continue
            items.append({"url": url, "label": _(label), "name": agent.name, "active": current == url_name})
    return items


@register.simple_tag(takes_context=True)
def unread_notifications(context) -> int:
    """How many of the signed-in user's notifications are unread or still wait for acknowledgement."""
    from django.db.models import Q

    from city_ops.notifications.models import Notification

    user = getattr(context.get("request"), "user", None)
    if user is None or not user.is_authenticated:
        return 0
    return Notification.objects.filter(recipient=user).filter(
        Q(read_at__isnull=True) | Q(requires_ack=True, acknowledged_at__isnull=True)).count()


@register.simple_tag(takes_context=True)
def nav_active(context, *names: str) -> str:
    """'active' when the current view is one of `names` (e.g. 'console:runs')."""
    request = context.get("request")
    current = getattr(getattr(request, "resolver_match", None), "view_name", "")
    return "active" if current in names else ""


@register.simple_tag
def city_time_zone() -> str:
    """The city's own time zone: the console shows every time as the city's clocks read it."""
    from django.conf import settings

    return settings.CITY_TIME_ZONE


@register.filter
def agent_label(name: str) -> str:
    """An agent's display name from the registry (the run rows store its short name)."""
    from agents.runtime.registry import UnknownAgentError, agent_get

    try:
        agent = agent_get(name)
    except UnknownAgentError:
        return name
    return gettext(agent.label or agent.name)


@register.filter
def vs_baseline(value, baseline) -> str:
    """The change from the baseline in percent, e.g. '−12 %' ('' when there is no baseline to compare)."""
    if value is None or baseline in (None, 0):
        return ""
    change = (float(value) - float(baseline)) / abs(float(baseline)) * 100
    sign = "+" if change > 0 else ("−" if change < 0 else "±")
    return f"{sign}{abs(change):.0f} %"
