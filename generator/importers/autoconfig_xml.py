"""Mozilla autoconfig / ISPDB XML (config-v1.1.xml) -> drafts, one per <emailProvider>.

Facts (FORMATS.md §3, SERVICE-AND-DELIVERY.md D.1, Thunderbird's readFromXML.sys.mjs): servers are listed in
order of preference, so the first incoming/outgoing server is the primary and the rest are fallbacks
(except an IMAP server right after a POP3 primary: imap_alternative, where our build writes it);
socketType is SSL | STARTTLS | plain; a server lists one or more <authentication> values and Thunderbird
uses the first it supports; `plain` and `secure` are the legacy spellings of password-cleartext and
password-encrypted. What the spec cannot hold (OAuth2 endpoints, webMail, <enable> instructions,
multilingual descriptions, restrictions) becomes a note where it belongs.
"""

from __future__ import annotations

from pathlib import Path

from generator.errors import Position
from generator.importers.draft import MAX_XML_BYTES, Draft, SpecPath, fail, read_limited
from generator.importers.xmltree import Element, parse_xml

KIND = "Mozilla autoconfig XML"
SOCKET = {"SSL": "ssl", "STARTTLS": "starttls", "plain": "none"}
# Current and legacy spellings (readFromXML.sys.mjs accepts "plain"/"secure" for compatibility).
AUTH = {"password-cleartext": "password", "plain": "password", "password-encrypted": "encrypted-password",
        "secure": "encrypted-password", "NTLM": "ntlm", "GSSAPI": "gssapi", "OAuth2": "oauth2", "none": "none"}
# Methods the spec has no word for; Thunderbird skips to the next listed method when it cannot use one.
NO_AUTH = {"client-IP-address": "access by client IP address", "smtp-after-pop": "SMTP after POP",
           "TLS-client-cert": "a TLS client certificate"}
POP3_FLAGS = {"true": True, "false": False}


def read(path: Path) -> list[Draft]:
    data = read_limited(path, MAX_XML_BYTES, "the autoconfig file")
    return parse(data, str(path))


def parse(data: bytes, file: str) -> list[Draft]:
    root = parse_xml(data, file)
    if root.tag != "clientConfig":
        raise fail(root.position, f"the root element is <{root.tag}>, not <clientConfig>",
                   "give a Mozilla autoconfig file (config-v1.1.xml or an ISPDB entry)")
    providers = root.findall("emailProvider")
    if not providers:
        raise fail(root.position, "<clientConfig> holds no <emailProvider>", "check that the file is complete")
    drafts = [_provider(p, file) for p in providers]
    for oauth in root.findall("oAuth2"):
        issuer = oauth.child_text("issuer") or "?"
        for draft in drafts:
            draft.note(("incoming", "authentication"), f"the source's OAuth2 settings (issuer {issuer}, "
                       f"authURL {oauth.child_text('authURL') or '?'}) are not carried: the spec has no OAuth2 "
                       "endpoints (Thunderbird uses its built-in list)", oauth.position)
    for extra in root.children:
        if extra.tag not in ("emailProvider", "oAuth2"):
            for draft in drafts:
                draft.note((), f"<{extra.tag}> is not carried", extra.position)
    return drafts


def _provider(p: Element, file: str) -> Draft:
    d = Draft(source=file, kind=KIND)
    pid = p.attrs.get("id", "").strip()
    if not pid:
        raise fail(p.position, "<emailProvider> has no id attribute", "add id=\"example.com\"")
    d.set(("provider", "id"), pid, p.position)
    domains = [(e.text.strip(), e.position) for e in p.findall("domain") if e.text.strip()]
    if not domains:
        raise fail(p.position, "<emailProvider> lists no <domain>", "add <domain>example.com</domain>")
    d.set(("provider", "domains"), [name for name, _ in domains], domains[0][1])
    name = p.find("displayName")
    short = p.find("displayShortName")
    display = name.text.strip() if name is not None and name.text.strip() else None
    if display is None:
        display = short.text.strip() if short is not None and short.text.strip() else pid
        d.set(("provider", "display_name"), display, p.position, guessed=True)
        d.note(("provider", "display_name"), f"no <displayName>: display_name set to '{display}'", p.position)
    else:
        d.set(("provider", "display_name"), display, name.position if name is not None else p.position)
    if short is not None and short.text.strip() and short.text.strip() != display:
        d.set(("provider", "short_name"), short.text.strip(), short.position)
    for comment in p.comments + [c for e in p.findall("domain") for c in e.comments]:
        d.note(("provider",), f"source comment: {comment}", p.position, warn=False)

    incoming = p.findall("incomingServer")
    outgoing = p.findall("outgoingServer")
    usable_in = [e for e in incoming if _server_type(e, d, ("imap", "pop3"))]
    usable_out = [e for e in outgoing if _server_type(e, d, ("smtp",))]
    if not usable_in:
        raise fail(p.position, "<emailProvider> has no POP3 or IMAP <incomingServer>",
                   "the spec needs an incoming server; check the file")
    if not usable_out:
        raise fail(p.position, "<emailProvider> has no SMTP <outgoingServer>",
                   "the spec needs an outgoing server; check the file")
    first_user = _text(usable_in[0], "username") or "%EMAILADDRESS%"
    _server(d, ("incoming",), usable_in[0], True, first_user)
    rest = usable_in[1:]
    if usable_in[0].attrs["type"] == "pop3" and rest and rest[0].attrs["type"] == "imap":
        # An IMAP server right after a POP3 primary is the provider's IMAP alternative: that is where our own
        # config-v1.1.xml writes imap_alternative (targets/thunderbird.py), the one server Thunderbird for
        # Android can use from a POP3 provider's file.
        _server(d, ("imap_alternative",), rest[0], True, first_user)
        rest = rest[1:]
    for i, el in enumerate(rest):
        _server(d, ("fallbacks", "incoming", i), el, True, first_user)
    for i, el in enumerate(usable_out):
        _server(d, ("outgoing",) if i == 0 else ("fallbacks", "outgoing", i - 1), el, False, first_user)
    _plain_fallbacks(d, [*rest, *usable_out[1:]])

    docs = p.findall("documentation")
    if docs:
        url = docs[0].attrs.get("url", "").strip()
        if url:
            d.set(("provider", "documentation_url"), url, docs[0].position)
        descr = [(e.attrs.get("lang", ""), " ".join(e.text.split())) for e in docs[0].findall("descr")]
        generated = f"{display}: configuration"  # what our own autoconfig writes
        lost = [f"{lang or 'default'}: {text}" for lang, text in descr if text and text != generated]
        if lost:
            d.note(("provider", "documentation_url"), "link descriptions not carried (the spec holds the URL "
                   "only): " + "; ".join(lost), docs[0].position)
        for extra in docs[1:]:
            d.note(("provider", "documentation_url"), f"further documentation link not carried: "
                   f"{extra.attrs.get('url', '?')}", extra.position)
    for enable in p.findall("enable"):
        texts = [" ".join(e.text.split()) for e in enable.findall("instruction") if e.text.strip()]
        d.note(("provider",), f"users must first enable access at {enable.attrs.get('visiturl', '?')} ("
               + (texts[0] if texts else "no instruction") + "): not carried, tell your users",
               enable.position)
    handled = {"domain", "displayName", "displayShortName", "incomingServer", "outgoingServer", "documentation",
               "enable"}
    for other in p.children:
        if other.tag not in handled:
            what = "the webmail login page" if other.tag == "webMail" else f"<{other.tag}>"
            d.note(("provider",), f"{what} is not carried by the spec", other.position)
    return d


def _plain_fallbacks(d: Draft, fallbacks: list[Element]) -> None:
    """Plain-text fallbacks in the file stay in the file: our config-v1.1.xml leaves them out unless
    targets.thunderbird.autoconfig_plain_fallbacks is true (Thunderbird for Android and K-9 Mail reject the
    whole file for one plain-text IMAP/SMTP server, thunderbird_android.py)."""
    plain = [el for el in fallbacks if el.child_text("socketType") == "plain"]
    if plain:
        path = ("targets", "thunderbird", "autoconfig_plain_fallbacks")
        d.set(path, True, plain[0].position)
        d.note(path, f"the source lists {len(plain)} plain-text fallback server(s): kept in config-v1.1.xml as "
               "the source has them", plain[0].position, warn=False,
               hint="remove this line to leave them out: Thunderbird for Android and K-9 Mail reject a "
               "config-v1.1.xml that lists a plain-text server")


def _server_type(el: Element, d: Draft, allowed: tuple[str, ...]) -> bool:
    kind = el.attrs.get("type", "")
    if kind in allowed:
        return True
    d.note(("provider",), f"<{el.tag} type=\"{kind}\"> skipped: the spec holds {'/'.join(allowed)} servers only",
           el.position)
    return False


def _text(el: Element, tag: str) -> str | None:
    value = el.child_text(tag)
    return value if value else None


def _server(d: Draft, path: SpecPath, el: Element, incoming: bool, first_user: str) -> None:
    def need(tag: str) -> tuple[str, Position]:
        child = el.find(tag)
        if child is None or not child.text.strip():
            raise fail(el.position, f"<{el.tag}> has no <{tag}>", f"add <{tag}>...</{tag}>")
        return child.text.strip(), child.position

    if incoming:
        d.set((*path, "protocol"), el.attrs["type"], el.position)
    host, at = need("hostname")
    d.set((*path, "host"), host, at)
    port_text, at = need("port")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise fail(at, f"<port> '{port_text}' is not a TCP port", "write a number from 1 to 65535")
    d.set((*path, "port"), int(port_text), at)
    socket, at = need("socketType")
    if socket not in SOCKET:
        raise fail(at, f"<socketType> '{socket}' is not SSL, STARTTLS or plain", "use one of SSL, STARTTLS, plain")
    d.set((*path, "security"), SOCKET[socket], at)
    for comment in (c for e in el.walk() for c in e.comments):
        d.note(path, f"source comment: {comment}", el.position, warn=False)

    methods = [(e.text.strip(), e.position) for e in el.findall("authentication") if e.text.strip()]
    if not methods:
        methods = [("password-cleartext", el.position)]
        d.guessed.add((*path, "authentication"))
        d.note((*path, "authentication"), "no <authentication>: password assumed", el.position)
    usable = [(AUTH[m], m, pos) for m, pos in methods if m in AUTH]
    for m, pos in methods:
        if m in NO_AUTH:
            d.note((*path, "authentication"), f"'{m}' ({NO_AUTH[m]}) has no equivalent in the spec; skipped",
                   pos)
        elif m not in AUTH:
            raise fail(pos, f"<authentication> '{m}' is not a known method",
                       "use password-cleartext, password-encrypted, NTLM, GSSAPI, OAuth2 or none")
    if not usable:
        d.set((*path, "authentication"), "none", methods[0][1], guessed=True)
        d.note((*path, "authentication"), "no method the spec knows: authentication none assumed", methods[0][1])
    else:
        chosen = usable[0]
        if chosen[0] == "oauth2":
            password = next((u for u in usable if u[0] not in ("oauth2",)), None)
            if password is not None:
                d.note((*path, "authentication"), f"the source prefers OAuth2, then {password[1]}: the spec holds "
                       f"one method, {password[1]} is kept so that every target can carry it",
                       chosen[2], hint="set authentication: oauth2 for Thunderbird-only specs")
                chosen = password
        d.set((*path, "authentication"), chosen[0], chosen[2])
        if len(usable) > 1 and chosen is usable[0]:
            d.note((*path, "authentication"), "further methods not carried (the spec holds one): "
                   + ", ".join(m for _, m, _ in usable[1:]), usable[1][2], warn=False)
    if SOCKET[socket] == "none" and d.get((*path, "authentication")) not in ("none", "gssapi"):
        d.set((*path, "allow_insecure"), True, at)
        d.note((*path, "allow_insecure"), "the source lists this plain-text server with a password: "
               "allow_insecure keeps it; remove the server if clients should never use it", at)

    user = _text(el, "username")
    if incoming:
        if user is None:
            d.note(path, "no <username>: the e-mail address is assumed", el.position)
        # What the spec gives a server that names none (model.user_template): the primary its address, the
        # IMAP alternative and the fallbacks the primary's user name. Anything else is written out.
        inherited = "%EMAILADDRESS%" if path == ("incoming",) else first_user
        if (user or "%EMAILADDRESS%") != inherited:
            name = el.find("username")
            d.set((*path, "username"), user or "%EMAILADDRESS%", name.position if name is not None else el.position)
        pop3 = el.find("pop3")
        if pop3 is not None:
            _pop3(d, path, pop3, el.attrs["type"] == "pop3")
    else:
        # Our own autoconfig writes the incoming user name on SMTP when the credentials are shared.
        if user is None or user == first_user:
            d.set((*path, "same_credentials"), True, el.position)
        else:
            d.set((*path, "same_credentials"), False, el.position)
            d.set((*path, "username"), user, el.find("username").position)  # type: ignore[union-attr]
    for tag in ("restriction", "addThisServer", "useGlobalPreferredServer"):
        extra = el.find(tag)
        if extra is not None:
            d.note(path, f"<{tag}>{extra.text.strip()}</{tag}> is not carried", extra.position)


def _pop3(d: Draft, path: SpecPath, pop3: Element, is_pop3: bool) -> None:
    if not is_pop3:
        d.note(path, "<pop3> options on a non-POP3 server are ignored", pop3.position)
        return
    leave = pop3.find("leaveMessagesOnServer")
    days = pop3.find("daysToLeaveMessagesOnServer")
    keep = False
    if leave is not None:
        if leave.text.strip() not in POP3_FLAGS:
            raise fail(leave.position, f"<leaveMessagesOnServer> '{leave.text.strip()}' is not true or false",
                       "Thunderbird accepts exactly true or false")
        keep = POP3_FLAGS[leave.text.strip()]
        if keep:
            d.set((*path, "keep_on_server"), True, leave.position)
    if days is not None:
        text = days.text.strip()
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise fail(days.position, f"<daysToLeaveMessagesOnServer> '{text}' is not a number of days",
                       "write a whole number such as 14")
        if keep:
            d.set((*path, "keep_days"), int(text), days.position)
        else:
            d.note(path, f"daysToLeaveMessagesOnServer {text} without leaveMessagesOnServer true: dropped",
                   days.position)
    biff = pop3.find("downloadOnBiff")
    if biff is not None:
        d.note(path, f"downloadOnBiff {biff.text.strip()} is not carried (Thunderbird's default applies)",
               biff.position, warn=biff.text.strip() != "true")
    interval = pop3.find("checkInterval")
    if interval is not None:
        minutes = interval.attrs.get("minutes", "")
        if path == ("incoming",) and minutes.isdigit() and 1 <= int(minutes) <= 1440:
            d.set(("targets", "thunderbird", "check_interval_minutes"), int(minutes), interval.position)
            d.note(("targets", "thunderbird", "check_interval_minutes"), "from the primary server's "
                   "<checkInterval>", interval.position, warn=False)
        else:
            d.note(path, f"checkInterval {minutes} minutes is not carried for this server", interval.position)
