"""Messages: one RFC 5322 .eml per account, composed from the verified profile and guide of the same build."""

from __future__ import annotations

import hashlib
import json
import os
import re
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from pathlib import Path

import pytest
import segno
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import mailimages
from generator.build import BuildOptions, SignRequest, build, prepare
from generator.cli import main
from generator.errors import SpecError, VerificationError
from generator.sender import load_outbox_messages
from generator.signing import unsigned_content
from generator.spec import load_spec
from generator.targets.guide import parse_html_guide, read_android_qr
from generator.targets.message import fold, mailbox_words, text_words
from tests.conftest import EXAMPLES, zbar
from tests.test_signing import PKI, pki  # noqa: F401  (session fixture)
from tests.test_spec_errors import BASE

DELIVERY = EXAMPLES / "delivery.yaml"
SENDER = 'delivery: {sender: "IT <it@esempio.it>"}\n'


def _messages(tmp_path: Path, spec: Path = DELIVERY, sign: SignRequest | None = None, name: str = "out") -> Path:
    out = tmp_path / name
    build(prepare(load_spec(spec), ["message"], sign=sign), BuildOptions(out=out, jobs=1))
    return out


def _parse(path: Path) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(msg, EmailMessage)
    return msg


def test_one_message_per_account_with_guide_and_profile(tmp_path: Path) -> None:
    out = _messages(tmp_path)
    mario = _parse(out / "mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml")
    assert [p.get_content_type() for p in mario.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png",
        "application/x-apple-aspen-config"]  # the profile link's QR code as a PNG part
    assert mario["From"] == "Servizio IT Esempio <it@esempio.it>"
    assert mario["To"] == "Mario Rossi <mario.rossi@esempio.it>"
    assert mario["Reply-To"] == "assistenza@esempio.it"
    assert mario["Subject"] == "La tua casella di posta: configurazione"
    assert mario["Content-Language"] == "it"
    assert mario["Message-ID"].startswith("<mailprofile.") and mario["Message-ID"].endswith("@esempio.it>")
    [attachment] = list(mario.iter_attachments())
    assert attachment.get_filename() == "mario.rossi@esempio.it.mobileconfig"
    assert attachment.get_content_disposition() == "attachment"
    profile = (out / "mario.rossi@esempio.it/apple/mario.rossi@esempio.it.mobileconfig").read_bytes()
    assert attachment.get_content() == profile
    text = mario.get_body(("plain",))
    assert text is not None
    assert text.get_content().startswith("Ecco la configurazione della tua nuova casella di posta.")
    assert "Porta: 995" in text.get_content()
    body = mario.get_body(("html",))
    assert body is not None
    tables = parse_html_guide(body.get_content().encode()).tables
    assert tables["settings"]["incoming.host"] == "pop3s.aruba.it" and tables["settings"]["incoming.port"] == "995"
    assert tables["settings"]["outgoing.security"] == "SSL/TLS"

    jane = _parse(out / "jane.doe@esempio.it/message/jane.doe@esempio.it.eml")
    assert jane["To"] == "Jane Doe <jane@example.org>"  # the notify address
    assert jane["Subject"] == "Your mailbox: setup" and jane["Content-Language"] == "en"
    jane_html = jane.get_body(("html",))
    assert jane_html is not None
    assert parse_html_guide(jane_html.get_content().encode()).lang == "en"


def test_attachment_is_the_manifest_entry(tmp_path: Path) -> None:
    out = _messages(tmp_path)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    profiles = {e["account"]: e["sha256"] for e in manifest["files"] if e["kind"] == "mobileconfig"}
    emls = [e for e in manifest["files"] if e["kind"] == "eml"]
    assert [e["media_type"] for e in emls] == ["message/rfc822", "message/rfc822"]
    for entry in emls:
        [attachment] = list(_parse(out / entry["path"]).iter_attachments())
        assert hashlib.sha256(attachment.get_content()).hexdigest() == profiles[entry["account"]]


def test_only_profiles_are_attached_never_reg_js_prf(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    every = "build: [apple, thunderbird, outlook, guide, message]"
    spec.write_text(DELIVERY.read_text(encoding="utf-8").replace("build: [apple, guide, message]", every),
                    encoding="utf-8")
    out = _messages(tmp_path, spec)
    assert list(out.rglob("*.reg")) == []  # --only message builds only what a message needs
    build(prepare(load_spec(spec)), BuildOptions(out=tmp_path / "all", jobs=1))
    assert list((tmp_path / "all").rglob("*.reg"))  # the full build has them...
    for eml in (tmp_path / "all").rglob("*.eml"):  # ...and its messages still attach only the profile
        names = [p.get_filename() for p in _parse(eml).iter_attachments()]
        assert names == [eml.name.removesuffix(".eml") + ".mobileconfig"]


def test_messages_are_byte_identical_across_runs(tmp_path: Path) -> None:
    first = _messages(tmp_path, name="a")
    second = _messages(tmp_path, name="b")
    for eml in first.rglob("*.eml"):
        assert eml.read_bytes() == (second / eml.relative_to(first)).read_bytes()
    assert b"Date: Tue, 01 Jan 1980 00:00:00 +0000\r\n" in next(first.rglob("*.eml")).read_bytes()


def test_source_date_epoch_sets_the_date(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
    out = _messages(tmp_path)
    assert _parse(next(out.rglob("*.eml")))["Date"] == "Mon, 21 Sep 2026 14:13:20 +0000"


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", "99999999999999", "\u0661\u0662\u0663"])
def test_a_malformed_source_date_epoch_is_one_line_before_anything_is_built(tmp_path: Path, value: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The reproducible-builds convention: a malformed SOURCE_DATE_EPOCH stops the build (it was ignored,
    or, far in the future, an internal error after rendering; Arabic-Indic digits passed isdigit())."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", value)
    result = CliRunner().invoke(main, ["messages", str(DELIVERY), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.output.splitlines()[-2:] == [
        f"error: SOURCE_DATE_EPOCH={value!r} is not a date in seconds since 1970 (e.g. $(git log -1 --format=%ct)); "
        "set it to one or unset it (messages then say 1980-01-01)", "nothing was written"]
    assert not (tmp_path / "out").exists()


def _named_in_guide(msg: EmailMessage) -> str:
    """The profile's file name as the text guide in the message tells the user to open it."""
    text = msg.get_body(("plain",))
    assert text is not None
    [name] = re.findall(r"\(([^()]+\.mobileconfig)\)", text.get_content().replace("\r\n", "\n"))
    return name


def test_the_guide_names_the_attachment_of_a_long_address(tmp_path: Path) -> None:
    """An address longer than a file name may be (215 bytes) has a shortened file name with a hash; the guide
    named the profile by the whole address, the attachment had the shortened name."""
    account = f"{'a' * 64}@{'b' * 60}.{'c' * 60}.{'d' * 60}.esempio.it"
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("  domains: [esempio.it]\n", f"  domains: [esempio.it, {account.split('@')[1]}]\n")
                    .replace("    email: mario.rossi@esempio.it\n", f"    email: {account}\n") + SENDER,
                    encoding="utf-8")
    out = _messages(tmp_path, spec)
    [eml] = out.glob("*/message/*.eml")
    msg = _parse(eml)
    [attachment] = list(msg.iter_attachments())
    assert _named_in_guide(msg) == attachment.get_filename() == eml.name.removesuffix(".eml") + ".mobileconfig"
    assert len(attachment.get_filename().encode()) < 255


def test_signed_build_attaches_the_signed_profile(tmp_path: Path, pki: PKI) -> None:  # noqa: F811
    out = _messages(tmp_path, sign=SignRequest(pki.leaf, pki.leaf_key, pki.chain))
    msg = _parse(out / "mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml")
    [attachment] = list(msg.iter_attachments())
    # The name the guide in the message gives: ".signed" says nothing to the user (it named a file that the
    # guide's "Open the attached configuration profile (mario.rossi@esempio.it.mobileconfig)" did not).
    assert attachment.get_filename() == "mario.rossi@esempio.it.mobileconfig"
    assert _named_in_guide(msg) == attachment.get_filename()
    signed = (out / "mario.rossi@esempio.it/apple/mario.rossi@esempio.it.signed.mobileconfig").read_bytes()
    assert attachment.get_content() == signed
    assert unsigned_content(attachment.get_content()) == (
        out / "mario.rossi@esempio.it/apple/mario.rossi@esempio.it.mobileconfig").read_bytes()
    # The signature changes per run (signing time), the Message-ID does not: it names the content.
    again = _messages(tmp_path, sign=SignRequest(pki.leaf, pki.leaf_key, pki.chain), name="again")
    assert _parse(again / "mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml")["Message-ID"] == \
        msg["Message-ID"]


def test_a_profile_with_a_password_makes_a_secret_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MP_TEST_PASSWORD", "s3cret-Passw0rd")
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + SENDER + "passwords: {include: true, from_env: MP_TEST_PASSWORD}\n", encoding="utf-8")
    out = _messages(tmp_path, spec)
    eml = out / "mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml"
    assert _parse(eml)["X-Mailprofile-Secret"] == "password"
    assert os.stat(eml).st_mode & 0o777 == 0o600
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [e.get("secret") for e in manifest["files"] if e["kind"] == "eml"] == [True]


def test_messages_need_a_sender(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        prepare(load_spec(spec), ["message"])
    assert [p.message for p in info.value.problems] == ["messages need a sender: delivery.sender is not set"]


def test_bad_sender_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + 'delivery:\n  sender: "IT at esempio"\n', encoding="utf-8")
    with pytest.raises(SpecError) as info:
        prepare(load_spec(spec), ["message"])
    [problem] = info.value.problems
    assert str(problem).startswith(f"{spec}:20:11: delivery.sender: 'IT at esempio' is not one address")


def test_messages_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["messages", str(DELIVERY), "--out", str(tmp_path / "out"), "-j", "1",
                                       "--base-url", "http://127.0.0.1:9/x"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "created  mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml" in result.output
    msg = _parse(tmp_path / "out/mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml")
    html = msg.get_body(("html",))
    assert html is not None
    assert parse_html_guide(html.get_content().encode()).links["profile-link"] == \
        "http://127.0.0.1:9/x/apple/mario.rossi@esempio.it.mobileconfig"


def test_bad_base_url_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["messages", str(DELIVERY), "--out", str(tmp_path / "o"), "--base-url", "ftp:x"])
    assert result.exit_code == 2 and "is not an http(s) URL" in result.output


def test_bad_notify_address_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("name,email,notify\nAnna,anna@esempio.it,anna-at-home\n", encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("targets:", "accounts_csv: users.csv\ntargets:") + SENDER, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        build(prepare(load_spec(spec), ["message"]), BuildOptions(out=tmp_path / "out", jobs=1))
    [problem] = info.value.problems
    assert str(problem) == (f"{tmp_path / 'users.csv'}:2:22: 'anna-at-home' is not an e-mail address (it needs "
                            "exactly one @) — correct the notify address")
    assert not (tmp_path / "out").exists()


# --- header fields from free text ------------------------------------------------------------------------------

def _decoded_header(data: bytes, name: str) -> str:
    """A header field decoded as RFC 2047 says (adjacent encoded words join without the space between them),
    which is how mail apps read it (the email package's newer parser puts a space there in a display name)."""
    return str(make_header(decode_header(BytesParser(policy=policy.compat32).parsebytes(data)[name]
                                         .replace("\r\n", "").strip())))


HOSTILE_NAMES = ["Niccolò Rossi", "=?utf-8?q?Evil=2C_x?=", "a =?utf-8?b?QQ==?= b", "Rossi, Mario <evil@x.com>",
                 'Mario "The Boss" Rossi\\', "Mario Rossi ", " Mario  Rossi", "x" * 1200, "Jürgen" * 80,
                 "山田太郎", "\tTab"]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_names_and_subjects_arrive_exactly_as_the_spec_says(tmp_path: Path, name: str) -> None:
    """A non-ASCII name (Niccolò) failed the build's own proof; a literal encoded word was decoded into other
    text by every reader; a 1200-character name made a 1201-character line (RFC 5322: at most 998)."""
    quoted = json.dumps(name)
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("  - name: Mario Rossi\n", f"  - name: {quoted}\n") +
                    f"delivery: {{sender: \"Servizio ÎT <it@esempio.it>\", subject: {{en: {quoted}}}}}\n",
                    encoding="utf-8")
    out = _messages(tmp_path, spec)
    data = (out / "mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml").read_bytes()
    assert max(len(line) for line in data.split(b"\r\n")) <= 78
    msg = _parse(out / "mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml")
    assert msg.defects == [] and msg["To"].defects == () and msg["From"].defects == ()
    assert msg["To"].addresses[0].addr_spec == "mario.rossi@esempio.it"
    raw = BytesParser(policy=policy.compat32).parsebytes(data)
    to_name, to_address = parseaddr(raw["To"].replace("\r\n", ""))
    assert (str(make_header(decode_header(to_name))), to_address) == (name, "mario.rossi@esempio.it")
    from_name, from_address = parseaddr(raw["From"].replace("\r\n", ""))
    assert (str(make_header(decode_header(from_name))), from_address) == ("Servizio ÎT", "it@esempio.it")
    assert _decoded_header(data, "Subject") == name


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="\u2028\u2029\x85"), max_size=300))
def test_any_text_survives_our_header_folding(text: str) -> None:
    for name, words in (("To", mailbox_words(text, "a@esempio.it")), ("Subject", text_words(text))):
        field = fold(name, words)
        assert all(len(line) <= 78 for line in field.split("\r\n")) and field.isascii()
        raw = field.removeprefix(f"{name}:").replace("\r\n", "")
        if name == "Subject":
            assert str(make_header(decode_header(raw.strip()))) == text
        else:
            [(display, address)] = getaddresses([raw])
            assert (str(make_header(decode_header(display))), address) == (text, "a@esempio.it")


def test_sender_is_exactly_one_ascii_address(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    for sender in ("IT <it@esempio.it>, boss@example.com", "IT <ït@esempio.it>"):
        spec.write_text(BASE + f'delivery:\n  sender: "{sender}"\n', encoding="utf-8")
        with pytest.raises(SpecError) as info:
            prepare(load_spec(spec), ["message"])
        assert [str(p) for p in info.value.problems] == [
            f"{spec}:20:11: delivery.sender: '{sender}' is not one address such as 'Name <it@example.com>' (ASCII "
            "before the @: messages do not use SMTPUTF8) — correct the address"]


def test_internationalised_domains_go_out_as_a_labels(tmp_path: Path) -> None:
    """An IDN in the sender or notify address was an internal error (UnicodeEncodeError)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("    email: mario.rossi@esempio.it\n",
                                 "    email: mario.rossi@esempio.it\n    notify: Mario@Bücher.example\n")
                    + 'delivery: {sender: "IT <it@Bücher.example>"}\n', encoding="utf-8")
    msg = _parse(_messages(tmp_path, spec) / "mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml")
    assert msg["To"].addresses[0].addr_spec == "Mario@xn--bcher-kva.example"
    assert msg["From"].addresses[0].addr_spec == "it@xn--bcher-kva.example"
    assert msg["Message-ID"].endswith("@xn--bcher-kva.example>")


def test_a_non_ascii_recipient_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("    email: mario.rossi@esempio.it\n",
                                 "    email: mario.rossi@esempio.it\n    notify: jürgen@example.org\n") + SENDER,
                    encoding="utf-8")
    with pytest.raises(SpecError) as info:
        _messages(tmp_path, spec)
    assert [str(p) for p in info.value.problems] == [
        f"{spec}:15:5: 'jürgen@example.org' has non-ASCII characters before the @, which a message can carry only "
        "with SMTPUTF8 (not used here) — give the account a notify address with an ASCII local part"]
    assert not (tmp_path / "out").exists()


def test_a_non_ascii_account_with_an_ascii_notify_address_gets_its_message(tmp_path: Path) -> None:
    """A mailbox whose own address has a non-ASCII local part (the user reads mail elsewhere until it is set
    up) was an internal error (UnicodeEncodeError: the account header was written as raw bytes)."""
    account = "jörg.müller.ñandú.çédille.ærøskøbing@esempio.it"  # > 42 UTF-8 bytes: more than one encoded word
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("    email: mario.rossi@esempio.it\n",
                                 f"    email: {account}\n    notify: jm@example.org\n") + SENDER, encoding="utf-8")
    out = _messages(tmp_path, spec)
    data = (out / f"{account}/message/{account}.eml").read_bytes()
    assert data.isascii()
    # Every line within 78 but the file name's one RFC 2231 parameter (whole: see attachment_fields).
    assert max(len(line) for line in data.split(b"\r\n") if not line.startswith(b" filename*=")) <= 78
    assert _decoded_header(data, "X-Mailprofile-Account") == account
    assert _parse(out / f"{account}/message/{account}.eml")["To"].addresses[0].addr_spec == "jm@example.org"
    [queued] = load_outbox_messages(out)  # what `send` journals the message under
    assert (queued.account, queued.recipient) == (account, "jm@example.org")


TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@pytest.mark.parametrize("body", ['<body class="guide">\n', "<BODY>", '<body lang="it">'])
def test_the_intro_opens_the_html_part_of_a_custom_guide(tmp_path: Path, body: str) -> None:
    """With a --templates guide whose <body> tag had an attribute (or another case, or no newline after it),
    the intro was appended after </html>, at the end of the message instead of its top; the proof compared
    the message with the same composition and passed."""
    (tmp_path / "tpl/guide").mkdir(parents=True)
    packaged = (TEMPLATES / "guide/guide.html.j2").read_text(encoding="utf-8")
    assert packaged.count("<body>\n") == 1
    (tmp_path / "tpl/guide/guide.html.j2").write_text(packaged.replace("<body>\n", body), encoding="utf-8")
    out = tmp_path / "out"
    build(prepare(load_spec(DELIVERY), ["message"], templates=tmp_path / "tpl"), BuildOptions(out=out, jobs=1))
    html_part = _parse(out / "jane.doe@esempio.it/message/jane.doe@esempio.it.eml").get_body(("html",))
    assert html_part is not None
    html = html_part.get_content().replace("\r\n", "\n")
    after_body = html.split(body, 1)[1].lstrip("\n")
    assert after_body.startswith('<p class="intro">Here is the setup of your new mailbox.</p>\n')
    assert html.rstrip().endswith("</html>")


def test_a_custom_guide_without_a_body_tag_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "tpl/guide").mkdir(parents=True)
    packaged = (TEMPLATES / "guide/guide.html.j2").read_text(encoding="utf-8")
    (tmp_path / "tpl/guide/guide.html.j2").write_text(packaged.replace("<body>\n", "").replace("</body>", ""),
                                                      encoding="utf-8")
    result = CliRunner().invoke(main, ["build", str(DELIVERY), "--only", "apple,guide,message", "--out",
                                       str(tmp_path / "out"), "--templates", str(tmp_path / "tpl")])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines()[-3:] == [
        "error: mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml: the rendered file does not say what the "
        "spec says:",
        "  the HTML guide has no <body> tag to put the message's intro after — keep <body> in your guide.html.j2",
        "nothing was written (a bug, or a --templates override that changes values)"]
    assert not (tmp_path / "out").exists()


def test_escaped_carriage_returns_in_long_texts_are_line_breaks(tmp_path: Path) -> None:
    """An intro, password hint or consent text written with "\\r\\n" or "\\r" escapes (copied from a Windows
    text) stopped the build as "a bug, or a --templates override": every format reads a CR back as a line
    break (XML, quoted-printable) and the proof compared with the CR. They are line breaks, as YAML makes the
    line breaks of a file saved with CRLF."""
    spec = tmp_path / "spec.yaml"
    consent = '  apple: {consent_text: {default: "I agree\\r\\nto this"}}\n'
    spec.write_text(BASE.replace("  build: [apple]\n", "  build: [apple]\n" + consent)
                    + 'delivery:\n  sender: "IT <it@esempio.it>"\n  intro: {en: "Welcome.\\r\\n\\r\\nSecond\\rline"}\n'
                    '  password_hint: {en: "Ask\\r\\nIT"}\n', encoding="utf-8")
    loaded = load_spec(spec)
    assert loaded.spec.delivery.intro["en"] == "Welcome.\n\nSecond\nline"
    assert loaded.spec.delivery.password_hint["en"] == "Ask\nIT"
    assert loaded.spec.targets.apple.consent_text["default"] == "I agree\nto this"
    out = _messages(tmp_path, spec)
    msg = _parse(out / "mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml")
    text, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().replace("\r\n", "\n").startswith("Welcome.\n\nSecond\nline\n\n")
    assert '<p class="intro">Welcome.</p>\r\n<p class="intro">Second\r\nline</p>' in html.get_content()


# --- QR codes as mail apps show them ---------------------------------------------------------------------------

ANDROID_QR = "targets:\n  build: [apple, guide, message]\n  thunderbird: {android_qr: true}\n"


def test_qr_codes_arrive_as_png_parts_that_the_html_names_by_cid(tmp_path: Path) -> None:
    """Gmail removes inline <svg> and data: images and Outlook for Windows draws neither: in a message each QR
    code of the guide is a PNG part of a multipart/related, named by cid:, that zbar reads as the guide file's
    code (the profile link; the Thunderbird for Android import)."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(DELIVERY.read_text(encoding="utf-8").replace(
        "targets:\n  build: [apple, guide, message]\n", ANDROID_QR), encoding="utf-8")
    out = _messages(tmp_path, spec)
    address = "mario.rossi@esempio.it"
    msg = _parse(out / f"{address}/message/{address}.eml")
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png",
        "image/png", "application/x-apple-aspen-config"]
    html_part = msg.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert "<svg" not in html and "data:" not in html
    referenced = re.findall(r'<img [^>]*src="cid:([^"]+)"', html)
    images = {str(p["Content-ID"]).strip("<>"): p for p in msg.walk() if p.get_content_type() == "image/png"}
    assert referenced == list(images) and len(set(referenced)) == 2
    assert all(p.get_content_disposition() == "inline" for p in images.values())
    assert [p.get_content_type() for p in msg.iter_attachments()] == ["application/x-apple-aspen-config"]
    guide = parse_html_guide((out / f"{address}/guide/{address}.html").read_bytes())
    profile_qr, android_qr = (zbar(images[cid].get_content(), tmp_path, "the message's PNG part")
                              for cid in referenced)
    assert profile_qr.decode() == guide.links["profile-link"]
    assert guide.links["profile-link"] == f"https://mail.esempio.it/profiles/apple/{address}.mobileconfig"
    assert json.loads(android_qr) == read_android_qr(guide.images["android-qr"])  # the android-qr file's SVG
    assert b"\"pop3s.aruba.it\"" in android_qr and address.encode() in android_qr
    # the codes keep their names for screen readers
    assert re.search(r'<img src="cid:[^"]+" alt="[^"]*https://mail\.esempio\.it/profiles/', html)
    assert 'alt="Codice QR' in html or "alt=\"QR" in html


def test_a_guide_without_qr_codes_keeps_a_plain_html_part(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(DELIVERY.read_text(encoding="utf-8").replace("  base_url: https://mail.esempio.it/profiles\n", ""),
                    encoding="utf-8")
    out = _messages(tmp_path, spec)
    msg = _parse(out / "mario.rossi@esempio.it/message/mario.rossi@esempio.it.eml")
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/x-apple-aspen-config"]


def test_a_png_that_does_not_show_the_guides_code_stops_the_build(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The proof reads each PNG part back and compares it with the guide's own SVG: drawn from another code,
    nothing is written."""
    other = segno.make_qr("https://evil.example/profile", error="m").matrix
    monkeypatch.setattr(mailimages, "png_of", lambda _matrix: mailimages.pngwriter.qr_png(other, 4, 4))
    with pytest.raises(VerificationError, match="codes"):
        _messages(tmp_path)
    assert not (tmp_path / "out").exists()


def test_a_qr_code_in_a_comment_of_a_custom_guide_stays_a_comment(tmp_path: Path) -> None:
    """An admin's guide.html.j2 that keeps an old copy of the QR code in a comment: no mail app shows a comment,
    so no image part is made for it and the message builds (the rewrite reads the page as the proof does)."""
    (tmp_path / "tpl/guide").mkdir(parents=True)
    packaged = (TEMPLATES / "guide/guide.html.j2").read_text(encoding="utf-8")
    line = '<div class="qr">{{ qr_svg | safe }}</div>'
    assert packaged.count(line) == 1
    (tmp_path / "tpl/guide/guide.html.j2").write_text(packaged.replace(line, f"<!-- old: {line} -->\n{line}"),
                                                      encoding="utf-8")
    out = tmp_path / "out"
    build(prepare(load_spec(DELIVERY), ["message"], templates=tmp_path / "tpl"), BuildOptions(out=out, jobs=1))
    msg = _parse(out / "jane.doe@esempio.it/message/jane.doe@esempio.it.eml")
    assert [p.get_content_type() for p in msg.walk()].count("image/png") == 1
    html_part = msg.get_body(("html",))
    assert html_part is not None
    html = html_part.get_content()
    assert '<!-- old: <div class="qr"><svg role="img"' in html and html.count("cid:") == 1


def test_a_qr_codes_name_stays_one_attribute_however_the_guide_quoted_it() -> None:
    """The <img> that replaces an inline QR code takes its alt text from the <svg>'s aria-label: a --templates
    guide that single-quotes a label holding '"' gave alt="say "hi"", which a mail app reads as alt="say ". """
    from html.parser import HTMLParser

    code = segno.make_qr("https://mail.esempio.it/p")
    svg = code.svg_inline(scale=4, svgclass="qr", lineclass=None, dark="#000", light="#fff")  # as the guide draws it
    size = str(code.symbol_size(scale=4, border=4)[0])
    page, [image] = mailimages.to_cid(svg.replace("<svg ", "<svg aria-label='say \"hi\" &amp; scan' ", 1), "k" * 32,
                                      "esempio.it")
    found: list[dict[str, str | None]] = []

    class Images(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append(dict(attrs))

    Images().feed(page)
    assert found == [{"src": f"cid:{image.cid}", "alt": 'say "hi" & scan', "width": size, "height": size}]
