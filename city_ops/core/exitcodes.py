"""One exit-status rule for every command that loads a file of rows (readings, fills, vehicle positions, camera
frames, GTFS feeds, CAP messages), so a script or a cron job reads them all the same way:

- 0: everything in the file was taken (stored, or already there);
- 1: some rows were rejected (each reported with its reason) and the rest kept;
- 2: the file could not be read, or nothing in it was recognised (nothing was stored).

A file that parses but yields no row the reader recognises is a 2, never a quiet success with nothing
stored: a wrong column name or an unexpected format must not look like a calm day."""
from __future__ import annotations

from django.core.management.base import CommandError

EXIT_OK = 0
EXIT_SOME_REJECTED = 1
EXIT_UNREADABLE = 2


def file_unreadable(message: str) -> CommandError:
    """The error to raise for a file that cannot be read, or in which nothing was recognised (exit 2)."""
    return CommandError(message, returncode=EXIT_UNREADABLE)


def ingest_exit_status(*, recognised: int, rejected: int) -> int:
    """The exit status for a file in which `recognised` rows were read as data (kept, already there, or
    refused for what they said) and `rejected` rows were refused, counting those that could not be read."""
    if recognised == 0:
        return EXIT_UNREADABLE
    return EXIT_SOME_REJECTED if rejected else EXIT_OK


def ingest_command_finish(*, recognised: int, rejected: int, nothing: str) -> None:
    """End an ingest command by the rule above: return for 0, raise CommandError with the status otherwise.
    `nothing` says what was not found when nothing was recognised (e.g. "no value columns")."""
    status = ingest_exit_status(recognised=recognised, rejected=rejected)
    if status == EXIT_UNREADABLE:
        raise file_unreadable(f"nothing recognised: {nothing}")
    if status == EXIT_SOME_REJECTED:
        rows = "row" if rejected == 1 else "rows"
        raise CommandError(f"{rejected} {rows} rejected (the others were kept)", returncode=EXIT_SOME_REJECTED)
