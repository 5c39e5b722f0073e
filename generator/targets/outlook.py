"""Outlook for Windows (registry 16.0): a PRF per account, a .reg that makes Outlook import it, and the
Autodiscover (POX) answer Outlook's automatic setup reads.

Facts: FORMATS.md §4-5. A .reg alone cannot create a POP3/IMAP account (the account key needs a PST service,
store entry IDs and DPAPI-encrypted passwords only Windows can make), so the route is PRF + `ImportPRF`.
Every file is rendered from templates/outlook/, parsed back (generator.regfile, generator.prf, defusedxml,
json) and compared value by value with what the spec asks for before the build may write it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cached_property
from typing import Any, NamedTuple

import defusedxml.ElementTree
from defusedxml import DefusedXmlException

from generator.accounts import Mailbox, login
from generator.errors import BuildError, Problem, VerificationError
from generator.model import (
    IncomingServer,
    OutgoingServer,
    OutlookSettings,
    Security,
    Server,
    bare_host,
)
from generator.prf import PrfFormatError, encode_prf, prf_long, prf_value, read_sections, typed_account
from generator.regfile import (
    DELETE,
    REG_DWORD,
    REG_EXPAND_SZ,
    REG_SZ,
    RegData,
    RegFormatError,
    encode_reg,
    parse_reg,
    reg_dword,
    reg_expand_sz,
    reg_string,
)
from generator.render import differences, prove, render_template, xml_escape
from generator.stencil import (
    INI_SPECIALS,
    XML_SPECIALS,
    Context,
    Fixed,
    Format,
    Stencils,
    line_carriable,
    record,
    xml_carriable,
)
from generator.targets.base import OutputFile, Target

OUTLOOK_KINDS = ("prf", "reg", "autodiscover-xml")  # the per-account files, laid out from OutlookStrings
OUTLOOK_KEY = r"HKEY_CURRENT_USER\Software\Microsoft\Office\16.0\Outlook"
SETUP_KEY = OUTLOOK_KEY + r"\Setup"

# --- PRF vocabulary (FORMATS.md §4; property ids as in Microsoft's stock outlk.prf) -----------------------
# protocol -> (mapping section named by [Internet Account List], AccountType, key prefix)
PRF_ACCOUNT = {"pop3": ("I_Mail", "POP3", "POP3"), "imap": ("IMAP_I_Mail", "IMAP", "IMAP")}
# POP3UseSSL / IMAPUseSSL / SMTPUseSSL are yes/no: a PRF cannot say STARTTLS for incoming mail (lint warns).
PRF_USE_SSL: dict[Security, int] = {"ssl": 1, "starttls": 0, "none": 0}
# PROP_SMTP_SECURE_CONNECTION (0x020A): 0 none, 1 SSL, 2 STARTTLS. The only way to say SMTP STARTTLS in a
# PRF; it follows the format but is untested on a real Outlook (FORMATS.md §4), so lint warns when used.
PRF_SMTP_SECURE: dict[Security, int] = {"ssl": 1, "starttls": 2, "none": 0}
# SMTPAuthMethod: 0 = same user/password as incoming, 1 = its own user/password.
PRF_SMTP_AUTH_SAME, PRF_SMTP_AUTH_OWN = 0, 1
# LeaveOnServer bits: 0x1 leave a copy, 0x2 remove after N days, N in the high 16 bits (14 days = 0x000E0003).
LEAVE_COPY, LEAVE_REMOVE_AFTER_DAYS = 0x1, 0x2

_COMMON_MAPPING = [("AccountName", "PT_UNICODE,0x0002"), ("DisplayName", "PT_UNICODE,0x000B"),
                   ("EmailAddress", "PT_UNICODE,0x000C")]
_SMTP_MAPPING = [("SMTPServer", "PT_UNICODE,0x0200"), ("SMTPPort", "PT_LONG,0x0201"),
                 ("SMTPUseSSL", "PT_LONG,0x0202"), ("SMTPSecureConnection", "PT_LONG,0x020A"),
                 ("SMTPUseAuth", "PT_LONG,0x0203"), ("SMTPAuthMethod", "PT_LONG,0x0208"),
                 ("SMTPUserName", "PT_UNICODE,0x0204"), ("SMTPUseSPA", "PT_LONG,0x0207")]
_EXTRA_MAPPING = {"pop3": [("LeaveOnServer", "PT_LONG,0x1000")], "imap": [("RootFolder", "PT_UNICODE,0x1101")]}


def prf_mapping(protocol: str) -> list[tuple[str, str]]:
    """The mapping section: without an entry here Outlook silently ignores the [Account1] key."""
    prefix = PRF_ACCOUNT[protocol][2]
    incoming = [(f"{prefix}Server", "PT_UNICODE,0x0100"), (f"{prefix}UserName", "PT_UNICODE,0x0101"),
                (f"{prefix}Port", "PT_LONG,0x0104"), (f"{prefix}UseSSL", "PT_LONG,0x0105"),
                (f"{prefix}UseSPA", "PT_LONG,0x0108")]
    return _COMMON_MAPPING + incoming + _EXTRA_MAPPING[protocol] + _SMTP_MAPPING


PRF_GENERAL = {"Custom": "1", "DefaultProfile": "Yes", "OverwriteProfile": "Append",
               "ModifyDefaultProfileIfPresent": "TRUE", "BackupProfile": "No"}

# --- Autodiscover POX vocabulary (FORMATS.md §4) -----------------------------------------------------------
AD_RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
AD_OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
AD_TYPE = {"pop3": "POP3", "imap": "IMAP", "smtp": "SMTP"}  # never "POP" (FORMATS.md §6)
# SSL defaults to on when absent and Encryption overrides it: write both, always.
AD_SSL: dict[Security, str] = {"ssl": "on", "starttls": "on", "none": "off"}
AD_ENCRYPTION: dict[Security, str] = {"ssl": "SSL", "starttls": "TLS", "none": "None"}

# Windows refuses these in a file name; the PRF is deployed as <address>.prf.
_WINDOWS_BAD_NAME = re.compile(r'[\\/:*?"<>|]')


def _on_off(value: bool) -> str:
    return "on" if value else "off"


def _json_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _prf_plain(value: str) -> bool:
    """A PRF value written as it is: prf_value quotes one with outer spaces or outer quotes as a whole (not
    character by character), so such a value takes the full path."""
    return line_carriable(value) and prf_value(value) == value


# Where a per-account string sits (FORMATS.md §4-5): a PRF value after `=`, a quoted .reg string, XML text.
PRF = Format("prf", (Context("PRF value", lambda s: s, _prf_plain),), INI_SPECIALS)
REG = Format("reg", (Context(".reg string", lambda s: reg_string(s)[1:-1], line_carriable),), INI_SPECIALS)
AUTODISCOVER = Format("autodiscover.xml", (Context("XML text", xml_escape, xml_carriable),), XML_SPECIALS)


FILTERS: dict[str, Callable[..., str]] = {
    "prf": prf_value, "reg_string": reg_string, "reg_dword": reg_dword, "reg_expand_sz": reg_expand_sz,
    "xml": xml_escape, "json_string": _json_string}


def leave_on_server(server: IncomingServer) -> int:
    if not server.keep_on_server:
        return 0
    if server.keep_days is None:
        return LEAVE_COPY
    return (server.keep_days << 16) | LEAVE_REMOVE_AFTER_DAYS | LEAVE_COPY


def prf_path(settings: OutlookSettings, email: str) -> str:
    """Absolute Windows path of the deployed PRF: ImportPRF is not %VAR%-expanded (FORMATS.md §4)."""
    return settings.prf_dir.rstrip("\\") + "\\" + email + ".prf"


class _Protocol(NamedTuple):
    """One <Protocol> of the autodiscover answer, already in Outlook's vocabulary (a named tuple: four are
    made per account, at half the cost of a frozen dataclass)."""

    type: str
    server: str
    port: int
    login_name: str
    ssl: str
    encryption: str
    spa: str
    auth_required: str
    use_pop_auth: str | None  # SMTP only

    def expected(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Type": self.type, "Server": self.server, "Port": self.port,
                               "LoginName": self.login_name, "DomainRequired": "off", "SPA": self.spa,
                               "SSL": self.ssl, "Encryption": self.encryption, "AuthRequired": self.auth_required}
        if self.use_pop_auth is not None:
            out["UsePOPAuth"] = self.use_pop_auth
        return out


@record
class OutlookStrings(NamedTuple):
    """What an account's Outlook files take from the account, worked out: the server names with its domain
    filled in, the user names, the PRF's path for ImportPRF. The values below are built from these by moving
    them, branching only on the spec and on whether the description is given, so they are the source of the
    three files' family (docs/verification.md, "One check for several files")."""

    description: str | None
    name: str
    email: str
    incoming_host: str
    username: str
    outgoing_host: str
    smtp_username: str
    import_prf: str
    servers: tuple[tuple[str, str], ...]  # per autodiscover <Protocol>: (server name, login name)


class OutlookTarget(Target):
    name = "outlook"
    _stencils: dict[str, Stencils] | None = None
    _prf_layout: dict[str, Any] | None = None  # the PRF value's parts that are the same for every account

    @property
    def settings(self) -> OutlookSettings:
        return self.spec.targets.outlook

    # --- lint -------------------------------------------------------------------------------------------
    def lint(self) -> list[Problem]:
        spec, where = self.spec, self.ctx.loaded.where
        out: list[Problem] = []
        incoming, outgoing = spec.incoming, spec.outgoing
        prefix = PRF_ACCOUNT[incoming.protocol][2]
        # Each problem is about some kinds of file; a --kinds build (and serve, which answers only with
        # autodiscover files) is told only about the ones it writes, as the Thunderbird target does.
        prf, reg, xml = self.wants("prf"), self.wants("reg"), self.wants("autodiscover-xml")
        if prf and incoming.security == "starttls":
            implicit = 995 if incoming.protocol == "pop3" else 993
            out.append(Problem(
                where("incoming", "security"),
                f"Outlook's PRF has only SSL on/off for {prefix}: STARTTLS cannot be expressed, so the PRF "
                f"writes {prefix}UseSSL=0 and Outlook would log in without encryption",
                f"for Outlook use the implicit-TLS port ({implicit}) with security: ssl, or set the "
                "encryption in Outlook after import; autodiscover.xml does carry STARTTLS", severity="warning"))
        if prf and outgoing.security == "starttls":
            out.append(Problem(
                where("outgoing", "security"),
                "SMTP STARTTLS is written as SMTPSecureConnection=2 (PROP_SMTP_SECURE_CONNECTION 0x020A), a PRF "
                "mapping that follows the format but is untested on a real Outlook",
                "check the outgoing encryption in Outlook after the first start, or use port 465 with "
                "security: ssl", severity="warning"))
        if (prf or reg or xml) and "tls_min" in self.ctx.loaded.document.data:
            out.append(Problem(
                where("tls_min"),
                f"Outlook has no setting for the minimum TLS version (tls_min {spec.tls_min}): Windows decides",
                "enforce it with Windows' SChannel policy (GPO), not with these files", severity="warning"))
        count = len(spec.fallbacks.incoming) + len(spec.fallbacks.outgoing)
        if prf and count:
            out.append(Problem(
                where("fallbacks"),
                f"a PRF carries one incoming and one outgoing server: the {count} fallback server(s) appear only "
                "in autodiscover.xml", "nothing to do if the primary servers are what Outlook should use",
                severity="warning"))
        if (prf or reg) and incoming.protocol == "imap":
            out.append(Problem(
                where("incoming", "protocol"),
                "IMAP accounts imported from a PRF are reported not to work on current Microsoft 365 builds "
                "(unverified)", "test on your Outlook build; Outlook's automatic setup with autodiscover.xml "
                "is the alternative", severity="warning"))
        for name, server in self._named_servers() if prf or xml else []:
            if server.authentication in ("encrypted-password", "gssapi", "oauth2"):
                out.append(Problem(
                    where(*name, "authentication"),
                    f"Outlook's PRF and autodiscover have no setting for authentication: {server.authentication}; "
                    "Outlook will send the password (SPA off)",
                    "use authentication: password over TLS for Outlook, or ntlm for SPA", severity="warning"))
        if reg and "%" in self.settings.prf_dir:
            out.append(Problem(
                where("targets", "outlook", "prf_dir"),
                f"prf_dir {self.settings.prf_dir} holds a %VARIABLE%: ImportPRF is a plain string (REG_SZ) "
                "that Outlook is not known to expand, so the import would look for that folder literally",
                "use a fixed folder every user can read, such as C:\\ProgramData\\mailprofile",
                severity="warning"))
        if (prf or reg or xml) and spec.passwords.include:
            out.append(Problem(
                where("passwords", "include"),
                "Outlook files never carry a password: Outlook asks for it at the first start",
                "nothing to do; tell users to expect the prompt", severity="warning"))
        return out

    def _named_servers(self) -> list[tuple[tuple[str | int, ...], Server]]:
        spec = self.spec
        named: list[tuple[tuple[str | int, ...], Server]] = [(("incoming",), spec.incoming),
                                                              (("outgoing",), spec.outgoing)]
        named += [(("fallbacks", "incoming", i), s) for i, s in enumerate(spec.fallbacks.incoming)]
        named += [(("fallbacks", "outgoing", i), s) for i, s in enumerate(spec.fallbacks.outgoing)]
        return named

    # --- values -----------------------------------------------------------------------------------------
    @cached_property
    def _servers(self) -> list[Server]:
        """Primary incoming, primary SMTP, then the fallbacks in spec order (FORMATS.md §4): one autodiscover
        <Protocol> each."""
        return [server for _, server in self._named_servers()]

    def account_strings(self, mailbox: Mailbox) -> OutlookStrings:
        spec = self.spec
        return OutlookStrings(
            mailbox.description, mailbox.name, mailbox.email, mailbox.host(spec.incoming), mailbox.username,
            mailbox.host(spec.outgoing), mailbox.smtp_username, prf_path(self.settings, mailbox.slug),
            tuple((bare_host(mailbox.host(s)), login(spec, mailbox, s)) for s in self._servers))

    def prf_account(self, account: OutlookStrings) -> dict[str, str | int]:
        """[Account1] as Outlook should read it back (typed by the mapping section)."""
        incoming, outgoing = self.spec.incoming, self.spec.outgoing
        prefix = PRF_ACCOUNT[incoming.protocol][2]
        values: dict[str, str | int] = {
            "UniqueService": "No", "AccountName": account.description or account.email,
            "DisplayName": account.name, "EmailAddress": account.email,
            f"{prefix}Server": account.incoming_host, f"{prefix}UserName": account.username,
            f"{prefix}Port": incoming.port, f"{prefix}UseSSL": PRF_USE_SSL[incoming.security],
            f"{prefix}UseSPA": int(incoming.authentication == "ntlm"),
            "SMTPServer": account.outgoing_host, "SMTPPort": outgoing.port,
            "SMTPUseSSL": PRF_USE_SSL[outgoing.security], "SMTPSecureConnection": PRF_SMTP_SECURE[outgoing.security],
            "SMTPUseSPA": int(outgoing.authentication == "ntlm"),
            "SMTPUseAuth": int(outgoing.authentication != "none"),
        }
        if incoming.protocol == "pop3":
            values["LeaveOnServer"] = leave_on_server(incoming)
        elif incoming.imap_path_prefix is not None:
            values["RootFolder"] = incoming.imap_path_prefix
        if outgoing.authentication != "none":
            values["SMTPAuthMethod"] = PRF_SMTP_AUTH_SAME if outgoing.same_credentials else PRF_SMTP_AUTH_OWN
            if not outgoing.same_credentials:
                values["SMTPUserName"] = account.smtp_username
        return values

    def expected_prf(self, account: OutlookStrings) -> dict[str, Any]:
        protocol = self.spec.incoming.protocol
        section, account_type, _ = PRF_ACCOUNT[protocol]
        return {
            "sections": sorted(["General", "Internet Account List", "Account1", section]),
            "General": {**PRF_GENERAL, "ProfileName": self.settings.profile_name},
            "Internet Account List": {"Account1": section},
            "Account1": self.prf_account(account),
            section: {"AccountType": account_type, **dict(prf_mapping(protocol))},
        }

    def expected_reg(self, account: OutlookStrings) -> dict[str, dict[str, tuple[str, RegData]]]:
        setup: dict[str, tuple[str, RegData]] = {
            "ImportPRF": (REG_SZ, account.import_prf),
            "First-Run": (DELETE, None), "FirstRun": (DELETE, None)}
        if self.settings.disable_simplified_account_creation:
            setup["DisableOffice365SimplifiedAccountCreation"] = (REG_DWORD, 1)
        out: dict[str, dict[str, tuple[str, RegData]]] = {}
        if self.settings.force_pst_path is not None:
            out[OUTLOOK_KEY] = {"ForcePSTPath": (REG_EXPAND_SZ, self.settings.force_pst_path)}
        out[SETUP_KEY] = setup
        return out

    def protocols(self, account: OutlookStrings) -> list[_Protocol]:
        """The autodiscover <Protocol>s, one per server of _servers."""
        out = []
        for server, (host, login_name) in zip(self._servers, account.servers, strict=True):
            kind = server.protocol if isinstance(server, IncomingServer) else "smtp"
            out.append(_Protocol(
                type=AD_TYPE[kind], server=host, port=server.port, login_name=login_name,
                ssl=AD_SSL[server.security], encryption=AD_ENCRYPTION[server.security],
                spa=_on_off(server.authentication == "ntlm"), auth_required=_on_off(server.authentication != "none"),
                use_pop_auth=_on_off(server.same_credentials) if isinstance(server, OutgoingServer) else None))
        return out

    def expected_autodiscover(self, account: OutlookStrings) -> dict[str, Any]:
        return {"DisplayName": account.name, "AccountType": "email", "Action": "settings",
                "Protocol": [p.expected() for p in self.protocols(account)]}

    def _values(self, account: OutlookStrings) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """What the PRF, the .reg and autodiscover.xml lay out, as plain data: Outlook's vocabulary words and
        the spec's settings are part of the shape (Fixed), the account's strings are slots."""
        protocol = self.spec.incoming.protocol
        section, account_type, prefix = PRF_ACCOUNT[protocol]
        prf_account = self.prf_account(account)
        leave = prf_account.get("LeaveOnServer")
        if self._prf_layout is None:  # the same for every account of a build
            self._prf_layout = {
                "profile_name": Fixed(self.settings.profile_name), "section": Fixed(section),
                "account_type": Fixed(account_type), "prefix": Fixed(prefix),
                "mapping": tuple((Fixed(k), Fixed(v)) for k, v in prf_mapping(protocol))}  # shared: immutable
        prf = {**self._prf_layout, "account": prf_account,
               "leave_on_server": Fixed(prf_long(leave)) if isinstance(leave, int) else None}
        force = self.settings.force_pst_path
        reg = {"outlook_key": Fixed(OUTLOOK_KEY), "setup_key": Fixed(SETUP_KEY), "import_prf": account.import_prf,
               "force_pst_path": Fixed(force) if force is not None else None,
               "disable_simplified": self.settings.disable_simplified_account_creation}
        autodiscover = {"display_name": account.name,
                        "protocols": [_protocol_value(p) for p in self.protocols(account)]}
        return prf, reg, autodiscover

    # --- render -----------------------------------------------------------------------------------------
    def render_account(self, mailbox: Mailbox) -> list[OutputFile]:
        if _WINDOWS_BAD_NAME.search(mailbox.email):
            raise BuildError(f"{mailbox.position}: '{mailbox.email}' contains a character Windows refuses in a "
                             "file name, so its PRF cannot be deployed as <address>.prf")
        env = self.ctx.environment(self.name, FILTERS)
        base = f"{mailbox.slug}/outlook"
        account = self.account_strings(mailbox)
        texts = self.family_texts(env, OUTLOOK_KINDS, self._values, account)
        # The files' values, for a file the family did not fill (the full path renders and proves it).
        values = self._values(account) if None in texts.values() else ({}, {}, {})
        files = []
        if self.wants("prf"):
            text = texts.get("prf")
            prf = self._file(f"{base}/{mailbox.slug}.prf",
                             _encode(encode_prf, text or _render(env, "prf", values[0]), "prf"), "prf", mailbox)
            if text is None:
                self._verify_prf(prf, self.expected_prf(account))
            files.append(prf)
        if self.wants("reg"):
            text = texts.get("reg")
            reg = self._file(f"{base}/import-prf.reg", _encode(encode_reg, text or _render(env, "reg", values[1]),
                                                               "reg"), "reg", mailbox)
            if text is None:
                self._verify_reg(reg, self.expected_reg(account))
            files.append(reg)
        if self.wants("autodiscover-xml"):
            text = texts.get("autodiscover-xml")
            xml = self._file(f"{base}/autodiscover.xml", (text or _render(env, "autodiscover-xml", values[2]))
                             .encode("utf-8"), "autodiscover-xml", mailbox)
            if text is None:
                self._verify_autodiscover(xml, self.expected_autodiscover(account))
            files.append(xml)
        return files

    def stencils_for(self, env: Any) -> dict[str, Stencils] | None:
        """The stencils of the PRF, the .reg and autodiscover.xml (None: every file takes the full path)."""
        if not self.ctx.stencils_allowed:
            return None
        if self._stencils is None:
            self._stencils = {
                "prf": Stencils(PRF, lambda v: _render(env, "prf", v), _prf_differences),
                "reg": Stencils(REG, lambda v: _render(env, "reg", v), _reg_differences),
                "autodiscover-xml": Stencils(AUTODISCOVER, lambda v: _render(env, "autodiscover-xml", v),
                                             _autodiscover_differences),
            }
        return self._stencils

    def render_shared(self) -> list[OutputFile]:
        """Per domain: the answer Microsoft 365 builds ask for before the POX request (FORMATS.md §4)."""
        if not self.wants("autodiscover-json"):
            return []
        env = self.ctx.environment(self.name, FILTERS)
        out = []
        for domain in self.spec.provider.domains:
            url = f"https://autodiscover.{domain}/autodiscover/autodiscover.xml"
            text = render_template(env, "outlook/autodiscover.json.j2", {"url": url})
            path = f"domains/{domain}/autodiscover.json"
            try:
                actual = json.loads(text)
            except ValueError as exc:
                raise VerificationError(path, [f"not valid JSON: {exc}"]) from None
            prove(path, {"Protocol": "AutodiscoverV1", "Url": url}, actual)
            out.append(OutputFile(path=path, data=text.encode("utf-8"), target=self.name,
                                  kind="autodiscover-json", account=None))
        return out

    def _file(self, path: str, data: bytes, kind: str, mailbox: Mailbox) -> OutputFile:
        return OutputFile(path=path, data=data, target=self.name, kind=kind, account=mailbox.email)

    # --- verify -----------------------------------------------------------------------------------------
    @staticmethod
    def _verify_prf(file: OutputFile, expected: dict[str, Any]) -> None:
        mismatches = _prf_mismatches(file.data, expected)
        if mismatches:
            raise VerificationError(file.path, mismatches)

    @staticmethod
    def _verify_reg(file: OutputFile, expected: dict[str, dict[str, tuple[str, RegData]]]) -> None:
        try:
            actual = parse_reg(file.data)
        except RegFormatError as exc:
            raise VerificationError(file.path, [str(exc)]) from None
        prove(file.path, expected, actual)

    @staticmethod
    def _verify_autodiscover(file: OutputFile, expected: dict[str, Any]) -> None:
        try:
            actual = read_autodiscover(file.data)
        except (ValueError, SyntaxError, DefusedXmlException) as exc:
            raise VerificationError(file.path, [f"not a valid autodiscover answer: {exc}"]) from None
        prove(file.path, expected, actual)


TEMPLATES = {"prf": "outlook/account.prf.j2", "reg": "outlook/import-prf.reg.j2",
             "autodiscover-xml": "outlook/autodiscover.xml.j2"}


def _render(env: Any, kind: str, value: dict[str, Any]) -> str:
    return render_template(env, TEMPLATES[kind], value)


def _protocol_value(p: _Protocol) -> dict[str, Any]:
    """A <Protocol> as plain data: the vocabulary words are part of the shape, server and login are slots."""
    return {"type": Fixed(p.type), "server": p.server, "port": p.port, "login_name": p.login_name,
            "spa": Fixed(p.spa), "ssl": Fixed(p.ssl), "encryption": Fixed(p.encryption),
            "auth_required": Fixed(p.auth_required),
            "use_pop_auth": Fixed(p.use_pop_auth) if p.use_pop_auth is not None else None}


def _prf_differences(value: dict[str, Any], text: str) -> list[str]:
    """The full path's PRF proof (see _verify_prf and expected_prf), for a value laid out by the stencil."""
    section = str(value["section"])
    expected = {
        "sections": sorted(["General", "Internet Account List", "Account1", section]),
        "General": {**PRF_GENERAL, "ProfileName": str(value["profile_name"])},
        "Internet Account List": {"Account1": section},
        "Account1": value["account"],
        section: {"AccountType": str(value["account_type"]), **{str(k): str(v) for k, v in value["mapping"]}},
    }
    return _prf_mismatches(encode_prf(text), expected)


def _prf_mismatches(data: bytes, expected: dict[str, Any]) -> list[str]:
    """Read a PRF as Windows reads INI files and list where it differs from `expected` (the PRF proof)."""
    try:
        sections = read_sections(data)
        actual: dict[str, Any] = {"sections": sorted(sections)}
        for name in expected["sections"]:
            if name in sections:
                actual[name] = sections[name]
        if "Account1" in sections:
            actual["Account1"] = typed_account(sections, "Account1")
    except PrfFormatError as exc:
        return [str(exc)]
    return differences(expected, actual)


def _reg_differences(value: dict[str, Any], text: str) -> list[str]:
    """The full path's .reg proof (see expected_reg), for a value laid out by the stencil."""
    setup: dict[str, tuple[str, RegData]] = {"ImportPRF": (REG_SZ, value["import_prf"]), "First-Run": (DELETE, None),
                                             "FirstRun": (DELETE, None)}
    if value["disable_simplified"]:
        setup["DisableOffice365SimplifiedAccountCreation"] = (REG_DWORD, 1)
    expected: dict[str, dict[str, tuple[str, RegData]]] = {}
    if value["force_pst_path"] is not None:
        expected[OUTLOOK_KEY] = {"ForcePSTPath": (REG_EXPAND_SZ, str(value["force_pst_path"]))}
    expected[SETUP_KEY] = setup
    try:
        return differences(expected, parse_reg(encode_reg(text)))
    except RegFormatError as exc:
        return [str(exc)]


def _autodiscover_differences(value: dict[str, Any], text: str) -> list[str]:
    """The full path's autodiscover proof (see _Protocol.expected), for a value laid out by the stencil."""
    protocols = []
    for p in value["protocols"]:
        one: dict[str, Any] = {"Type": str(p["type"]), "Server": p["server"], "Port": p["port"],
                               "LoginName": p["login_name"], "DomainRequired": "off", "SPA": str(p["spa"]),
                               "SSL": str(p["ssl"]), "Encryption": str(p["encryption"]),
                               "AuthRequired": str(p["auth_required"])}
        if p["use_pop_auth"] is not None:
            one["UsePOPAuth"] = str(p["use_pop_auth"])
        protocols.append(one)
    expected = {"DisplayName": value["display_name"], "AccountType": "email", "Action": "settings",
                "Protocol": protocols}
    try:
        return differences(expected, read_autodiscover(text.encode("utf-8")))
    except (ValueError, SyntaxError, DefusedXmlException) as exc:
        return [f"not a valid autodiscover answer: {exc}"]


def _encode(encoder: Callable[[str], bytes], text: str, what: str) -> bytes:
    try:
        return encoder(text)
    except ValueError as exc:
        raise BuildError(f"the rendered {what} cannot be encoded: {exc}") from None


def read_autodiscover(data: bytes) -> dict[str, Any]:
    """A POX answer -> {DisplayName, AccountType, Action, Protocol: [{element: text}]}; ports as int.

    An element given twice where one is read (a second <Server> in a <Protocol>, a second <Account>) is
    refused: the last copy would be the one proven, and a client may well read the first."""
    root = defusedxml.ElementTree.fromstring(data, forbid_dtd=True)
    if root.tag != f"{{{AD_RESPONSE_NS}}}Autodiscover":
        raise ValueError(f"root element is {root.tag}, not Autodiscover in {AD_RESPONSE_NS}")
    responses = list(root)
    if len(responses) != 1 or responses[0].tag != f"{{{AD_OUTLOOK_NS}}}Response":
        raise ValueError(f"Autodiscover must hold exactly one Response in {AD_OUTLOOK_NS}")
    ns = f"{{{AD_OUTLOOK_NS}}}"
    out: dict[str, Any] = {}

    def put(into: dict[str, Any], key: str, value: Any) -> None:
        if key in into:
            raise ValueError(f"<{key}> given twice")
        into[key] = value

    for part in responses[0]:
        if part.tag == ns + "User":
            for child in part:
                put(out, child.tag.removeprefix(ns), child.text or "")
        elif part.tag == ns + "Account":
            protocols: list[dict[str, Any]] = []
            for child in part:
                name = child.tag.removeprefix(ns)
                if name != "Protocol":
                    put(out, name, child.text or "")
                    continue
                values: dict[str, Any] = {}
                for element in child:
                    key, text = element.tag.removeprefix(ns), element.text or ""
                    put(values, key, int(text) if key == "Port" and re.fullmatch(r"[0-9]{1,5}", text) else text)
                protocols.append(values)
            put(out, "Protocol", protocols)
        else:
            raise ValueError(f"unexpected element {part.tag} in Response")
    return out
