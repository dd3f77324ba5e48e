"""The OpenAPI schema generates without errors and every operation needs authentication, except the feeds
that are public on purpose (read-only)."""
import pytest
import yaml
from django.core.management import call_command

PUBLIC_PREFIXES = ("/api/flood/alerts", "/api/bus/gtfs-rt/")  # public alert and GTFS-RT feeds, read-only


@pytest.mark.django_db
def test_schema_generates_and_operations_are_protected(tmp_path, client, users):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    assert schema["info"]["title"] == "city-ops API"
    schemes = schema["components"]["securitySchemes"]
    assert {"cookieAuth", "tokenAuth", "apiClientToken"} <= set(schemes)
    open_ops = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if path.startswith("/api/schema") or path.startswith(PUBLIC_PREFIXES):
                continue
            sec = op.get("security", schema.get("security", []))
            if not sec or {} in sec:
                open_ops.append(f"{method.upper()} {path}")
    assert not open_ops, f"operations without authentication: {open_ops}"
    client.force_login(users.dispatcher)
    assert client.get("/api/schema/swagger/").status_code == 200


@pytest.mark.django_db
def test_schema_needs_a_signed_in_user(client, users):
    assert client.get("/api/schema/").status_code in (401, 403)
    client.force_login(users.crew)
    assert client.get("/api/schema/").status_code == 200
