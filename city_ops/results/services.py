"""Writes of the results statement: issuing (freezing) a period's statement as its next version."""
from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.db.models import Max

from city_ops.core.services import audit_record

from .models import IssuedStatement
from .selectors import statement_build, statement_digest


def _period_lock(date_from: dt.date, date_to: dt.date) -> None:
    """Serialise issuing per period (two clicks get versions n and n+1, never two n's), for this transaction."""
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [date_from.toordinal(), date_to.toordinal()])


@transaction.atomic
def statement_issue(*, date_from: dt.date, date_to: dt.date, user=None) -> IssuedStatement:
    """Freeze the period's statement as it stands now: stored as built, with its version and the SHA-256 of
    its content. Earlier versions of the period stay as they were issued."""
    _period_lock(date_from, date_to)
    content = statement_build(date_from=date_from, date_to=date_to)
    last = IssuedStatement.objects.filter(date_from=date_from, date_to=date_to).aggregate(v=Max("version"))["v"]
    content["version"] = (last or 0) + 1
    content["sha256"] = statement_digest(content)
    issued = IssuedStatement.objects.create(
        date_from=date_from, date_to=date_to, version=content["version"], content=content,
        sha256=content["sha256"], issued_by=user if getattr(user, "is_authenticated", False) else None)
    audit_record(action="results.statement.issued", obj=issued, actor=user,
                 actor_label="" if user else "manage.py results_statement",
                 changes={"from": content["from"], "to": content["to"], "version": issued.version,
                          "sha256": issued.sha256, "total_money": content["total_money"]})
    return issued
