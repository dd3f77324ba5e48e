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
    for sub in subs.order_by("id"):
        users = [sub.user] if sub.user_id else list(
            user_model.objects.filter(is_active=True, groups__name=sub.role).order_by("id").distinct())
        for user in users:
            yield sub, user


@transaction.atomic
def notification_send(
    *, topic: str, level: int, subject: str, body: str = "", location: Point | None = None,
    source_ref: str = "", requires_ack: bool | None = None,
) -> list[Notification]:
    """Notify every subscriber of `topic` at `level` whose area holds `location`. Level >= 2 (yellow)
    needs acknowledgement and escalates when nobody acknowledges in time. A person matched by several
    subscriptions (their role's and their own) gets one notification on every channel those name.
    Deliveries go out after commit."""
    requires_ack = level >= 2 if requires_ack is None else requires_ack
    per_user: dict[int, dict] = {}
    for sub, user in _subscribers(topic=topic, level=level, location=location):
        entry = per_user.setdefault(user.pk, {"user": user, "targets": [], "after_min": sub.escalate_after_min,
                                              "escalate_to": sub.escalate_to})
        entry["after_min"] = min(entry["after_min"], sub.escalate_after_min)
        entry["escalate_to"] = entry["escalate_to"] or sub.escalate_to
        for channel in sub.channels or [Subscription.Channel.CONSOLE]:
            target = sub.webhook_url if channel == Subscription.Channel.WEBHOOK else ""
            if (channel, target) not in entry["targets"]:
                entry["targets"].append((channel, target))
    sent: list[Notification] = []
    for entry in per_user.values():
        n = Notification.objects.create(
            recipient=entry["user"], topic=topic, level=level, subject=subject[:200], body=body,
            location=location, source_ref=source_ref, requires_ack=requires_ack,
            escalate_at=timezone.now() + timedelta(minutes=entry["after_min"]) if requires_ack else None,
            escalate_to=entry["escalate_to"],
        )
        Delivery.objects.bulk_create([Delivery(notification=n, channel=channel, target=target)
                                      for channel, target in entry["targets"]])
        sent.append(n)
    ids = [n.pk for n in sent]
    if ids:
        transaction.on_commit(lambda: _deliver_later(ids))
    return sent


def _deliver_later(ids: list[int]) -> None:
    from .tasks import deliver_notifications

    deliver_notifications.apply_async(args=[ids], queue="default")


def notification_deliver(*, notification_id: int) -> list[Delivery]:
    """Deliver one notification on each of its channels; failures are recorded, not raised, and a later
    call retries them (up to 5 attempts)."""
    n = Notification.objects.select_related("recipient").get(pk=notification_id)
    done = []
    for d in n.deliveries.filter(status__in=["pending", "failed"], attempts__lt=5):
        d.attempts += 1
        try:
            if d.channel == Subscription.Channel.CONSOLE:
                pass  # the console lists it; delivery is the row itself
            elif d.channel == Subscription.Channel.EMAIL:
                if not n.recipient.email:
                    raise ValueError("recipient has no e-mail address")
                send_mail(n.subject, n.body or n.subject, settings.DEFAULT_FROM_EMAIL, [n.recipient.email])
            elif d.channel == Subscription.Channel.WEBHOOK:
                _webhook_post(url=d.target or settings.NOTIFY_WEBHOOK_URL, notification=n)
            else:
                raise ValueError(f"unknown channel {d.channel!r}")
            d.status, d.sent_at, d.detail = "sent", timezone.now(), ""
        except Exception as exc:  # noqa: BLE001  (any channel failure is recorded on the delivery, retried later)
            d.status = "failed"
            d.detail = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("delivery %s of notification %s failed: %s", d.channel, n.pk, exc)
        d.save()
        done.append(d)
    return done


def _webhook_post(*, url: str, notification: Notification) -> None:
    """POST the notification as JSON to the city's messaging gateway (SMS, chat)."""
    if not url:
        raise ValueError("no webhook URL configured")
    n = notification
    payload = json.dumps({
        "id": n.pk, "to": n.recipient.username, "phone": getattr(getattr(n.recipient, "profile", None), "phone", ""),
        "subject": n.subject, "body": n.body, "level": n.level, "topic": n.topic, "source_ref": n.source_ref,
        "requires_ack": n.requires_ack,
    }).encode()
    req = urllib.request.Request(url, data=payload, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as resp:  # the URL is set by admins, not by users
        if resp.status >= 300:
            raise ValueError(f"webhook answered {resp.status}")


def _chain(notification: Notification) -> list[Notification]:
    """Every notification of one escalation chain: the first one and all its escalated copies."""
    root, climbed = notification, {notification.pk}
    while root.escalated_from_id and root.escalated_from_id not in climbed:  # guard against a cycle
        root = Notification.objects.get(pk=root.escalated_from_id)
        climbed.add(root.pk)
    chain, seen, frontier = [root], {root.pk}, [root.pk]
    while frontier:
        children = list(Notification.objects.filter(escalated_from_id__in=frontier).exclude(pk__in=seen))
        seen.update(c.pk for c in children)
        chain.extend(children)
        frontier = [c.pk for c in children]
    return chain


@transaction.atomic
def notification_acknowledge(*, notification: Notification, user) -> Notification:
    """The recipient confirms they have it. That stops its escalation, and the escalation of the copies
    already sent up the chain: one person acknowledging is enough to stop waking others."""
    if notification.recipient_id != user.pk:
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("only the recipient acknowledges a notification")
    now = timezone.now()
    Notification.objects.filter(pk=notification.pk, acknowledged_at__isnull=True).update(
        acknowledged_at=now, read_at=now, escalate_at=None)
    others = [n.pk for n in _chain(notification) if n.pk != notification.pk]
    if others:
        Notification.objects.filter(pk__in=others).update(escalate_at=None)
    notification.refresh_from_db()
    return notification


def _admins(user_model):
    from city_ops.core.roles import Role

    return (user_model.objects.filter(is_active=True)
            .filter(Q(is_superuser=True) | Q(groups__name=Role.ADMIN.value)).order_by("id").distinct())


def notifications_escalate(*, now=None) -> list[Notification]:
    """Unacknowledged notifications past their escalation time go to the next person: the configured
    escalate_to, else the next user of the recipient's role (by id), else every admin. Nobody already in
    the chain is asked twice, so a chain ends once everyone has been asked."""
    now = now or timezone.now()
    user_model = get_user_model()
    out = []
    due = Notification.objects.filter(requires_ack=True, acknowledged_at__isnull=True, escalate_at__lte=now)
    for n in due.select_related("recipient", "escalate_to").order_by("id"):
        # Clear the timer first (conditional), so two beat ticks escalate once.
        if not Notification.objects.filter(pk=n.pk, escalate_at=n.escalate_at).update(escalate_at=None):
            continue
        asked = {c.recipient_id for c in _chain(n)}
        targets = []
        if n.escalate_to is not None and n.escalate_to.is_active and n.escalate_to.pk not in asked:
            targets = [n.escalate_to]
        if not targets:
            groups = list(n.recipient.groups.values_list("name", flat=True))
            nxt = (user_model.objects.filter(groups__name__in=groups, is_active=True, id__gt=n.recipient_id)
                   .exclude(pk__in=asked).order_by("id").first())
            targets = [nxt] if nxt else list(_admins(user_model).exclude(pk__in=asked))
        subject = n.subject if n.subject.startswith("[escalated] ") else f"[escalated] {n.subject}"[:200]
        for target in targets:
            esc = Notification.objects.create(
                recipient=target, topic=n.topic, level=n.level, subject=subject,
                body=n.body, location=n.location, source_ref=n.source_ref, requires_ack=True, escalated_from=n,
                escalate_at=now + timedelta(minutes=settings.NOTIFY_ESCALATE_AFTER_MIN),
            )
            Delivery.objects.bulk_create([Delivery(notification=esc, channel=d.channel, target=d.target)
                                          for d in n.deliveries.all()]
                                         or [Delivery(notification=esc, channel=Subscription.Channel.CONSOLE)])
            out.append(esc)
            transaction.on_commit(lambda pk=esc.pk: _deliver_later([pk]))
    return out
