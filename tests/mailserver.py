"""A real mail server for the tests: Dovecot (POP3S 995, IMAPS 993) and Postfix (SMTPS 465) on a private
loopback address, with a CA and server certificate made for the run.

Usage (a context manager; everything it starts is stopped by PID and its folder removed, also on failure):

    with MailServer(hosts=["pop3s.aruba.it", "smtps.aruba.it"], domains=["esempio.it"],
                    users={"mario.rossi@esempio.it": "secret"}) as server:
        server.deliver("mario.rossi@esempio.it", message_bytes)      # through Dovecot's LMTP, like Postfix does
        with server.resolving():                                     # the host names -> server.address
            poplib.POP3_SSL("pop3s.aruba.it", 995, context=server.client_context())
        server.messages("mario.rossi@esempio.it")                   # what the mailbox holds now

    server_for([EXAMPLES / "provider-pop3.yaml"], password)          # every host, domain and mailbox of specs

Why it is set up like this:
- It listens on 127.0.0.N (N >= 2), never 127.0.0.1: Dovecot treats a connection whose client address equals
  its own as secure and then allows plain-text login; a client connecting to 127.0.0.2 leaves from 127.0.0.1
  (the kernel's source for the loopback route), so the refusal of plain-text login is real.
- Ports 995/993/465 (and the plain-text 110/143/25/587, there so the negative controls meet a real refusal
  rather than a closed port) are fixed by the spec, so each server takes its own address; a lock file per
  address keeps parallel test workers (and parallel runs on the machine) apart. A port busy with something
  else is a clear failure, not a silent move.
- Dovecot and Postfix read only the files written here (`dovecot -c`, `master -c`), keep their state under a
  private folder, and run in their own sessions, so stopping the process group stops every child.
- Postfix logs to a file (`maillog_file`): containers have no syslog.
- Host names are not written to /etc/hosts: Python clients get a scoped getaddrinfo mapping (`resolving()`),
  Thunderbird gets `network.dns.forceResolve` (see `thunderbird_prefs()`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import errno
import fcntl
import grp
import hashlib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DOVECOT = "/usr/sbin/dovecot"
POSTFIX = "/usr/sbin/postfix"
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
DEBIAN_PACKAGES = "dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix"
PORTS = {"pop3s": 995, "imaps": 993, "smtps": 465, "pop3": 110, "imap": 143, "smtp": 25, "submission": 587}
ADDRESSES = [f"127.0.0.{n}" for n in range(2, 12)]
START_TIMEOUT = 20.0  # seconds; both start in well under a second here
MAIL_USER = "nobody"  # owns the mailboxes (Dovecot refuses to store mail as root)


class MailServerError(RuntimeError):
    """The server could not be set up; the message says why and what to do."""


def available() -> bool:
    return all(Path(p).exists() for p in (DOVECOT, POSTFIX, POSTFIX_MASTER, "/usr/lib/dovecot/lmtp",
                                          "/usr/lib/dovecot/pop3", "/usr/lib/dovecot/imap"))


# --- certificates ---------------------------------------------------------------------------------------------

def _write_ca_and_cert(folder: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """A CA made for this run and a server certificate for every host name (SANs), ECDSA P-256."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mailprofile test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def _ssha512(password: str) -> str:
    """Dovecot's {SSHA512}: base64(sha512(password + salt) + salt)."""
    salt = os.urandom(8)
    return "{SSHA512}" + base64.b64encode(hashlib.sha512(password.encode() + salt).digest() + salt).decode()


# --- configuration --------------------------------------------------------------------------------------------

def _dovecot_conf(root: Path, address: str, cert: Path, key: Path) -> str:
    d = root / "dovecot"
    return f"""\
# Written by tests/mailserver.py; Dovecot reads nothing else (dovecot -c).
base_dir = {d}/run
state_dir = {d}/state
instance_name = mailprofile-test-{address}
log_path = {d}/log
protocols = imap pop3 lmtp
listen = {address}
shutdown_clients = yes
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_username_format = %Lu
passdb {{
  driver = passwd-file
  args = scheme=SSHA512 {d}/users
}}
userdb {{
  driver = static
  args = uid={MAIL_USER} gid={_group_of(MAIL_USER)} home={root}/mail/%u
}}
mail_location = maildir:~/Maildir
first_valid_uid = 1
pop3_uidl_format = %08Xu%08Xv
service imap-login {{
  inet_listener imap {{
    port = {PORTS["imap"]}
  }}
  inet_listener imaps {{
    port = {PORTS["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {PORTS["pop3"]}
  }}
  inet_listener pop3s {{
    port = {PORTS["pop3s"]}
    ssl = yes
  }}
}}
service lmtp {{
  unix_listener lmtp-deliver {{
    mode = 0666
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0666
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@localhost
}}
"""


def _postfix_main_cf(root: Path, address: str, hosts: list[str], domains: list[str], cert: Path, key: Path) -> str:
    p, d = root / "postfix", root / "dovecot"
    return f"""\
# Written by tests/mailserver.py; Postfix reads nothing else (master -c).
compatibility_level = 3.6
queue_directory = {p}/queue
data_directory = {p}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {p}/log
maillog_file_prefixes = {p}
myhostname = {hosts[0]}
mydestination =
mynetworks =
# Postfix accepts only addresses configured on an interface here (127.0.0.2 is routed, not configured);
# the smtpd services in master.cf bind {address} explicitly.
inet_interfaces = loopback-only
inet_protocols = ipv4
alias_maps =
alias_database =
local_recipient_maps =
relayhost =
default_transport = error:this test server relays nowhere
virtual_mailbox_domains = {" ".join(domains)}
virtual_transport = lmtp:unix:{d}/run/lmtp-deliver
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2
smtpd_sasl_type = dovecot
smtpd_sasl_path = {d}/run/auth-postfix
smtpd_sasl_auth_enable = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =
biff = no
smtputf8_enable = no
"""


def _postfix_master_cf(address: str) -> str:
    # No chroot (column 5 "n"): the paths above are absolute. Services as in Debian's master.cf, less the ones
    # a server that only receives and hands mail to LMTP never uses.
    return f"""\
{address}:{PORTS["smtps"]} inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
{address}:{PORTS["submission"]} inet n - n - - smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
{address}:{PORTS["smtp"]} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _group_of(user: str) -> str:
    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


# --- the server -------------------------------------------------------------------------------------------------

class MailServer:
    """Dovecot + Postfix for the given host names, mail domains and users (address -> password)."""

    def __init__(self, hosts: list[str], domains: list[str], users: dict[str, str],
                 addresses: list[str] | None = None) -> None:
        if not available():
            raise MailServerError(f"Dovecot/Postfix not installed (Debian packages {DEBIAN_PACKAGES})")
        if os.geteuid() != 0:
            raise MailServerError("the test mail server binds ports 993/995/465 and needs root")
        self.hosts = sorted(set(hosts))
        self.domains = sorted(set(domains))
        self.users = {k.lower(): v for k, v in users.items()}
        self.addresses = addresses or ADDRESSES
        self.address = ""
        self.root = Path()
        self.ca = Path()
        self._lock: int | None = None
        self._procs: list[subprocess.Popen[bytes]] = []

    # -- lifecycle

    def __enter__(self) -> MailServer:
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()

    def _claim_address(self) -> None:
        busy: list[str] = []
        for address in self.addresses:
            fd = os.open(f"{tempfile.gettempdir()}/mailprofile-mailserver-{address}.lock", os.O_CREAT | os.O_RDWR,
                         0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                busy.append(address)
                continue  # another test worker (or run) has this address
            in_use = [port for port in PORTS.values() if not _bindable(address, port)]
            if in_use:
                os.close(fd)
                raise MailServerError(
                    f"port(s) {', '.join(map(str, in_use))} on {address} are in use by something else on this "
                    "machine (see `ss -ltnp`); stop it — the test mail server needs those ports")
            self._lock, self.address = fd, address
            return
        raise MailServerError(f"every test mail server address is taken ({', '.join(busy)})")

    def _start(self) -> None:
        self._claim_address()
        # Short path under the temp dir: Unix socket paths are limited to 107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="mp-mail-"))
        self.root.chmod(0o755)  # the mail user and Postfix's unprivileged daemons must reach their folders
        (self.root / "certs").mkdir()
        self.ca, cert, key = _write_ca_and_cert(self.root / "certs", self.hosts)
        self._start_dovecot(cert, key)
        self._start_postfix(cert, key)
        self._wait_ready()

    def _start_dovecot(self, cert: Path, key: Path) -> None:
        d = self.root / "dovecot"
        for sub in ("run", "state"):
            (d / sub).mkdir(parents=True)
        (d / "users").write_text("".join(f"{u}:{_ssha512(p)}\n" for u, p in self.users.items()))
        (d / "users").chmod(0o640)
        shutil.chown(d / "users", "root", "dovecot")  # read by Dovecot's auth process, which runs as dovecot
        mail = self.root / "mail"
        mail.mkdir()
        shutil.chown(mail, MAIL_USER, _group_of(MAIL_USER))
        conf = d / "dovecot.conf"
        conf.write_text(_dovecot_conf(self.root, self.address, cert, key))
        self._spawn([DOVECOT, "-F", "-c", str(conf)], d / "stdout")

    def _start_postfix(self, cert: Path, key: Path) -> None:
        p = self.root / "postfix"
        # The configuration in its own folder: `postfix check` wants everything under it owned by root.
        etc = p / "etc"
        for sub in ("etc", "queue", "data"):
            (p / sub).mkdir(parents=True)
        shutil.chown(p / "data", "postfix", "postfix")
        (etc / "main.cf").write_text(_postfix_main_cf(self.root, self.address, self.hosts, self.domains, cert, key))
        (etc / "master.cf").write_text(_postfix_master_cf(self.address))
        # `postfix check` creates the queue folders with the owners and modes Postfix wants.
        check = subprocess.run([POSTFIX, "-c", str(etc), "check"], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            # Postfix prints its reason only to a terminal (or syslog, absent here).
            raise MailServerError(f"`postfix -c {etc} check` failed ({check.returncode}); run it in a terminal "
                                  "to see why")
        self._spawn([POSTFIX_MASTER, "-c", str(etc), "-d"], p / "stdout", env={"MAIL_CONFIG": str(etc)})

    def _spawn(self, argv: list[str], out: Path, env: dict[str, str] | None = None) -> None:
        with out.open("wb") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True,
                                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})})
        self._procs.append(proc)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        pending = set(PORTS.values())
        lmtp = self.root / "dovecot" / "run" / "lmtp-deliver"
        while pending or not lmtp.exists():
            for proc in self._procs:
                if proc.poll() is not None:
                    raise MailServerError(f"{proc.args!r} exited ({proc.returncode}) at start:\n{self.logs()}")
            for port in list(pending):
                with contextlib.suppress(OSError), socket.create_connection((self.address, port), timeout=0.5):
                    pending.discard(port)
            if time.monotonic() > deadline:
                raise MailServerError(f"not listening on {sorted(pending)} after {START_TIMEOUT:.0f}s:\n{self.logs()}")
            time.sleep(0.05)

    @property
    def process_groups(self) -> list[int]:
        """The process group ids of Dovecot and Postfix (each runs in its own session)."""
        return [p.pid for p in self._procs]

    def _stop(self) -> None:
        for proc in reversed(self._procs):
            # Own session (start_new_session): the process group is the master and every child it forked.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
            # Children that outlive the master (Postfix daemons finish their request first) get the group too.
            for _ in range(100):
                try:
                    os.killpg(proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        self._procs.clear()
        if self.root != Path() and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # -- for tests

    def logs(self) -> str:
        parts = []
        for name in ("dovecot/log", "dovecot/stdout", "postfix/log", "postfix/stdout"):
            path = self.root / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text(errors='replace')[-20000:]}")
        return "\n".join(parts)

    def wait_for_log(self, condition: Callable[[str], bool], timeout: float = 10.0) -> None:
        """Wait until the servers' logs satisfy `condition` (both write their logs asynchronously)."""
        deadline = time.monotonic() + timeout
        while not condition(logs := self.logs()):
            if time.monotonic() > deadline:
                raise AssertionError(f"the server logs never showed what was expected:\n{logs}")
            time.sleep(0.1)

    def client_context(self) -> ssl.SSLContext:
        """What a correctly configured client uses: the run's CA, host name checks on."""
        return ssl.create_default_context(cafile=str(self.ca))

    @contextlib.contextmanager
    def resolving(self) -> Iterator[None]:
        """Map the server's host names to its address for this process's name lookups, for the `with` block."""
        real = socket.getaddrinfo
        names = set(self.hosts)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(host, str) and host.lower().rstrip(".") in names:
                host = self.address
            return real(host, *args, **kwargs)

        socket.getaddrinfo = getaddrinfo
        try:
            yield
        finally:
            socket.getaddrinfo = real

    def thunderbird_prefs(self) -> str:
        """user.js lines that make Thunderbird resolve every name to this server (no /etc/hosts edit)."""
        return f'user_pref("network.dns.forceResolve", "{self.address}");\n'

    def deliver(self, recipient: str, message: bytes) -> None:
        """Put a message into a mailbox through Dovecot's LMTP, the way Postfix delivers."""
        import smtplib

        with smtplib.LMTP(str(self.root / "dovecot" / "run" / "lmtp-deliver")) as lmtp:
            refused = lmtp.sendmail("placer@localhost", [recipient], message)
        assert not refused, refused

    def messages(self, user: str) -> list[bytes]:
        """The messages in a user's INBOX (Maildir new/ and cur/), read from disk."""
        box = self.root / "mail" / user.lower() / "Maildir"
        return [f.read_bytes() for sub in ("new", "cur") if (box / sub).is_dir() for f in sorted((box / sub).iterdir())]

    def wait_for_message(self, user: str, needle: bytes, timeout: float = 15.0) -> bytes:
        """Wait until a message containing `needle` is in the mailbox (Postfix delivers asynchronously)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages(user):
                if needle in message:
                    return message
            time.sleep(0.1)
        raise AssertionError(f"no message with {needle!r} for {user} after {timeout:.0f}s:\n{self.logs()}")


def _bindable(address: str, port: int) -> bool:
    ipaddress.ip_address(address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the servers do: a connection of an earlier run in TIME_WAIT does not make the port busy.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def server_for(specs: list[Path], password: str) -> MailServer:
    """A (not yet started) server for every host name (primaries, IMAP alternative, fallbacks), mail domain and
    mailbox of the specs, all mailboxes with one password."""
    from generator.accounts import load_accounts
    from generator.spec import load_spec

    hosts: list[str] = []
    domains: list[str] = []
    users: dict[str, str] = {}
    for spec in specs:
        loaded = load_spec(spec)
        s = loaded.spec
        servers = [s.incoming, s.outgoing, *s.fallbacks.incoming, *s.fallbacks.outgoing,
                   *([s.imap_alternative] if s.imap_alternative else [])]
        for m in load_accounts(loaded):
            hosts += [m.host(srv) for srv in servers]
            domains.append(m.domain)
            users[m.username] = users[m.smtp_username] = password
    return MailServer(hosts=hosts, domains=domains, users=users)


def require_server() -> None:
    """Skip locally / fail in CI (MAILPROFILE_REQUIRE_REAL=1) when Dovecot or Postfix is missing."""
    from tests.conftest import require

    require(available(), f"Dovecot/Postfix not installed (Debian packages {DEBIAN_PACKAGES})")
    require(os.geteuid() == 0, "the test mail server binds ports 993/995/465 and needs root")
