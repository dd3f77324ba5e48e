"""Notification tasks: deliver after commit; escalate unacknowledged ones every minute (beat)."""
from celery import shared_task

from agents.runtime.errors import TRANSIENT_ERRORS


@shared_task(name="notifications.deliver", acks_late=True, autoretry_for=TRANSIENT_ERRORS,
             retry_backoff=5, retry_backoff_max=300, max_retries=5)
def deliver_notifications(notification_ids: list[int]) -> int:
    from .services import notification_deliver

    return sum(len(notification_deliver(notification_id=i)) for i in notification_ids)


@shared_task(name="notifications.escalate", acks_late=True)
def escalate_notifications() -> int:
    from .services import notifications_escalate

    return len(notifications_escalate())
