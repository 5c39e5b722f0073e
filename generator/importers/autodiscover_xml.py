"""Outlook Autodiscover (POX) answers (autodiscover.xml) -> one draft.

Facts (FORMATS.md §4): `<Account>` lists one `<Protocol>` per server, in order of preference: `Type`
POP3 | IMAP | SMTP, `Server`, `Port`, `LoginName`, `SPA` (on = NTLM), `SSL` (on when absent), `Encryption`
None | SSL | TLS (= STARTTLS) | Auto, overriding `SSL`; `AuthRequired`; SMTP `UsePOPAuth` (on = the incoming
credentials). `<User><DisplayName>` is the sender's name. The answer does not carry the mailbox's address:
it is taken from `LoginName` when that is an address (said), otherwise the file adds servers but no mailbox.
"""

from __future__ import annotations

from pathlib import Path

from generator.accounts import split_address
from generator.importers.draft import MAX_XML_BYTES, Draft, SpecPath, fail, read_limited
from generator.importers.xmltree import Element, parse_xml

KIND = "Autodiscover XML"
TYPES = {"POP3": "pop3", "IMAP": "imap", "SMTP": "smtp"}
ENCRYPTION = {"none": "none", "ssl": "ssl", "tls": "starttls"}


def is_autodiscover(head: bytes) -> bool:
    return b"<Autodiscover" in head and b"responseschema" in head


def read(path: Path) -> list[Draft]:
    return parse(read_limited(path, MAX_XML_BYTES, "the autodiscover file"), str(path))


def parse(data: bytes, file: str) -> list[Draft]:
    root = parse_xml(data, file)
    response = root.find("Response")
    account = response.find("Account") if response is not None else None
    if root.tag != "Autodiscover" or account is None:
        raise fail(root.position, "not an Autodiscover answer with <Response><Account>",
                   "give the autodiscover.xml a server answers (not the request)")
    protocols = [p for p in account.findall("Protocol") if (p.child_text("Type") or "") in TYPES]
    for other in account.findall("Protocol"):
        if other not in protocols:
            raise fail(other.position, f"<Protocol> of type {other.child_text('Type')!r}",
                       "use POP3, IMAP or SMTP (POP is not a valid Type)")
    incoming = [p for p in protocols if p.child_text("Type") in ("POP3", "IMAP")]
    outgoing = [p for p in protocols if p.child_text("Type") == "SMTP"]
    if not incoming or not outgoing:
        raise fail(account.position, "the answer needs a POP3/IMAP and an SMTP <Protocol>", "add the missing one")
    d = Draft(source=file, kind=KIND)
    login = incoming[0].child_text("LoginName") or ""
    user = response.find("User") if response is not None else None
    name = user.child_text("DisplayName") if user is not None else None
    address = local = None
    if "@" in login:
        try:
            local, domain = split_address(login)
        except ValueError:
            local = None
        else:
            address = f"{local}@{domain}"
            d.set(("provider", "domains"), [domain], incoming[0].position)
            for key in ("id", "display_name"):
                d.set(("provider", key), domain, incoming[0].position, guessed=True)
                d.note(("provider", key), f"autodiscover.xml does not name the provider: {key} is the mail domain",
                       incoming[0].position)
            d.set(("accounts",), [{"name": name or local, "email": address}], incoming[0].position)
            d.note(("accounts",), f"{address}: the address is the LoginName (autodiscover.xml does not carry it)",
                   incoming[0].position, warn=False)
    if address is None:
        d.note(("accounts",), f"LoginName '{login}' is not an address: this answer adds servers but no mailbox",
               incoming[0].position, hint="import a profile, PRF or prefs of that mailbox too")
    for i, el in enumerate(incoming):
        _protocol(d, ("incoming",) if i == 0 else ("fallbacks", "incoming", i - 1), el, login, address, local)
    for i, el in enumerate(outgoing):
        _protocol(d, ("outgoing",) if i == 0 else ("fallbacks", "outgoing", i - 1), el, login, address, local)
    return [d]


def _protocol(d: Draft, path: SpecPath, el: Element, login: str, address: str | None, local: str | None) -> None:
    kind = TYPES[el.child_text("Type") or ""]
    if kind != "smtp":
        d.set((*path, "protocol"), kind, el.position)
    host, port = el.child_text("Server"), el.child_text("Port")
    if not host or not port or not port.isdigit() or not 0 < int(port) < 65536:
        raise fail(el.position, "<Protocol> needs <Server> and a numeric <Port>", "add them")
    d.set((*path, "host"), host, el.position)
    d.set((*path, "port"), int(port), el.position)
    encryption = (el.child_text("Encryption") or "").lower()
    if encryption in ENCRYPTION:
        d.set((*path, "security"), ENCRYPTION[encryption], el.position)
    else:  # SSL on (also when absent) without Encryption, or Encryption Auto: Outlook negotiates
        ssl = (el.child_text("SSL") or "on").lower() != "off"
        d.set((*path, "security"), "ssl" if ssl else "none", el.position, guessed=True)
        d.note((*path, "security"), f"no Encryption (or Auto) with SSL {'on' if ssl else 'off'}: "
               f"{'ssl' if ssl else 'none'} assumed", el.position, hint="check the mode with your provider")
    if (el.child_text("AuthRequired") or "on").lower() == "off":
        d.set((*path, "authentication"), "none", el.position)
    else:
        d.set((*path, "authentication"), "ntlm" if (el.child_text("SPA") or "off").lower() == "on" else "password",
              el.position)
    if d.get((*path, "security")) == "none" and d.get((*path, "authentication")) != "none":
        d.set((*path, "allow_insecure"), True, el.position)
    name = el.child_text("LoginName") or login
    template = ("%EMAILADDRESS%" if address and name.lower() == address.lower() else
                "%EMAILLOCALPART%" if local and name == local else None)
    if kind == "smtp":
        same = (el.child_text("UsePOPAuth") or "off").lower() == "on"
        d.set((*path, "same_credentials"), same, el.position)
        if not same:
            d.set((*path, "username"), template or name, el.position)
    elif path == ("incoming",):
        if template is not None:
            d.set((*path, "username"), template, el.position)
    elif name != login:
        d.set((*path, "username"), template or name, el.position)
