"""manage.py replay_readings FILE --speed N [--json]: a drill through the live evaluation loop."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from agents.flood.domain import FORMATS, InputEvent, ReadingsFormatError
from agents.flood.services import drill_replay


def _inputs(path: str) -> list[InputEvent]:
    """Recorded dispatcher actions: a JSON list of {time, kind, zone, actor[, hazard]}."""
    try:
        items = json.loads(Path(path).read_text())
        return [InputEvent(time=dt.datetime.fromisoformat(i["time"]), kind=i["kind"], zone=i["zone"],
                           actor=i["actor"], hazard=i.get("hazard", "waterlogging")) for i in items]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CommandError(f"--inputs {path}: expected a JSON list of {{time, kind, zone, actor}}: {exc}") from None


class Command(BaseCommand):
    help = ("Replay a readings file for a drill: its readings go through the same evaluation as live runs, "
            "tick by tick at N x real time, with automatic (or recorded) closure-lift confirmations, against the "
            "city's sensors and zones. Nothing is written to the live alerts. The alert log is deterministic: the "
            "same file always prints the same log.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--speed", type=float, default=0.0,
                            help="times real time (60: an hour of readings per minute); 0: as fast as possible")
        parser.add_argument("--step-min", type=float, default=15.0, help="reading-time minutes per evaluation tick")
        parser.add_argument("--auto-confirm-min", type=float, default=10.0,
                            help="confirm proposed closure lifts this many minutes later (negative: never)")
        parser.add_argument("--inputs", help="JSON list of recorded dispatcher actions")
        parser.add_argument("--format", choices=FORMATS)
        parser.add_argument("--tz")
        parser.add_argument("--sensor")
        parser.add_argument("--json", action="store_true", help="print the drill and its alert log as JSON")

    def handle(self, *args, **opts):
        if opts["speed"] < 0:
            raise CommandError("--speed must be 0 (as fast as possible) or more")
        if opts["step_min"] <= 0:
            raise CommandError("--step-min must be positive")
        try:
            data = Path(opts["file"]).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {opts['file']}: {exc.strerror or exc}") from None
        auto = dt.timedelta(minutes=opts["auto_confirm_min"]) if opts["auto_confirm_min"] >= 0 else None

        def show(events):
            if opts["json"]:
                return
            for e in events:
                who = f" by {e['actor']}" if e["actor"] else ""
                self.stdout.write(f"{e['time']}  {e['zone']:<10} {e['hazard']:<12} {e['kind']:<22} {e['level']:<6} "
                                  f"{e['rule']}{who}")
            self.stdout.flush()

        try:
            result = drill_replay(data=data, fmt=opts["format"], tz=opts["tz"], sensor=opts["sensor"],
                                  speed=opts["speed"], step=dt.timedelta(minutes=opts["step_min"]),
                                  auto_confirm_after=auto, inputs=_inputs(opts["inputs"]) if opts["inputs"] else (),
                                  on_events=show)
        except ReadingsFormatError as exc:
            raise CommandError(f"{opts['file']}: {exc}") from None
        if opts["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
            return
        for error in result.rejected:
            sys.stderr.write(f"row {error.row}: {error.reason}\n")
        sys.stderr.write(f"{result.readings} readings, {result.ticks} ticks, {len(result.events)} events\n")
