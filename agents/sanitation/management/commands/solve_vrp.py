"""manage.py solve_vrp INSTANCE [--time-limit S] [--seed N] [--format F] [--json]: solve a routing instance
file (VRPLIB CVRP/VRPTW/multi-trip, Solomon, Kim et al. waste collection) with PyVRP and check the plan.

A thin wrapper of `python -m agents.sanitation.vrp.cli` with the same options and the same JSON. Exit
status 1 when the checker rejects the plan, 2 when the file cannot be read."""
import contextlib
import io

from django.core.management.base import BaseCommand, CommandError

from agents.sanitation.vrp.cli import main, parser_build


class Command(BaseCommand):
    help = parser_build().description

    def add_arguments(self, parser):
        # The same options as the CLI, taken from its own parser so the two cannot drift apart.
        for action in parser_build()._actions:
            if action.dest == "help":
                continue
            kwargs = {"help": action.help, "default": action.default}
            if action.option_strings:
                if action.const is True and action.nargs == 0:
                    parser.add_argument(*action.option_strings, action="store_true", help=action.help)
                    continue
                kwargs.update(type=action.type, choices=action.choices, dest=action.dest)
                parser.add_argument(*action.option_strings, **kwargs)
            else:
                parser.add_argument(action.dest, help=action.help)

    def handle(self, *args, **opts):
        argv = [opts["instance"], "--time-limit", str(opts["time_limit"]), "--seed", str(opts["seed"])]
        if opts.get("format"):
            argv += ["--format", opts["format"]]
        if opts["json"]:
            argv.append("--json")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            status = main(argv)
        self.stdout.write(out.getvalue(), ending="")
        if status == 2:
            raise CommandError(f"cannot read the instance {opts['instance']}", returncode=2)
        if status == 1:
            raise CommandError("the checker rejects the plan found", returncode=1)
