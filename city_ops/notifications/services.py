"""Notification writes: fan out to subscribers, deliver per channel, acknowledge, escalate."""
from __future__ import annotations

import json
import logging
import urllib.request
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Delivery, Notification, Subscription

log = logging.getLogger(__name__)


def _subscribers(*, topic: str, level: int, location: Point | None):
    subs = Subscription.objects.filter(min_level__lte=level).filter(Q(topic="") | Q(topic=topic))
    if location is not None:
        subs = subs.filter(Q(area__isnull=True) | Q(area__contains=location))
    else:
        subs = subs.filter(area__isnull=True)
    user_model = get_user_model()
    for sub in subs:
        users = [sub.user] if sub.user_id else list(
            user_model.objects.filter(is_active=True, groups__name=sub.role).order_by("id"))
        for user in users:
            yield sub, user


@transaction.atomic
def notification_send(
    *, topic: str, level: int, subject: str, body: str = "", location: Point | None = None,
    source_ref: str = "", requires_ack: bool | None = None,
) -> list[Notification]:
    """Notify every subscriber of `topic` at `level` whose area holds `location`. Level >= 2 (yellow)
    needs acknowledgement and escalates when nobody acknowledges in time. Deliveries go out after commit."""
    requires_ack = level >= 2 if requires_ack is None else requires_ack
    sent: list[Notification] = []
    seen: set[int] = set()
    for sub, user in _subscribers(topic=topic, level=level, location=location):
        if user.pk in seen:
            continue
        seen.add(user.pk)
        n = Notification.objects.create(
            recipient=user, topic=topic, level=level, subject=subject[:200], body=body, location=location,
            source_ref=source_ref, requires_ack=requires_ack,
            escalate_at=timezone.now() + timedelta(minutes=sub.escalate_after_min) if requires_ack else None,
            escalate_to=sub.escalate_to,
        )
        for channel in sub.channels or [Subscription.Channel.CONSOLE]:
            Delivery.objects.create(notification=n, channel=channel,
                                    detail=sub.webhook_url if channel == "webhook" else "")
        sent.append(n)
    ids = [n.pk for n in sent]
    if ids:
        transaction.on_commit(lambda: _deliver_later(ids))
    return sent


def _deliver_later(ids: list[int]) -> None:
    from .tasks import deliver_notifications

    deliver_notifications.apply_async(args=[ids], queue="default")


def notification_deliver(*, notification_id: int) -> list[Delivery]:
    """Deliver one notification on each of its channels; failures are recorded, not raised."""
    n = Notification.objects.select_related("recipient").get(pk=notification_id)
    done = []
    for d in n.deliveries.filter(status__in=["pending", "failed"], attempts__lt=5):
        d.attempts += 1
        try:
            if d.channel == "console":
                pass  # the console lists it; delivery is the row itself
            elif d.channel == "email":
                if not n.recipient.email:
                    raise ValueError("recipient has no e-mail address")
                send_mail(n.subject, n.body or n.subject, settings.DEFAULT_FROM_EMAIL, [n.recipient.email])
            elif d.channel == "webhook":
                url = d.detail or settings.NOTIFY_WEBHOOK_URL
                if not url:
                    raise ValueError("no webhook URL configured")
                payload = json.dumps({"to": n.recipient.username, "phone": getattr(getattr(n.recipient, "profile", None), "phone", ""),
                                      "subject": n.subject, "body": n.body, "level": n.level, "topic": n.topic}).encode()
                req = urllib.request.Request(url, data=payload, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 (URL is configured by admins)
                    if resp.status >= 300:
                        raise ValueError(f"webhook answered {resp.status}")
            d.status, d.sent_at, d.detail = "sent", timezone.now(), d.detail
        except Exception as exc:
            d.status = "failed"
            d.detail = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("delivery %s of notification %s failed: %s", d.channel, n.pk, exc)
        d.save()
        done.append(d)
    return done


def notification_acknowledge(*, notification: Notification, user) -> Notification:
    if notification.recipient_id != user.pk:
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("only the recipient acknowledges a notification")
    Notification.objects.filter(pk=notification.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), read_at=timezone.now())
    notification.refresh_from_db()
    return notification


def notifications_escalate(*, now=None) -> list[Notification]:
    """Unacknowledged notifications past their escalation time go to the next person: the configured
    escalate_to, else the next user of the recipient's role (by id), else every admin."""
    now = now or timezone.now()
    user_model = get_user_model()
    out = []
    due = Notification.objects.filter(requires_ack=True, acknowledged_at__isnull=True, escalate_at__lte=now)
    for n in due.select_related("recipient"):
        # Clear the timer first (conditional), so two beat ticks escalate once.
        if not Notification.objects.filter(pk=n.pk, escalate_at=n.escalate_at).update(escalate_at=None):
            continue
        target = n.escalate_to
        if target is None:
            groups = list(n.recipient.groups.values_list("name", flat=True))
            target = (user_model.objects.filter(groups__name__in=groups, is_active=True, id__gt=n.recipient_id)
                      .exclude(pk=n.recipient_id).order_by("id").first()
                      or user_model.objects.filter(is_superuser=True, is_active=True).exclude(pk=n.recipient_id).first())
        if target is None:
            continue
        esc = Notification.objects.create(
            recipient=target, topic=n.topic, level=n.level, subject=f"[escalated] {n.subject}"[:200], body=n.body,
            location=n.location, source_ref=n.source_ref, requires_ack=True, escalated_from=n,
            escalate_at=now + timedelta(minutes=settings.NOTIFY_ESCALATE_AFTER_MIN),
        )
        for d in n.deliveries.all():
            Delivery.objects.create(notification=esc, channel=d.channel, detail=d.detail if d.channel == "webhook" else "")
        out.append(esc)
        transaction.on_commit(lambda pk=esc.pk: _deliver_later([pk]))
    return out
