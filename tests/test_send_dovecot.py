"""One send through a real Postfix (SMTPS, AUTH via Dovecot SASL) into Dovecot mailboxes, read back over
IMAPS: the message that arrives is the built one, attachment and guide included, in each user's language."""

from __future__ import annotations

import hashlib
import imaplib
import json
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from click.testing import CliRunner

from generator.build import BuildOptions, build, prepare
from generator.cli import main
from generator.spec import load_spec
from generator.targets.guide import parse_html_guide
from tests.conftest import EXAMPLES
from tests.mailserver import require_server, server_for

PASSWORD = "Dovecot-Test-Pw-7"


def test_send_through_postfix_into_dovecot_and_read_back_over_imap(tmp_path: Path) -> None:
    require_server()
    spec = tmp_path / "delivery.yaml"  # the example, with both messages to the mailboxes themselves
    spec.write_text((EXAMPLES / "delivery.yaml").read_text(encoding="utf-8").replace(", notify: jane@example.org", ""),
                    encoding="utf-8")
    out = tmp_path / "out"
    build(prepare(load_spec(spec), ["message"]), BuildOptions(out=out, jobs=1))
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    profiles = {e["account"]: e["sha256"] for e in manifest["files"] if e["kind"] == "mobileconfig"}
    with server_for([spec], PASSWORD) as server, server.resolving():
        result = CliRunner().invoke(main, [
            "send", str(out), "--smtp", "smtps.aruba.it:465", "--security", "ssl", "--cafile", str(server.ca),
            "--user", "mario.rossi@esempio.it"], env={"MAILPROFILE_SMTP_PASSWORD": PASSWORD}, catch_exceptions=False)
        assert result.exit_code == 0, result.output + server.logs()
        assert result.output.splitlines()[-1].startswith("send: 2 sent, 0 failed")
        for address, language, port_label in (("mario.rossi@esempio.it", "it", "995"),
                                              ("jane.doe@esempio.it", "en", "995")):
            server.wait_for_message(address, b"X-Mailprofile-Account: " + address.encode())
            with imaplib.IMAP4_SSL("pop3s.aruba.it", 993, ssl_context=server.client_context()) as imap:
                imap.login(address, PASSWORD)
                imap.select("INBOX", readonly=True)
                _typ, ids = imap.search(None, "ALL")
                [number] = ids[0].split()
                _typ, fetched = imap.fetch(number, "(RFC822)")
                raw = fetched[0][1]
                assert isinstance(raw, bytes)
            msg = BytesParser(policy=policy.default).parsebytes(raw)
            assert isinstance(msg, EmailMessage)
            built = BytesParser(policy=policy.default).parsebytes(
                (out / f"{address}/message/{address}.eml").read_bytes())
            assert msg["Message-ID"] == built["Message-ID"] and msg["To"] == built["To"]
            assert msg["Content-Language"] == language
            [attachment] = list(msg.iter_attachments())
            assert attachment.get_content_type() == "application/x-apple-aspen-config"
            assert hashlib.sha256(attachment.get_content()).hexdigest() == profiles[address]
            html = msg.get_body(("html",))
            assert html is not None
            guide = parse_html_guide(html.get_content().encode())
            assert guide.lang == language
            assert guide.tables["settings"]["incoming.host"] == "pop3s.aruba.it"
            assert guide.tables["settings"]["incoming.port"] == port_label
            assert guide.tables["settings"]["outgoing.host"] == "smtps.aruba.it"
            assert guide.tables["settings"]["incoming.username"] == address
