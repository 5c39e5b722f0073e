"""Importing real-world inputs: ISPDB entries, profiles of several origins (signed too), an automx2 database,
a Thunderbird prefs.js. Each import must pass `check`, and say what it lost or guessed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main
from generator.errors import SpecError
from generator.importers import ImportResult, import_sources
from generator.spec import load_spec
from tests.conftest import ROOT, require_binary

FIXTURES = ROOT / "tests" / "fixtures" / "import"
ISPDB = FIXTURES / "ispdb"
PROFILES = FIXTURES / "profiles"
GOLDEN = ROOT / "tests" / "golden"


def _spec(result: ImportResult, tmp_path: Path, name: str = "spec.yaml") -> dict:  # type: ignore[type-arg]
    """Write the imported spec, prove that `check` accepts it, return it as plain data."""
    path = tmp_path / name
    path.write_text(result.text, encoding="utf-8")
    outcome = CliRunner().invoke(main, ["check", str(path)])
    assert outcome.exit_code == 0, outcome.output
    assert result.text.startswith("# yaml-language-server: $schema=mailprofile.schema.json\n")
    return load_spec(path).spec.model_dump(mode="json", exclude_defaults=True)


def _warnings(result: ImportResult) -> list[str]:
    return [str(w) for w in result.warnings]


def test_ispdb_web_de_keeps_every_server_in_order(tmp_path: Path) -> None:
    result = import_sources([ISPDB / "web.de.xml"])
    spec = _spec(result, tmp_path)
    assert spec["provider"] == {"id": "web.de", "display_name": "WEB.DE Freemail", "short_name": "WEB.DE",
                                "domains": ["web.de"],
                                "documentation_url": "https://hilfe.web.de/pop-imap/imap/imap-serverdaten.html"}
    assert spec["incoming"] == {"host": "imap.web.de", "port": 993, "security": "ssl",
                                "username": "%EMAILLOCALPART%", "protocol": "imap"}
    assert [(s["host"], s["port"], s["security"], s["protocol"]) for s in spec["fallbacks"]["incoming"]] == [
        ("imap.web.de", 143, "starttls", "imap"), ("pop3.web.de", 995, "ssl", "pop3"),
        ("pop3.web.de", 110, "starttls", "pop3")]
    assert spec["outgoing"] == {"host": "smtp.web.de", "port": 465, "security": "ssl"}
    assert [(s["port"], s["security"]) for s in spec["fallbacks"]["outgoing"]] == [(587, "starttls")]
    # The ISPDB comment is kept above the server it explains; the <enable> instruction becomes a warning.
    assert "    # source comment: server allows checks only every 15 minutes, otherwise fails at auth\n" \
           "    # checkInterval 15 minutes is not carried for this server\n    - host: pop3.web.de\n" in result.text
    assert any("users must first enable access at https://hilfe.web.de/pop-imap/einschalten.html" in w
               for w in _warnings(result))
    assert any(w.endswith("link descriptions not carried (the spec holds the URL only): en: Configure IMAP; de: "
                          "IMAP konfigurieren") for w in _warnings(result))


def test_ispdb_oauth2_first_keeps_the_password_method_and_says_so(tmp_path: Path) -> None:
    result = import_sources([ISPDB / "mail.ru.xml"])
    spec = _spec(result, tmp_path)
    assert spec["provider"]["domains"] == ["mail.ru", "inbox.ru", "list.ru", "bk.ru", "corp.mail.ru"]
    assert "authentication" not in spec["incoming"]  # password, the default
    warnings = _warnings(result)
    assert f"{ISPDB / 'mail.ru.xml'}:18:7: the source prefers OAuth2, then password-cleartext: the spec holds one " \
           "method, password-cleartext is kept so that every target can carry it — set authentication: oauth2 " \
           "for Thunderbird-only specs" in warnings
    assert any("OAuth2 settings (issuer o2.mail.ru, authURL https://o2.mail.ru/login) are not carried" in w
               for w in warnings)


def test_ispdb_gmail_pop3_options_documentation_and_webmail(tmp_path: Path) -> None:
    result = import_sources([ISPDB / "googlemail.com.xml"])
    spec = _spec(result, tmp_path)
    assert spec["fallbacks"]["incoming"][0] == {"host": "pop.gmail.com", "port": 995, "security": "ssl",
                                                "protocol": "pop3", "keep_on_server": True}
    assert spec["provider"]["documentation_url"] == "http://mail.google.com/support/bin/answer.py?answer=13273"
    warnings = _warnings(result)
    assert sum("further documentation link not carried" in w for w in warnings) == 3
    assert f"{ISPDB / 'googlemail.com.xml'}:68:3: <webMail> is not carried" in warnings
    assert f"{ISPDB / 'googlemail.com.xml'}:64:3: <enable> is not carried" in warnings


def test_ispdb_data_error_is_imported_and_check_warns(tmp_path: Path) -> None:
    result = import_sources([ISPDB / "arubapec.it.xml"])
    path = tmp_path / "spec.yaml"
    path.write_text(result.text, encoding="utf-8")
    outcome = CliRunner().invoke(main, ["check", str(path)])
    assert outcome.exit_code == 0
    line = result.text.splitlines().index("      port: 993") + 1  # the fallback POP3 server's port
    assert f"warning: {path}:{line}:13: fallbacks.incoming.0: port 993 is an IMAP port, but this is a POP3 server " \
           "— check the port" in outcome.output.splitlines()


def test_automx2_profile_names_its_guesses_and_skips_caldav(tmp_path: Path) -> None:
    source = PROFILES / "automx2-imap.mobileconfig"
    result = import_sources([source])
    spec = _spec(result, tmp_path)
    assert spec["incoming"] == {"host": "mail.example.org", "port": 143, "security": "starttls", "protocol": "imap"}
    assert spec["outgoing"] == {"host": "mail.example.org", "port": 587, "security": "starttls"}
    assert spec["accounts"] == [{"name": "Anna Example", "email": "anna@example.org",
                                 "description": "anna@example.org"}]
    warnings = _warnings(result)
    assert f"{source}:3:545: guessed starttls from port 143: Apple's IncomingMailServerUseSSL=true does not say " \
           "SSL or STARTTLS — check the mode with your provider" in warnings
    assert f"{source}:3:1423: payload com.apple.caldav.account skipped: the spec describes mail accounts only" \
           in warnings
    assert any("PayloadIdentifier 'automx2.0B3D5F7A-9C1E-4A2B-8D6F-3E5A7C9B1D20' does not end with the address" in w
               for w in warnings)


def test_configurator_profile_never_copies_the_password(tmp_path: Path) -> None:
    result = import_sources([PROFILES / "configurator-pop.mobileconfig"])
    spec = _spec(result, tmp_path)
    assert "not-a-real-password" not in result.text
    assert not any("not-a-real-password" in w for w in _warnings(result))
    assert spec["accounts"] == [{"name": "Jörg Müller", "email": "j.mueller@beispiel.de", "username": "jmueller01"}]
    assert spec["outgoing"] == {"host": "smtp.beispiel.de", "port": 465, "security": "ssl",
                                "authentication": "encrypted-password"}
    assert spec["targets"] == {"apple": {"consent_text": {"default": "Adds the Beispiel GmbH mailbox."},
                                         "display_name": "Beispiel Mail", "prevent_move": True}}
    assert any("the profile carries IncomingPassword; it is not copied" in w for w in _warnings(result))
    assert any("payload com.apple.wifi.managed skipped" in w for w in _warnings(result))


def test_binary_plist_gives_the_same_spec_as_xml(tmp_path: Path) -> None:
    xml = _spec(import_sources([PROFILES / "configurator-pop.mobileconfig"]), tmp_path, "a.yaml")
    binary = import_sources([PROFILES / "configurator-pop.binary.mobileconfig"])
    assert _spec(binary, tmp_path, "b.yaml") == xml
    # A binary plist has no lines: messages name the key path.
    assert f"{PROFILES / 'configurator-pop.binary.mobileconfig'}:1:1 (PayloadContent[0].SMIMEEnabled): SMIMEEnabled " \
           "is not carried by the spec" in _warnings(binary)


@pytest.mark.parametrize("encoding", ["der", "ber"])
def test_signed_profiles_unwrap_to_the_unsigned_spec(tmp_path: Path, encoding: str) -> None:
    signed = PROFILES / f"automx2-imap.signed-{encoding}.mobileconfig"
    unsigned = _spec(import_sources([PROFILES / "automx2-imap.mobileconfig"]), tmp_path, "a.yaml")
    result = import_sources([signed])
    assert _spec(result, tmp_path, "b.yaml") == unsigned
    assert result.info == [f"{signed}: Apple profile, signed by Organization: Example Org, Common Name: Example Org "
                           "profile signing; signature not verified (pass --verify-signature)"]
    verified = import_sources([signed], verify=True)
    assert verified.info[0].endswith(
        "verified: the profile is intact and signed with the key of O=Example Org,CN=Example Org profile signing "
        "(certificate valid 2026-11-30 to 2036-11-27); the certificate chain and revocation were NOT checked "
        "against any trust store")


def test_openssl_agrees_the_signed_fixtures_are_valid() -> None:
    openssl = require_binary("openssl", "openssl")
    for encoding in ("der", "ber"):
        out = subprocess.run([openssl, "cms", "-verify", "-inform", "DER", "-purpose", "any", "-in",
                              str(PROFILES / f"automx2-imap.signed-{encoding}.mobileconfig"), "-CAfile",
                              str(PROFILES / "signing-ca.pem")], capture_output=True, check=True)
        assert out.stdout == (PROFILES / "automx2-imap.mobileconfig").read_bytes()


def test_a_changed_signed_profile_fails_verification(tmp_path: Path) -> None:
    data = bytearray((PROFILES / "automx2-imap.signed-der.mobileconfig").read_bytes())
    at = data.find(b"mail.example.org")
    data[at:at + 4] = b"evil"  # same length: the DER stays well-formed, the content changes
    tampered = tmp_path / "tampered.mobileconfig"
    tampered.write_bytes(bytes(data))
    assert import_sources([tampered]).text  # without --verify-signature it is read (and says it did not verify)
    with pytest.raises(SpecError) as caught:
        import_sources([tampered], verify=True)
    assert [str(p) for p in caught.value.problems] == [
        f"{tampered}:1:1: signature verification failed: the profile does not match the signed digest (it was "
        "changed after signing) — import without --verify-signature to read the profile anyway, or get a "
        "correctly signed copy"]


def _automx2_db(tmp_path: Path) -> Path:
    db = tmp_path / "automx2.sqlite"
    with sqlite3.connect(db) as con:
        con.executescript((FIXTURES / "automx2" / "automx2.sql").read_text(encoding="utf-8"))
    con.close()
    return db


def test_automx2_database_needs_a_provider_choice(tmp_path: Path) -> None:
    db = _automx2_db(tmp_path)
    with pytest.raises(SpecError) as caught:
        import_sources([db])
    assert str(caught.value.problems[0]) == (
        f"the sources describe 2 providers: example.net (example.net, example.com, from {db}); other.test "
        f"(other.test, from {db}) — pick one with --provider ID (a spec describes one provider)")


def test_automx2_database_servers_by_priority_and_never_the_bind_password(tmp_path: Path) -> None:
    db = _automx2_db(tmp_path)
    result = import_sources([db], provider="example.com")
    spec = _spec(result, tmp_path)
    assert spec["provider"] == {"id": "example.net", "display_name": "Example Hosting", "short_name": "Example",
                                "domains": ["example.net", "example.com"]}
    assert (spec["incoming"]["host"], spec["incoming"]["port"]) == ("imap.example.net", 993)
    assert [(s["host"], s["port"]) for s in spec["fallbacks"]["incoming"]] == [("imap.example.net", 143),
                                                                              ("pop.example.net", 995)]
    assert [(s["host"], s["port"]) for s in spec["fallbacks"]["outgoing"]] == [("smtp.example.net", 587)]
    everything = result.text + "\n".join(_warnings(result))
    assert "ldap-bind-secret" not in everything and "cn=automx2" not in everything
    assert f"{db}:1:1 (ldapserver id=1): automx2 looks up names and user names in LDAP (ldap.example.net:636, base " \
           "ou=people,dc=example,dc=net): not carried; its bind password is never copied — export the mailboxes " \
           "from LDAP into accounts_csv (name,email[,username])" in _warnings(result)
    assert any("caldav server https://dav.example.net/caldav/ is not carried" in w for w in _warnings(result))


def test_automx2_plain_text_smtp_without_auth(tmp_path: Path) -> None:
    spec = _spec(import_sources([_automx2_db(tmp_path)], provider="other.test"), tmp_path)
    assert spec["incoming"] == {"host": "mail.other.test", "port": 143, "security": "starttls",
                                "username": "%EMAILLOCALPART%", "protocol": "imap"}
    assert spec["outgoing"] == {"host": "mail.other.test", "port": 25, "security": "none",
                                "authentication": "none"}


def test_thunderbird_prefs_js_accounts_as_thunderbird_has_them(tmp_path: Path) -> None:
    prefs = FIXTURES / "thunderbird" / "prefs.js"
    work = _spec(import_sources([prefs], provider="esempio.it"), tmp_path, "a.yaml")
    assert work["provider"] == {"id": "esempio.it", "display_name": "Esempio", "organization": "Esempio S.r.l.",
                                "domains": ["esempio.it"]}
    assert work["accounts"] == [{"name": "Anna Rossi", "email": "anna.rossi@esempio.it", "description": "Lavoro"}]
    home = import_sources([prefs], provider="posta.example")
    spec = _spec(home, tmp_path, "b.yaml")
    assert spec["incoming"] == {"host": "pop.posta.example", "port": 110, "security": "starttls",
                                "username": "%EMAILLOCALPART%", "protocol": "pop3", "keep_on_server": True,
                                "keep_days": 7}
    assert "  # no mail.server.server3.port: Thunderbird's default for pop3 with starttls, 110\n  port: 110\n" \
           in home.text


def test_sources_of_one_provider_merge_and_stated_values_beat_guesses(tmp_path: Path) -> None:
    # The school example's Apple profile guesses STARTTLS for 587; its autoconfig XML states it.
    profile = GOLDEN / "school" / "bob@school.example" / "apple" / "bob@school.example.mobileconfig"
    xml = GOLDEN / "school" / "domains" / "school.example" / "config-v1.1.xml"
    result = import_sources([profile, xml])
    spec = _spec(result, tmp_path)
    assert spec["outgoing"]["security"] == "starttls"
    assert not any("guessed" in w for w in _warnings(result))
    assert spec["incoming"]["keep_days"] == 14  # from the XML: the profile cannot carry it
    assert spec["accounts"][0]["email"] == "bob@school.example"  # from the profile: the XML has no mailboxes


def test_names_are_compared_as_the_model_holds_them(tmp_path: Path) -> None:
    # One source writes the domain in Unicode and upper case (twice), the other in A-labels: one domain, one
    # mailbox, one server, no conflict. This was "domains lists the same domain twice" without a position.
    xml = (GOLDEN / "provider-imap" / "domains" / "esempio.it" / "config-v1.1.xml").read_text(encoding="utf-8")
    xml = xml.replace("<domain>esempio.it</domain>", "<domain>BÜCHER.example</domain><domain>bücher.example</domain>")
    xml = xml.replace("imaps.aruba.it", "IMAPS.Aruba.IT")
    (tmp_path / "config-v1.1.xml").write_text(xml, encoding="utf-8")
    profile = GOLDEN / "provider-imap" / "giulia.bianchi@esempio.it" / "apple" / \
        "giulia.bianchi@esempio.it.mobileconfig"
    (tmp_path / "a.mobileconfig").write_bytes(profile.read_bytes().replace(b"esempio.it", b"xn--bcher-kva.example"))
    (tmp_path / "b.mobileconfig").write_bytes(profile.read_bytes().replace(b"giulia.bianchi@esempio.it",
                                                                            "Giulia.Bianchi@BÜCHER.example".encode()))
    result = import_sources([tmp_path / "config-v1.1.xml", tmp_path / "a.mobileconfig", tmp_path / "b.mobileconfig"])
    spec = _spec(result, tmp_path)
    assert spec["provider"]["domains"] == ["xn--bcher-kva.example"]
    assert spec["incoming"]["host"] == "imaps.aruba.it"
    assert [a["email"] for a in spec["accounts"]] == ["giulia.bianchi@xn--bcher-kva.example"]
    assert not any("conflict" in w for w in _warnings(result)), _warnings(result)


def test_conflicting_sources_are_reported_not_silently_resolved(tmp_path: Path) -> None:
    xml = GOLDEN / "provider-imap" / "domains" / "esempio.it" / "config-v1.1.xml"
    original = GOLDEN / "provider-imap" / "giulia.bianchi@esempio.it" / "apple" / \
        "giulia.bianchi@esempio.it.mobileconfig"
    changed = tmp_path / "old.mobileconfig"
    changed.write_bytes(original.read_bytes().replace(b"<integer>993</integer>", b"<integer>1993</integer>"))
    result = import_sources([xml, changed])
    spec = _spec(result, tmp_path)
    assert spec["incoming"]["port"] == 993
    line = next(i for i, text in enumerate(changed.read_text().splitlines(), 1) if "1993" in text)
    message = (f"conflict: incoming.port is 993 in {xml}:9:7 but 1993 in {changed}:{line}:4; kept the first "
               "(sources count in the order given) — check which is right and edit the spec")
    assert f"{changed}:{line}:4: {message}" in _warnings(result)
    assert "  # conflict: incoming.port is 993 in" in result.text


def test_cli_import_writes_a_spec_that_check_accepts(tmp_path: Path) -> None:
    out = tmp_path / "spec.yaml"
    result = CliRunner().invoke(main, ["import", str(ISPDB / "web.de.xml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == f"imported provider web.de with 1 account to {out}; 5 warnings"
    assert CliRunner().invoke(main, ["check", str(out)]).exit_code == 0
    assert yaml.safe_load(out.read_text(encoding="utf-8"))["provider"]["id"] == "web.de"


def test_oauth2_only_servers_leave_apple_out_of_the_targets(tmp_path: Path) -> None:
    source = tmp_path / "oauth.xml"
    source.write_text("""<clientConfig version="1.1"><emailProvider id="o.example"><domain>o.example</domain>
<displayName>O Mail</displayName>
<incomingServer type="imap"><hostname>imap.o.example</hostname><port>993</port><socketType>SSL</socketType>
<username>%EMAILADDRESS%</username><authentication>OAuth2</authentication></incomingServer>
<outgoingServer type="smtp"><hostname>smtp.o.example</hostname><port>465</port><socketType>SSL</socketType>
<username>%EMAILADDRESS%</username><authentication>OAuth2</authentication></outgoingServer>
</emailProvider></clientConfig>""", encoding="utf-8")
    result = import_sources([source])
    spec = _spec(result, tmp_path)
    assert spec["incoming"]["authentication"] == spec["outgoing"]["authentication"] == "oauth2"
    assert spec["targets"] == {"build": ["thunderbird", "outlook"]}
    assert "  # apple is left out of targets.build: Apple profiles cannot carry incoming authentication 'oauth2'; " \
           "Apple profiles\n  # cannot carry outgoing authentication 'oauth2'\n  build: [thunderbird, outlook]\n" \
           in result.text


def test_accounts_with_another_user_name_pattern_keep_their_own(tmp_path: Path) -> None:
    school = GOLDEN / "school"
    anna = school / "anna.verdi@school.example" / "apple" / "anna.verdi@school.example.mobileconfig"
    luca = tmp_path / "luca.mobileconfig"
    original = school / "luca.damico@school.example" / "apple" / "luca.damico@school.example.mobileconfig"
    luca.write_bytes(original.read_bytes().replace(b"<string>luca.damico@school.example</string>\n\t\t\t<key>Outgo",
                                                   b"<string>luca.damico</string>\n\t\t\t<key>Outgo"))
    assert b"<string>luca.damico</string>" in luca.read_bytes()
    result = import_sources([anna, luca])
    spec = _spec(result, tmp_path)
    assert spec.get("incoming", {}).get("username", "%EMAILADDRESS%") == "%EMAILADDRESS%"
    assert {a["email"]: a.get("username") for a in spec["accounts"]} == {
        "anna.verdi@school.example": None, "luca.damico@school.example": "luca.damico"}
    assert "conflict" not in result.text
    assert "  - name: D'Amico, Luca\n    email: luca.damico@school.example\n    username: luca.damico\n" in result.text


def test_outlook_prf_from_the_office_customization_tool(tmp_path: Path) -> None:
    source = FIXTURES / "outlook" / "oct-imap.prf"
    assert not source.read_bytes().startswith(b"\xff\xfe")  # ANSI, as the OCT writes it
    result = import_sources([source])
    spec = _spec(result, tmp_path)
    assert spec["incoming"] == {"host": "imap.firma.example", "port": 143, "security": "starttls",
                                "username": "%EMAILLOCALPART%", "protocol": "imap"}
    assert spec["outgoing"] == {"host": "smtp.firma.example", "port": 587, "security": "starttls"}
    assert spec["accounts"] == [{"name": "Lukas Weber", "email": "lukas.weber@firma.example",
                                 "description": "Firma Mail"}]
    assert spec["targets"] == {"outlook": {"profile_name": "Firma"}}
    assert f"{source}:1:1 ([Account1]): IMAPUseSSL=0 means plain text or STARTTLS (a PRF cannot say which; Outlook " \
           "itself then logs in without encryption): guessed starttls — check the mode with your provider; use " \
           "security: none only for a plain-text server" in _warnings(result)


def _autoconfig(servers: list[tuple[str, str, int, str]]) -> str:
    """A config-v1.1.xml with these incoming servers (type, host, port, socketType) and one SMTP server."""
    incoming = "".join(f'<incomingServer type="{kind}"><hostname>{host}</hostname><port>{port}</port><socketType>'
                       f"{socket}</socketType><username>%EMAILADDRESS%</username><authentication>"
                       "password-cleartext</authentication></incomingServer>\n" for kind, host, port, socket in servers)
    return (f'<clientConfig version="1.1"><emailProvider id="p.example"><domain>p.example</domain>\n'
            f"<displayName>P</displayName>\n{incoming}<outgoingServer type=\"smtp\"><hostname>smtp.p.example"
            "</hostname><port>465</port><socketType>SSL</socketType><username>%EMAILADDRESS%</username>"
            "<authentication>password-cleartext</authentication></outgoingServer></emailProvider></clientConfig>")


@pytest.mark.parametrize(("servers", "alternative", "fallbacks"), [
    # POP3 then IMAP: where our build writes imap_alternative.
    ([("pop3", "pop.p.example", 995, "SSL"), ("imap", "imap.p.example", 993, "SSL")], "imap.p.example", []),
    # An IMAP server further down stays a fallback: moving it up would change the order clients try.
    ([("pop3", "pop.p.example", 995, "SSL"), ("pop3", "pop.p.example", 110, "STARTTLS"),
      ("imap", "imap.p.example", 993, "SSL")], None, [("pop.p.example", 110), ("imap.p.example", 993)]),
    # An IMAP primary has no alternative: a second IMAP server is a fallback.
    ([("imap", "imap.p.example", 993, "SSL"), ("imap", "imap.p.example", 143, "STARTTLS")], None,
     [("imap.p.example", 143)]),
])
def test_imap_right_after_a_pop3_primary_is_the_imap_alternative(
        tmp_path: Path, servers: list[tuple[str, str, int, str]], alternative: str | None,
        fallbacks: list[tuple[str, int]]) -> None:
    source = tmp_path / "config-v1.1.xml"
    source.write_text(_autoconfig(servers), encoding="utf-8")
    spec = _spec(import_sources([source]), tmp_path)
    assert spec.get("imap_alternative", {}).get("host") == alternative
    assert [(s["host"], s["port"]) for s in spec.get("fallbacks", {}).get("incoming", [])] == fallbacks
    assert "targets" not in spec  # no plain-text fallback: nothing to switch on


def test_two_imap_alternatives_are_one_conflict_about_the_whole_server(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text(_autoconfig([("pop3", "pop.p.example", 995, "SSL"),
                                                 ("imap", "imap.p.example", 993, "SSL")]), encoding="utf-8")
    (tmp_path / "b.xml").write_text(_autoconfig([("pop3", "pop.p.example", 995, "SSL"),
                                                 ("imap", "imap2.p.example", 143, "STARTTLS")]), encoding="utf-8")
    result = import_sources([tmp_path / "a.xml", tmp_path / "b.xml"])
    spec = _spec(result, tmp_path)
    assert (spec["imap_alternative"]["host"], spec["imap_alternative"]["port"]) == ("imap.p.example", 993)
    assert spec["imap_alternative"]["security"] == "ssl"  # not a mix of the two servers
    conflicts = [w for w in _warnings(result) if "conflict" in w]
    assert conflicts == [f"{tmp_path / 'b.xml'}:4:1: conflict: imap_alternative is imap.p.example:993 in "
                         f"{tmp_path / 'a.xml'}:4:1 but imap2.p.example:143 in {tmp_path / 'b.xml'}:4:1; kept the "
                         "first (sources count in the order given) — check which is right and edit the spec"]


def test_plain_text_fallbacks_in_the_xml_switch_on_autoconfig_plain_fallbacks(tmp_path: Path) -> None:
    source = tmp_path / "config-v1.1.xml"
    source.write_text(_autoconfig([("imap", "imap.p.example", 993, "SSL"), ("imap", "imap.p.example", 143,
                                                                            "plain")]), encoding="utf-8")
    result = import_sources([source])
    spec = _spec(result, tmp_path)
    assert spec["fallbacks"]["incoming"][0]["security"] == "none"
    assert spec["targets"] == {"thunderbird": {"autoconfig_plain_fallbacks": True}}
    comment = result.text.split("\n    autoconfig_plain_fallbacks: true")[0].split("  thunderbird:\n")[-1]
    assert " ".join(line.strip(" #") for line in comment.splitlines()) == (
        "the source lists 1 plain-text fallback server(s): kept in config-v1.1.xml as the source has them — remove "
        "this line to leave them out: Thunderbird for Android and K-9 Mail reject a config-v1.1.xml that lists a "
        "plain-text server")


def test_a_target_that_refuses_the_values_is_left_out_with_the_reason(tmp_path: Path) -> None:
    source = tmp_path / "none.xml"
    source.write_text("""<clientConfig version="1.1"><emailProvider id="n.example"><domain>n.example</domain>
<displayName>N</displayName>
<incomingServer type="imap"><hostname>imap.n.example</hostname><port>993</port><socketType>SSL</socketType>
<username>%EMAILADDRESS%</username><authentication>none</authentication></incomingServer>
<outgoingServer type="smtp"><hostname>smtp.n.example</hostname><port>465</port><socketType>SSL</socketType>
<username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication></outgoingServer>
</emailProvider></clientConfig>""", encoding="utf-8")
    result = import_sources([source])
    assert _spec(result, tmp_path)["targets"] == {"build": ["apple", "outlook"]}
    assert "thunderbird is left out of targets.build: Thunderbird's autoconfig rejects the whole config-v1.1.xml " \
           "when an incoming server has authentication: none" in _warnings(result)


def test_cli_spec_on_stdout_everything_else_on_stderr(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["import", str(ISPDB / "arubapec.it.xml"), "--schema",
                                       "https://example.org/mailprofile.schema.json"])
    assert result.exit_code == 0
    assert result.stdout.startswith("# yaml-language-server: $schema=https://example.org/mailprofile.schema.json\n")
    assert yaml.safe_load(result.stdout)["provider"]["id"] == "arubapec.it"  # nothing but YAML on stdout
    assert result.stderr.splitlines() == [
        f"read {ISPDB / 'arubapec.it.xml'}: Mozilla autoconfig XML",
        "warning: the sources list no mailboxes: this example account only lets `check` pass — replace it with your "
        "accounts, or with accounts_csv: FILE",
        "imported provider arubapec.it with 1 account to standard output; 1 warning"]


def test_cli_unknown_provider_lists_the_choices(tmp_path: Path) -> None:
    prefs = FIXTURES / "thunderbird" / "prefs.js"
    result = CliRunner().invoke(main, ["import", str(prefs), "--provider", "nope.example"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: no source describes the provider 'nope.example' — choose one of: esempio.it (esempio.it, from "
        f"{prefs}); posta.example (posta.example, from {prefs})", "1 error: nothing was written"]


def test_python_dash_m_has_the_import_command() -> None:
    out = subprocess.run([sys.executable, "-m", "generator", "import", "--help"], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert "--verify-signature" in out.stdout and "--provider" in out.stdout


def test_autodiscover_without_an_address_needs_another_source(tmp_path: Path) -> None:
    zoe = GOLDEN / "school" / "zoe.unal@staff.school.example" / "outlook"
    with pytest.raises(SpecError) as caught:
        import_sources([zoe / "autodiscover.xml"])
    assert [str(p) for p in caught.value.problems] == [
        f"{zoe / 'autodiscover.xml'}:1:1: no source names a mail domain (this one holds servers but no address) — "
        "import it together with a source that has the mailboxes or the provider: a profile, PRF, prefs or the "
        "autoconfig XML"]
    spec = _spec(import_sources([zoe / "autodiscover.xml", zoe / "zoe.unal@staff.school.example.prf"]), tmp_path)
    assert spec["accounts"] == [{"name": "Zoë Ünal", "email": "zoe.unal@staff.school.example", "username": "zunal"}]
    assert spec["outgoing"]["security"] == "starttls"  # stated by both


def test_cli_output_never_replaces_a_source_or_an_existing_file(tmp_path: Path) -> None:
    source = tmp_path / "web.de.xml"
    source.write_bytes((ISPDB / "web.de.xml").read_bytes())
    before = source.read_bytes()
    result = CliRunner().invoke(main, ["import", str(source), "-o", str(source), "--force"])
    assert result.exit_code == 2 and f"error: --output {source} is one of the sources" in result.output
    assert source.read_bytes() == before
    spec = tmp_path / "spec.yaml"
    spec.write_text("# my hand-edited spec\n")
    result = CliRunner().invoke(main, ["import", str(source), "-o", str(spec)])
    assert result.exit_code == 2 and f"error: --output {spec} exists; pass --force to replace it" in result.output
    assert spec.read_text() == "# my hand-edited spec\n"
    result = CliRunner().invoke(main, ["import", str(source), "-o", str(spec), "--force"])
    assert result.exit_code == 0 and "web.de" in spec.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml", "web.de.xml"]
