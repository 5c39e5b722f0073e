"""The spec-wide lint (generator/lint.py): specs that validate and build byte-perfect files, yet no client can
connect with them, or connects badly. Each case is a spec and the exact problems `check` reports for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.errors import Problem
from generator.lint import lint_spec
from generator.spec import load_spec

HEAD = "provider: {id: acme.it, display_name: Acme, domains: [acme.it]}\n"
ACCOUNT = "accounts: [{name: A B, email: a@acme.it}]\n"


def problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> list[Problem]:
    """The lint's problems for the spec `text`, written as spec.yaml in tmp_path (file names relative)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    return lint_spec(load_spec("spec.yaml"))


def lint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> list[str]:
    """The lint's problems for HEAD + body + ACCOUNT, as `check` prints them."""
    return [f"{p.severity}: {p}" for p in problems(tmp_path, monkeypatch, HEAD + body + ACCOUNT)]


SHARED_ENDPOINTS = [
    ("SMTP on the IMAP port of the same host",
     "incoming: {protocol: imap, host: mail.acme.it, port: 993, security: ssl}\n"
     "outgoing: {host: MAIL.acme.it, port: 993, security: ssl}\n",
     ["warning: spec.yaml:3:38: outgoing: port 993 is an IMAP port, but this is a SMTP server — check the port",
      "error: spec.yaml:3:38: outgoing: mail.acme.it:993 is already incoming, an IMAP server; one port speaks one "
      "protocol — check the host and port (IMAP: 993 or 143, POP3: 995 or 110, SMTP: 465 or 587)"]),
    ("IMAP alternative on the POP3 port, through %EMAILDOMAIN%",
     "incoming: {protocol: pop3, host: pop.acme.it, port: 995, security: ssl}\n"
     "outgoing: {host: smtp.acme.it, port: 465, security: ssl}\n"
     "imap_alternative: {protocol: imap, host: 'pop.%EMAILDOMAIN%', port: 995, security: ssl}\n",
     ["warning: spec.yaml:4:69: imap_alternative: port 995 is a POP3 port, but this is an IMAP server — check the "
      "port",
      "error: spec.yaml:4:69: imap_alternative: pop.acme.it:995 is already incoming, a POP3 server; one port speaks "
      "one protocol — check the host and port (IMAP: 993 or 143, POP3: 995 or 110, SMTP: 465 or 587)"]),
    ("implicit TLS and STARTTLS on one port",
     "incoming: {protocol: imap, host: mail.acme.it, port: 1143, security: starttls}\n"
     "outgoing: {host: smtp.acme.it, port: 465, security: ssl}\n"
     "fallbacks: {incoming: [{protocol: imap, host: mail.acme.it, port: 1143, security: ssl}]}\n",
     ["error: spec.yaml:4:83: fallbacks.incoming.0: mail.acme.it:1143 is already incoming with security "
      "'starttls'; a port either starts with TLS (ssl) or does not (starttls, none), so 'ssl' cannot work there "
      "too — check the port and security"]),
    ("a %EMAILDOMAIN% host first, the literal host it makes later",
     "incoming: {protocol: imap, host: 'mail.%EMAILDOMAIN%', port: 993, security: ssl}\n"
     "outgoing: {host: smtp.acme.it, port: 465, security: ssl}\n"
     "fallbacks: {outgoing: [{host: mail.acme.it, port: 993, security: ssl}]}\n",
     ["warning: spec.yaml:4:51: fallbacks.outgoing.0: port 993 is an IMAP port, but this is a SMTP server — check "
      "the port",
      "error: spec.yaml:4:51: fallbacks.outgoing.0: mail.acme.it:993 is already incoming, an IMAP server; one port "
      "speaks one protocol — check the host and port (IMAP: 993 or 143, POP3: 995 or 110, SMTP: 465 or 587)"]),
    ("one %EMAILDOMAIN% pattern twice",
     "incoming: {protocol: pop3, host: 'Mail.%EMAILDOMAIN%', port: 2000, security: ssl}\n"
     "outgoing: {host: 'mail.%EMAILDOMAIN%', port: 2000, security: ssl}\n",
     ["error: spec.yaml:3:46: outgoing: mail.%emaildomain%:2000 is already incoming, a POP3 server; one port "
      "speaks one protocol — check the host and port (IMAP: 993 or 143, POP3: 995 or 110, SMTP: 465 or 587)"]),
    ("IMAP alternative identical to the primary",
     "incoming: {protocol: imap, host: mail.acme.it, port: 993, security: ssl}\n"
     "outgoing: {host: mail.acme.it, port: 465, security: ssl}\n"
     "imap_alternative: {protocol: imap, host: mail.acme.it, port: 993, security: ssl}\n",
     ["warning: spec.yaml:4:19: imap_alternative: the same server as incoming (mail.acme.it:993, same security, "
      "authentication and user name); clients would only try it twice — remove imap_alternative"]),
    ("fallback identical to the primary (user name inherited)",
     "incoming: {protocol: pop3, host: mail.acme.it, port: 995, security: ssl, username: '%EMAILLOCALPART%'}\n"
     "outgoing: {host: mail.acme.it, port: 465, security: ssl}\n"
     "fallbacks: {outgoing: [{host: mail.acme.it, port: 465, security: ssl}]}\n",
     ["warning: spec.yaml:4:24: fallbacks.outgoing.0: the same server as outgoing (mail.acme.it:465, same "
      "security, authentication and user name); clients would only try it twice — remove fallbacks.outgoing.0"]),
    ("plain-text fallback on the STARTTLS port",
     "incoming: {protocol: imap, host: mail.acme.it, port: 143, security: starttls}\n"
     "outgoing: {host: mail.acme.it, port: 587, security: starttls}\n"
     "fallbacks: {outgoing: [{host: mail.acme.it, port: 587, security: none, allow_insecure: true}]}\n",
     ["warning: spec.yaml:4:66: fallbacks.outgoing.0: mail.acme.it:587 without encryption, after outgoing with "
      "STARTTLS on the same port: whoever blocks STARTTLS on the way makes clients fall back to sending the "
      "password readably — remove fallbacks.outgoing.0, or give the plain-text fallback its own host or port"]),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in SHARED_ENDPOINTS], ids=[c[0] for c in SHARED_ENDPOINTS])
def test_two_servers_on_one_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                                     expected: list[str]) -> None:
    assert lint(tmp_path, monkeypatch, body) == expected


def test_two_hosts_of_one_pattern_are_two_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pop.acme.it and pop.acme.com both fit pop.%EMAILDOMAIN%, but are not each other."""
    found = problems(tmp_path, monkeypatch,
                     "provider: {id: acme.it, display_name: Acme, domains: [acme.it, acme.com]}\n"
                     "incoming: {protocol: pop3, host: pop.acme.it, port: 995, security: ssl}\n"
                     "outgoing: {host: pop.acme.com, port: 995, security: ssl}\n")
    assert [str(p) for p in found if p.severity == "error"] == []


SOUND = {
    "the same host for every protocol, each on its own port":
        "incoming: {protocol: pop3, host: mail.acme.it, port: 995, security: ssl}\n"
        "outgoing: {host: mail.acme.it, port: 465, security: ssl}\n"
        "imap_alternative: {protocol: imap, host: mail.acme.it, port: 993, security: ssl}\n"
        "fallbacks: {incoming: [{protocol: pop3, host: mail.acme.it, port: 995, security: ssl, "
        "authentication: encrypted-password}]}\n",
    # The seed guide's setup: pop3s 995 and smtps 465 with SSL, plain 110/25 fallbacks for legacy clients.
    "the provider guide's plain fallbacks on 110 and 25":
        "incoming: {protocol: pop3, host: pop3s.aruba.it, port: 995, security: ssl}\n"
        "outgoing: {host: smtps.aruba.it, port: 465, security: ssl}\n"
        "fallbacks:\n"
        "  incoming: [{protocol: pop3, host: 'pop3.%EMAILDOMAIN%', port: 110, security: none, "
        "allow_insecure: true}]\n"
        "  outgoing: [{host: 'smtp.%EMAILDOMAIN%', port: 25, security: none, allow_insecure: true}]\n",
}


@pytest.mark.parametrize("case", sorted(SOUND))
def test_sound_setups_are_silent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    assert lint(tmp_path, monkeypatch, SOUND[case]) == []


def test_smtp_on_port_25_for_clients_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = ("incoming: {protocol: imap, host: mail.acme.it, port: 993, security: ssl}\n"
            "outgoing: {host: mail.acme.it, port: 25, security: starttls}\n")
    assert lint(tmp_path, monkeypatch, body) == [
        "warning: spec.yaml:3:38: outgoing: port 25 is for mail between servers; many ISPs and networks block it "
        "for clients, which then cannot send away from the office — use submission: port 587 with security: "
        "starttls, or 465 with ssl (keep 25 as a fallback if legacy clients need it)"]




HOSTS = [
    ("loopback name", "localhost", "none", ["localhost is the user's own device (RFC 6761), not the mail server"]),
    ("loopback address", "127.0.0.1", "none",
     ["127.0.0.1 is a loopback address: on each user's device it is that device itself"]),
    ("loopback address written short", "'127.1'", "none",
     ["127.1 (the address 127.0.0.1) is a loopback address: on each user's device it is that device itself"]),
    ("private address in hex, with TLS", "0xa.0x1.0x2.0x3", "ssl",
     ["0xa.0x1.0x2.0x3 (the address 10.1.2.3) is not a public address: clients reach it only inside that network",
      "CERT"]),
    ("a name of hex letters", "dead.cafe", "ssl", []),
    ("private address with TLS", "10.1.2.3", "starttls",
     ["10.1.2.3 is not a public address: clients reach it only inside that network", "CERT"]),
    ("private IPv6 address", "'[fd00::25]'", "none",
     ["[fd00::25] is not a public address: clients reach it only inside that network"]),
    ("mDNS name", "mail.local", "none", ["mail.local is a local-network name: it resolves only inside that network"]),
    ("router name", "MAIL.home.arpa", "none",
     ["mail.home.arpa is a local-network name: it resolves only inside that network"]),
    ("single label", "mailserver", "none",
     ["mailserver is a single label: it resolves, if at all, only through a local network's search domain"]),
    ("documentation name", "smtp.example.com", "none",
     ["smtp.example.com is a name reserved for examples and tests (RFC 2606): it never resolves"]),
    ("documentation name through %EMAILDOMAIN%", "'smtp.%EMAILDOMAIN%.test'", "none",
     ["smtp.acme.it.test is a name reserved for examples and tests (RFC 2606): it never resolves"]),
    ("public address with TLS", "8.8.4.4", "ssl", ["CERT"]),
    ("public address in plain text", "8.8.4.4", "none", []),
    ("public name", "smtp.acme.it", "ssl", []),
]


@pytest.mark.parametrize(("host", "security", "expected"), [c[1:] for c in HOSTS], ids=[c[0] for c in HOSTS])
def test_hosts_clients_cannot_reach_or_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host: str,
                                              security: str, expected: list[str]) -> None:
    port = {"ssl": 465, "starttls": 587, "none": 587}[security]
    auth = ", authentication: none" if security == "none" else ""
    body = ("incoming: {protocol: imap, host: imap.acme.it, port: 993, security: ssl}\n"
            f"outgoing: {{host: {host}, port: {port}, security: {security}{auth}}}\n")
    shown = host.strip("'").lower().replace("%emaildomain%", "acme.it")
    cert = (f"outgoing.host: with security '{security}' clients check the server's certificate against {shown}, "
            "and a certificate names host names, seldom IP addresses: the connection would fail verification — "
            "give the host name the certificate is issued for")
    reach = " — give the host name users' devices reach the server by, as published in DNS"
    assert lint(tmp_path, monkeypatch, body) == [
        f"warning: spec.yaml:3:18: {cert}" if e == "CERT" else f"warning: spec.yaml:3:18: outgoing.host: {e}{reach}"
        for e in expected]


def test_a_host_made_from_a_reserved_domain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each domain fills %EMAILDOMAIN%: the one that is not public (school.test) is the one tried."""
    found = problems(tmp_path, monkeypatch,
                     "provider: {id: acme.it, display_name: Acme, domains: [acme.it, acme.com, school.test, "
                     "x.invalid]}\n"
                     "incoming: {protocol: pop3, host: 'pop.%EMAILDOMAIN%', port: 995, security: ssl}\n"
                     "outgoing: {host: smtp.acme.it, port: 465, security: ssl}\n")
    assert [str(p) for p in found] == [
        "spec.yaml:2:34: incoming.host: pop.school.test is a name reserved for examples and tests (RFC 2606): it "
        "never resolves — give the host name users' devices reach the server by, as published in DNS"]


def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, csv: str) -> tuple[int, list[str]]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spec.yaml").write_text(spec, encoding="utf-8")
    (tmp_path / "users.csv").write_text(csv, encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "spec.yaml"], catch_exceptions=False)
    return result.exit_code, [line for line in result.output.splitlines() if not line.startswith("warning:")]


TWO_DOMAINS = ("provider: {id: acme.it, display_name: Acme, domains: [acme.it, acme.com]}\n"
               "incoming: {protocol: pop3, host: HOST, port: 995, security: ssl, username: '%EMAILLOCALPART%'}\n"
               "outgoing: {host: smtp.acme.it, port: 465, security: ssl}\n"
               "accounts: [{name: Anna A, email: anna@acme.it}, {name: Bob, email: bob@acme.it}]\n"
               "accounts_csv: users.csv\n")
USERS = "name,email,username\nAnna B,Anna@acme.com,\nCarl,carl@acme.com,bob\nDora,dora@acme.com,\n"


def test_accounts_that_would_log_in_as_one_user_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """%EMAILLOCALPART% on a multi-domain spec: anna@acme.it and anna@acme.com both log in as 'anna', and
    the second would read the first one's mail. So would an account whose own username is another's."""
    code, lines = check(tmp_path, monkeypatch, TWO_DOMAINS.replace("HOST", "pop.acme.it"), USERS)
    hint = ("use username: \"%EMAILADDRESS%\" if the server knows users by address, or give one of the accounts its "
            "own username (one mailbox under two addresses is listed once)")
    assert (code, lines) == (2, [
        f"error: users.csv:2:8: 'Anna@acme.com' would log in to pop.acme.it as 'Anna', as the account at "
        f"spec.yaml:4:12 does: both would read one mailbox — {hint}",
        f"error: users.csv:3:20: 'carl@acme.com' would log in to pop.acme.it as 'bob', as the account at "
        f"spec.yaml:4:49 does: both would read one mailbox — {hint}",
        "2 errors: nothing was written"])


def test_a_host_per_domain_keeps_local_part_user_names_apart(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    code, lines = check(tmp_path, monkeypatch, TWO_DOMAINS.replace("HOST", "'pop.%EMAILDOMAIN%'"),
                        "name,email\nAnna B,anna@acme.com\n")
    assert (code, lines) == (0, ["spec.yaml: ok, 3 accounts, targets apple, thunderbird, outlook, 1 warning"])


PLAIN_FIRST = [
    ("plain primary, encrypted fallback",
     "incoming: {protocol: pop3, host: pop.acme.it, port: 110, security: none, allow_insecure: true}\n"
     "outgoing: {host: smtp.acme.it, port: 465, security: ssl}\n"
     "fallbacks: {incoming: [{protocol: pop3, host: pop.acme.it, port: 995, security: ssl}]}\n",
     ["warning: spec.yaml:2:68: incoming is plain text but comes before the encrypted fallbacks.incoming.0: "]),
    ("plain fallback before an encrypted one",
     "incoming: {protocol: pop3, host: pop.acme.it, port: 995, security: ssl}\n"
     "outgoing: {host: smtp.acme.it, port: 465, security: ssl}\n"
     "fallbacks: {outgoing: [{host: smtp.acme.it, port: 25, security: none, allow_insecure: true},\n"
     "                       {host: smtp.acme.it, port: 587, security: starttls}]}\n",
     ["warning: spec.yaml:4:65: fallbacks.outgoing.0 is plain text but comes before the encrypted "
      "fallbacks.outgoing.1: "]),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in PLAIN_FIRST], ids=[c[0] for c in PLAIN_FIRST])
def test_a_plain_text_server_before_an_encrypted_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str,
                                                     expected: list[str]) -> None:
    rest = ("clients try the servers in this order, so they send the password readably and never reach the "
            "encrypted one — put the encrypted server first (as incoming/outgoing) and the plain-text one after "
            "it, as a fallback")
    assert lint(tmp_path, monkeypatch, body) == [e + rest for e in expected]


@pytest.mark.parametrize(("auth", "exposed"), [
    ("password", "sends the password readably over the network"),
    ("encrypted-password", "lets anyone on the network record the exchange and guess the password offline (and "
     "Outlook, which cannot express it, sends the password itself)"),
    ("ntlm", "lets anyone on the network record the exchange and guess the password offline"),
    ("oauth2", "sends the access token readably over the network: whoever reads it logs in as the user")])
def test_what_each_method_gives_away_without_encryption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth: str,
                                                        exposed: str) -> None:
    body = ("incoming: {protocol: imap, host: imap.acme.it, port: 993, security: ssl}\n"
            f"outgoing: {{host: smtp.acme.it, port: 587, security: none, authentication: {auth}}}\n")
    assert lint(tmp_path, monkeypatch, body) == [
        f"error: spec.yaml:3:53: outgoing: {auth} authentication without encryption {exposed} — use ssl or starttls, "
        "or set allow_insecure: true on this server if you really mean it"]
