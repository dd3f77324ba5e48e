"""manage.py import_osm FILE.osm.pbf: replace the road network with an extract's drivable roads."""
import json

from django.core.management.base import BaseCommand, CommandError

from city_ops.city.osm import OsmImportError, osm_import


class Command(BaseCommand):
    help = "Import the drivable road network of an OpenStreetMap extract (.osm.pbf)."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--city-name")
        parser.add_argument("--time-zone")
        parser.add_argument("--metric-srid", type=int)
        parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    def handle(self, *args, **opts):
        self.stderr.write(f"importing {opts['file']} ...")
        try:
            res = osm_import(path=opts["file"], city_name=opts["city_name"], time_zone=opts["time_zone"],
                             metric_srid=opts["metric_srid"])
        except OsmImportError as exc:
            raise CommandError(str(exc)) from None
        if opts["json"]:
            self.stdout.write(json.dumps({"nodes": res.nodes, "segments": res.segments, "source": res.source}))
        else:
            self.stdout.write(f"imported {res.segments} road segments and {res.nodes} nodes from {res.source}")
