"""The demo city template (tests/demo_template.py) on a small loader: what it keeps, what it leaves, and a copy
that replaces whatever the tables held."""
from __future__ import annotations

from django.contrib.gis.geos import Point

from city_ops.city.models import Place
from tests.demo_template import demo_template_restore, demo_template_take


def _place(name: str) -> Place:
    return Place.objects.create(name=name, kind="landmark", geom=Point(24.94, 60.17, srid=4326))


def _load() -> None:
    for name in ("Market Square", "Esplanadi", "Design Museum"):
        _place(name)


def _names() -> list[str]:
    return sorted(Place.objects.values_list("name", flat=True))


def test_the_template_holds_the_loaders_rows_and_the_database_is_left_as_it_was(db):
    _place("Left by an earlier test")
    template = demo_template_take(_load)
    assert _names() == ["Left by an earlier test"]  # the load was rolled back
    assert list(template.tables) == ["city_place"]

    demo_template_restore(template)
    assert _names() == ["Design Museum", "Esplanadi", "Market Square"]  # the loader's rows alone
    assert _place("New").pk > max(Place.objects.exclude(name="New").values_list("pk", flat=True))

    demo_template_restore(template)  # again, over a table that holds rows written in this transaction
    assert _names() == ["Design Museum", "Esplanadi", "Market Square"]
