"""The accounts work: a real Dovecot + Postfix (tests/mailserver.py) and clients configured only from our files.

No Apple device runs here, so the Apple profile's values (parsed back from the built .mobileconfig) drive
Python's poplib/imaplib/smtplib: a message placed in the mailbox is fetched, a message sent through the
outgoing server arrives. Negative controls: the spec's plain-text fallbacks used as primaries, a port/TLS
mismatch and TLS below 1.2 are refused by the servers, and the tests assert the refusal.
"""

from __future__ import annotations

import base64
import imaplib
import plistlib
import poplib
import secrets
import smtplib
import socket
import ssl
import warnings
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from generator.accounts import load_accounts
from generator.spec import load_spec
from generator.targets.apple import AppleTarget
from generator.targets.base import RenderContext
from tests.conftest import EXAMPLES
from tests.mailserver import PORTS, MailServer, require_server, server_for

pytestmark = pytest.mark.mailserver

SPECS = [EXAMPLES / "provider-pop3.yaml", EXAMPLES / "provider-imap.yaml", EXAMPLES / "school.yaml"]
PASSWORD = secrets.token_urlsafe(16)
IMPLICIT_TLS_PORTS = {993, 995, 465}  # Apple's UseSSL says "TLS"; the well-known port says which kind
TIMEOUT = 10


@pytest.fixture(scope="module")
def server() -> Iterator[MailServer]:
    require_server()
    with server_for(SPECS, PASSWORD) as srv, srv.resolving():
        yield srv


def _apple_accounts() -> list[Any]:
    cases = []
    for spec in SPECS:
        loaded = load_spec(spec)
        mailbox = load_accounts(loaded)[0]
        cases.append(pytest.param(spec, mailbox.email, id=f"{spec.stem}"))
    return cases


def apple_mail_payload(spec: Path, email: str) -> dict[str, Any]:
    """The com.apple.mail.managed payload of the built profile, read back with plistlib."""
    loaded = load_spec(spec)
    mailbox = next(m for m in load_accounts(loaded) if m.email == email)
    files = AppleTarget(RenderContext(loaded)).render_account(mailbox)
    profile = plistlib.loads(next(f.data for f in files if f.kind == "mobileconfig"))
    payload: dict[str, Any] = next(p for p in profile["PayloadContent"]
                                   if p["PayloadType"] == "com.apple.mail.managed")
    return payload


def _message(sender: str, to: str, subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = f"<{secrets.token_hex(8)}@mailprofile.test>"
    msg.set_content("Round trip test.\n")
    return msg.as_bytes()


def _fetch_subjects(server: MailServer, p: dict[str, Any]) -> list[str]:
    host, port, tls = p["IncomingMailServerHostName"], p["IncomingMailServerPortNumber"], \
        p["IncomingMailServerUseSSL"]
    user = p["IncomingMailServerUsername"]
    ctx = server.client_context()
    assert p["IncomingMailServerAuthentication"] == "EmailAuthPassword"
    if p["EmailAccountType"] == "EmailTypePOP":
        pop = poplib.POP3_SSL(host, port, context=ctx, timeout=TIMEOUT) if tls and port in IMPLICIT_TLS_PORTS \
            else poplib.POP3(host, port, timeout=TIMEOUT)
        if tls and port not in IMPLICIT_TLS_PORTS:
            pop.stls(context=ctx)
        try:
            pop.user(user)
            pop.pass_(PASSWORD)
            count, _ = pop.stat()
            return [_subject(b"\n".join(pop.top(i, 0)[1])) for i in range(1, count + 1)]
        finally:
            pop.quit()
    imap = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=TIMEOUT) if tls and port in IMPLICIT_TLS_PORTS \
        else imaplib.IMAP4(host, port, timeout=TIMEOUT)
    if tls and port not in IMPLICIT_TLS_PORTS:
        imap.starttls(ssl_context=ctx)
    try:
        imap.login(user, PASSWORD)
        imap.select("INBOX", readonly=True)
        _, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return [_subject(part[1]) for part in data if isinstance(part, tuple)]
    finally:
        imap.logout()


def _subject(header: bytes) -> str:
    for line in header.decode().splitlines():
        if line.lower().startswith("subject:"):
            return line.split(":", 1)[1].strip()
    return ""


@pytest.mark.parametrize(("spec", "email"), _apple_accounts())
def test_apple_profile_fetches_a_placed_message(server: MailServer, spec: Path, email: str) -> None:
    p = apple_mail_payload(spec, email)
    subject = f"placed {secrets.token_hex(4)}"
    server.deliver(email, _message("someone@example.org", email, subject))
    assert subject in _fetch_subjects(server, p)


@pytest.mark.parametrize(("spec", "email"), _apple_accounts())
def test_apple_profile_sends_a_message_that_arrives(server: MailServer, spec: Path, email: str) -> None:
    p = apple_mail_payload(spec, email)
    host, port, tls = p["OutgoingMailServerHostName"], p["OutgoingMailServerPortNumber"], \
        p["OutgoingMailServerUseSSL"]
    assert tls and p["OutgoingPasswordSameAsIncomingPassword"]
    ctx = server.client_context()
    smtp = smtplib.SMTP_SSL(host, port, context=ctx, timeout=TIMEOUT) if port in IMPLICIT_TLS_PORTS \
        else smtplib.SMTP(host, port, timeout=TIMEOUT)
    with smtp:
        if port not in IMPLICIT_TLS_PORTS:
            smtp.starttls(context=ctx)
        smtp.login(p["OutgoingMailServerUsername"], PASSWORD)
        subject = f"sent {secrets.token_hex(4)}"
        refused = smtp.sendmail(email, [email], _message(email, email, subject))
    assert refused == {}
    arrived = server.wait_for_message(email, subject.encode())
    # Postfix's Received line: ESMTPSA = ESMTP with TLS (S) and SASL authentication (A).
    assert b"with ESMTPSA" in arrived, arrived


def test_a_wrong_password_is_refused(server: MailServer) -> None:
    p = apple_mail_payload(SPECS[0], load_accounts(load_spec(SPECS[0]))[0].email)
    pop = poplib.POP3_SSL(p["IncomingMailServerHostName"], 995, context=server.client_context(), timeout=TIMEOUT)
    try:
        pop.user(p["IncomingMailServerUsername"])
        with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\] Authentication failed"):
            pop.pass_(PASSWORD + "x")
    finally:
        pop.close()


# --- negative controls: what a wrong setting meets ------------------------------------------------------------

def _fallbacks() -> list[Any]:
    loaded = load_spec(SPECS[0])
    s, m = loaded.spec, load_accounts(loaded)[0]
    cases = [pytest.param("incoming", srv.protocol, m.host(srv), srv.port, m.username, id=f"{srv.protocol}-{srv.port}")
             for srv in s.fallbacks.incoming]
    cases += [pytest.param("outgoing", "smtp", m.host(srv), srv.port, m.smtp_username, id=f"smtp-{srv.port}")
              for srv in s.fallbacks.outgoing]
    assert len(cases) == 2, "the POP3 example's plain-text fallbacks are what these controls use"
    return cases


@pytest.mark.parametrize(("role", "protocol", "host", "port", "user"), _fallbacks())
def test_plain_text_fallback_as_primary_is_refused(server: MailServer, role: str, protocol: str, host: str,
                                                   port: int, user: str) -> None:
    """security: none on 110/25, as the spec's fallbacks say: the server refuses the password in clear."""
    if protocol == "pop3":
        pop = poplib.POP3(host, port, timeout=TIMEOUT)
        try:
            with pytest.raises(poplib.error_proto, match="Plaintext authentication disallowed"):
                pop.user(user)
                pop.pass_(PASSWORD)
        finally:
            pop.close()
    else:
        with smtplib.SMTP(host, port, timeout=TIMEOUT) as smtp:
            smtp.ehlo()
            assert not smtp.has_extn("auth"), "AUTH offered without TLS"
            code, reply = smtp.docmd("AUTH", "PLAIN " + base64.b64encode(f"\0{user}\0{PASSWORD}".encode()).decode())
            assert code == 503, (code, reply)
            assert b"authentication not enabled" in reply


def test_plain_imap_login_is_refused(server: MailServer) -> None:
    imap = imaplib.IMAP4("imaps.aruba.it", PORTS["imap"], timeout=TIMEOUT)
    try:
        assert "LOGINDISABLED" in imap.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="Plaintext authentication disallowed"):
            imap.login("giulia.bianchi@esempio.it", PASSWORD)
    finally:
        imap.shutdown()


@pytest.mark.parametrize(("host", "port"), [("pop3s.aruba.it", 110), ("smtps.aruba.it", 25),
                                            ("imaps.aruba.it", 143), ("smtps.aruba.it", 587)])
def test_implicit_tls_on_a_plain_port_fails(server: MailServer, host: str, port: int) -> None:
    """Port/TLS mismatch: security ssl on a plain-text port fails the handshake, it does not fall back."""
    with socket.create_connection((host, port), timeout=TIMEOUT) as raw, \
            pytest.raises(ssl.SSLError, match=r"WRONG_VERSION_NUMBER|wrong version number"):
        server.client_context().wrap_socket(raw, server_hostname=host)


@pytest.mark.parametrize(("host", "port"), [("pop3s.aruba.it", 995), ("smtps.aruba.it", 465),
                                            ("imaps.aruba.it", 993)])
def test_plain_text_on_a_tls_port_gets_no_greeting(server: MailServer, host: str, port: int) -> None:
    """Port/TLS mismatch the other way: a plain-text client on 995/465/993 never sees a server greeting."""
    with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
        raw.sendall(b"USER someone\r\n")  # what a plain-text client says; a TLS server reads it as a bad record
        raw.settimeout(3)
        try:
            reply = raw.recv(1024)
        except (TimeoutError, ConnectionResetError):
            reply = b""
    assert not reply.startswith((b"+OK", b"* OK", b"220")), reply


@pytest.mark.parametrize(("host", "port"), [("pop3s.aruba.it", 995), ("smtps.aruba.it", 465),
                                            ("imaps.aruba.it", 993)])
def test_tls_below_1_2_is_refused(server: MailServer, host: str, port: int) -> None:
    ctx = server.client_context()
    with warnings.catch_warnings():  # deprecated: exactly why the server must refuse it
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that our side would speak TLS 1.1; the server must refuse it
    before = server.logs().count("unsupported protocol")
    with socket.create_connection((host, port), timeout=TIMEOUT) as raw, pytest.raises(ssl.SSLError):
        ctx.wrap_socket(raw, server_hostname=host)
    # The client sees an alert or an EOF; the server's log says why it ended the handshake.
    server.wait_for_log(lambda logs: logs.count("unsupported protocol") > before)
    ok = server.client_context()
    ok.minimum_version = ok.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((host, port), timeout=TIMEOUT) as raw, \
            ok.wrap_socket(raw, server_hostname=host) as tls:
        assert tls.version() == "TLSv1.2"
