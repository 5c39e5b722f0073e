"""One RFC 5322 message per account (`<address>/message/<address>.eml`): the account's guide as text and
HTML, and its Apple profile as an attachment, composed from the files the apple and guide targets verified
for the same mailbox a moment before (so each attachment's sha256 is the manifest's).

Structure (SERVICE-AND-DELIVERY §B.1/B.2):
  multipart/mixed
    multipart/alternative: text/plain (intro + text guide), text/html (intro + HTML guide); when the guide
      shows QR codes, multipart/related: the text/html, then one image/png per code, inline, named in the
      HTML by cid: (generator.mailimages: Gmail and Outlook show neither inline SVG nor data: images)
    application/x-apple-aspen-config named <address>.mobileconfig as the guide says (the signed profile's
      bytes when the build signs):
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

import base64
import hashlib
import html
import os
import re
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr, getaddresses
from typing import Any
from urllib.parse import quote

from generator.accounts import Mailbox, split_address
from generator.errors import BuildError, Problem, SpecError, VerificationError
from generator.i18n import gettext_for
from generator.mailimages import InlineImage, codes, to_cid
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
# Where the intro goes in the HTML part: a --templates guide may give <body> attributes or write it in capitals.
_BODY_TAG = re.compile(r"<body\b[^>]*>\n?", re.IGNORECASE)
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
            if value is not None and single_mailbox(value) is None:
                out.append(Problem(where("delivery", key), f"delivery.{key}: '{value}' is not one address such as "
                                   "'Name <it@example.com>' (ASCII before the @: messages do not use SMTPUTF8)",
                                   "correct the address"))
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
        if not self.to_address(mailbox).isascii():
            raise SpecError([Problem(mailbox.position, f"'{self.to_address(mailbox)}' has non-ASCII characters before "
                                     "the @, which a message can carry only with SMTPUTF8 (not used here)",
                                     "give the account a notify address with an ASCII local part")])
        profile = _pick(earlier, mailbox, "mobileconfig-signed") or _pick(earlier, mailbox, "mobileconfig")
        guide_html = _pick(earlier, mailbox, "guide-html")
        guide_text = _pick(earlier, mailbox, "guide-text")
        if profile is None or guide_html is None or guide_text is None:
            raise VerificationError(path, ["the apple profile and both guides must be built with the message"])
        page = self.html_body(mailbox, guide_html.data, path)
        mail_page, images = to_cid(page, self.content_key(mailbox, profile, guide_html.data), self.id_domain())
        data = self.compose(mailbox, profile, guide_html.data, guide_text.data, mail_page, images)
        self.verify(path, data, mailbox, profile, guide_text.data, page, mail_page)
        return [OutputFile(path, data, self.name, "eml", mailbox.email, secret=profile.secret)]

    # --- composing -------------------------------------------------------------------------------------------

    def subject(self, mailbox: Mailbox) -> str:
        custom = self.spec.delivery.subject.get(mailbox.language)
        return custom if custom else gettext_for(mailbox.language)(DEFAULT_SUBJECT) % {"address": mailbox.email}

    def intro(self, mailbox: Mailbox) -> str:
        custom = self.spec.delivery.intro.get(mailbox.language)
        return custom if custom else gettext_for(mailbox.language)(DEFAULT_INTRO) % {"address": mailbox.email}

    def to_address(self, mailbox: Mailbox) -> str:
        return mailbox.notify or mailbox.email

    def recipient(self, mailbox: Mailbox) -> str:
        """The addressing as the content key hashes it (unchanged, so Message-IDs stay what they were)."""
        return formataddr((mailbox.name, self.to_address(mailbox)))

    def mailboxes(self, mailbox: Mailbox) -> dict[str, tuple[str, str]]:
        """From, To and Reply-To as (display name, address): what each header must decode to."""
        d = self.spec.delivery
        out = {"From": single_mailbox(d.sender or "") or ("", ""), "To": (mailbox.name, self.to_address(mailbox))}
        if d.reply_to:
            out["Reply-To"] = single_mailbox(d.reply_to) or ("", "")
        return out

    def content_key(self, mailbox: Mailbox, profile: OutputFile, guide_html: bytes) -> str:
        """What the message says, independent of signature bytes (which change per signing)."""
        unsigned = unsigned_content(profile.data) if profile.kind == "mobileconfig-signed" else profile.data
        digest = hashlib.sha256()
        for part in (self.recipient(mailbox).encode(), self.subject(mailbox).encode(), self.intro(mailbox).encode(),
                     unsigned, guide_html):
            digest.update(hashlib.sha256(part).digest())
        return digest.hexdigest()

    def id_domain(self) -> str:
        """The right-hand side of the Message-ID and Content-IDs: the sender's domain (ours to name)."""
        sender = (single_mailbox(self.spec.delivery.sender or "") or ("", ""))[1]
        return sender.rpartition("@")[2] or self.spec.provider.domains[0]

    def message_id(self, key: str) -> str:
        return f"<mailprofile.{key[:32]}@{self.id_domain()}>"

    def compose(self, mailbox: Mailbox, profile: OutputFile, guide_html: bytes, guide_text: bytes, page: str,
                images: list[InlineImage]) -> bytes:
        """The message; `page` is the HTML part (the guide with the intro, its QR codes named by cid:), `images`
        the PNG parts it names (mailimages.to_cid)."""
        key = self.content_key(mailbox, profile, guide_html)
        head = [fold(name, mailbox_words(*value)) for name, value in self.mailboxes(mailbox).items()]
        head.append(fold("Subject", text_words(self.subject(mailbox))))
        for name, value in (("Date", format_datetime(self.date)), ("Message-ID", self.message_id(key)),
                            ("Auto-Submitted", "auto-generated")):  # RFC 3834: no vacation replies to the admin
            head.append(fold(name, [value]))
        # The account's own address may have a non-ASCII local part (its notify address cannot): encoded words.
        head.append(fold(ACCOUNT_HEADER, text_words(mailbox.email)))
        head.append(fold(CONTENT_HEADER, [key]))
        if profile.secret:
            head.append(fold(SECRET_HEADER, ["password"]))  # `send` refuses it without --allow-secrets
        msg = EmailMessage(policy=policy.SMTP)  # the MIME structure; the headers above are written as they are
        msg.set_content(self.text_body(mailbox, guide_text), subtype="plain", charset="utf-8", cte="quoted-printable")
        msg.add_alternative(page, subtype="html", charset="utf-8", cte="quoted-printable")
        msg.add_attachment(profile.data, maintype=PROFILE_TYPE[0], subtype=PROFILE_TYPE[1])
        attachment = list(msg.iter_parts())[-1]
        for field, value in attachment_fields(mailbox.profile_name).items():
            del attachment[field]
            attachment.set_raw(field, value)  # written as they are (refold_source="none" below)
        msg["Content-Language"] = mailbox.language  # after the parts: set_content drops Content-* headers
        # Fixed boundaries (the library draws random ones): same content, same bytes.
        msg.set_boundary(f"mixed-{key[:24]}")
        alternative = next(msg.iter_parts())
        alternative.set_boundary(f"alt-{key[:24]}")
        if images:
            html_part = list(alternative.iter_parts())[1]
            for image in images:  # the first makes the text/html part a multipart/related holding it
                html_part.add_related(image.png, maintype="image", subtype="png", cid=f"<{image.cid}>",
                                      disposition="inline", filename=image.name)
            html_part.set_boundary(f"rel-{key[:24]}")
        return "".join(head).encode("ascii") + msg.as_bytes(policy=policy.SMTP.clone(refold_source="none"))

    def text_body(self, mailbox: Mailbox, guide_text: bytes) -> str:
        return f"{self.intro(mailbox)}\n\n{guide_text.decode('utf-8')}"

    def intro_html(self, mailbox: Mailbox) -> str:
        return "".join(f"<p class=\"intro\">{html.escape(p)}</p>\n" for p in self.intro(mailbox).split("\n\n"))

    def html_body(self, mailbox: Mailbox, guide_html: bytes, path: str = "") -> str:
        """The guide with the intro first in its body: after the <body> tag as a --templates guide may write it
        (attributes, any case), never after </html>, where mail apps show it last or not at all."""
        page = guide_html.decode("utf-8")
        intro = self.intro_html(mailbox)
        body = _BODY_TAG.search(page)
        if body is None:
            raise VerificationError(path, ["the HTML guide has no <body> tag to put the message's intro after — "
                                           "keep <body> in your guide.html.j2"])
        head, tail = page[:body.end()], page[body.end():]
        return f"{head}\n{intro}{tail}" if not head.endswith("\n") else f"{head}{intro}{tail}"

    # --- proof -----------------------------------------------------------------------------------------------

    def verify(self, path: str, data: bytes, mailbox: Mailbox, profile: OutputFile, guide_text: bytes, page: str,
               mail_page: str) -> None:
        """Parse the message back and compare it with what was meant: `page` is the guide with the intro as the
        guide file has it, `mail_page` the HTML part composed from it."""
        msg = BytesParser(policy=policy.default).parsebytes(data)
        if msg.defects:
            raise VerificationError(path, [f"MIME defect: {d!r}" for d in msg.defects])
        parts = [(p.get_content_type(), p) for p in msg.walk()]  # one pass: header parsing is the cost here
        structure = [kind for kind, _ in parts]
        # The guide's QR codes, read from the guide file itself; the message shows each as a PNG part.
        said = codes(page)
        qr = [c for c in said if c.startswith("QR ")]
        html_parts = ["multipart/related", "text/html", *["image/png"] * len(qr)] if qr else ["text/html"]
        expected_structure = ["multipart/mixed", "multipart/alternative", "text/plain", *html_parts,
                              "/".join(PROFILE_TYPE)]
        if structure != expected_structure:
            raise VerificationError(path, [f"structure: expected {expected_structure}, found {structure}"])
        text, attachment = parts[2][1], parts[-1][1]
        body = next(p for kind, p in parts if kind == "text/html")
        images = [p for kind, p in parts if kind == "image/png"]
        cids = {str(p["Content-ID"] or "").strip().removeprefix("<").removesuffix(">"): p for p in images}
        name = attachment.get_filename() or ""
        # Read back as RFC 2047 says (the email package's own header parser puts a space between the encoded
        # words of a long display name, and so would fail names that mail apps show right).
        raw = [(k, v.replace("\r\n", "").replace("\n", "")) for k, v in msg.raw_items()]
        mailboxes = self.mailboxes(mailbox)
        actual: dict[str, Any] = {
            "headers": [k for k, _ in raw],
            **{h: [decoded_mailboxes(v) for k, v in raw if k == h] for h in mailboxes},
            "subject": [_decoded(v) for k, v in raw if k == "Subject"],
            "account": [_decoded(v) for k, v in raw if k == ACCOUNT_HEADER],
            "attachment": (attachment.get_content_disposition(), name, attachment.get_content()),
            "attachment name=": _decoded(str(attachment.get_param("name", header="content-type") or "")),
            "blocked": name.lower().endswith(BLOCKED_EXTENSIONS),
            "text": text.get_content().replace("\r\n", "\n"),
            # The guide in the HTML part was proven against the spec (tables read back, QR decoded) as a
            # file a moment ago; here it must arrive exactly as composed around it.
            "html": body.get_content().replace("\r\n", "\n"),
            # Each code the HTML shows, its modules read back from its PNG part, against the guide's SVGs.
            "codes": codes(body.get_content(), {cid: p.get_content() for cid, p in cids.items()}),
            "image parts": sorted((cid, p.get_content_disposition(), bool(p.get_filename()))
                                  for cid, p in cids.items()),
        }
        opening = _BODY_TAG.search(actual["html"])  # the intro opens the body (not only: is as composed)
        actual["intro first"] = opening is not None and \
            actual["html"][opening.end():].lstrip("\n").startswith(self.intro_html(mailbox))
        expected: dict[str, Any] = {
            "headers": [*mailboxes, "Subject", "Date", "Message-ID", "Auto-Submitted", ACCOUNT_HEADER,
                        CONTENT_HEADER, *([SECRET_HEADER] if profile.secret else []), "MIME-Version",
                        "Content-Type", "Content-Language"],
            **{h: [[value]] for h, value in mailboxes.items()},
            "subject": [self.subject(mailbox)],
            "account": [mailbox.email],
            "attachment": ("attachment", mailbox.profile_name, profile.data),
            "attachment name=": mailbox.profile_name,
            "blocked": False,
            "text": self.text_body(mailbox, guide_text).replace("\r\n", "\n"),
            "html": mail_page.replace("\r\n", "\n"),
            "intro first": True,
            "codes": said,
            "image parts": sorted((cid, "inline", True) for cid in
                                  re.findall(r'src="cid:([^"]+)"', actual["html"])),
        }
        prove(path, expected, actual)


def attachment_fields(name: str) -> dict[str, str]:
    """Content-Type and Content-Disposition naming the attachment `name`, each parameter whole on one line.

    The email package cuts a parameter longer than a 78-character line into RFC 2231 continuations
    (filename*0*=us-ascii''..., filename*1*=...), even for plain ASCII; Dovecot's BODYSTRUCTURE gives IMAP
    clients that as one percent-encoded filename* ("us-ascii''...%40..."), so a client reading filename= sees
    no .mobileconfig name (Apple needs the extension), and no reader joins continuations in every case.
    A parameter line may be longer than 78 characters (RFC 5322: at most 998; a name is at most
    215 bytes). An ASCII name is one quoted string; a non-ASCII one is one RFC 2231 value (filename*=utf-8''),
    and the Content-Type's name= carries RFC 2047 words (what Outlook and Gmail read; not standard inside a
    quoted string, but what Thunderbird, Gmail and Outlook themselves write)."""
    if name.isascii():
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        type_name, filename = quoted, f"filename={quoted}"
    else:
        type_name = '"' + "\r\n ".join(encoded_words(name)) + '"'  # folded between words, as Thunderbird does
        filename = "filename*=utf-8''" + quote(name, safe="")
    return {"Content-Type": f"{'/'.join(PROFILE_TYPE)};\r\n name={type_name}",
            "Content-Disposition": f"attachment;\r\n {filename}"}


def single_mailbox(value: str) -> tuple[str, str] | None:
    """'IT <it@Bücher.example>' -> ('IT', 'it@xn--bcher-kva.example'); None unless exactly one address with an
    ASCII local part (a second address in From would need a Sender header; non-ASCII needs SMTPUTF8)."""
    header = policy.default.header_factory("From", value)
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if len(addresses) != 1 or header.defects:
        return None
    try:
        local, domain = split_address(addresses[0].addr_spec)
    except (ValueError, IndexError):
        return None
    return (addresses[0].display_name, f"{local}@{domain}") if local.isascii() else None


# --- headers we write ourselves ---------------------------------------------------------------------------------
# Not through the email package's folder: it passes a literal '=?utf-8?q?...?=' in a name or subject through,
# so every reader decodes it into other text, and cuts a long non-ASCII display name into encoded words that
# its own parser reads back with a space inside. Plain ASCII text stays readable; anything else becomes RFC 2047
# encoded words, which readers join without the whitespace between them, so they decode to exactly the spec's text.

MAX_LINE = 78  # RFC 5322 2.1.1: lines SHOULD be at most 78 characters (MUST at most 998)
_WORD_BYTES = 42  # UTF-8 bytes per encoded word: '=?utf-8?b?' + 56 base64 characters + '?=' = 68 characters
_SPECIALS = set('()<>[]:;@\\,."')


def _plain(text: str) -> bool:
    """Text a header can carry as it is: printable ASCII, single spaces, short words, nothing like an encoded word."""
    return text.isascii() and text.isprintable() and "=?" not in text and text == " ".join(text.split()) \
        and all(len(word) <= 60 for word in text.split(" "))


def encoded_words(text: str) -> list[str]:
    """RFC 2047 'B' words of UTF-8, cut between characters, each at most _WORD_BYTES bytes."""
    words, chunk = [], b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES:
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(w).decode('ascii')}?=" for w in words]


def text_words(text: str) -> list[str]:
    """Unstructured text (Subject) as the words to fold."""
    return text.split(" ") if _plain(text) else encoded_words(text)


def mailbox_words(name: str, address: str) -> list[str]:
    if not name:
        return [address]
    if _plain(name) and not _SPECIALS & set(name):
        phrase = name.split(" ")
    elif _plain(name) and len(name) <= 60:
        phrase = ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']  # one quoted-string
    else:
        phrase = encoded_words(name)
    return [*phrase, f"<{address}>"]


def fold(name: str, words: list[str]) -> str:
    """One header field, folded between words (CRLF + space) to keep lines within MAX_LINE."""
    lines, line = [], f"{name}:"
    for word in words:
        if len(line) + 1 + len(word) > MAX_LINE and line.strip():
            lines.append(line)
            line = ""
        line += " " + word
    return "\r\n".join([*lines, line]) + "\r\n"


def _decoded(raw: str) -> str:
    return str(make_header(decode_header(raw.strip())))


def decoded_mailboxes(raw: str) -> list[tuple[str, str]]:
    return [(_decoded(name), address) for name, address in getaddresses([raw])]
