"""The bus models in the Django admin: every page renders for an admin, and none can be changed there
(feeds change by import, plans through their services)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from agents.bus.models import Feed, VehiclePlan
from agents.bus.services.feeds import feed_import
from agents.bus.services.plans import plan_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_client(db) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("bus-root", "root@example.org", "pw-root-123"))
    return client


def test_every_bus_page_renders_read_only(root_client, tiny_zip):
    feed = feed_import(path=tiny_zip).feed
    plan_create(feed=feed, service_date=dt.date(2024, 3, 6))
    problems = []
    for model in apps.get_app_config("agent_bus").get_models():
        info = (model._meta.app_label, model._meta.model_name)
        pages = [reverse("admin:{}_{}_changelist".format(*info))]
        obj = model.objects.order_by("pk").first()
        if obj is not None:
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
        for url in pages:
            resp = root_client.get(url)
            if resp.status_code != 200:
                problems.append(f"{url}: HTTP {resp.status_code}")
            elif 'name="_save"' in resp.content.decode():
                problems.append(f"{url}: offers to save")
        if root_client.get(reverse("admin:{}_{}_add".format(*info))).status_code != 403:
            problems.append(f"{model._meta.label}: the add page is open")
    assert not problems, "\n".join(problems)
    plan = VehiclePlan.objects.get()
    assert root_client.post(reverse("admin:agent_bus_vehicleplan_change", args=[plan.pk]),
                            {"status": "approved"}).status_code == 403
    assert root_client.post(reverse("admin:agent_bus_feed_delete", args=[feed.pk]), {"post": "yes"}).status_code == 403
    assert Feed.objects.filter(pk=feed.pk).exists() and VehiclePlan.objects.get().status == "draft"
