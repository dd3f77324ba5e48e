"""Reusable test helpers: users per role and the permission-matrix mixin (NetBox-style).

A test class lists `matrix = [(method, url, {role: expected_status, ...}), ...]` and inherits
`PermissionMatrixMixin`; one test walks every cell, logged in as each role (anonymous included)."""
from __future__ import annotations

from dataclasses import dataclass

from django.test import Client

from .roles import Role
from .services import user_create

ROLES = ("anonymous", "crew", "dispatcher", "admin")


@dataclass
class RoleUsers:
    crew: object
    crew_other: object
    dispatcher: object
    admin: object


def role_users_create(prefix: str = "") -> RoleUsers:
    return RoleUsers(
        crew=user_create(username=f"{prefix}crew", password="pw-crew-123", roles=[Role.FIELD_CREW]),
        crew_other=user_create(username=f"{prefix}crew2", password="pw-crew-123", roles=[Role.FIELD_CREW]),
        dispatcher=user_create(username=f"{prefix}dispatcher", password="pw-disp-123", roles=[Role.DISPATCHER]),
        admin=user_create(username=f"{prefix}admin", password="pw-admin-123", roles=[Role.ADMIN]),
    )


def client_for(role: str, users: RoleUsers) -> Client:
    c = Client()
    if role != "anonymous":
        c.force_login(getattr(users, role))
    return c


class PermissionMatrixMixin:
    """Walk `self.matrix` (method, url, {role: status}) for every role; report every wrong cell at once."""

    matrix: list[tuple[str, str, dict[str, int | tuple[int, ...]]]] = []

    def matrix_check(self, users: RoleUsers, *, data_for=None) -> None:
        wrong = []
        for method, url, expected in self.matrix:
            for role in ROLES:
                if role not in expected:
                    continue
                want = expected[role]
                want = want if isinstance(want, tuple) else (want,)
                client = client_for(role, users)
                kwargs = {}
                if method in ("POST", "PUT", "PATCH"):
                    kwargs = {"data": (data_for(url) if data_for else {}), "content_type": "application/json"}
                resp = getattr(client, method.lower())(url, **kwargs)
                if resp.status_code not in want:
                    wrong.append(f"{method} {url} as {role}: got {resp.status_code}, want {want}")
        assert not wrong, "permission matrix:\n" + "\n".join(wrong)


def query_plans(run, *, table: str) -> list[str]:
    """PostgreSQL's EXPLAIN of each query that `run()` sends and that reads `table` (the SQL as it was sent,
    parameters bound), to show which index, if any, serves it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        run()
    plans = []
    with connection.cursor() as cur:
        for query in captured.captured_queries:
            if table in query["sql"]:
                cur.execute("EXPLAIN " + query["sql"])
                plans.append("\n".join(row[0] for row in cur.fetchall()))
    return plans


def gist_index_name(*, table: str, column: str) -> str | None:
    """The GiST index on `table (column)`, if there is one."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexdef ILIKE %s",
                    [table, f"%USING gist ({column})%"])
        row = cur.fetchone()
    return row[0] if row else None
