"""Streets and districts named in a request, misspelt or without accents, resolved against the city model."""
from __future__ import annotations

import pytest
from django.contrib.gis.geos import LineString, MultiPolygon, Point, Polygon

from city_ops.city.models import District, RoadNode, RoadSegment
from city_ops.copilot.grammar.places import places_find

ROADS = frozenset({"street", "district"})


@pytest.fixture
def city(db):
    a = RoadNode.objects.create(geom=Point(24.94, 60.17, srid=4326))
    b = RoadNode.objects.create(geom=Point(24.941, 60.17, srid=4326))
    for name in ("Mannerheimintie", "Yrjönkatu", "Kaisaniemenkatu", "Kaisaniemenranta", "John Stenbergin ranta",
                 "Postikatu", ""):
        RoadSegment.objects.create(source=a, target=b, name=name, length_m=50, speed_kph=30,
                                   geom=LineString((24.94, 60.17), (24.941, 60.17), srid=4326))
    square = MultiPolygon(Polygon(((24.9, 60.1), (25.0, 60.1), (25.0, 60.2), (24.9, 60.1))), srid=4326)
    District.objects.create(code="K", name="Kluuvi", geom=square)


@pytest.mark.parametrize("text,expect", [
    ("close Mannerheimintie", {"street": "Mannerheimintie"}),
    ("close Mannerheimntie for the parade", {"street": "Mannerheimintie"}),
    ("封闭Mannerheimnitie，因为游行", {"street": "Mannerheimintie"}),
    ("potholes on yrjonkatu", {"street": "Yrjönkatu"}),
    ("Kaisaniemenranta上有坑吗", {"street": "Kaisaniemenranta"}),
    ("Kaisaniemenkadun坑洞", {"street": "Kaisaniemenkatu"}),
    ("water on John Stenbergin ranta", {"street": "John Stenbergin ranta"}),
    ("Kluuvi区的路面病害", {"district": "Kluuvi"}),
    ("potholes on Postikatu in Kluuvi", {"street": "Postikatu", "district": "Kluuvi"}),
])
def test_places_found_despite_spelling(city, text, expect):
    assert places_find(text, ROADS) == expect


@pytest.mark.parametrize("text", ["show me all potholes", "Please create a work order", "Mannerheim", "Kata"])
def test_words_that_are_no_place_find_nothing(city, text):
    assert places_find(text, ROADS) == {}


def test_only_the_kinds_asked_for(city):
    assert places_find("Mannerheimintie in Kluuvi", frozenset({"district"})) == {"district": "Kluuvi"}


def test_a_street_added_after_a_lookup_is_found(city):
    # A name no real city has: the test is about the vocabulary following the network, whatever streets an
    # earlier test of the run left behind (a real Helsinki name would be found in their rows).
    assert places_find("potholes on Quuxbridgevej", ROADS) == {}
    a = RoadNode.objects.first()
    RoadSegment.objects.create(source=a, target=a, name="Quuxbridgevej", length_m=50, speed_kph=30,
                               geom=LineString((24.94, 60.17), (24.941, 60.17), srid=4326))
    assert places_find("potholes on Quuxbridgevej", ROADS) == {"street": "Quuxbridgevej"}
