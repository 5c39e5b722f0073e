"""Outlook profile files (.prf) -> one draft per internet mail account.

Facts (FORMATS.md §4, generator/prf.py): `[Internet Account List]` names each `[AccountN]` and its mapping
section (`I_Mail` AccountType=POP3, `IMAP_I_Mail` AccountType=IMAP); values are typed by that mapping
(PT_LONG / PT_UNICODE). `POP3UseSSL`/`IMAPUseSSL` are yes/no, so 0 means plain text *or* STARTTLS (a PRF cannot
say STARTTLS for incoming mail): the mode is guessed and the guess named. SMTP: `SMTPSecureConnection` 0/1/2
(none/SSL/STARTTLS) when present, else `SMTPUseSSL`; `SMTPAuthMethod` 0 = the incoming credentials, 1 = its
own; `LeaveOnServer` bits 0x1 keep a copy, 0x2 remove after N days (N in the high 16 bits). No password key.
Files from the Office Customization Tool are ANSI/UTF-8 with any line ends; ours are UTF-16LE with a BOM.
"""

from __future__ import annotations

from pathlib import Path

from generator.accounts import split_address
from generator.errors import Position
from generator.importers.draft import MAX_XML_BYTES, Draft, fail, read_limited
from generator.prf import BOM, PrfFormatError, PrfSections, read_sections, typed_account

KIND = "Outlook PRF"
ACCOUNT_TYPES = {"POP3": ("pop3", "POP3"), "IMAP": ("imap", "IMAP")}
STARTTLS_PORTS = {143, 110, 587, 25}
SMTP_SECURE = {0: "none", 1: "ssl", 2: "starttls"}


def is_prf(head: bytes) -> bool:
    text = _text(head[:4096], strict=False)
    return "[Internet Account List]" in text or ("[General]" in text and "ProfileName" in text)


def _text(data: bytes, strict: bool = True) -> str:
    if data.startswith(BOM):
        return data[len(BOM):].decode("utf-16-le", errors="strict" if strict else "ignore")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # the ANSI code page of a Western Windows


def read(path: Path) -> list[Draft]:
    data = read_limited(path, MAX_XML_BYTES, "the PRF")
    return parse(data, str(path))


def parse(data: bytes, file: str) -> list[Draft]:
    try:
        text = _text(data)
    except UnicodeDecodeError:
        raise fail(Position(file), "the PRF starts with a UTF-16 byte order mark but is not UTF-16LE",
                   "save it again as Unicode (UTF-16LE) or UTF-8") from None
    # One reader for both encodings: normalise to what generator/prf.py reads (UTF-16LE, BOM, CRLF).
    normal = BOM + "\r\n".join(text.splitlines()).encode("utf-16-le")
    try:
        sections = read_sections(normal)
    except PrfFormatError as exc:
        message = str(exc)
        line = int(message.split()[1].rstrip(":")) if message.startswith("line ") else 0
        raise fail(Position(file, line, 1 if line else 0), f"not a readable PRF: {message}",
                   "fix the INI syntax") from None
    accounts = sections.get("Internet Account List")
    if not accounts:
        raise fail(Position(file), "the PRF has no [Internet Account List]", "give a PRF that adds a POP3/IMAP account")
    drafts = []
    for account in accounts:
        draft = _account(sections, account, file)
        if draft is not None:
            drafts.append(draft)
    if not drafts:
        raise fail(Position(file), "no POP3 or IMAP account in the PRF", "the spec describes POP3/IMAP accounts")
    profile = sections.get("General", {}).get("ProfileName")
    if profile and profile != "Outlook":
        for d in drafts:
            d.set(("targets", "outlook", "profile_name"), profile, Position(file))
    return drafts


def _account(sections: PrfSections, account: str, file: str) -> Draft | None:
    at = Position(file, detail=f"[{account}]")  # INI lines are not kept by the reader: name the section
    mapping = sections.get(sections["Internet Account List"][account], {})
    kind = mapping.get("AccountType")
    if kind not in ACCOUNT_TYPES:
        return None
    protocol, prefix = ACCOUNT_TYPES[kind]
    try:
        values = typed_account(sections, account)
    except PrfFormatError as exc:
        raise fail(at, str(exc), "add the key to the mapping section or remove it") from None

    def text(key: str) -> str | None:
        value = values.get(key)
        return value if isinstance(value, str) and value else None

    def number(key: str) -> int | None:
        value = values.get(key)
        return value if isinstance(value, int) else None

    email = text("EmailAddress")
    if email is None:
        raise fail(at, f"[{account}] has no EmailAddress", "add EmailAddress=...")
    try:
        local, domain = split_address(email)
    except ValueError as exc:
        raise fail(at, str(exc), "fix EmailAddress") from None
    address = f"{local}@{domain}"
    d = Draft(source=file, kind=KIND)
    d.set(("provider", "domains"), [domain], at)
    d.set(("provider", "id"), domain, at, guessed=True)
    d.set(("provider", "display_name"), domain, at, guessed=True)
    for key in ("id", "display_name"):  # on the guessed keys: a source that names the provider drops them
        d.note(("provider", key), f"a PRF does not name the provider: {key} is the mail domain", at)

    host, port = text(f"{prefix}Server"), number(f"{prefix}Port")
    if host is None or port is None:
        raise fail(at, f"[{account}] needs {prefix}Server and {prefix}Port", "add them")
    d.set(("incoming", "protocol"), protocol, at)
    d.set(("incoming", "host"), host, at)
    d.set(("incoming", "port"), port, at)
    if number(f"{prefix}UseSSL") == 1:
        d.set(("incoming", "security"), "ssl", at)
    else:
        d.set(("incoming", "security"), "starttls", at, guessed=True)
        d.note(("incoming", "security"), f"{prefix}UseSSL=0 means plain text or STARTTLS (a PRF cannot say which; "
               "Outlook itself then logs in without encryption): guessed starttls", at,
               hint="check the mode with your provider; use security: none only for a plain-text server")
    d.set(("incoming", "authentication"), "ntlm" if number(f"{prefix}UseSPA") == 1 else "password", at)
    user = text(f"{prefix}UserName")
    if user is None or user.lower() == address.lower():
        d.set(("incoming", "username"), "%EMAILADDRESS%", at)
    elif user == local:
        d.set(("incoming", "username"), "%EMAILLOCALPART%", at)
    leave = number("LeaveOnServer")
    if protocol == "pop3" and leave and leave & 0x1:
        d.set(("incoming", "keep_on_server"), True, at)
        if leave & 0x2 and leave >> 16:
            d.set(("incoming", "keep_days"), leave >> 16, at)
    folder = text("RootFolder")
    if protocol == "imap" and folder:
        d.set(("incoming", "imap_path_prefix"), folder, at)

    smtp, smtp_port = text("SMTPServer"), number("SMTPPort")
    if smtp is None or smtp_port is None:
        raise fail(at, f"[{account}] needs SMTPServer and SMTPPort", "add them")
    d.set(("outgoing", "host"), smtp, at)
    d.set(("outgoing", "port"), smtp_port, at)
    secure = number("SMTPSecureConnection")
    if secure in SMTP_SECURE:
        d.set(("outgoing", "security"), SMTP_SECURE[secure], at)
    elif number("SMTPUseSSL") == 1:
        d.set(("outgoing", "security"), "ssl", at)
    else:
        guess = "starttls" if smtp_port in STARTTLS_PORTS else "none"
        d.set(("outgoing", "security"), guess, at, guessed=True)
        d.note(("outgoing", "security"), f"SMTPUseSSL=0 without SMTPSecureConnection: guessed {guess} from port "
               f"{smtp_port}", at, hint="check the mode with your provider")
    if number("SMTPUseAuth") == 0:
        d.set(("outgoing", "authentication"), "none", at)
    else:
        d.set(("outgoing", "authentication"), "ntlm" if number("SMTPUseSPA") == 1 else "password", at)
        method = number("SMTPAuthMethod") or 0
        if method == 1 and text("SMTPUserName") not in (None, user):
            d.set(("outgoing", "same_credentials"), False, at)
            smtp_user = str(text("SMTPUserName"))
            d.set(("outgoing", "username"), "%EMAILADDRESS%" if smtp_user.lower() == address.lower() else
                  "%EMAILLOCALPART%" if smtp_user == local else smtp_user, at)
        else:
            d.set(("outgoing", "same_credentials"), True, at)
            if method == 2:
                d.note(("outgoing", "same_credentials"), "SMTPAuthMethod=2 (log on to the incoming server first) "
                       "is not carried: the SMTP server uses the incoming credentials", at)
    for side in ("incoming", "outgoing"):
        if d.get((side, "security")) == "none" and d.get((side, "authentication")) not in ("none", None):
            d.set((side, "allow_insecure"), True, at)
    account_spec: dict[str, object] = {"name": text("DisplayName") or local, "email": address}
    if user is not None and user.lower() != address.lower() and user != local:
        account_spec["username"] = user
    name = text("AccountName")
    if name and name != address:
        account_spec["description"] = name
    d.set(("accounts",), [account_spec], at)
    return d
