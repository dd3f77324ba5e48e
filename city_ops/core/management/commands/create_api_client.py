"""manage.py create_api_client NAME --scope flood.readings:write [...]: a machine client's token, shown once."""
import json

from django.core.management.base import BaseCommand, CommandError

from city_ops.core.models import ApiClient
from city_ops.core.services import api_client_create


class Command(BaseCommand):
    help = "Create a scoped API token for a machine client (sensor gateway, AVL feed, camera uploader)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--scope", action="append", required=True, help="e.g. flood.readings:write")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **opts):
        if ApiClient.objects.filter(name=opts["name"]).exists():
            raise CommandError(f"an API client named {opts['name']!r} exists; pick another name")
        client, token = api_client_create(name=opts["name"], scopes=opts["scope"])
        if opts["json"]:
            self.stdout.write(json.dumps({"name": client.name, "scopes": client.scopes, "token": token}))
        else:
            self.stdout.write(f"token for {client.name} (shown once; send as 'Authorization: Bearer <token>'):\n{token}")
