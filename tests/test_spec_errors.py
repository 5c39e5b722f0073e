"""A table of bad specs and the exact error lines `mailprofile check` prints for them (exit status 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main

BASE = """\
provider:
  id: aruba.it
  display_name: Aruba Mail
  domains: [esempio.it]
incoming:
  protocol: pop3
  host: pop3s.aruba.it
  port: 995
  security: ssl
outgoing:
  host: smtps.aruba.it
  port: 465
  security: ssl
accounts:
  - name: Mario Rossi
    email: mario.rossi@esempio.it
targets:
  build: [apple]
"""


def check(tmp_path: Path, text: str, csv: str | None = None) -> tuple[int, list[str]]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    if csv is not None:
        (tmp_path / "users.csv").write_text(csv, encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "spec.yaml"], catch_exceptions=False)
    return result.exit_code, result.output.splitlines()


CASES = [
    # Hosts as admins paste them: idna's "Codepoint U+003A not allowed" said nothing useful.
    ("IPv6 host without brackets", ("host: pop3s.aruba.it", 'host: "2001:db8::25"'),
     ["error: spec.yaml:7:9: incoming.host: '2001:db8::25' is an IPv6 address: write it in brackets, "
      "[2001:db8::25]"]),
    ("host with a port", ("host: pop3s.aruba.it", 'host: "pop3s.aruba.it:995"'),
     ["error: spec.yaml:7:9: incoming.host: 'pop3s.aruba.it:995' carries a port; give the host alone "
      "(pop3s.aruba.it) and the port in port: 995"]),
    ("host as a URL", ("host: pop3s.aruba.it", 'host: "pop3s://pop3s.aruba.it"'),
     ["error: spec.yaml:7:9: incoming.host: 'pop3s://pop3s.aruba.it' is a URL; give the host name alone (such as "
      "mail.example.com)"]),
    ("decomposed accent in an address", ("email: mario.rossi@", "email: jose\u0301@"),
     ["error: spec.yaml:16:12: 'jose\u0301@esempio.it' has an invalid part before the @: it spells an accented "
      "letter as a letter plus a combining accent; type the address again, or save the list with composed "
      "characters (Unicode NFC) — correct the address"]),
    ("port as a string", ("  port: 995\n", '  port: "995"\n'),
     ["error: spec.yaml:8:9: incoming.port must be an integer, got the string '995' — write the number without "
      "quotes"]),
    ("YAML 1.1 octal", ("  port: 465\n", "  port: 0465\n"),
     ["error: spec.yaml:12:9: '0465' is read as the number 309 by YAML 1.1 — write the number in plain decimal "
      "(e.g. 465), or quote it (\"0465\") if it is text"]),
    ("YAML 1.1 boolean", ("  security: ssl\nout", "  security: on\nout"),
     ["error: spec.yaml:9:13: 'on' is a boolean in YAML 1.1 but a string in YAML 1.2 — write true or false for a "
      "yes/no value, or quote it (\"on\") for text"]),
    ("duplicate key", ("  port: 995\n", "  port: 995\n  port: 110\n"),
     ["error: spec.yaml:9:3: duplicate key 'port' (first at line 8) — remove one of them: YAML would silently "
      "keep only the last"]),
    ("unknown key with a hint", ("  security: ssl\nout", "  security: ssl\n  hots: x\nout"),
     ["error: spec.yaml:10:3: unknown key 'hots' in incoming — did you mean 'host'?"]),
    ("bad enum with a hint", ("  security: ssl\nout", "  security: tls\nout"),
     ["error: spec.yaml:9:13: incoming.security: 'tls' is not allowed — did you mean 'starttls'? (use one of: ssl, "
      "starttls, none)"]),
    ("port out of range", ("  port: 465\n", "  port: 70000\n"),
     ["error: spec.yaml:12:9: outgoing.port: input should be less than or equal to 65535, got 70000 — change "
      "the value"]),
    ("missing key", ("  host: smtps.aruba.it\n", ""),
     ["error: spec.yaml:11:3: missing required key 'host' in outgoing — add host: ..."]),
    ("imap option on pop3", ("  security: ssl\nout", "  security: ssl\n  imap_path_prefix: INBOX\nout"),
     ["error: spec.yaml:6:3: incoming: imap_path_prefix applies to imap only; remove it for pop3"]),
    ("password over plain text", ("  port: 995\n  security: ssl\n", "  port: 110\n  security: none\n"),
     ["error: spec.yaml:9:13: incoming: password authentication without encryption sends the password readably "
      "over the network — use ssl or starttls, or set allow_insecure: true on this server if you really mean it"]),
    ("duplicate address", ("targets:", "  - name: Other\n    email: Mario.Rossi@esempio.it\ntargets:"),
     ["error: spec.yaml:18:12: duplicate address 'Mario.Rossi@esempio.it' (first at spec.yaml:15:5) — each "
      "mailbox may appear only once"]),
    ("address outside the domains", ("mario.rossi@esempio.it", "mario@other.example"),
     ["error: spec.yaml:16:12: 'mario@other.example' is not in the provider's domains (esempio.it) — add "
      "other.example to provider.domains or correct the address"]),
    ("invalid address", ("mario.rossi@esempio.it", "mario rossi@esempio.it"),
     ["error: spec.yaml:16:12: 'mario rossi@esempio.it' has an invalid part before the @ — correct the address"]),
    ("python tag", ("  display_name: Aruba Mail\n", "  display_name: !!python/object/apply:os.system [ls]\n"),
     ["error: spec.yaml:3:17: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed in a "
      "spec — remove the tag: a spec holds only plain strings, numbers, booleans, lists and mappings"]),
    ("control character", ("name: Mario Rossi", 'name: "Mario\\u0007Rossi"'),
     ["error: spec.yaml:15:11: accounts[0].name: contains a control character that XML, plists and prefs files "
      "cannot carry"]),
    ("gssapi for apple", ("  port: 465\n  security: ssl\n", "  port: 465\n  security: ssl\n  authentication: gssapi\n"),
     ["error: spec.yaml:14:19: Apple profiles cannot carry outgoing authentication 'gssapi' — use password, "
      "encrypted-password, ntlm or none, or remove apple from targets.build"]),
]


@pytest.mark.parametrize(("replace", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_bad_spec_reports_exact_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      replace: tuple[str, str], expected: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert replace[0] in BASE
    code, lines = check(tmp_path, BASE.replace(replace[0], replace[1], 1))
    assert code == 2
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == expected
    assert lines[-1] == f"{len(expected)} error{'s' if len(expected) != 1 else ''}: nothing was written"


def test_every_problem_is_reported_in_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = BASE.replace("  port: 995\n", '  port: "995"\n').replace("id: aruba.it", "id: aruba.it\n  colour: x")
    text = text.replace("  security: ssl\nacc", "  security: SSL\nacc")
    code, lines = check(tmp_path, text)
    assert code == 2
    assert [line.split(": ")[1] for line in lines if line.startswith("error")] == [
        "spec.yaml:3:3", "spec.yaml:9:9", "spec.yaml:14:13"]


def test_yaml_problems_and_model_problems_are_reported_in_one_run(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # A YAML 1.1 reading, a tag and a duplicate key used to stop the run before the model was checked.
    monkeypatch.chdir(tmp_path)
    text = BASE.replace("  port: 995\n", "  port: 0995\n  port: 0110\n")
    text = text.replace("id: aruba.it", "id: aruba.it\n  colour: x")
    text = text.replace("  security: ssl\nacc", "  security: on\nacc").replace("  port: 465\n", "  port: 70000\n")
    text = text.replace("display_name: Aruba Mail", "display_name: !!binary QQ==")
    code, lines = check(tmp_path, text)
    assert code == 2
    assert lines == [
        "error: spec.yaml:3:3: unknown key 'colour' in provider — allowed keys here: display_name, "
        "documentation_url, domains, id, organization, short_name",
        "error: spec.yaml:4:17: YAML tag 'tag:yaml.org,2002:binary' is not allowed in a spec — remove the tag: a "
        "spec holds only plain strings, numbers, booleans, lists and mappings",
        "error: spec.yaml:9:9: '0995' is text in YAML 1.1 but the number 995 in YAML 1.2 — write 995 for the "
        "number, or quote it (\"0995\") for text",
        "error: spec.yaml:10:3: duplicate key 'port' (first at line 9) — remove one of them: YAML would silently keep "
        "only the last",
        "error: spec.yaml:14:9: outgoing.port: input should be less than or equal to 65535, got 70000 — change the "
        "value",
        "error: spec.yaml:15:13: 'on' is a boolean in YAML 1.1 but a string in YAML 1.2 — write true or false for a "
        "yes/no value, or quote it (\"on\") for text",
        "6 errors: nothing was written"]


def test_csv_errors_name_the_csv_line_and_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = BASE.replace("accounts:\n  - name: Mario Rossi\n    email: mario.rossi@esempio.it\n",
                        "accounts_csv: users.csv\n")
    csv = ("name,email,username\nAnna,anna@esempio.it,\nBruno,bruno@esempio,\n\"Carla, C.\",anna@esempio.it,\n"
           "Dario,dario@esempio.it,%WHO%\n")
    code, lines = check(tmp_path, text, csv)
    assert code == 2
    assert [line for line in lines if line.startswith("error")] == [
        "error: users.csv:3:7: 'bruno@esempio' is not in the provider's domains (esempio.it) — add esempio to "
        "provider.domains or correct the address",
        "error: users.csv:4:13: duplicate address 'anna@esempio.it' (first at users.csv:2:1) — each mailbox may "
        "appear only once",
        "error: users.csv:5:24: username: unknown placeholder %WHO%; use one of %EMAILADDRESS%, %EMAILLOCALPART%, "
        "%EMAILDOMAIN%, %REALNAME%",
    ]


def test_a_short_csv_row_names_the_missing_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = BASE.replace("accounts:\n  - name: Mario Rossi\n    email: mario.rossi@esempio.it\n",
                        "accounts_csv: users.csv\n")
    csv = "name,email,username\nAnna,anna@esempio.it\nBruno\nemail,name\n"
    code, lines = check(tmp_path, text, csv)
    assert code == 2
    assert [line for line in lines if line.startswith("error")] == [
        "error: users.csv:3:1: row has 1 field, without the email column — give every row name,email,username",
        "error: users.csv:4:7: 'name' is not an e-mail address (it needs exactly one @) — correct the address",
    ]
    code, lines = check(tmp_path, text, "email,name\nanna@esempio.it\n")
    assert lines[0] == "error: users.csv:2:1: row has 1 field, without the name column — give every row email,name"


def test_address_problems_come_with_the_model_problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The addresses were checked only once the rest of the spec was valid: a bad port hid them until fixed.
    monkeypatch.chdir(tmp_path)
    text = BASE.replace("  port: 465\n", "  port: 70000\n").replace(
        "    email: mario.rossi@esempio.it\n",
        "    email: mario.rossi@esempio\n  - {name: A, email: 'a b@esempio.it'}\n  - {name: B, email: B@esempio.it}\n"
        "  - {name: b, email: b@ESEMPIO.it}\naccounts_csv: users.csv\n")
    code, lines = check(tmp_path, text, "name,email\nC,c@esempio.it\nC2,C@esempio.it\nD,d@x\n")
    assert code == 2
    assert lines == [
        "error: spec.yaml:12:9: outgoing.port: input should be less than or equal to 65535, got 70000 — change the "
        "value",
        "error: spec.yaml:16:12: 'mario.rossi@esempio' is not in the provider's domains (esempio.it) — add esempio to "
        "provider.domains or correct the address",
        "error: spec.yaml:17:22: 'a b@esempio.it' has an invalid part before the @ — correct the address",
        "error: spec.yaml:19:22: duplicate address 'b@esempio.it' (first at spec.yaml:18:22) — each mailbox may "
        "appear only once",
        "error: users.csv:3:4: duplicate address 'C@esempio.it' (first at users.csv:2:3) — each mailbox may appear "
        "only once",
        "error: users.csv:4:3: 'd@x' is not in the provider's domains (esempio.it) — add x to provider.domains or "
        "correct the address",
        "6 errors: nothing was written"]
    # Unreadable domains: only what can be judged without them.
    code, lines = check(tmp_path, text.replace("domains: [esempio.it]", "domains: esempio.it"))
    assert [line.split(": ", 2)[1] for line in lines[:-1]] == [
        "spec.yaml:4:12", "spec.yaml:12:9", "spec.yaml:17:22", "spec.yaml:19:22", "users.csv:3:4"]


def test_yaml_syntax_error_has_a_position(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, lines = check(tmp_path, BASE.replace("  port: 995\n", "  port: [995\n"))
    assert code == 2
    assert lines[0].startswith("error: spec.yaml:9:")
    assert "YAML syntax error" in lines[0]


@pytest.mark.parametrize("char", ["\x80", "\x9f", "\x7f", "\ufffe"])
def test_a_character_yaml_refuses_is_a_located_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      char: str) -> None:
    # Valid UTF-8 that YAML's reader refuses (C1 controls, DEL, U+FFFE) was an internal error (exit 70).
    monkeypatch.chdir(tmp_path)
    code, lines = check(tmp_path, BASE.replace("display_name: Aruba Mail", f"display_name: Aruba{char}Mail", 1))
    assert code == 2
    assert lines == [f"error: spec.yaml:3:22: the character U+{ord(char):04X} is not allowed in YAML (a control "
                     f"character or a non-character) — remove it, or write it as \\u{ord(char):04x} inside double "
                     "quotes", "1 error: nothing was written"]
