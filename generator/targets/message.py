"""One RFC 5322 message per account (`<address>/message/<address>.eml`): the account's guide as text and
HTML, and its Apple profile as an attachment, composed from the files the apple and guide targets verified
for the same mailbox a moment before (so each attachment's sha256 is the manifest's).

Structure (SERVICE-AND-DELIVERY §B.1/B.2):
  multipart/mixed
    multipart/alternative: text/plain (intro + text guide), text/html (intro + HTML guide)
    application/x-apple-aspen-config; a .mobileconfig file name (the signed profile when the build signs):
      Apple: "Do not compress the file and do not change its extension"; mimetypes knows no type for it.
Never attached: .reg, .js, .prf or archives holding them (Outlook's Level-1 list and Gmail block them);
Thunderbird and Outlook users get the guide's instructions (and links with a base URL).

Deterministic: MIME boundaries and the Message-ID derive from a content key (sha256 of the unsigned profile,
the guide and the addressing); Date is SOURCE_DATE_EPOCH or the zip epoch (1980-01-01): `mailprofile send`
stamps the real send time, once, and keeps it in its journal so a retry sends the same bytes.

Proof: the bytes are parsed back with the stdlib `email` parser; the part structure, headers, the
attachment's bytes, disposition and file name, and the decoded text and HTML parts are compared with what
was composed (the guide inside them was proven against the spec as a file: tables read back, QR decoded).
"""

from __future__ import annotations

import hashlib
import html
import os
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

from generator.accounts import Mailbox, split_address
from generator.errors import BuildError, Problem, VerificationError
from generator.i18n import gettext_for
from generator.render import prove
from generator.signing import unsigned_content
from generator.targets.base import OutputFile, RenderContext, Target


def N_(message: str) -> str:
    return message


DEFAULT_SUBJECT = N_("Your mailbox %(address)s: setup and configuration profile")
DEFAULT_INTRO = N_("Here is how to set up your mailbox %(address)s. iPhone, iPad and Mac: open the attached "
                   "profile. Other apps: follow the guide below.")
PROFILE_TYPE = ("application", "x-apple-aspen-config")
# File name extensions no message of ours may carry (blocked by mail systems; SERVICE-AND-DELIVERY §B.1).
BLOCKED_EXTENSIONS = (".reg", ".js", ".prf", ".cfg", ".zip", ".exe", ".bat", ".cmd", ".vbs", ".ps1")
CONTENT_HEADER = "X-Mailprofile-Content"
ACCOUNT_HEADER = "X-Mailprofile-Account"
SECRET_HEADER = "X-Mailprofile-Secret"


def build_date() -> datetime:
    """SOURCE_DATE_EPOCH (the reproducible-builds convention) or the zip epoch: never the clock. A value that
    is set but not a date a message can carry is an error (the convention says to stop, not to guess): a
    Date header of 1980 or one silently taken from a typo would both go out to every user."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if not epoch:
        return datetime(1980, 1, 1, tzinfo=UTC)
    try:
        if not epoch.isascii() or not epoch.isdigit():
            raise ValueError
        date = datetime.fromtimestamp(int(epoch), UTC)
        if date.year > 9999:  # RFC 5322 dates have four-digit years
            raise ValueError
    except (ValueError, OverflowError, OSError):
        raise BuildError(f"SOURCE_DATE_EPOCH={epoch!r} is not a date in seconds since 1970 (e.g. $(git log -1 "
                         "--format=%ct)); set it to one or unset it (messages then say 1980-01-01)") from None
    return date


def _pick(earlier: list[OutputFile], mailbox: Mailbox, kind: str) -> OutputFile | None:
    return next((f for f in earlier if f.account == mailbox.email and f.kind == kind), None)


class MessageTarget(Target):
    name = "message"

    def __init__(self, ctx: RenderContext) -> None:
        super().__init__(ctx)
        self.date = build_date()  # checked before anything is rendered

    def lint(self) -> list[Problem]:
        d, where = self.spec.delivery, self.ctx.loaded.where
        out: list[Problem] = []
        if d.sender is None:
            out.append(Problem(where("delivery"), "messages need a sender: delivery.sender is not set",
                               "add delivery: {sender: \"IT <it@example.com>\"}"))
        for key in ("sender", "reply_to"):
            value = getattr(d, key)
            if value is not None and not _address_ok(value):
                out.append(Problem(where("delivery", key), f"delivery.{key}: '{value}' is not an address such as "
                                   "'Name <it@example.com>'", "correct the address"))
        if self.ctx.mdm is not None:
            out.append(Problem(where(), "messages are per account; MDM builds have none",
                               "build messages without --mdm"))
        return out

    def render_account(self, mailbox: Mailbox) -> list[OutputFile]:
        raise VerificationError(f"{mailbox.email}/message", ["a message is composed from the apple and guide "
                                                             "files of the same build"])

    def render_after(self, mailbox: Mailbox, earlier: list[OutputFile]) -> list[OutputFile]:
        if not self.wants("eml"):
            return []
        path = f"{mailbox.slug}/message/{mailbox.slug}.eml"
        profile = _pick(earlier, mailbox, "mobileconfig-signed") or _pick(earlier, mailbox, "mobileconfig")
        guide_html = _pick(earlier, mailbox, "guide-html")
        guide_text = _pick(earlier, mailbox, "guide-text")
        if profile is None or guide_html is None or guide_text is None:
            raise VerificationError(path, ["the apple profile and both guides must be built with the message"])
        data = self.compose(mailbox, profile, guide_html.data, guide_text.data)
        self.verify(path, data, mailbox, profile, guide_html.data, guide_text.data)
        return [OutputFile(path, data, self.name, "eml", mailbox.email, secret=profile.secret)]

    # --- composing -------------------------------------------------------------------------------------------

    def subject(self, mailbox: Mailbox) -> str:
        custom = self.spec.delivery.subject.get(mailbox.language)
        return custom if custom else gettext_for(mailbox.language)(DEFAULT_SUBJECT) % {"address": mailbox.email}

    def intro(self, mailbox: Mailbox) -> str:
        custom = self.spec.delivery.intro.get(mailbox.language)
        return custom if custom else gettext_for(mailbox.language)(DEFAULT_INTRO) % {"address": mailbox.email}

    def recipient(self, mailbox: Mailbox) -> str:
        return formataddr((mailbox.name, mailbox.notify or mailbox.email))

    def content_key(self, mailbox: Mailbox, profile: OutputFile, guide_html: bytes) -> str:
        """What the message says, independent of signature bytes (which change per signing)."""
        unsigned = unsigned_content(profile.data) if profile.kind == "mobileconfig-signed" else profile.data
        digest = hashlib.sha256()
        for part in (self.recipient(mailbox).encode(), self.subject(mailbox).encode(), self.intro(mailbox).encode(),
                     unsigned, guide_html):
            digest.update(hashlib.sha256(part).digest())
        return digest.hexdigest()

    def message_id(self, key: str) -> str:
        sender = parseaddr(self.spec.delivery.sender or "")[1]
        domain = sender.rpartition("@")[2] or self.spec.provider.domains[0]
        return f"<mailprofile.{key[:32]}@{domain}>"

    def compose(self, mailbox: Mailbox, profile: OutputFile, guide_html: bytes, guide_text: bytes) -> bytes:
        d = self.spec.delivery
        key = self.content_key(mailbox, profile, guide_html)
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = d.sender or ""
        msg["To"] = self.recipient(mailbox)
        if d.reply_to:
            msg["Reply-To"] = d.reply_to
        msg["Subject"] = self.subject(mailbox)
        msg["Date"] = format_datetime(self.date)
        msg["Message-ID"] = self.message_id(key)
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the admin
        msg[ACCOUNT_HEADER] = mailbox.email
        msg[CONTENT_HEADER] = key
        if profile.secret:
            msg[SECRET_HEADER] = "password"  # `send` refuses it without --allow-secrets
        msg.set_content(self.text_body(mailbox, guide_text), subtype="plain", charset="utf-8", cte="quoted-printable")
        msg.add_alternative(self.html_body(mailbox, guide_html), subtype="html", charset="utf-8",
                            cte="quoted-printable")
        msg.add_attachment(profile.data, maintype=PROFILE_TYPE[0], subtype=PROFILE_TYPE[1],
                           filename=profile.path.rsplit("/", 1)[-1])
        msg["Content-Language"] = mailbox.language  # after the parts: set_content drops Content-* headers
        # Fixed boundaries (the library draws random ones): same content, same bytes.
        msg.set_boundary(f"mixed-{key[:24]}")
        alternative = next(msg.iter_parts())
        alternative.set_boundary(f"alt-{key[:24]}")
        return msg.as_bytes(policy=policy.SMTP)

    def text_body(self, mailbox: Mailbox, guide_text: bytes) -> str:
        return f"{self.intro(mailbox)}\n\n{guide_text.decode('utf-8')}"

    def html_body(self, mailbox: Mailbox, guide_html: bytes) -> str:
        page = guide_html.decode("utf-8")
        intro = "".join(f"<p class=\"intro\">{html.escape(p)}</p>\n" for p in self.intro(mailbox).split("\n\n"))
        head, sep, tail = page.partition("<body>\n")
        return f"{head}{sep}{intro}{tail}"

    # --- proof -----------------------------------------------------------------------------------------------

    def verify(self, path: str, data: bytes, mailbox: Mailbox, profile: OutputFile, guide_html: bytes,
               guide_text: bytes) -> None:
        msg = BytesParser(policy=policy.default).parsebytes(data)
        if msg.defects:
            raise VerificationError(path, [f"MIME defect: {d!r}" for d in msg.defects])
        parts = [(p.get_content_type(), p) for p in msg.walk()]  # one pass: header parsing is the cost here
        structure = [kind for kind, _ in parts]
        expected_structure = ["multipart/mixed", "multipart/alternative", "text/plain", "text/html",
                              "/".join(PROFILE_TYPE)]
        if structure != expected_structure:
            raise VerificationError(path, [f"structure: expected {expected_structure}, found {structure}"])
        text, body, attachment = parts[2][1], parts[3][1], parts[4][1]
        name = attachment.get_filename() or ""
        actual: dict[str, Any] = {
            "to": str(msg["To"]), "from": str(msg["From"]), "subject": str(msg["Subject"]),
            "attachment": (attachment.get_content_disposition(), name, attachment.get_content()),
            "blocked": name.lower().endswith(BLOCKED_EXTENSIONS),
            "text": text.get_content().replace("\r\n", "\n"),
            # The guide in the HTML part was proven against the spec (tables read back, QR decoded) as a
            # file a moment ago; here it must arrive exactly as composed around it.
            "html": body.get_content().replace("\r\n", "\n"),
        }
        expected: dict[str, Any] = {
            "to": self.recipient(mailbox), "from": self.spec.delivery.sender or "",
            "subject": self.subject(mailbox),
            "attachment": ("attachment", profile.path.rsplit("/", 1)[-1], profile.data),
            "blocked": False,
            "text": self.text_body(mailbox, guide_text).replace("\r\n", "\n"),
            "html": self.html_body(mailbox, guide_html).replace("\r\n", "\n"),
        }
        prove(path, expected, actual)


def _address_ok(value: str) -> bool:
    name, address = parseaddr(value)
    try:
        split_address(address)
        Address(display_name=name, addr_spec=address)
    except (ValueError, IndexError):
        return False
    return True
