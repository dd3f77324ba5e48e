"""The API tokens crews' phone apps upload with (`Authorization: Token <key>`)."""
from __future__ import annotations

from django.db import transaction

from city_ops.core.roles import Role, user_has_role
from city_ops.core.services import audit_record


class CrewTokenError(ValueError):
    """The user may not have an upload token."""


@transaction.atomic
def crew_token_issue(*, user, reset: bool = False, actor_label: str = "") -> tuple[str, bool]:
    """The user's token key, created when missing (or replaced with `reset`); returns (key, created).
    Only field crews and dispatchers upload, so only they get one; a new key is audited (never the key)."""
    from rest_framework.authtoken.models import Token

    if not user_has_role(user, Role.FIELD_CREW, Role.DISPATCHER):
        raise CrewTokenError(f"{user.username} is neither field crew nor dispatcher")
    if reset:
        Token.objects.filter(user=user).delete()
    token, created = Token.objects.get_or_create(user=user)
    if created:
        audit_record(action="roads.crew_token.reset" if reset else "roads.crew_token.created",
                     object_type="auth.user", object_id=user.pk, actor_label=actor_label or "system",
                     changes={"username": user.username})
    return token.key, created
