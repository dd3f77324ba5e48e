"""Role checks for console views: every view names the roles it admits."""
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from city_ops.core.roles import user_has_role


def role_required(*roles):
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
