"""OpenAPI description of the machine-client bearer token (drf-spectacular reads this extension)."""
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiClientAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "city_ops.core.authentication.ApiClientAuthentication"
    name = "apiClientToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A machine client's scoped token (manage.py create_api_client)."}
