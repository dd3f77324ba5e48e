"""manage.py roads_crew_token USERNAME [--reset]: the API token a field crew member's phone app uses for
POST /api/inspections/photos/ (header `Authorization: Token <key>`). Printed once to stdout."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create (or show, or --reset) a field crew member's API token for uploading photos."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--reset", action="store_true", help="replace the existing token")

    def handle(self, *args, **opts):
        from agents.roads.services.tokens import CrewTokenError, crew_token_issue

        user = get_user_model().objects.filter(username=opts["username"]).first()
        if user is None:
            raise CommandError(f"no user {opts['username']!r}")
        try:
            key, created = crew_token_issue(user=user, reset=opts["reset"], actor_label="manage.py roads_crew_token")
        except CrewTokenError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(("created" if created else "existing") + f" token for {user.username}")
        self.stdout.write(key)
