"""Outlook Autodiscover (POX): read the request safely, and the documented error responses.

Request (MS-OXDSCLI §2.2.3; what Outlook and Thunderbird send):
  <Autodiscover xmlns=".../outlook/requestschema/2006"><Request><EMailAddress>u@d</EMailAddress>
  <AcceptableResponseSchema>.../outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>
New Outlook asks for the mobilesync schema (Mailu#3961), which we do not serve: error 601, as MS-ASCMD
§2.2.3.64 defines it ("a provider could not be found to handle the AcceptableResponseSchema"), so the client
can fall back. Errors: MS-OXDSCLI ErrorCode (500 address not found, 600 invalid request, 601 type not
available); shape <Response><Error Time Id><ErrorCode/><Message/><DebugData/></Error></Response>.
"""

from __future__ import annotations

import socket
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.etree.ElementTree import ParseError
from xml.sax.saxutils import escape

import defusedxml.ElementTree
from defusedxml import DefusedXmlException

RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
MOBILESYNC_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
# A real request is about 350 bytes; anything past this is refused before a byte of it is parsed.
MAX_BODY = 8 * 1024
# Outlook and Thunderbird send text/xml ("outlook.com needs this exact string", comm-central
# ExchangeAutoDiscover.sys.mjs); application/xml and +xml types are the same thing by RFC 7303.
XML_MEDIA_TYPES = ("text/xml", "application/xml")
_CHARSETS = ("utf-8", "utf8", "utf-16", "utf16", "us-ascii")

MESSAGES = {500: "The e-mail address cannot be found.", 600: "Invalid Request",
            601: "The requested response schema is not available on this server; only "
                 f"{OUTLOOK_SCHEMA} is served."}
# Exchange fills Id with a hash of the server's name; a fixed value per host keeps replicas apart in logs.
_SERVER_ID = str(zlib.crc32(socket.gethostname().encode("utf-8")))


class BadRequest(ValueError):
    """A request the server refuses, with the HTTP status and the Autodiscover ErrorCode to answer with."""

    def __init__(self, status: int, code: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.code, self.reason = status, code, reason


@dataclass(frozen=True)
class PoxRequest:
    address: str
    schema: str | None


def check_content_type(header: str | None) -> None:
    if not header:
        raise BadRequest(415, 600, "missing Content-Type: send text/xml")
    media, _, params = header.partition(";")
    media = media.strip().lower()
    if media not in XML_MEDIA_TYPES and not (media.startswith("application/") and media.endswith("+xml")):
        raise BadRequest(415, 600, f"Content-Type {media[:60]} is not XML: send text/xml")
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip().strip('"').lower() not in _CHARSETS:
            raise BadRequest(415, 600, "the request must be UTF-8 (or UTF-16)")


def parse_request(body: bytes) -> PoxRequest:
    """The address and the schema asked for. The bytes go to the parser as they are (it honours the XML
    declaration, so UTF-16 works), with DTDs forbidden: no entity expansion, no external entities."""
    if not body.strip():
        raise BadRequest(400, 600, "empty request body")
    try:
        root = defusedxml.ElementTree.fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as exc:
        raise BadRequest(400, 600, f"not a well-formed XML request without a DTD ({type(exc).__name__})") from None
    if _local(root.tag) != "Autodiscover":
        raise BadRequest(400, 600, "the root element is not Autodiscover")
    requests = [child for child in root if _local(child.tag) == "Request"]
    if len(requests) != 1:
        raise BadRequest(400, 600, "no Request element" if not requests else "more than one Request element")
    names = [_local(child.tag) for child in requests[0]]
    # The request schema has each of these once. With two, the answer would follow one while a proxy, a WAF
    # or a log that reads the other saw another mailbox: refused, as Exchange refuses an invalid request.
    for name in ("EMailAddress", "AcceptableResponseSchema", "LegacyDN"):
        if names.count(name) > 1:
            raise BadRequest(400, 600, f"more than one {name}")
    values = {_local(child.tag): (child.text or "").strip() for child in requests[0]}
    schema = values.get("AcceptableResponseSchema") or None
    address = values.get("EMailAddress", "")
    if schema is not None and schema != OUTLOOK_SCHEMA:
        return PoxRequest(address, schema)
    if not address:
        # LegacyDN may replace EMailAddress, but only an Exchange directory can resolve one.
        raise BadRequest(400, 600, "no EMailAddress in the request")
    return PoxRequest(address, schema)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def error_body(code: int, mobilesync: bool = False) -> bytes:
    """The Autodiscover error response. Nothing the client sent is echoed back."""
    response_ns = MOBILESYNC_SCHEMA if mobilesync else RESPONSE_NS
    now = datetime.now(UTC).strftime("%H:%M:%S.%f")
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            f'<Autodiscover xmlns="{RESPONSE_NS}">\n'
            f'  <Response xmlns="{response_ns}">\n'
            f'    <Error Time="{now}" Id="{_SERVER_ID}">\n'
            f"      <ErrorCode>{code}</ErrorCode>\n"
            f"      <Message>{escape(MESSAGES[code])}</Message>\n"
            "      <DebugData />\n"
            "    </Error>\n"
            "  </Response>\n"
            "</Autodiscover>\n").encode()
