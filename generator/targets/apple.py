"""Apple configuration profile (.mobileconfig) with one com.apple.mail.managed payload per account.

Facts: FORMATS.md §1 and Apple's schema (generator/data/apple_schema.json). Every profile is rendered from
templates/apple/mobileconfig.xml.j2, parsed back with plistlib behind defusedxml, compared value by value with
`expected_profile()` and validated against Apple's schema before the build may write it.
"""

from __future__ import annotations

import io
import plistlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.parsers.expat import ExpatError, ParserCreate

from defusedxml import DefusedXmlException, EntitiesForbidden, ExternalReferenceForbidden

from generator.accounts import Mailbox
from generator.apple_schema import validate_profile
from generator.errors import Problem, VerificationError
from generator.model import Server
from generator.render import differences, render_template, xml_escape
from generator.signing import Signer, unsigned_content
from generator.stencil import XML_SPECIALS, Context, Format, Stencils, xml_carriable
from generator.targets.base import OutputFile, Target, stable_uuid
from generator.targets.mdm import CONSOLES, Console, console_value, neutral

# Apple's authentication vocabulary. GSSAPI and OAuth2 have no value in com.apple.mail.managed.
AUTH = {"password": "EmailAuthPassword", "encrypted-password": "EmailAuthCRAMMD5", "ntlm": "EmailAuthNTLM",
        "none": "EmailAuthNone"}
ACCOUNT_TYPE = {"pop3": "EmailTypePOP", "imap": "EmailTypeIMAP"}


def _plist_bool(value: bool) -> str:
    if not isinstance(value, bool):
        raise TypeError(f"plist_bool needs a boolean, got {value!r}")
    return "<true/>" if value else "<false/>"


def _plist_int(value: int) -> str:
    # A port written as <string> breaks installs (mailcow #2296): refuse anything but a real integer.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"plist_int needs an integer, got {value!r}")
    return f"<integer>{value}</integer>"


def _plist_string(value: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"plist_string needs a string, got {value!r}")
    return f"<string>{xml_escape(value)}</string>"


def _plist_date(value: datetime) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"plist_date needs a datetime, got {value!r}")
    return f"<date>{value.strftime('%Y-%m-%dT%H:%M:%SZ')}</date>"


def _plist_real(value: float) -> str:
    if not isinstance(value, float):
        raise TypeError(f"plist_real needs a float, got {value!r}")
    return f"<real>{value!r}</real>"


FILTERS: dict[str, Callable[..., str]] = {
    "plist_bool": _plist_bool, "plist_int": _plist_int, "plist_string": _plist_string, "plist_date": _plist_date,
    "plist_real": _plist_real}


# The XML plist grammar (Apple's PropertyList-1.0.dtd): <plist> holds one value; <dict> holds <key> value
# pairs; <array> holds values; the scalars hold text only, <true/> and <false/> nothing.
_CONTAINERS = frozenset({"plist", "dict", "array"})
_SCALARS = frozenset({"key", "string", "integer", "real", "date", "data", "true", "false"})
# What our filters write (plist_int, plist_real): plistlib's int() and float() also take '0x3E1', ' 993',
# '9_93', '+993', 'nan', which a profile's reader need not read as the same number.
_NUMBER_TEXT = {"integer": re.compile(r"-?[0-9]+"),
                "real": re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")}


class _GuardedPlistParser(plistlib._PlistParser):  # type: ignore[name-defined,misc]
    """plistlib's own XML plist parser, with defusedxml's guards installed on the expat parser it creates,
    held to the plist grammar.

    One pass instead of a defusedxml parse followed by plistlib's: parsing back is on the hot path of every
    build (measured: the separate guard pass cost a third of the Apple target's time).

    plistlib alone is lenient where a template could hide a value from the proof: a key given twice (the last
    wins), an element inside a <string> (the text before it is dropped: `<string>evil<b/>good</string>`
    reads 'good'), a second value after the root (it replaces the first), unknown elements and text between
    elements (ignored). Each of these is refused here, so what is proven is all the file says."""

    def parse(self, fileobj: Any) -> Any:
        self.parser = ParserCreate()
        self.parser.StartElementHandler = self.handle_begin_element
        self.parser.EndElementHandler = self.handle_end_element
        self.parser.CharacterDataHandler = self.handle_data
        self.parser.EntityDeclHandler = _forbid_entity
        self.parser.UnparsedEntityDeclHandler = _forbid_unparsed_entity
        self.parser.ExternalEntityRefHandler = _forbid_external
        self._open: list[str] = []
        self.parser.ParseFile(fileobj)
        return self.root

    def _refuse(self, what: str) -> ValueError:
        return ValueError(f"{what} at line {self.parser.CurrentLineNumber}")

    def handle_begin_element(self, element: str, attrs: Any) -> None:
        parent = self._open[-1] if self._open else None
        if element not in _CONTAINERS and element not in _SCALARS:
            raise self._refuse(f"<{element}> is not a plist element")
        if (parent is None) != (element == "plist"):
            raise self._refuse("<plist> must be the root element, and only it")
        if parent is not None and parent not in _CONTAINERS:
            raise self._refuse(f"<{element}> inside <{parent}>")
        if parent == "plist" and self.root is not None:
            raise self._refuse("a second value in <plist>")
        self._open.append(element)
        super().handle_begin_element(element, attrs)

    def handle_end_element(self, element: str) -> None:
        self._open.pop()
        pattern = _NUMBER_TEXT.get(element)
        if pattern is not None and not pattern.fullmatch("".join(self.data)):
            raise self._refuse(f"<{element}>{''.join(self.data)}</{element}> is not a number as plists write it")
        super().handle_end_element(element)

    def handle_data(self, data: str) -> None:
        if (not self._open or self._open[-1] not in _SCALARS or self._open[-1] in ("true", "false")) \
                and not data.isspace():
            raise self._refuse(f"text {data.strip()[:40]!r} outside a value")
        self.data.append(data)

    def end_key(self) -> None:
        if isinstance(self.stack[-1], dict) and "".join(self.data) in self.stack[-1]:
            raise self._refuse(f"key {''.join(self.data)!r} given twice")
        super().end_key()


def _forbid_entity(name: str, is_parameter: int, value: str | None, base: str | None, sysid: str | None,
                   pubid: str | None, notation: str | None) -> None:
    raise EntitiesForbidden(name, value, base, sysid, pubid, notation)


def _forbid_unparsed_entity(name: str, base: str | None, sysid: str | None, pubid: str | None,
                            notation: str | None) -> None:
    raise EntitiesForbidden(name, None, base, sysid, pubid, notation)


def _forbid_external(context: str, base: str | None, sysid: str | None, pubid: str | None) -> int:
    raise ExternalReferenceForbidden(context, base, sysid, pubid)


def _plist_differences(expected: Any, text: str) -> list[str]:
    """The full path's proof without Apple's schema (a shape's tokens are not valid identifiers)."""
    try:
        return differences(expected, parse_plist(text.encode("utf-8")))
    except (DefusedXmlException, plistlib.InvalidFileException, ValueError, ExpatError) as exc:
        return [f"not a valid XML plist: {exc}"]


def parse_plist(data: bytes) -> Any:
    """Parse an XML plist with plistlib's parser, refusing entity declarations and external references."""
    return _GuardedPlistParser(dict).parse(io.BytesIO(data))


# Every string of a profile is a <string> element's text, escaped by plist_string (xml_escape).
PLIST = Format("plist", (Context("plist string", xml_escape, xml_carriable),), XML_SPECIALS)
TEMPLATE = "apple/mobileconfig.xml.j2"


class AppleTarget(Target):
    name = "apple"
    _stencils: Stencils | None = None
    _signer: Signer | None = None  # one per process: the SignedData around each profile (generator/signing.py)

    @property
    def settings(self) -> Any:
        return self.spec.targets.apple

    def identifier_prefix(self) -> str:
        if self.settings.identifier_prefix:
            return str(self.settings.identifier_prefix)
        return ".".join(reversed(self.spec.provider.id.split("."))) + ".mail"

    def use_ssl(self, server: Server) -> bool:
        # Apple never defines UseSSL for STARTTLS (FORMATS §1); we default to true (automx2 does since 2024.2:
        # the device then refuses to fall back to plain text) and let targets.apple.starttls_uses_ssl override.
        if server.security == "starttls":
            return bool(self.settings.starttls_uses_ssl)
        return server.security == "ssl"

    def lint(self) -> list[Problem]:
        spec, where = self.spec, self.ctx.loaded.where
        out: list[Problem] = []
        for section, server in (("incoming", spec.incoming), ("outgoing", spec.outgoing)):
            if server.authentication not in AUTH:
                out.append(Problem(where(section, "authentication"),
                                   f"Apple profiles cannot carry {section} authentication '{server.authentication}'",
                                   "use password, encrypted-password, ntlm or none, or remove apple from "
                                   "targets.build"))
        if spec.incoming.keep_on_server:
            out.append(Problem(where("incoming", "keep_on_server"), "Apple profiles have no 'keep a copy on "
                               "server' setting; iOS/macOS Mail decide (iOS keeps mail on a POP server by default)",
                               "tell users to check it in Mail's settings", "warning"))
        if spec.fallbacks.incoming or spec.fallbacks.outgoing:
            out.append(Problem(where("fallbacks"), "Apple profiles carry one incoming and one outgoing server; "
                               "the fallback servers are left out of .mobileconfig files",
                               "nothing to do if the primary servers work for Apple devices", "warning"))
        if spec.tls_min == "1.3":
            out.append(Problem(where("tls_min"), "Apple profiles cannot require TLS 1.3; the OS decides",
                               "enforce it on the server", "warning"))
        if self.ctx.mdm is not None:
            console = CONSOLES[self.ctx.mdm]
            # With same_credentials the outgoing user is the incoming one (mdm_mailbox): its own is unused.
            logins = [("incoming", spec.incoming)] + ([] if spec.outgoing.same_credentials else
                                                      [("outgoing", spec.outgoing)])
            for section, server in logins:
                try:
                    console_value(server.username, console, "example.com")
                except ValueError as exc:
                    out.append(Problem(where(section, "username"), f"{section}.username: {exc}",
                                       "use %EMAILADDRESS% or a literal user name for MDM profiles"))
            if spec.passwords.include:
                out.append(Problem(where("passwords", "include"), "MDM profiles are generic: they never carry "
                                   "passwords", "set passwords.include: false for MDM builds"))
            if not out or all(p.severity != "error" for p in out):
                out += self._mdm_variables_in_literals(console)
        if spec.passwords.include and self.ctx.mdm is None:
            out.append(Problem(where("passwords", "include"), "Apple profiles will carry passwords in clear "
                               "text (Apple: only use with encrypted profiles)",
                               "deliver these files over a private channel and delete them after use", "warning"))
        return out

    def expected_profile(self, mailbox: Mailbox) -> dict[str, Any]:
        """The profile of one account as plistlib should read it back: the single source of truth."""
        spec, s = self.spec, self.settings
        return self._profile(mailbox, identity=mailbox.email.lower(),
                             profile_id=f"{self.identifier_prefix()}.{mailbox.email.lower()}",
                             display=s.display_name or f"{spec.provider.display_name} – {mailbox.email}",
                             description=s.description or f"Configures the mail account {mailbox.email}.")

    def _mdm_variables_in_literals(self, console: Console) -> list[Problem]:
        """The spec's own text in a console profile must not contain that console's variable syntax: the
        console would replace `{{serialnumber}}` in an organisation name or `$EMAIL` in consent text with a
        per-user value, and none of the consoles documents an escape. Every string of each domain's profile,
        made with NO_VARIABLE where the console's variables go, is searched; a match is reported at the spec
        value it came from."""
        spec, s, where = self.spec, self.settings, self.ctx.loaded.where
        smtp_user = ("incoming", "username") if spec.outgoing.same_credentials else ("outgoing", "username")
        # Where each string of the profile comes from in the spec (the others are made from domains and hosts).
        origin: dict[tuple[str, ...], tuple[str, ...]] = {
            ("PayloadDisplayName",): ("targets", "apple", "display_name") if s.display_name
            else ("provider", "display_name"),
            ("PayloadDescription",): ("targets", "apple", "description"),
            ("PayloadOrganization",): ("provider", "organization") if spec.provider.organization
            else ("provider", "display_name"),
            ("mail", "PayloadDisplayName"): ("provider", "display_name"),
            ("mail", "EmailAccountDescription"): ("provider", "display_name"),
            ("mail", "IncomingMailServerUsername"): ("incoming", "username"),
            ("mail", "OutgoingMailServerUsername"): smtp_user,
            ("mail", "IncomingMailServerIMAPPathPrefix"): ("incoming", "imap_path_prefix"),
        }
        found: dict[tuple[tuple[str, ...], str], None] = {}
        for domain in spec.provider.domains:
            profile = self.expected_mdm_profile(domain, neutral(console))
            strings: list[tuple[tuple[str, ...], str]] = [((key,), value) for key, value in profile.items()
                                                          if isinstance(value, str)]
            strings += [(("ConsentText", lang), text) for lang, text in profile.get("ConsentText", {}).items()]
            strings += [(("mail", key), value) for key, value in profile["PayloadContent"][0].items()
                        if isinstance(value, str)]
            for key, value in strings:
                path = (("targets", "apple", "consent_text", key[1]) if key[0] == "ConsentText"
                        else origin.get(key, ()))
                for token in console.variable.findall(value):
                    found[(path, token)] = None
        return [Problem(where(*path), f"{'.'.join(path) or 'the profile'}: '{token}' is a {console.title} "
                        "variable; the console would put a per-user value in its place",
                        "reword it (consoles have no escape for their variables), or build per-account "
                        "profiles without --mdm")
                for path, token in found]

    def mdm_mailbox(self, domain: str, console: Console | None = None) -> Mailbox:
        """A stand-in mailbox whose address, user names and name are the console's per-user variables."""
        console = console or CONSOLES[self.ctx.mdm or ""]
        inc, out = self.spec.incoming, self.spec.outgoing
        user = console_value(inc.username, console, domain)
        return Mailbox(index=0, name=console.display_name, email=console.email, local=console.local or "",
                       domain=domain, username=user,
                       smtp_username=user if out.same_credentials else console_value(out.username, console, domain),
                       description=None, position=self.ctx.loaded.where())

    def expected_mdm_profile(self, domain: str, console: Console | None = None) -> dict[str, Any]:
        spec, s = self.spec, self.settings
        console = console or CONSOLES[self.ctx.mdm or ""]
        return self._profile(self.mdm_mailbox(domain, console), identity=f"mdm/{console.name}/{domain}",
                             profile_id=f"{self.identifier_prefix()}.mdm.{console.name}.{domain}",
                             display=s.display_name or f"{spec.provider.display_name} – {domain}",
                             description=s.description or f"Configures your {domain} mail account.")

    def _profile(self, mailbox: Mailbox, identity: str, profile_id: str, display: str,
                 description: str) -> dict[str, Any]:
        spec, s = self.spec, self.settings
        inc, out = spec.incoming, spec.outgoing
        mail: dict[str, Any] = {
            "PayloadType": "com.apple.mail.managed",
            "PayloadVersion": 1,
            "PayloadIdentifier": f"{profile_id}.mail",
            "PayloadUUID": stable_uuid("apple", spec.provider.id, identity, "mail"),
            "PayloadDisplayName": f"{spec.provider.display_name} ({mailbox.email})",
            "PayloadDescription": f"{inc.protocol.upper()} {mailbox.host(inc)}:{inc.port}, "
                                  f"SMTP {mailbox.host(out)}:{out.port}",
            "EmailAccountDescription": mailbox.description or spec.provider.display_name,
            "EmailAccountName": mailbox.name,
            "EmailAccountType": ACCOUNT_TYPE[inc.protocol],
            "EmailAddress": mailbox.email,
            "IncomingMailServerHostName": mailbox.host(inc),
            "IncomingMailServerPortNumber": inc.port,
            "IncomingMailServerUseSSL": self.use_ssl(inc),
            "IncomingMailServerAuthentication": AUTH[inc.authentication],
            "IncomingMailServerUsername": mailbox.username,
            "OutgoingMailServerHostName": mailbox.host(out),
            "OutgoingMailServerPortNumber": out.port,
            "OutgoingMailServerUseSSL": self.use_ssl(out),
            "OutgoingMailServerAuthentication": AUTH[out.authentication],
            "OutgoingMailServerUsername": mailbox.smtp_username,
            "OutgoingPasswordSameAsIncomingPassword": out.same_credentials,
            "PreventMove": s.prevent_move,
            "PreventAppSheet": s.prevent_app_sheet,
        }
        if inc.imap_path_prefix is not None:
            mail["IncomingMailServerIMAPPathPrefix"] = inc.imap_path_prefix
        if s.allow_mail_drop is not None:
            mail["allowMailDrop"] = s.allow_mail_drop
        if mailbox.password is not None:
            mail["IncomingPassword"] = mailbox.password
            if out.same_credentials:
                # OutgoingPasswordSameAsIncomingPassword is not honoured by non-interactive installs (Apple).
                mail["OutgoingPassword"] = mailbox.password
        profile: dict[str, Any] = {
            "PayloadType": "Configuration",
            "PayloadVersion": 1,
            "PayloadIdentifier": profile_id,
            "PayloadUUID": stable_uuid("apple", spec.provider.id, identity, "profile"),
            "PayloadDisplayName": display,
            "PayloadDescription": description,
            "PayloadOrganization": spec.provider.organization or spec.provider.display_name,
            "PayloadScope": s.scope,
            "PayloadRemovalDisallowed": s.removal_disallowed,
            "PayloadContent": [mail],
        }
        if s.consent_text:
            profile["ConsentText"] = dict(s.consent_text)
        if s.target_device_type is not None:
            profile["TargetDeviceType"] = s.target_device_type
        if s.removal_date is not None:
            # plistlib reads <date> as a naive UTC datetime; the model keeps an aware one.
            profile["RemovalDate"] = s.removal_date.astimezone(UTC).replace(tzinfo=None)
        if s.duration_until_removal is not None:
            profile["DurationUntilRemoval"] = float(s.duration_until_removal)
        return profile

    def _layout(self, expected: dict[str, Any]) -> str:
        env = self.ctx.environment(self.name, FILTERS)
        return render_template(env, TEMPLATE, {"profile": expected, "mail": expected["PayloadContent"][0]})

    def _render(self, expected: dict[str, Any], path: str) -> bytes:
        if self.ctx.stencils_allowed:
            if self._stencils is None:
                self._stencils = Stencils(PLIST, self._layout, _plist_differences)
            text = self._stencils.fill(expected)
            if text is not None:
                # The stencil's proof covers the plist's values; Apple's schema looks at the strings too.
                problems = validate_profile(expected)
                if problems:
                    raise VerificationError(path, problems)
                return text.encode("utf-8")
        data = self._layout(expected).encode("utf-8")
        self.verify(path, data, expected)
        return data

    def render_shared(self) -> list[OutputFile]:
        """MDM mode: one generic profile per mail domain, with the console's variables."""
        if self.ctx.mdm is None or not self.wants("mobileconfig-mdm"):
            return []
        files = []
        for domain in self.spec.provider.domains:
            path = f"domains/{domain}/apple/{domain}.{self.ctx.mdm}.mobileconfig"
            data = self._render(self.expected_mdm_profile(domain), path)
            files.append(OutputFile(path=path, data=data, target=self.name, kind="mobileconfig-mdm", account=None))
        return files

    def render_account(self, mailbox: Mailbox) -> list[OutputFile]:
        if self.ctx.mdm is not None or not (self.wants("mobileconfig") or self.wants("mobileconfig-signed")):
            return []
        path = f"{mailbox.slug}/apple/{mailbox.slug}.mobileconfig"
        data = self._render(self.expected_profile(mailbox), path)
        secret = mailbox.password is not None
        files = [OutputFile(path=path, data=data, target=self.name, kind="mobileconfig", account=mailbox.email,
                            secret=secret)] if self.wants("mobileconfig") else []
        if self.ctx.signing is not None and self.wants("mobileconfig-signed"):
            signed_path = f"{mailbox.slug}/apple/{mailbox.slug}.signed.mobileconfig"
            if self._signer is None:
                self._signer = Signer(self.ctx.signing)
            signed = self._signer.sign(data)
            # Prove what the device will install: the signed content is the verified profile, byte for byte.
            try:
                content = unsigned_content(signed)
            except ValueError as exc:
                raise VerificationError(signed_path, [f"not a CMS SignedData: {exc}"]) from None
            if content != data:
                raise VerificationError(signed_path, ["the signed content differs from the verified profile"])
            files.append(OutputFile(path=signed_path, data=signed, target=self.name, kind="mobileconfig-signed",
                                    account=mailbox.email, secret=secret))
        return files

    @staticmethod
    def verify(path: str, data: bytes, expected: dict[str, Any]) -> None:
        """Parse back, compare value by value, validate against Apple's schema; raise on any difference."""
        try:
            actual = parse_plist(data)
        except (DefusedXmlException, plistlib.InvalidFileException, ValueError, ExpatError) as exc:
            raise VerificationError(path, [f"not a valid XML plist: {exc}"]) from None
        problems = differences(expected, actual) + validate_profile(actual)
        if problems:
            raise VerificationError(path, problems)
