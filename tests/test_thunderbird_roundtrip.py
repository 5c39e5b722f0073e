"""The real Thunderbird, configured only by our generated user.js, fetches and sends through a real server.

Around it, only what a user or an admin supplies besides our files: the test CA in the profile's certificate
store (certutil, as an admin deploys an internal CA), the password in Thunderbird's login manager (what the
user types once), and `network.dns.forceResolve` so the spec's host names reach the test server on 127.0.0.N
without editing /etc/hosts. The harness (tests/thunderbird/roundtrip.js) gets new mail for the account and
sends one message through the account's SMTP server; then the tests look at the server's mailboxes:
- the placed message reached Thunderbird's Inbox (POP3 on 995, IMAP on 993);
- the sent message arrived (SMTPS on 465; STARTTLS on 587 for the school example);
- POP3 with keep_on_server: false: the message is gone from the server; with true (school): it is still there.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from generator.accounts import Mailbox, load_accounts
from generator.spec import load_spec
from generator.targets.base import RenderContext
from generator.targets.thunderbird import ThunderbirdTarget
from tests.conftest import EXAMPLES, require_binary
from tests.mailserver import MailServer, require_server
from tests.test_thunderbird_real import TIMEOUT, make_install

pytestmark = [pytest.mark.thunderbird, pytest.mark.mailserver]

HARNESS = Path(__file__).parent / "thunderbird" / "roundtrip.js"
SPECS = [EXAMPLES / "provider-pop3.yaml", EXAMPLES / "provider-imap.yaml", EXAMPLES / "school.yaml"]
PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def server() -> Iterator[MailServer]:
    require_server()
    hosts: list[str] = []
    domains: list[str] = []
    users: dict[str, str] = {}
    for spec in SPECS:
        loaded = load_spec(spec)
        s = loaded.spec
        for m in load_accounts(loaded):
            hosts += [m.host(srv) for srv in (s.incoming, s.outgoing)]
            domains.append(m.domain)
            users[m.username] = users[m.smtp_username] = PASSWORD
    with MailServer(hosts=hosts, domains=domains, users=users) as srv:
        yield srv


def _message(sender: str, to: str, subject: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = f"<{secrets.token_hex(8)}@mailprofile.test>"
    msg.set_content("Round trip test.\n")
    return msg.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _trust_ca(profile: Path, ca: Path) -> None:
    """The test CA in the profile's NSS store, as `certutil` puts an internal CA there for an admin."""
    certutil = require_binary("certutil", "libnss3-tools")
    db = f"sql:{profile}"
    subprocess.run([certutil, "-N", "-d", db, "--empty-password"], check=True, capture_output=True)
    subprocess.run([certutil, "-A", "-d", db, "-n", "mailprofile test CA", "-t", "C,,", "-i", str(ca)],
                   check=True, capture_output=True)


def run_roundtrip(server: MailServer, mailbox: Mailbox, user_js: bytes, tmp_path: Path, expect_subject: str,
                  send: bytes | None) -> dict[str, Any]:
    install = make_install(tmp_path, "// round trip harness only\n" + HARNESS.read_text())
    home, profile = tmp_path / "home", tmp_path / "profile"
    home.mkdir()
    profile.mkdir()
    (profile / "user.js").write_bytes(user_js + b"\n// test environment, not generated:\n"
                                      + server.thunderbird_prefs().encode())
    _trust_ca(profile, server.ca)
    out = home / "roundtrip.json"
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HARNESS_OUT": str(out),
           "HARNESS_PASSWORD": PASSWORD, "MOZ_HEADLESS": "1", "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": str(home),
           "MOZ_CRASHREPORTER_DISABLE": "1", "HARNESS_EXPECT_SUBJECT": expect_subject}
    if send is not None:
        (home / "send.eml").write_bytes(send)
        env.update(HARNESS_SEND_FILE=str(home / "send.eml"), HARNESS_SEND_TO=mailbox.email,
                   HARNESS_SEND_ID=f"<{secrets.token_hex(8)}@mailprofile.test>")
    result = subprocess.run([str(install / "thunderbird-bin"), "--headless", "--profile", str(profile),
                             "--no-remote"], env=env, capture_output=True, timeout=TIMEOUT, check=False)
    assert out.exists(), f"the harness wrote nothing (exit {result.returncode}): {result.stderr[-2000:]!r}"
    dump: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return dump


def _cases() -> list[Any]:
    return [pytest.param(spec, id=spec.stem) for spec in SPECS]


@pytest.mark.parametrize("spec", _cases())
def test_thunderbird_fetches_sends_and_keeps_as_the_spec_says(server: MailServer, spec: Path,
                                                              tmp_path: Path) -> None:
    loaded = load_spec(spec)
    mailbox = load_accounts(loaded)[0]
    target = ThunderbirdTarget(RenderContext(loaded))
    user_js = next(f.data for f in target.render_account(mailbox) if f.kind == "user.js")
    placed = f"placed {secrets.token_hex(4)}"
    server.deliver(mailbox.email, _message("someone@example.org", mailbox.email, placed))
    sent = f"sent by thunderbird {secrets.token_hex(4)}"
    dump = run_roundtrip(server, mailbox, user_js, tmp_path, placed, _message(mailbox.email, mailbox.email, sent))
    context = f"{json.dumps(dump, indent=1)}\n{server.logs()}"
    inc = loaded.spec.incoming

    # The logins went where Thunderbird looks for them: one per server of the generated account.
    assert {(x["origin"], x["username"]) for x in dump["logins"]} == {
        (f"{'mailbox' if inc.protocol == 'pop3' else 'imap'}://{mailbox.host(inc)}", mailbox.username),
        (f"smtp://{mailbox.host(loaded.spec.outgoing)}", mailbox.smtp_username)}, context
    fetch = dump["fetch"]
    assert (fetch.get("type"), fetch.get("exitCode")) == (inc.protocol, 0), context
    assert placed in fetch["subjects"], context
    assert dump["send"] == {"server": "smtp1", "exitCode": 0, "errorMessage": None}, context
    server.wait_for_message(mailbox.email, sent.encode())
    on_server = any(placed.encode() in m for m in server.messages(mailbox.email))
    if inc.protocol == "pop3":
        # keep_on_server: false -> Thunderbird deleted it after download; true -> it is still there.
        assert on_server == inc.keep_on_server, context
    else:
        assert on_server, context  # IMAP: the server is the store
