"""Thunderbird prefs.js / user.js (and the enterprise mozilla.cfg) -> one draft per POP3/IMAP account.

Facts (FORMATS.md §2): accounts are listed in mail.accountmanager.accounts; mail.account.<a>.server names
the incoming server's key, .identities the identities (the first is the default); the identity's smtpServer
names the SMTP server (else mail.smtp.defaultserver). socketType/try_ssl 0 plain, 2 STARTTLS, 3 SSL/TLS;
authMethod 1 none, 3 password, 4 CRAM-MD5, 5 GSSAPI, 6 NTLM, 10 OAuth2. The files are read by the strict
readers the Thunderbird target proves its own output with (generator/prefs.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from generator.errors import Position
from generator.importers.draft import MAX_PREFS_BYTES, Draft, fail, read_limited
from generator.prefs import PrefCall, PrefsSyntaxError, PrefValue, read_cfg, read_prefs

KIND = "Thunderbird prefs"
SOCKET = {0: "none", 2: "starttls", 3: "ssl"}
AUTH = {1: "none", 3: "password", 4: "encrypted-password", 5: "gssapi", 6: "ntlm", 10: "oauth2"}
# Thunderbird's defaults when a pref is absent (mailnews.js): plain-text socket, normal password.
DEFAULT_PORTS = {("imap", "ssl"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143, ("pop3", "ssl"): 995,
                 ("pop3", "starttls"): 110, ("pop3", "none"): 110, ("smtp", "ssl"): 465,
                 ("smtp", "starttls"): 587, ("smtp", "none"): 587}
TLS_MIN = {3: "1.2", 4: "1.3"}
# Our own outputs: the group each pref belongs to in targets.thunderbird.enforce (mozilla.cfg lockPref).
ENFORCE_GROUP = (("mail.server.", "incoming"), ("mail.account.", "incoming"), ("mail.accountmanager.", "incoming"),
                 ("mail.identity.", "identity"), ("mail.smtp", "outgoing"), ("security.tls.", "tls_min"))


class _Prefs:
    def __init__(self, calls: list[PrefCall], file: str) -> None:
        self.values: dict[str, PrefValue] = {}
        self.lines: dict[str, int] = {}
        for c in calls:
            self.values[c.name] = c.value
            self.lines[c.name] = c.line
        self.file = file

    def at(self, name: str) -> Position:
        return Position(self.file, self.lines[name], 1) if name in self.lines else Position(self.file)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise fail(self.at(name), f"{name} must be a string, got {value!r}", "fix the pref")
        return value

    def number(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(self.at(name), f"{name} must be an integer, got {value!r}", "fix the pref")
        return value

    def flag(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise fail(self.at(name), f"{name} must be true or false, got {value!r}", "fix the pref")
        return value


def read(path: Path) -> list[Draft]:
    data = read_limited(path, MAX_PREFS_BYTES, "the prefs file")
    return parse(data, str(path))


def parse(data: bytes, file: str) -> list[Draft]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise fail(Position(file), f"the prefs file is not UTF-8 (byte {exc.start})", "save it as UTF-8") from None
    policies = text.lstrip().startswith("{")
    cfg = policies or "defaultPref(" in text or "lockPref(" in text
    try:
        calls = _policy_calls(text, file) if policies else read_cfg(text) if cfg else read_prefs(text)
    except PrefsSyntaxError as exc:
        message = str(exc).split(": ", 1)[-1]
        raise fail(Position(file, exc.line, exc.column), f"Thunderbird would reject this pref: {message}",
                   "fix the line (Thunderbird drops such prefs silently)") from None
    prefs = _Prefs(calls, file)
    locked = {c.name for c in calls if c.function == "lockPref"}

    listed = prefs.text("mail.accountmanager.accounts")
    if listed is None:
        raise fail(Position(file), "no mail.accountmanager.accounts: the file configures no account",
                   "give the prefs.js of a Thunderbird profile, or a user.js/mozilla.cfg that sets up accounts")
    drafts = []
    for key in [a.strip() for a in listed.split(",") if a.strip()]:
        draft = _account(prefs, key, file)
        if draft is not None:
            drafts.append(draft)
    if not drafts:
        raise fail(prefs.at("mail.accountmanager.accounts"), "none of the listed accounts is a POP3 or IMAP "
                   "account", "the spec describes POP3/IMAP mail accounts only")
    tls = prefs.number("security.tls.version.min")
    if tls is not None:
        if tls in TLS_MIN:
            for d in drafts:
                d.set(("tls_min",), TLS_MIN[tls], prefs.at("security.tls.version.min"))
        else:
            drafts[0].note(("tls_min",), f"security.tls.version.min {tls} is not TLS 1.2 or 1.3: not carried",
                           prefs.at("security.tls.version.min"))
    if policies:
        for d in drafts:  # mailprofile's policies.json leaves out prefs valued 0 or 1 (docs/thunderbird.md)
            d.note(("incoming",), "policies.json holds no pref valued 0 or 1: a missing socketType/try_ssl is read as "
                   "plain text and a missing authMethod as password", Position(file), warn=False)
    if cfg:
        groups = sorted({group for name in locked for prefix, group in ENFORCE_GROUP if name.startswith(prefix)})
        for d in drafts:
            d.set(("targets", "thunderbird", "enforce"), groups, Position(file))
    return drafts


# policies.json (FORMATS §2): the Preferences policy takes {"Value", "Status"} per pref; "locked" is lockPref.
# SSLVersionMin carries the TLS minimum and always locks it.
_SSL_VERSION = {"tls1.2": 3, "tls1.3": 4}


def _policy_calls(text: str, file: str) -> list[PrefCall]:
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        line, col = (exc.lineno, exc.colno) if isinstance(exc, json.JSONDecodeError) else (0, 0)
        raise fail(Position(file, line, col), f"not JSON: {exc}", "fix the JSON") from None
    policies = doc.get("policies") if isinstance(doc, dict) else None
    if not isinstance(policies, dict) or not isinstance(policies.get("Preferences", {}), dict):
        raise fail(Position(file), "not a Thunderbird policies.json (no \"policies\" object with \"Preferences\")",
                   "give the policies.json from <install>/distribution/")
    calls = []
    for name, entry in policies.get("Preferences", {}).items():
        value = entry.get("Value") if isinstance(entry, dict) else entry
        if not isinstance(value, str | int) or (isinstance(value, float)):
            raise fail(Position(file), f"Preferences.{name}: the value must be a string, integer or boolean",
                       "fix the policy")
        locked = isinstance(entry, dict) and entry.get("Status") == "locked"
        calls.append(PrefCall("lockPref" if locked else "defaultPref", str(name), value, 0))
    version = policies.get("SSLVersionMin")
    if version in _SSL_VERSION:
        calls.append(PrefCall("lockPref", "security.tls.version.min", _SSL_VERSION[version], 0))
    return calls


def _account(prefs: _Prefs, key: str, file: str) -> Draft | None:
    server = prefs.text(f"mail.account.{key}.server")
    if server is None:
        return None
    base = f"mail.server.{server}."
    protocol = prefs.text(base + "type")
    if protocol not in ("pop3", "imap"):
        return None  # Local Folders (none), feeds (rss), news (nntp): not mail accounts of a provider
    d = Draft(source=file, kind=KIND)
    identities = prefs.text(f"mail.account.{key}.identities") or ""
    identity = identities.split(",")[0].strip()
    if not identity:
        raise fail(prefs.at(f"mail.account.{key}.server"), f"account {key} has no identity (no address)",
                   f"add mail.account.{key}.identities")
    ibase = f"mail.identity.{identity}."
    email = prefs.text(ibase + "useremail")
    if not email or "@" not in email:
        raise fail(prefs.at(ibase + "useremail"), f"identity {identity} has no e-mail address",
                   f"set {ibase}useremail")
    local, domain = email.rsplit("@", 1)
    domain = domain.lower()
    address = f"{local}@{domain}"
    d.set(("provider", "domains"), [domain], prefs.at(ibase + "useremail"))
    d.set(("provider", "id"), domain, prefs.at(ibase + "useremail"), guessed=True)
    d.note(("provider", "id"), f"provider id guessed from {address}'s domain (prefs do not name a provider)",
           prefs.at(ibase + "useremail"), warn=False)

    _server(prefs, d, ("incoming",), base, protocol, "socketType", "userName")
    d.set(("incoming", "protocol"), protocol, prefs.at(base + "type"))
    user = prefs.text(base + "userName")
    account: dict[str, object] = {"name": prefs.text(ibase + "fullName") or local, "email": address}
    if prefs.text(ibase + "fullName") is None:
        d.guessed.add(("accounts", 0, "name"))
    template = _template(user, address, local, domain)
    if template is None:
        account["username"] = user
    else:  # stated even when it is the default: merging accounts compares the patterns (merge.py)
        d.set(("incoming", "username"), template, prefs.at(base + "userName"))
    name = prefs.text(base + "name")
    if name and name != address:
        account["description"] = name
    if protocol == "pop3":
        keep = prefs.flag(base + "leave_on_server")
        if keep:
            d.set(("incoming", "keep_on_server"), True, prefs.at(base + "leave_on_server"))
            if prefs.flag(base + "delete_by_age_from_server"):
                days = prefs.number(base + "num_days_to_leave_on_server")
                if days is not None and days > 0:
                    d.set(("incoming", "keep_days"), days, prefs.at(base + "num_days_to_leave_on_server"))
    prefix = prefs.text(base + "server_sub_directory")
    if protocol == "imap" and prefix:
        d.set(("incoming", "imap_path_prefix"), prefix, prefs.at(base + "server_sub_directory"))
    check_time = prefs.number(base + "check_time")
    if check_time is not None and check_time != 10 and 1 <= check_time <= 1440:
        d.set(("targets", "thunderbird", "check_interval_minutes"), check_time, prefs.at(base + "check_time"))
    if prefs.flag(base + "login_at_startup") is False:
        d.set(("targets", "thunderbird", "login_at_startup"), False, prefs.at(base + "login_at_startup"))

    smtp = prefs.text(ibase + "smtpServer") or prefs.text("mail.smtp.defaultserver")
    if smtp is None:
        raise fail(prefs.at(ibase + "useremail"), f"{address} has no outgoing server (identity smtpServer or "
                   "mail.smtp.defaultserver)", "add the SMTP server prefs")
    sbase = f"mail.smtpserver.{smtp}."
    if prefs.text(sbase + "hostname") is None:
        raise fail(prefs.at(ibase + "smtpServer"), f"SMTP server {smtp} has no hostname", f"set {sbase}hostname")
    _server(prefs, d, ("outgoing",), sbase, "smtp", "try_ssl", "username")
    smtp_user = prefs.text(sbase + "username")
    if smtp_user is None or smtp_user == user:
        d.set(("outgoing", "same_credentials"), True, prefs.at(sbase + "hostname"))
    else:
        d.set(("outgoing", "same_credentials"), False, prefs.at(sbase + "username"))
        d.set(("outgoing", "username"), _template(smtp_user, address, local, domain) or smtp_user,
              prefs.at(sbase + "username"))
    provider = prefs.text(sbase + "description")
    if provider:
        d.set(("provider", "display_name"), provider, prefs.at(sbase + "description"))
    else:
        d.set(("provider", "display_name"), domain, prefs.at(sbase + "hostname"), guessed=True)
    organization = prefs.text(ibase + "organization")
    if organization:
        d.set(("provider", "organization"), organization, prefs.at(ibase + "organization"))
    d.set(("accounts",), [account], prefs.at(ibase + "useremail"))
    return d


def _server(prefs: _Prefs, d: Draft, path: tuple[str], base: str, protocol: str, socket_key: str,
            user_key: str) -> None:
    host = prefs.text(base + "hostname")
    if host is None:
        raise fail(prefs.at(base + "type"), f"{base}hostname is missing", "set the server's host name")
    d.set((*path, "host"), host, prefs.at(base + "hostname"))
    socket = prefs.number(base + socket_key)
    if socket is None:
        socket = 0
        d.note((*path, "security"), f"no {base}{socket_key}: Thunderbird's default, plain text", Position(prefs.file))
    if socket not in SOCKET:
        raise fail(prefs.at(base + socket_key), f"{base}{socket_key} {socket} is not 0, 2 or 3",
                   "use 0 (plain), 2 (STARTTLS) or 3 (SSL/TLS)")
    security = SOCKET[socket]
    d.set((*path, "security"), security, prefs.at(base + socket_key),
          guessed=prefs.number(base + socket_key) is None)
    port = prefs.number(base + "port")
    if port is None or port == 0:
        port = DEFAULT_PORTS[(protocol, security)]
        d.set((*path, "port"), port, prefs.at(base + "hostname"), guessed=True)
        d.note((*path, "port"), f"no {base}port: Thunderbird's default for {protocol} with {security}, {port}",
               prefs.at(base + "hostname"), warn=False)
    else:
        d.set((*path, "port"), port, prefs.at(base + "port"))
    method = prefs.number(base + "authMethod")
    if method is None:
        method = 3
    if method not in AUTH:
        raise fail(prefs.at(base + "authMethod"), f"{base}authMethod {method} has no equivalent in the spec "
                   "(7 is a TLS client certificate)", "use 1, 3, 4, 5, 6 or 10")
    d.set((*path, "authentication"), AUTH[method], prefs.at(base + "authMethod"))
    if security == "none" and AUTH[method] not in ("none", "gssapi"):
        d.set((*path, "allow_insecure"), True, prefs.at(base + socket_key))
        d.note((*path, "allow_insecure"), "Thunderbird sends this password in plain text: allow_insecure keeps "
               "the setting; prefer ssl or starttls", prefs.at(base + socket_key))


def _template(user: str | None, address: str, local: str, domain: str) -> str | None:
    if user is None or user.lower() == address.lower():
        return "%EMAILADDRESS%"
    if user == local:
        return "%EMAILLOCALPART%"
    return None
