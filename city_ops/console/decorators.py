"""Role checks for console views: every view names the roles it admits."""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from city_ops.core.roles import Role, user_has_role


def role_required(*roles: Role):
    """Admit a signed-in user holding any of `roles` (admin implies all); send anonymous visitors to the
    login page and refuse everyone else with 403. The roles are kept on the view (`required_roles`) so a
    test can prove that no console view was left without a check."""

    def deco(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_has_role(request.user, *roles):
                raise PermissionDenied("your role does not open this page")
            return view(request, *args, **kwargs)

        wrapper.required_roles = roles
        return wrapper

    return deco
