"""The statement as CSV: one row per agent and headline, with the period, the currency, and the runs the
figure sums (so a spreadsheet row is traceable too)."""
from __future__ import annotations

import csv
import io

COLUMNS = ("from", "to", "version", "sha256", "agent", "name", "label", "value", "baseline", "difference", "unit",
           "money", "currency", "runs")


def _cell(value) -> str:
    return "" if value is None else str(value)


def statement_csv(*, statement: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    head = [statement["from"], statement["to"], statement.get("version"), statement.get("sha256")]
    for agent, section in statement["agents"].items():
        runs = " ".join(str(r) for r in section["runs"])
        for h in section["headlines"]:
            writer.writerow([_cell(v) for v in (
                *head, agent, h["name"], h["label"], h["value"], h["baseline"], h["difference"], h["unit"],
                h["money"], statement["currency"], runs)])
    return out.getvalue()
