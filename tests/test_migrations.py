"""The models and the migrations agree: a model change without its migration would pass every test (the test
databases are built from the models' migrations) and fail on a city's database at the next deploy."""
import io

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_every_model_change_has_its_migration():
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit:  # --check exits 1 when a migration is missing
        pytest.fail(f"missing migrations (run manage.py makemigrations):\n{out.getvalue()}", pytrace=False)
