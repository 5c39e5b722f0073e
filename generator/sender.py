"""Send the messages of a build through the admin's SMTP server, resumably (see generator/outbox.py).

Reads OUT/manifest.json and the .eml files `mailprofile messages` wrote; before anything goes out, each
message's attachment is checked against the manifest's sha256 of that account's profile, and a message
whose profile carries a password is refused unless allow_secrets. The password of the SMTP account is held
in memory only: never logged, never in the journal.

Stdlib smtplib (SERVICE-AND-DELIVERY §B.3): SMTP_SSL for implicit TLS, starttls() for 587; MAIL/RCPT/DATA
are issued one by one so that each reply lands in the journal and a drop can be placed before or inside
the RFC 1047 gap.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Any

from generator.errors import BuildError
from generator.outbox import Journal, Row
from generator.output import Lock, is_our_folder
from generator.targets.message import CONTENT_HEADER, SECRET_HEADER

EXIT_SEND_FAILED = 3
_DATE_RE = re.compile(rb"^Date: [^\r\n]*\r\n", re.MULTILINE)


class UnsafeSend(ValueError):
    """A send that would leak a secret or send a password in clear: refused before anything is sent."""


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    security: str  # ssl | starttls | none
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: Path | None = None
    timeout: float = 30.0


@dataclass
class SendOptions:
    rate: float | None = None  # messages per second
    dry_run: bool = False
    only_changed: bool = False
    retry_uncertain: bool = False
    allow_secrets: bool = False
    retries: int = 4
    backoff: float = 2.0
    journal: Path | None = None  # default: <OUT>.outbox.sqlite beside the output folder


@dataclass(frozen=True)
class OutboxMessage:
    account: str
    path: str  # relative to OUT
    sender: str
    recipient: str
    message_id: str
    content: str
    secret: bool
    sha256: str  # of the .eml as checked against the manifest: what is sent must still be these bytes


@dataclass
class SendSummary:
    batch: str
    journal: Path
    sent: int = 0
    failed: int = 0
    uncertain: int = 0
    pending: int = 0
    skipped: int = 0  # --only-changed: already sent with the same content
    already: int = 0  # sent by an earlier run of this batch
    would_send: int = 0  # --dry-run
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        parts = [f"{self.sent} sent", f"{self.failed} failed", f"{self.uncertain} uncertain",
                 f"{self.pending} still pending", f"{self.already} sent before", f"{self.skipped} unchanged skipped"]
        if self.would_send:
            parts.insert(0, f"{self.would_send} would be sent (dry run)")
        return f"send: {', '.join(parts)}; journal {self.journal}"


def journal_path(out: Path, options: SendOptions) -> Path:
    path = (options.journal or out.resolve().with_name(out.resolve().name + ".outbox.sqlite")).resolve()
    root = out.resolve()
    if path == root or root in path.parents:  # a rebuild replaces OUT as a whole: the journal would go with it
        raise BuildError(f"--journal {path} is inside {out}, which the next build replaces (and with it the record "
                         "of what was sent); keep the journal beside the output")
    return path


def load_outbox_messages(out: Path) -> list[OutboxMessage]:
    """The messages of a build, each checked against the manifest (attachment sha256 = the profile's entry)."""
    if not is_our_folder(out):
        raise BuildError(f"{out}: not a mailprofile output (no manifest.json written by mailprofile): build the "
                         "messages with mailprofile messages SPEC --out OUT")
    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        return _outbox(out, manifest)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BuildError(f"{out}: the manifest or a message in it cannot be read ({type(exc).__name__}: {exc}): "
                         "rebuild with mailprofile messages, do not edit the output") from None


def _outbox(out: Path, manifest: dict[str, Any]) -> list[OutboxMessage]:
    root = out.resolve()
    for entry in manifest["files"]:
        target = (root / entry["path"]).resolve()
        if root not in target.parents:  # a manifest names files inside its own folder, nothing else
            raise ValueError(f"the manifest names {entry['path']}, outside {out}")
    profiles: dict[str, str] = {}
    for entry in manifest["files"]:
        # The signed profile is the one attached when there is one (it comes after the unsigned).
        if entry["kind"] in ("mobileconfig", "mobileconfig-signed") and entry["account"] and \
                (entry["kind"] == "mobileconfig-signed" or entry["account"] not in profiles):
            profiles[entry["account"]] = entry["sha256"]
    messages = []
    for entry in manifest["files"]:
        if entry["kind"] != "eml":
            continue
        data = (out / entry["path"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise BuildError(f"{entry['path']} differs from its manifest entry: rebuild, do not edit messages")
        msg = BytesParser(policy=policy.default).parsebytes(data)
        attached = [hashlib.sha256(p.get_content()).hexdigest() for p in msg.iter_attachments()]
        if attached != [profiles.get(entry["account"])]:
            raise BuildError(f"{entry['path']}: its attachment is not the profile the manifest lists for "
                             f"{entry['account']}")
        # The account as the manifest names it: the header is for people (RFC 2047 words for a non-ASCII local
        # part, which the email package's parser reads back with spaces inside when there are several).
        messages.append(OutboxMessage(account=entry["account"], path=entry["path"],
                                      sender=parseaddr(str(msg["From"]))[1], recipient=parseaddr(str(msg["To"]))[1],
                                      message_id=str(msg["Message-ID"]), content=str(msg[CONTENT_HEADER]),
                                      secret=msg[SECRET_HEADER] is not None, sha256=entry["sha256"]))
    if not messages:
        raise BuildError(f"{out}: the build has no messages: run mailprofile messages SPEC --out {out}")
    return messages


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_safety(messages: list[OutboxMessage], target: SmtpTarget, options: SendOptions,
                 warn: Callable[[str], None]) -> None:
    if target.security == "none":
        if target.password or target.user:
            raise UnsafeSend("--security none would send the SMTP password in clear: use ssl or starttls")
        if not _is_loopback(target.host):
            raise UnsafeSend(f"--security none is only for a relay on this machine (localhost, 127.0.0.0/8, ::1), "
                             f"not {target.host}: use ssl or starttls")
    secret = [m.account for m in messages if m.secret]
    if secret and not options.allow_secrets:
        raise UnsafeSend(f"{len(secret)} message(s) carry a profile with a password (first: {secret[0]}); "
                         "mailboxes and backups keep attachments for years: give --allow-secrets if you mean it")
    if secret:
        warn(f"{len(secret)} message(s) carry a password in their profile (--allow-secrets)")


class _Connection:
    """One SMTP session, opened lazily and re-opened after a drop."""

    def __init__(self, target: SmtpTarget) -> None:
        self.target = target
        self.smtp: smtplib.SMTP | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.target.cafile) if self.target.cafile else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def open(self) -> smtplib.SMTP:
        if self.smtp is not None:
            return self.smtp
        t = self.target
        # Not connected in the constructor: a failed handshake or login must still close the socket.
        smtp = smtplib.SMTP_SSL(timeout=t.timeout, context=self.context()) if t.security == "ssl" else \
            smtplib.SMTP(timeout=t.timeout)
        try:
            smtp._host = t.host  # type: ignore[attr-defined]  # SMTP_SSL checks the certificate against it
            code, text = smtp.connect(t.host, t.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, text)
            if t.security == "starttls":
                smtp.starttls(context=self.context())
            if t.user:
                smtp.login(t.user, t.password or "")
            smtp.ehlo_or_helo_if_needed()  # mail() does not greet by itself
        except BaseException:
            smtp.close()
            raise
        self.smtp = smtp
        return smtp

    def drop(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.close()
            finally:
                self.smtp = None

    def quit(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.smtp.quit()
            self.smtp = None


class _Temporary(Exception):
    def __init__(self, reply: str, uncertain: bool = False) -> None:
        super().__init__(reply)
        self.reply, self.uncertain = reply, uncertain


class _Unreachable(_Temporary):
    """The session could not be opened (refused, timed out, greeting 4xx): nothing about one message."""


class ServerUnusable(BuildError):
    """The server cannot be used as given (TLS not verified or not spoken, STARTTLS or AUTH not offered, no such
    host): no retry and no other message can succeed, so the run stops before its next message."""


def open_session(conn: _Connection) -> smtplib.SMTP:
    """conn.open(), its failures sorted: UnsafeSend (login refused), ServerUnusable (a setting is wrong), or
    _Unreachable (worth another try later)."""
    t = conn.target
    where = f"{t.host}:{t.port} (--security {t.security})"
    try:
        return conn.open()
    except smtplib.SMTPAuthenticationError as exc:
        raise UnsafeSend(f"SMTP authentication failed: {_reply(exc.smtp_code, exc.smtp_error)}") from None
    except ssl.SSLCertVerificationError as exc:
        raise ServerUnusable(f"{where}: the server's certificate is not trusted ({exc.verify_message}) — give "
                             "--cafile with the CA that issued it, or use the name the certificate is for") from None
    except ssl.SSLError as exc:
        raise ServerUnusable(f"{where}: TLS failed ({exc.reason or exc}) — check the port and --security: ssl is "
                             "implicit TLS (usually 465), starttls upgrades a plain session (usually 587)") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise ServerUnusable(f"{where}: {str(exc).rstrip('.')} — check the port and --security (AUTH is usually "
                             "offered only after TLS)") from None
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise _Unreachable(f"connection failed: {exc}") from None
        raise ServerUnusable(f"{where}: no such host ({exc.strerror}) — check --smtp") from None
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            raise ServerUnusable(f"{where}: the server refused the session: {_reply(exc.smtp_code, exc.smtp_error)}"
                                 " — check --smtp, --security and --user") from None
        raise _Unreachable(f"connection failed: {_reply(exc.smtp_code, exc.smtp_error)}") from None
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        # "Connection refused", not "[Errno 111] Connection refused".
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _Unreachable(f"connection failed: {reason[:1].lower() + reason[1:]}") from None
    except smtplib.SMTPException as exc:  # e.g. "No suitable authentication method found."
        raise ServerUnusable(f"{where}: {exc} — check --security and --user") from None


class _Permanent(Exception):
    pass


def _reply(code: int, text: bytes | str) -> str:
    return f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}".strip()


def _transmit(conn: _Connection, msg: OutboxMessage, data: bytes) -> str:
    """MAIL, RCPT, DATA. Returns the 250 reply; raises _Temporary or _Permanent (or open_session's errors)."""
    smtp = open_session(conn)
    try:
        code, text = smtp.mail(msg.sender)
        if code >= 400:
            smtp.rset()
            raise (_Permanent if code >= 500 else _Temporary)(_reply(code, text))
        code, text = smtp.rcpt(msg.recipient)
        if code >= 400:
            smtp.rset()
            raise (_Permanent if code >= 500 else _Temporary)(_reply(code, text))
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        conn.drop()
        raise _Temporary(f"connection dropped before DATA: {exc}") from None
    try:
        code, text = smtp.data(data)
    except smtplib.SMTPDataError as exc:
        smtp.rset()
        raise (_Permanent if exc.smtp_code >= 500 else _Temporary)(_reply(exc.smtp_code, exc.smtp_error)) from None
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        # Inside DATA: the server may hold the message already (RFC 1047).
        conn.drop()
        raise _Temporary(f"connection dropped during DATA: {exc}", uncertain=True) from None
    if code >= 400:  # smtplib raises for these; kept for servers that answer oddly
        raise (_Permanent if code >= 500 else _Temporary)(_reply(code, text))
    return _reply(code, text)


def stamped(data: bytes, date: str) -> bytes:
    """The message with its Date header set to the send time kept in the journal (same on every retry)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    head2, n = _DATE_RE.subn(f"Date: {date}\r\n".encode("ascii"), head + b"\r\n", count=1)
    if n != 1:
        raise BuildError("a message without a Date header: rebuild with mailprofile messages")
    return head2[:-2] + sep + body


def send_all(out: Path, messages: list[OutboxMessage], target: SmtpTarget, options: SendOptions,
             progress: Callable[[int], None] | None = None, warn: Callable[[str], None] = lambda _t: None,
             clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> SendSummary:
    check_safety(messages, target, options, warn)
    batch = hashlib.sha256((out / "manifest.json").read_bytes()).hexdigest()[:16]
    path = journal_path(out, options)
    # A rebuild of OUT during the run would have the rest of this batch go out with the next build's bytes.
    lock = Lock(out, role="send")
    try:
        journal = Journal(path)
    except BaseException:
        lock.release()
        raise
    summary = SendSummary(batch=batch, journal=path)
    try:
        for stale in journal.recover():
            warn(f"{stale.account}: a previous run stopped while sending {stale.message_id} to {stale.recipient}; it "
                 "may or may not have arrived (uncertain; re-send with --retry-uncertain)")
        todo: list[tuple[OutboxMessage, Row]] = []
        for msg in messages:
            if options.only_changed and journal.get(batch, msg.message_id) is None \
                    and journal.sent_elsewhere(batch, msg.message_id):
                summary.skipped += 1
                if progress is not None:
                    progress(1)
                continue
            journal.add(batch, msg.message_id, msg.account, msg.recipient, msg.content, msg.path)
            row = journal.get(batch, msg.message_id)
            assert row is not None
            if row.state != "pending" and not (row.state == "uncertain" and options.retry_uncertain) \
                    and progress is not None:
                progress(1)  # nothing to do for it: the bar still counts it
            if row.state == "sent":
                summary.already += 1
            elif row.state == "failed":
                summary.failed += 1
                summary.lines.append(f"failed earlier  {msg.account} -> {msg.recipient}: {row.reply}")
            elif row.state == "uncertain" and not options.retry_uncertain:
                summary.uncertain += 1
                summary.lines.append(f"uncertain  {msg.account} -> {msg.recipient} ({msg.message_id})")
            else:
                todo.append((msg, row))
        if options.dry_run:
            conn = _Connection(target)
            try:
                open_session(conn)  # prove the server, TLS and credentials work
            except _Unreachable as exc:
                raise BuildError(f"cannot reach {target.host}:{target.port}: {exc.reply} — check --smtp "
                                 "(host and port) and that the server is running and reachable from here") from None
            finally:
                conn.quit()
            summary.would_send = len(todo)
            summary.lines += [f"would send  {m.account} -> {m.recipient}  {m.path}" for m, _ in todo]
            return summary
        _send_rows(out, todo, target, options, journal, summary, progress, clock, sleep)
    finally:
        journal.close()
        lock.release()
    return summary


def _send_rows(out: Path, todo: list[tuple[OutboxMessage, Row]], target: SmtpTarget, options: SendOptions,
               journal: Journal, summary: SendSummary, progress: Callable[[int], None] | None,
               clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
    conn = _Connection(target)
    interval = 1.0 / options.rate if options.rate else 0.0
    next_start = clock()
    try:
        for done, (msg, row) in enumerate(todo):
            data = (out / msg.path).read_bytes()
            if hashlib.sha256(data).hexdigest() != msg.sha256:
                raise BuildError(f"{msg.path} changed after the send started (edited by hand?): nothing more was "
                                 "sent; rebuild with mailprofile messages and run send again")
            attempt = 0
            while True:
                wait = next_start - clock()
                if wait > 0:
                    sleep(wait)
                next_start = clock() + interval
                date = row.date or format_datetime_now()
                journal.start(row.batch, msg.message_id, date)  # committed before MAIL FROM
                stored = journal.get(row.batch, msg.message_id)
                assert stored is not None and stored.date is not None
                try:
                    reply = _transmit(conn, msg, stamped(data, stored.date))
                except (UnsafeSend, ServerUnusable) as exc:
                    # Refused at (re)login, or a setting is wrong: nothing went out for this message.
                    journal.finish(row.batch, msg.message_id, "pending", f"not sent: {exc}")
                    raise
                except _Permanent as exc:
                    journal.finish(row.batch, msg.message_id, "failed", str(exc))
                    summary.failed += 1
                    summary.lines.append(f"failed  {msg.account} -> {msg.recipient}: {exc}")
                    break
                except _Temporary as exc:
                    if exc.uncertain:
                        journal.finish(row.batch, msg.message_id, "uncertain", exc.reply)
                        summary.uncertain += 1
                        summary.lines.append(f"uncertain  {msg.account} -> {msg.recipient}: {exc.reply}")
                        break
                    journal.finish(row.batch, msg.message_id, "pending", exc.reply)
                    if attempt >= options.retries and isinstance(exc, _Unreachable):
                        # The server, not this message: the next message would wait out the same retries.
                        left = len(todo) - done
                        summary.pending += left
                        summary.lines.append(f"stopped: {target.host}:{target.port}: {exc.reply} after {attempt + 1} "
                                             f"attempt(s); {left} message(s) still pending — check --smtp (host and "
                                             "port) and that the server is running and reachable from here, then run "
                                             "again")
                        if progress is not None:
                            progress(left)
                        return
                    if attempt >= options.retries:
                        summary.pending += 1
                        summary.lines.append(f"deferred  {msg.account} -> {msg.recipient}: {exc.reply} (run again)")
                        break
                    sleep(backoff_wait(options.backoff, attempt))
                    attempt += 1
                    continue
                journal.finish(row.batch, msg.message_id, "sent", reply)
                summary.sent += 1
                break
            if progress is not None:
                progress(1)
    finally:
        conn.quit()


MAX_BACKOFF = 300.0  # seconds: the doubling back-off stops at five minutes between attempts


def backoff_wait(first: float, attempt: int) -> float:
    """The wait after failed attempt `attempt` (0-based): `first` doubled each time, at most MAX_BACKOFF.
    Uncapped, --retries 30 would wait 34 years before its last attempt, and 2 ** 1100 overflows a float."""
    return min(first * 2.0 ** min(attempt, 64), MAX_BACKOFF)


def format_datetime_now() -> str:
    return format_datetime(datetime.now(UTC))
