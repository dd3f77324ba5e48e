"""CAP 1.2 out (each alert's messages, validated against the OASIS XSD from ../shared, and the ATOM feed of
active alerts) and in (the shared real samples imported, invalid.cap refused with its reason and a
non-zero exit, a rainstorm warning putting the zones it covers on standby and its cancel releasing them)."""
from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from lxml import etree

from agents.flood.domain import cap_validate
from agents.flood.domain.cap import CAP_NS
from agents.flood.models import Alert, CapImport, FloodZone

from .conftest import evaluate, ingest, series_rows
from .test_agent_rules import STORM

pytestmark = pytest.mark.django_db
NS = {"cap": CAP_NS, "atom": "http://www.w3.org/2005/Atom"}


@pytest.fixture
def rain_alerts(world):
    """An alert that has been raised, escalated and stepped down (still open), and a cleared one."""
    ingest(series_rows("R-1", "rainfall", STORM))
    ingest(series_rows("D-1", "depth", [0.0] * 3 + [16.0, 17.0, 16.0] + [0.0] * 12, minutes=5))
    evaluate()
    return Alert.objects.get(hazard="rainstorm"), Alert.objects.get(hazard="waterlogging")


def _cap(client, alert) -> etree._Element:
    resp = client.get(f"/api/flood/alerts/{alert.pk}.cap")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/cap+xml")
    return etree.fromstring(resp.content)


def test_every_alert_exports_as_cap_with_references_closed_polygons_and_offsets(rain_alerts):
    open_alert, cleared = rain_alerts
    assert open_alert.status == "open" and cleared.status == "cleared"
    client = Client()  # the feed is public, as an agency's is
    root = _cap(client, open_alert)
    messages = open_alert.events.filter(kind__in=["raised", "escalated", "de-escalated", "cleared"]).count()
    assert root.findtext("cap:msgType", namespaces=NS) == "Update"
    refs = root.findtext("cap:references", namespaces=NS).split()
    assert len(refs) == messages - 1 and all(r.count(",") == 2 for r in refs)
    assert root.findtext("cap:sent", namespaces=NS).endswith("+03:00")  # Helsinki summer time
    ring = root.findtext("cap:info/cap:area/cap:polygon", namespaces=NS).split()
    assert ring[0] == ring[-1] and len(ring) >= 4
    assert root.findtext("cap:info/cap:parameter[cap:valueName='level']/cap:value", namespaces=NS) == \
        open_alert.events.filter(kind__in=["raised", "escalated", "de-escalated"]).last().get_level_display()
    gone = _cap(client, cleared)
    assert gone.findtext("cap:msgType", namespaces=NS) == "Cancel"
    assert gone.findtext("cap:info/cap:responseType", namespaces=NS) == "AllClear"
    assert [k for k in cleared.events.values_list("kind", flat=True)] == ["raised", "cleared"]
    assert len(gone.findtext("cap:references", namespaces=NS).split()) == 1  # the Alert it cancels
    assert client.get("/api/flood/alerts/999999.cap").status_code == 404


@pytest.mark.shared
def test_exported_cap_validates_against_the_oasis_schema(rain_alerts, shared_dir):
    xsd = shared_dir / "benchmarks/flood/cap/CAP-v1.2.xsd"
    client = Client()
    for alert in rain_alerts:
        cap_validate(root=_cap(client, alert), xsd_path=xsd)  # raises CapError on the first violation


def test_atom_feed_lists_active_alerts_only(rain_alerts):
    open_alert, _cleared = rain_alerts
    resp = Client().get("/api/flood/alerts.atom")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/atom+xml")
    feed = etree.fromstring(resp.content)
    links = [e.get("href") for e in feed.findall("atom:entry/atom:link[@rel='alternate']", namespaces=NS)]
    assert links == [f"http://testserver/api/flood/alerts/{open_alert.pk}.cap"]
    assert feed.findtext("atom:entry/cap:msgType", namespaces=NS) == "Update"


def _import(path, *args) -> dict:
    out = io.StringIO()
    call_command("import_cap", str(path), "--json", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.mark.shared
def test_shared_samples_import_and_invalid_cap_is_refused(world, shared_dir):
    folder = shared_dir / "benchmarks/flood/cap"
    storm = _import(folder / "thunderstorm.cap")
    assert storm["event"] == "SEVERE THUNDERSTORM" and storm["rainstorm"] and storm["zones"] == []  # California
    assert storm["validated_with"].endswith("CAP-v1.2.xsd")
    canada = _import(folder / "canada.cap", "--xsd", str(folder / "CAP-v1.2.xsd"))
    assert canada["msg_type"] == "Update" and any("all clear" in n for n in canada["notes"])
    assert CapImport.objects.get(pk=canada["id"]).references[0]["sender"] == "cap@ec.gc.ca"
    assert _import(folder / "thunderstorm.cap")["id"] == storm["id"]  # the same message again: stored once
    with pytest.raises(CommandError, match="scope"):
        _import(folder / "invalid.cap")
    assert CapImport.objects.count() == 2
    # without any schema the structural check still names the missing element
    from agents.flood.domain import CapError
    from agents.flood.services import cap_import

    with pytest.raises(CapError, match="<scope>"):
        cap_import(data=(folder / "invalid.cap").read_bytes(), xsd_path=None)


def test_invalid_cap_exits_non_zero_from_the_shell(world, tmp_path):
    import subprocess
    import sys

    from django.conf import settings

    bad = tmp_path / "noscope.cap"
    bad.write_text(_warning(identifier="x1").replace("<scope>Public</scope>", ""))
    db = settings.DATABASES["default"]
    env = {"DJANGO_SETTINGS_MODULE": "city_ops.settings.test", "PATH": "/usr/bin:/bin",
           "DATABASE_URL": f"postgis://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"}
    proc = subprocess.run([sys.executable, "manage.py", "import_cap", str(bad)], cwd=settings.BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "scope" in proc.stderr and "refused" in proc.stderr


def _warning(*, identifier: str, msg_type: str = "Alert", references: str = "", event: str = "Rainstorm",
             polygon: str = "60.169,24.959 60.171,24.959 60.171,24.961 60.169,24.961 60.169,24.959",
             expires: str = "2099-07-01T12:00:00+08:00") -> str:
    refs = f"<references>{references}</references>" if references else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>weather@met.example</sender><sent>2026-07-01T08:00:00+08:00</sent>
  <status>Actual</status><msgType>{msg_type}</msgType><scope>Public</scope>{refs}
  <info><category>Met</category><event>{event}</event><responseType>Prepare</responseType>
    <urgency>Expected</urgency><severity>Severe</severity><certainty>Likely</certainty>
    <expires>{expires}</expires><headline>Orange rainstorm warning</headline>
    <area><areaDesc>Test low area and surroundings</areaDesc><polygon>{polygon}</polygon></area></info>
</alert>"""


def test_rainstorm_warning_puts_covered_zones_on_standby_and_its_cancel_releases_them(world, users):
    client = Client()
    client.force_login(users.dispatcher)
    resp = client.post("/api/flood/cap/", _warning(identifier="w-1"), content_type="application/cap+xml")
    assert resp.status_code == 201, resp.content
    assert resp.json()["zones"] == ["LOW"] and resp.json()["rainstorm"]
    low = FloodZone.objects.get(code="LOW")
    assert low.standby_until == dt.datetime(2099, 7, 1, 4, tzinfo=dt.UTC) and low.standby_source_id == resp.json()["id"]
    assert FloodZone.objects.get(code="UND").standby_until is None
    # a fog warning over the same area is no rainstorm: no standby
    fog = client.post("/api/flood/cap/", _warning(identifier="w-2", event="Dense fog"), content_type="application/xml")
    assert fog.json()["zones"] == []
    cancel = _warning(identifier="w-3", msg_type="Cancel",
                      references="weather@met.example,w-1,2026-07-01T08:00:00+08:00")
    assert client.post("/api/flood/cap/", cancel, content_type="application/cap+xml").status_code == 201
    assert FloodZone.objects.get(code="LOW").standby_until is None
    refused = client.post("/api/flood/cap/", _warning(identifier="w-4").replace("<scope>Public</scope>", ""),
                          content_type="application/cap+xml")
    assert refused.status_code == 400 and "scope" in refused.json()["detail"]
    entity = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "boom">]>'
              '<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">&x;</alert>')
    assert client.post("/api/flood/cap/", entity, content_type="application/xml").status_code == 400
    crew = Client()
    crew.force_login(users.crew)
    assert crew.post("/api/flood/cap/", _warning(identifier="w-5"), content_type="application/xml").status_code == 403
