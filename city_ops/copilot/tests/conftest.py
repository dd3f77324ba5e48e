"""The copilot's test fixtures: a scripted model endpoint, and a small street of our own."""
from __future__ import annotations

import pytest
from django.contrib.gis.geos import LineString, Point

from city_ops.copilot.testing import ScriptedModel


@pytest.fixture
def scripted_llm(settings):
    """A scripted OpenAI-compatible endpoint, configured as the copilot's model (with a key that must never
    reach the model's messages)."""
    model = ScriptedModel().start()
    settings.COPILOT_LLM_BASE_URL = model.base_url
    settings.COPILOT_LLM_MODEL = "scripted-glm"
    settings.COPILOT_LLM_API_KEY = "sk-test-secret-4711"
    settings.COPILOT_LLM_TIMEOUT_S = 10
    yield model
    model.stop()


@pytest.fixture
def testikatu(db):
    """Three segments of a street named Testikatu (and one of Testitie nearby): enough city for closures."""
    from city_ops.city.models import RoadNode, RoadSegment

    def street(name: str, lat: float, n: int) -> list[RoadSegment]:
        nodes = [RoadNode.objects.create(geom=Point(24.94 + 0.001 * i, lat, srid=4326)) for i in range(n + 1)]
        return [RoadSegment.objects.create(source=a, target=b, geom=LineString(a.geom, b.geom, srid=4326), name=name,
                                           road_class="residential", length_m=55.0, speed_kph=30.0)
                for a, b in zip(nodes, nodes[1:], strict=False)]

    street("Testitie", 60.18, 1)
    return street("Testikatu", 60.17, 3)
