"""manage.py ingest_fills FILE.csv [--json]: load bin sensors' fill readings from a CSV file.

Idempotent (a (bin, time) pair already stored is counted as a duplicate); rows that cannot be used are
reported with their line number and the good ones kept. Exit status 1 when some rows were refused."""
import json

from django.core.management.base import BaseCommand, CommandError

from agents.sanitation.services import IngestFileError, fill_readings_csv_ingest


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
            raise CommandError(str(exc)) from None
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
        if result.errors:
            raise CommandError(f"{len(result.errors)} rows refused (the others were stored)", returncode=1)
