"""The road agent's admin pages render (no remote map assets), fixed cameras are registered there with
geometry as text, and the pipeline's output is read-only."""
from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from agents.roads.models import (
    CameraRun,
    Defect,
    DefectSighting,
    FixedCamera,
    InspectionPhoto,
    SegmentCondition,
)

pytestmark = pytest.mark.usefixtures("tiny_model")


def test_admin_pages(city, users):
    from agents.runtime.registry import agent_get

    agent_get("roads").demo_data_load()
    c = Client()
    c.force_login(users.admin)
    for model in (FixedCamera, InspectionPhoto, Defect, CameraRun, SegmentCondition):
        assert admin.site.is_registered(model)
        info = (model._meta.app_label, model._meta.model_name)
        assert c.get(reverse("admin:{}_{}_changelist".format(*info)) + "?q=pot").status_code == 200
        obj = model.objects.first()
        if obj is not None:
            page = c.get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
            assert page.status_code == 200 and "openlayers" not in page.content.decode().lower()
    cam = FixedCamera.objects.first()
    page = c.get(reverse("admin:agent_roads_fixedcamera_change", args=[cam.pk])).content.decode()
    assert 'name="location"' in page and "SRID=4326;POINT" in page
    assert c.get(reverse("admin:agent_roads_defect_add")).status_code == 403
    assert DefectSighting.objects.exists()
