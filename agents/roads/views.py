"""The road inspection console (thin views): the dispatcher's panel (defects on the map by severity, segment
condition, the repair queue, camera runs), the crews' upload page and photo viewer with boxes, and the
printable inspection report. Images are served through views that check who may see them."""

from __future__ import annotations

from dataclasses import fields

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_GET, require_POST

from agents.runtime.models import AgentRun
from city_ops.city.geovalidate import city_extent
from city_ops.city.models import CityProfile, RoadSegment
from city_ops.console.decorators import role_required
from city_ops.core.query import whole_number
from city_ops.core.roles import Role, user_has_role
from city_ops.core.timeutil import city_today, date_parse
from city_ops.workorders.models import WorkOrder

from . import selectors
from .conf import conf
from .models import CameraRun, Defect, InspectionPhoto
from .services.defects import SOURCE_AGENT, defect_order_if_due
from .services.photos import PhotoRejected, PhotosRejected, form_position_parse, photos_receive


def _latest_run(user):
    return AgentRun.objects.restrict(user).filter(agent="roads").prefetch_related("kpis").first()


@role_required(Role.DISPATCHER)
def panel(request):
    """The dispatcher's inspection panel."""
    profile = CityProfile.objects.first()
    orders = (
        WorkOrder.objects.restrict(request.user)
        .filter(source_agent=SOURCE_AGENT)
        .exclude(status__in=WorkOrder.CLOSED_STATES)
        .select_related("assignee", "segment")[:50]
    )
    class_filter = request.GET.get("class", "")
    class_filter = class_filter if class_filter in Defect.DefectClass.values else ""
    defects = list(selectors.defect_list(user=request.user, class_name=class_filter)[:25])
    counts = selectors.defect_counts()
    return render(
        request,
        "roads/panel.html",
        {
            "bounds": city_extent(),
            "attribution": (
                profile.attribution if profile and profile.attribution else "© OpenStreetMap contributors"
            ),
            "defects": defects,
            "counts": counts,
            "open_total": counts["by_status"].get("open", 0) + counts["by_status"].get("ordered", 0),
            "levels": [(lvl, counts["by_level"].get(lvl, 0)) for lvl in (4, 3, 2, 1)],
            "classes": [(c, counts["by_class"].get(c, 0)) for c in Defect.DefectClass.values],
            "class_filter": class_filter,
            "orders": orders,
            "worst": selectors.condition_worst(limit=10),
            "photos": selectors.photo_list(user=request.user)[:12],
            "runs": selectors.camera_runs_recent(),
            "latest_run": _latest_run(request.user),
            "threshold": conf("ROADS_ORDER_THRESHOLD"),
            "severity_colors": selectors.SEVERITY_COLORS,
            "photo_counts": dict(InspectionPhoto.objects.values_list("status").annotate(n=Count("id"))),
            "latest_day": _latest_inspection_day(),
        },
    )


def _latest_inspection_day():
    """The city-time date of the newest photo (the report the panel offers), or today."""
    from city_ops.core.timeutil import city_tz

    newest = InspectionPhoto.objects.order_by("-taken_at").values_list("taken_at", flat=True).first()
    return newest.astimezone(city_tz()).date() if newest else city_today()


@role_required(Role.DISPATCHER)
@require_GET
def defects_geojson(request):
    """Active defects as GeoJSON points coloured by severity (``?class=pothole|crack`` keeps one class)."""
    return JsonResponse(
        selectors.defects_geojson(
            user=request.user, status=request.GET.get("status", "active"), class_name=request.GET.get("class", "")
        )
    )


@role_required(Role.DISPATCHER)
@require_GET
def conditions_geojson(request):
    """Inspected segments as GeoJSON lines coloured by condition index."""
    return JsonResponse(selectors.conditions_geojson())


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def upload(request):
    """The crews' phone page: take or choose photos, send the phone's position or drop a pin, upload."""
    profile = CityProfile.objects.first()
    if request.method == "POST":
        try:
            form = form_position_parse(data=request.POST)
            received = photos_receive(files=request.FILES.getlist("image"), form=form, uploader=request.user)
        except PhotoRejected as exc:
            messages.error(request, _("Nothing was uploaded: %(reason)s") % {"reason": exc.message})
            return redirect("roads:upload")
        except PhotosRejected as exc:
            for e in exc.errors:
                messages.error(
                    request,
                    _("%(file)s was refused: %(reason)s")
                    % {"file": e.file_name or _("the upload"), "reason": e.message},
                )
            if len(exc.errors) < len(request.FILES.getlist("image")):
                messages.warning(
                    request, _("Nothing was stored: send the other photos again without the refused ones.")
                )
            return redirect("roads:upload")
        new = sum(1 for r in received if r.created)
        if new:
            messages.success(
                request, _("%(n)s photo(s) received; the detector is looking at them.") % {"n": new}
            )
        if len(received) - new:
            messages.info(request, _("%(n)s photo(s) had been sent before.") % {"n": len(received) - new})
        if len(received) == 1:
            return redirect("roads:photo_detail", pk=received[0].photo.pk)
        return redirect("roads:photos")
    mine = InspectionPhoto.objects.filter(uploader=request.user).order_by("-uploaded_at")[:10]
    return render(
        request,
        "roads/upload.html",
        {
            "recent": mine,
            "bounds": city_extent(),
            "attribution": (
                profile.attribution if profile and profile.attribution else "© OpenStreetMap contributors"
            ),
        },
    )


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def photos(request):
    """Photos: a crew member's own, or all for a dispatcher; status filter."""
    status = request.GET.get("status", "")
    qs = selectors.photo_list(user=request.user, status=status, source=request.GET.get("source", ""))
    page = Paginator(qs, 48).get_page(request.GET.get("page"))
    return render(
        request,
        "roads/photos.html",
        {
            "page": page,
            "photos": page.object_list,
            "status": status,
            "statuses": InspectionPhoto.Status.values,
        },
    )


def _photo_for(request, pk: int) -> InspectionPhoto:
    return get_object_or_404(InspectionPhoto.objects.restrict(request.user).select_related("uploader"), pk=pk)


def _boxes(photo: InspectionPhoto) -> list[dict]:
    """The detections as SVG-ready rectangles with labels (original pixel coordinates)."""
    out = []
    for i, d in enumerate(photo.detections or []):
        x1, y1, x2, y2 = d["box"]
        out.append(
            {
                "i": i + 1,
                "x": x1,
                "y": y1,
                "w": max(1.0, x2 - x1),
                "h": max(1.0, y2 - y1),
                "label": f"{pgettext('road defect class', d['class'])} {d['confidence']:.2f}",
                "class": d["class"],
                "confidence": d["confidence"],
            }
        )
    return out


def _stroke(photo: InspectionPhoto) -> float:
    return selectors.report_stroke(photo)


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def photo_detail(request, pk: int):
    """One photo with its boxes drawn over it (SVG overlay on the blurred copy), status while processing."""
    photo = _photo_for(request, pk)
    sightings = photo.sightings.select_related("defect", "defect__segment", "defect__work_order")
    defects = {s.detection_index: s.defect for s in sightings}
    boxes = _boxes(photo)
    for b in boxes:
        b["defect"] = defects.get(b["i"] - 1)
    return render(
        request,
        "roads/photo_detail.html",
        {
            "photo": photo,
            "boxes": boxes,
            "stroke": _stroke(photo),
            "font": _stroke(photo) * 7,
            "original_available": bool(photo.original) and _original_allowed(request.user),
            "refresh": photo.status in (InspectionPhoto.Status.RECEIVED, InspectionPhoto.Status.PROCESSING),
        },
    )


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
@require_GET
def photo_status(request, pk: int):
    """Status for the viewer's polling: {status, boxes, error}."""
    photo = _photo_for(request, pk)
    return JsonResponse(
        {"id": photo.pk, "status": photo.status, "boxes": len(photo.detections or []), "error": photo.error}
    )


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
@require_GET
def photo_image(request, pk: int):
    """The blurred copy (faces and plates hidden, no EXIF). The unblurred original is never served here."""
    photo = _photo_for(request, pk)
    if not photo.image:
        raise Http404("the photo is not processed yet")
    try:
        response = FileResponse(photo.image.open("rb"), content_type="image/jpeg")
    except FileNotFoundError:
        raise Http404("the image file is missing") from None
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _original_allowed(user) -> bool:
    from city_ops.core.roles import user_roles

    return Role.ADMIN in user_roles(user)


@role_required(Role.ADMIN)
@require_GET
def photo_original(request, pk: int):
    """The unblurred original, for admins only and only within the retention period."""
    photo = get_object_or_404(InspectionPhoto, pk=pk)
    if not photo.original or (photo.original_expires_at and photo.original_expires_at <= timezone.now()):
        raise Http404("the original is no longer kept (retention period)")
    from city_ops.core.services import audit_record

    audit_record(action="roads.original_viewed", obj=photo, actor=request.user)
    response = FileResponse(photo.original.open("rb"))
    response["Cache-Control"] = "private, no-store"
    return response


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def defect_detail(request, pk: int):
    """One defect: where, how bad, its sightings (photos with boxes) and its work order."""
    defect = get_object_or_404(
        Defect.objects.restrict(request.user).select_related("segment", "work_order"), pk=pk
    )
    sightings = defect.sightings.select_related("photo").order_by("seen_at")
    items = []
    for s in sightings:
        x1, y1, x2, y2 = s.box
        items.append(
            {
                "s": s,
                "photo": s.photo,
                "box": {"x": x1, "y": y1, "w": x2 - x1, "h": y2 - y1},
                "stroke": _stroke(s.photo),
            }
        )
    return render(
        request,
        "roads/defect_detail.html",
        {
            "defect": defect,
            "sightings": items,
            "is_dispatcher": user_has_role(request.user, Role.DISPATCHER),
            "threshold": conf("ROADS_ORDER_THRESHOLD"),
        },
    )


@require_POST
@role_required(Role.DISPATCHER)
def defect_order(request, pk: int):
    """A dispatcher orders the repair now, whatever the score."""
    defect = get_object_or_404(Defect.objects.restrict(request.user), pk=pk)
    order = defect_order_if_due(defect=defect, threshold=0.0, user=request.user)
    if order is not None:
        messages.success(request, _("Work order #%(id)s created.") % {"id": order.pk})
    else:
        messages.info(request, _("This defect already has a work order or is closed."))
    return redirect("roads:defect_detail", pk=pk)


@role_required(Role.DISPATCHER)
@require_GET
def camera_run_progress(request, pk: int):
    """A camera run's counters, for the panel's progress bars."""
    run = get_object_or_404(CameraRun, pk=pk)
    return JsonResponse(
        {
            "id": run.pk,
            "status": run.status,
            "placed": run.frames_placed,
            "duplicate": run.frames_duplicate,
            "processed": run.frames_processed,
            "failed": run.frames_failed,
            "defects": run.defects_found,
            "progress_pct": run.progress_pct,
            "kpis": selectors.camera_run_kpis(run=run),
        }
    )


def _report_read(request) -> selectors.InspectionReport:
    """The report the query asks for (?segment=ID or ?date=YYYY-MM-DD, default today); ValueError for a bad
    date, Http404 for an unknown segment. HTML and PDF read the same."""
    if seg := request.GET.get("segment", ""):
        if (segment_id := whole_number(seg)) is None:
            raise Http404("no such segment")
        try:
            return selectors.inspection_report(user=request.user, segment_id=segment_id)
        except RoadSegment.DoesNotExist:
            raise Http404("no such segment") from None
    day = date_parse(request.GET.get("date") or city_today().isoformat())
    return selectors.inspection_report(user=request.user, day=day)


@role_required(Role.DISPATCHER)
@require_GET
def report(request):
    """A printable inspection report for one segment (?segment=ID) or one day (?date=YYYY-MM-DD)."""
    try:
        rep = _report_read(request)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("roads:panel")
    context = {f.name: getattr(rep, f.name) for f in fields(rep)}
    return render(request, "roads/report.html", {**context, "report": rep, "query": request.GET.urlencode()})


@role_required(Role.DISPATCHER)
@require_GET
def report_pdf(request):
    """The same report as a PDF (fpdf2): defects table, photos with their boxes, condition indices."""
    from .report_pdf import report_filename, report_pdf_render

    try:
        rep = _report_read(request)
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    response = HttpResponse(
        report_pdf_render(report=rep, city_name=settings.CITY_NAME), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'inline; filename="{report_filename(report=rep)}"'
    response["Cache-Control"] = "private, no-store"
    return response


@role_required(Role.FIELD_CREW, Role.DISPATCHER)
def my_orders_redirect(request):
    """Crews' orders live in the platform's "My orders" page."""
    return redirect(reverse("console:my_orders"))
