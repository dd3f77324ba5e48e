"""Work orders: the workflow and who may move it, the 'after' photo that closes a repair, overdue marking,
idempotent creation per source, the history with its actors, and photo uploads that are refused whole."""
from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.contrib.gis.geos import Point
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from city_ops.core.models import AuditEntry
from city_ops.core.roles import Role
from city_ops.core.services import user_create
from city_ops.core.testing import client_for
from city_ops.workorders.models import WorkOrder, WorkOrderEvent, WorkOrderPhoto
from city_ops.workorders.services import (
    SLA,
    work_order_create,
    work_order_photo_add,
    work_order_transition,
)

pytestmark = pytest.mark.django_db
HERE = Point(24.9414, 60.1669, srid=4326)


def _image(fmt: str = "JPEG", size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 40, 40)).save(buf, fmt)
    return buf.getvalue()


def _upload(data: bytes, name: str = "after.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def order(users):
    o, _ = work_order_create(title="Pothole, Fredrikinkatu 20", location=HERE, priority=WorkOrder.Priority.HIGH,
                             user=users.dispatcher)
    return o


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# --- the workflow ---------------------------------------------------------------------------------------------

def test_full_repair_workflow_with_history(users, order, media):
    assert order.status == "new" and order.assignee is None
    assert order.due_at - order.created_at == pytest.approx(SLA[WorkOrder.Priority.HIGH], abs=dt.timedelta(seconds=5))
    work_order_transition(order=order, to_status="assigned", assignee=users.crew, user=users.dispatcher)
    work_order_transition(order=order, to_status="in_progress", user=users.crew, note="on site")
    with pytest.raises(ValidationError, match="after"):
        work_order_transition(order=order, to_status="done", user=users.crew)  # no photo yet
    work_order_photo_add(order=order, kind="after", image=_upload(_image()), user=users.crew)
    order.refresh_from_db()
    assert order.status == "done" and order.closed_at is not None
    work_order_transition(order=order, to_status="verified", user=users.dispatcher)
    order.refresh_from_db()
    assert order.status == "verified"
    events = list(WorkOrderEvent.objects.filter(order=order).values_list("actor_label", "from_status", "to_status"))
    assert events == [
        ("dispatcher", "", "new"),
        ("dispatcher", "new", "assigned"),
        ("crew", "assigned", "in_progress"),
        ("crew", "", ""),  # the photo
        ("crew", "in_progress", "done"),
        ("dispatcher", "done", "verified"),
    ]
    assert WorkOrderEvent.objects.filter(order=order, note="on site", actor=users.crew).exists()
    assert AuditEntry.objects.filter(object_type="workorders.workorder", object_id=str(order.pk),
                                     action="work_order.transition", actor=users.crew).count() == 2
    assert order.photos.get().uploaded_by == users.crew


@pytest.mark.parametrize("path,bad", [
    (["cancelled"], "in_progress"),  # a cancelled order stays cancelled
    ([], "done"),  # new -> done skips the work
    ([], "verified"),
    (["assigned", "in_progress"], "new"),
])
def test_refused_transitions(users, order, path, bad):
    for status in path:
        work_order_transition(order=order, to_status=status, user=users.dispatcher,
                              assignee=users.crew if status == "assigned" else None)
    before = WorkOrderEvent.objects.filter(order=order).count()
    with pytest.raises(ValidationError, match="cannot become"):
        work_order_transition(order=order, to_status=bad, user=users.dispatcher)
    assert WorkOrderEvent.objects.filter(order=order).count() == before  # nothing recorded


def test_crew_may_only_start_and_finish_their_own(users, order):
    work_order_transition(order=order, to_status="assigned", assignee=users.crew, user=users.dispatcher)
    with pytest.raises(PermissionDenied):
        work_order_transition(order=order, to_status="in_progress", user=users.crew_other)
    with pytest.raises(PermissionDenied):
        work_order_transition(order=order, to_status="cancelled", user=users.crew)
    with pytest.raises(PermissionDenied):
        work_order_photo_add(order=order, kind="after", image=_upload(_image()), user=users.crew_other)
    work_order_transition(order=order, to_status="in_progress", user=users.crew)
    order.refresh_from_db()
    assert order.status == "in_progress"


def test_assigning_needs_a_field_crew_member(users, order):
    with pytest.raises(ValidationError, match="assignee"):
        work_order_transition(order=order, to_status="assigned", user=users.dispatcher)
    with pytest.raises(ValidationError, match="field crew"):
        work_order_transition(order=order, to_status="assigned", assignee=users.dispatcher, user=users.dispatcher)
    order.refresh_from_db()
    assert order.status == "new" and order.assignee is None


def test_unassigning_returns_the_order_to_the_queue(users, order):
    work_order_transition(order=order, to_status="assigned", assignee=users.crew, user=users.dispatcher)
    work_order_transition(order=order, to_status="new", user=users.dispatcher, note="crew sick")
    order.refresh_from_db()
    assert order.status == "new" and order.assignee is None
    assert not WorkOrder.objects.restrict(users.crew).filter(pk=order.pk).exists()


def test_after_photo_closes_the_repair_over_the_api(users, order, media):
    work_order_transition(order=order, to_status="assigned", assignee=users.crew, user=users.dispatcher)
    crew = client_for("crew", users)
    assert crew.post(f"/api/workorders/{order.pk}/transition/", {"status": "in_progress"},
                     content_type="application/json").json()["status"] == "in_progress"
    resp = crew.post(f"/api/workorders/{order.pk}/photos/", {"kind": "after", "image": _upload(_image())})
    assert resp.status_code == 201 and resp.json()["status"] == "done"
    photo = WorkOrderPhoto.objects.get(order=order)
    assert photo.kind == "after" and Path(photo.image.path).is_file()
    assert Path(photo.image.path).is_relative_to(media)


def test_before_photo_does_not_close(users, order, media):
    work_order_transition(order=order, to_status="assigned", assignee=users.crew, user=users.dispatcher)
    work_order_transition(order=order, to_status="in_progress", user=users.crew)
    work_order_photo_add(order=order, kind="before", image=_upload(_image()), user=users.crew)
    order.refresh_from_db()
    assert order.status == "in_progress"


def test_no_photos_on_a_cancelled_order(users, order, media):
    work_order_transition(order=order, to_status="cancelled", user=users.dispatcher)
    with pytest.raises(ValidationError, match="cancelled"):
        work_order_photo_add(order=order, kind="after", image=_upload(_image()), user=users.dispatcher)
    assert not _stored_files(media)


# --- overdue and idempotency ---------------------------------------------------------------------------------

def test_overdue_marking(users):
    past = timezone.now() - dt.timedelta(hours=2)
    late, _ = work_order_create(title="late", location=HERE, due_at=past, assignee=users.crew)
    done_late, _ = work_order_create(title="late but cancelled", location=HERE, due_at=past)
    work_order_transition(order=done_late, to_status="cancelled", user=users.dispatcher)
    on_time, _ = work_order_create(title="on time", location=HERE)
    assert set(WorkOrder.objects.overdue()) == {late}
    assert WorkOrder.objects.get(pk=late.pk).is_overdue
    assert not WorkOrder.objects.get(pk=done_late.pk).is_overdue and not on_time.is_overdue
    api = client_for("dispatcher", users).get("/api/workorders/").json()["results"]
    assert {o["id"]: o["is_overdue"] for o in api} == {late.pk: True, done_late.pk: False, on_time.pk: False}
    page = client_for("dispatcher", users).get("/workorders/?status=open&overdue=1").content.decode()
    assert f'data-order="{late.pk}"' in page and f'data-order="{on_time.pk}"' not in page
    assert "overdue-flag" in page
    assert f'data-order="{late.pk}"' in client_for("crew", users).get("/my-orders/").content.decode()


def test_creation_is_idempotent_per_source(users):
    a, created_a = work_order_create(title="Defect 12", location=HERE, source_agent="roads", source_ref="defect:12")
    b, created_b = work_order_create(title="Defect 12 again", location=HERE, source_agent="roads",
                                     source_ref="defect:12")
    c, created_c = work_order_create(title="Defect 12 seen by flood", location=HERE, source_agent="flood",
                                     source_ref="defect:12")
    assert created_a and not created_b and created_c
    assert a.pk == b.pk != c.pk and WorkOrder.objects.get(pk=a.pk).title == "Defect 12"
    assert WorkOrderEvent.objects.get(order=a).actor_label == "agent:roads"
    # Without a source reference every call is a new order (a dispatcher's manual orders).
    x, _ = work_order_create(title="manual", location=HERE)
    y, _ = work_order_create(title="manual", location=HERE)
    assert x.pk != y.pk


def test_creation_race_returns_the_winner(users, monkeypatch):
    """Two workers that both miss the existing-order check meet the unique constraint; the loser gets the
    winner's order instead of an IntegrityError."""
    winner, _ = work_order_create(title="Defect 7", location=HERE, source_agent="roads", source_ref="defect:7")
    real_filter = WorkOrder.objects.filter

    class _Miss:
        def first(self):
            return None

    missed = []

    def filter_missing_first(*args, **kwargs):  # the check runs before the winner committed
        if kwargs.get("source_ref") == "defect:7" and not args:
            missed.append(kwargs)
            monkeypatch.setattr(WorkOrder.objects, "filter", real_filter)
            return _Miss()
        return real_filter(*args, **kwargs)

    monkeypatch.setattr(WorkOrder.objects, "filter", filter_missing_first)
    loser, created = work_order_create(title="Defect 7 (second worker)", location=HERE, source_agent="roads",
                                       source_ref="defect:7")
    assert missed and not created and loser.pk == winner.pk
    assert WorkOrder.objects.filter(source_ref="defect:7").count() == 1


# --- uploads ------------------------------------------------------------------------------------------------------

@pytest.fixture
def started(users, order):
    work_order_transition(order=order, to_status="assigned", assignee=users.crew, user=users.dispatcher)
    work_order_transition(order=order, to_status="in_progress", user=users.crew)
    return order


def _truncated_jpeg() -> bytes:
    data = _image(size=(640, 480))
    return data[: len(data) // 2]


@pytest.mark.parametrize("payload,name,status,message", [
    (b"%PDF-1.4 not a photo at all", "after.jpg", 415, "not an image"),
    ("truncated", "after.jpg", 400, "truncated"),
    (b"", "after.jpg", 400, "empty"),
    ("gif", "after.gif", 415, "GIF"),
])
def test_bad_uploads_are_refused_and_nothing_stored(users, started, media, payload, name, status, message):
    if payload == "truncated":
        payload = _truncated_jpeg()
    elif payload == "gif":
        payload = _image("GIF")
    crew = client_for("crew", users)
    resp = crew.post(f"/api/workorders/{started.pk}/photos/", {"kind": "after", "image": _upload(payload, name)})
    assert resp.status_code == status, resp.content
    assert message.lower() in resp.json()["image"].lower()
    assert not WorkOrderPhoto.objects.exists() and not _stored_files(media)
    started.refresh_from_db()
    assert started.status == "in_progress"


def test_oversized_upload_is_refused(users, started, media, settings):
    settings.CITY_OPS_MAX_UPLOAD_BYTES = 20_000
    import random

    # a real image, just too large (noise does not compress)
    img = Image.frombytes("RGB", (400, 400), random.Random(3).randbytes(400 * 400 * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    big = buf.getvalue()
    assert len(big) > settings.CITY_OPS_MAX_UPLOAD_BYTES
    resp = client_for("crew", users).post(f"/api/workorders/{started.pk}/photos/",
                                          {"kind": "after", "image": _upload(big, "big.png", "image/png")})
    assert resp.status_code == 413 and "limit" in resp.json()["image"]
    assert not WorkOrderPhoto.objects.exists() and not _stored_files(media)


def test_missing_file_and_bad_kind(users, started, media):
    crew = client_for("crew", users)
    resp = crew.post(f"/api/workorders/{started.pk}/photos/", {"kind": "after"})
    assert resp.status_code == 400 and "image" in resp.json()
    resp = crew.post(f"/api/workorders/{started.pk}/photos/", {"kind": "sideways", "image": _upload(_image())})
    assert resp.status_code == 400 and not _stored_files(media)


# --- the console ----------------------------------------------------------------------------------------------------

def test_console_crew_starts_and_closes_with_a_photo(users, order, media):
    work_order_transition(order=order, to_status="assigned", assignee=users.crew, user=users.dispatcher)
    crew = client_for("crew", users)
    page = crew.get("/my-orders/").content.decode()
    assert "Start work" in page and "Pothole, Fredrikinkatu 20" in page
    resp = crew.post(f"/workorders/{order.pk}/action/", {"action": "start", "next": "/my-orders/"})
    assert resp.status_code == 302 and resp["Location"] == "/my-orders/"
    order.refresh_from_db()
    assert order.status == "in_progress"
    # a broken photo is refused with a message; nothing is stored, the order stays open
    resp = crew.post(f"/workorders/{order.pk}/photo/", {"kind": "after", "image": _upload(_truncated_jpeg())},
                     follow=True)
    assert "not accepted" in resp.content.decode() and not _stored_files(media)
    order.refresh_from_db()
    assert order.status == "in_progress"
    resp = crew.post(f"/workorders/{order.pk}/photo/", {"kind": "after", "image": _upload(_image())}, follow=True)
    order.refresh_from_db()
    assert order.status == "done" and "is done" in resp.content.decode()
    photo = order.photos.get()
    resp = crew.get(f"/workorders/{order.pk}/photos/{photo.pk}/")
    assert resp.status_code == 200 and b"".join(resp.streaming_content)[:2] == b"\xff\xd8"


def test_console_dispatcher_assigns_and_cancels(users, order):
    disp = client_for("dispatcher", users)
    page = disp.get("/workorders/").content.decode()
    assert f'data-order="{order.pk}"' in page and f'<option value="{users.crew.pk}"' in page
    # a dispatcher is not a crew member: the console offers only crews, and refuses others
    assert f'<option value="{users.dispatcher.pk}"' not in page
    disp.post(f"/workorders/{order.pk}/action/", {"action": "assign", "assignee": users.dispatcher.pk})
    order.refresh_from_db()
    assert order.status == "new"
    disp.post(f"/workorders/{order.pk}/action/", {"action": "assign", "assignee": users.crew.pk})
    order.refresh_from_db()
    assert order.status == "assigned" and order.assignee == users.crew
    resp = disp.post(f"/workorders/{order.pk}/action/", {"action": "cancel", "next": "/workorders/"})
    assert resp["Location"] == "/workorders/"
    order.refresh_from_db()
    assert order.status == "cancelled" and order.closed_at is not None
    history = disp.get(f"/workorders/{order.pk}/").content.decode()
    assert "Cancelled" in history and "Assigned" in history
    # closed orders leave the default (open) list
    assert f'data-order="{order.pk}"' not in disp.get("/workorders/").content.decode()
    assert f'data-order="{order.pk}"' in disp.get("/workorders/?status=cancelled").content.decode()


def test_admin_counts_as_crew_for_assignment(db):
    admin = user_create(username="ops-admin", password="pw-admin-123", roles=[Role.ADMIN])
    order, _ = work_order_create(title="x", location=HERE, assignee=admin)
    assert order.status == "assigned"
