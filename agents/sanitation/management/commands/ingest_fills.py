"""manage.py ingest_fills FILE.csv [--json]: load bin sensors' fill readings from a CSV file.

Idempotent (a (bin, time) pair already stored is counted as a duplicate); rows that cannot be used are
reported with their line number and the good ones kept. Exit status (city_ops.core.exitcodes): 0 nothing
refused, 1 some rows refused and the rest kept, 2 the file is unreadable or has no rows."""
import json

from django.core.management.base import BaseCommand

from agents.sanitation.services import IngestFileError, fill_readings_csv_ingest
from city_ops.core.exitcodes import file_unreadable, ingest_command_finish


class Command(BaseCommand):
    help = "Ingest fill readings from a CSV file (sensor_id or bin, at, fill or fill_pct)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV with a header line: sensor_id,at,fill")
        parser.add_argument("--json", action="store_true", help="print the result as JSON alone on stdout")

    def handle(self, *args, **opts):
        try:
            result = fill_readings_csv_ingest(path=opts["file"], actor_label=f"ingest_fills {opts['file']}")
        except IngestFileError as exc:
            if opts["json"]:
                self.stdout.write(json.dumps({"file": opts["file"], "error": str(exc)}))
            raise file_unreadable(str(exc)) from None
        doc = {"file": opts["file"], **result.as_dict()}
        if opts["json"]:
            self.stdout.write(json.dumps(doc))
        else:
            self.stdout.write(f"{opts['file']}: {result.created} readings stored, {result.duplicates} duplicates, "
                              f"{len(result.errors)} rows refused")
        for err in result.errors[:50]:
            self.stderr.write(f"  line {err.row}: {err.message}")
        if len(result.errors) > 50:
            self.stderr.write(f"  ... and {len(result.errors) - 50} more")
        ingest_command_finish(recognised=result.received, rejected=len(result.errors),
                              nothing=f"no fill readings in {opts['file']}")
