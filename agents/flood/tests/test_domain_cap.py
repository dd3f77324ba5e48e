"""CAP 1.2 export (checked structurally, and against the OASIS XSD where ../shared has it), the ATOM index,
and import of real CAP messages."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree
from shapely.geometry import MultiPolygon, Point, Polygon

from agents.flood.domain.cap import (
    CAP_NS,
    AtomEntry,
    CapAlertInput,
    CapArea,
    CapError,
    CapReference,
    alert_to_cap,
    alerts_to_atom,
    cap_msg_type_for,
    cap_parse,
    cap_validate,
)
from agents.flood.domain.vocabulary import Level

NS = {"cap": CAP_NS, "atom": "http://www.w3.org/2005/Atom"}
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
SENDER = "flood-ops@city.example.cn"
ZONE = Polygon([(121.40, 31.20), (121.48, 31.20), (121.48, 31.26), (121.40, 31.26)])  # lon/lat, open in input
SENT = dt.datetime(2026, 7, 1, 0, 0, tzinfo=dt.UTC)


def _alert(level: Level = Level.ORANGE, **changes: object) -> CapAlertInput:
    values: dict[str, object] = {
        "identifier": "cityops.flood.Underpass-7.20260701T000000Z.1",
        "sent": SENT,
        "level": level,
        "event": "城市内涝 Waterlogging",
        "headline": "橙色内涝预警：下立交积水",
        "description": "Depth 42 cm at the Underpass-7 gauge.",
        "instruction": "Road closed. Use the diversion.",
        "areas": (CapArea(desc="Underpass-7", geometry=ZONE, geocodes=(("district", "310104"),)),),
        "expires": SENT + dt.timedelta(hours=6),
        "sender_name": "City flood control",
    }
    values.update(changes)
    return CapAlertInput(**values)  # type: ignore[arg-type]


def _root(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def test_export_structure_times_polygon_and_level_mapping():
    root = _root(alert_to_cap(alert=_alert(), sender=SENDER, tz="Asia/Shanghai"))
    assert etree.QName(root).namespace == CAP_NS and etree.QName(root).localname == "alert"
    order = [etree.QName(child).localname for child in root]
    assert order == ["identifier", "sender", "sent", "status", "msgType", "scope", "info"]
    assert root.findtext("cap:sent", namespaces=NS) == "2026-07-01T08:00:00+08:00"
    info = root.find("cap:info", NS)
    assert info.findtext("cap:severity", namespaces=NS) == "Severe"
    assert info.findtext("cap:urgency", namespaces=NS) == "Immediate"
    assert info.findtext("cap:certainty", namespaces=NS) == "Observed"
    assert info.findtext("cap:expires", namespaces=NS) == "2026-07-01T14:00:00+08:00"
    for name in ("event", "headline", "description", "instruction"):
        assert info.findtext(f"cap:{name}", namespaces=NS)
    area = info.find("cap:area", NS)
    assert area.findtext("cap:areaDesc", namespaces=NS) == "Underpass-7"
    pairs = area.findtext("cap:polygon", namespaces=NS).split()
    assert pairs[0] == pairs[-1] == "31.2,121.4"  # lat,lon and a closed ring
    assert len(pairs) == 5
    assert area.find("cap:geocode/cap:value", NS).text == "310104"


@pytest.mark.parametrize(
    ("level", "severity"),
    [(Level.BLUE, "Minor"), (Level.YELLOW, "Moderate"), (Level.ORANGE, "Severe"), (Level.RED, "Extreme")],
)
def test_severity_follows_the_level_and_forecasts_are_likely(level, severity):
    root = _root(alert_to_cap(alert=_alert(level=level, forecast=True), sender=SENDER))
    assert root.findtext("cap:info/cap:severity", namespaces=NS) == severity
    assert root.findtext("cap:info/cap:certainty", namespaces=NS) == "Likely"
    assert root.findtext("cap:sent", namespaces=NS) == "2026-07-01T00:00:00+00:00"


def test_update_and_cancel_carry_references_and_need_them():
    first = CapReference(sender=SENDER, identifier="cityops.flood.Underpass-7.20260701T000000Z.1", sent=SENT)
    update = alert_to_cap(
        alert=_alert(level=Level.RED, msg_type="Update", identifier="u2", references=(first,)),
        sender=SENDER,
        tz="Asia/Shanghai",
    )
    assert _root(update).findtext("cap:references", namespaces=NS) == (
        f"{SENDER},cityops.flood.Underpass-7.20260701T000000Z.1,2026-07-01T08:00:00+08:00"
    )
    cancel = _root(
        alert_to_cap(
            alert=_alert(level=Level.NONE, msg_type="Cancel", identifier="c3", references=(first,)),
            sender=SENDER,
        )
    )
    assert cancel.findtext("cap:info/cap:responseType", namespaces=NS) == "AllClear"
    assert cancel.findtext("cap:info/cap:urgency", namespaces=NS) == "Past"
    with pytest.raises(CapError, match="must reference"):
        alert_to_cap(alert=_alert(msg_type="Update"), sender=SENDER)
    assert [cap_msg_type_for(k) for k in ("raised", "escalated", "cleared")] == ["Alert", "Update", "Cancel"]


def test_export_refuses_what_cap_does_not_allow():
    with pytest.raises(CapError, match="spaces, commas"):
        alert_to_cap(alert=_alert(identifier="has space"), sender=SENDER)
    with pytest.raises(CapError, match="spaces, commas"):
        alert_to_cap(alert=_alert(), sender="a,b")
    with pytest.raises(CapError, match="offset"):
        alert_to_cap(alert=_alert(sent=dt.datetime(2026, 7, 1)), sender=SENDER)
    with pytest.raises(CapError, match="lon/lat"):
        projected = Polygon([(350000, 3450000), (351000, 3450000), (351000, 3451000)])
        alert_to_cap(alert=_alert(areas=(CapArea(desc="x", geometry=projected),)), sender=SENDER)
    with pytest.raises(CapError, match="Polygon or MultiPolygon"):
        alert_to_cap(alert=_alert(areas=(CapArea(desc="x", geometry=Point(121.4, 31.2)),)), sender=SENDER)


def test_multipolygon_and_circle_areas_round_trip_through_import():
    zones = MultiPolygon([ZONE, Polygon([(121.5, 31.3), (121.52, 31.3), (121.52, 31.32), (121.5, 31.3)])])
    area = CapArea(desc="two basins", geometry=zones, circles=((31.23, 121.47, 2.0),))
    data = alert_to_cap(alert=_alert(areas=(area,)), sender=SENDER)
    message = cap_parse(data=data)
    [parsed] = message.areas
    assert len(parsed.polygons) == 2 and parsed.circles == ((31.23, 121.47, 2.0),)
    assert parsed.polygons[0].equals(ZONE)
    # the circle comes back as a geodesic polygon of radius 2 km around its centre
    assert parsed.geometry.contains(Point(121.47, 31.23 + 0.017))  # ~1.9 km north
    assert not parsed.geometry.contains(Point(121.47 + 0.03, 31.23 + 0.03))
    assert message.severity == "Severe" and message.msg_type == "Alert"


def test_atom_feed_links_each_cap_document():
    entries = [
        AtomEntry(alert=_alert(), cap_url="https://ops.example.cn/flood/cap/1.xml"),
        AtomEntry(
            alert=_alert(level=Level.BLUE, identifier="b2", forecast=True),
            cap_url="https://ops.example.cn/flood/cap/2.xml",
        ),
    ]
    feed = _root(
        alerts_to_atom(
            entries=entries,
            feed_id="urn:cityops:flood:active",
            title="Active flood alerts",
            self_url="https://ops.example.cn/flood/alerts.atom",
            updated=SENT,
            author="city",
            tz="Asia/Shanghai",
        )
    )
    assert etree.QName(feed).localname == "feed"
    assert feed.findtext("atom:updated", namespaces=NS) == "2026-07-01T08:00:00+08:00"
    found = feed.findall("atom:entry", NS)
    assert len(found) == 2
    links = [e.find("atom:link[@rel='alternate']", NS) for e in found]
    assert [link.get("type") for link in links] == ["application/cap+xml"] * 2
    assert [link.get("href") for link in links] == [e.cap_url for e in entries]
    assert [e.findtext("cap:severity", namespaces=NS) for e in found] == ["Severe", "Minor"]
    assert found[1].findtext("cap:certainty", namespaces=NS) == "Likely"


def test_structural_check_rejects_messages_without_the_xsd():
    good = alert_to_cap(alert=_alert(), sender=SENDER)
    no_scope = good.replace(b"<scope>Public</scope>", b"")
    with pytest.raises(CapError, match="scope"):
        cap_parse(data=no_scope)
    bad_status = good.replace(b"<status>Actual</status>", b"<status>Real</status>")
    with pytest.raises(CapError, match="status"):
        cap_parse(data=bad_status)
    no_offset = good.replace(b"2026-07-01T00:00:00+00:00</sent>", b"2026-07-01T00:00:00</sent>")
    with pytest.raises(CapError, match="sent"):
        cap_parse(data=no_offset)
    no_info = etree.tostring(_strip_info(_root(good)))
    with pytest.raises(CapError, match="without <info>"):
        cap_parse(data=no_info)
    with pytest.raises(CapError, match="not a CAP 1.2"):
        cap_parse(data=good.replace(b"cap:1.2", b"cap:1.1"))


def _strip_info(root: etree._Element) -> etree._Element:
    for info in root.findall("cap:info", NS):
        root.remove(info)
    return root


def test_unclosed_polygon_is_closed_with_a_warning_and_bad_coordinates_rejected():
    data = alert_to_cap(alert=_alert(), sender=SENDER)
    root = _root(data)
    polygon = root.find("cap:info/cap:area/cap:polygon", NS)
    polygon.text = " ".join(polygon.text.split()[:-1])
    message = cap_parse(data=etree.tostring(root))
    assert message.warnings and "closed it" in message.warnings[0]
    assert message.areas[0].polygons[0].equals(ZONE)
    polygon.text = "91,121 31,121.1 31.1,121.1 91,121"
    with pytest.raises(CapError, match="outside WGS 84"):
        cap_parse(data=etree.tostring(root))


def test_cap_import_refuses_entity_tricks():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&b;</identifier></alert>'
    )
    with pytest.raises(CapError, match="DTD"):
        cap_parse(data=bomb)


@pytest.mark.shared
def test_export_validates_against_the_oasis_xsd(shared_dir):
    xsd = shared_dir / "benchmarks/flood/cap/CAP-v1.2.xsd"
    first = CapReference(sender=SENDER, identifier="a1", sent=SENT)
    for alert in (
        _alert(),
        _alert(level=Level.BLUE, forecast=True, onset=SENT + dt.timedelta(hours=1)),
        _alert(
            level=Level.RED,
            msg_type="Update",
            identifier="u2",
            references=(first,),
            areas=(CapArea(desc="c", circles=((31.2, 121.4, 1.5),)),),
        ),
        _alert(level=Level.NONE, msg_type="Cancel", identifier="c3", references=(first,)),
    ):
        data = alert_to_cap(alert=alert, sender=SENDER, tz="Asia/Shanghai")
        cap_validate(root=_root(data), xsd_path=xsd)  # raises CapError when invalid
        assert cap_parse(data=data, xsd_path=xsd).identifier == alert.identifier


@pytest.mark.shared
def test_real_cap_samples_import(shared_dir):
    folder = shared_dir / "benchmarks/flood/cap"
    xsd = folder / "CAP-v1.2.xsd"
    for schema in (None, xsd):
        canada = cap_parse(data=(folder / "canada.cap").read_bytes(), xsd_path=schema)
        assert canada.msg_type == "Update" and canada.scope == "Public"
        assert [r.identifier for r in canada.references] == [
            "2.49.0.1.124.a3f342a4.2012",
            "2.49.0.1.124.60f31a3a.2012",
        ]
        assert canada.event == "thunderstorm" and canada.severity == "Minor" and canada.urgency == "Past"
        assert canada.effective == dt.datetime(2012, 5, 2, 23, 20, tzinfo=dt.UTC)
        assert canada.expires == dt.datetime(2012, 5, 3, 0, 20, tzinfo=dt.UTC)
        assert len(canada.infos) == 2  # English and French
        assert [a.desc for a in canada.areas] == [
            "Windsor - Leamington - Essex County",
            "Chatham-Kent - Rondeau Park",
        ]
        windsor = canada.areas[0]
        assert windsor.geometry.contains(Point(-83.0, 42.2))  # Windsor, Ontario (lon, lat)
        assert ("profile:CAP-CP:Location:0.3", "3537039") in windsor.geocodes

        storm = cap_parse(data=(folder / "thunderstorm.cap").read_bytes(), xsd_path=schema)
        assert (storm.identifier, storm.msg_type, storm.event) == (
            "KSTO1055887203",
            "Alert",
            "SEVERE THUNDERSTORM",
        )
        assert (storm.severity, storm.urgency) == ("Severe", "Immediate")
        assert (
            storm.effective
            == storm.sent
            == dt.datetime(2003, 6, 17, 14, 57, tzinfo=dt.timezone(-dt.timedelta(hours=7)))
        )
        [area] = storm.areas
        assert area.geometry.bounds == pytest.approx((-120.14, 38.34, -119.74, 38.62))
        assert [v for _, v in area.geocodes] == ["006109", "006009", "006003"]


@pytest.mark.shared
def test_invalid_cap_sample_is_rejected_with_a_reason(shared_dir):
    folder = shared_dir / "benchmarks/flood/cap"
    data = (folder / "invalid.cap").read_bytes()
    with pytest.raises(CapError, match="scope"):
        cap_parse(data=data)
    with pytest.raises(CapError, match="scope") as excinfo:
        cap_parse(data=data, xsd_path=folder / "CAP-v1.2.xsd")
    assert "not valid CAP 1.2" in str(excinfo.value)
