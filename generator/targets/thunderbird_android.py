"""Thunderbird for Android (formerly K-9 Mail): the QR import per account, and the rules of its strict
autoconfig reader, so the Thunderbird target can say when config-v1.1.xml is refused there.

QR facts: thunderbird-android `feature/migration/qrcode/qr-code-format.md` ("Export for Mobile", format 1,
spec version 2025-02-06; file at commit 833ae032): UTF-8 JSON of nested arrays
  [1, [SequenceNumber, SequenceEnd], IncomingServer, OutgoingServerGroups]
  IncomingServer  = [IncomingProtocol, Hostname, Port, ConnectionSecurity, AuthenticationType, Username,
                     AccountName?, Password?]
  OutgoingServerGroups = [[OutgoingServer, Identity, ...], ...]
  OutgoingServer  = [0 (SMTP), Hostname, Port, ConnectionSecurity, AuthenticationType, Username, Password?]
  Identity        = [EmailAddress, DisplayName]
Host names and e-mail addresses must be ASCII; the reader skips an account with any unsupported value. The
scanner is ZXing with a UTF-8 hint (QrCodeAnalyzer.kt), so the JSON goes into byte mode as UTF-8, without ECI.
We never put a password into the QR code (a photo of the screen would carry it).

Autoconfig facts: `RealAutoconfigParser.kt` (feature/autodiscovery/autoconfig, last changed in commit
36abd2e3, read at a59bd679): only `incomingServer type="imap"` and `outgoingServer type="smtp"` are read,
others are skipped; in a read server, a socketType other than SSL/STARTTLS, no usable authentication
(OAuth2, password-cleartext, password-encrypted) or a missing hostname/port/username rejects the whole file;
without an IMAP or without an SMTP server the file is rejected too.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import json
import re
from functools import lru_cache
from typing import Any

import segno
from defusedxml import ElementTree as SafeET

from generator.accounts import Mailbox
from generator.errors import VerificationError
from generator.model import Authentication, Security, Spec, bare_host
from generator.qrdecode import QRDecodeError, decode_svg
from generator.render import prove

# qr-code-format.md: IncomingProtocol, ConnectionSecurity (1 is reserved), AuthenticationType.
QR_PROTOCOL = {"imap": 0, "pop3": 1}
QR_SMTP = 0
QR_SECURITY: dict[Security, int] = {"none": 0, "starttls": 2, "ssl": 3}
QR_AUTH: dict[Authentication, int] = {"none": 0, "password": 1, "encrypted-password": 2, "gssapi": 3, "ntlm": 4,
                                      "oauth2": 6}
# The format lists them, but the import maps 3 (GSSAPI) and 4 (NTLM) to an error, and one unsupported value
# makes the whole code unreadable (IntValueMapper.kt toAuthenticationType, QrCodePayloadValidator.kt).
QR_REFUSED_AUTH: tuple[Authentication, ...] = ("gssapi", "ntlm")
FORMAT_VERSION = 1
# Autoconfig values RealAutoconfigParser.kt accepts in the servers it reads.
ANDROID_SOCKET = ("SSL", "STARTTLS")
ANDROID_AUTH = ("OAuth2", "password-cleartext", "password-encrypted")
ANDROID_CLIENTS = "Thunderbird for Android and K-9 Mail"
SVG_SCALE, SVG_BORDER = 4, 4  # 4 modules of quiet zone, as the QR standard asks


# Host-name check of both Thunderbirds: comm-central mailnews/base/src/hostnameUtils (isLegalHostNameOrIP,
# used by InputSanitizer.hostname for emailProvider@id, <domain> and <hostname>) and its port in Thunderbird
# for Android, core/common/.../net/HostNameUtils.kt (autoconfig and the QR import's hostnames). Rules
# re-stated: an IPv4 address (4 decimal parts 0-255, no leading zeros, the first not 0), an IPv6 address
# without brackets, zone index or all zeros, or up to 255 characters of LDH labels (1-63 characters, no '-'
# at either end) with an optional final dot.
_LDH_LABEL = r"(?:[a-z0-9]|[a-z0-9][a-z0-9-]{0,61}[a-z0-9])"
_HOST_NAME = re.compile(rf"(?:{_LDH_LABEL}\.)*{_LDH_LABEL}\.?", re.IGNORECASE)
_IPV4_PART = re.compile(r"0|[1-9][0-9]{0,2}")
# What desktop Thunderbird passes without the check: a value with placeholders (InputSanitizer.hostname).
_WITH_PLACEHOLDER = re.compile(r"[a-zA-Z0-9.-]*(?:%[A-Z0-9]+%[a-zA-Z0-9.-]*)+")
# What Thunderbird for Android fills in before its check (RealAutoconfigParser.kt): a sample domain.
SAMPLE_DOMAIN = "example.org"


def legal_host(name: str) -> bool:
    """Whether both Thunderbirds take `name` as a host name or IP address (placeholders filled first)."""
    name = name.strip()
    if _WITH_PLACEHOLDER.fullmatch(name):
        name = name.replace("%EMAILDOMAIN%", SAMPLE_DOMAIN)
    parts = name.split(".")
    if len(parts) == 4 and all(_IPV4_PART.fullmatch(p) and int(p) <= 255 for p in parts):
        return int(parts[0]) != 0
    if ":" in name:
        try:
            return "%" not in name and int(ipaddress.IPv6Address(name)) != 0
        except ValueError:
            return False
    return len(name) <= 255 and _HOST_NAME.fullmatch(name) is not None


def qr_possible(mailbox: Mailbox) -> bool:
    """The format carries only ASCII addresses (host names are ASCII already: IDNA in `Mailbox.host`)."""
    return mailbox.email.isascii()


def qr_shown(spec: Spec, mailbox: Mailbox) -> bool:
    """Whether the guide and the self-service page show this account's QR code: the spec's switch is on and
    the account can have one (the build refuses a non-ASCII address with the switch on; the page, which takes
    any typed address, leaves the code out)."""
    return spec.targets.thunderbird.android_qr and qr_possible(mailbox)


def qr_path(mailbox: Mailbox) -> str:
    """Where the build writes the account's QR code (kind android-qr)."""
    return f"{mailbox.slug}/thunderbird/thunderbird-android-qr.svg"


SVG_DATA_URI = "data:image/svg+xml;base64,"


def svg_data_uri(svg: bytes) -> str:
    """The QR file's own bytes as a data: URI, so a page shows exactly what the build writes (an <img>: the
    file is a whole SVG document, with its XML declaration)."""
    return SVG_DATA_URI + base64.b64encode(svg).decode("ascii")


def svg_from_data_uri(uri: str) -> bytes:
    """The SVG document in a data: URI as svg_data_uri writes it (ValueError for anything else)."""
    if not uri.startswith(SVG_DATA_URI):
        raise ValueError("not an SVG data: URI")
    try:
        return base64.b64decode(uri[len(SVG_DATA_URI):], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bad base64 in the data: URI: {exc}") from None


def read_qr_svg(svg: bytes) -> Any:
    """The JSON document a QR SVG of ours carries, read back from its modules (generator.qrdecode)."""
    try:
        return json.loads(decode_svg(svg.decode("utf-8"), background=False).decode("utf-8"))
    except (QRDecodeError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"QR code unreadable: {exc}") from None


def qr_values(spec: Spec, mailbox: Mailbox) -> dict[str, Any]:
    """The account the QR code carries, by name (the primary servers: the QR format carries POP3 too)."""
    inc, out = spec.incoming, spec.outgoing

    def server(s: Any, user: str) -> dict[str, Any]:
        return {"hostname": bare_host(mailbox.host(s)), "port": s.port, "security": QR_SECURITY[s.security],
                "authentication": QR_AUTH[s.authentication], "username": user}

    values: dict[str, Any] = {
        "version": FORMAT_VERSION, "sequence": [1, 1],
        "incoming": {"protocol": QR_PROTOCOL[inc.protocol], **server(inc, mailbox.username)},
        "outgoing": {"protocol": QR_SMTP, **server(out, mailbox.smtp_username)},
        "identity": {"email": mailbox.email, "name": mailbox.name},
    }
    if mailbox.description:
        # AccountName may be left out when it is the address (what the reader then uses).
        values["incoming"]["account_name"] = mailbox.description
    return values


def qr_payload(values: dict[str, Any]) -> bytes:
    """Lay the values out as the format's nested arrays: compact UTF-8 JSON (QR space is scarce)."""
    inc, out, ident = values["incoming"], values["outgoing"], values["identity"]
    incoming = [inc["protocol"], inc["hostname"], inc["port"], inc["security"], inc["authentication"],
                inc["username"]]
    if "account_name" in inc:
        incoming.append(inc["account_name"])
    outgoing = [out["protocol"], out["hostname"], out["port"], out["security"], out["authentication"],
                out["username"]]
    doc = [values["version"], values["sequence"], incoming, [[outgoing, [ident["email"], ident["name"]]]]]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_qr_payload(data: bytes) -> dict[str, Any]:
    """Read a payload back into the shape of `qr_values`, checking what the format requires of a reader."""
    doc = json.loads(data.decode("utf-8"))
    if not (isinstance(doc, list) and len(doc) == 4 and doc[0] == FORMAT_VERSION):
        raise ValueError("root must be [1, MiscellaneousData, IncomingServer, OutgoingServerGroups] (one account)")
    _, misc, inc, groups = doc
    if not (isinstance(misc, list) and len(misc) == 2 and all(type(v) is int for v in misc)):
        raise ValueError("MiscellaneousData must be [SequenceNumber, SequenceEnd]")
    if not (isinstance(groups, list) and len(groups) == 1 and isinstance(groups[0], list) and len(groups[0]) == 2):
        raise ValueError("expected one OutgoingServerGroup with one identity")
    out, ident = groups[0]

    def server(arr: Any, what: str, protocols: tuple[int, ...], extra: int) -> dict[str, Any]:
        if not (isinstance(arr, list) and 6 <= len(arr) <= 6 + extra):
            raise ValueError(f"{what} must have 6 to {6 + extra} elements")
        protocol, host, port, security, auth, user = arr[:6]
        if protocol not in protocols or not isinstance(host, str) or not legal_host(host):
            raise ValueError(f"{what}: unsupported protocol or not a host name or IP address (the import's check)")
        if type(port) is not int or not 1 <= port <= 65535:
            raise ValueError(f"{what}: port must be an integer 1-65535")
        usable = [v for k, v in QR_AUTH.items() if k not in QR_REFUSED_AUTH]
        if security not in QR_SECURITY.values() or auth not in usable or not isinstance(user, str):
            raise ValueError(f"{what}: unsupported ConnectionSecurity/AuthenticationType, or no user name")
        return {"protocol": protocol, "hostname": host, "port": port, "security": security, "authentication": auth,
                "username": user}

    incoming = server(inc, "IncomingServer", tuple(QR_PROTOCOL.values()), 2)
    if len(inc) > 6 and inc[6] not in (None, ""):
        incoming["account_name"] = inc[6]
    if len(inc) > 7 and inc[7] not in (None, ""):
        raise ValueError("IncomingServer carries a password")
    outgoing = server(out, "OutgoingServer", (QR_SMTP,), 1)
    if len(out) > 6 and out[6] not in (None, ""):
        raise ValueError("OutgoingServer carries a password")
    if not (isinstance(ident, list) and len(ident) == 2 and all(isinstance(v, str) for v in ident)
            and ident[0].isascii() and "@" in ident[0]):
        raise ValueError("Identity must be [ASCII e-mail address, display name]")
    return {"version": doc[0], "sequence": misc, "incoming": incoming, "outgoing": outgoing,
            "identity": {"email": ident[0], "name": ident[1]}}


def render_qr_svg(path: str, spec: Spec, mailbox: Mailbox) -> bytes:
    """The QR code of one account as SVG, proven: the payload parses back to the spec's values, the SVG is
    XML of the size the QR version implies. (The tests also rasterise the SVG and decode it with zbar.)"""
    if not mailbox.email.isascii():
        raise VerificationError(path, [f"{mailbox.email}: the Thunderbird for Android QR format carries only "
                                       "ASCII addresses; remove targets.thunderbird.android_qr for this spec"])
    values = qr_values(spec, mailbox)
    payload = qr_payload(values)
    try:
        prove(path, values, read_qr_payload(payload))
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(path, [f"QR payload does not read back: {exc}"]) from None
    svg, size = _encode_svg(payload, f"Thunderbird for Android: {mailbox.email}")
    try:
        root = SafeET.fromstring(svg)
    except SafeET.ParseError as exc:
        raise VerificationError(path, [f"not XML: {exc}"]) from None
    prove(path, {"tag": "{http://www.w3.org/2000/svg}svg", "width": str(size), "height": str(size)},
          {"tag": root.tag, "width": root.get("width"), "height": root.get("height")})
    return svg + (b"" if svg.endswith(b"\n") else b"\n")


@lru_cache(maxsize=32)
def _encode_svg(payload: bytes, title: str) -> tuple[bytes, int]:
    """Encoded once per account and process: the thunderbird and guide targets render the same account one
    after the other (build.render_mailbox), and encoding (segno scores all eight masks) is most of the cost."""
    qr = segno.make_qr(payload, error="m", mode="byte")  # byte mode: the UTF-8 JSON as it is, no ECI
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=SVG_SCALE, border=SVG_BORDER, xmldecl=True, title=title)
    return out.getvalue(), int(qr.symbol_size(scale=SVG_SCALE, border=SVG_BORDER)[0])


def android_autoconfig_problems(doc: dict[str, Any]) -> list[str]:
    """Why Thunderbird for Android would reject this autoconfig document (`autoconfig_values` shape)."""
    problems: list[str] = []
    read = [s for s in doc["incoming"] if s["type"] == "imap"]
    for kind, servers in (("IMAP", read), ("SMTP", doc["outgoing"])):
        for s in servers:
            if s["socketType"] not in ANDROID_SOCKET:
                problems.append(f"{kind} server {s['hostname']}:{s['port']} has socketType {s['socketType']}")
            if s["authentication"] not in ANDROID_AUTH:
                problems.append(f"{kind} server {s['hostname']}:{s['port']} has authentication "
                                f"{s['authentication']}, which it does not use")
    if not read:
        problems.append("it lists no IMAP server (POP3 servers are skipped)")
    return problems
