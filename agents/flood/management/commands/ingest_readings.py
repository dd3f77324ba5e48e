"""manage.py ingest_readings FILE [--format F] [--tz TZ] [--sensor CODE] [--create-sensors] [--json]

Exit status (city_ops.core.exitcodes): 0 nothing rejected, 1 some rows rejected and the rest kept, 2 the
file is unreadable or no reading in it was recognised."""
from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand

from agents.flood.domain import FORMATS, ReadingsFormatError
from agents.flood.services import readings_ingest
from city_ops.core.exitcodes import file_unreadable, ingest_command_finish


class Command(BaseCommand):
    help = ("Ingest a readings file (CSV, JSON, EA flood-monitoring API, EA telemetry, USGS RDB, WaterML 1.1; "
            "detected from the content). Idempotent; a changed value is a revision; bad rows are reported by row "
            "number and the good ones kept. Exit status 0: nothing rejected, 1: some rows rejected, 2: the file "
            "is unreadable or nothing in it was recognised.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the readings file ('-' for stdin)")
        parser.add_argument("--format", choices=FORMATS, help="force a format instead of detecting it")
        parser.add_argument("--tz", help="IANA zone of times written without an offset, e.g. Asia/Shanghai")
        parser.add_argument("--sensor", help="the gauge an EA telemetry file belongs to when it does not say")
        parser.add_argument("--create-sensors", action="store_true",
                            help="register the stations the file names instead of rejecting their rows")
        parser.add_argument("--no-evaluate", action="store_true", help="do not ask for an evaluation afterwards")
        parser.add_argument("--json", action="store_true",
                            help='print {"accepted": n, "duplicates": n, "revised": n, "rejected": [{"row": k, '
                                 '"reason": ...}], "flagged": [{"row": k, "reason": ...}]}')

    def handle(self, *args, **opts):
        import sys

        path = opts["file"]
        try:
            data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        except OSError as exc:
            raise file_unreadable(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            result = readings_ingest(data=data, fmt=opts["format"], tz=opts["tz"], sensor=opts["sensor"],
                                     create_sensors=opts["create_sensors"], source=f"file:{Path(path).name}",
                                     evaluate=not opts["no_evaluate"])
        except ReadingsFormatError as exc:
            raise file_unreadable(f"{path}: {exc}") from None
        if opts["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
        else:
            self._report(path, result)
        ingest_command_finish(recognised=result.recognised, rejected=len(result.rejected),
                              nothing=f"no readings in {path} (read as {result.format})"
                              + "".join(f"; {note}" for note in result.notes[:5]))

    def _report(self, path, result) -> None:
        self.stderr.write(f"{path}: {result.format}")
        for code in result.sensors_created:
            self.stderr.write(f"registered sensor {code}")
        for error in result.rejected:
            self.stderr.write(f"row {error.row}: {error.reason}")
        for error in result.flagged:
            self.stderr.write(f"row {error.row}: stored, flagged impossible: {error.reason}")
        self.stdout.write(f"{result.accepted} accepted, {result.duplicates} duplicates, {result.revised} revised, "
                          f"{len(result.rejected)} rejected, {len(result.flagged)} flagged impossible")
