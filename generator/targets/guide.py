"""End-user setup guides: per account an HTML guide and the same as plain text, in the account's language;
per domain a guide with placeholders (%EMAILADDRESS%) for an intranet page; a QR code of the profile link
when the service's base URL is known; the account's Thunderbird for Android QR import (the build's android-qr
file, as a data: URI) with its step when targets.thunderbird.android_qr is on (the text guide names the HTML).

Facts: SERVICE-AND-DELIVERY.md §C (what providers' guides say; Aruba's POP3 guide is the model: which server,
which port, SSL on, user name = full address, same credentials for sending, keep a copy on the server).

Proof: both forms are parsed back (the HTML with the stdlib HTML parser, the text line by line), every row
of every settings table is read back into the spec's vocabulary (host, int port, ssl/starttls/none, ...)
and compared with the spec; the profile link and the QR's presence are checked when a base URL is set; the
Android QR is decoded from the HTML (generator.qrdecode) and its JSON compared with the android-qr payload.

`manual_settings()` is the reusable piece: the rows (key, label, value) of the settings table for one
mailbox, already translated, for any page that shows them (the web self-service page uses it).
"""

from __future__ import annotations

import json
import re
import unicodedata
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

import jinja2
import segno
from markupsafe import Markup

from generator import pngwriter
from generator.accounts import Mailbox, login
from generator.errors import Position, Problem, SpecError, VerificationError
from generator.i18n import LANGUAGES, gettext_for, install, ngettext_for
from generator.model import IncomingServer, Server, Spec
from generator.qrdecode import QRDecodeError, decode, decode_png, matrix_from_paths
from generator.render import prove, render_template
from generator.targets.base import OutputFile, Target
from generator.targets.thunderbird_android import (
    qr_path,
    qr_payload,
    qr_shown,
    qr_values,
    read_qr_svg,
    render_qr_svg,
    svg_data_uri,
    svg_from_data_uri,
)


def N_(message: str) -> str:
    """Mark a message for extraction (pybabel -k N_); translated where it is shown."""
    return message


# How mail apps label connection security: Thunderbird and Outlook both say "SSL/TLS" and "STARTTLS"
# (SERVICE-AND-DELIVERY §C.2); "None" is the one word apps translate.
SECURITY_LABEL = {"ssl": "SSL/TLS", "starttls": "STARTTLS", "none": N_("None")}
# Thunderbird's names for the authentication methods (its account settings "Authentication method").
AUTH_LABEL = {"password": N_("Normal password"), "encrypted-password": N_("Encrypted password"),
              "ntlm": "NTLM", "gssapi": "Kerberos / GSSAPI", "oauth2": "OAuth2",
              "none": N_("No authentication")}
SAME_CREDENTIALS = N_("Authentication required, same user name and password")
PROTOCOL_LABEL = {"pop3": "POP3", "imap": "IMAP"}


@dataclass(frozen=True, slots=True)
class SettingRow:
    """One line of a settings table: a stable key (for tests and pages), the translated label and value."""

    key: str
    label: str
    value: str


def same_password(spec: Spec) -> bool:
    """Whether the outgoing server's authentication can be told as "same user name and password": only when both
    servers take a normal password. Said of OAuth2, NTLM, Kerberos or an encrypted password it hides the method
    the user must pick (an app left on "Normal password" fails to log in to an OAuth2 SMTP server)."""
    return (spec.outgoing.same_credentials and spec.outgoing.authentication == "password"
            and spec.incoming.authentication == "password")


def _server_rows(prefix: str, server: Server, user: str, mailbox: Mailbox,
                 _: Callable[[str], str], same: bool = False) -> list[SettingRow]:
    if isinstance(server, IncomingServer):
        host_label = _("Incoming server (%(protocol)s)") % {"protocol": PROTOCOL_LABEL[server.protocol]}
    else:
        host_label = _("Outgoing server (SMTP)")
    rows = [SettingRow(f"{prefix}.host", host_label, mailbox.host(server)),
            SettingRow(f"{prefix}.port", _("Port"), str(server.port)),
            SettingRow(f"{prefix}.security", _("Connection security"), _(SECURITY_LABEL[server.security]))]
    if same:
        rows.append(SettingRow(f"{prefix}.authentication", _("Authentication"), _(SAME_CREDENTIALS)))
        return rows
    rows.append(SettingRow(f"{prefix}.authentication", _("Authentication method"),
                           _(AUTH_LABEL[server.authentication])))
    if server.authentication != "none":
        rows.append(SettingRow(f"{prefix}.username", _("User name"), user))
    return rows


def manual_settings(spec: Spec, mailbox: Mailbox, language: str) -> list[SettingRow]:
    """The manual settings table of one mailbox, translated: what a user types into any mail app."""
    _ = gettext_for(language)
    inc = spec.incoming
    rows = [SettingRow("account.email", _("E-mail address"), mailbox.email),
            SettingRow("incoming.protocol", _("Account type"), PROTOCOL_LABEL[inc.protocol])]
    rows += _server_rows("incoming", inc, mailbox.username, mailbox, _)
    if inc.protocol == "pop3":
        if inc.keep_on_server and inc.keep_days is not None:
            keep = keep_days_text(inc.keep_days, ngettext_for(language))
        else:
            keep = _("Yes") if inc.keep_on_server else _("No")
        rows.append(SettingRow("incoming.keep_on_server", _("Leave a copy of messages on the server"), keep))
    rows += _server_rows("outgoing", spec.outgoing, mailbox.smtp_username, mailbox, _, same_password(spec))
    rows.append(SettingRow("tls_min", _("Minimum TLS version"), f"TLS {spec.tls_min}"))
    return rows


def keep_days_text(days: int, ngettext: Callable[[str, str, int], str]) -> str:
    """'Yes, remove from the server after 1 day' / '... 30 days': the plural form the language's rules pick.
    Outlook's words ("Remove from server after N days", Italian "Rimuovi dal server dopo N giorni"): a bare
    "delete after N days" read as deleting the messages from the device."""
    return ngettext("Yes, remove from the server after %(days)s day", "Yes, remove from the server after %(days)s days",
                    days) % {"days": days}


def legacy_settings(spec: Spec, mailbox: Mailbox, language: str) -> list[SettingRow]:
    """The discouraged plain-text fallback servers, if the spec declares them (shown with a warning)."""
    _ = gettext_for(language)
    rows: list[SettingRow] = []
    # With their own authentication and user name: a fallback may log in differently from the main servers
    # (its own `username`, or none), and a table without them let the user assume the main login.
    for prefix, server in _fallbacks(spec):
        rows += _server_rows(prefix, server, login(spec, mailbox, server), mailbox, _)
    return rows


def _fallbacks(spec: Spec) -> list[tuple[str, Server]]:
    servers: list[tuple[str, Server]] = [(f"fallback.incoming.{i}", s) for i, s in enumerate(spec.fallbacks.incoming)]
    return servers + [(f"fallback.outgoing.{i}", s) for i, s in enumerate(spec.fallbacks.outgoing)]


def imap_settings(spec: Spec, mailbox: Mailbox, language: str) -> list[SettingRow]:
    """The IMAP server a POP3 provider also offers (imap_alternative), for users who prefer IMAP: the
    provider's own guides point to it (Aruba: "Se si preferisce utilizzare il protocollo IMAP ...")."""
    if spec.imap_alternative is None:
        return []
    return _server_rows("imap", spec.imap_alternative, login(spec, mailbox, spec.imap_alternative), mailbox,
                        gettext_for(language))


def expected_imap(spec: Spec, mailbox: Mailbox) -> dict[str, Any]:
    server = spec.imap_alternative
    if server is None:
        return {}
    values: dict[str, Any] = {"imap.host": mailbox.host(server), "imap.port": server.port,
                              "imap.security": server.security, "imap.authentication": server.authentication}
    if server.authentication != "none":
        values["imap.username"] = login(spec, mailbox, server)
    return values


def expected_values(spec: Spec, mailbox: Mailbox) -> dict[str, Any]:
    """What the tables must say, in the spec's own vocabulary, straight from the spec (not from the rows)."""
    inc, out = spec.incoming, spec.outgoing
    values: dict[str, Any] = {"account.email": mailbox.email, "incoming.protocol": inc.protocol}
    for prefix, server in (("incoming", inc), ("outgoing", out)):
        values |= {f"{prefix}.host": mailbox.host(server), f"{prefix}.port": server.port,
                   f"{prefix}.security": server.security}
        same = (prefix == "outgoing" and out.same_credentials and out.authentication == "password"
                and inc.authentication == "password")
        values[f"{prefix}.authentication"] = "same-credentials" if same else server.authentication
        if not same and server.authentication != "none":
            values[f"{prefix}.username"] = mailbox.username if prefix == "incoming" else mailbox.smtp_username
    if inc.protocol == "pop3":
        values["incoming.keep_on_server"] = (inc.keep_on_server, inc.keep_days)
    values["tls_min"] = spec.tls_min
    return values


def expected_legacy(spec: Spec, mailbox: Mailbox) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for prefix, server in _fallbacks(spec):
        values |= {f"{prefix}.host": mailbox.host(server), f"{prefix}.port": server.port,
                   f"{prefix}.security": server.security, f"{prefix}.authentication": server.authentication}
        if server.authentication != "none":
            values[f"{prefix}.username"] = login(spec, mailbox, server)
    return values


def read_back(cells: dict[str, str], language: str) -> dict[str, Any]:
    """Table cells as displayed -> the spec's vocabulary (the inverse of manual_settings, written separately)."""
    _ = gettext_for(language)
    security = {_(label): key for key, label in SECURITY_LABEL.items()}
    auth = {_(label): key for key, label in AUTH_LABEL.items()} | {_(SAME_CREDENTIALS): "same-credentials"}
    protocols = {label: key for key, label in PROTOCOL_LABEL.items()}
    out: dict[str, Any] = {}
    for key, text in cells.items():
        field = key.rsplit(".", 1)[-1]
        value: Any = text
        if field == "port":
            value = int(text) if text.isdigit() else text
        elif field == "security":
            value = security.get(text, text)
        elif field == "authentication":
            value = auth.get(text, text)
        elif field == "protocol":
            value = protocols.get(text, text)
        elif field == "keep_on_server":
            value = _keep_back(text, _, ngettext_for(language))
        elif key == "tls_min":
            value = text.removeprefix("TLS ")
        out[key] = value
    return out


def _keep_back(text: str, _: Callable[[str], str], ngettext: Callable[[str, str, int], str]) -> \
        tuple[bool, int | None] | str:
    if text == _("No"):
        return (False, None)
    if text == _("Yes"):
        return (True, None)
    # The count is the one number in the text, and the whole text must be the form the language gives it.
    numbers = [word for word in text.replace(",", " ").split() if word.isascii() and word.isdigit()]
    if len(numbers) == 1 and text == keep_days_text(int(numbers[0]), ngettext):
        return (True, int(numbers[0]))
    return text


# --- parsing the outputs back ------------------------------------------------------------------------------

@dataclass
class ParsedGuide:
    tables: dict[str, dict[str, str]]  # table id -> {row key: cell text}
    links: dict[str, str]  # element id -> href
    qr_svgs: int
    lang: str | None
    qr_paths: list[str] = field(default_factory=list)  # the `d` of each path inside the QR <svg>
    images: dict[str, str] = field(default_factory=dict)  # <img id> -> src (the Android QR's data: URI)


# What makes a mail client or browser fetch or run something on its own when the guide is opened: a URL
# with a network scheme or scheme-relative, anywhere but a link's href (a click); CSS url() other than data:
# and @import; scripts, frames, objects, <base>, event handlers. A guide is mailed to every user; such a
# template would tell someone when each opened it, or show them what the proof never read.
_REMOTE = re.compile(r"(?i)(?:\b(?:https?|ftp|wss?)://|^\s*//|url\(\s*['\"]?\s*(?!data:)|@import)")
_ACTIVE_TAGS = frozenset({"script", "iframe", "frame", "object", "embed", "base", "applet", "portal"})
# Attributes that are text for a reader and never fetched: a URL there (the profile link in the QR code's
# accessible name) loads nothing.
_TEXT_ATTRIBUTES = frozenset({"alt", "title", "lang", "id", "class"})


def _text_only(attribute: str) -> bool:
    return attribute in _TEXT_ATTRIBUTES or attribute.startswith(("aria-", "data-"))


class _GuideParser(HTMLParser):
    """Collects <table id> / <tr data-key> / <td> text, <a id href>, inline QR <svg>s and <html lang>.

    Raises ValueError where the guide would read differently from what is collected: an id or row given
    twice (the proof read the last, a reader sees the first), or content that loads or runs on opening."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parsed = ParsedGuide({}, {}, 0, None)
        self._table: str | None = None
        self._row: str | None = None
        self._cell: list[str] | None = None
        self._in_qr = False
        self._in_style = False

    def _refuse(self, what: str) -> ValueError:
        return ValueError(f"line {self.getpos()[0]}: {what}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in _ACTIVE_TAGS:
            raise self._refuse(f"<{tag}> runs or loads content when the guide is opened")
        for name, value in attrs:
            if name.startswith("on"):
                raise self._refuse(f"<{tag} {name}> runs a script")
            if value and _REMOTE.search(value) and not (tag == "a" and name == "href") and not _text_only(name):
                raise self._refuse(f"<{tag} {name}={value[:60]!r}> loads a remote resource")
        self._in_style = tag == "style"
        if tag == "html":
            self.parsed.lang = a.get("lang")
        elif tag == "table" and a.get("id"):
            self._table = a["id"]
            if (self._table or "") in self.parsed.tables:
                raise self._refuse(f"a second <table id={self._table!r}>")
            self.parsed.tables[self._table or ""] = {}
        elif tag == "tr" and self._table is not None:
            self._row = a.get("data-key")
            if self._row is not None and self._row in self.parsed.tables[self._table]:
                raise self._refuse(f"a second row {self._row!r} in <table id={self._table!r}>")
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "a" and a.get("id") and a.get("href"):
            if (a["id"] or "") in self.parsed.links:
                raise self._refuse(f"a second <a id={a['id']!r}>")
            self.parsed.links[a["id"] or ""] = a["href"] or ""
        elif tag == "img" and a.get("id"):
            if (a["id"] or "") in self.parsed.images:
                raise self._refuse(f"a second <img id={a['id']!r}>")
            self.parsed.images[a["id"] or ""] = a.get("src") or ""
        elif tag == "svg" and "qr" in (a.get("class") or "").split():
            self.parsed.qr_svgs += 1
            self._in_qr = True
        elif tag == "path" and self._in_qr:
            self.parsed.qr_paths.append(a.get("d") or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)  # <path .../>

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False
        if tag == "svg":
            self._in_qr = False
        if tag == "td" and self._cell is not None and self._table is not None and self._row is not None:
            self.parsed.tables[self._table][self._row] = "".join(self._cell).strip()
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._in_style and _REMOTE.search(data):
            raise self._refuse("a style sheet that loads a remote resource")
        if self._cell is not None:
            self._cell.append(data)


def parse_html_guide(data: bytes) -> ParsedGuide:
    parser = _GuideParser()
    parser.feed(data.decode("utf-8"))
    parser.close()
    return parser.parsed


def parse_text_tables(text: str, keys: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """The text guide's tables: a line '[id]' then 'Label: value' lines up to a blank line. `keys` gives each
    table's row keys in order (the text form has no attributes to carry them)."""
    tables: dict[str, dict[str, str]] = {}
    lines = text.splitlines()
    for table_id, row_keys in keys.items():
        marker = f"[{table_id}]"
        if marker not in lines:
            continue
        start = lines.index(marker) + 1
        body = []
        for line in lines[start:]:
            if not line.strip():
                break
            body.append(line)
        cells = {}
        for key, line in zip(row_keys, body, strict=False):
            _label, _sep, value = line.partition(": ")
            cells[key] = value.strip()
        if len(body) != len(row_keys):
            cells["(rows)"] = f"{len(body)} rows, expected {len(row_keys)}"
        tables[table_id] = cells
    return tables


# --- the target --------------------------------------------------------------------------------------------

def mailto(address: str) -> str:
    """The mailto: URL of an address (RFC 6068): '#', '%', '&' and '?' are legal in a local part and would
    otherwise end the address or start headers of the link."""
    return "mailto:" + urllib.parse.quote(address, safe="@!$'*+=^`{}~-._")


def profile_link(base_url: str, address: str) -> str:
    """The service's URL of one account's Apple profile (the `serve` endpoint)."""
    return f"{base_url}/apple/{urllib.parse.quote(address, safe='@!$&()*+,;=')}.mobileconfig"


QR_LINK_MAX = 2331  # bytes a QR code holds in byte mode at error correction M (version 40, ISO/IEC 18004)


def qr_link(base_url: str, mailbox: Mailbox) -> str:
    """The profile link a guide shows as a QR code; a SpecError at the account when no QR code can hold it
    (segno's DataOverflowError was an internal error)."""
    link = profile_link(base_url, mailbox.email)
    size = len(link.encode("utf-8"))
    if size > QR_LINK_MAX:
        raise SpecError([Problem(mailbox.position, f"the profile link of {mailbox.email} is {size} bytes, more "
                                 f"than a QR code holds ({QR_LINK_MAX})",
                                 "shorten the base URL (delivery.base_url or --base-url)")])
    return link


@lru_cache(maxsize=16)
def qr_code(link: str) -> segno.QRCode:
    """Encoded once per link (the inline SVG and the PNG share it).

    Medium error correction (segno raises it when it fits in the same version): readable off a screen.
    A fixed mask pattern: ISO/IEC 18004 lets the encoder choose any of the eight, and scoring all eight was
    three quarters of a guide's render time (measured: 7.6 ms vs 1.7 ms per code); zbar reads these codes,
    from the PNG and from Chromium's rendering of the SVG, in the tests."""
    return segno.make(link, error="m", micro=False, mask=0, mode="byte")


# The inline QR code's accessible name: an <svg> has no alt, and without a name a screen reader announces an
# unnamed graphic, or nothing, where sighted users see the code (WCAG 1.1.1).
QR_LABEL = N_("QR code of the Apple profile link %(link)s")


def qr_svg(link: str, label: str) -> str:
    """The QR code of `link` as inline SVG, named by `label` (role="img": one image, not a group of paths)."""
    svg = str(qr_code(link).svg_inline(scale=4, svgclass="qr", lineclass=None, dark="#000", light="#fff"))
    return svg.replace("<svg ", f'<svg role="img" aria-label="{Markup.escape(label)}" ', 1)


def qr_png(link: str) -> bytes:
    """segno's pixels, deflated by our own few lines: segno's writer calls zlib, whose bytes differ from one
    zlib build to the next (generator/pngwriter.py)."""
    return pngwriter.qr_png(qr_code(link).matrix, scale=6, border=4)


def android_qr_uri(spec: Spec, mailbox: Mailbox) -> str | None:
    """The account's Thunderbird for Android QR code, the bytes of the build's android-qr file as a data: URI,
    when the spec turns it on and the account can have one (the guide and the self-service page show it)."""
    if not qr_shown(spec, mailbox):
        return None
    return svg_data_uri(render_qr_svg(qr_path(mailbox), spec, mailbox))


def read_android_qr(uri: str) -> Any:
    """The JSON payload of the QR code in an android-qr data: URI (ValueError when it is not one of ours)."""
    try:
        svg = svg_from_data_uri(uri)
    except ValueError as exc:
        raise ValueError(f"the Thunderbird for Android QR code: {exc}") from None
    return read_qr_svg(svg)


def placeholder_mailbox(spec: Spec, domain: str) -> Mailbox:
    """A stand-in for the per-domain guide: the address and user names stay placeholders for an intranet."""
    proto = Mailbox(index=0, name="%REALNAME%", email="%EMAILADDRESS%", local="%EMAILLOCALPART%", domain=domain,
                    username="", smtp_username="", description=None, position=Position(domain))
    user = proto.expand(spec.incoming.username)
    smtp = user if spec.outgoing.same_credentials else proto.expand(spec.outgoing.username)
    return Mailbox(index=0, name="%REALNAME%", email="%EMAILADDRESS%", local="%EMAILLOCALPART%", domain=domain,
                   username=user, smtp_username=smtp, description=None, position=Position(domain), language="")


def _html_autoescape(name: str | None) -> bool:
    return bool(name and name.endswith(".html.j2"))


# Bidi classes that change the order of what follows them: right-to-left letters and digits, and the explicit
# embeddings, overrides and isolates (a name with an unclosed U+202E shows the rest of its line, the
# address included, reversed: "ti.oipmese@issor.oiram").
_BIDI_ACTIVE = {"R", "AL", "AN", "RLE", "LRE", "RLO", "LRO", "PDF", "RLI", "LRI", "FSI", "PDI"}


@jinja2.pass_eval_context
def isolate(eval_ctx: jinja2.nodes.EvalContext, value: str, markup: bool | None = None) -> str:
    """A spec value set inside a translated sentence, isolated from it (Unicode bidi, UAX #9) when it has any
    right-to-left or bidi control character: `<bdi>` in HTML, FSI ... PDI (U+2068, U+2069) in text; both
    close what the value left open. Left-to-right values come out as they are. `markup=False` gives the
    characters in HTML too, where elements are not parsed (<title>: a <bdi> there is shown as text)."""
    html = eval_ctx.autoescape if markup is None else markup
    if not any(unicodedata.bidirectional(c) in _BIDI_ACTIVE for c in value):
        return Markup.escape(value) if html else value
    if html:
        return Markup("<bdi>%s</bdi>") % value
    return f"\u2068{value}\u2069"


class GuideTarget(Target):
    name = "guide"

    @property
    def base_url(self) -> str | None:
        return self.ctx.base_url or self.spec.delivery.base_url

    @property
    def apple(self) -> bool:
        """Whether users get an Apple profile: built now (`messages` always attaches one) or by the spec's
        build. Without one the guide must not send them to a profile, a profile link or its QR code."""
        return "apple" in self.ctx.targets or "apple" in self.spec.targets.build

    def environment(self, language: str) -> jinja2.Environment:
        env = self.ctx.environment(f"guide.{language}", {"isolate": isolate})
        if "jinja2.ext.InternationalizationExtension" not in env.extensions:
            env.autoescape = _html_autoescape
            install(env, language)
        return env

    def context(self, mailbox: Mailbox, language: str, personal: bool) -> dict[str, Any]:
        spec = self.spec
        link = qr_link(self.base_url, mailbox) if self.base_url and personal and self.apple else None
        d = spec.delivery
        # The guide never carries the password (it says so, and it is mailed and written as an ordinary file,
        # not 0600): its templates get the mailbox without one, so an admin's --templates cannot print it.
        return {
            "lang": language, "spec": spec, "provider": spec.provider, "mailbox": replace(mailbox, password=None),
            "personal": personal,
            "apple": self.apple, "profile_password": self.apple and spec.passwords.include,
            "incoming": spec.incoming, "outgoing": spec.outgoing,
            "settings": manual_settings(spec, mailbox, language),
            "legacy": legacy_settings(spec, mailbox, language), "imap": imap_settings(spec, mailbox, language),
            "profile_link": link,
            "qr_svg": qr_svg(link, gettext_for(language)(QR_LABEL) % {"link": link}) if link else None,
            "android_qr": android_qr_uri(spec, mailbox) if personal else None,
            "html_file": f"{mailbox.slug}.html",
            "password_hint": d.password_hint.get(language), "support": d.support,
            "support_mailto": mailto(d.support.email) if d.support.email else None,
        }

    def render_account(self, mailbox: Mailbox) -> list[OutputFile]:
        wanted = [k for k in ("guide-html", "guide-text", "guide-qr") if self.wants(k)]
        if self.ctx.mdm is not None or not wanted:
            return []
        base = f"{mailbox.slug}/guide/{mailbox.slug}"
        files = self._render(mailbox, mailbox.language, base, personal=True, account=mailbox.email,
                             kinds=("guide-html", "guide-text"))
        if self.base_url and self.apple and self.wants("guide-qr"):
            link = qr_link(self.base_url, mailbox)
            data = qr_png(link)
            try:
                actual = decode_png(data).decode("utf-8")
            except (QRDecodeError, UnicodeDecodeError) as exc:
                raise VerificationError(f"{base}.qr.png", [f"QR code unreadable: {exc}"]) from None
            prove(f"{base}.qr.png", {"qr": link}, {"qr": actual})
            files.append(OutputFile(f"{base}.qr.png", data, self.name, "guide-qr", mailbox.email))
        return files

    def render_shared(self) -> list[OutputFile]:
        if self.ctx.mdm is not None:
            return []
        files: list[OutputFile] = []
        for domain in self.spec.provider.domains:
            stand_in = placeholder_mailbox(self.spec, domain)
            for language in LANGUAGES:
                files += self._render(stand_in, language, f"domains/{domain}/guide/{domain}.{language}",
                                      personal=False, account=None, kinds=("guide-domain-html", "guide-domain-text"))
        return files

    def _render(self, mailbox: Mailbox, language: str, base: str, personal: bool, account: str | None,
                kinds: tuple[str, str]) -> list[OutputFile]:
        env = self.environment(language)
        context = self.context(mailbox, language, personal)
        files = []
        html_kind, text_kind = kinds
        if self.wants(html_kind):
            html = render_template(env, "guide/guide.html.j2", context).encode("utf-8")
            self.verify_html(f"{base}.html", html, mailbox, language, context["profile_link"],
                             android=context["android_qr"] is not None)
            files.append(OutputFile(f"{base}.html", html, self.name, html_kind, account))
        if self.wants(text_kind):
            text = render_template(env, "guide/guide.txt.j2", context).encode("utf-8")
            self.verify_text(f"{base}.txt", text, mailbox, language, context["profile_link"],
                             android=context["android_qr"] is not None)
            files.append(OutputFile(f"{base}.txt", text, self.name, text_kind, account))
        return files

    def _expected(self, mailbox: Mailbox, link: str | None) -> dict[str, Any]:
        expected: dict[str, Any] = {"settings": expected_values(self.spec, mailbox)}
        if self.spec.fallbacks.incoming or self.spec.fallbacks.outgoing:
            expected["legacy"] = expected_legacy(self.spec, mailbox)
        if self.spec.imap_alternative is not None:
            expected["imap"] = expected_imap(self.spec, mailbox)
        if link is not None:
            expected["profile-link"] = link
        return expected

    def verify_html(self, path: str, data: bytes, mailbox: Mailbox, language: str, link: str | None,
                    android: bool = False) -> None:
        try:
            parsed = parse_html_guide(data)
        except (UnicodeDecodeError, AssertionError, ValueError) as exc:
            raise VerificationError(path, [f"not readable HTML: {exc}"]) from None
        actual: dict[str, Any] = {"settings": read_back(parsed.tables.get("settings", {}), language)}
        for table in ("legacy", "imap"):
            if table in parsed.tables:
                actual[table] = read_back(parsed.tables[table], language)
        if "profile-link" in parsed.links:
            actual["profile-link"] = parsed.links["profile-link"]
        support, documentation = self.spec.delivery.support, self.spec.provider.documentation_url
        help_links = {"support-email": mailto(support.email) if support.email else None,
                      "support-url": support.url, "documentation": documentation}
        for key in help_links:  # a template may leave a link out, never change it
            if key in parsed.links:
                actual[key] = parsed.links[key]
        if parsed.qr_paths:
            try:
                actual["qr"] = decode(matrix_from_paths(parsed.qr_paths)).decode("utf-8")
            except (QRDecodeError, UnicodeDecodeError) as exc:
                raise VerificationError(path, [f"QR code unreadable: {exc}"]) from None
        if "android-qr" in parsed.images:
            try:
                actual["android-qr"] = read_android_qr(parsed.images["android-qr"])
            except ValueError as exc:
                raise VerificationError(path, [str(exc)]) from None
        problems = []
        expected = self._expected(mailbox, link)
        expected.update((key, help_links[key]) for key in help_links if key in actual)
        if link is not None:
            expected["qr"] = link
        if android:
            # The JSON the build's android-qr file carries (what Thunderbird for Android imports).
            expected["android-qr"] = json.loads(qr_payload(qr_values(self.spec, mailbox)))
        if parsed.lang != language:
            problems.append(f"<html lang>: expected {language!r}, found {parsed.lang!r}")
        if (link is not None) != (parsed.qr_svgs == 1):
            problems.append(f"QR codes: expected {1 if link else 0}, found {parsed.qr_svgs}")
        if problems:
            raise VerificationError(path, problems)
        prove(path, expected, actual)

    def verify_text(self, path: str, data: bytes, mailbox: Mailbox, language: str, link: str | None,
                    android: bool = False) -> None:
        text = data.decode("utf-8")
        keys = {"settings": [r.key for r in manual_settings(self.spec, mailbox, language)]}
        legacy = legacy_settings(self.spec, mailbox, language)
        if legacy:
            keys["legacy"] = [r.key for r in legacy]
        imap = imap_settings(self.spec, mailbox, language)
        if imap:
            keys["imap"] = [r.key for r in imap]
        tables = parse_text_tables(text, keys)
        actual: dict[str, Any] = {name: read_back(cells, language) for name, cells in tables.items()}
        if link is not None and link in text.split():
            actual["profile-link"] = link
        expected = self._expected(mailbox, link)
        if android:
            # The text form cannot show the code: it names the HTML guide that does.
            expected["android-qr"] = f"{mailbox.slug}.html"
            actual["android-qr"] = next((w.strip("().,;:") for w in text.split()
                                         if w.strip("().,;:") == expected["android-qr"]), None)
        prove(path, expected, actual)
