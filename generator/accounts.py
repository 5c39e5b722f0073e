"""Expand a spec into mailboxes: inline accounts first, then the CSV, streamed one row at a time.

A Mailbox carries every per-account value already resolved (user names with placeholders filled in, the
address normalised), so targets never interpret templates themselves.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from generator.csvfile import CsvProblem, Record, open_regular, read_header, records
from generator.errors import Position, Problem, SpecError
from generator.model import AccountSpec, OutgoingServer, Server, Spec, to_a_label, user_template
from generator.spec import LoadedSpec, problems_from
from generator.yamlload import Document

PasswordLookup = Callable[[str], str | None]
CSV_COLUMNS = ("name", "email", "username", "description", "language", "notify")
# RFC 5322 atext, less '/', '|' and '?': the address names a folder in the output and a file on Windows.
_LOCAL_RE = re.compile(r"^[\w.!#$%&'*+=^`{}~-]+$")
_PLACEHOLDER_RE = re.compile(r"%(EMAILADDRESS|EMAILLOCALPART|EMAILDOMAIN|REALNAME)%")
# A password travels inside XML (plists): control characters either cannot be carried or are changed by
# every XML parser (CR becomes LF), so they are refused where the password is read.
_PASSWORD_BAD_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Longest file name a per-target layout adds to an address (<address>.signed.mobileconfig is 20 bytes; room
# for longer kinds). Most file systems allow 255 bytes per name.
NAME_BYTES = 255 - 40


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One account, fully resolved."""

    index: int
    name: str
    email: str
    local: str
    domain: str
    username: str
    smtp_username: str
    description: str | None
    position: Position
    password: str | None = None
    language: str = "en"  # guide and message language (account's, else delivery.language)
    notify: str | None = None  # where the message goes, when not to the address itself

    def expand(self, template: str) -> str:
        """Fill the autoconfig placeholders for this mailbox, in one pass: a value that itself contains a
        placeholder's spelling (a local part 'a%EMAILDOMAIN%b') comes out literally."""
        values = {"EMAILADDRESS": self.email, "EMAILLOCALPART": self.local, "EMAILDOMAIN": self.domain,
                  "REALNAME": self.name}
        return _PLACEHOLDER_RE.sub(lambda m: values[m[1]], template)

    def host(self, server: Server) -> str:
        return server.host.replace("%EMAILDOMAIN%", self.domain)

    @property
    def slug(self) -> str:
        """The address as a folder and file name. A legal address can be 318 bytes, more than a file name may
        be; such an address is cut on a character boundary and given a hash of the whole, deterministically
        (the manifest keeps the address itself)."""
        return file_name(self.email)

    @property
    def profile_name(self) -> str:
        """The Apple profile's file name as the user sees it: the message's attachment (signed or not) and the
        guide that tells the user to open it."""
        return f"{self.slug}.mobileconfig"


def file_name(address: str) -> str:
    data = address.encode("utf-8")
    if len(data) <= NAME_BYTES:
        return address
    digest = hashlib.sha256(data).hexdigest()[:16]
    return data[:NAME_BYTES - 17].decode("utf-8", errors="ignore") + "~" + digest


def login(spec: Spec, mailbox: Mailbox, server: Server) -> str:
    """The user name `mailbox` logs in to `server` with, as every per-account file gives it: the server's
    template (model.user_template: an extra server without one takes its primary's), and where that is the
    primary incoming one, the mailbox's own user name (an account's `username` overrides it)."""
    template = user_template(spec, server)
    if template == spec.incoming.username and not (isinstance(server, OutgoingServer) and not server.same_credentials):
        return mailbox.username
    return mailbox.expand(template)


def split_address(address: str) -> tuple[str, str]:
    """'Mario.Rossi@Bücher.example' -> ('Mario.Rossi', 'xn--bcher-kva.example'); ValueError when invalid."""
    address = address.strip()  # ' mario@esempio.it' from a hand-made list: the spaces are not part of it
    if address.count("@") != 1:
        raise ValueError(f"'{address}' is not an e-mail address (it needs exactly one @)")
    local, domain = address.split("@")
    if not local or len(local) > 64 or not _LOCAL_RE.match(local) or local.startswith(".") \
            or local.endswith(".") or ".." in local:
        composed = unicodedata.normalize("NFC", local)
        if composed != local and _LOCAL_RE.match(composed):  # 'e' + U+0301 from a Mac's file names or a PDF
            raise ValueError(f"'{address}' has an invalid part before the @: it spells an accented letter as a "
                             "letter plus a combining accent; type the address again, or save the list with "
                             "composed characters (Unicode NFC)")
        raise ValueError(f"'{address}' has an invalid part before the @")
    return local, to_a_label(domain)


class AccountSource:
    """Iterates the mailboxes of a spec, recording problems instead of stopping at the first."""

    def __init__(self, loaded: LoadedSpec) -> None:
        self.loaded = loaded
        self.spec: Spec = loaded.spec
        self.problems: list[Problem] = []
        # A problem that kept a file from being read to its end (the accounts or passwords CSV): the accounts
        # after it are unknown, so even --keep-going cannot build "the valid ones".
        self.unread: Problem | None = None

    def __iter__(self) -> Iterator[Mailbox]:
        seen: dict[str, int] = {}  # address -> packed position of its first row (see _pack)
        # Incoming host and user name -> packed position of the first account logging in with them. Only a user
        # name without the whole address (%EMAILLOCALPART%, %REALNAME%, a literal) can be two accounts' own.
        self._logins: dict[str, int] | None = None if "%EMAILADDRESS%" in self.spec.incoming.username else {}
        index = 0
        passwords = self._load_passwords()
        for data, position, where in self._raw_accounts():
            try:
                account = AccountSpec.model_validate(data)
            except ValidationError as exc:
                self.problems.extend(problems_from(exc, AccountSpec, data, where))
                continue
            mailbox = self._resolve(account, index, position, where, seen, passwords)
            if mailbox is not None:
                index += 1
                yield mailbox
        if self.spec.passwords.include and self.spec.passwords.from_env and index > 1:
            self.problems.append(Problem(self.loaded.where("passwords", "from_env"),
                                         "passwords.from_env gives one password but the spec has "
                                         f"{index} accounts", "use passwords.from_file with one row per account"))

    # Every address is remembered for the duplicate check; a Position object per address cost ~70 bytes more
    # than one int, which adds up at 100,000 rows. Packed: line << 17 | column << 1 | (1 if in the CSV).
    def _pack(self, position: Position) -> int:
        in_csv = position.file != self.loaded.document.file
        return position.line << 17 | min(position.column, 0xFFFF) << 1 | in_csv

    def _unpack(self, packed: int) -> Position:
        file = str(self.loaded.base_dir / self.spec.accounts_csv) if packed & 1 and self.spec.accounts_csv else \
            self.loaded.document.file
        return Position(file, packed >> 17, (packed >> 1) & 0xFFFF)

    def check_all(self) -> int:
        """Validate every account (one streaming pass); return the count of valid ones."""
        return sum(1 for _ in self)

    def _resolve(self, account: AccountSpec, index: int, position: Position, where: Callable[..., Position],
                 seen: dict[str, int], passwords: PasswordLookup | None) -> Mailbox | None:
        checked = _address(account.email, self.spec.provider.domains, where(("email",)))
        if isinstance(checked, Problem):
            self.problems.append(checked)
            return None
        local, domain = checked
        email = f"{local}@{domain}"
        key = email.lower()
        if key in seen:
            self.problems.append(_duplicate(email, self._unpack(seen[key]), where(("email",))))
            return None
        notify = None
        if account.notify is not None:
            try:
                notify = "@".join(split_address(account.notify))  # the domain as an A-label, as for the address
            except ValueError as exc:
                self.problems.append(Problem(where(("notify",)), str(exc), "correct the notify address"))
                return None
        proto = Mailbox(index=index, name=account.name, email=email, local=local, domain=domain, username="",
                        smtp_username="", description=account.description, position=position)
        incoming_user = account.username or proto.expand(self.spec.incoming.username)
        if self._logins is not None:
            host = proto.host(self.spec.incoming)
            first = self._logins.setdefault(f"{host.lower()} {incoming_user.lower()}", self._pack(position))
            if first != self._pack(position):
                # Both would be set up to read one mailbox: the second user gets the first one's mail.
                self.problems.append(Problem(
                    where(("username",) if account.username else ("email",)),
                    f"'{email}' would log in to {host} as '{incoming_user}', as the account at "
                    f"{self._unpack(first)} does: both would read one mailbox",
                    "use username: \"%EMAILADDRESS%\" if the server knows users by address, or give one of the "
                    "accounts its own username (one mailbox under two addresses is listed once)"))
                return None
        seen[key] = self._pack(position)
        password = None
        if passwords is not None:
            password = passwords(key)
            if password == "":
                return None  # its row in the passwords file is reported already
            if password is None:
                self.problems.append(Problem(where(("email",)), f"no password for '{email}' in the passwords file",
                                             "add a row for it, or set passwords.include: false"))
                return None
        same = self.spec.outgoing.same_credentials
        smtp_user = incoming_user if same else proto.expand(self.spec.outgoing.username)
        return Mailbox(index=index, name=account.name, email=email, local=local, domain=domain,
                       username=incoming_user, smtp_username=smtp_user, description=account.description,
                       position=position, password=password,
                       language=account.language or self.spec.delivery.language, notify=notify)

    def _raw_accounts(self) -> Iterator[tuple[Any, Position, Callable[..., Position]]]:
        for i, data in enumerate(self.loaded.document.data.get("accounts") or []):
            def where(loc: tuple[Any, ...], key: bool = False, i: int = i) -> Position:
                return self.loaded.document.where(("accounts", i, *loc), key)
            yield data, where(()), where
        if self.spec.accounts_csv is not None:
            yield from self._csv_rows()

    def _csv_rows(self) -> Iterator[tuple[Any, Position, Callable[..., Position]]]:
        path = self.loaded.base_dir / self.spec.accounts_csv  # type: ignore[operator]
        display = str(path)
        try:
            handle = open_regular(path)
        except OSError as exc:
            self.problems.append(Problem(self.loaded.where("accounts_csv"), f"cannot read {display}: "
                                         f"{exc.strerror}", "check the path (relative to the spec file)"))
            return
        with handle:
            try:
                yield from _account_rows(records(handle, display), display, self.problems)
            except CsvProblem as exc:
                self.problems.append(exc.problem)
                self.unread = exc.problem

    def _load_passwords(self) -> PasswordLookup | None:
        cfg = self.spec.passwords
        if not cfg.include:
            return None
        if cfg.from_env is not None:
            value = os.environ.get(cfg.from_env)
            at = self.loaded.where("passwords", "from_env")
            if not value:
                self.problems.append(Problem(at, f"environment variable {cfg.from_env} is not set or empty",
                                             f"export {cfg.from_env}=... before the run"))
                return lambda _address: ""  # the problem above stops the build; no error per account
            bad = _PASSWORD_BAD_RE.search(value)
            if bad:
                self.problems.append(Problem(at, f"the password in {cfg.from_env} contains a control character "
                                             f"(U+{ord(bad[0]):04X}) that a profile cannot carry",
                                             "set a password without control characters"))
                return lambda _address: ""
            return lambda _address: value
        assert cfg.from_file is not None  # Passwords validates: include needs one source
        path = self.loaded.base_dir / cfg.from_file
        display = str(path)
        out: dict[str, str] = {}
        try:
            with open_regular(path) as handle:
                out = _passwords(records(handle, display), display, self.problems)
        except OSError as exc:
            self.problems.append(Problem(self.loaded.where("passwords", "from_file"),
                                         f"cannot read passwords file: {exc.strerror}", "check the path"))
        except CsvProblem as exc:
            self.problems.append(exc.problem)
            self.unread = exc.problem
        return out.get


def _passwords(found: Iterator[Record], display: str, problems: list[Problem]) -> dict[str, str]:
    """email -> password; a repeated address, an empty or unusable password is a located problem."""
    header = read_header(found, display, ("email", "password"), None)
    col_email, col_password = header.index("email"), header.index("password")
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for record in found:
        if record.problem is not None:
            problems.append(record.problem)
            continue
        if len(record.fields) != len(header):
            problems.append(Problem(record.position(display, min(len(record.fields), len(header))),
                                    f"row has {len(record.fields)} fields, the header names {len(header)}",
                                    "quote values that contain commas"))
            continue
        email, password = record.fields[col_email].strip().lower(), record.fields[col_password]
        if email in first_line:
            problems.append(Problem(record.position(display, col_email), f"'{email}' appears twice in the "
                                    f"passwords file (first at line {first_line[email]})", "keep one row per address"))
            continue
        first_line[email] = record.line
        bad = _PASSWORD_BAD_RE.search(password)
        out[email] = ""  # reported here; the account is left out without a second problem
        if not password:
            problems.append(Problem(record.position(display, col_password), f"empty password for '{email}'",
                                    "give the password, or remove the row"))
        elif bad:
            problems.append(Problem(record.position(display, col_password), f"the password for '{email}' contains "
                                    f"a control character (U+{ord(bad[0]):04X}) that a profile cannot carry",
                                    "change the password, or leave this account out of the passwords file"))
        else:
            out[email] = password
    return out


def _address(address: str, domains: Collection[str] | None, at: Position) -> tuple[str, str] | Problem:
    """(local part, A-label domain) of an account's address, or the problem with it (not an address, or not
    in `domains` when they are known)."""
    try:
        local, domain = split_address(address)
    except ValueError as exc:
        return Problem(at, str(exc), "correct the address")
    if domains is not None and domain not in domains:
        return Problem(at, f"'{address}' is not in the provider's domains ({', '.join(domains)})",
                       f"add {domain} to provider.domains or correct the address")
    return local, domain


def _duplicate(email: str, first: Position, at: Position) -> Problem:
    return Problem(at, f"duplicate address '{email}' (first at {first})", "each mailbox may appear only once")


def address_problems(doc: Document, base_dir: Path) -> list[Problem]:
    """The address problems of a spec the model refused, so that they come in the same run as the model's:
    every inline and CSV account's address checked for syntax, domain (when provider.domains can be read)
    and duplicates, as AccountSource checks them once the spec is valid. Rows the model would refuse for
    other reasons are left to the run after the spec is fixed."""
    data = doc.data if isinstance(doc.data, dict) else {}
    provider = data.get("provider")
    raw_domains = provider.get("domains") if isinstance(provider, dict) else None
    domains: list[str] | None = None
    if isinstance(raw_domains, list) and all(isinstance(d, str) for d in raw_domains):
        try:
            domains = [to_a_label(d) for d in raw_domains]
        except ValueError:
            domains = None
    problems: list[Problem] = []

    def rows() -> Iterator[tuple[Any, Callable[..., Position]]]:
        inline = data.get("accounts")
        for i, item in enumerate(inline if isinstance(inline, list) else []):
            yield item, lambda loc, key=False, i=i: doc.where(("accounts", i, *loc), key)
        csv_name = data.get("accounts_csv")
        if not isinstance(csv_name, str) or not csv_name:
            return
        path = base_dir / csv_name
        try:
            handle = open_regular(path)
        except OSError as exc:
            problems.append(Problem(doc.where(("accounts_csv",)), f"cannot read {path}: {exc.strerror}",
                                    "check the path (relative to the spec file)"))
            return
        with handle:
            try:
                for row, _position, where in _account_rows(records(handle, str(path)), str(path), problems):
                    yield row, where
            except CsvProblem as exc:
                problems.append(exc.problem)

    seen: dict[str, Position] = {}
    for item, where in rows():
        if not isinstance(item, dict) or not isinstance(item.get("email"), str):
            continue
        at = where(("email",))
        checked = _address(item["email"], domains, at)
        if isinstance(checked, Problem):
            problems.append(checked)
            continue
        key = f"{checked[0]}@{checked[1]}".lower()
        if key in seen:
            problems.append(_duplicate(f"{checked[0]}@{checked[1]}", seen[key], at))
        else:
            seen[key] = at
    return problems


def _account_rows(found: Iterator[Record], display: str, problems: list[Problem]) -> Iterator[
        tuple[Any, Position, Callable[..., Position]]]:
    header = read_header(found, display, ("name", "email"), CSV_COLUMNS)  # CsvProblem: no row can be read
    for record in found:
        if record.problem is not None:
            problems.append(record.problem)
            continue
        row = record.fields
        if len(row) > len(header):
            problems.append(Problem(record.position(display, len(header)),
                                    f"row has {len(row)} fields, the header names {len(header)}",
                                    "quote values that contain commas"))
            continue
        missing = [h for h in ("name", "email") if header.index(h) >= len(row)]
        if missing:  # the model would say "missing required key 'email' in the spec"
            problems.append(Problem(record.position(display, len(row)), f"row has {len(row)} field"
                                    f"{'s' if len(row) != 1 else ''}, without the {' and '.join(missing)} column"
                                    f"{'s' if len(missing) != 1 else ''}", f"give every row {','.join(header)}"))
            continue
        # Spaces around a value are never meant (a spreadsheet saved with ", " between fields): dropped, as the
        # passwords file drops them around its addresses.
        data = {h: v.strip() for h, v in zip(header, row, strict=False)
                if not (h != "name" and h != "email" and v.strip() == "")}

        def where(loc: tuple[Any, ...], key: bool = False, record: Record = record) -> Position:
            if loc and loc[0] in header:
                return record.position(display, header.index(str(loc[0])))
            return record.position(display)

        yield data, record.position(display), where


def load_accounts(loaded: LoadedSpec) -> list[Mailbox]:
    """All mailboxes, or SpecError with every problem (for small specs and tests)."""
    source = AccountSource(loaded)
    mailboxes = list(source)
    if source.problems:
        raise SpecError(source.problems)
    return mailboxes


def estimate_accounts(loaded: LoadedSpec) -> int:
    """Inline accounts plus CSV data lines: the total a progress bar shows (cheap: lines are only counted)."""
    count = len(loaded.spec.accounts)
    if loaded.spec.accounts_csv is not None:
        try:
            with open_regular(loaded.base_dir / loaded.spec.accounts_csv) as handle:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
            count += max(lines - 1, 0)
        except OSError:
            pass
    return count


def mailbox_for_address(loaded: LoadedSpec, address: str, name: str | None = None) -> Mailbox:
    """A mailbox for an address the spec does not list (what a service answers for any address of a served
    domain, as automx2 does): address checks and user names exactly as for a listed account. The name
    defaults to the address. ValueError (with a message for the user) when the address is invalid or its
    domain is not one of provider.domains."""
    spec = loaded.spec
    local, domain = split_address(address.strip())
    if domain not in spec.provider.domains:
        raise ValueError(f"'{address}' is not in the provider's domains ({', '.join(spec.provider.domains)})")
    email = f"{local}@{domain}"
    shown = name or email
    proto = Mailbox(index=0, name=shown, email=email, local=local, domain=domain, username="", smtp_username="",
                    description=None, position=loaded.where())
    incoming_user = proto.expand(spec.incoming.username)
    smtp_user = incoming_user if spec.outgoing.same_credentials else proto.expand(spec.outgoing.username)
    return Mailbox(index=0, name=shown, email=email, local=local, domain=domain, username=incoming_user,
                   smtp_username=smtp_user, description=None, position=loaded.where(),
                   language=spec.delivery.language)
