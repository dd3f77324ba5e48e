"""Safe XML parsing for files that come from outside (WaterML, CAP).

lxml with entity resolution, network access and DTD loading switched off, and any document that carries a
DTD refused outright: none of the formats we read needs one, and a DTD is how entity-expansion bombs
("billion laughs") and external-entity reads get in. lxml keeps source line numbers, which row errors use."""

from __future__ import annotations

from lxml import etree


class UnsafeXmlError(ValueError):
    """XML refused before use: it is not well-formed, or it declares a DTD or entities."""


_PARSER_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "remove_blank_text": False,
}


_DTD_REFUSED = (
    "XML with a DTD (<!DOCTYPE ...>) is refused: entity declarations are not allowed in this "
    "format (this is how entity-expansion and external-entity attacks arrive)"
)


def _prolog_has_doctype(data: bytes) -> bool:
    """Whether the document's prolog (before the root element) declares a DOCTYPE."""
    data = data[:65536]  # the prolog is at the start; no need to decode a whole large file
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = data.decode("utf-16", errors="replace")
    else:
        text = data.decode("utf-8", errors="replace")
    text = text.lstrip("\ufeff \t\r\n")
    while text.startswith(("<?", "<!--")):
        closer = "?>" if text.startswith("<?") else "-->"
        end = text.find(closer)
        if end < 0:
            return False
        text = text[end + len(closer) :].lstrip(" \t\r\n")
    return text[:9].upper() == "<!DOCTYPE"


def xml_parse_safe(*, data: bytes) -> etree._Element:
    """The root element of `data`, or UnsafeXmlError saying why the document was refused."""
    if _prolog_has_doctype(data):
        raise UnsafeXmlError(_DTD_REFUSED)
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        if "amplification" in str(exc).lower():
            raise UnsafeXmlError(f"entity expansion refused: {exc}") from None
        raise UnsafeXmlError(f"not well-formed XML: {exc}") from None
    if root is None:
        raise UnsafeXmlError("empty XML document")
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise UnsafeXmlError(_DTD_REFUSED)
    for node in root.iter():
        # With resolve_entities=False lxml keeps entity references as nodes instead of expanding them;
        # their presence means the document relied on a declaration we refused.
        if isinstance(node, etree._Entity):
            raise UnsafeXmlError(f"XML entity reference &{node.name}; is refused")
    return root


def local_name(element: etree._Element) -> str:
    """An element's tag without its namespace ("{urn:...}alert" -> "alert")."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]
