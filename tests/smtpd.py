"""A real SMTP server for the delivery tests: aiosmtpd on 127.0.0.1 and a free port, with implicit TLS,
STARTTLS and AUTH as asked, scripted replies (451 then 250, 550) and every accepted message kept.

Its certificate is made here for 127.0.0.1 and given to the client as --cafile, so TLS is verified as in
production (host name included)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER, PASSWORD = "sender@esempio.it", "smtp-Secret-42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem doubles as the client's CA file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtpd-cert.pem", folder / "smtpd-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


@dataclass
class Handler:
    """Keeps accepted messages; `script(recipient, attempt)` may answer instead of 250 (e.g. '451 ...')."""

    script: Callable[[str, int], str | None] | None = None
    delay: float = 0.0  # seconds before answering DATA (for the crash test)
    messages: list[Received] = field(default_factory=list)
    data_seen: int = 0  # DATA commands that reached the handler, answered or not
    attempts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:


        recipient = envelope.rcpt_tos[0]
        with self.lock:
            self.data_seen += 1
            attempt = self.attempts.get(recipient, 0)
            self.attempts[recipient] = attempt + 1
        answer = self.script(recipient, attempt) if self.script else None
        if answer is None:
            # Queued before the reply goes out: a client that dies now is in RFC 1047's gap.
            with self.lock:
                self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                              bytes(envelope.original_content)))
        if self.delay:
            await asyncio.sleep(self.delay)
        return answer or "250 2.0.0 OK queued"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and \
        auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@contextmanager
def smtp_server(folder: Path, security: str, handler: Handler | None = None,
                auth: bool = True) -> Iterator[tuple[Handler, int, Path]]:
    """Start aiosmtpd; yields (handler, port, CA file). security: ssl | starttls | none."""
    handler = handler or Handler()
    cert, key = make_certificate(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = free_port()
    kwargs: dict[str, Any] = {}
    if auth:
        kwargs |= {"authenticator": _authenticator, "auth_required": True}
    if security == "ssl":
        kwargs |= {"ssl_context": context, "auth_require_tls": False}
    elif security == "starttls":
        kwargs |= {"tls_context": context, "require_starttls": True}
    else:
        kwargs |= {"auth_require_tls": False}
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    # Implicit TLS: aiosmtpd only knows STARTTLS as "TLS" and warns when AUTH is allowed without it; the
    # connection is TLS from the first byte here, so that warning does not apply.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
        controller.start()
        try:
            yield handler, port, cert
        finally:
            controller.stop()
