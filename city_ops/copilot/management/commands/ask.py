"""manage.py ask "TEXT" --user USERNAME [--execute] [--json]: ask the copilot as that user.

Without --execute, writes stay proposed (nothing changes); --execute is the user's confirmation and runs
them. --json prints exactly {"engine", "calls", "answer", "links"} (+ "fallback_reason" after a fallback)."""
import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from city_ops.copilot.services import copilot_ask


class Command(BaseCommand):
    help = "Ask the copilot, as a user, in Chinese or English; writes run only with --execute."

    def add_arguments(self, parser):
        parser.add_argument("text", help="the request, e.g. 明天的公交重新排班 or 'which flood alerts are open'")
        parser.add_argument("--user", required=True, help="the username the request runs as (their roles apply)")
        parser.add_argument("--execute", action="store_true", help="run the proposed writes (confirm them)")
        parser.add_argument("--json", action="store_true", help="print the reply as one JSON object on stdout")

    def handle(self, *args, **opts):
        if not opts["text"].strip():
            raise CommandError("the request is empty")
        user = get_user_model().objects.filter(username=opts["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {opts['user']!r}")
        reply = copilot_ask(user=user, text=opts["text"], execute=opts["execute"])
        if opts["json"]:
            self.stdout.write(json.dumps(reply.as_json(conversation=False), ensure_ascii=False, default=str))
            return
        self.stdout.write(f"[{reply.engine}] {reply.answer}")
        if reply.fallback_reason:
            self.stdout.write(f"(fallback: {reply.fallback_reason})")
        for call in reply.calls:
            self.stdout.write(f"  {call.status:8} {call.tool} {json.dumps(call.args, ensure_ascii=False)}"
                              + (f": {call.reason}" if call.reason else ""))
        for link in reply.links:
            self.stdout.write(f"  -> {link['label']}: {link['url']}")
