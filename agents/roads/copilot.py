"""The roads agent's copilot read tool (declared in agent.py): the open defects the user may see, through
the same selector as the panel, filtered by street, district, least severity and class."""
from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from city_ops.copilot.places import district_resolve, street_resolve
from city_ops.copilot.tools import ToolResult

from .domain.ranking import SEVERITY_LABELS
from .selectors import defect_list

SEVERITY_LEVELS = {label: level for level, label in SEVERITY_LABELS.items()}
CLASSES = ("pothole", "crack")
# Any case ("Pothole" from a model or a person; defect rows are compared the same way), spelt as
# [Pp][Oo]... because the ECMA regex dialect a model endpoint reads schemas in has no (?i).
CLASS_PATTERN = "^(" + "|".join("".join(f"[{c.upper()}{c}]" for c in name) for name in CLASSES) + ")$"


def roads_defects(*, user, args: dict) -> ToolResult:
    qs = defect_list(user=user)
    if args.get("street"):
        qs = qs.filter(segment__in=street_resolve(args["street"]))
    if args.get("district"):
        qs = qs.filter(location__within=district_resolve(args["district"]).geom)
    if args.get("severity"):
        qs = qs.filter(severity_level__gte=SEVERITY_LEVELS[args["severity"]])
    if args.get("class"):
        qs = qs.filter(class_name__iexact=args["class"])
    total = qs.count()
    defects = list(qs[:30])
    rows = [{"id": d.pk, "class": d.class_name, "severity": d.severity_label, "priority_score": round(d.priority_score),
             "street": d.segment.name if d.segment else "", "sightings": d.sightings_count, "status": d.status,
             "work_order": d.work_order_id} for d in defects]
    summary = (_("%(n)d open road defects, worst: %(list)s.") % {
        "n": total, "list": "; ".join(f"{r['class']} {r['severity']} {r['street']}".strip() for r in rows[:3])}
        if rows else _("No open road defects match."))
    return ToolResult(data={"count": total, "defects": rows}, summary=summary,
                      links=[{"label": _("Defect #%(id)d") % {"id": d.pk},
                              "url": reverse("roads:defect_detail", args=[d.pk])} for d in defects[:5]])
