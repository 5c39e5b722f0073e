"""One send through a real Postfix (SMTPS, AUTH via Dovecot SASL) into Dovecot mailboxes, read back over
IMAPS: the message that arrives is the built one, attachment and guide included, in each user's language."""

from __future__ import annotations

import base64
import hashlib
import imaplib
import json
import re
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import unquote

from click.testing import CliRunner

from generator.build import BuildOptions, build, prepare
from generator.cli import main
from generator.spec import load_spec
from generator.targets.guide import parse_html_guide
from tests.conftest import EXAMPLES, zbar
from tests.mailserver import MailServer, require_server, server_for
from tests.test_spec_errors import BASE

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


LONG = "maria.giovanna.della.valle.rossi.bianchi.verdi.esposito@esempio.it"  # a school's first.second.last...
NON_ASCII = "jörg.müller@esempio.it"


def _params(bodystructure: bytes, key: bytes) -> dict[str, str]:
    """The parameter list after `key` in an IMAP BODYSTRUCTURE ("k" "v" ...), as the server sends it."""
    start = bodystructure.index(key) + len(key)
    params = bodystructure[start:bodystructure.index(b")", start)]
    values = [v.decode() for v in re.findall(rb'"((?:[^"\\]|\\.)*)"', params)]
    return dict(zip(values[::2], values[1::2], strict=True))


def test_attachment_names_reach_an_imap_client_as_one_parameter(tmp_path: Path) -> None:
    """A file name longer than a 78-character line went out as RFC 2231 continuations (filename*0*=us-ascii''...),
    which Dovecot gives an IMAP client as one percent-encoded `filename*` ("us-ascii''...%40..."): a client
    that reads `filename` (and the Content-Type had no name= either) saw no .mobileconfig name. Now an ASCII
    name is one quoted string, a non-ASCII one a single RFC 2231 value plus an RFC 2047 name=, at any length."""
    require_server()
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("  - name: Mario Rossi\n    email: mario.rossi@esempio.it\n",
                                 f"  - {{name: Maria, email: {LONG}}}\n"
                                 f"  - {{name: Jörg, email: {NON_ASCII}, notify: mario.rossi@esempio.it}}\n")
                    + 'delivery: {sender: "IT <it@esempio.it>"}\n', encoding="utf-8")
    out = tmp_path / "out"
    build(prepare(load_spec(spec), ["message"]), BuildOptions(out=out, jobs=1))
    names = {address: f"{address}.mobileconfig" for address in (LONG, NON_ASCII)}
    with MailServer(hosts=["pop3s.aruba.it"], domains=["esempio.it"], users={"mario.rossi@esempio.it": PASSWORD}) \
            as server:
        for address in names:
            server.deliver("mario.rossi@esempio.it", (out / f"{address}/message/{address}.eml").read_bytes())
        with server.resolving(), imaplib.IMAP4_SSL("pop3s.aruba.it", 993, ssl_context=server.client_context()) as imap:
            imap.login("mario.rossi@esempio.it", PASSWORD)
            imap.select("INBOX", readonly=True)
            _typ, fetched = imap.fetch("1:2", "(BODYSTRUCTURE)")
    structures = [item if isinstance(item, bytes) else item[0] for item in fetched]
    long_structure, non_ascii_structure = structures
    assert _params(long_structure, b'"application" "x-apple-aspen-config" (') == {"name": names[LONG]}
    assert _params(long_structure, b'"attachment" (') == {"filename": names[LONG]}
    name_param = _params(non_ascii_structure, b'"application" "x-apple-aspen-config" (')
    assert str(make_header(decode_header(name_param["name"]))) == names[NON_ASCII]
    filename = _params(non_ascii_structure, b'"attachment" (')
    assert list(filename) == ["filename*"] and filename["filename*"].startswith("utf-8''")
    assert unquote(filename["filename*"].removeprefix("utf-8''")) == names[NON_ASCII]
    for address, name in names.items():  # and the email package reads both the same way
        msg = BytesParser(policy=policy.default).parsebytes((out / f"{address}/message/{address}.eml").read_bytes())
        [attachment] = msg.iter_attachments()
        assert attachment.get_filename() == name


def test_an_imap_client_finds_each_qr_code_as_the_inline_part_the_html_names(tmp_path: Path) -> None:
    """What a mail app does with the message: Dovecot's BODYSTRUCTURE lists the PNG parts inside the
    multipart/related with the Content-ID the HTML's cid: names, inline; the part fetched by its section
    (BODY[1.2.2]) is a QR code zbar reads as the guide's profile link."""
    require_server()
    out = tmp_path / "out"
    build(prepare(load_spec(EXAMPLES / "delivery.yaml"), ["message"]), BuildOptions(out=out, jobs=1))
    address = "mario.rossi@esempio.it"
    with MailServer(hosts=["pop3s.aruba.it"], domains=["esempio.it"], users={address: PASSWORD}) as server:
        server.deliver(address, (out / f"{address}/message/{address}.eml").read_bytes())
        with server.resolving(), imaplib.IMAP4_SSL("pop3s.aruba.it", 993, ssl_context=server.client_context()) as imap:
            imap.login(address, PASSWORD)
            imap.select("INBOX", readonly=True)
            _typ, fetched = imap.fetch("1", "(BODYSTRUCTURE BODY.PEEK[1.2.1] BODY.PEEK[1.2.2])")
    items = [item for item in fetched if isinstance(item, tuple)]
    structure = items[0][0]
    html = items[0][1].decode("ascii")  # quoted-printable, as the server holds it
    png = items[1][1]
    related = re.search(rb'"related"', structure)
    assert related is not None, structure
    image = re.search(rb'\("image" "png" (?:NIL|\([^)]*\)) "<([^>]+)>" NIL "base64" \d+ NIL \("inline"', structure)
    assert image is not None, structure.decode()
    cid = image.group(1).decode()
    assert f"cid:{cid}" in html.replace("=\r\n", "")
    decoded = zbar(base64.b64decode(png), tmp_path, "the part fetched over IMAP")
    guide = parse_html_guide((out / f"{address}/guide/{address}.html").read_bytes())
    assert decoded.decode() == guide.links["profile-link"]
    assert guide.links["profile-link"] == f"https://mail.esempio.it/profiles/apple/{address}.mobileconfig"
