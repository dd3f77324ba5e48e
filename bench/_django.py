"""Shared set-up for benchmark scripts that need Django: the local settings and database of `.run/`."""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup(settings: str = "city_ops.settings.local") -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings)
    import django

    django.setup()
