"""The three human roles. Each is a Django group; admins are also staff. Permissions are checked by role at
every view and API endpoint (city_ops.core.permissions), and querysets restrict by user (RestrictedQuerySet)."""
from __future__ import annotations

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class Role(StrEnum):
    DISPATCHER = "dispatcher"
    FIELD_CREW = "field_crew"
    ADMIN = "admin"


def user_roles(user: AbstractBaseUser | AnonymousUser | None) -> set[Role]:
    """The roles a user holds; a superuser holds all. Cached on the user object for the request."""
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    cached = getattr(user, "_city_roles", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        roles = set(Role)
    else:
        names = set(user.groups.values_list("name", flat=True))
        roles = {r for r in Role if r.value in names}
    user._city_roles = roles
    return roles


def user_has_role(user, *roles: Role) -> bool:
    """True when the user holds any of `roles` (admin implies every role)."""
    held = user_roles(user)
    return Role.ADMIN in held or bool(held & set(roles))


class RoleAdminBackend:
    """Gives the admin role every model permission in Django's admin (the group carries no per-model
    permissions: the role is the permission). Other roles get none here; views check roles themselves."""

    def authenticate(self, request, **credentials):
        return None

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return bool(user_obj and user_obj.is_active and Role.ADMIN in user_roles(user_obj))

    def has_module_perms(self, user_obj, app_label) -> bool:
        return self.has_perm(user_obj, "")
