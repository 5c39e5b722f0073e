"""Thunderbird for Android: its strict autoconfig reader accepts our config-v1.1.xml (or the lint says why not),
and its QR import, decoded from the SVG by a real QR decoder, carries exactly the spec's account.

The QR code is checked end to end: the SVG is rasterised by librsvg (rsvg-convert), decoded by zbar (zbarimg),
and the JSON compared with values derived here from the spec through the format's own tables
(thunderbird-android `feature/migration/qrcode/qr-code-format.md`, format 1), independent of generator/.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.accounts import Mailbox, load_accounts
from generator.errors import VerificationError
from generator.spec import load_spec
from generator.targets.base import RenderContext
from generator.targets.thunderbird import ThunderbirdTarget
from tests.android_autoconfig_reader import AndroidParserError, AndroidServer, legal_host, parse
from tests.conftest import EXAMPLES, require_binary

# qr-code-format.md (format 1): IncomingProtocol, ConnectionSecurity, AuthenticationType.
PROTOCOL = {"imap": 0, "pop3": 1}
SECURITY = {"none": 0, "starttls": 2, "ssl": 3}
AUTH = {"none": 0, "password": 1, "encrypted-password": 2, "gssapi": 3, "ntlm": 4, "oauth2": 6}


def _target(spec: Path) -> ThunderbirdTarget:
    return ThunderbirdTarget(RenderContext(load_spec(spec)))


def _variant(tmp_path: Path, change: dict[str, Any], base: Path = EXAMPLES / "provider-pop3.yaml") -> Path:
    data = yaml.safe_load(base.read_text(encoding="utf-8"))
    for dotted, value in change.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path = tmp_path / base.name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _xml(target: ThunderbirdTarget) -> bytes:
    return target.render_shared()[0].data


# --- the strict autoconfig reader ------------------------------------------------------------------------------

def test_pop3_example_with_its_imap_alternative_is_read_by_android() -> None:
    target = _target(EXAMPLES / "provider-pop3.yaml")
    got = parse(_xml(target), "mario.rossi@esempio.it")
    assert got == {"incoming": [AndroidServer("imaps.aruba.it", 993, "TLS", ["password-cleartext"],
                                              "mario.rossi@esempio.it")],
                   "outgoing": [AndroidServer("smtps.aruba.it", 465, "TLS", ["password-cleartext"],
                                              "mario.rossi@esempio.it")]}
    assert not [p for p in target.lint() if "Thunderbird for Android" in p.message]


def test_imap_example_is_read_by_android() -> None:
    got = parse(_xml(_target(EXAMPLES / "provider-imap.yaml")), "giulia.bianchi@esempio.it")
    assert [(s.hostname, s.port, s.security) for s in got["incoming"]] == [("imaps.aruba.it", 993, "TLS")]


def test_pop3_only_spec_is_refused_and_the_lint_says_so(tmp_path: Path) -> None:
    target = _target(_variant(tmp_path, {"imap_alternative": None}))
    with pytest.raises(AndroidParserError, match=r"^No supported 'incomingServer' element found$"):
        parse(_xml(target), "mario.rossi@esempio.it")
    [warning] = [p for p in target.lint() if "Thunderbird for Android" in p.message]
    assert warning.severity == "warning" and "no IMAP server" in warning.message
    assert "imap_alternative" in warning.hint and "android_qr" in warning.hint


def test_school_example_is_pop3_only_and_warned() -> None:
    target = _target(EXAMPLES / "school.yaml")
    with pytest.raises(AndroidParserError, match="No supported 'incomingServer'"):
        parse(_xml(target), "anna.verdi@school.example")
    assert [p for p in target.lint() if "Thunderbird for Android" in p.message]


def test_plain_fallbacks_are_left_out_unless_asked_and_then_android_refuses(tmp_path: Path) -> None:
    default = parse(_xml(_target(EXAMPLES / "provider-pop3.yaml")), "mario.rossi@esempio.it")
    assert all(s.port not in (110, 25) for s in default["incoming"] + default["outgoing"])

    target = _target(_variant(tmp_path, {"targets.thunderbird.autoconfig_plain_fallbacks": True}))
    xml = _xml(target)
    assert b"<port>110</port>" in xml and b"<port>25</port>" in xml
    # The POP3 fallback is skipped unread; the plain SMTP fallback is what rejects the whole file.
    with pytest.raises(AndroidParserError, match=r"^Unknown 'socketType' value: 'plain'$"):
        parse(xml, "mario.rossi@esempio.it")
    [warning] = [p for p in target.lint() if "lists the plain-text fallbacks" in p.message]
    assert "Thunderbird for Android and K-9 Mail reject the whole file" in warning.message
    assert warning.severity == "warning" and warning.position is not None and warning.position.line > 0
    assert any("socketType plain" in p.message for p in target.lint() if "will reject" in p.message)


def test_smtp_without_authentication_is_refused_by_android(tmp_path: Path) -> None:
    target = _target(_variant(tmp_path, {"outgoing.authentication": "none"}))
    with pytest.raises(AndroidParserError, match="No usable 'authentication' element found"):
        parse(_xml(target), "mario.rossi@esempio.it")
    assert any("authentication none" in p.message for p in target.lint())


@pytest.mark.parametrize(("xml", "error"), [
    (b"<clientConfig/>", "Missing 'emailProvider' element"),
    (b'<clientConfig><emailProvider id="a b"/></clientConfig>', "Invalid 'emailProvider.id' attribute"),
    (b'<clientConfig><emailProvider id="x.example"><domain>-bad-</domain></emailProvider></clientConfig>',
     "Valid 'domain' element required"),
    (b'<clientConfig><emailProvider id="x.example"><domain>x.example</domain><incomingServer type="imap">'
     b"<hostname>h.example</hostname><port>993</port><socketType>SSL</socketType><username>u</username>"
     b"<authentication>plain</authentication></incomingServer></emailProvider></clientConfig>",
     "No usable 'authentication' element found"),
    (b'<clientConfig><emailProvider id="x.example"><domain>x.example</domain><incomingServer type="imap">'
     b"<hostname>h.example</hostname><port>99999</port></incomingServer></emailProvider></clientConfig>",
     "Invalid 'port' value: '99999'"),
])
def test_the_reader_applies_the_android_rules(xml: bytes, error: str) -> None:
    with pytest.raises(AndroidParserError, match=error):
        parse(xml, "u@x.example")


# --- the QR import ---------------------------------------------------------------------------------------------

def expected_qr(target: ThunderbirdTarget, mailbox: Mailbox) -> list[Any]:
    s = target.spec
    inc, out = s.incoming, s.outgoing
    incoming = [PROTOCOL[inc.protocol], mailbox.host(inc), inc.port, SECURITY[inc.security],
                AUTH[inc.authentication], mailbox.username]
    if mailbox.description:
        incoming.append(mailbox.description)
    smtp = [0, mailbox.host(out), out.port, SECURITY[out.security], AUTH[out.authentication],
            mailbox.smtp_username]
    return [1, [1, 1], incoming, [[smtp, [mailbox.email, mailbox.name]]]]


def decode_svg(svg: bytes, tmp_path: Path) -> bytes:
    """Rasterise with librsvg on white (the SVG has no background) and decode with zbar, raw bytes."""
    rsvg = require_binary("rsvg-convert", "librsvg2-bin")
    zbarimg = require_binary("zbarimg", "zbar-tools")
    (tmp_path / "qr.svg").write_bytes(svg)
    subprocess.run([rsvg, "-b", "white", "-f", "png", "-o", str(tmp_path / "qr.png"), str(tmp_path / "qr.svg")],
                   check=True, capture_output=True)
    result = subprocess.run([zbarimg, "-q", "--raw", "-Sbinary", str(tmp_path / "qr.png")], capture_output=True,
                            check=False)
    assert result.returncode == 0, f"zbar found no QR code: {result.stderr!r}"
    return result.stdout.rstrip(b"\n")


def _qr_files(spec: Path) -> tuple[ThunderbirdTarget, list[tuple[Mailbox, bytes]]]:
    target = _target(spec)
    found = []
    for mailbox in load_accounts(target.ctx.loaded):
        files = [f for f in target.render_account(mailbox) if f.kind == "android-qr"]
        assert [f.path for f in files] == [f"{mailbox.email}/thunderbird/thunderbird-android-qr.svg"]
        found.append((mailbox, files[0].data))
    return target, found


def test_qr_decodes_to_the_spec_account(tmp_path: Path) -> None:
    target, files = _qr_files(EXAMPLES / "provider-pop3.yaml")
    [(mailbox, svg)] = files
    payload = decode_svg(svg, tmp_path)
    assert json.loads(payload) == expected_qr(target, mailbox)
    assert json.loads(payload)[2][:3] == [1, "pop3s.aruba.it", 995]  # POP3: what autoconfig cannot give TfA
    assert b"password" not in payload.lower() and len(json.loads(payload)[2]) == 6  # no password element


def test_qr_carries_utf8_names_and_the_account_description(tmp_path: Path) -> None:
    spec = _variant(tmp_path, {"accounts": [{"name": "Zoë Ñandú 山田", "email": "zoe@esempio.it",
                                             "description": "Posta di Zoë"}]})
    target, [(mailbox, svg)] = _qr_files(spec)
    payload = decode_svg(svg, tmp_path)
    assert json.loads(payload.decode("utf-8")) == expected_qr(target, mailbox)
    assert json.loads(payload)[2][6] == "Posta di Zoë" and json.loads(payload)[3][0][1][1] == "Zoë Ñandú 山田"


def test_qr_is_opt_in_and_deterministic(tmp_path: Path) -> None:
    target = _target(EXAMPLES / "provider-imap.yaml")
    mailbox = load_accounts(target.ctx.loaded)[0]
    assert not [f for f in target.render_account(mailbox) if f.kind == "android-qr"]
    _, first = _qr_files(EXAMPLES / "provider-pop3.yaml")
    _, second = _qr_files(EXAMPLES / "provider-pop3.yaml")
    assert first == second


def test_kinds_android_qr_asks_for_it_without_the_switch(tmp_path: Path) -> None:
    loaded = load_spec(EXAMPLES / "provider-imap.yaml")
    assert not loaded.spec.targets.thunderbird.android_qr
    target = ThunderbirdTarget(RenderContext(loaded, kinds=frozenset({"android-qr"})))
    mailbox = load_accounts(loaded)[0]
    [qr] = target.render_account(mailbox)
    assert qr.kind == "android-qr" and json.loads(decode_svg(qr.data, tmp_path))[2][0] == PROTOCOL["imap"]


def test_build_lists_the_qr_with_its_media_type(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from generator.cli import main

    result = CliRunner().invoke(main, ["build", str(EXAMPLES / "provider-pop3.yaml"), "--out", str(tmp_path / "o"),
                                       "--kinds", "android-qr"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text(encoding="utf-8"))
    assert [(f["kind"], f["media_type"]) for f in manifest["files"]] == [("android-qr", "image/svg+xml")]


@pytest.mark.thunderbird
def test_desktop_thunderbird_keeps_pop3_first_and_offers_the_imap_alternative(tmp_path: Path) -> None:
    from tests.test_thunderbird_real import HARNESS, make_install, run_thunderbird

    install = make_install(tmp_path, "// harness only\n" + HARNESS.read_text(),
                           isp={"esempio.it": _xml(_target(EXAMPLES / "provider-pop3.yaml"))})
    home, profile = tmp_path / "home", tmp_path / "profile"
    home.mkdir()
    profile.mkdir()
    got = run_thunderbird(install, profile, home, domains=["esempio.it"])["autoconfig"]["esempio.it"]
    assert [(s["type"], s["hostname"], s["port"]) for s in got["incoming"]] == [
        ("pop3", "pop3s.aruba.it", 995), ("imap", "imaps.aruba.it", 993)]
    assert [(s["hostname"], s["port"]) for s in got["outgoing"]] == [("smtps.aruba.it", 465)]


def test_imap_alternative_must_be_imap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from generator.cli import main

    spec = _variant(tmp_path, {"imap_alternative.protocol": "pop3"})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", spec.name])
    assert result.exit_code == 2
    line = next(n for n, text in enumerate(spec.read_text().splitlines(), 1) if text.startswith("imap_alternative:"))
    # Located at the server's mapping (the line after the key), with what to change.
    assert f"error: {spec.name}:{line + 1}:3: imap_alternative: imap_alternative must be an imap server " \
           "(protocol: imap)" in result.output


# --- every server with its own user name -------------------------------------------------------------------------

OWN_USERS = {"incoming.username": "%EMAILLOCALPART%",  # the POP3 primary
             "imap_alternative.username": "%EMAILADDRESS%",
             "fallbacks.incoming": [{"protocol": "imap", "host": "imap2.aruba.it", "port": 993, "security": "ssl",
                                     "username": "legacy-%EMAILLOCALPART%"}],
             "fallbacks.outgoing": [{"host": "smtp2.aruba.it", "port": 587, "security": "starttls",
                                     "same_credentials": False, "username": "%EMAILDOMAIN%"}]}


def test_every_server_keeps_its_own_user_name(tmp_path: Path) -> None:
    """The IMAP alternative and the fallbacks name their own user names; an SMTP server with the same
    credentials takes the primary incoming one (as in autodiscover.xml, which Outlook reads)."""
    from generator.targets.outlook import OutlookTarget, read_autodiscover

    spec = _variant(tmp_path, OWN_USERS)
    got = parse(_xml(_target(spec)), "mario.rossi@esempio.it")
    assert [(s.hostname, s.username) for s in got["incoming"]] == [
        ("imaps.aruba.it", "mario.rossi@esempio.it"), ("imap2.aruba.it", "legacy-mario.rossi")]
    assert [(s.hostname, s.username) for s in got["outgoing"]] == [
        ("smtps.aruba.it", "mario.rossi"), ("smtp2.aruba.it", "esempio.it")]

    loaded = load_spec(spec)
    [mailbox] = load_accounts(loaded)
    [xml] = [f for f in OutlookTarget(RenderContext(loaded)).render_account(mailbox) if f.kind == "autodiscover-xml"]
    logins = {p["Server"]: p["LoginName"] for p in read_autodiscover(xml.data)["Protocol"]}
    assert logins["imap2.aruba.it"] == "legacy-mario.rossi" and logins["smtp2.aruba.it"] == "esempio.it"
    assert logins["smtps.aruba.it"] == "mario.rossi"


def _desktop_autoconfig(tmp_path: Path, changes: dict[str, Any]) -> dict[str, Any]:
    """What desktop Thunderbird reads from the config-v1.1.xml of the example spec with `changes`, served as
    its ISP's autoconfig."""
    from tests.test_thunderbird_real import HARNESS, make_install, run_thunderbird

    install = make_install(tmp_path, "// harness only\n" + HARNESS.read_text(),
                           isp={"esempio.it": _xml(_target(_variant(tmp_path, changes)))})
    home, profile = tmp_path / "home", tmp_path / "profile"
    home.mkdir()
    profile.mkdir()
    got: dict[str, Any] = run_thunderbird(install, profile, home, domains=["esempio.it"])["autoconfig"]["esempio.it"]
    return got


@pytest.mark.thunderbird
def test_desktop_thunderbird_reads_each_servers_own_user_name(tmp_path: Path) -> None:
    got = _desktop_autoconfig(tmp_path, OWN_USERS)
    assert [(s["hostname"], s["username"]) for s in got["incoming"]] == [
        ("pop3s.aruba.it", "%EMAILLOCALPART%"), ("imaps.aruba.it", "%EMAILADDRESS%"),
        ("imap2.aruba.it", "legacy-%EMAILLOCALPART%")]
    assert [(s["hostname"], s["username"]) for s in got["outgoing"]] == [
        ("smtps.aruba.it", "%EMAILLOCALPART%"), ("smtp2.aruba.it", "%EMAILDOMAIN%")]


# --- IPv6 literals ------------------------------------------------------------------------------------------------

IPV6 = {"incoming.host": "[2001:db8::25]", "imap_alternative.host": "[2001:db8::26]",
        "outgoing.host": "[2001:DB8::27]"}


def test_ipv6_hosts_are_written_as_both_thunderbirds_read_them(tmp_path: Path) -> None:
    """The spec writes an IPv6 host in brackets; Thunderbird's host-name check (comm-central hostnameUtils,
    ported as HostNameUtils.kt) refuses the brackets, so the discovery files carry the bare address."""
    got = parse(_xml(_target(_variant(tmp_path, IPV6))), "mario.rossi@esempio.it")
    assert [s.hostname for s in got["incoming"]] == ["2001:db8::26"]
    assert [s.hostname for s in got["outgoing"]] == ["2001:DB8::27"]


def test_ipv6_hosts_in_the_qr_code_are_bare(tmp_path: Path) -> None:
    _, [(_, svg)] = _qr_files(_variant(tmp_path, IPV6))
    payload = json.loads(decode_svg(svg, tmp_path))
    assert payload[2][1] == "2001:db8::25" and payload[3][0][0][1] == "2001:DB8::27"
    assert legal_host(payload[2][1]) and legal_host(payload[3][0][0][1])  # what the QR import validates


def test_ipv6_hosts_in_autodiscover_are_bare(tmp_path: Path) -> None:
    from generator.targets.outlook import OutlookTarget, read_autodiscover

    loaded = load_spec(_variant(tmp_path, IPV6))
    [mailbox] = load_accounts(loaded)
    [xml] = [f for f in OutlookTarget(RenderContext(loaded)).render_account(mailbox) if f.kind == "autodiscover-xml"]
    servers = [p["Server"] for p in read_autodiscover(xml.data)["Protocol"]]
    # Thunderbird reads <Server> with the same host-name check (ExchangeAutoDiscover.sys.mjs).
    assert servers[:2] == ["2001:db8::25", "2001:DB8::27"] and all(legal_host(s) for s in servers[:2])


@pytest.mark.thunderbird
def test_desktop_thunderbird_reads_ipv6_hosts(tmp_path: Path) -> None:
    got = _desktop_autoconfig(tmp_path, IPV6)
    assert [s["hostname"] for s in got["incoming"]] == ["2001:db8::25", "2001:db8::26"]
    assert [s["hostname"] for s in got["outgoing"]] == ["2001:db8::27"]


# --- what the QR import refuses -------------------------------------------------------------------------------

@pytest.mark.parametrize(("side", "method"), [("incoming", "ntlm"), ("incoming", "gssapi"), ("outgoing", "ntlm")])
def test_qr_with_an_authentication_the_import_refuses_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  side: str, method: str) -> None:
    """The QR import maps AuthenticationType 3 (GSSAPI) and 4 (NTLM) to an error, and one unsupported value
    makes the whole code unreadable (IntValueMapper.kt, QrCodePayloadValidator.kt)."""
    from click.testing import CliRunner

    from generator.cli import main

    spec = _variant(tmp_path, {f"{side}.authentication": method})
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", spec.name])
    assert result.exit_code == 2
    lines = spec.read_text().splitlines()
    section = next(n for n, text in enumerate(lines, 1) if text == f"{side}:")
    line = next(n for n, text in enumerate(lines, 1) if n > section and text.strip().startswith("authentication:"))
    assert f"error: {spec.name}:{line}:19: Thunderbird for Android's QR import refuses {side} " \
           f"authentication: {method}, so the account's QR code could not be read — use password " \
           "authentication, or remove targets.thunderbird.android_qr" in result.output


@pytest.mark.parametrize("auth", [3, 4])
def test_the_qr_reader_refuses_what_the_import_refuses(auth: int) -> None:
    from generator.targets.thunderbird_android import read_qr_payload

    payload = [1, [1, 1], [1, "pop3s.aruba.it", 995, 3, auth, "mario"],
               [[[0, "smtps.aruba.it", 465, 3, 1, "mario"], ["mario@esempio.it", "Mario"]]]]
    with pytest.raises(ValueError, match="unsupported ConnectionSecurity/AuthenticationType"):
        read_qr_payload(json.dumps(payload).encode())


# --- host names both Thunderbirds check ------------------------------------------------------------------------

def test_a_provider_id_thunderbird_cannot_read_as_a_host_name_is_an_error(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Both Thunderbirds read emailProvider@id as a host name (readFromXML.sys.mjs, RealAutoconfigParser.kt) and
    refuse the whole file otherwise; the spec's id allows labels longer than DNS's 63 characters."""
    from click.testing import CliRunner

    from generator.cli import main

    long_id = "a" * 64 + ".esempio.it"
    spec = _variant(tmp_path, {"provider.id": long_id})
    imap = _xml(_target(EXAMPLES / "provider-imap.yaml"))
    with pytest.raises(AndroidParserError, match=r"^Invalid 'emailProvider\.id' attribute$"):
        parse(imap.replace(b'id="aruba.it"', f'id="{long_id}"'.encode()), "a@esempio.it")
    with pytest.raises(VerificationError, match=r"emailProvider id '.*' is not a host name"):
        _target(spec).render_shared()  # the build's proof, should the lint be skipped
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", spec.name])
    assert result.exit_code == 2
    line = next(n for n, text in enumerate(spec.read_text().splitlines(), 1) if text.strip().startswith("id:"))
    assert f"error: {spec.name}:{line}:7: Thunderbird reads provider.id as the host name in config-v1.1.xml's " \
           f"emailProvider id, and '{long_id}' is not one (labels of 1-63 letters, digits and '-'), so every " \
           "Thunderbird would reject the file — use the provider's domain, such as esempio.it" in result.output


@pytest.mark.parametrize(("before", "after", "error"), [
    (b"<hostname>imaps.aruba.it</hostname>", b"<hostname>[2001:db8::25]</hostname>",
     "hostname '[2001:db8::25]' is not a host name or IP address Thunderbird accepts"),
    (b"<domain>esempio.it</domain>", b"<domain>esempio_it</domain>",
     "domain 'esempio_it' is not a host name or IP address Thunderbird accepts"),
    (b"<hostname>smtps.aruba.it</hostname>", b"<hostname>smtp.%EMAILDOMAIN%.-x</hostname>",
     "hostname 'smtp.%EMAILDOMAIN%.-x' is not a host name or IP address Thunderbird accepts"),
])
def test_the_builds_proof_refuses_hosts_thunderbird_refuses(before: bytes, after: bytes, error: str) -> None:
    from generator.targets.thunderbird import parse_autoconfig

    xml = _xml(_target(EXAMPLES / "provider-imap.yaml"))
    assert before in xml
    parse_autoconfig(xml)
    with pytest.raises(ValueError, match=re.escape(error)):
        parse_autoconfig(xml.replace(before, after))


@pytest.mark.parametrize("host", ["[2001:db8::25]", "pop3s.arüba.it", "pop3s..aruba.it", ""])
def test_the_qr_reader_refuses_hosts_the_import_refuses(host: str) -> None:
    from generator.targets.thunderbird_android import read_qr_payload

    payload = [1, [1, 1], [1, host, 995, 3, 1, "mario"],
               [[[0, "smtps.aruba.it", 465, 3, 1, "mario"], ["mario@esempio.it", "Mario"]]]]
    with pytest.raises(ValueError, match="not a host name or IP address"):
        read_qr_payload(json.dumps(payload).encode())


# --- the lint and the reader agree --------------------------------------------------------------------------------

@pytest.mark.parametrize("change", [
    {}, {"imap_alternative": None}, {"imap_alternative.security": "none", "imap_alternative.allow_insecure": True,
                                     "imap_alternative.port": 143},
    {"imap_alternative.authentication": "ntlm"}, {"imap_alternative.authentication": "oauth2"},
    {"imap_alternative.authentication": "encrypted-password"}, {"outgoing.authentication": "gssapi"},
    {"outgoing.security": "starttls", "outgoing.port": 587}, {"targets.thunderbird.autoconfig_plain_fallbacks": True},
    {"imap_alternative.host": "[2001:db8::25]", "outgoing.host": "192.0.2.25"},
    {"imap_alternative.host": "imap.%EMAILDOMAIN%", "imap_alternative.username": "%EMAILLOCALPART%"},
    {"provider.domains": ["esempio.it", "bücher.de"]},
], ids=lambda change: ",".join(f"{k}={v}" for k, v in change.items()) or "example")
def test_the_android_warning_is_given_exactly_when_the_reader_rejects(tmp_path: Path, change: dict[str, Any]) -> None:
    target = _target(_variant(tmp_path, change))
    warned = [p for p in target.lint() if "will reject config-v1.1.xml" in p.message]
    for f in target.render_shared():
        try:
            parse(f.data, "mario.rossi@" + f.path.split("/")[1])
        except AndroidParserError:
            assert warned, f"{f.path}: the reader rejects it, the lint says nothing"
        else:
            assert not warned, f"{f.path}: the reader takes it, the lint warns: {warned[0].message}"
