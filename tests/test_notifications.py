"""Notifications: who hears about what (role, area, topic, level), delivery on each channel with a record of
the outcome (console, e-mail through Django's mail backend, a webhook to a real local HTTP server),
acknowledgement, and escalation to the next person when nobody acknowledges."""
from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from city_ops.core.testing import client_for
from city_ops.notifications import services
from city_ops.notifications.models import Delivery, Notification, Subscription
from city_ops.notifications.services import (
    notification_acknowledge,
    notification_deliver,
    notification_send,
    notifications_escalate,
)

pytestmark = pytest.mark.django_db

# A district-sized square in central Helsinki; one point inside it and one outside.
AREA = MultiPolygon(Polygon.from_bbox((24.93, 60.160, 24.95, 60.170)), srid=4326)
INSIDE = Point(24.94, 60.165, srid=4326)
OUTSIDE = Point(24.97, 60.180, srid=4326)


class Gateway:
    """A tiny webhook receiver on 127.0.0.1 (a stand-in for the city's SMS gateway)."""

    def __init__(self):
        self.received: list[dict] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append({"path": self.path, "json": json.loads(body),
                                       "content_type": self.headers.get("Content-Type")})
                self.send_response(outer.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway():
    g = Gateway()
    yield g
    g.close()


@pytest.fixture
def people(users):
    for u in (users.crew, users.crew_other, users.dispatcher, users.admin):
        u.email = f"{u.username}@city.example"
        u.save()
    return users


def _recipients(notes) -> set[str]:
    return {n.recipient.username for n in notes}


# --- who is notified ----------------------------------------------------------------------------------------

def test_subscriptions_by_role_area_topic_and_level(people):
    Subscription.objects.create(role="dispatcher", topic="flood", min_level=1, channels=["console"])
    Subscription.objects.create(role="field_crew", area=AREA, min_level=2, channels=["console"])
    assert _recipients(notification_send(topic="flood", level=1, subject="rain", location=INSIDE)) == {"dispatcher"}
    assert _recipients(notification_send(topic="flood", level=2, subject="water rising", location=INSIDE)) == {
        "dispatcher", "crew", "crew2"}
    # outside the crews' area only the city-wide subscription hears it
    assert _recipients(notification_send(topic="flood", level=3, subject="flooding", location=OUTSIDE)) == {
        "dispatcher"}
    # another topic: only the crews' any-topic subscription, and only inside its area
    assert _recipients(notification_send(topic="bus", level=3, subject="breakdown", location=INSIDE)) == {
        "crew", "crew2"}
    # no place given: area-bound subscriptions stay silent
    assert _recipients(notification_send(topic="bus", level=4, subject="city-wide")) == set()
    assert _recipients(notification_send(topic="flood", level=0, subject="info")) == set()


def test_level_two_and_above_need_acknowledgement(people):
    Subscription.objects.create(role="dispatcher", channels=["console"], escalate_after_min=10)
    (low,) = notification_send(topic="flood", level=1, subject="drizzle")
    (high,) = notification_send(topic="flood", level=2, subject="yellow")
    assert not low.requires_ack and low.escalate_at is None
    assert high.requires_ack
    assert high.escalate_at - timezone.now() == pytest.approx(dt.timedelta(minutes=10), abs=dt.timedelta(seconds=30))


def test_one_notification_per_person_on_every_channel_they_asked_for(people, gateway):
    """A dispatcher covered by the role's console subscription and their own e-mail + SMS subscription gets
    one notification delivered three ways (not three notifications, and not only the first channel)."""
    Subscription.objects.create(role="dispatcher", channels=["console"])
    Subscription.objects.create(user=people.dispatcher, channels=["email", "webhook"], webhook_url=gateway.url)
    (n,) = notification_send(topic="flood", level=1, subject="rain")
    assert sorted(n.deliveries.values_list("channel", flat=True)) == ["console", "email", "webhook"]


def test_deliveries_go_out_after_commit(people, django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr(services, "_deliver_later", lambda ids: queued.append(ids))
    Subscription.objects.create(role="field_crew", channels=["console"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        notes = notification_send(topic="flood", level=1, subject="rain")
    assert queued == []  # nothing is sent from inside the transaction
    for cb in callbacks:
        cb()
    assert queued == [[n.pk for n in notes]]


# --- delivery ---------------------------------------------------------------------------------------------

def test_console_email_and_webhook_delivery(people, gateway):
    people.crew.profile.phone = "+358 40 1234567"
    people.crew.profile.save()
    Subscription.objects.create(user=people.crew, channels=["console", "email", "webhook"], webhook_url=gateway.url)
    (n,) = notification_send(topic="flood", level=3, subject="Underpass flooded", body="Close Kaivokatu underpass",
                             location=INSIDE, source_ref="alert:7")
    out = {d.channel: d for d in notification_deliver(notification_id=n.pk)}
    assert {c: d.status for c, d in out.items()} == {"console": "sent", "email": "sent", "webhook": "sent"}
    assert all(d.sent_at and d.attempts == 1 for d in out.values())
    (email,) = mail.outbox
    assert email.to == ["crew@city.example"] and email.subject == "Underpass flooded"
    assert "Kaivokatu" in email.body
    (call,) = gateway.received
    assert call["path"] == "/sms" and call["content_type"] == "application/json"
    assert call["json"]["to"] == "crew" and call["json"]["phone"] == "+358 40 1234567"
    assert call["json"]["subject"] == "Underpass flooded" and call["json"]["level"] == 3
    # delivered ones are not sent again
    assert notification_deliver(notification_id=n.pk) == [] and len(gateway.received) == 1


def test_failing_webhook_is_recorded_then_retried(people, gateway):
    Subscription.objects.create(user=people.crew, channels=["webhook", "email"], webhook_url=gateway.url)
    (n,) = notification_send(topic="flood", level=1, subject="rain")
    gateway.status = 500
    out = {d.channel: d for d in notification_deliver(notification_id=n.pk)}  # does not raise
    assert out["webhook"].status == "failed" and "500" in out["webhook"].detail
    assert out["email"].status == "sent"
    # the gateway recovers: the next round delivers to the same address (the error did not replace it)
    gateway.status = 200
    (again,) = notification_deliver(notification_id=n.pk)
    assert again.channel == "webhook" and again.status == "sent" and again.attempts == 2
    assert again.target == gateway.url and again.detail == ""
    assert len(gateway.received) == 2


def test_unreachable_webhook_and_missing_address_fail_softly(people, gateway, settings):
    url = gateway.url
    gateway.close()  # nothing listens there any more
    settings.NOTIFY_WEBHOOK_URL = url
    people.crew_other.email = ""
    people.crew_other.save()
    Subscription.objects.create(user=people.crew_other, channels=["webhook", "email"])
    (n,) = notification_send(topic="flood", level=1, subject="rain")
    out = {d.channel: d for d in notification_deliver(notification_id=n.pk)}
    assert out["webhook"].status == "failed" and "URLError" in out["webhook"].detail
    assert out["email"].status == "failed" and "no e-mail address" in out["email"].detail
    assert not mail.outbox
    # gives up after five attempts
    for _ in range(6):
        notification_deliver(notification_id=n.pk)
    assert set(Delivery.objects.filter(notification=n).values_list("attempts", flat=True)) == {5}


# --- acknowledgement and escalation ---------------------------------------------------------------------------

@pytest.fixture
def crew_alert(people):
    """A red alert to the first crew member only (their own subscription), escalating after 15 minutes."""
    Subscription.objects.create(user=people.crew, channels=["console", "email"], escalate_after_min=15)
    (n,) = notification_send(topic="flood", level=4, subject="Red alert: Kamppi")
    return n


def _later(minutes: int):
    return timezone.now() + dt.timedelta(minutes=minutes)


def test_escalation_goes_to_the_next_person_in_time(people, crew_alert):
    assert notifications_escalate(now=_later(10)) == []  # not yet
    (esc,) = notifications_escalate(now=_later(16))
    assert esc.recipient == people.crew_other  # the next field-crew member
    assert esc.escalated_from == crew_alert and esc.subject == "[escalated] Red alert: Kamppi"
    assert sorted(esc.deliveries.values_list("channel", flat=True)) == ["console", "email"]
    assert notifications_escalate(now=_later(17)) == []  # escalated once, not every tick
    # nobody answers: after the last crew member, every admin is asked; then the chain ends
    (to_admin,) = notifications_escalate(now=_later(40))
    assert to_admin.recipient == people.admin and to_admin.escalated_from == esc
    assert notifications_escalate(now=_later(120)) == []
    assert Notification.objects.count() == 3


def test_acknowledgement_stops_escalation(people, crew_alert):
    with pytest.raises(PermissionDenied):
        notification_acknowledge(notification=crew_alert, user=people.crew_other)
    notification_acknowledge(notification=crew_alert, user=people.crew)
    crew_alert.refresh_from_db()
    assert crew_alert.acknowledged_at is not None and crew_alert.read_at is not None
    assert notifications_escalate(now=_later(60)) == []


def test_late_acknowledgement_stops_the_escalated_copies(people, crew_alert):
    (esc,) = notifications_escalate(now=_later(16))
    notification_acknowledge(notification=crew_alert, user=people.crew)  # the first recipient answers late
    assert notifications_escalate(now=_later(60)) == []
    esc.refresh_from_db()
    assert esc.escalate_at is None


def test_escalation_to_the_configured_person(people):
    Subscription.objects.create(user=people.crew_other, channels=["console"], escalate_after_min=5,
                                escalate_to=people.dispatcher)
    notification_send(topic="flood", level=2, subject="yellow")
    (esc,) = notifications_escalate(now=_later(6))
    assert esc.recipient == people.dispatcher


def test_acknowledge_over_the_api_and_console(people, crew_alert):
    other = client_for("crew_other", people)
    assert other.post(f"/api/notifications/{crew_alert.pk}/ack/").status_code == 404
    crew = client_for("crew", people)
    listed = crew.get("/api/notifications/").json()["results"]
    assert [x["id"] for x in listed] == [crew_alert.pk] and listed[0]["acknowledged_at"] is None
    page = crew.get("/my-orders/").content.decode()
    assert 'id="unread-count">1<' in page  # the top bar's badge
    page = crew.get("/notifications/").content.decode()
    assert "Red alert: Kamppi" in page and "Acknowledge" in page
    resp = crew.post(f"/notifications/{crew_alert.pk}/ack/", follow=True)
    assert resp.status_code == 200 and "acknowledged" in resp.content.decode()
    crew_alert.refresh_from_db()
    assert crew_alert.acknowledged_at is not None
    assert 'id="unread-count"' not in crew.get("/my-orders/").content.decode()
    assert notifications_escalate(now=_later(60)) == []
