"""The Statement page and its PDF, mounted in the console's namespace (console:statement, ...) by
city_ops/console/urls.py so the top bar marks them like every console page."""
from django.urls import path

from . import pages

urlpatterns = [
    path("", pages.statement, name="statement"),
    path("pdf/", pages.statement_pdf, name="statement_pdf"),
]
