"""Thunderbird target: mappings, escaping, the strict prefs reader, and verification catching bad templates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.accounts import Mailbox, load_accounts
from generator.build import prepare
from generator.errors import SpecError, VerificationError
from generator.prefs import PrefsSyntaxError, as_dict, prefs_string, prefs_value, read_cfg, read_prefs
from generator.render import packaged_templates
from generator.spec import load_spec
from generator.targets.base import RenderContext
from generator.targets.thunderbird import ThunderbirdTarget, parse_autoconfig
from tests.conftest import EXAMPLES

SPEC_TEXT = """\
provider:
  id: example.org
  display_name: Example Mail
  domains: [example.org]
incoming:
  protocol: {protocol}
  host: mail.example.org
  port: {port}
  security: {security}
  authentication: {auth}
  allow_insecure: true
outgoing:
  host: smtp.example.org
  port: 587
  security: {security}
  authentication: {out_auth}
  allow_insecure: true
accounts:
  - name: {name}
    email: user@example.org
"""


def write_spec(tmp_path: Path, **values: Any) -> Path:
    fields = {"protocol": "imap", "port": 993, "security": "ssl", "auth": "password", "out_auth": "password",
              "name": "Test User", **values}
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC_TEXT.format(**fields), encoding="utf-8")
    return path


def render(path: Path, templates: Path | None = None) -> tuple[ThunderbirdTarget, Mailbox, dict[str, bytes]]:
    loaded = load_spec(path)
    target = ThunderbirdTarget(RenderContext(loaded, templates=templates))
    mailbox = load_accounts(loaded)[0]
    return target, mailbox, {f.kind: f.data for f in target.render_account(mailbox)}


def user_prefs(files: dict[str, bytes]) -> dict[str, Any]:
    return as_dict(read_prefs(files["user.js"], ("user_pref",)))


# ---- mappings ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("security", "number", "xml"), [("ssl", 3, "SSL"), ("starttls", 2, "STARTTLS"),
                                                         ("none", 0, "plain")])
def test_security_enums(tmp_path: Path, security: str, number: int, xml: str) -> None:
    target, _, files = render(write_spec(tmp_path, security=security))
    prefs = user_prefs(files)
    assert prefs["mail.server.server1.socketType"] == number
    assert prefs["mail.smtpserver.smtp1.try_ssl"] == number
    doc = parse_autoconfig(target.render_shared()[0].data)
    assert doc["incoming"][0]["socketType"] == xml and doc["outgoing"][0]["socketType"] == xml


@pytest.mark.parametrize(("auth", "number", "xml"), [("password", 3, "password-cleartext"),
                                                     ("encrypted-password", 4, "password-encrypted"),
                                                     ("gssapi", 5, "GSSAPI"), ("ntlm", 6, "NTLM"),
                                                     ("oauth2", 10, "OAuth2")])
def test_auth_enums(tmp_path: Path, auth: str, number: int, xml: str) -> None:
    target, _, files = render(write_spec(tmp_path, auth=auth, out_auth=auth))
    prefs = user_prefs(files)
    assert prefs["mail.server.server1.authMethod"] == number
    assert prefs["mail.smtpserver.smtp1.authMethod"] == number
    doc = parse_autoconfig(target.render_shared()[0].data)
    assert doc["incoming"][0]["authentication"] == xml


def test_outgoing_auth_none_is_1_and_xml_none(tmp_path: Path) -> None:
    target, _, files = render(write_spec(tmp_path, out_auth="none"))
    assert user_prefs(files)["mail.smtpserver.smtp1.authMethod"] == 1
    assert parse_autoconfig(target.render_shared()[0].data)["outgoing"][0]["authentication"] == "none"


def test_incoming_auth_none_is_a_lint_error(tmp_path: Path) -> None:
    target, _, _ = render(write_spec(tmp_path, auth="none"))
    errors = [p for p in target.lint() if p.severity == "error"]
    assert len(errors) == 1 and "rejects the whole config-v1.1.xml" in errors[0].message
    assert errors[0].position is not None and errors[0].position.line == 10


def test_incoming_auth_none_is_refused_only_where_the_xml_lists_it(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, auth="none")
    # The prefs carry it (authMethod 1): a build of them alone is not refused for the XML's sake.
    plan = prepare(load_spec(spec), kinds=["user.js", "mozilla.cfg"])
    assert [p for p in plan.warnings if "config-v1.1.xml" in p.message] == []
    files = {f.kind: f.data for f in plan.targets[0].render_account(load_accounts(plan.loaded)[0])}
    assert user_prefs(files)["mail.server.server1.authMethod"] == 1
    assert as_dict(read_cfg(files["mozilla.cfg"].decode("utf-8")))["mail.server.server1.authMethod"] == 1
    with pytest.raises(SpecError, match=r"rejects the whole config-v1\.1\.xml"):
        prepare(load_spec(spec), kinds=["autoconfig-xml"])


@pytest.mark.parametrize("listed", [False, True])
def test_plain_fallback_without_auth_is_refused_only_when_listed(tmp_path: Path, listed: bool) -> None:
    # A legacy plain-text fallback is left out of config-v1.1.xml unless autoconfig_plain_fallbacks asks.
    text = write_spec(tmp_path).read_text(encoding="utf-8") + (
        "fallbacks:\n  incoming:\n    - {protocol: pop3, host: pop3.example.org, port: 110, security: none,"
        " authentication: none}\n"
        f"targets: {{thunderbird: {{autoconfig_plain_fallbacks: {str(listed).lower()}}}}}\n")
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    loaded = load_spec(tmp_path / "spec.yaml")
    if listed:
        with pytest.raises(SpecError) as err:
            prepare(loaded, only=["thunderbird"])
        assert [(p.position and p.position.line, p.message) for p in err.value.problems] == [
            (23, "Thunderbird's autoconfig rejects the whole config-v1.1.xml when an incoming server has "
                 "authentication: none")]
        return
    target = prepare(loaded, only=["thunderbird"]).targets[0]
    doc = parse_autoconfig(target.render_shared()[0].data)
    assert [s["hostname"] for s in doc["incoming"]] == ["mail.example.org"]


def test_oauth2_is_warned(tmp_path: Path) -> None:
    target, _, _ = render(write_spec(tmp_path, auth="oauth2"))
    assert any("OAuth2" in p.message and p.severity == "warning" for p in target.lint())


def test_policies_cannot_carry_int_0_or_1_and_say_so(tmp_path: Path) -> None:
    target, _, files = render(write_spec(tmp_path, security="none", out_auth="none"))
    prefs = json.loads(files["policies.json"])["policies"]["Preferences"]
    for name in ("mail.server.server1.socketType", "mail.smtpserver.smtp1.try_ssl",
                 "mail.smtpserver.smtp1.authMethod"):
        assert name not in prefs
        assert any(name in p.message and p.severity == "warning" for p in target.lint())
    assert user_prefs(files)["mail.server.server1.socketType"] == 0  # user.js and .cfg still carry it


def test_pop3_guide_case() -> None:
    target, mailbox, files = render(EXAMPLES / "provider-pop3.yaml")
    prefs = user_prefs(files)
    assert prefs["mail.server.server1.type"] == "pop3"
    assert prefs["mail.server.server1.port"] == 995
    assert prefs["mail.server.server1.leave_on_server"] is False
    assert prefs["mail.server.server1.delete_by_age_from_server"] is False
    assert prefs["mail.server.server1.userName"] == mailbox.email
    assert prefs["mail.smtpserver.smtp1.port"] == 465 and prefs["mail.smtpserver.smtp1.type"] == "smtp"
    assert prefs["security.tls.version.min"] == 3
    assert prefs["mail.server.server2.type"] == "none"
    assert prefs["mail.accountmanager.localfoldersserver"] == "server2"
    for forbidden in ("password", "directory", "lastkey"):
        assert not [name for name in prefs if forbidden in name.lower()]
    warnings = target.lint()
    assert [p.severity for p in warnings] == ["warning"] and "fallback" in warnings[0].message
    doc = parse_autoconfig(target.render_shared()[0].data)
    # POP3 first, then the IMAP alternative; the plain-text fallbacks only on request (test_thunderbird_android)
    assert [(s["type"], s["port"]) for s in doc["incoming"]] == [("pop3", 995), ("imap", 993)]
    assert [s["port"] for s in doc["outgoing"]] == [465]
    assert doc["incoming"][1]["hostname"] == "imaps.aruba.it"
    assert doc["incoming"][0]["username"] == "%EMAILADDRESS%"
    assert doc["documentation"]["url"].startswith("https://guide.hosting.aruba.it/")


def test_school_keep_days_tls13_and_locking() -> None:
    loaded = load_spec(EXAMPLES / "school.yaml")
    target = ThunderbirdTarget(RenderContext(loaded))
    mailboxes = load_accounts(loaded)
    files = {f.kind: f.data for f in target.render_account(mailboxes[0])}
    prefs = user_prefs(files)
    assert prefs["mail.server.server1.leave_on_server"] is True
    assert prefs["mail.server.server1.num_days_to_leave_on_server"] == 14
    assert prefs["security.tls.version.min"] == 4
    calls = {c.name: c.function for c in read_cfg(files["mozilla.cfg"])}
    assert calls["security.tls.version.min"] == "lockPref"
    assert calls["mail.server.server1.hostname"] == "defaultPref"
    policies = json.loads(files["policies.json"])["policies"]
    assert policies["SSLVersionMin"] == "tls1.3"
    assert policies["Preferences"]["mail.server.server1.port"] == {"Value": 995, "Status": "default"}
    assert [f.path for f in target.render_shared()] == ["domains/school.example/config-v1.1.xml",
                                                       "domains/staff.school.example/config-v1.1.xml"]
    pop3 = parse_autoconfig(target.render_shared()[0].data)["incoming"][0]["pop3"]
    assert pop3 == {"leaveMessagesOnServer": "true", "daysToLeaveMessagesOnServer": "14"}


def test_output_is_deterministic_utf8_lf() -> None:
    loaded = load_spec(EXAMPLES / "school.yaml")
    first = [ThunderbirdTarget(RenderContext(loaded)).render_account(m) for m in load_accounts(loaded)]
    second = [ThunderbirdTarget(RenderContext(loaded)).render_account(m) for m in load_accounts(loaded)]
    assert first == second
    for files in first:
        for f in files:
            assert b"\r" not in f.data
            f.data.decode("utf-8")
            assert f.path.startswith(f.account + "/thunderbird/")  # type: ignore[operator]


# ---- escaping and the strict reader --------------------------------------------------------------------

def test_prefs_string_escapes_backslash_first() -> None:
    assert prefs_string('a\\"b') == '"a\\\\\\"b"'
    assert prefs_string("é😀\n") == '"é😀\\n"'
    with pytest.raises(ValueError, match="NUL"):
        prefs_string("a\x00b")


@pytest.mark.parametrize("escape", ["\\t", "\\/", "\\b", "\\f", "\\u0000", "\\x00", "\\xe9", "\\q", "\\ud800"])
def test_reader_rejects_what_thunderbird_drops(escape: str) -> None:
    with pytest.raises(PrefsSyntaxError):
        read_prefs(f'user_pref("a", "x{escape}y");\n')


@pytest.mark.parametrize("text", ['user_pref("a", 1)\n', 'user_pref("a" 1);', 'lockPref("a", 1);',
                                  'user_pref("a", 1.5);', 'user_pref("a", yes);', 'user_pref("a", "x);',
                                  'user_pref("a", 1, locked);', 'user_pref("a", 99999999999);', "/* open"])
def test_reader_rejects_bad_syntax(text: str) -> None:
    with pytest.raises(PrefsSyntaxError):
        read_prefs(text)


def test_reader_accepts_the_grammar() -> None:
    text = ('# hash comment\n/* block\n comment */ pref("a", -3, locked); // tail\n'
            "user_pref('b', 'it\\'s \\x41\\u00e9\\ud83d\\ude00');\nsticky_pref(\"c\", true);\n")
    assert as_dict(read_prefs(text)) == {"a": -3, "b": "it's Aé😀", "c": True}


def test_cfg_reader() -> None:
    text = '// skipped ( anything\ndefaultPref("a", "\\u00e9\\t");\nlockPref("b", 4);\n\n// note\n'
    calls = read_cfg(text)
    assert [(c.function, c.name, c.value) for c in calls] == [("defaultPref", "a", "é\t"), ("lockPref", "b", 4)]
    with pytest.raises(PrefsSyntaxError):
        read_cfg('// first\nalert("x");\n')


names = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\ufffe\uffff"),
                min_size=1, max_size=30).filter(lambda s: s.strip() == s and s != "")
special = st.sampled_from(['"', "\\", "&", "<", ">", "'", "é", "😀", "\u05e9\u05dc\u05d5\u05dd", "%", "{{", "\\n"])


@settings(max_examples=60, deadline=None)
@given(name=st.lists(st.one_of(names, special), min_size=1, max_size=5).map("".join))
def test_any_display_name_round_trips(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    tmp = tmp_path_factory.mktemp("hyp")
    # A JSON string is a valid YAML double-quoted scalar.
    path = write_spec(tmp, name=json.dumps(name, ensure_ascii=False))
    _, mailbox, files = render(path)
    assert mailbox.name == name
    assert user_prefs(files)["mail.identity.id1.fullName"] == name
    assert as_dict(read_cfg(files["mozilla.cfg"]))["mail.identity.id1.fullName"] == name
    assert json.loads(files["policies.json"])["policies"]["Preferences"]["mail.identity.id1.fullName"][
        "Value"] == name


@settings(max_examples=40, deadline=None)
@given(value=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_prefs_string_round_trips(value: str) -> None:
    assert as_dict(read_prefs(f'user_pref("k", {prefs_value(value)});'))["k"] == value


# ---- verification catches a bad template ---------------------------------------------------------------

def _override(tmp_path: Path, name: str, old: str, new: str) -> Path:
    templates = tmp_path / "templates"
    (templates / "thunderbird").mkdir(parents=True)
    source = (packaged_templates() / "thunderbird" / name).read_text()
    assert old in source
    (templates / "thunderbird" / name).write_text(source.replace(old, new))
    return templates


def test_wrong_port_in_user_js_template_is_caught(tmp_path: Path) -> None:
    templates = _override(tmp_path, "user.js.j2", "{% endfor %}\n{% endfor %}\n",
                          '{% endfor %}\n{% endfor %}\nuser_pref("mail.server.server1.port", 110);\n')
    # The second setting of the port is what stops it (the last call wins in Thunderbird, and was proven).
    with pytest.raises(VerificationError, match=r"'mail\.server\.server1\.port' is set a second time \(first at "):
        render(write_spec(tmp_path), templates)


def test_escape_thunderbird_drops_is_caught(tmp_path: Path) -> None:
    # json.dumps-style "\/" (or \t, \b, \f) makes Thunderbird drop the pref silently: verification refuses it.
    templates = _override(tmp_path, "user.js.j2", "{% endfor %}\n{% endfor %}\n",
                          '{% endfor %}\n{% endfor %}\nuser_pref("mail.identity.id1.fullName", "A\\/B");\n')
    with pytest.raises(VerificationError, match="not an escape Thunderbird"):
        render(write_spec(tmp_path), templates)


def test_wrong_port_in_autoconfig_template_is_caught(tmp_path: Path) -> None:
    templates = _override(tmp_path, "config-v1.1.xml.j2", "<port>{{ server.port }}</port>",
                          "<port>{{ server.port + 1 }}</port>")
    target, _, _ = render(write_spec(tmp_path), templates)
    with pytest.raises(VerificationError, match="port: expected 993, found 994"):
        target.render_shared()


def test_missing_template_lock_is_caught(tmp_path: Path) -> None:
    templates = _override(tmp_path, "mozilla.cfg.j2", "{{ call.function }}(", "defaultPref(")
    with pytest.raises(VerificationError, match=r"security\.tls\.version\.min: expected 'lockPref'"):
        render(write_spec(tmp_path), templates)


def test_templates_are_in_place() -> None:
    folder = packaged_templates() / "thunderbird"
    assert sorted(p.name for p in folder.iterdir()) == ["autoconfig.js.j2", "config-v1.1.xml.j2",
                                                        "mozilla.cfg.j2", "policies.json.j2", "user.js.j2"]


def test_autoconfig_cannot_carry_tls_min_above_thunderbirds_default(tmp_path: Path) -> None:
    """config-v1.1.xml has no TLS minimum: tls_min 1.3 holds only where the prefs files are deployed, and a
    build of autoconfig files alone (--kinds autoconfig-xml, as serve answers) makes none."""
    spec = tmp_path / "spec.yaml"
    spec.write_text((EXAMPLES / "provider-imap.yaml").read_text(encoding="utf-8") + 'tls_min: "1.3"\n',
                    encoding="utf-8")
    lines = (EXAMPLES / "provider-imap.yaml").read_text(encoding="utf-8").count("\n") + 1
    xml_only = ThunderbirdTarget(RenderContext(load_spec(spec), kinds=frozenset({"autoconfig-xml"})))
    assert [(p.severity, p.position and p.position.line, p.message) for p in xml_only.lint()
            if "TLS" in p.message] == [
        ("warning", lines, "config-v1.1.xml cannot require TLS 1.3: a Thunderbird set up from it (autoconfig, "
         "serve) keeps its own minimum, TLS 1.2 by default; only user.js, mozilla.cfg and policies.json carry "
         "tls_min")]
    with_prefs = ThunderbirdTarget(RenderContext(load_spec(spec), kinds=frozenset({"autoconfig-xml", "user.js"})))
    assert [p for p in with_prefs.lint() if "TLS" in p.message] == []  # docs/thunderbird.md: the prefs carry it
    spec.write_text((EXAMPLES / "provider-imap.yaml").read_text(encoding="utf-8") + 'tls_min: "1.2"\n',
                    encoding="utf-8")
    assert [p for p in ThunderbirdTarget(RenderContext(load_spec(spec))).lint() if "TLS" in p.message] == []
