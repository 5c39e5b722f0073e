"""Setup guides: per account (HTML + text, the account's language), per domain with placeholders, QR code of
the profile link. Values are read back from the files and compared with the spec; tampering is caught."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import urllib.parse
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.accounts import load_accounts
from generator.build import BuildOptions, build, prepare
from generator.errors import SpecError, VerificationError
from generator.pngwriter import deflate_fixed
from generator.qrdecode import decode_png
from generator.spec import load_spec
from generator.targets.guide import manual_settings, parse_html_guide, parse_text_tables, profile_link, qr_code, qr_png
from tests.conftest import EXAMPLES, require_binary
from tests.test_spec_errors import BASE, check

DELIVERY = EXAMPLES / "delivery.yaml"


# Mario's settings table in examples/delivery.yaml (Italian), as a user reads it: also read from the rendered
# page by tests/test_guide_browser.py.
MARIO_TABLE = {
    "account.email": "mario.rossi@esempio.it", "incoming.protocol": "POP3",
    "incoming.host": "pop3s.aruba.it", "incoming.port": "995", "incoming.security": "SSL/TLS",
    "incoming.authentication": "Password normale", "incoming.username": "mario.rossi@esempio.it",
    "incoming.keep_on_server": "Sì, rimuovi dal server dopo 30 giorni",
    "outgoing.host": "smtps.aruba.it", "outgoing.port": "465", "outgoing.security": "SSL/TLS",
    "outgoing.authentication": "Autenticazione necessaria, stessi nome utente e password",
    "tls_min": "TLS 1.2"}


def _build(tmp_path: Path, spec: Path = DELIVERY, base_url: str | None = None, only: list[str] | None = None,
           templates: Path | None = None) -> Path:
    out = tmp_path / "out"
    build(prepare(load_spec(spec), only or ["apple", "guide"], templates=templates, base_url=base_url),
          BuildOptions(out=out, jobs=1))
    return out


def _table(path: Path, table: str = "settings") -> dict[str, str]:
    return parse_html_guide(path.read_bytes()).tables[table]


def test_guide_per_account_in_its_language(tmp_path: Path) -> None:
    out = _build(tmp_path)
    mario = _table(out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html")
    assert mario == MARIO_TABLE
    jane = _table(out / "jane.doe@esempio.it/guide/jane.doe@esempio.it.html")
    assert jane["incoming.authentication"] == "Normal password"
    assert jane["outgoing.authentication"] == "Authentication required, same user name and password"
    assert parse_html_guide((out / "jane.doe@esempio.it/guide/jane.doe@esempio.it.html").read_bytes()).lang == "en"
    legacy = _table(out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html", "legacy")
    assert legacy == {"fallback.incoming.0.host": "pop3.esempio.it", "fallback.incoming.0.port": "110",
                      "fallback.incoming.0.security": "Nessuna",
                      "fallback.incoming.0.authentication": "Password normale",
                      "fallback.incoming.0.username": "mario.rossi@esempio.it",
                      "fallback.outgoing.0.host": "smtp.esempio.it",
                      "fallback.outgoing.0.port": "25", "fallback.outgoing.0.security": "Nessuna",
                      "fallback.outgoing.0.authentication": "Password normale",
                      "fallback.outgoing.0.username": "mario.rossi@esempio.it"}
    text = (out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.txt").read_text(encoding="utf-8")
    assert "Porta: 995\n" in text and "Sicurezza della connessione: SSL/TLS\n" in text
    assert "La password ti è stata consegnata dal Servizio IT di persona." in text
    assert "assistenza@esempio.it" in text and "TLS 1.2" in text


def test_manifest_lists_guides_with_media_types(tmp_path: Path) -> None:
    out = _build(tmp_path)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    kinds = {(e["account"], e["kind"]): e["media_type"] for e in manifest["files"] if e["target"] == "guide"}
    assert kinds[("mario.rossi@esempio.it", "guide-html")] == "text/html; charset=utf-8"
    assert kinds[("mario.rossi@esempio.it", "guide-text")] == "text/plain; charset=utf-8"
    assert kinds[("mario.rossi@esempio.it", "guide-qr")] == "image/png"
    assert kinds[(None, "guide-domain-html")] == "text/html; charset=utf-8"


def test_domain_guide_keeps_placeholders_in_every_language(tmp_path: Path) -> None:
    out = _build(tmp_path)
    for language in ("it", "en"):
        html = out / f"domains/esempio.it/guide/esempio.it.{language}.html"
        parsed = parse_html_guide(html.read_bytes())
        assert parsed.lang == language
        assert parsed.tables["settings"]["incoming.username"] == "%EMAILADDRESS%"
        assert parsed.tables["settings"]["incoming.host"] == "pop3s.aruba.it"
        assert "profile-link" not in parsed.links and parsed.qr_svgs == 0


def test_qr_code_decodes_to_the_profile_link(tmp_path: Path) -> None:
    zbarimg = require_binary("zbarimg", "zbar-tools")
    out = _build(tmp_path, base_url="http://127.0.0.1:8080/svc")
    png = out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.qr.png"
    decoded = subprocess.run([zbarimg, "--raw", "-q", str(png)], capture_output=True, text=True, check=True).stdout
    assert decoded.strip() == "http://127.0.0.1:8080/svc/apple/mario.rossi@esempio.it.mobileconfig"
    parsed = parse_html_guide((out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html").read_bytes())
    assert parsed.links["profile-link"] == decoded.strip() and parsed.qr_svgs == 1


def test_no_qr_without_base_url(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(DELIVERY.read_text(encoding="utf-8").replace("  base_url: https://mail.esempio.it/profiles\n", ""),
                    encoding="utf-8")
    out = _build(tmp_path, spec)
    assert not list(out.rglob("*.qr.png"))
    parsed = parse_html_guide((out / "jane.doe@esempio.it/guide/jane.doe@esempio.it.html").read_bytes())
    assert parsed.qr_svgs == 0 and "profile-link" not in parsed.links


def test_profile_link_quotes_what_a_url_path_cannot_carry() -> None:
    assert profile_link("https://h/x", "a+b@esempio.it") == "https://h/x/apple/a+b@esempio.it.mobileconfig"
    assert profile_link("https://h", "a#b{c}@esempio.it") == "https://h/apple/a%23b%7Bc%7D@esempio.it.mobileconfig"


def test_language_from_csv_column_and_default(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("name,email,language\nAnna,anna@esempio.it,en\nBruno,bruno@esempio.it,\n",
                                        encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("targets:", "accounts_csv: users.csv\ndelivery: {language: it}\ntargets:"),
                    encoding="utf-8")
    languages = {m.email: m.language for m in load_accounts(load_spec(spec))}
    assert languages == {"mario.rossi@esempio.it": "it", "anna@esempio.it": "en", "bruno@esempio.it": "it"}
    out = _build(tmp_path, spec)
    assert parse_html_guide((out / "anna@esempio.it/guide/anna@esempio.it.html").read_bytes()).lang == "en"
    assert parse_html_guide((out / "bruno@esempio.it/guide/bruno@esempio.it.html").read_bytes()).lang == "it"


def test_unsupported_language_is_a_located_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, lines = check(tmp_path, BASE.replace("email: mario.rossi@esempio.it",
                                               "email: mario.rossi@esempio.it\n    language: de"))
    assert code == 2
    assert lines[0] == ("error: spec.yaml:17:15: accounts[0].language: 'de' is not a supported language; "
                        "use one of en, it")


@pytest.mark.parametrize(("value", "column"), [("it_IT", 20), ("it-IT", 20), ("IT", 20), ("En", 20)])
def test_a_language_with_region_or_capitals_names_the_code_to_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    value: str, column: int) -> None:
    monkeypatch.chdir(tmp_path)
    code, lines = check(tmp_path, BASE.replace("targets:", "accounts_csv: users.csv\ntargets:"),
                        csv=f"name,email,language\nBad,bad@esempio.it,{value}\n")
    assert code == 2
    assert lines[0] == (f"error: users.csv:2:{column}: language: '{value}' is not a supported language; write "
                        f"'{value[:2].lower()}' (a language code in lower case, without a region)")


def test_names_are_escaped_in_html(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("name: Mario Rossi", 'name: "<b>Mario</b> & Co"'), encoding="utf-8")
    out = _build(tmp_path, spec)
    html = (out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html").read_text(encoding="utf-8")
    assert "<b>Mario</b>" not in html and "&lt;b&gt;Mario&lt;/b&gt; &amp; Co" in html


def test_guide_never_carries_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MP_TEST_PASSWORD", "s3cret-Passw0rd")
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + "passwords: {include: true, from_env: MP_TEST_PASSWORD}\n", encoding="utf-8")
    out = _build(tmp_path, spec)
    for path in (out / "mario.rossi@esempio.it/guide").iterdir():
        assert b"s3cret-Passw0rd" not in path.read_bytes()
        # The profile beside it (and attached to the message) carries it: the guide must not deny that.
        text = path.read_text(encoding="utf-8")
        assert "never contain your password" not in text
        assert "The configuration profile contains your password: do not forward it to anyone" in text
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "spec.yaml").write_text(BASE, encoding="utf-8")
    guide = _build(plain, plain / "spec.yaml") / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.txt"
    assert "This guide and our messages never contain your password" in guide.read_text(encoding="utf-8")


def test_a_template_that_changes_a_value_stops_the_build(tmp_path: Path) -> None:
    override = tmp_path / "tpl" / "guide"
    override.mkdir(parents=True)
    packaged = Path(__file__).resolve().parent.parent / "templates" / "guide" / "_table.html.j2"
    (override / "_table.html.j2").write_text(
        packaged.read_text(encoding="utf-8").replace("<td>{{ row.value }}</td>",
                                                     "<td>{{ row.value | replace('995', '110') }}</td>"),
        encoding="utf-8")
    with pytest.raises(VerificationError) as info:
        _build(tmp_path, templates=tmp_path / "tpl")
    assert info.value.path == "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html"
    assert "settings.incoming.port: expected 995, found 110" in info.value.mismatches
    assert not (tmp_path / "out").exists()


def test_a_text_template_that_drops_a_row_stops_the_build(tmp_path: Path) -> None:
    override = tmp_path / "tpl" / "guide"
    override.mkdir(parents=True)
    (override / "_table.txt.j2").write_text(
        "[{{ table_id }}]\n{% for row in rows if row.key != 'tls_min' %}\n{{ row.label }}: {{ row.value }}\n"
        "{% endfor %}\n\n", encoding="utf-8")
    with pytest.raises(VerificationError) as info:
        _build(tmp_path, templates=tmp_path / "tpl")
    assert info.value.path.endswith(".txt")


def test_manual_settings_api_for_other_pages(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("security: ssl\noutgoing", "security: ssl\n  keep_on_server: true\noutgoing")
                    .replace("port: 465\n  security: ssl", "port: 587\n  security: starttls"), encoding="utf-8")
    loaded = load_spec(spec)
    [mailbox] = load_accounts(loaded)
    rows = manual_settings(loaded.spec, mailbox, "en")
    assert [(r.key, r.label, r.value) for r in rows] == [
        ("account.email", "E-mail address", "mario.rossi@esempio.it"),
        ("incoming.protocol", "Account type", "POP3"),
        ("incoming.host", "Incoming server (POP3)", "pop3s.aruba.it"),
        ("incoming.port", "Port", "995"),
        ("incoming.security", "Connection security", "SSL/TLS"),
        ("incoming.authentication", "Authentication method", "Normal password"),
        ("incoming.username", "User name", "mario.rossi@esempio.it"),
        ("incoming.keep_on_server", "Leave a copy of messages on the server", "Yes"),
        ("outgoing.host", "Outgoing server (SMTP)", "smtps.aruba.it"),
        ("outgoing.port", "Port", "587"),
        ("outgoing.security", "Connection security", "STARTTLS"),
        ("outgoing.authentication", "Authentication", "Authentication required, same user name and password"),
        ("tls_min", "Minimum TLS version", "TLS 1.2")]
    it_rows = {r.key: r.value for r in manual_settings(loaded.spec, mailbox, "it")}
    assert it_rows["incoming.keep_on_server"] == "Sì" and it_rows["incoming.authentication"] == "Password normale"


@pytest.mark.parametrize(("days", "en", "it"), [
    (1, "Yes, remove from the server after 1 day", "Sì, rimuovi dal server dopo 1 giorno"),
    (2, "Yes, remove from the server after 2 days", "Sì, rimuovi dal server dopo 2 giorni"),
    (30, "Yes, remove from the server after 30 days", "Sì, rimuovi dal server dopo 30 giorni"),
])
def test_keep_days_in_the_plural_form_of_the_language(tmp_path: Path, days: int, en: str, it: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("security: ssl\noutgoing",
                                 f"security: ssl\n  keep_on_server: true\n  keep_days: {days}\noutgoing")
                    .replace("targets:", "  - {name: Jane Doe, email: jane@esempio.it, language: en}\n"
                             "delivery: {language: it}\ntargets:"), encoding="utf-8")
    out = _build(tmp_path, spec)  # each guide is read back: the count must parse back from either form
    assert _table(out / "jane@esempio.it/guide/jane@esempio.it.html")["incoming.keep_on_server"] == en
    assert _table(out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html")["incoming.keep_on_server"] == it
    text = (out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.txt").read_text(encoding="utf-8")
    assert f"Lascia una copia dei messaggi sul server: {it}\n" in text


def test_separate_smtp_credentials_show_the_smtp_user(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    smtp = "port: 465\n  security: ssl\n  same_credentials: false\n  username: smtp-%EMAILLOCALPART%"
    spec.write_text(BASE.replace("port: 465\n  security: ssl", smtp), encoding="utf-8")
    out = _build(tmp_path, spec)
    table = _table(out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html")
    assert table["outgoing.authentication"] == "Normal password"
    assert table["outgoing.username"] == "smtp-mario.rossi"


@pytest.mark.parametrize(("incoming_auth", "outgoing", "rows", "needs_auth"), [
    # OAuth2 SMTP with the incoming server's account: "same user name and password" hid the method.
    ("oauth2", "authentication: oauth2", {"outgoing.authentication": "OAuth2",
                                          "outgoing.username": "mario.rossi@esempio.it"}, True),
    ("password", "authentication: encrypted-password", {"outgoing.authentication": "Encrypted password",
                                                        "outgoing.username": "mario.rossi@esempio.it"}, True),
    # A relay without authentication: the guide said it needs authentication.
    ("password", "authentication: none", {"outgoing.authentication": "No authentication"}, False),
    ("password", "authentication: password", {"outgoing.authentication":
                                              "Authentication required, same user name and password"}, True),
    # Its own user name: "Use the same settings as my incoming server" was still advised.
    ("password", "authentication: password\n  same_credentials: false\n  username: smtp-%EMAILLOCALPART%",
     {"outgoing.authentication": "Normal password", "outgoing.username": "smtp-mario.rossi"}, False),
])
def test_outgoing_authentication_is_what_the_spec_says(tmp_path: Path, incoming_auth: str, outgoing: str,
                                                       rows: dict[str, str], needs_auth: bool) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("port: 995\n  security: ssl", f"port: 995\n  security: ssl\n  authentication: "
                                 f"{incoming_auth}")
                    .replace("port: 465\n  security: ssl", f"port: 465\n  security: ssl\n  {outgoing}")
                    .replace("build: [apple]", "build: [thunderbird]"), encoding="utf-8")
    out = _build(tmp_path, spec, only=["guide"])
    guide = out / "mario.rossi@esempio.it/guide"
    table = _table(guide / "mario.rossi@esempio.it.html")
    assert {k: v for k, v in table.items() if k.startswith("outgoing.") and k.split(".")[1] in
            ("authentication", "username")} == rows
    for path in (guide / "mario.rossi@esempio.it.html", guide / "mario.rossi@esempio.it.txt"):
        assert ("The outgoing server needs authentication" in path.read_text(encoding="utf-8")) is needs_auth


def test_fallbacks_show_their_own_login(tmp_path: Path) -> None:
    """The fallback table left out authentication and user name: a fallback with its own user name, or none,
    read as if it took the main login."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + "fallbacks:\n  incoming: [{protocol: pop3, host: pop3.esempio.it, port: 110, "
                    "security: none, allow_insecure: true, username: \"%EMAILLOCALPART%\"}]\n  outgoing: [{host: "
                    "smtp.esempio.it, port: 25, security: none, allow_insecure: true, authentication: none}]\n",
                    encoding="utf-8")
    out = _build(tmp_path, spec, only=["guide"])
    legacy = _table(out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html", "legacy")
    assert {k: v for k, v in legacy.items() if k.rsplit(".", 1)[1] in ("authentication", "username")} == {
        "fallback.incoming.0.authentication": "Normal password", "fallback.incoming.0.username": "mario.rossi",
        "fallback.outgoing.0.authentication": "No authentication"}
    text = (out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.txt").read_text(encoding="utf-8")
    assert text.count("User name: mario.rossi\n") == 1  # the fallback's, beside the main table's full address
    # A fallback that names no user name logs in as the primary does (model.user_template), as config-v1.1.xml
    # and autodiscover.xml say.
    spec.write_text(spec.read_text(encoding="utf-8").replace(', username: "%EMAILLOCALPART%"', "").replace(
        "  security: ssl\noutgoing:", "  security: ssl\n  username: \"u-%EMAILLOCALPART%\"\noutgoing:"),
        encoding="utf-8")
    out = _build(tmp_path / "again", spec, only=["guide"])
    legacy = _table(out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html", "legacy")
    assert legacy["fallback.incoming.0.username"] == "u-mario.rossi"


def test_no_apple_target_no_profile_in_the_guide(tmp_path: Path) -> None:
    """A spec that builds no Apple profile: the guide sent users to an attached profile, a profile link (which
    `serve` answers with 404) and its QR code."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("build: [apple]", "build: [thunderbird, guide]")
                    + "delivery: {language: it, base_url: \"https://mail.esempio.it/p\"}\n", encoding="utf-8")
    out = _build(tmp_path, spec, only=["thunderbird", "guide"])
    guide = out / "mario.rossi@esempio.it/guide"
    assert sorted(p.name for p in guide.iterdir()) == ["mario.rossi@esempio.it.html", "mario.rossi@esempio.it.txt"]
    for path in guide.iterdir():
        text = path.read_text(encoding="utf-8")
        for phrase in ("mobileconfig", "profilo di configurazione", "Profilo scaricato"):
            assert phrase not in text
        assert "Nelle impostazioni di Mail scegli Aggiungi account, poi Altro" in text
    parsed = parse_html_guide((guide / "mario.rossi@esempio.it.html").read_bytes())
    assert parsed.qr_svgs == 0 and "profile-link" not in parsed.links
    # `messages` always attaches the profile: then the guide tells of it.
    with_apple = _build(tmp_path / "apple", spec, only=["apple", "guide"])
    parsed = parse_html_guide((with_apple / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html").read_bytes())
    assert parsed.links["profile-link"] == "https://mail.esempio.it/p/apple/mario.rossi@esempio.it.mobileconfig"


def test_the_imap_alternative_is_in_the_guide(tmp_path: Path) -> None:
    """The provider's own guide points POP3 users to its IMAP server (examples/provider-pop3.yaml declares it
    as imap_alternative); the guide left it out."""
    out = _build(tmp_path, EXAMPLES / "provider-pop3.yaml", only=["guide"])
    guide = out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it"
    expected = {"imap.host": "imaps.aruba.it", "imap.port": "993", "imap.security": "SSL/TLS",
                "imap.authentication": "Normal password", "imap.username": "mario.rossi@esempio.it"}
    assert _table(Path(f"{guide}.html"), "imap") == expected
    keys = {"imap": list(expected)}
    assert parse_text_tables(Path(f"{guide}.txt").read_text(encoding="utf-8"), keys) == {"imap": expected}
    domain = out / "domains/esempio.it/guide/esempio.it.it.html"
    assert _table(domain, "imap")["imap.username"] == "%EMAILADDRESS%"
    # Without one, no IMAP section.
    assert "imap" not in parse_html_guide((_build(tmp_path / "d", DELIVERY) / "mario.rossi@esempio.it/guide/"
                                           "mario.rossi@esempio.it.html").read_bytes()).tables


def test_links_in_guides_are_web_pages_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A javascript: or data: link runs in the reader's browser (the domain guide is made for an intranet
    page, and an imported autoconfig file fills in documentation_url): refused where the spec says it."""
    monkeypatch.chdir(tmp_path)
    spec = BASE.replace("  domains: [esempio.it]\n",
                        "  domains: [esempio.it]\n  documentation_url: javascript:alert(1)\n")
    spec += ("delivery:\n  support:\n    url: \"data:text/html,<script>alert(1)</script>\"\n"
             "    email: \"x@esempio.it?bcc=all@esempio.it\"\n")
    code, lines = check(tmp_path, spec)
    assert code == 2
    assert lines[:3] == [
        "error: spec.yaml:5:22: provider.documentation_url: 'javascript:alert(1)' is not an http(s) URL such as "
        "https://example.com/help (guides link it)",
        "error: spec.yaml:22:10: delivery.support.url: 'data:text/html,<script>alert(1)</script>' is not an "
        "http(s) URL such as https://example.com/help (guides link it)",
        "error: spec.yaml:23:12: delivery.support.email: 'x@esempio.it?bcc=all@esempio.it' is not an e-mail "
        "address (it needs exactly one @)"]


def test_help_links_carry_the_spec_values_exactly(tmp_path: Path) -> None:
    """'#' and '&' are legal in a local part; in a mailto: link they would cut the address or add headers."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE.replace("  domains: [esempio.it]\n", "  domains: [esempio.it]\n  documentation_url: "
                                 "https://esempio.it/help?a=1&b=2#pop\n")
                    + "delivery:\n  support: {url: 'https://help.esempio.it/', email: 'help&desk#1@esempio.it'}\n",
                    encoding="utf-8")
    out = _build(tmp_path, spec)
    for page in ("mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html",
                 "domains/esempio.it/guide/esempio.it.it.html"):
        links = parse_html_guide((out / page).read_bytes()).links
        assert links == {"support-email": "mailto:help%26desk%231@esempio.it",
                         "support-url": "https://help.esempio.it/", "documentation": "https://esempio.it/help?a=1&b=2#pop"}
        assert urllib.parse.unquote(links["support-email"].removeprefix("mailto:")) == "help&desk#1@esempio.it"


def test_a_template_that_changes_a_help_link_stops_the_build(tmp_path: Path) -> None:
    override = tmp_path / "tpl" / "guide"
    override.mkdir(parents=True)
    packaged = Path(__file__).resolve().parent.parent / "templates" / "guide" / "guide.html.j2"
    (override / "guide.html.j2").write_text(
        packaged.read_text(encoding="utf-8").replace('href="{{ support_mailto }}"', 'href="mailto:phish@evil.example"'),
        encoding="utf-8")
    with pytest.raises(VerificationError) as info:
        _build(tmp_path, templates=tmp_path / "tpl")
    assert "support-email: expected 'mailto:assistenza@esempio.it', found 'mailto:phish@evil.example'" in \
        info.value.mismatches


def test_a_profile_link_no_qr_code_can_hold_is_a_located_error(tmp_path: Path) -> None:
    """segno raised DataOverflowError (exit 70, "internal error") for a base URL that leaves the link over
    2,331 bytes, the most a QR code holds at error correction M; one byte less still builds and decodes."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + "delivery: {language: en}\n", encoding="utf-8")
    fixed = len(profile_link("https://m.esempio.it/", "mario.rossi@esempio.it"))
    base = "https://m.esempio.it/" + "p" * (2331 - fixed)
    out = _build(tmp_path, spec, base_url=base)
    png = out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.qr.png"
    assert decode_png(png.read_bytes()).decode() == profile_link(base, "mario.rossi@esempio.it")
    with pytest.raises(SpecError) as info:
        _build(tmp_path, spec, base_url=base + "p", only=["guide"])
    assert [str(p) for p in info.value.problems] == [
        f"{spec}:15:5: the profile link of mario.rossi@esempio.it is 2332 bytes, more than a QR code holds (2331) — "
        "shorten the base URL (delivery.base_url or --base-url)"]


def test_pop3_guide_says_webmail_folders_are_not_downloaded(tmp_path: Path) -> None:
    # The provider's own POP3 guide (SERVICE-AND-DELIVERY §C; Aruba): "I messaggi inseriti in cartelle
    # personalizzate all'interno di WebMail non vengono scaricati nel programma di posta."
    out = _build(tmp_path)
    mario = (out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.txt").read_text(encoding="utf-8")
    assert "I messaggi che sposti in cartelle personalizzate in WebMail non vengono scaricati nell'app.\n" in mario
    jane = (out / "jane.doe@esempio.it/guide/jane.doe@esempio.it.html").read_text(encoding="utf-8")
    assert "Messages you move to your own folders in WebMail are not downloaded to the app.</p>" in jane
    imap = _build(tmp_path / "imap", EXAMPLES / "provider-imap.yaml", only=["guide"])
    assert not any("WebMail are not downloaded" in p.read_text(encoding="utf-8") for p in imap.rglob("*.txt"))


def _png_chunks(data: bytes) -> dict[bytes, bytes]:
    chunks, pos = {}, 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        chunks[data[pos + 4:pos + 8]] = chunks.get(data[pos + 4:pos + 8], b"") + data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return chunks


def test_qr_png_bytes_do_not_depend_on_the_zlib_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """zlib 1.2/1.3, zlib-ng and Chromium's zlib deflate the same rows into different (equally valid) bytes, so
    segno's PNG, written with zlib.compress, changed with the machine that built it. zlib-ng does not run
    here: a zlib.compress that deflates at another level stands in for it. The PNG is the same, and its pixels
    are still segno's."""
    link = profile_link("https://mail.esempio.it/profiles", "mario.rossi@esempio.it")
    png = qr_png(link)
    segno_png = io.BytesIO()
    qr_code(link).save(segno_png, kind="png", scale=6, border=4)
    compress = zlib.compress
    monkeypatch.setattr(zlib, "compress", lambda data, level=-1, wbits=15: compress(data, 1, wbits))
    assert qr_png(link) == png
    ours, segnos = _png_chunks(png), _png_chunks(segno_png.getvalue())
    assert ours[b"IHDR"] == segnos[b"IHDR"] == struct.pack(">2I5B", 270, 270, 1, 0, 0, 0, 0)
    assert zlib.decompress(ours[b"IDAT"]) == zlib.decompress(segnos[b"IDAT"])
    assert decode_png(png).decode() == link


@given(st.binary(max_size=3000) | st.lists(st.sampled_from([b"\x00", b"\xff", b"\x0f\xf0"]), max_size=2000)
       .map(b"".join), st.lists(st.integers(1, 32768), min_size=1, max_size=3))
def test_deflate_fixed_is_read_back_by_zlib(data: bytes, distances: list[int]) -> None:
    stream = deflate_fixed(data, distances)
    assert zlib.decompress(stream) == data
    assert deflate_fixed(data, distances) == stream


def _reference_deflate(data: bytes, distances: list[int]) -> bytes:
    """deflate_fixed's search as first written (byte by byte), kept to hold the faster one to the same bytes: a
    changed stream would change every guide's and message's QR code PNG, and the manifest lines that hash them.
    (The codes and the packing are the module's own: only the search changed.)"""
    from generator.pngwriter import _SYMBOLS, match_codes, zlib_stream

    def length(i: int, d: int, limit: int) -> int:
        size = 0
        while size < limit and data[i + size] == data[i + size - d]:
            size += 1
        return size

    out, i = [(0b011, 3)], 0
    while i < len(data):
        best, at = 0, 0
        for d in distances:
            found = length(i, d, min(258, len(data) - i)) if d <= i else 0
            if found > best:
                best, at = found, d
        if best < 3:
            out.append(_SYMBOLS[data[i]])
            i += 1
        else:
            out += match_codes(best, at)
            i += best
    return zlib_stream(out, data)


@given(st.binary(max_size=3000) | st.lists(st.sampled_from([b"\x00", b"\xff", b"\x0f\xf0", b"\x02"]), max_size=2000)
       .map(b"".join), st.lists(st.integers(1, 32768), min_size=1, max_size=3))
def test_deflate_fixed_writes_the_bytes_of_the_byte_by_byte_algorithm(data: bytes, distances: list[int]) -> None:
    assert deflate_fixed(data, distances) == _reference_deflate(data, distances)


def test_qr_pngs_are_the_bytes_of_the_byte_by_byte_algorithm() -> None:
    for link in ("https://mail.esempio.it/profiles/apple/mario.rossi@esempio.it.mobileconfig", "x" * 900):
        chunks = _png_chunks(qr_png(link))
        width = struct.unpack(">I", chunks[b"IHDR"][:4])[0]
        rows = zlib.decompress(chunks[b"IDAT"])
        assert chunks[b"IDAT"] == _reference_deflate(rows, [1, (width + 7) // 8 + 1])  # as qr_png calls it
