"""manage.py import_cap FILE [--xsd PATH] [--json]

Exit status (city_ops.core.exitcodes): 0 imported, 2 the file is unreadable or the message refused (a CAP
message is taken whole or not at all, so never 1)."""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agents.flood.domain import CapError
from agents.flood.services import cap_import, cap_xsd_default
from city_ops.core.exitcodes import file_unreadable


class Command(BaseCommand):
    help = ("Import a CAP 1.2 message from the weather service. Invalid messages are refused with the reason "
            "(exit status 2). A rain/storm/flood warning puts the flood zones its area covers on standby. "
            "Validated against the CAP 1.2 XSD given with --xsd, or ../shared/benchmarks/flood/cap/CAP-v1.2.xsd "
            "when present; otherwise the required structure is checked.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--xsd", help="the CAP 1.2 schema to validate against")
        parser.add_argument("--json", action="store_true", help="print the import as JSON on stdout")

    def handle(self, *args, **opts):
        path = Path(opts["file"])
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise file_unreadable(f"cannot read {path}: {exc.strerror or exc}") from None
        xsd = Path(opts["xsd"]) if opts["xsd"] else cap_xsd_default()
        if xsd is not None and not xsd.is_file():
            raise CommandError(f"--xsd {xsd}: no such file")
        try:
            record = cap_import(data=data, xsd_path=xsd)
        except CapError as exc:
            raise file_unreadable(f"{path.name} refused: {exc}") from None
        out = {"id": record.pk, "identifier": record.identifier, "sender": record.sender,
               "sent": record.sent.isoformat(), "msg_type": record.msg_type, "event": record.event,
               "rainstorm": record.rainstorm, "zones": sorted(record.zones.values_list("code", flat=True)),
               "notes": record.warnings, "validated_with": str(xsd) if xsd else "structure check"}
        if opts["json"]:
            self.stdout.write(json.dumps(out))
        else:
            self.stdout.write(f"imported {record.msg_type} '{record.event}' from {record.sender} "
                              f"({out['validated_with']}): {'; '.join(record.warnings) or 'no zone affected'}")
