"""A strict autoconfig reader with the rules of Thunderbird for Android's parser, for the tests.

Written from thunderbird-android `feature/autodiscovery/autoconfig/src/main/kotlin/app/k9mail/autodiscovery/
autoconfig/RealAutoconfigParser.kt` (last changed in commit 36abd2e3da95, read at a59bd679859d) and
`core/common/src/commonMain/kotlin/net/thunderbird/core/common/net/HostNameUtils.kt` (commit 8c603caf); the
rules are re-stated here, not translated line by line, and independent of generator/ on purpose:

- the document must have a `clientConfig` element holding an `emailProvider` (the last one wins);
- `emailProvider@id` is required and must be a legal host name; at least one `<domain>` must be a legal host
  name after the placeholders are filled in;
- only `incomingServer type="imap"` and `outgoingServer type="smtp"` are read: other types (pop3) are
  skipped without looking inside;
- inside a read server, at any depth: `hostname` (legal host name or IP after the placeholders), `port`
  (an integer 0-65535), `username`, `authentication` (OAuth2, password-cleartext, password-encrypted are used,
  anything else is ignored), `socketType` (SSL or STARTTLS; anything else rejects the whole file). A missing
  hostname, port, username, socketType or no usable authentication rejects the whole file;
- text elements must hold only text; no IMAP server or no SMTP server left rejects the file.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from defusedxml import ElementTree as SafeET

_LDH_LABEL = r"([a-z0-9]|[a-z0-9][a-z0-9\-]{0,61}[a-z0-9])"
_HOST = re.compile(rf"({_LDH_LABEL}\.)*{_LDH_LABEL}\.?", re.IGNORECASE)
_IPV4_PART = re.compile(r"0|[1-9][0-9]{0,2}")
_INT = re.compile(r"[+-]?[0-9]+")  # what Kotlin's String.toIntOrNull accepts
AUTH = {"OAuth2", "password-cleartext", "password-encrypted"}
SOCKET = {"SSL": "TLS", "STARTTLS": "StartTLS"}


class AndroidParserError(Exception):
    """The whole file is rejected (the message is the parser's)."""


@dataclass
class AndroidServer:
    hostname: str
    port: int
    security: str
    authentication: list[str] = field(default_factory=list)
    username: str = ""


def legal_host(name: str) -> bool:
    name = name.strip()
    parts = name.split(".")
    if len(parts) == 4 and all(_IPV4_PART.fullmatch(p) and int(p) <= 255 for p in parts) and int(parts[0]) != 0:
        return True
    if ":" in name:
        try:
            return int(ipaddress.IPv6Address(name)) != 0  # HostNameUtils rejects ::, and zone indices
        except ValueError:
            return False
    return len(name) <= 255 and _HOST.fullmatch(name) is not None


def _text(el: Any) -> str:
    if len(el):
        raise AndroidParserError("Expected text, but got START_TAG")
    return str(el.text or "")


def parse(data: bytes, email: str) -> dict[str, list[AndroidServer]]:
    """The servers Thunderbird for Android takes from a config-v1.1.xml for `email`; raise if it rejects it."""
    local, domain = email.rsplit("@", 1)

    def fill(value: str) -> str:
        return value.replace("%EMAILDOMAIN%", domain.lower()).replace("%EMAILLOCALPART%", local) \
            .replace("%EMAILADDRESS%", email)

    try:
        root = SafeET.fromstring(data)
    except SafeET.ParseError as exc:
        raise AndroidParserError(f"Error parsing Autoconfig XML: {exc}") from None
    if root.tag != "clientConfig":
        raise AndroidParserError("Missing 'clientConfig' element")
    providers = [el for el in root if el.tag == "emailProvider"]
    if not providers:
        raise AndroidParserError("Missing 'emailProvider' element")
    provider = providers[-1]
    provider_id = provider.get("id")
    if provider_id is None:
        raise AndroidParserError("Missing 'emailProvider.id' attribute")
    if not legal_host(provider_id):
        raise AndroidParserError("Invalid 'emailProvider.id' attribute")

    def server(el: Any) -> AndroidServer:
        found: dict[str, Any] = {"authentication": []}

        def walk(parent: Any) -> None:
            for child in parent:
                if child.tag == "hostname":
                    text = _text(child)
                    if not legal_host(fill(text)):
                        raise AndroidParserError(f"Invalid 'hostname' value: '{text}'")
                    found["hostname"] = fill(text)
                elif child.tag == "port":
                    text = _text(child)
                    if not _INT.fullmatch(text) or not 0 <= int(text) <= 65535:
                        raise AndroidParserError(f"Invalid 'port' value: '{text}'")
                    found["port"] = int(text)
                elif child.tag == "username":
                    found["username"] = fill(_text(child))
                elif child.tag == "authentication":
                    if (text := _text(child)) in AUTH:
                        found["authentication"].append(text)
                elif child.tag == "socketType":
                    text = _text(child)
                    if text not in SOCKET:
                        raise AndroidParserError(f"Unknown 'socketType' value: '{text}'")
                    found["security"] = SOCKET[text]
                else:
                    walk(child)  # the parser looks at every start tag inside a server, at any depth

        walk(el)
        for key, message in (("hostname", "Missing 'hostname' element"), ("port", "Missing 'port' element"),
                             ("username", "Missing 'username' element")):
            if key not in found:
                raise AndroidParserError(message)
        if not found["authentication"]:
            raise AndroidParserError("No usable 'authentication' element found")
        if "security" not in found:
            raise AndroidParserError("Missing 'socketType' element")
        return AndroidServer(found["hostname"], found["port"], found["security"], found["authentication"],
                             found["username"])

    domain_found = False
    incoming: list[AndroidServer] = []
    outgoing: list[AndroidServer] = []
    for el in provider:
        if el.tag == "domain":
            domain_found = domain_found or legal_host(fill(_text(el)))
        elif el.tag == "incomingServer" and el.get("type") == "imap":
            incoming.append(server(el))
        elif el.tag == "outgoingServer" and el.get("type") == "smtp":
            outgoing.append(server(el))
    if not domain_found:
        raise AndroidParserError("Valid 'domain' element required")
    if not incoming:
        raise AndroidParserError("No supported 'incomingServer' element found")
    if not outgoing:
        raise AndroidParserError("No supported 'outgoingServer' element found")
    return {"incoming": incoming, "outgoing": outgoing}
