"""Apple configuration profiles (.mobileconfig: XML or binary plist, unsigned or CMS-signed) -> one draft per
com.apple.mail.managed payload.

Facts (FORMATS.md §1, SERVICE-AND-DELIVERY.md D.2, Apple's com.apple.mail.managed schema): one incoming and
one outgoing server per payload; `…UseSSL` is a boolean that does not say SSL or STARTTLS, so the mode is
guessed from the port and the guess is named; no "keep on server", no TLS minimum, no OAuth2. Passwords
in a profile are never copied. Other payloads (Wi-Fi, CalDAV, certificates) are reported and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from generator.accounts import split_address
from generator.errors import Position
from generator.importers import cms
from generator.importers.draft import MAX_PAYLOADS, MAX_PROFILE_BYTES, Draft, SpecPath, fail, read_limited
from generator.importers.plist import Plist, PlistPath, parse_plist
from generator.targets.base import stable_uuid
from generator.targets.mdm import CONSOLES, Console

KIND = "Apple profile"
ACCOUNT_TYPE = {"EmailTypePOP": "pop3", "EmailTypeIMAP": "imap"}
AUTH = {"EmailAuthPassword": "password", "EmailAuthCRAMMD5": "encrypted-password", "EmailAuthNTLM": "ntlm",
        "EmailAuthNone": "none", "EmailAuthHTTPMD5": "encrypted-password"}
# Implicit-TLS and STARTTLS ports (IANA), for guessing what UseSSL=true meant.
IMPLICIT_TLS = {993, 995, 465}
STARTTLS = {143, 110, 587, 25}
DEFAULT_PORTS = {("imap", True): 993, ("imap", False): 143, ("pop3", True): 995, ("pop3", False): 110,
                 ("smtp", True): 465, ("smtp", False): 587}
APPLE_FLAGS = {"PreventMove": "prevent_move", "PreventAppSheet": "prevent_app_sheet",
               "allowMailDrop": "allow_mail_drop"}
HANDLED = {"PayloadType", "PayloadVersion", "PayloadIdentifier", "PayloadUUID", "PayloadDisplayName",
           "PayloadDescription", "PayloadOrganization", "EmailAccountDescription", "EmailAccountName",
           "EmailAccountType", "EmailAddress", "IncomingMailServerHostName", "IncomingMailServerPortNumber",
           "IncomingMailServerUseSSL", "IncomingMailServerAuthentication", "IncomingMailServerUsername",
           "IncomingMailServerIMAPPathPrefix", "OutgoingMailServerHostName", "OutgoingMailServerPortNumber",
           "OutgoingMailServerUseSSL", "OutgoingMailServerAuthentication", "OutgoingMailServerUsername",
           "OutgoingPasswordSameAsIncomingPassword", "IncomingPassword", "OutgoingPassword", *APPLE_FLAGS}


def read(path: Path, verify: bool = False) -> tuple[list[Draft], str | None]:
    """Drafts, and a line about the signature (None for an unsigned profile)."""
    data = read_limited(path, MAX_PROFILE_BYTES, "the profile")
    return parse(data, str(path), verify)


def parse(data: bytes, file: str, verify: bool = False) -> tuple[list[Draft], str | None]:
    signature = None
    if cms.is_cms(data):
        unwrapped = cms.unwrap(data, file, verify)
        data = unwrapped.content
        signature = (f"signed by {unwrapped.signer}; " + (f"verified: {unwrapped.verified}" if unwrapped.verified
                     else "signature not verified (pass --verify-signature)"))
    elif data[:1] in (b"\x30",):
        raise fail(Position(file), "the file looks like DER but is not a CMS SignedData",
                   "give a .mobileconfig (XML, binary plist or signed)")
    plist = parse_plist(data, file)
    return _profile(plist, file), signature


def _need(plist: Plist, payload: dict[str, Any], path: PlistPath, key: str, kind: type) -> Any:
    value = payload.get(key)
    if value is None:
        raise fail(plist.where(path), f"{plist.label(path)} has no {key}", f"add {key}: the device needs it")
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise fail(plist.where((*path, key)), f"{key} must be {_type_name(kind)}, got {value!r}",
                   f"write it as {_type_name(kind)} (a port written as <string> breaks installs)")
    return value


def _type_name(kind: type) -> str:
    return {str: "a <string>", int: "an <integer>", bool: "<true/> or <false/>", list: "an <array>",
            dict: "a <dict>"}.get(kind, kind.__name__)


def _optional(plist: Plist, payload: dict[str, Any], path: PlistPath, key: str, kind: type) -> Any:
    if key not in payload:
        return None
    return _need(plist, payload, path, key, kind)


# Profile-level keys and their plist types (Apple's Configuration Profile reference): a value of another
# type is refused, as in the mail payload; it was silently left out of the spec (or turned into text).
_PROFILE_KEYS: dict[str, type | tuple[type, ...]] = {
    "PayloadIdentifier": str, "PayloadUUID": str, "PayloadOrganization": str, "PayloadDisplayName": str,
    "PayloadDescription": str, "PayloadScope": str, "PayloadRemovalDisallowed": bool, "ConsentText": dict,
    "TargetDeviceType": int, "RemovalDate": datetime, "DurationUntilRemoval": (int, float)}


def _check_profile_keys(plist: Plist, top: dict[str, Any]) -> None:
    for key, kind in _PROFILE_KEYS.items():
        value = top.get(key)
        if value is None:
            continue
        number = kind == (int, float) or kind is int
        if not isinstance(value, kind) or (number and isinstance(value, bool)):
            shown = "<integer> or <real>" if kind == (int, float) else "<date>" if kind is datetime else \
                _type_name(kind)  # type: ignore[arg-type]
            raise fail(plist.where((key,)), f"{key} must be {shown}, got {value!r}",
                       f"write it as {shown}, the type Apple's profile reference gives it")
    if top.get("PayloadScope") not in (None, "User", "System"):
        raise fail(plist.where(("PayloadScope",)), f"PayloadScope must be User or System, got "
                   f"{top['PayloadScope']!r}", "write User or System")
    for language, text in (top.get("ConsentText") or {}).items():
        if not isinstance(text, str):
            raise fail(plist.where(("ConsentText", language)), f"ConsentText.{language} must be a <string>, got "
                       f"{text!r}", "write the consent text as a <string>")


def _profile(plist: Plist, file: str) -> list[Draft]:
    top = plist.value
    if not isinstance(top, dict):
        raise fail(plist.where(()), "the profile is not a <dict>", "give an Apple configuration profile")
    if "EncryptedPayloadContent" in top:
        raise fail(plist.where(("EncryptedPayloadContent",)), "the payloads are encrypted to one device "
                   "(EncryptedPayloadContent)", "export the profile unencrypted from the MDM or Apple Configurator")
    if top.get("PayloadType") != "Configuration":
        raise fail(plist.where(("PayloadType",)), f"PayloadType is {top.get('PayloadType')!r}, not "
                   "'Configuration'", "give a whole configuration profile")
    _check_profile_keys(plist, top)
    content = _need(plist, top, (), "PayloadContent", list)
    if len(content) > MAX_PAYLOADS:
        raise fail(plist.where(("PayloadContent",)), f"the profile has {len(content):,} payloads; this importer "
                   f"reads at most {MAX_PAYLOADS}", "split the profile, or export only the mail payloads")
    drafts, skipped = [], []
    for i, payload in enumerate(content):
        path: PlistPath = ("PayloadContent", i)
        if not isinstance(payload, dict):
            raise fail(plist.where(path), f"{plist.label(path)} is not a <dict>", "check the profile")
        kind = payload.get("PayloadType")
        if kind == "com.apple.mail.managed":
            drafts.append(_mail(plist, top, payload, path, file))
        else:
            skipped.append((kind, plist.where(path)))
    if not drafts:
        raise fail(plist.where(("PayloadContent",)), "the profile has no mail account payload "
                   "(com.apple.mail.managed)", "give a profile that configures a mail account")
    for kind, where in skipped:
        drafts[0].note((), f"payload {kind} skipped: the spec describes mail accounts only", where)
    return drafts


def _mail(plist: Plist, top: dict[str, Any], p: dict[str, Any], path: PlistPath, file: str) -> Draft:
    d = Draft(source=file, kind=KIND)
    def at(*keys: str) -> Position:
        return plist.where((*path, *keys))

    protocol_value = _need(plist, p, path, "EmailAccountType", str)
    if protocol_value not in ACCOUNT_TYPE:
        raise fail(at("EmailAccountType"), f"EmailAccountType {protocol_value!r} is not EmailTypePOP or "
                   "EmailTypeIMAP", "fix the profile")
    protocol = ACCOUNT_TYPE[protocol_value]
    email = _optional(plist, p, path, "EmailAddress", str)
    if email is None:
        raise fail(at(), f"{plist.label(path)} has no EmailAddress (the device asks for it), so its mail domain "
                   "is unknown", "import it together with the provider's autoconfig XML, or add EmailAddress")
    console = next((c for c in CONSOLES.values() if c.email == email), None)
    if console is not None:  # a generic profile for an MDM console (mailprofile build --mdm)
        ident = _mdm_identity(plist, top, console)
        local, domain, address = console.local or "", ident.domain, email
        d.note((), f"generic {console.title} profile for {domain}: its variables became placeholders; it names "
               "no mailbox", at("EmailAddress"), warn=False)
    else:
        try:
            local, domain = split_address(email)
        except ValueError as exc:
            raise fail(at("EmailAddress"), str(exc), "fix the address") from None
        address = f"{local}@{domain}"
        ident = _Identity(address.lower(), address.lower(), domain, f"{address}",
                          f"Configures the mail account {address}.")
    d.set(("provider", "domains"), [domain], at("EmailAddress"))

    # Provider name: our own profiles write "<provider> (<address>)" as the payload's display name.
    shown = p.get("PayloadDisplayName")
    description = p.get("EmailAccountDescription")
    organization = top.get("PayloadOrganization")
    if isinstance(shown, str) and shown.endswith(f" ({address})"):
        display = shown[: -len(f" ({address})")]
        d.set(("provider", "display_name"), display, at("PayloadDisplayName"))
    elif isinstance(description, str) and description and "@" not in description:
        display = description
        d.set(("provider", "display_name"), display, at("EmailAccountDescription"), guessed=True)
    else:  # automx2 describes the account by its address: not a provider name
        display = organization if isinstance(organization, str) and organization else domain
        d.set(("provider", "display_name"), display, plist.where(()), guessed=True)
        d.note(("provider", "display_name"), f"the profile does not name the provider: display_name set to "
               f"'{display}'", plist.where(()), hint="write the name your users know")
    if isinstance(organization, str) and organization != display:
        d.set(("provider", "organization"), organization, plist.where(("PayloadOrganization",)))

    # Servers.
    incoming_user = _server(plist, p, path, d, "Incoming", ("incoming",), protocol)
    outgoing_user = _server(plist, p, path, d, "Outgoing", ("outgoing",), "smtp")
    d.set(("incoming", "protocol"), protocol, at("EmailAccountType"))
    prefix = _optional(plist, p, path, "IncomingMailServerIMAPPathPrefix", str)
    if prefix:
        d.set(("incoming", "imap_path_prefix"), prefix, at("IncomingMailServerIMAPPathPrefix"))
    same = _optional(plist, p, path, "OutgoingPasswordSameAsIncomingPassword", bool)
    account: dict[str, Any] = {"name": None, "email": address}
    template = _template(incoming_user, address, local, domain, console)
    if incoming_user is None:
        d.note(("incoming", "username"), f"{address}: no IncomingMailServerUsername (the device asks): the "
               "address is assumed", at())
    elif template is None:
        account["username"] = incoming_user
    else:  # stated even when it is the default: merging profiles compares the patterns (merge.py)
        d.set(("incoming", "username"), template, at("IncomingMailServerUsername"))
    if outgoing_user is not None and outgoing_user != incoming_user:
        d.set(("outgoing", "same_credentials"), False, at("OutgoingMailServerUsername"))
        out_template = _template(outgoing_user, address, local, domain, console)
        d.set(("outgoing", "username"), out_template or outgoing_user, at("OutgoingMailServerUsername"))
        if out_template is None:
            d.note(("outgoing", "username"), f"{address}: the SMTP user name is per account; kept as a literal "
                   "for every account", at("OutgoingMailServerUsername"))
    else:
        d.set(("outgoing", "same_credentials"), same if same is not None else True,
              at("OutgoingPasswordSameAsIncomingPassword"))
    for secret in ("IncomingPassword", "OutgoingPassword"):
        if secret in p:
            d.note(("passwords",), f"{address}: the profile carries {secret}; it is not copied (a spec never holds "
                   "a password)", at(secret), hint="use passwords.from_file if profiles must carry passwords")

    name = _optional(plist, p, path, "EmailAccountName", str)
    if name:
        account["name"] = name
    else:
        account["name"] = local
        d.guessed.add(("accounts", 0, "name"))
        d.note(("accounts",), f"{address}: no EmailAccountName (the device asks): name set to '{local}'", at())
    if isinstance(description, str) and description and description != display:
        account["description"] = description
    if console is None:
        d.set(("accounts",), [account], at())

    for key, field in APPLE_FLAGS.items():
        value = _optional(plist, p, path, key, bool)
        if value is not None and (value or key == "allowMailDrop"):
            d.set(("targets", "apple", field), value, at(key))
    for key in sorted(set(p) - HANDLED):
        d.note(("targets", "apple"), f"{key} is not carried by the spec", at(key))
    _top_level(plist, top, d, ident, display)
    return d


@dataclass(frozen=True)
class _Identity:
    """What a mailprofile profile's identifiers are made from: the address, or for a generic MDM profile the
    console and the domain (targets/apple.py `expected_profile` / `expected_mdm_profile`)."""

    uuid_name: str  # the identity in stable_uuid("apple", provider id, identity, ...)
    id_suffix: str  # PayloadIdentifier = <prefix>.<id_suffix>
    domain: str
    shown: str  # default PayloadDisplayName: "<provider> – <shown>"
    description: str  # default PayloadDescription


def _mdm_identity(plist: Plist, top: dict[str, Any], console: Console) -> _Identity:
    identifier = top.get("PayloadIdentifier")
    marker = f".mdm.{console.name}."
    if not isinstance(identifier, str) or marker not in identifier:
        raise fail(plist.where(("PayloadIdentifier",)), f"a generic {console.title} profile whose "
                   "PayloadIdentifier does not name its mail domain", "import it together with the provider's "
                   "autoconfig XML or a profile of one mailbox")
    domain = identifier.split(marker, 1)[1]
    return _Identity(f"mdm/{console.name}/{domain}", f"mdm.{console.name}.{domain}", domain, domain,
                     f"Configures your {domain} mail account.")


def _template(user: str | None, address: str, local: str, domain: str,
              console: Console | None = None) -> str | None:
    """The placeholder that gives `user` for this address, or None for a literal user name."""
    if console is not None and user is not None:  # the console's variables back to our placeholders
        out = user.replace(console.email, "%EMAILADDRESS%").replace(console.display_name, "%REALNAME%")
        return out.replace(console.local, "%EMAILLOCALPART%") if console.local else out
    if user is None or user.lower() == address.lower():
        return "%EMAILADDRESS%"
    if user == local:
        return "%EMAILLOCALPART%"
    return None


def _server(plist: Plist, p: dict[str, Any], path: PlistPath, d: Draft, side: str, spec: SpecPath,
            protocol: str) -> str | None:
    key = f"{side}MailServer"
    def at(name: str) -> Position:
        return plist.where((*path, name))
    host = _need(plist, p, path, f"{key}HostName", str)
    d.set((*spec, "host"), host, at(f"{key}HostName"))
    use_ssl = _optional(plist, p, path, f"{key}UseSSL", bool)
    port = _optional(plist, p, path, f"{key}PortNumber", int)
    if port is None:
        port = DEFAULT_PORTS[(protocol, bool(use_ssl))]
        d.set((*spec, "port"), port, at(f"{key}HostName"), guessed=True)
        d.note((*spec, "port"), f"no {key}PortNumber: guessed {port}, the usual {protocol.upper()} port "
               f"{'with' if use_ssl else 'without'} TLS (without a port the device tries several)",
               at(f"{key}HostName"), hint="check the port with your provider")
    elif not 0 < port < 65536:
        raise fail(at(f"{key}PortNumber"), f"{key}PortNumber {port} is not a TCP port", "use 1-65535")
    else:
        d.set((*spec, "port"), port, at(f"{key}PortNumber"))
    if not use_ssl:
        d.set((*spec, "security"), "none", at(f"{key}UseSSL"))
        d.note((*spec, "security"), f"{key}UseSSL is {'false' if use_ssl is False else 'missing'}: plain text "
               "(or STARTTLS from a writer that maps STARTTLS to false)", at(f"{key}UseSSL"),
               hint="check the server: most offer STARTTLS or SSL today")
    else:
        guess = "starttls" if port in STARTTLS else "ssl"
        d.set((*spec, "security"), guess, at(f"{key}UseSSL"), guessed=True)
        if port not in IMPLICIT_TLS:
            d.note((*spec, "security"), f"guessed {guess} from port {port}: Apple's {key}UseSSL=true does not say "
                   "SSL or STARTTLS", at(f"{key}UseSSL"), hint="check the mode with your provider")
        else:
            d.note((*spec, "security"), f"{key}UseSSL=true on port {port}: ssl (implicit TLS) inferred from the "
                   "port", at(f"{key}UseSSL"), warn=False)
    auth = _need(plist, p, path, f"{key}Authentication", str)
    if auth not in AUTH:
        raise fail(at(f"{key}Authentication"), f"{key}Authentication {auth!r} is not an Apple value",
                   "use EmailAuthPassword, EmailAuthCRAMMD5, EmailAuthNTLM or EmailAuthNone")
    if auth == "EmailAuthHTTPMD5":
        d.note((*spec, "authentication"), "EmailAuthHTTPMD5 mapped to encrypted-password", at(f"{key}Authentication"))
    d.set((*spec, "authentication"), AUTH[auth], at(f"{key}Authentication"))
    if AUTH[auth] not in ("none", "gssapi") and d.get((*spec, "security")) == "none":
        d.set((*spec, "allow_insecure"), True, at(f"{key}UseSSL"))
    user = _optional(plist, p, path, f"{key}Username", str)
    return str(user) if user is not None else None


def _top_level(plist: Plist, top: dict[str, Any], d: Draft, ident: _Identity, display: str) -> None:
    """Profile-level settings, and the identity that lets a re-issued profile replace the installed one."""
    identifier = top.get("PayloadIdentifier")
    prefix = None
    if isinstance(identifier, str) and identifier.lower().endswith("." + ident.id_suffix):
        prefix = identifier[: -len(ident.id_suffix) - 1]
    elif isinstance(identifier, str):
        d.note(("targets", "apple"), f"PayloadIdentifier '{identifier}' does not end with the address: a profile "
               "built from this spec gets a new identifier and installs beside the old one",
               plist.where(("PayloadIdentifier",)), hint="remove the old profile from devices after the switch")
    uuid = top.get("PayloadUUID")
    provider_id = _recover_id(uuid, ident, prefix, d)
    if provider_id is not None:
        d.set(("provider", "id"), provider_id, plist.where(("PayloadUUID",)))
    else:
        domain = ident.domain
        d.set(("provider", "id"), domain, plist.where(("PayloadUUID",)), guessed=True)
        d.note(("provider", "id"), f"provider id guessed as '{domain}': the profile's PayloadUUID was not made "
               "from a provider id mailprofile can recover, so rebuilt profiles get new UUIDs (the same "
               "PayloadIdentifier still replaces the installed profile)", plist.where(("PayloadUUID",)))
    if prefix is not None:
        default = ".".join(reversed(str(d.get(("provider", "id"))).split("."))) + ".mail"
        if prefix != default:
            d.set(("targets", "apple", "identifier_prefix"), prefix, plist.where(("PayloadIdentifier",)))
    scope = top.get("PayloadScope")
    if scope == "System":
        d.set(("targets", "apple", "scope"), "System", plist.where(("PayloadScope",)))
    if top.get("PayloadRemovalDisallowed") is True:
        d.set(("targets", "apple", "removal_disallowed"), True, plist.where(("PayloadRemovalDisallowed",)))
    consent = top.get("ConsentText")
    if isinstance(consent, dict) and consent:
        d.set(("targets", "apple", "consent_text"), {str(k): str(v) for k, v in consent.items()},
              plist.where(("ConsentText",)))
    shown = top.get("PayloadDisplayName")
    if isinstance(shown, str) and shown != f"{display} – {ident.shown}":
        d.set(("targets", "apple", "display_name"), shown, plist.where(("PayloadDisplayName",)))
    described = top.get("PayloadDescription")
    if isinstance(described, str) and described != ident.description:
        d.set(("targets", "apple", "description"), described, plist.where(("PayloadDescription",)))
    device = top.get("TargetDeviceType")
    if isinstance(device, int) and not isinstance(device, bool):
        d.set(("targets", "apple", "target_device_type"), device, plist.where(("TargetDeviceType",)))
    removal = top.get("RemovalDate")
    if removal is not None and hasattr(removal, "strftime"):
        when = removal if removal.tzinfo else removal.replace(tzinfo=UTC)
        d.set(("targets", "apple", "removal_date"), when.strftime("%Y-%m-%dT%H:%M:%SZ"),
              plist.where(("RemovalDate",)))
    duration = top.get("DurationUntilRemoval")
    if isinstance(duration, int | float) and not isinstance(duration, bool):
        d.set(("targets", "apple", "duration_until_removal"), float(duration), plist.where(("DurationUntilRemoval",)))
    known = {"PayloadType", "PayloadVersion", "PayloadIdentifier", "PayloadUUID", "PayloadContent",
             "PayloadOrganization", "PayloadScope", "PayloadRemovalDisallowed", "ConsentText", "PayloadDisplayName",
             "PayloadDescription", "TargetDeviceType", "RemovalDate", "DurationUntilRemoval"}
    for key in sorted(set(top) - known):
        d.note(("targets", "apple"), f"profile key {key} is not carried by the spec", plist.where((key,)))


def _recover_id(uuid: object, ident: _Identity, prefix: str | None, d: Draft) -> str | None:
    """mailprofile derives PayloadUUID from the provider id and the address (UUIDv5): try the ids this profile
    suggests (its identifier prefix reversed, its mail domain and the host names' parent domains) and keep
    the one that reproduces the UUID, so rebuilt profiles keep their identity."""
    if not isinstance(uuid, str):
        return None
    candidates: list[str] = []
    if prefix:
        parts = prefix.split(".")
        if parts[-1] == "mail":
            parts = parts[:-1]
        candidates.append(".".join(reversed(parts)))
    candidates.append(ident.domain)
    for side in ("incoming", "outgoing"):
        host = str(d.get((side, "host"), ""))
        labels = host.split(".")
        candidates += [".".join(labels[i:]) for i in range(len(labels) - 1)]
    for candidate in candidates:
        if candidate and stable_uuid("apple", candidate, ident.uuid_name, "profile") == uuid.upper():
            return candidate
    return None
