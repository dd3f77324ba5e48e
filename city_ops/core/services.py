"""Writes for the core app: users with roles, API clients, the audit log."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import models, transaction

from .models import ApiClient, AuditEntry, UserProfile
from .roles import Role


def roles_ensure() -> None:
    """Create the role groups (idempotent; also run after migrate)."""
    for role in Role:
        Group.objects.get_or_create(name=role.value)


@transaction.atomic
def user_create(*, username: str, password: str, roles: list[Role], email: str = "", language: str = "en"):
    """Create (or update) a user with exactly the given roles. Admins are staff so they reach Django admin."""
    roles_ensure()
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username, defaults={"email": email})
    user.set_password(password)
    user.email = email or user.email
    user.is_staff = Role.ADMIN in roles
    user.save()
    user.groups.set(Group.objects.filter(name__in=[r.value for r in roles]))
    UserProfile.objects.update_or_create(user=user, defaults={"language": language})
    return user


def api_client_create(*, name: str, scopes: list[str]) -> tuple[ApiClient, str]:
    """Create a machine client; returns the client and its token (shown once, only the hash is kept)."""
    token = ApiClient.token_new()
    client = ApiClient(name=name, scopes=scopes)
    client.token_set(token)
    client.save()
    return client, token


def audit_record(
    *, action: str, obj: models.Model | None = None, object_type: str = "", object_id: Any = "",
    actor=None, actor_label: str = "", changes: dict | None = None,
) -> AuditEntry:
    """Append one audit row. Services call this for every state change they make."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return AuditEntry.objects.create(
        action=action, object_type=object_type, object_id=str(object_id), actor=actor,
        actor_label=actor_label or (getattr(actor, "username", "") if actor else "system"),
        changes=changes or {},
    )
