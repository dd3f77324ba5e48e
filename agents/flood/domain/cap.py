"""OASIS CAP 1.2: export alerts as CAP XML and an ATOM index of them; import CAP messages from others.

Export builds the elements in the order the CAP 1.2 schema's sequences demand, renders every time with an
explicit offset and no fractions (the schema's pattern), closes polygon rings and refuses inputs CAP does
not allow (spaces or commas in identifiers, an Update/Cancel without references).

Import parses safely (no DTD, no entities), checks the document against the XSD when one is given and, in
any case, checks the required structure itself so a message lacking e.g. `scope` is rejected with a clear
reason even without the schema. Areas come back as shapely geometries in lon/lat."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from city_ops.city.geovalidate import GeometryInputError, lonlat_check, number_parse

from .safexml import UnsafeXmlError, local_name, xml_parse_safe
from .vocabulary import Level

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MIME = "application/cap+xml"

STATUSES = ("Actual", "Exercise", "System", "Test", "Draft")
MSG_TYPES = ("Alert", "Update", "Cancel", "Ack", "Error")
SCOPES = ("Public", "Restricted", "Private")
CATEGORIES = (
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
)
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

# level -> (severity, urgency, responseType); certainty depends on observed vs forecast
LEVEL_CAP: dict[Level, tuple[str, str, str]] = {
    Level.NONE: ("Minor", "Past", "AllClear"),
    Level.BLUE: ("Minor", "Expected", "Monitor"),
    Level.YELLOW: ("Moderate", "Expected", "Prepare"),
    Level.ORANGE: ("Severe", "Immediate", "Avoid"),
    Level.RED: ("Extreme", "Immediate", "Avoid"),
}

_CAP_TIME = re.compile(r"^\d\d\d\d-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")
_FORBIDDEN_ID = re.compile(r"[\s,<&]")


class CapError(ValueError):
    """A CAP message that cannot be produced or accepted, with the reason."""


# ----------------------------------------------------------------------------------------------- shared values


@dataclass(frozen=True)
class CapReference:
    """An earlier message an Update/Cancel refers to (`sender,identifier,sent`)."""

    sender: str
    identifier: str
    sent: dt.datetime

    def text(self, tz: dt.tzinfo | None = None) -> str:
        """The `sender,identifier,sent` triple as CAP writes it."""
        return f"{self.sender},{self.identifier},{cap_time(self.sent, tz)}"


@dataclass(frozen=True)
class CapArea:
    """An area of an outgoing alert: description, polygons (shapely, lon/lat), circles, geocodes."""

    desc: str
    geometry: BaseGeometry | None = None  # Polygon or MultiPolygon in lon/lat (EPSG:4326)
    circles: tuple[tuple[float, float, float], ...] = ()  # (lat, lon, radius km)
    geocodes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CapAlertInput:
    """What `alert_to_cap` needs to write one CAP 1.2 message about one flood alert."""

    identifier: str
    sent: dt.datetime
    level: Level
    event: str
    headline: str
    description: str
    instruction: str
    areas: tuple[CapArea, ...]
    msg_type: str = "Alert"
    status: str = "Actual"
    scope: str = "Public"
    references: tuple[CapReference, ...] = ()
    categories: tuple[str, ...] = ("Met",)
    forecast: bool = False  # certainty Likely (forecast crossing) instead of Observed
    urgency: str | None = None  # overrides of the level mapping
    severity: str | None = None
    certainty: str | None = None
    response_type: str | None = None
    effective: dt.datetime | None = None
    onset: dt.datetime | None = None
    expires: dt.datetime | None = None
    language: str = "zh-CN"
    sender_name: str | None = None
    web: str | None = None
    contact: str | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    event_codes: tuple[tuple[str, str], ...] = ()
    note: str | None = None
    restriction: str | None = None  # required when scope is Restricted
    addresses: str | None = None  # required when scope is Private


def cap_time(value: dt.datetime, tz: dt.tzinfo | str | None = None) -> str:
    """A time as CAP 1.2 wants it: seconds precision and an explicit offset, e.g. 2026-07-01T08:00:00+08:00."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise CapError(f"CAP times need a UTC offset; {value.isoformat()} has none")
    if isinstance(tz, str):
        tz = ZoneInfo(tz)
    local = value.astimezone(tz) if tz is not None else value
    return local.replace(microsecond=0).isoformat()


def cap_msg_type_for(event_kind: str) -> str:
    """The CAP msgType for a tracker event: the first message is an Alert, changes are Updates, a cleared
    alert is cancelled."""
    if event_kind == "raised":
        return "Alert"
    if event_kind == "cleared":
        return "Cancel"
    return "Update"


# ----------------------------------------------------------------------------------------------- export


def _coord(value: float) -> str:
    text = f"{value:.5f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def polygon_text(polygon: Polygon) -> str:
    """A shapely polygon (lon/lat) as a CAP ring "lat,lon lat,lon ..." whose first and last pairs are equal.

    Holes cannot be expressed in CAP; the outer ring is used (the warned area errs on the larger side)."""
    pairs: list[str] = []
    for lon, lat in polygon.exterior.coords:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise CapError(
                f"polygon point ({lat}, {lon}) is not a WGS 84 lat/lon: give geometries in lon/lat"
            )
        pair = f"{_coord(lat)},{_coord(lon)}"
        if not pairs or pairs[-1] != pair:
            pairs.append(pair)
    if pairs[0] != pairs[-1]:
        pairs.append(pairs[0])
    if len(pairs) < 4:
        raise CapError("polygon has fewer than 3 distinct points after rounding to 5 decimals")
    return " ".join(pairs)


def _polygons(geometry: BaseGeometry | None) -> list[Polygon]:
    if geometry is None or geometry.is_empty:
        return []
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    raise CapError(f"area geometry must be a Polygon or MultiPolygon, not {geometry.geom_type}")


def _check_input(alert: CapAlertInput, sender: str) -> None:
    for name, value in (("identifier", alert.identifier), ("sender", sender)):
        if not value or _FORBIDDEN_ID.search(value):
            raise CapError(f"CAP {name} {value!r} must be non-empty without spaces, commas, '<' or '&'")
    for name, value, allowed in (
        ("status", alert.status, STATUSES),
        ("msgType", alert.msg_type, MSG_TYPES),
        ("scope", alert.scope, SCOPES),
    ):
        if value not in allowed:
            raise CapError(f"CAP {name} {value!r} is not one of {', '.join(allowed)}")
    for category in alert.categories:
        if category not in CATEGORIES:
            raise CapError(f"CAP category {category!r} is not one of {', '.join(CATEGORIES)}")
    if alert.msg_type in ("Update", "Cancel") and not alert.references:
        raise CapError(f"a CAP {alert.msg_type} must reference the message(s) it updates or cancels")
    if alert.scope == "Restricted" and not alert.restriction:
        raise CapError("scope Restricted needs a restriction text")
    if alert.scope == "Private" and not alert.addresses:
        raise CapError("scope Private needs addresses")
    if not alert.areas:
        raise CapError("a flood alert needs at least one area")


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{CAP_NS}}}{name}")
    if text is not None:
        element.text = text
    return element


def _pair(parent: etree._Element, name: str, value_name: str, value: str) -> None:
    element = _sub(parent, name)
    _sub(element, "valueName", value_name)
    _sub(element, "value", value)


def alert_element(*, alert: CapAlertInput, sender: str, tz: dt.tzinfo | str | None = None) -> etree._Element:
    """The CAP 1.2 <alert> element (see `alert_to_cap`)."""
    _check_input(alert, sender)
    severity, urgency, response = LEVEL_CAP[alert.level]
    if alert.msg_type == "Cancel":
        urgency, response = "Past", "AllClear"
    certainty = alert.certainty or ("Likely" if alert.forecast else "Observed")
    root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _sub(root, "identifier", alert.identifier)
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(alert.sent, tz))
    _sub(root, "status", alert.status)
    _sub(root, "msgType", alert.msg_type)
    _sub(root, "scope", alert.scope)
    if alert.restriction:
        _sub(root, "restriction", alert.restriction)
    if alert.addresses:
        _sub(root, "addresses", alert.addresses)
    if alert.note:
        _sub(root, "note", alert.note)
    if alert.references:
        _sub(root, "references", " ".join(ref.text(tz) for ref in alert.references))
    info = _sub(root, "info")
    _sub(info, "language", alert.language)
    for category in alert.categories:
        _sub(info, "category", category)
    _sub(info, "event", alert.event)
    _sub(info, "responseType", alert.response_type or response)
    _sub(info, "urgency", alert.urgency or urgency)
    _sub(info, "severity", alert.severity or severity)
    _sub(info, "certainty", certainty)
    for name, value in alert.event_codes:
        _pair(info, "eventCode", name, value)
    for name, value in (("effective", alert.effective), ("onset", alert.onset), ("expires", alert.expires)):
        if value is not None:
            _sub(info, name, cap_time(value, tz))
    if alert.sender_name:
        _sub(info, "senderName", alert.sender_name)
    _sub(info, "headline", alert.headline)
    _sub(info, "description", alert.description)
    _sub(info, "instruction", alert.instruction)
    if alert.web:
        _sub(info, "web", alert.web)
    if alert.contact:
        _sub(info, "contact", alert.contact)
    for name, value in (("level", alert.level.label), *alert.parameters):
        _pair(info, "parameter", name, value)
    for area in alert.areas:
        element = _sub(info, "area")
        _sub(element, "areaDesc", area.desc)
        for polygon in _polygons(area.geometry):
            _sub(element, "polygon", polygon_text(polygon))
        for lat, lon, radius in area.circles:
            _sub(element, "circle", f"{_coord(lat)},{_coord(lon)} {radius:g}")
        for name, value in area.geocodes:
            _pair(element, "geocode", name, value)
    return root


def alert_to_cap(*, alert: CapAlertInput, sender: str, tz: dt.tzinfo | str | None = None) -> bytes:
    """One flood alert as an OASIS CAP 1.2 XML document (UTF-8 bytes).

    `sender` is the issuing authority's id (e.g. "flood@city.example.cn"); `tz` renders every time in that
    zone (e.g. "Asia/Shanghai" -> +08:00), otherwise each keeps its own offset. Severity, urgency and
    responseType follow the level (blue Minor ... red Extreme), certainty is Observed unless the alert comes
    from a forecast (Likely)."""
    root = alert_element(alert=alert, sender=sender, tz=tz)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


@dataclass(frozen=True)
class AtomEntry:
    """One active alert in the ATOM index: its CAP input and where its CAP document is served."""

    alert: CapAlertInput
    cap_url: str


def alerts_to_atom(
    *,
    entries: Sequence[AtomEntry],
    feed_id: str,
    title: str,
    self_url: str,
    updated: dt.datetime,
    author: str,
    tz: dt.tzinfo | str | None = None,
) -> bytes:
    """An ATOM 1.0 feed of active alerts, each entry linking its CAP document (type application/cap+xml)
    and carrying the CAP summary fields (event, severity, urgency, certainty, times, areas) in the CAP
    namespace, as public alert aggregators read them."""
    nsmap = {None: ATOM_NS, "cap": CAP_NS}
    feed = etree.Element(f"{{{ATOM_NS}}}feed", nsmap=nsmap)

    def atom(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
        element = etree.SubElement(parent, f"{{{ATOM_NS}}}{name}", **attrs)
        if text is not None:
            element.text = text
        return element

    atom(feed, "id", feed_id)
    atom(feed, "title", title)
    atom(feed, "updated", cap_time(updated, tz))
    atom(atom(feed, "author"), "name", author)
    atom(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    for entry in entries:
        alert = entry.alert
        severity, urgency, _ = LEVEL_CAP[alert.level]
        node = atom(feed, "entry")
        atom(node, "id", entry.cap_url)
        atom(node, "title", alert.headline)
        atom(node, "updated", cap_time(alert.sent, tz))
        atom(node, "published", cap_time(alert.sent, tz))
        atom(atom(node, "author"), "name", alert.sender_name or author)
        atom(node, "summary", alert.description)
        atom(node, "link", rel="alternate", type=CAP_MIME, href=entry.cap_url)
        atom(node, "category", term=alert.level.label, label=f"{alert.level.label} {alert.event}")
        for name, value in (
            ("event", alert.event),
            ("msgType", alert.msg_type),
            ("status", alert.status),
            ("severity", alert.severity or severity),
            ("urgency", alert.urgency or urgency),
            ("certainty", alert.certainty or ("Likely" if alert.forecast else "Observed")),
            ("effective", cap_time(alert.effective or alert.sent, tz)),
            ("expires", cap_time(alert.expires, tz) if alert.expires else None),
            ("areaDesc", "; ".join(area.desc for area in alert.areas)),
        ):
            if value is not None:
                etree.SubElement(node, f"{{{CAP_NS}}}{name}").text = value
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# ----------------------------------------------------------------------------------------------- import


@dataclass(frozen=True)
class CapAreaInfo:
    """An area of an imported message: shapely geometry (lon/lat) of its polygons and circles, geocodes."""

    desc: str
    polygons: tuple[Polygon, ...] = ()
    circles: tuple[tuple[float, float, float], ...] = ()  # (lat, lon, radius km)
    geocodes: tuple[tuple[str, str], ...] = ()
    geometry: BaseGeometry | None = None  # union of polygons and circles, None when only geocodes

    def _identity(self) -> tuple:
        return (tuple(p.wkb for p in self.polygons), self.circles, self.geocodes)


@dataclass(frozen=True)
class CapInfo:
    """One <info> block of an imported message (one language)."""

    language: str
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    response_types: tuple[str, ...] = ()
    effective: dt.datetime | None = None
    onset: dt.datetime | None = None
    expires: dt.datetime | None = None
    sender_name: str | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    web: str | None = None
    event_codes: tuple[tuple[str, str], ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    areas: tuple[CapAreaInfo, ...] = ()


@dataclass(frozen=True)
class CapMessage:
    """An imported CAP 1.2 message; the convenience properties read its first <info>."""

    identifier: str
    sender: str
    sent: dt.datetime
    status: str
    msg_type: str
    scope: str
    references: tuple[CapReference, ...] = ()
    infos: tuple[CapInfo, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def event(self) -> str | None:
        """The event of the first info."""
        return self.infos[0].event if self.infos else None

    @property
    def severity(self) -> str | None:
        """The severity of the first info."""
        return self.infos[0].severity if self.infos else None

    @property
    def urgency(self) -> str | None:
        """The urgency of the first info."""
        return self.infos[0].urgency if self.infos else None

    @property
    def effective(self) -> dt.datetime:
        """When it takes effect: the first info's `effective`, else `sent` (as the CAP spec says)."""
        if self.infos and self.infos[0].effective is not None:
            return self.infos[0].effective
        return self.sent

    @property
    def expires(self) -> dt.datetime | None:
        """The first info's `expires`."""
        return self.infos[0].expires if self.infos else None

    @property
    def areas(self) -> tuple[CapAreaInfo, ...]:
        """Areas of all infos, each distinct area once (language versions repeat the same areas)."""
        seen, found = set(), []
        for info in self.infos:
            for area in info.areas:
                identity = area._identity()
                if identity not in seen:
                    seen.add(identity)
                    found.append(area)
        return tuple(found)

    def geometry(self) -> BaseGeometry | None:
        """Union of every area's geometry (lon/lat), to match flood zones against; None without shapes."""
        shapes = [area.geometry for area in self.areas if area.geometry is not None]
        return unary_union(shapes) if shapes else None


@functools.lru_cache(maxsize=4)
def _schema(path: str):
    import xmlschema

    return xmlschema.XMLSchema(path)


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return [child for child in element if local_name(child) == name]


def _text(element: etree._Element, name: str) -> str | None:
    found = _children(element, name)
    if not found or found[0].text is None:
        return None
    return found[0].text.strip()


def _required(element: etree._Element, name: str, where: str) -> str:
    value = _text(element, name)
    if not value:
        raise CapError(f"{where} lacks the required <{name}> element (line {element.sourceline})")
    return value


def _enum(element: etree._Element, name: str, allowed: Sequence[str], where: str) -> str:
    value = _required(element, name, where)
    if value not in allowed:
        raise CapError(f"{where} <{name}> is {value!r}, not one of {', '.join(allowed)}")
    return value


def _time(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if not _CAP_TIME.match(value):
        raise CapError(f"<{name}> {value!r} is not a CAP time (YYYY-MM-DDThh:mm:ss with a ±hh:mm offset)")
    return dt.datetime.fromisoformat(value)


def _pairs(element: etree._Element, name: str) -> tuple[tuple[str, str], ...]:
    return tuple((_text(e, "valueName") or "", _text(e, "value") or "") for e in _children(element, name))


_GEOD = Geod(ellps="WGS84")
MAX_RADIUS_KM = 20_004.0  # half the Earth's meridian: every point is within it


def circle_polygon(*, lat: float, lon: float, radius_km: float, segments: int = 64) -> Polygon:
    """A circle on the WGS 84 ellipsoid as a polygon in lon/lat (a point buffer in degrees would be an
    ellipse away from the equator)."""
    if radius_km <= 0:
        return Polygon([(lon, lat), (lon, lat), (lon, lat)]).buffer(1e-9)
    azimuths = [i * 360.0 / segments for i in range(segments)]
    lons, lats, _ = _GEOD.fwd([lon] * segments, [lat] * segments, azimuths, [radius_km * 1000.0] * segments)
    return Polygon(list(zip(lons, lats)))


def _lat_lon(pair: str, where: str) -> tuple[float, float]:
    parts = pair.split(",")
    if len(parts) != 2:
        raise CapError(f"{where}: {pair!r} is not a 'lat,lon' pair")
    try:
        lon, lat = lonlat_check(parts[1], parts[0], what="position")
    except GeometryInputError as exc:
        raise CapError(f"{where}: {pair!r} is outside WGS 84 latitude/longitude ranges ({exc})") from None
    return lat, lon


def _area_parse(element: etree._Element, warnings: list[str]) -> CapAreaInfo:
    desc = _required(element, "areaDesc", "<area>")
    polygons, circles = [], []
    for node in _children(element, "polygon"):
        where = f"<polygon> at line {node.sourceline}"
        points = [_lat_lon(pair, where) for pair in (node.text or "").split()]
        if len(points) >= 3 and points[0] != points[-1]:
            warnings.append(f"{where} is not closed (first pair != last pair); closed it")
            points.append(points[0])
        if len(points) < 4:
            raise CapError(f"{where} needs at least 4 pairs (a closed ring of 3 points)")
        polygon = Polygon([(lon, lat) for lat, lon in points])
        if not polygon.is_valid:
            warnings.append(f"{where} is self-intersecting; repaired with make_valid")
            polygon = polygon.buffer(0)
        polygons.append(polygon)
    for node in _children(element, "circle"):
        where = f"<circle> at line {node.sourceline}"
        try:
            centre, radius_text = (node.text or "").split()
            radius = number_parse(radius_text, what="radius")
        except ValueError:  # GeometryInputError included: "nan" or "inf" is no radius
            raise CapError(f"{where}: {node.text!r} is not 'lat,lon radius_km'") from None
        if radius > MAX_RADIUS_KM:
            raise CapError(f"{where}: a radius of {radius:g} km is larger than the Earth")
        lat, lon = _lat_lon(centre, where)
        circles.append((lat, lon, radius))
    shapes = polygons + [circle_polygon(lat=lat, lon=lon, radius_km=r) for lat, lon, r in circles]
    return CapAreaInfo(
        desc=desc,
        polygons=tuple(polygons),
        circles=tuple(circles),
        geocodes=_pairs(element, "geocode"),
        geometry=unary_union(shapes) if shapes else None,
    )


def _info_parse(element: etree._Element, warnings: list[str]) -> CapInfo:
    where = f"<info> at line {element.sourceline}"
    categories = tuple(node.text.strip() for node in _children(element, "category") if node.text)
    if not categories:
        raise CapError(f"{where} lacks the required <category> element")
    for category in categories:
        if category not in CATEGORIES:
            raise CapError(f"{where} <category> {category!r} is not one of {', '.join(CATEGORIES)}")
    return CapInfo(
        language=_text(element, "language") or "en-US",
        categories=categories,
        event=_required(element, "event", where),
        urgency=_enum(element, "urgency", URGENCIES, where),
        severity=_enum(element, "severity", SEVERITIES, where),
        certainty=_enum(element, "certainty", CERTAINTIES, where),
        response_types=tuple(node.text.strip() for node in _children(element, "responseType") if node.text),
        effective=_time(_text(element, "effective"), "effective"),
        onset=_time(_text(element, "onset"), "onset"),
        expires=_time(_text(element, "expires"), "expires"),
        sender_name=_text(element, "senderName"),
        headline=_text(element, "headline"),
        description=_text(element, "description"),
        instruction=_text(element, "instruction"),
        web=_text(element, "web"),
        event_codes=_pairs(element, "eventCode"),
        parameters=_pairs(element, "parameter"),
        areas=tuple(_area_parse(area, warnings) for area in _children(element, "area")),
    )


def _references_parse(text: str | None) -> tuple[CapReference, ...]:
    if not text:
        return ()
    found = []
    for triple in text.split():
        parts = triple.split(",")
        if len(parts) != 3:
            raise CapError(f"<references> entry {triple!r} is not 'sender,identifier,sent'")
        sent = _time(parts[2], "references")
        assert sent is not None
        found.append(CapReference(sender=parts[0], identifier=parts[1], sent=sent))
    return tuple(found)


def cap_validate(*, root: etree._Element, xsd_path: Path) -> None:
    """Raise CapError with the first schema violation when `root` does not validate against the XSD."""
    schema = _schema(str(xsd_path))
    for error in schema.iter_errors(root):
        reason = error.reason or str(error)
        path = getattr(error, "path", None) or ""
        raise CapError(f"not valid CAP 1.2 ({xsd_path.name}): {reason} at {path}".strip())


def cap_parse(*, data: bytes, xsd_path: Path | None = None) -> CapMessage:
    """An imported CAP 1.2 message, or CapError saying why it was refused.

    With `xsd_path` the document must validate against that schema; without it the required structure is
    still checked (identifier, sender, sent, status, msgType, scope; info for Alert/Update; category, event,
    urgency, severity, certainty in each info; areaDesc in each area)."""
    try:
        root = xml_parse_safe(data=data)
    except UnsafeXmlError as exc:
        raise CapError(f"CAP refused: {exc}") from None
    namespace = etree.QName(root).namespace
    if local_name(root) != "alert" or namespace != CAP_NS:
        raise CapError(f"root element is {{{namespace}}}{local_name(root)}, not a CAP 1.2 <alert> ({CAP_NS})")
    if xsd_path is not None:
        cap_validate(root=root, xsd_path=xsd_path)
    where = "<alert>"
    identifier = _required(root, "identifier", where)
    sender = _required(root, "sender", where)
    sent = _time(_required(root, "sent", where), "sent")
    status = _enum(root, "status", STATUSES, where)
    msg_type = _enum(root, "msgType", MSG_TYPES, where)
    scope = _enum(root, "scope", SCOPES, where)
    warnings: list[str] = []
    infos = tuple(_info_parse(info, warnings) for info in _children(root, "info"))
    if msg_type in ("Alert", "Update") and not infos:
        raise CapError(f"a CAP {msg_type} without <info> names no event or area")
    assert sent is not None
    return CapMessage(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=status,
        msg_type=msg_type,
        scope=scope,
        references=_references_parse(_text(root, "references")),
        infos=infos,
        warnings=tuple(warnings),
    )
