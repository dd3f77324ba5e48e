"""The reaper ran every 60 s; a dead worker's run must be back within 90 s, so it runs every 20 s now.

Only an entry still at the old default moves: an operator's own interval is kept, as schedules_sync keeps
every edit. A fresh database has no entry yet (schedules_sync creates it at 20 s after migrate)."""
from django.db import migrations
from django.utils import timezone

REAPER = "runtime: reap stuck runs"


def reaper_every_20s(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTasks = apps.get_model("django_celery_beat", "PeriodicTasks")
    task = PeriodicTask.objects.filter(name=REAPER, interval__every=60, interval__period="seconds").first()
    if task is None:
        return
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=20, period="seconds")
    task.save(update_fields=["interval"])
    # Beat reloads its schedule when this stamp changes (the model's signals do not run in migrations).
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})


class Migration(migrations.Migration):

    dependencies = [
        ("agents_core", "0002_agentrunattempt"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(reaper_every_20s, migrations.RunPython.noop)]
