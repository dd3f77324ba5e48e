from django.conf import settings

from .roles import Role, user_roles


def city(request):
    """The city's name and the user's roles, for every console template."""
    roles = user_roles(getattr(request, "user", None))
    return {
        "CITY_NAME": settings.CITY_NAME,
        "user_roles": {r.value for r in roles},
        "is_dispatcher": Role.DISPATCHER in roles or Role.ADMIN in roles,
        "is_crew": Role.FIELD_CREW in roles,
        "is_admin": Role.ADMIN in roles,
    }
