"""Thunderbird: user.js, the enterprise mozilla.cfg (+ the autoconfig.js that activates it), policies.json,
and the per-domain autoconfig XML (config-v1.1.xml). Facts: FORMATS.md §2 (prefs) and §3 (autoconfig XML).

Every mapping from the spec's vocabulary to Thunderbird's lives in the tables below; the templates only lay
the values out. Every file is parsed back (strict prefs reader, json, defusedxml) and compared with the spec.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import defusedxml.ElementTree as SafeET

from generator.accounts import Mailbox
from generator.errors import BuildError, Problem, VerificationError
from generator.model import (
    Authentication,
    IncomingServer,
    Security,
    Server,
    bare_host,
    is_ipv6_literal,
    user_template,
)
from generator.prefs import (
    PrefsSyntaxError,
    PrefValue,
    as_dict,
    js_value,
    prefs_string,
    prefs_value,
    read_cfg,
    read_prefs,
)
from generator.render import differences, prove, render_template, xml_escape
from generator.stencil import (
    JS_SPECIALS,
    LINE_COMMENT,
    Context,
    Fixed,
    Format,
    Stencils,
    record,
    text_carriable,
)
from generator.targets.base import OutputFile, Target
from generator.targets.thunderbird_android import (
    ANDROID_CLIENTS,
    QR_REFUSED_AUTH,
    android_autoconfig_problems,
    legal_host,
    qr_path,
    render_qr_svg,
)

# socketType (incoming) / try_ssl (SMTP): 0 plain, 2 STARTTLS, 3 SSL/TLS; 1 was removed in 132 (FORMATS §2).
SOCKET_TYPE: dict[Security, int] = {"none": 0, "starttls": 2, "ssl": 3}
# nsMsgAuthMethod: 1 none, 3 normal password, 4 CRAM-MD5, 5 GSSAPI, 6 NTLM, 10 OAuth2 (FORMATS §2).
AUTH_METHOD: dict[Authentication, int] = {"none": 1, "password": 3, "encrypted-password": 4, "gssapi": 5,
                                          "ntlm": 6, "oauth2": 10}
# security.tls.version.min: 3 = TLS 1.2 (Thunderbird's default), 4 = TLS 1.3; policy SSLVersionMin.
TLS_MIN_PREF = {"1.2": 3, "1.3": 4}
TLS_MIN_POLICY = {"1.2": "tls1.2", "1.3": "tls1.3"}
# Autoconfig XML vocabulary (readFromXML.sys.mjs, FORMATS §3).
XML_SOCKET: dict[Security, str] = {"none": "plain", "starttls": "STARTTLS", "ssl": "SSL"}
XML_AUTH: dict[Authentication, str] = {"password": "password-cleartext", "encrypted-password": "password-encrypted",
                                       "ntlm": "NTLM", "gssapi": "GSSAPI", "oauth2": "OAuth2", "none": "none"}

# The activation file for mozilla.cfg, dropped into <install>/defaults/pref/ (FORMATS §2).
CFG_FILENAME = "mozilla.cfg"

# Fixed keys: one mail account plus the explicit Local Folders account. Without that explicit account
# Thunderbird creates a new Local Folders at every start (account2 -> 3 -> 4), FORMATS §2 [seen].
ACCOUNT, LOCAL_ACCOUNT, SERVER, LOCAL_SERVER, IDENTITY, SMTP = ("account1", "account2", "server1", "server2",
                                                                 "id1", "smtp1")


# Where a per-account string can sit in each file (FORMATS §2): a prefs string literal, a JSON string (ASCII
# in mozilla.cfg, see js_value), or the header comment that names the account.
PREFS_STRING = Context("prefs string", lambda s: prefs_string(s)[1:-1], text_carriable)
CFG_STRING = Context("JSON string, ASCII", lambda s: json.dumps(s)[1:-1], text_carriable)
JSON_STRING = Context("JSON string", lambda s: _LEAF.encode(s)[1:-1], text_carriable)
USER_JS = Format("user.js", (PREFS_STRING, LINE_COMMENT), JS_SPECIALS)
MOZILLA_CFG = Format("mozilla.cfg", (CFG_STRING, LINE_COMMENT), JS_SPECIALS)
POLICIES = Format("policies.json", (JSON_STRING,), JS_SPECIALS)
_LOCK, _DEFAULT = Fixed("lockPref"), Fixed("defaultPref")
PREFS_KINDS = ("user.js", "mozilla.cfg", "policies.json")  # the files laid out from an account's prefs (_values)


# Named tuples, not frozen dataclasses: ~40 prefs are made per account, and a frozen dataclass costs twice as
# much to make. Templates read them the same way (pref.name, section.title).
class Pref(NamedTuple):
    name: str
    value: PrefValue
    group: str  # which `targets.thunderbird.enforce` entry locks it


class Section(NamedTuple):
    title: str
    prefs: list[Pref]


@record
class AccountStrings(NamedTuple):
    """What an account's prefs take from the account, its server names worked out: `sections_of` builds the
    prefs from these by moving them and branching on none of their text, so they are the source of the prefs
    files' family (docs/verification.md, "One check for several files")."""

    incoming_host: str
    username: str
    name: str
    email: str
    description: str | None
    outgoing_host: str
    smtp_username: str


class ThunderbirdTarget(Target):
    name = "thunderbird"
    _autoconfig_js: str | None = None  # rendered and proven once per build (the same for every account)
    # (_policy_unsafe_prefs, the enforced groups, the provider's name): the same for every account, worked
    # out once per build and set in one assignment (serve renders from several threads).
    _constants: tuple[frozenset[str], frozenset[str], Fixed] | None = None
    _stencils: dict[str, Stencils] | None = None

    # ---- lint: what Thunderbird cannot carry -------------------------------------------------------------
    def lint(self) -> list[Problem]:
        spec, where = self.spec, self.ctx.loaded.where
        problems: list[Problem] = []
        # Each problem is about some kinds of file; a --kinds build is told only about the ones it writes.
        xml = self.wants("autoconfig-xml")
        fallbacks = len(spec.fallbacks.incoming) + len(spec.fallbacks.outgoing)
        if fallbacks and self._wants_prefs():
            problems.append(Problem(
                where("fallbacks"),
                f"Thunderbird prefs hold one incoming and one outgoing server per account: the {fallbacks} "
                "fallback server(s) are left out of user.js, mozilla.cfg and policies.json",
                "config-v1.1.xml (autoconfig) lists them after the primary servers, except plain-text ones "
                "(see targets.thunderbird.autoconfig_plain_fallbacks)", "warning"))
        if xml and spec.targets.thunderbird.autoconfig_plain_fallbacks and self._plain_fallbacks():
            problems.append(Problem(
                where("targets", "thunderbird", "autoconfig_plain_fallbacks"),
                f"config-v1.1.xml lists the plain-text fallbacks: {ANDROID_CLIENTS} reject the whole file "
                "(a server with socketType plain); desktop Thunderbird, Evolution and KMail read it",
                "leave autoconfig_plain_fallbacks out unless the legacy clients matter more", "warning"))
        if xml and spec.tls_min != "1.2" and not self._wants_prefs():
            # Autoconfig has no TLS-minimum element (FORMATS §5): an account set up from it keeps Thunderbird's
            # own security.tls.version.min, TLS 1.2 by default. Only the prefs files carry tls_min, and a build
            # of autoconfig files alone (--kinds autoconfig-xml, serve) makes none.
            problems.append(Problem(
                where("tls_min"),
                f"config-v1.1.xml cannot require TLS {spec.tls_min}: a Thunderbird set up from it (autoconfig, "
                "serve) keeps its own minimum, TLS 1.2 by default; only user.js, mozilla.cfg and policies.json "
                "carry tls_min", "enforce it on the server, or deploy the prefs files as well", "warning"))
        android = android_autoconfig_problems(self.autoconfig_values()) if xml else []
        if android:
            problems.append(Problem(
                where("imap_alternative") if spec.imap_alternative else where("incoming"),
                f"{ANDROID_CLIENTS} will reject config-v1.1.xml: {'; '.join(android)}",
                "add imap_alternative (an IMAP server) for POP3 providers, and/or set "
                "targets.thunderbird.android_qr: true (its QR import carries POP3)", "warning"))
        incoming: list[tuple[tuple[str | int, ...], Server]] = [(("incoming",), spec.incoming)]
        if spec.imap_alternative is not None:
            incoming.append((("imap_alternative",), spec.imap_alternative))
        incoming += [(("fallbacks", "incoming", i), s) for i, s in enumerate(spec.fallbacks.incoming)]
        outgoing: list[tuple[tuple[str | int, ...], Server]] = [(("outgoing",), spec.outgoing)]
        outgoing += [(("fallbacks", "outgoing", i), s) for i, s in enumerate(spec.fallbacks.outgoing)]
        if is_ipv6_literal(spec.incoming.host) and self._wants_prefs():
            # MsgIncomingServer.sys.mjs reads a ':' in the hostname pref as host:port, so an IPv6 address (with
            # or without brackets) comes back as "server1.invalid" [seen in Thunderbird 140].
            problems.append(Problem(
                where("incoming", "host"),
                f"Thunderbird cannot use an IPv6 address as an incoming server's host ({spec.incoming.host}): it "
                "reads the ':' as the start of a port and replaces the host with server1.invalid",
                "give the server a host name (with an AAAA record), or leave thunderbird out of targets.build"))
        listed = [(loc, s) for loc, s in incoming if xml and any(s is a for a in self._autoconfig_incoming())]
        for loc, server in listed:
            if is_ipv6_literal(server.host):
                problems.append(Problem(
                    where(*loc, "host"),
                    f"config-v1.1.xml lists the IPv6 address {server.host} as an incoming server: desktop "
                    "Thunderbird cannot create an account with it (it reads the ':' as a port); Thunderbird for "
                    "Android can", "give the server a host name (with an AAAA record)", "warning"))
        for loc, server in listed:
            if server.authentication == "none":
                # readFromXML.sys.mjs has no "none" for incoming servers: the whole file is rejected. The prefs
                # carry it (authMethod 1), and a plain-text fallback left out of the XML is not in it.
                problems.append(Problem(
                    where(*loc, "authentication"),
                    "Thunderbird's autoconfig rejects the whole config-v1.1.xml when an incoming server has "
                    "authentication: none", "use password (or another method) for incoming servers"))
        if not legal_host(spec.provider.id):
            problems.append(Problem(
                where("provider", "id"),
                f"Thunderbird reads provider.id as the host name in config-v1.1.xml's emailProvider id, and "
                f"'{spec.provider.id}' is not one (labels of 1-63 letters, digits and '-'), so every Thunderbird "
                "would reject the file", f"use the provider's domain, such as {spec.provider.domains[0]}"))
        if spec.targets.thunderbird.android_qr:  # the QR code carries the primary servers
            for side, server in (("incoming", spec.incoming), ("outgoing", spec.outgoing)):
                if server.authentication in QR_REFUSED_AUTH:
                    problems.append(Problem(
                        where(side, "authentication"),
                        f"Thunderbird for Android's QR import refuses {side} authentication: "
                        f"{server.authentication}, so the account's QR code could not be read",
                        "use password authentication, or remove targets.thunderbird.android_qr"))
        for loc, server in incoming + outgoing:
            if server.authentication == "oauth2":
                problems.append(Problem(
                    where(*loc, "authentication"),
                    f"Thunderbird uses OAuth2 only for providers it knows (OAuth2Providers); for {server.host} "
                    "the account will not log in and autoconfig skips this server",
                    "check that Thunderbird ships an OAuth2 configuration for this host", "warning"))
        for name in self._policy_unsafe_prefs() if self.wants("policies.json") else []:
            section = {"mail.server.": "incoming", "mail.smtpserver.": "outgoing"}
            origin = next((v for k, v in section.items() if name.startswith(k)), "targets")
            problems.append(Problem(
                where(origin),  # the closest position the spec has (the section, if the key is a default)
                f"policies.json cannot set {name} to 0 or 1 (Thunderbird's Preferences policy turns 0/1 into a "
                "boolean for a new pref): it is left out of policies.json, Thunderbird uses its default there",
                "use user.js or mozilla.cfg for this spec", "warning"))
        return problems

    # ---- per account -------------------------------------------------------------------------------------
    def render_account(self, mailbox: Mailbox) -> list[OutputFile]:
        if not any(self.wants(k) for k in ("user.js", "mozilla.cfg", "autoconfig.js", "policies.json",
                                           "android-qr")):
            return []
        account = self.account_strings(mailbox)
        base = f"{mailbox.slug}/thunderbird"
        env = self.ctx.environment(self.name, {"prefs_value": prefs_value, "prefs_string": prefs_string,
                                               "js_value": js_value, "json": _json, "xml": xml_escape})
        texts = self.family_texts(env, PREFS_KINDS, lambda a: self._values(self.sections_of(a), a.email), account)
        # The prefs and the files' values, for a file the family did not fill (the full path renders and proves
        # it), made once.
        full = None in texts.values()
        sections = self.sections_of(account) if full else []
        laid_out = self._values(sections, mailbox.email) if full else ({}, {}, {})

        files = []
        if self.wants("user.js"):
            user_js = texts.get("user.js")
            if user_js is None:
                user_js = render_template(env, "thunderbird/user.js.j2", {
                    "sections": sections, "provider": self.spec.provider.display_name, "email": mailbox.email})
                values = self._read(f"{base}/user.js", lambda: as_dict(read_prefs(user_js, ("user_pref",))))
                prove(f"{base}/user.js", {p.name: p.value for s in sections for p in s.prefs}, values)
            files.append(self._file(f"{base}/user.js", user_js, "user.js", mailbox.email))

        if self.wants("mozilla.cfg"):
            cfg = texts.get("mozilla.cfg")
            if cfg is None:
                cfg_value = laid_out[1]
                cfg = render_template(env, "thunderbird/mozilla.cfg.j2", cfg_value)
                problems = _cfg_differences(cfg_value, cfg)
                if problems:
                    raise VerificationError(f"{base}/mozilla.cfg", problems)
            files.append(self._file(f"{base}/mozilla.cfg", cfg, "mozilla.cfg", mailbox.email))

        if self.wants("autoconfig.js"):
            autoconfig_js = self._activation(env, f"{base}/autoconfig.js")
            files.append(self._file(f"{base}/autoconfig.js", autoconfig_js, "autoconfig.js", mailbox.email))

        if self.wants("policies.json"):
            policies_json = texts.get("policies.json")
            if policies_json is None:
                policies = laid_out[2]
                policies_json = render_template(env, "thunderbird/policies.json.j2", {"policies": policies})
                problems = _json_differences(policies, policies_json)
                if problems:
                    raise VerificationError(f"{base}/policies.json", problems)
            files.append(self._file(f"{base}/policies.json", policies_json, "policies.json", mailbox.email))

        # Opt-in (a QR code costs more than the other files together): the spec's switch, or --kinds android-qr.
        asked = self.ctx.kinds is not None and "android-qr" in self.ctx.kinds
        if self.wants("android-qr") and (self.spec.targets.thunderbird.android_qr or asked):
            path = qr_path(mailbox)
            files.append(OutputFile(path, render_qr_svg(path, self.spec, mailbox), self.name, "android-qr",
                                    mailbox.email))
        return files

    def stencils_for(self, env: Any) -> dict[str, Stencils] | None:
        """The stencils of user.js, mozilla.cfg and policies.json (None: every file takes the full path)."""
        if not self.ctx.stencils_allowed:
            return None
        if self._stencils is None:
            self._stencils = {
                "user.js": Stencils(USER_JS, lambda v: render_template(env, "thunderbird/user.js.j2", v),
                                    _user_js_differences),
                "mozilla.cfg": Stencils(MOZILLA_CFG, lambda v: render_template(env, "thunderbird/mozilla.cfg.j2", v),
                                        _cfg_differences),
                "policies.json": Stencils(POLICIES, lambda v: render_template(env, "thunderbird/policies.json.j2",
                                                                             {"policies": v}), _json_differences),
            }
        return self._stencils

    def _activation(self, env: Any, path: str) -> str:
        """autoconfig.js is the same for every account: rendered and proven once per build."""
        if self._autoconfig_js is None:
            text = render_template(env, "thunderbird/autoconfig.js.j2", {"filename": CFG_FILENAME})
            activation = self._read(path, lambda: as_dict(read_prefs(text, ("pref",))))
            prove(path, {"general.config.filename": CFG_FILENAME, "general.config.obscure_value": 0}, activation)
            self._autoconfig_js = text
        return self._autoconfig_js

    def sections(self, mailbox: Mailbox) -> list[Section]:
        """Every pref of one account, in Thunderbird's vocabulary, grouped for readable output."""
        return self.sections_of(self.account_strings(mailbox))

    def account_strings(self, mailbox: Mailbox) -> AccountStrings:
        spec = self.spec
        return AccountStrings(bare_host(mailbox.host(spec.incoming)), mailbox.username, mailbox.name, mailbox.email,
                              mailbox.description, bare_host(mailbox.host(spec.outgoing)), mailbox.smtp_username)

    def sections_of(self, account: AccountStrings) -> list[Section]:
        """sections() from the account's strings: it moves them into prefs, and branches only on the spec and
        on whether the description is given (its presence and emptiness are in the source's shape)."""
        spec, tb = self.spec, self.spec.targets.thunderbird
        inc, out = spec.incoming, spec.outgoing
        account_name = account.description or account.email
        server = f"mail.server.{SERVER}."
        incoming = [
            Pref(server + "type", inc.protocol, "incoming"),
            Pref(server + "hostname", account.incoming_host, "incoming"),
            Pref(server + "port", inc.port, "incoming"),  # always written: defaults differ per type
            Pref(server + "userName", account.username, "incoming"),  # capital N for incoming servers
            Pref(server + "socketType", SOCKET_TYPE[inc.security], "incoming"),
            Pref(server + "authMethod", AUTH_METHOD[inc.authentication], "incoming"),
            Pref(server + "name", account_name, "incoming"),
            Pref(server + "login_at_startup", tb.login_at_startup, "incoming"),
            Pref(server + "check_new_mail", True, "incoming"),
            Pref(server + "check_time", tb.check_interval_minutes, "incoming"),
        ]
        if inc.protocol == "pop3":
            incoming += [Pref(server + "leave_on_server", inc.keep_on_server, "incoming"),
                         Pref(server + "delete_by_age_from_server", inc.keep_days is not None, "incoming")]
            if inc.keep_days is not None:
                incoming.append(Pref(server + "num_days_to_leave_on_server", inc.keep_days, "incoming"))
        if inc.imap_path_prefix is not None:
            incoming.append(Pref(server + "server_sub_directory", inc.imap_path_prefix, "incoming"))
        local = f"mail.server.{LOCAL_SERVER}."
        identity = f"mail.identity.{IDENTITY}."
        identity_prefs = [Pref(identity + "fullName", account.name, "identity"),
                          Pref(identity + "useremail", account.email, "identity"),
                          Pref(identity + "smtpServer", SMTP, "identity"),
                          Pref(identity + "valid", True, "identity")]
        if spec.provider.organization is not None:
            identity_prefs.append(Pref(identity + "organization", spec.provider.organization, "identity"))
        smtp = f"mail.smtpserver.{SMTP}."
        return [
            Section("Account list (the explicit Local Folders account stops Thunderbird adding one per start)", [
                Pref("mail.accountmanager.accounts", f"{ACCOUNT},{LOCAL_ACCOUNT}", "incoming"),
                Pref("mail.accountmanager.defaultaccount", ACCOUNT, "incoming"),
                Pref("mail.accountmanager.localfoldersserver", LOCAL_SERVER, "incoming"),
                Pref(f"mail.account.{ACCOUNT}.server", SERVER, "incoming"),
                Pref(f"mail.account.{ACCOUNT}.identities", IDENTITY, "identity"),
                Pref(f"mail.account.{LOCAL_ACCOUNT}.server", LOCAL_SERVER, "incoming"),
            ]),
            Section(f"Incoming server ({inc.protocol})", incoming),
            Section("Local Folders", [Pref(local + "type", "none", "incoming"),
                                      Pref(local + "hostname", "Local Folders", "incoming"),
                                      Pref(local + "userName", "nobody", "incoming"),
                                      Pref(local + "name", "Local Folders", "incoming")]),
            Section("Identity", identity_prefs),
            Section("Outgoing server (SMTP)", [
                Pref("mail.smtpservers", SMTP, "outgoing"),
                Pref("mail.smtp.defaultserver", SMTP, "outgoing"),
                Pref(smtp + "type", "smtp", "outgoing"),  # migrations that would add it skip new profiles
                Pref(smtp + "hostname", account.outgoing_host, "outgoing"),
                Pref(smtp + "port", out.port, "outgoing"),
                Pref(smtp + "username", account.smtp_username, "outgoing"),  # lower-case n for SMTP
                Pref(smtp + "try_ssl", SOCKET_TYPE[out.security], "outgoing"),
                Pref(smtp + "authMethod", AUTH_METHOD[out.authentication], "outgoing"),
                Pref(smtp + "description", spec.provider.display_name, "outgoing"),
            ]),
            Section("Minimum TLS version", [Pref("security.tls.version.min", TLS_MIN_PREF[spec.tls_min],
                                                 "tls_min")]),
        ]

    def _wants_prefs(self) -> bool:
        """Whether this build writes the per-account prefs (user.js, mozilla.cfg, policies.json)."""
        return any(self.wants(k) for k in PREFS_KINDS)

    def _autoconfig_incoming(self) -> list[IncomingServer]:
        """The incoming servers config-v1.1.xml lists, in order (see autoconfig_values)."""
        spec = self.spec
        plain_ok = spec.targets.thunderbird.autoconfig_plain_fallbacks
        return [spec.incoming, *([spec.imap_alternative] if spec.imap_alternative else []),
                *(s for s in spec.fallbacks.incoming if plain_ok or s.security != "none")]

    def _plain_fallbacks(self) -> list[Server]:
        fallbacks = self.spec.fallbacks
        return [s for s in [*fallbacks.incoming, *fallbacks.outgoing] if s.security == "none"]

    def _policy_unsafe_prefs(self) -> list[str]:
        """Int prefs valued 0 or 1: the Preferences policy stores them as booleans (Policies.sys.mjs, bug
        1666836 workaround) unless the pref already exists as an int, which account prefs never do."""
        return [p.name for s in self._sample_sections() for p in s.prefs
                if type(p.value) is int and p.value in (0, 1) and not p.name.startswith("security.")]

    def _sample_sections(self) -> list[Section]:
        sample = Mailbox(index=0, name="x", email="x@" + self.spec.provider.domains[0], local="x",
                         domain=self.spec.provider.domains[0], username="x", smtp_username="x", description=None,
                         position=self.ctx.loaded.where())
        return self.sections(sample)

    def _values(self, sections: list[Section], email: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """What user.js, mozilla.cfg and policies.json lay out, as plain data, in one pass over the prefs: pref
        names, titles and functions are part of the shape (Fixed), values are slots.

        mozilla.cfg: defaultPref is a default the user may change; lockPref is what targets.thunderbird.enforce
        names (FORMATS §2). policies.json: `Preferences` takes mail.* prefs ({"Value", "Status"}), but refuses
        security.* prefs other than a short list, so the TLS minimum goes through `SSLVersionMin` (which always
        locks it); int prefs valued 0 or 1 are left out (_policy_unsafe_prefs)."""
        if self._constants is None:
            self._constants = (frozenset(self._policy_unsafe_prefs()),  # from a sample account's sections
                               frozenset(self.spec.targets.thunderbird.enforce), Fixed(self.spec.provider.display_name))
        unsafe, enforce, provider = self._constants
        user_sections, cfg_sections = [], []
        prefs: dict[str, Any] = {}
        for section in sections:
            title = Fixed(section.title)
            user_prefs, calls = [], []
            for name, value, group in section.prefs:
                fixed = Fixed(name)
                locked = group in enforce
                user_prefs.append({"name": fixed, "value": value})
                calls.append({"function": _LOCK if locked else _DEFAULT, "name": fixed, "value": value})
                if not (name in unsafe or name.startswith("security.")):
                    prefs[name] = {"Value": value, "Status": "locked" if locked else "default"}
            user_sections.append({"title": title, "prefs": user_prefs})
            cfg_sections.append({"title": title, "calls": calls})
        return ({"sections": user_sections, "provider": provider, "email": email},
                {"sections": cfg_sections, "provider": provider, "email": email},
                {"policies": {"Preferences": prefs, "SSLVersionMin": TLS_MIN_POLICY[self.spec.tls_min]}})

    # ---- per domain --------------------------------------------------------------------------------------
    def render_shared(self) -> list[OutputFile]:
        spec = self.spec
        if not self.wants("autoconfig-xml"):
            return []
        for server in self._autoconfig_incoming():
            if server.authentication == "none":
                raise BuildError("config-v1.1.xml: an incoming server with authentication: none makes "
                                 "Thunderbird reject the whole file; fix the spec (see the lint error)")
        env = self.ctx.environment(self.name, {"prefs_value": prefs_value, "prefs_string": prefs_string,
                                               "js_value": js_value, "json": _json, "xml": xml_escape})
        expected = self.autoconfig_values()
        files = []
        for domain in spec.provider.domains:
            path = f"domains/{domain}/config-v1.1.xml"
            text = render_template(env, "thunderbird/config-v1.1.xml.j2", expected)
            try:
                actual = parse_autoconfig(text.encode("utf-8"))
            except (SafeET.ParseError, ValueError) as exc:
                raise VerificationError(path, [f"not valid autoconfig XML: {exc}"]) from None
            prove(path, expected, actual)
            files.append(OutputFile(path, text.encode("utf-8"), self.name, "autoconfig-xml", None))
        return files

    def autoconfig_values(self) -> dict[str, Any]:
        """The autoconfig document as plain values: placeholders, not per-user values (it serves a domain)."""
        spec = self.spec
        provider = spec.provider

        def server(s: Server, user: str) -> dict[str, Any]:
            values: dict[str, Any] = {"hostname": bare_host(s.host), "port": s.port,
                                      "socketType": XML_SOCKET[s.security], "username": user,
                                      "authentication": XML_AUTH[s.authentication]}
            if isinstance(s, IncomingServer):
                values["type"] = s.protocol
                if s.protocol == "pop3":
                    values["pop3"] = {"leaveMessagesOnServer": "true" if s.keep_on_server else "false"}
                    if s.keep_days is not None:
                        values["pop3"]["daysToLeaveMessagesOnServer"] = str(s.keep_days)
            return values

        # Plain-text fallbacks make Thunderbird for Android reject the whole file (thunderbird_android.py), so
        # they are listed only on request; the IMAP alternative follows the primary (desktop keeps it first).
        plain_ok = spec.targets.thunderbird.autoconfig_plain_fallbacks
        incoming = self._autoconfig_incoming()
        outgoing = [spec.outgoing, *(s for s in spec.fallbacks.outgoing if plain_ok or s.security != "none")]

        doc: dict[str, Any] = {
            "id": provider.id,
            "domains": list(provider.domains),
            "displayName": provider.display_name,
            "displayShortName": provider.short_name or provider.display_name,
            "incoming": [server(s, user_template(spec, s)) for s in incoming],
            "outgoing": [server(s, user_template(spec, s)) for s in outgoing],
        }
        if provider.documentation_url is not None:
            doc["documentation"] = {"url": provider.documentation_url,
                                    "descr": f"{provider.display_name}: configuration"}
        return doc

    # ---- helpers -----------------------------------------------------------------------------------------
    def _read(self, path: str, reader: Any) -> Any:
        try:
            return reader()
        except (PrefsSyntaxError, UnicodeDecodeError) as exc:
            raise VerificationError(path, [str(exc)]) from None

    def _file(self, path: str, text: str, kind: str, account: str) -> OutputFile:
        if "\r" in text:
            raise VerificationError(path, ["contains a carriage return; outputs use LF line endings"])
        return OutputFile(path, text.encode("utf-8"), self.name, kind, account)


def _user_js_differences(value: dict[str, Any], text: str) -> list[str]:
    expected = {p["name"]: p["value"] for s in value["sections"] for p in s["prefs"]}
    try:
        return differences(expected, as_dict(read_prefs(text, ("user_pref",))))
    except (PrefsSyntaxError, UnicodeDecodeError) as exc:
        return [str(exc)]


def _cfg_differences(value: dict[str, Any], text: str) -> list[str]:
    """Every pref read back from mozilla.cfg with its value, each set by the function asked for."""
    calls = [c for s in value["sections"] for c in s["calls"]]
    try:
        found = read_cfg(text)
        values = as_dict(found)
    except (PrefsSyntaxError, UnicodeDecodeError) as exc:
        return [str(exc)]
    return (differences({c["name"]: c["value"] for c in calls}, values)
            or differences({c["name"]: str(c["function"]) for c in calls}, {c.name: c.function for c in found}))


def _json_differences(value: Any, text: str) -> list[str]:
    try:
        return differences(value, json.loads(text))
    except json.JSONDecodeError as exc:
        return [f"not JSON: {exc}"]


def _json(value: Any) -> str:
    return _pretty(value) + "\n"


def _pretty(value: Any, depth: int = 0) -> str:
    """JSON with nested objects indented and innermost objects on one line (one pref per line). The leaves go
    through json's C encoder: json.dumps(indent=2) falls back to pure Python and was a tenth of the target's
    time."""
    if isinstance(value, dict) and any(isinstance(v, dict | list) for v in value.values()):
        pad = "  " * (depth + 1)
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_pretty(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
    return _LEAF.encode(value)


# Built once: json.dumps makes one per call.
_LEAF: json.JSONEncoder = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))


def _text(parent: Any, tag: str) -> str:
    child = parent.find(tag)
    if child is None:
        raise ValueError(f"<{parent.tag}> has no <{tag}>")
    return str(child.text or "")


def _host_name(what: str, value: str) -> None:
    if not legal_host(value):
        raise ValueError(f"{what} {value!r} is not a host name or IP address Thunderbird accepts")


# Every element config-v1.1.xml may hold, by parent: what the template writes, no more. Thunderbird's reader
# (readFromXML.sys.mjs, 140) also takes <password> in a server, <inputField>, <useGlobalPreferredServer>,
# owa/ews/eas URLs, and a repeated element as a list of which it uses the first value it accepts, where the
# proof would read only the first: an element the spec does not make, or a second copy, would reach every
# Thunderbird unproven. (None: any number; otherwise at most once.)
_AUTOCONFIG_CHILDREN: dict[str, dict[str, int | None]] = {
    "clientConfig": {"emailProvider": None},
    "emailProvider": {"domain": None, "displayName": 1, "displayShortName": 1, "incomingServer": None,
                      "outgoingServer": None, "documentation": 1},
    "incomingServer": {"hostname": 1, "port": 1, "socketType": 1, "username": 1, "authentication": 1, "pop3": 1},
    "outgoingServer": {"hostname": 1, "port": 1, "socketType": 1, "username": 1, "authentication": 1},
    "pop3": {"leaveMessagesOnServer": 1, "daysToLeaveMessagesOnServer": 1, "downloadOnBiff": 1},
    "documentation": {"descr": 1},
}


def _check_autoconfig_elements(element: Any) -> None:
    allowed = _AUTOCONFIG_CHILDREN.get(element.tag, {})
    seen: set[str] = set()
    for child in element:
        if not isinstance(child.tag, str):  # a comment or processing instruction (not kept by the parser)
            continue
        if child.tag not in allowed:
            raise ValueError(f"<{element.tag}> holds <{child.tag}>, which the spec does not make")
        if allowed[child.tag] == 1 and child.tag in seen:
            raise ValueError(f"<{element.tag}> holds <{child.tag}> twice")
        seen.add(child.tag)
        _check_autoconfig_elements(child)


def parse_autoconfig(data: bytes) -> dict[str, Any]:
    """Read a config-v1.1.xml back into the shape of `autoconfig_values` (defusedxml: no entities, no DTDs)."""
    root = SafeET.fromstring(data)
    if root.tag != "clientConfig" or root.get("version") != "1.1":
        raise ValueError("root must be <clientConfig version=\"1.1\">")
    _check_autoconfig_elements(root)
    providers = root.findall("emailProvider")
    if len(providers) != 1:
        raise ValueError("expected exactly one <emailProvider>")
    p = providers[0]

    def server(el: Any, incoming: bool) -> dict[str, Any]:
        values: dict[str, Any] = {tag: _text(el, tag) for tag in ("hostname", "socketType", "username",
                                                                 "authentication")}
        _host_name("hostname", values["hostname"])
        port = _text(el, "port")
        if not port.isdigit():
            raise ValueError(f"port {port!r} is not a number")
        values["port"] = int(port)
        if incoming:
            values["type"] = el.get("type")
            pop3 = el.find("pop3")
            if pop3 is not None:
                values["pop3"] = {child.tag: child.text or "" for child in pop3}
        elif el.get("type") != "smtp":
            raise ValueError("<outgoingServer> must have type=\"smtp\"")
        return values

    # Both Thunderbirds read these as host names and reject the whole file for one they refuse.
    _host_name("emailProvider id", p.get("id") or "")
    for domain in p.findall("domain"):
        _host_name("domain", domain.text or "")
    doc: dict[str, Any] = {
        "id": p.get("id"),
        "domains": [d.text or "" for d in p.findall("domain")],
        "displayName": _text(p, "displayName"),
        "displayShortName": _text(p, "displayShortName"),
        "incoming": [server(el, True) for el in p.findall("incomingServer")],
        "outgoing": [server(el, False) for el in p.findall("outgoingServer")],
    }
    documentation = p.find("documentation")
    if documentation is not None:
        doc["documentation"] = {"url": documentation.get("url"), "descr": _text(documentation, "descr")}
    return doc
