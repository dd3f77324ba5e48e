"""manage.py import_gtfs FEED.zip [--name N] [--replace ID] [--json]: validate a GTFS zip, then load it into
PostGIS in one transaction (nothing is stored when it fails validation). Exit status (city_ops.core.exitcodes):
0 imported, 2 the file is unreadable or refused (a feed is taken whole or not at all, so never 1)."""
import json
import logging

from django.core.management.base import BaseCommand, CommandError

from agents.bus.models import Feed
from agents.bus.services.feeds import FeedImportError, feed_import
from city_ops.core.exitcodes import file_unreadable


class Command(BaseCommand):
    help = "Import a GTFS feed (zip). Re-importing the same file replaces that feed's rows atomically."

    def add_arguments(self, parser):
        parser.add_argument("path", help="GTFS zip")
        parser.add_argument("--name", default="", help="feed name (default: the agency names)")
        parser.add_argument("--replace", type=int, help="load this file as a new version of feed ID")
        parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    def handle(self, *args, **opts):
        logging.getLogger("agents.bus").setLevel(logging.WARNING if opts["json"] else logging.INFO)
        replace = None
        if opts["replace"] is not None:
            replace = Feed.objects.filter(pk=opts["replace"]).first()
            if replace is None:
                raise CommandError(f"--replace {opts['replace']}: no such feed")
        try:
            result = feed_import(path=opts["path"], name=opts["name"], replace=replace)
        except (FeedImportError, OSError) as exc:
            raise file_unreadable(str(exc)) from None
        for warning in result.warnings:
            self.stderr.write(f"warning: {warning}")
        if opts["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
        else:
            verb = "imported" if result.created else "replaced"
            self.stdout.write(f"feed #{result.feed.pk} {result.feed.name} {verb} in {result.seconds:.2f} s: "
                              + ", ".join(f"{v} {k}" for k, v in result.counts.items()))
