"""The bus agent's copilot read tool (declared in agent.py; `bus.plan` is the runtime's run-request tool):
the open headway warnings, as the console's panel lists them."""
from __future__ import annotations

from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _

from city_ops.copilot.tools import ToolResult

from .models import HeadwayWarning, Route


def _route_ids(name: str) -> set[str]:
    """A route as people name it (its short name, like "55") or as the feed does (its route_id)."""
    ids = set(Route.objects.filter(Q(short_name__iexact=name) | Q(route_id__iexact=name))
              .values_list("route_id", flat=True))
    return ids or {name}


def bus_warnings(*, user, args: dict) -> ToolResult:
    qs = HeadwayWarning.objects.restrict(user, "view").filter(status=HeadwayWarning.Status.OPEN)
    if args.get("route"):
        qs = qs.filter(route_id__in=_route_ids(args["route"]))
    warnings = list(qs[:50])
    rows = [{"id": w.pk, "kind": w.kind, "route": w.route_id, "direction": w.direction_id, "leader": w.leader,
             "follower": w.follower, "headway_s": round(w.headway_s), "advice": w.advice_text,
             "last_seen_at": w.last_seen_at.isoformat()} for w in warnings]
    summary = (_("%(n)d open headway warnings: %(list)s.") % {
        "n": len(rows), "list": "; ".join(f"{w.kind} {w.route_id} ({w.advice_text})" for w in warnings[:3])}
        if warnings else _("No open headway warnings."))
    return ToolResult(data={"warnings": rows}, summary=summary,
                      links=[{"label": _("Bus panel"), "url": reverse("bus:panel")}])
