"""The optional vision step (COPILOT_VLM_MODEL) against the scripted OpenAI-compatible endpoint: a new defect's
crop goes to the vision model as a JPEG data URL once the photo's transaction has committed, and the line it
answers lands on the defect, its work order and its page; off by default; a slow or failing endpoint leaves
no description and never fails detection."""
from __future__ import annotations

import io
import logging

import pytest
from django.test import Client
from PIL import Image

from agents.roads import tasks
from agents.roads.models import Defect
from agents.roads.services.defects import defect_order_if_due
from agents.roads.services.detection import photos_detect
from city_ops.copilot.testing import ScriptedModel, answer, error, request_images, stall
from city_ops.core.models import AuditEntry
from city_ops.workorders.models import WorkOrder

from .conftest import photo_bytes, spot_on
from .test_detection import receive

pytestmark = pytest.mark.usefixtures("tiny_model")
LINE = "A deep pothole about half a metre across, with loose gravel at its rim."


@pytest.fixture
def vision_model(settings):
    model = ScriptedModel().start()
    settings.COPILOT_LLM_BASE_URL, settings.COPILOT_VLM_MODEL = model.base_url, "scripted-glm-4v"
    settings.COPILOT_VLM_TIMEOUT_S = 1
    yield model
    model.stop()


@pytest.fixture
def describe_sent(monkeypatch) -> list[list[int]]:
    """The describe tasks sent (no worker in these tests): their defect ids."""
    sent: list[list[int]] = []
    monkeypatch.setattr(tasks.describe_defects, "apply_async", lambda args=None, **kw: sent.append(args[0]))
    return sent


def _detected(long_segment, users, django_capture_on_commit_callbacks) -> Defect:
    here = spot_on(long_segment, 0.5)
    [photo] = receive(photo_bytes(lon=here.lon, lat=here.lat, cell=(1, 2)), user=users.crew)
    with django_capture_on_commit_callbacks(execute=True):
        assert photos_detect(photo_ids=[photo.pk]).defects_created == 1
    return Defect.objects.get()


def test_a_new_defect_is_described_from_its_crop_on_the_defect_its_order_and_its_page(
        long_segment, users, vision_model, describe_sent, django_capture_on_commit_callbacks):
    defect = _detected(long_segment, users, django_capture_on_commit_callbacks)
    assert describe_sent == [[defect.pk]] and not vision_model.requests  # after the commit, in its own task
    vision_model.script[:] = [answer(f"{LINE}\nSecond line the model should not have written.")]
    assert tasks.describe_defects(describe_sent[0]) == {"described": 1}
    [request] = vision_model.requests
    assert request["model"] == "scripted-glm-4v"
    [jpeg] = request_images(request)
    crop = Image.open(io.BytesIO(jpeg))
    # the box [160, 240, 320, 400] of the 640 x 480 photo, 15 % more on each side
    assert crop.format == "JPEG" and crop.size == pytest.approx((209, 209), abs=2)
    defect.refresh_from_db()
    assert defect.vision_description == LINE
    order = WorkOrder.objects.get(source_ref=f"defect:{defect.pk}")
    assert order.description.endswith(f"\nVision model: {LINE}")
    assert AuditEntry.objects.filter(action="defect.described", object_id=str(defect.pk)).exists()
    client = Client()
    client.force_login(users.dispatcher)
    assert LINE in client.get(f"/roads/defects/{defect.pk}/").content.decode()
    # described once: a redelivered task does not ask again
    assert tasks.describe_defects([defect.pk]) == {"described": 0} and len(vision_model.requests) == 1


def test_off_by_default_nothing_is_sent(long_segment, users, describe_sent, django_capture_on_commit_callbacks):
    defect = _detected(long_segment, users, django_capture_on_commit_callbacks)
    assert describe_sent == [] and defect.vision_description == ""


@pytest.mark.parametrize("step", [stall(3), error(500)], ids=["timeout", "server-error"])
def test_a_slow_or_failing_endpoint_leaves_no_description_and_a_log_line(
        long_segment, users, vision_model, describe_sent, django_capture_on_commit_callbacks, caplog, step):
    defect = _detected(long_segment, users, django_capture_on_commit_callbacks)
    vision_model.script[:] = [step]
    with caplog.at_level(logging.WARNING, logger="agents.roads.services.describe"):
        assert tasks.describe_defects([defect.pk]) == {"described": 0}
    defect.refresh_from_db()
    assert defect.vision_description == "" and "Vision model" not in defect.work_order.description
    assert f"defect {defect.pk}: no vision description: the vision model" in caplog.text


def test_an_order_created_after_the_description_carries_it(
        long_segment, users, settings, vision_model, describe_sent, django_capture_on_commit_callbacks):
    settings.ROADS_ORDER_THRESHOLD = 101  # nothing is ordered when found
    defect = _detected(long_segment, users, django_capture_on_commit_callbacks)
    vision_model.script[:] = [answer(LINE)]
    assert tasks.describe_defects([defect.pk]) == {"described": 1}
    defect.refresh_from_db()
    assert defect.work_order is None
    order = defect_order_if_due(defect=defect, threshold=0)
    assert order.description.endswith(f"\nVision model: {LINE}")
