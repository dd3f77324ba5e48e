"""manage.py load_demo_city [--synthetic --scale N] [--history-days N]: the demo city, every agent's demo data
and, with --history-days, weeks of history made by the agents themselves (fixtures/history)."""
import json
import os

from django.core.management.base import BaseCommand

from city_ops.core.roles import Role
from city_ops.core.services import user_create
from fixtures.demo_city import demo_city_load

DEMO_USERS = [("dispatcher", [Role.DISPATCHER]), ("crew1", [Role.FIELD_CREW]), ("crew2", [Role.FIELD_CREW]),
              ("admin", [Role.ADMIN, Role.DISPATCHER])]


class Command(BaseCommand):
    help = "Load the demo city (real Helsinki OSM roads + synthetic extras) and demo users."

    def add_arguments(self, parser):
        parser.add_argument("--synthetic", action="store_true", help="a synthetic grid city instead")
        parser.add_argument("--scale", type=int, default=1, help="about N x 1,000 road segments (synthetic)")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--history-days", type=int, default=None,
                            help="days before today made by the agents themselves over simulated days "
                                 "(make demo: 28; default: none, only each agent's own demo data; 0 on a "
                                 "synthetic city: not even that)")
        parser.add_argument("--no-users", action="store_true")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when a city is already loaded")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        from city_ops.city.models import RoadSegment

        if opts["if_empty"] and RoadSegment.objects.exists():
            self.stderr.write("a city is already loaded; reusing it (run without --if-empty to reload)")
            return
        if not opts["no_users"]:
            # Demo logins first, so agents' demo data can attach crews to them. Demo only: the password
            # comes from the environment (make demo prints it).
            password = os.environ.get("CITY_OPS_DEMO_PASSWORD", "city-ops-demo")
            for name, roles in DEMO_USERS:
                user_create(username=name, password=password, roles=roles, email=f"{name}@example.org")
        out = demo_city_load(synthetic=opts["synthetic"], scale=opts["scale"], seed=opts["seed"],
                             history_days=opts["history_days"], progress=lambda m: self.stderr.write(m))
        if not opts["no_users"]:
            out["users"] = [u for u, _ in DEMO_USERS]
        if opts["json"]:
            self.stdout.write(json.dumps(out, default=str))
        else:
            self.stdout.write(f"demo city loaded: {out}")
