"""The closed, typed model of a spec. Unknown keys are errors; types are strict (a port is an int, not "995").

Everything a target needs is decided here or in `accounts.py`; targets only map these values to their
client's vocabulary.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import idna
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

Security = Literal["ssl", "starttls", "none"]
Authentication = Literal["password", "encrypted-password", "ntlm", "gssapi", "oauth2", "none"]
MailProtocol = Literal["pop3", "imap"]
TargetName = Literal["apple", "thunderbird", "outlook", "guide", "message"]
ALL_TARGETS: tuple[TargetName, ...] = ("apple", "thunderbird", "outlook", "guide", "message")
# Built when targets.build is not given: the client files. Guides and messages are asked for explicitly.
DEFAULT_TARGETS: tuple[TargetName, ...] = ("apple", "thunderbird", "outlook")

# The placeholders of Mozilla's autoconfig format, which the spec borrows for user names and host names.
PLACEHOLDERS = ("%EMAILADDRESS%", "%EMAILLOCALPART%", "%EMAILDOMAIN%", "%REALNAME%")
_PLACEHOLDER_RE = re.compile(r"%[A-Z]+%")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")
_LINEBREAK_RE = re.compile(r"[\r\n\u2028\u2029\x85]")


@functools.lru_cache(maxsize=4096)  # every account of a domain asks again (idna costs ~45 us per call)
def to_a_label(name: str) -> str:
    """Internationalised domain name -> ASCII (A-label) form, lower-case; ValueError if impossible."""
    name = name.strip().rstrip(".")
    if not name:
        raise ValueError("a host or domain name cannot be empty")
    try:
        ascii_name = idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"'{name}' is not a valid host or domain name ({exc})") from None
    return ascii_name.lower()


def _check_placeholders(value: str, allowed: tuple[str, ...]) -> None:
    for token in _PLACEHOLDER_RE.findall(value):
        if token not in allowed:
            raise ValueError(f"unknown placeholder {token}; use one of {', '.join(allowed)}")


def _host(value: str) -> str:
    """A host name, optionally with %EMAILDOMAIN% (the provider guide's `pop3.%EMAILDOMAIN%`)."""
    _check_placeholders(value, ("%EMAILDOMAIN%",))
    if value.startswith("[") or value.endswith("]"):
        inner = value[1:-1] if value.startswith("[") and value.endswith("]") else ""
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise ValueError(f"'{value}' is not an IPv6 address in brackets (such as [2001:db8::25])") from None
        if "%" in inner:
            raise ValueError(f"'{value}': a zone index (%...) only means something on one machine")
        return value
    if "://" in value:
        raise ValueError(f"'{value}' is a URL; give the host name alone (such as mail.example.com)")
    if ":" in value:  # idna would only say that U+003A is not allowed
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            pass
        else:
            raise ValueError(f"'{value}' is an IPv6 address: write it in brackets, [{value}]")
        host, _, port = value.rpartition(":")
        if port.isdigit() and host:
            raise ValueError(f"'{value}' carries a port; give the host alone ({host}) and the port in port: {port}")
        raise ValueError(f"'{value}' is not a host name (':' cannot be in one)")
    parts = value.split("%EMAILDOMAIN%")
    out = []
    for part in parts:
        stripped = part.strip(".")
        encoded = to_a_label(stripped) if stripped else ""
        out.append(part.replace(stripped, encoded, 1) if stripped else part)
    return "%EMAILDOMAIN%".join(out)


def bare_host(host: str) -> str:
    """A host as host-name fields hold it: an IPv6 literal without the brackets the spec writes it in (URLs
    need them). Thunderbird's hostname prefs hold what nsIURI.host gives, which has no brackets (its serverURI
    code adds them), and its host-name check (comm-central hostnameUtils, and its port in Thunderbird for
    Android's HostNameUtils.kt) refuses them in autoconfig XML, Autodiscover and the QR import."""
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def is_ipv6_literal(host: str) -> bool:
    """Whether a spec host is an IPv6 literal (the model only lets one through in brackets)."""
    return host.startswith("[")


def _domain(value: str) -> str:
    if "%" in value:
        raise ValueError(f"'{value}' is not a domain name; placeholders belong in host names")
    return to_a_label(value)


def _username(value: str) -> str:
    _check_placeholders(value, PLACEHOLDERS)
    _text(value)
    if not value:
        raise ValueError("a user name cannot be empty; leave the key out to use the e-mail address")
    return value


def _no_surrogates(value: str) -> None:
    # YAML's "\ud83d\udce7" escapes give lone surrogates (PyYAML does not pair them): no file format can carry them.
    if _SURROGATE_RE.search(value):
        raise ValueError("contains a UTF-16 surrogate escape (\\uD800-\\uDFFF); write the character itself, "
                         "or \\U0001F4E7-style 8-digit escapes")


def _text(value: str) -> str:
    """Free text (names, descriptions): one line, no control characters that XML and plists cannot carry."""
    _no_surrogates(value)
    if _CONTROL_RE.search(value):
        raise ValueError("contains a control character that XML, plists and prefs files cannot carry")
    if _LINEBREAK_RE.search(value):
        raise ValueError("must be a single line")
    return value


def _long_text(value: str) -> str:
    """Multi-line text (consent text, intro, password hint): line breaks allowed, other control characters not.

    A CR or CRLF (a "\\r\\n" escape copied from a Windows text) is a line break, as YAML makes the line breaks
    of a file saved with CRLF: XML and quoted-printable read a CR back as one, so kept it fails every proof."""
    _no_surrogates(value)
    if _CONTROL_RE.search(value):
        raise ValueError("contains a control character that XML, plists and prefs files cannot carry")
    return value.replace("\r\n", "\n").replace("\r", "\n")


def _identifier(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*",
                        value):
        raise ValueError(f"'{value}' is not a reverse-DNS identifier (letters, digits, '-' and '.')")
    return value


def _tls_version(value: Any) -> Any:
    # YAML reads `tls_min: 1.2` as a float; the number is unambiguous, so accept it as the version it names.
    if isinstance(value, float) and value in (1.2, 1.3):
        return f"{value:.1f}"
    return value


def _seconds(value: float) -> float:
    # A plist <real> cannot carry inf or nan (plistlib writes them, Apple's parser refuses the profile).
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a finite number of seconds, got {value} — write the number of seconds, such "
                         "as 2592000 for 30 days")
    return value


def _windows_path(value: str) -> str:
    _text(value)
    if not re.match(r"^(?:[A-Za-z]:\\|\\\\[^\\]+\\)", value):
        raise ValueError(f"'{value}' is not an absolute Windows path (C:\\... or \\\\server\\share\\...)")
    return value


def _expandable_windows_path(value: str) -> str:
    """A REG_EXPAND_SZ path (ForcePSTPath): absolute, or starting with an environment variable, which that
    registry type exists to carry (%LOCALAPPDATA%\\Microsoft\\Outlook: a folder per user)."""
    if re.match(r"^%[A-Za-z_][A-Za-z0-9_()]*%\\", value):
        return _text(value)
    return _windows_path(value)


def _web_url(value: str) -> str:
    """A page the guides link (documentation, support): http(s) only. A javascript: or data: link would run
    in the reader's browser, on the intranet page the domain guide is made for (and an imported autoconfig
    file, which the provider writes, fills in documentation_url)."""
    _text(value)
    if not re.fullmatch(r"https?://[^\s/?#@\\]+(?:[/?#]\S*)?", value, re.IGNORECASE):
        raise ValueError(f"'{value}' is not an http(s) URL such as https://example.com/help (guides link it)")
    return value


def _contact_address(value: str) -> str:
    from generator.accounts import split_address  # accounts builds on this module

    _text(value)
    split_address(value)
    return value


Host = Annotated[str, AfterValidator(_host)]
WebUrl = Annotated[str, AfterValidator(_web_url)]
ContactAddress = Annotated[str, AfterValidator(_contact_address)]
Domain = Annotated[str, AfterValidator(_domain)]
Username = Annotated[str, AfterValidator(_username)]
Text = Annotated[str, AfterValidator(_text)]
LongText = Annotated[str, AfterValidator(_long_text)]
Identifier = Annotated[str, AfterValidator(_identifier)]
Port = Annotated[int, Field(ge=1, le=65535)]
TlsVersion = Annotated[Literal["1.2", "1.3"], BeforeValidator(_tls_version)]
WindowsPath = Annotated[str, AfterValidator(_windows_path)]
ExpandableWindowsPath = Annotated[str, AfterValidator(_expandable_windows_path)]


class Closed(BaseModel):
    """Base of every spec section: unknown keys are errors, values are not coerced, instances are immutable."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Server(Closed):
    host: Host = Field(description="Host name; may contain %EMAILDOMAIN%. IDN names become A-labels.")
    port: Port = Field(description="TCP port, an integer 1-65535.")
    security: Security = Field(description="ssl = implicit TLS (993/995/465), starttls, or none (plain text).")
    authentication: Authentication = Field("password", description="How the client proves who it is.")
    username: Username = Field("%EMAILADDRESS%", description="User name; placeholders %EMAILADDRESS%, "
                               "%EMAILLOCALPART%, %EMAILDOMAIN%, %REALNAME% or a literal. An imap_alternative "
                               "or fallback without one uses the primary server's (incoming or outgoing).")
    allow_insecure: bool = Field(False, description="Allow a password over security: none (refused otherwise).")


class IncomingServer(Server):
    protocol: MailProtocol = Field(description="pop3 or imap.")
    keep_on_server: bool = Field(False, description="POP3: keep a copy of each message on the server.")
    keep_days: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        None, description="POP3: with keep_on_server, delete from the server after this many days.")
    imap_path_prefix: Text | None = Field(None, description="IMAP only: the server's folder path prefix.")

    @model_validator(mode="after")
    def _protocol_options(self) -> IncomingServer:
        if self.protocol != "pop3" and (self.keep_on_server or self.keep_days is not None):
            raise ValueError("keep_on_server and keep_days apply to pop3 only; remove them for imap")
        if self.keep_days is not None and not self.keep_on_server:
            raise ValueError("keep_days needs keep_on_server: true")
        if self.protocol != "imap" and self.imap_path_prefix is not None:
            raise ValueError("imap_path_prefix applies to imap only; remove it for pop3")
        return self


def _imap_only(server: IncomingServer) -> IncomingServer:
    if server.protocol != "imap":
        raise ValueError("imap_alternative must be an imap server (protocol: imap)")
    return server


class OutgoingServer(Server):
    same_credentials: bool = Field(True, description="SMTP uses the incoming server's user name and password.")


class Fallbacks(Closed):
    incoming: list[IncomingServer] = Field(default_factory=list, description="Ordered, after the primary.")
    outgoing: list[OutgoingServer] = Field(default_factory=list, description="Ordered, after the primary.")


class Provider(Closed):
    id: Identifier = Field(description="Stable id (reverse-DNS characters), e.g. aruba.it; feeds identifiers "
                           "and UUIDs, so do not change it once profiles are deployed.")
    display_name: Text = Field(description="Provider name shown in clients, e.g. 'Aruba Mail'.")
    short_name: Text | None = Field(None, description="Short name (autoconfig displayShortName).")
    organization: Text | None = Field(None, description="Organisation shown in profiles (PayloadOrganization).")
    domains: list[Domain] = Field(min_length=1, description="Mail domains this provider serves.")
    documentation_url: WebUrl | None = Field(None, description="A page explaining the settings to users "
                                             "(http or https).")

    @model_validator(mode="after")
    def _unique_domains(self) -> Provider:
        if len(set(self.domains)) != len(self.domains):
            raise ValueError("domains lists the same domain twice")
        return self


def _language(value: str) -> str:
    from generator.i18n import LANGUAGES  # the catalogs decide which languages exist

    if value not in LANGUAGES:
        # 'it_IT', 'it-IT', 'IT' from an HR export or a locale setting: the catalogs are named by language only.
        primary = re.split(r"[-_]", value.strip(), maxsplit=1)[0].lower()
        if primary in LANGUAGES:
            raise ValueError(f"'{value}' is not a supported language; write '{primary}' (a language code in lower "
                             "case, without a region)")
        raise ValueError(f"'{value}' is not a supported language; use one of {', '.join(LANGUAGES)}")
    return value


Language = Annotated[str, AfterValidator(_language)]


class AccountSpec(Closed):
    name: Text = Field(description="Display name of the mailbox owner (sender name).")
    email: Text = Field(description="The e-mail address.")
    username: Username | None = Field(None, description="Override the user name for this account.")
    description: Text | None = Field(None, description="Override the account description for this account.")
    language: Language | None = Field(None, description="Language of this account's guide and message; "
                                      "default: delivery.language.")
    notify: Text | None = Field(None, description="Send this account's message here instead of to its address.")


class AppleSigning(Closed):
    certificate: Text = Field(description="Signer certificate (PEM/DER, may be followed by its chain), relative "
                              "to the spec.")
    key: Text = Field(description="The certificate's private key (PEM/DER), relative to the spec.")
    chain: Text | None = Field(None, description="Intermediate certificates (PEM), relative to the spec.")
    passphrase_env: Text = Field("MAILPROFILE_SIGN_PASSPHRASE",
                                 description="Environment variable holding the key's passphrase, if it has one.")


def _removal_date(value: Any) -> Any:
    # The YAML loader keeps dates as written; Apple's <date> is UTC, so a date without a zone is taken as UTC.
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"'{value}' is not an ISO 8601 date such as 2027-06-30T00:00:00Z") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def _plist_date_value(value: datetime) -> datetime:
    """The moment in UTC, as a plist <date> can carry it, decided here and not by the machine's time zone.

    A datetime without a zone (from Python, or an importer) is UTC, as a string without one is: astimezone()
    would read it in the local zone, so TZ=Asia/Tokyo would shift the file. A plist <date> is whole seconds
    of a four-digit year (plistlib reads nothing else back), so a fraction or a year the conversion to UTC
    cannot reach is refused here, at the spec's line, instead of failing the file's proof."""
    shown = value.isoformat()
    try:
        value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before datetime's first moment
        value = datetime.min
    if value.year < 1000:
        raise ValueError(f"'{shown}' is not a date between the years 1000 and 9999 in UTC — write a date such as "
                         "2027-06-30T00:00:00Z")
    if value.microsecond:
        raise ValueError(f"'{shown}' has a fraction of a second, which Apple's <date> cannot carry — write whole "
                         "seconds, such as 2027-06-30T00:00:00Z")
    return value


PlistDate = Annotated[datetime, BeforeValidator(_removal_date), AfterValidator(_plist_date_value)]


class AppleSettings(Closed):
    identifier_prefix: Identifier | None = Field(
        None, description="Reverse-DNS prefix of PayloadIdentifier; default: provider id reversed + '.mail'.")
    scope: Literal["User", "System"] = Field("User", description="PayloadScope (macOS). Mail is a user payload.")
    removal_disallowed: bool = Field(False, description="PayloadRemovalDisallowed (iOS: supervised only).")
    consent_text: dict[str, LongText] = Field(default_factory=dict,
                                              description="ConsentText: language code (or 'default') -> text.")
    description: Text | None = Field(None, description="PayloadDescription shown before installing.")
    display_name: Text | None = Field(None, description="PayloadDisplayName; default '<provider> – <address>'.")
    starttls_uses_ssl: bool = Field(True, description="UseSSL for a STARTTLS server (Apple leaves it undefined).")
    target_device_type: Literal[0, 1, 2, 3, 4, 5, 6] | None = Field(
        None, description="TargetDeviceType: 0 any, 1 iPhone/iPad, 5 Mac, 6 Vision Pro.")
    prevent_move: bool = Field(False, description="PreventMove (iOS).")
    prevent_app_sheet: bool = Field(False, description="PreventAppSheet (iOS).")
    allow_mail_drop: bool | None = Field(None, description="allowMailDrop (iOS 9.2, macOS 10.12).")
    removal_date: PlistDate | None = Field(
        None, description="RemovalDate: when the device removes the profile (ISO 8601; without a zone, UTC).")
    duration_until_removal: Annotated[float, AfterValidator(_seconds)] | None = Field(
        None, description="DurationUntilRemoval: seconds after installation until removal.")
    signing: AppleSigning | None = Field(None, description="Also write a signed copy of every profile "
                                         "(CMS, SHA-256, with the chain). CLI --sign-* options override.")


ThunderbirdEnforce = Literal["tls_min", "incoming", "outgoing", "identity"]


class ThunderbirdSettings(Closed):
    enforce: list[ThunderbirdEnforce] = Field(
        default_factory=lambda: list[ThunderbirdEnforce](["tls_min"]),
        description="What mozilla.cfg/policies.json lock (lockPref); the rest is a default the user may change.")
    check_interval_minutes: Annotated[int, Field(ge=1, le=1440)] = Field(10, description="Check for new mail.")
    login_at_startup: bool = Field(True, description="Check mail at startup.")
    autoconfig_plain_fallbacks: bool = Field(
        False, description="List the security: none fallbacks in config-v1.1.xml too. Thunderbird for Android "
        "(and K-9 Mail) then rejects the whole file; desktop Thunderbird reads it.")
    android_qr: bool = Field(False, description="Also write, per account, the Thunderbird for Android QR import "
                             "(its 'Export for Mobile' JSON format, which carries POP3 too) as an SVG; the guide "
                             "and the serve page show it.")


class OutlookSettings(Closed):
    prf_dir: WindowsPath = Field("C:\\ProgramData\\mailprofile",
                                 description="Absolute Windows folder where the admin deploys the .prf files.")
    force_pst_path: ExpandableWindowsPath | None = Field(
        None, description="ForcePSTPath: folder for new PST files (REG_EXPAND_SZ: may start with %VARIABLE%\\).")
    disable_simplified_account_creation: bool = Field(
        False, description="DisableOffice365SimplifiedAccountCreation=1: bring back the classic wizard.")
    profile_name: Text = Field("Outlook", description="PRF ProfileName.")


class Targets(Closed):
    build: list[TargetName] = Field(default_factory=lambda: list(DEFAULT_TARGETS), description="Targets to build "
                                    "(default: apple, thunderbird, outlook; add guide and message).")
    apple: AppleSettings = Field(default_factory=AppleSettings, description="Apple .mobileconfig settings.")
    thunderbird: ThunderbirdSettings = Field(default_factory=ThunderbirdSettings, description="Thunderbird settings.")
    outlook: OutlookSettings = Field(default_factory=OutlookSettings, description="Outlook settings.")


class Passwords(Closed):
    include: bool = Field(False, description="Write passwords into outputs that can carry them (Apple only).")
    from_env: Text | None = Field(None, description="Environment variable holding the password "
                                  "(single-account specs).")
    from_file: Text | None = Field(None, description="CSV file 'email,password' (UTF-8, header row), "
                                   "relative to the spec.")

    @model_validator(mode="after")
    def _one_source(self) -> Passwords:
        if self.include and (self.from_env is None) == (self.from_file is None):
            raise ValueError("include: true needs exactly one of from_env or from_file")
        if not self.include and (self.from_env or self.from_file):
            raise ValueError("from_env/from_file are only read with include: true")
        return self


_ASCII_HOST_RE = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.)*"
                            r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?\.?")
# RFC 3986: a URL's path holds unreserved characters, sub-delims, ":", "@", "/" and %XX escapes; the first
# character outside that set (or a % not followed by two hex digits).
_URL_PATH_BAD_RE = re.compile(r"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]")


def base_url_value(value: str) -> str:
    """An http(s) URL without a trailing slash (the service's base URL); ValueError otherwise. It is printed
    in every guide and message and encoded in every QR code, so it must be a URL every client opens as
    written: a host name or IP literal, a port 1-65535, a path of URL characters, no user name or password."""
    match = re.fullmatch(r"(https?)://([^\s/?#]+)(/[^\s?#]*)?", value, re.IGNORECASE)
    if not match:
        raise ValueError(f"'{value}' is not an http(s) URL such as https://mail.example.com")
    # A scheme is case-insensitive (RFC 3986 §3.1): HTTPS:// as pasted is https://, written in its canonical form.
    value = match.group(1).lower() + value[len(match.group(1)):]
    match = re.fullmatch(r"https?://([^\s/?#]+)(/[^\s?#]*)?", value)
    assert match is not None
    authority, path = match.group(1), match.group(2) or ""
    if "@" in authority:
        raise ValueError(f"'{value}' carries a user name or password (before the @), which every guide and QR "
                         "code would show; give the URL without them")
    host, port = _split_authority(value, authority)
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"'{value}': {host} is not an IPv6 address") from None
    elif host.isascii():  # "_" is not DNS-legal but web hosts have it, and browsers open it
        if not _ASCII_HOST_RE.fullmatch(host):
            raise ValueError(f"'{value}': '{host}' is not a host name")
    else:
        try:
            to_a_label(host)
        except ValueError as exc:
            raise ValueError(f"'{value}': {exc}") from None
    if port is not None and not (port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError(f"'{value}': the port must be a number from 1 to 65535, not '{port}'")
    bad = _URL_PATH_BAD_RE.search(path)
    if bad and bad.group(0) == "%":
        raise ValueError(f"'{value}': a % in a URL starts an escape of two hex digits; write a % itself as %25")
    if bad:
        raise ValueError(f"'{value}': '{bad.group(0)}' cannot stand in a URL path as it is; percent-encode it")
    return value.rstrip("/")


def _split_authority(value: str, authority: str) -> tuple[str, str | None]:
    if authority.startswith("["):
        host, bracket, rest = authority.partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"'{value}' is not an http(s) URL such as https://mail.example.com")
        return host + "]", rest[1:] if rest else None
    host, colon, port = authority.partition(":")
    return host, port if colon else None


class Support(Closed):
    email: ContactAddress | None = Field(None, description="Support e-mail address shown in guides and messages.")
    phone: Text | None = Field(None, description="Support telephone number.")
    url: WebUrl | None = Field(None, description="Support web page (http or https).")
    hours: Text | None = Field(None, description="When support answers, e.g. 'Mon-Fri 9-18'.")


class Delivery(Closed):
    language: Language = Field("en", description="Default language of guides and messages (it, en).")
    base_url: Annotated[str, AfterValidator(base_url_value)] | None = Field(
        None, description="URL of the mailprofile service; guides then link and QR-code "
        "{base_url}/apple/{address}.mobileconfig. --base-url overrides it.")
    sender: Text | None = Field(None, description="From of the messages, e.g. 'IT Esempio <it@esempio.it>'.")
    reply_to: Text | None = Field(None, description="Reply-To of the messages.")
    subject: dict[Language, Text] = Field(default_factory=dict, description="Message subject per language.")
    intro: dict[Language, LongText] = Field(default_factory=dict, description="Opening text per language.")
    password_hint: dict[Language, LongText] = Field(
        default_factory=dict, description="Where users get their password, per language (never the password).")
    support: Support = Field(default_factory=Support, description="Who users contact for help.")


class Spec(Closed):
    version: Literal[1] = Field(1, description="Spec format version.")
    provider: Provider = Field(description="Who serves the mail, and for which domains.")
    incoming: IncomingServer = Field(description="The primary POP3 or IMAP server.")
    outgoing: OutgoingServer = Field(description="The primary SMTP server.")
    imap_alternative: Annotated[IncomingServer, AfterValidator(_imap_only)] | None = Field(
        None, description="For POP3 providers: the IMAP server they also offer. Listed in config-v1.1.xml after "
        "the primary (desktop Thunderbird keeps POP3 first); the only kind Thunderbird for Android reads there.")
    fallbacks: Fallbacks = Field(default_factory=Fallbacks, description="Ordered extra servers (e.g. legacy "
                                 "plain-text ones) for the formats that can list several.")
    tls_min: TlsVersion = Field("1.2", description="Minimum TLS version: '1.2' or '1.3'.")
    accounts: list[AccountSpec] = Field(default_factory=list, description="Inline list of mailboxes.")
    accounts_csv: Text | None = Field(None, description="CSV file with the columns name,email and optionally "
                                      "username,description,language,notify (UTF-8, header row; any order), relative "
                                      "to the spec.")
    targets: Targets = Field(default_factory=Targets, description="Which targets to build, and their settings.")
    passwords: Passwords = Field(default_factory=Passwords, description="Opt-in: write passwords (Apple only).")
    delivery: Delivery = Field(default_factory=Delivery, description="Guides and messages: language, sender, "
                               "support contact, texts.")


def user_template(spec: Spec, server: Server) -> str:
    """The user-name template `server` logs in with. An outgoing server with same_credentials uses the incoming
    one's. The primary servers have their own; an IMAP alternative or fallback that does not set `username`
    logs in as the primary of its direction does (a user name given once is meant for every server), one that
    sets it uses its own."""
    if isinstance(server, OutgoingServer) and server.same_credentials:
        return spec.incoming.username
    if server is spec.incoming or server is spec.outgoing or "username" in server.model_fields_set:
        return server.username
    return spec.outgoing.username if isinstance(server, OutgoingServer) else spec.incoming.username
