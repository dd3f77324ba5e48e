"""city-ops: the Django project. Importing the Celery app here makes `@shared_task` use it everywhere."""
from .celery import app as celery_app

__all__ = ("celery_app",)
