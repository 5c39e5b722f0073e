"""The real Thunderbird, configured only by our generated user.js, fetches and sends through a real server.

Around it, only what a user or an admin supplies besides our files: the test CA in the profile's certificate
store (certutil, as an admin deploys an internal CA), the password in Thunderbird's login manager (what the user
types once), and `network.dns.forceResolve` so the spec's host names reach the test server on 127.0.0.N without
editing /etc/hosts. The autoconfig leg gets config-v1.1.xml over HTTP from a real `mailprofile serve` process on
the same spec (tests/serve_process.py), which Thunderbird's own FetchConfig.fromISP() reaches through it as HTTP
proxy (tests/thunderbird/serve_proxy.js), as the account wizard does for a new address. The harness
(tests/thunderbird/roundtrip.js) gets new mail for the account and sends one message through the account's SMTP
server; then the tests look at the server's mailboxes:
- the placed message reached Thunderbird's Inbox (POP3 on 995, IMAP on 993);
- the sent message arrived (SMTPS on 465; STARTTLS on 587 for the school example);
- POP3 with keep_on_server: false: the message is gone from the server; with true (school): it is still there.
"""

from __future__ import annotations

import dataclasses
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
from generator.spec import LoadedSpec, load_spec
from generator.targets.base import RenderContext
from generator.targets.thunderbird import ThunderbirdTarget
from tests.conftest import EXAMPLES, require_binary
from tests.mailserver import MailServer, require_server, server_for
from tests.serve_process import SERVE_PROXY_JS, Server, serving
from tests.test_thunderbird_real import TIMEOUT, make_install

pytestmark = [pytest.mark.thunderbird, pytest.mark.mailserver]

HARNESS = Path(__file__).parent / "thunderbird" / "roundtrip.js"
SPECS = [EXAMPLES / "provider-pop3.yaml", EXAMPLES / "provider-imap.yaml", EXAMPLES / "school.yaml"]
PASSWORD = secrets.token_urlsafe(16)


@pytest.fixture(scope="module")
def server() -> Iterator[MailServer]:
    require_server()
    with server_for(SPECS, PASSWORD) as srv:
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
                  send: bytes | None, cfg: str = "", serve: Server | None = None,
                  policies: bytes | None = None, step_seconds: int = 20, send_to: str | None = None,
                  fetch_attempts: int = 2) -> dict[str, Any]:
    """One Thunderbird start on a fresh profile: our files (user.js, or mozilla.cfg, policies.json, or the
    autoconfig XML from `serve`, a running `mailprofile serve`), the test environment, then the harness: fetch,
    send, quit."""
    harness = SERVE_PROXY_JS.read_text(encoding="utf-8") + HARNESS.read_text(encoding="utf-8")
    install = make_install(tmp_path, (cfg or "// round trip harness only") + "\n" + harness, policies=policies)
    home, profile = tmp_path / "home", tmp_path / "profile"
    home.mkdir()
    profile.mkdir()
    (profile / "user.js").write_bytes(user_js + b"\n// test environment, not generated:\n"
                                      + server.thunderbird_prefs().encode())
    _trust_ca(profile, server.ca)
    out = home / "roundtrip.json"
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HARNESS_OUT": str(out),
           "HARNESS_PASSWORD": PASSWORD, "MOZ_HEADLESS": "1", "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": str(home),
           "MOZ_CRASHREPORTER_DISABLE": "1", "HARNESS_EXPECT_SUBJECT": expect_subject,
           "HARNESS_STEP_SECONDS": str(step_seconds), "HARNESS_FETCH_ATTEMPTS": str(fetch_attempts)}
    if serve is not None:
        env.update(HARNESS_AUTOCONFIG_DOMAIN=mailbox.domain, HARNESS_EMAIL=mailbox.email, HARNESS_NAME=mailbox.name,
                   HARNESS_SERVE_HOST=serve.host, HARNESS_SERVE_PORT=str(serve.port))
    if send is not None:
        (home / "send.eml").write_bytes(send)
        env.update(HARNESS_SEND_FILE=str(home / "send.eml"), HARNESS_SEND_TO=send_to or mailbox.email,
                   HARNESS_SEND_ID=f"<{secrets.token_hex(8)}@mailprofile.test>")
    result = subprocess.run([str(install / "thunderbird-bin"), "--headless", "--profile", str(profile),
                             "--no-remote"], env=env, capture_output=True, timeout=TIMEOUT, check=False)
    assert out.exists(), f"the harness wrote nothing (exit {result.returncode}): {result.stderr[-2000:]!r}"
    dump: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return dump


def _files(spec: Path) -> tuple[LoadedSpec, Mailbox, dict[str, bytes]]:
    loaded = load_spec(spec)
    mailbox = load_accounts(loaded)[0]
    target = ThunderbirdTarget(RenderContext(loaded))
    files = {f.kind: f.data for f in target.render_account(mailbox)}
    files["autoconfig-xml"] = next(f.data for f in target.render_shared() if f.path.split("/")[1] == mailbox.domain)
    return loaded, mailbox, files


def _roundtrip(server: MailServer, spec: Path, tmp_path: Path, via: str) -> None:
    """Place a message, let Thunderbird set up by `via` fetch it and send one, then look at the server."""
    loaded, mailbox, files = _files(spec)
    placed = f"placed {secrets.token_hex(4)}"
    server.deliver(mailbox.email, _message("someone@example.org", mailbox.email, placed))
    sent = f"sent by thunderbird {secrets.token_hex(4)}"
    message = _message(mailbox.email, mailbox.email, sent)
    if via == "user.js":
        dump = run_roundtrip(server, mailbox, files["user.js"], tmp_path, placed, message)
    elif via == "mozilla.cfg":
        dump = run_roundtrip(server, mailbox, b"", tmp_path, placed, message, cfg=files["mozilla.cfg"].decode())
    elif via == "policies.json":
        dump = run_roundtrip(server, mailbox, b"", tmp_path, placed, message, policies=files["policies.json"])
    else:
        # The real service on the same spec, on the test mail server's own address (which the run has claimed):
        # Thunderbird's forceResolve sends every name there, the proxy's included.
        with serving(spec, tmp_path / "serve.log", host=server.address) as serve:
            # What it serves is the file `build` writes (asked without the address: only Thunderbird sends it).
            status, served = serve.request("GET", "/mail/config-v1.1.xml",
                                           headers={"Host": f"autoconfig.{mailbox.domain}"})
            assert (status, served) == (200, files["autoconfig-xml"])
            dump = run_roundtrip(server, mailbox, b"", tmp_path, placed, message, serve=serve)
        serve_log = serve.output()
    context = f"{json.dumps(dump, indent=1)}\n{server.logs()}"
    inc, out = loaded.spec.incoming, loaded.spec.outgoing

    if via == "autoconfig-xml":
        # Thunderbird asked the service over http for the address (the access log hashes it) and got the file.
        # FetchConfig's own mark for a file read from the ISP over http (fromDisk would say "xml-from-disk").
        assert dump["created"].get("subSource") == "xml-from-isp-http", f"{context}\n{serve_log}"
        assert "\"GET /mail/config-v1.1.xml?emailaddress=<" in serve_log and \
            f"@{mailbox.domain}\" 200" in serve_log, serve_log
        assert mailbox.email not in serve_log and PASSWORD not in serve_log, serve_log
        # The wizard's path: the primary servers of the file, the address filled in, the password remembered.
        created = dump["created"]
        assert (created.get("type"), created.get("hostname"), created.get("port"), created.get("username")) == \
            (inc.protocol, mailbox.host(inc), inc.port, mailbox.username), context
        assert (created["smtp"]["hostname"], created["smtp"]["port"]) == (mailbox.host(out), out.port), context
    # The logins are where Thunderbird looks for them: one per server of the account.
    assert {(x["origin"], x["username"]) for x in dump["logins"]} == {
        (f"{'mailbox' if inc.protocol == 'pop3' else 'imap'}://{mailbox.host(inc)}", mailbox.username),
        (f"smtp://{mailbox.host(out)}", mailbox.smtp_username)}, context
    fetch = dump["fetch"]
    # The placed message in Thunderbird's Inbox is the proof (exitCode is that of the harness's last try;
    # Thunderbird's own check at startup may have been the one that fetched it).
    assert fetch.get("type") == inc.protocol and placed in fetch["subjects"], context
    assert dump["send"] == {"server": dump["send"].get("server"), "exitCode": 0, "errorMessage": None}, context
    arrived = server.wait_for_message(mailbox.email, sent.encode())
    assert b"with ESMTPSA" in arrived, arrived  # Postfix: received over TLS (S), authenticated (A)
    on_server = any(placed.encode() in m for m in server.messages(mailbox.email))
    if inc.protocol == "pop3":
        # keep_on_server: false -> Thunderbird deleted it after download; true -> it is still there.
        assert on_server == inc.keep_on_server, context
    else:
        assert on_server, context  # IMAP: the server is the store


# Every file kind that sets up an account, each protocol, both keep_on_server values, SSL and STARTTLS
# submission, in six Thunderbird starts (each costs a few seconds).
CASES = [("user.js", "provider-pop3"), ("user.js", "school"), ("autoconfig-xml", "provider-imap"),
         ("autoconfig-xml", "provider-pop3"), ("mozilla.cfg", "provider-imap"), ("policies.json", "school")]


@pytest.mark.parametrize(("via", "example"), CASES, ids=[f"{v}-{e}" for v, e in CASES])
def test_thunderbird_account_fetches_sends_and_keeps_as_the_spec_says(server: MailServer, via: str, example: str,
                                                                      tmp_path: Path) -> None:
    _roundtrip(server, EXAMPLES / f"{example}.yaml", tmp_path, via)


def test_plain_text_fallbacks_as_primaries_do_not_work(server: MailServer, tmp_path: Path) -> None:
    """Negative control: Thunderbird set up with the POP3 example's plain-text fallbacks (110/25, security:
    none) as its servers. Dovecot refuses the login without TLS, so nothing is fetched and the message stays on
    the server; Postfix offers no AUTH without TLS, so Thunderbird sends unauthenticated (it does not send the
    password) and a message to another domain is refused as relaying."""
    loaded = load_spec(EXAMPLES / "provider-pop3.yaml")
    s = loaded.spec
    plain = dataclasses.replace(loaded, spec=s.model_copy(update={"incoming": s.fallbacks.incoming[0],
                                                                 "outgoing": s.fallbacks.outgoing[0]}))
    mailbox = load_accounts(loaded)[0]
    user_js = next(f.data for f in ThunderbirdTarget(RenderContext(plain)).render_account(mailbox)
                   if f.kind == "user.js")
    assert b'"mail.server.server1.port", 110' in user_js and b'"mail.server.server1.socketType", 0' in user_js
    placed = f"placed {secrets.token_hex(4)}"
    server.deliver(mailbox.email, _message("someone@example.org", mailbox.email, placed))
    dump = run_roundtrip(server, mailbox, user_js, tmp_path, placed,
                         _message(mailbox.email, "someone@example.org", f"relayed {secrets.token_hex(4)}"),
                         step_seconds=12, send_to="someone@example.org", fetch_attempts=1)
    context = f"{json.dumps(dump, indent=1)}\n{server.logs()}"
    assert dump["fetch"].get("exitCode", 0) != 0 and placed not in dump["fetch"].get("subjects", []), context
    assert any(placed.encode() in m for m in server.messages(mailbox.email)), context
    assert dump["send"].get("exitCode", 0) != 0, context
    server.wait_for_log(lambda logs: "Relay access denied" in logs)
    # Dovecot saw the user name on a plain connection and refused (its lines for TLS sessions end in "TLS").
    refused = [line for line in server.logs().splitlines() if "pop3-login" in line and "auth failed" in line
               and f"user=<{mailbox.email}>" in line]
    assert refused and not any(", TLS" in line for line in refused), context
