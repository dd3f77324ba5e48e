"""DRF permission classes by role and by machine-client scope. Every API view names one; the default
(DenyAll) refuses, so a view that forgets is closed, not open."""
from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from .models import ApiClient
from .roles import Role, user_has_role


class DenyAll(BasePermission):
    def has_permission(self, request, view) -> bool:
        return False


def role_permission(*roles: Role, read_roles: tuple[Role, ...] = ()) -> type[BasePermission]:
    """A permission class admitting users with any of `roles` (and `read_roles` for safe methods only)."""

    class _RolePermission(BasePermission):
        message = "Your role does not allow this."

        def has_permission(self, request, view) -> bool:
            if request.method in SAFE_METHODS and read_roles and user_has_role(request.user, *read_roles):
                return True
            return user_has_role(request.user, *roles)

    _RolePermission.__name__ = "Role_" + "_".join(r.value for r in roles)
    return _RolePermission


IsDispatcher = role_permission(Role.DISPATCHER)
IsCrewOrDispatcher = role_permission(Role.FIELD_CREW, Role.DISPATCHER)


def scope_permission(scope: str, *roles: Role) -> type[BasePermission]:
    """Admit a machine client whose token carries `scope`, or a user with one of `roles`."""

    class _ScopePermission(BasePermission):
        message = f"This needs the '{scope}' scope."

        def has_permission(self, request, view) -> bool:
            if isinstance(request.auth, ApiClient):
                return scope in request.auth.scopes
            return bool(roles) and user_has_role(request.user, *roles)

    _ScopePermission.__name__ = "Scope_" + scope.replace(".", "_").replace(":", "_")
    return _ScopePermission
