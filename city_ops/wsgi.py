"""WSGI entry point (gunicorn city_ops.wsgi)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "city_ops.settings.production")
application = get_wsgi_application()
