"""Outlook target: the .reg writer and reader, the PRF, the autodiscover answer, lint warnings, escaping
round-trips, and proof that verification catches a template that writes the wrong thing."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from generator.accounts import Mailbox, load_accounts
from generator.build import prepare
from generator.errors import VerificationError
from generator.model import OutlookSettings, _text
from generator.prf import PrfFormatError, prf_value, read_sections, typed_account, unquote
from generator.regfile import (
    REG_BINARY,
    REG_DWORD,
    REG_EXPAND_SZ,
    REG_SZ,
    RegFormatError,
    encode_reg,
    parse_reg,
    reg_dword,
    reg_expand_sz,
    reg_hex,
    reg_string,
)
from generator.render import packaged_templates
from generator.spec import LoadedSpec, load_spec
from generator.targets.base import OutputFile, RenderContext
from generator.targets.outlook import OUTLOOK_KEY, SETUP_KEY, OutlookTarget, read_autodiscover
from generator.targets.thunderbird import ThunderbirdTarget, parse_autoconfig
from tests.conftest import EXAMPLES
from tests.test_spec_errors import BASE

# --- .reg writer ---------------------------------------------------------------------------------------


def test_reg_string_escapes_backslash_and_quote_only() -> None:
    assert reg_string('C:\\Dati\\"Zoë" & <co>') == '"C:\\\\Dati\\\\\\"Zoë\\" & <co>"'


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b"])
def test_reg_string_refuses_what_a_reg_line_cannot_hold(bad: str) -> None:
    with pytest.raises(RegFormatError):
        reg_string(bad)


def test_reg_dword_is_eight_lowercase_hex_digits() -> None:
    assert reg_dword(1) == "dword:00000001"
    assert reg_dword(0xDEADBEEF) == "dword:deadbeef"
    for bad in (-1, 2**32, True):
        with pytest.raises(RegFormatError):
            reg_dword(bad)


def test_hex_lists_wrap_like_regedit() -> None:
    value = "C:\\Users\\Public\\Documents\\Outlook-Dateien\\Zoë Ünal\\Archiv"
    line = '"ForcePSTPath"=' + reg_expand_sz(value, "ForcePSTPath")
    lines = line.split("\n")
    assert len(lines) > 2
    assert all(len(x) <= 80 for x in lines)
    # regedit: the first line fills to 80 characters with its `\`, continuation lines carry 25 bytes.
    assert len(lines[0]) == 80
    for cont in lines[1:-1]:
        assert cont.startswith("  ") and not cont.startswith("   ") and cont.endswith(",\\")
        assert len(cont[2:-1].rstrip(",").split(",")) == 25
    assert not lines[-1].endswith("\\") and lines[-1].endswith("00,00")


def test_short_hex_list_stays_on_one_line() -> None:
    assert reg_hex(b"\x01\xab", "X") == "hex:01,ab"
    assert reg_hex(b"", "X") == "hex:"


def _reg(body: str) -> bytes:
    return encode_reg("Windows Registry Editor Version 5.00\n\n" + body)


def test_reader_round_trips_every_value_kind() -> None:
    text, path = 'a\\b "c"', "C:\\Ärchiv " * 6
    body = (f"[{SETUP_KEY}]\n"
            f'"S"={reg_string(text)}\n'
            f'"D"={reg_dword(0x000E0003)}\n'
            f'"E"={reg_expand_sz(path, "E")}\n'
            f'"B"={reg_hex(bytes(range(60)), "B")}\n'
            '"Gone"=-\n\n')
    assert parse_reg(_reg(body)) == {SETUP_KEY: {
        "S": (REG_SZ, text), "D": (REG_DWORD, 0x000E0003), "E": (REG_EXPAND_SZ, path),
        "B": (REG_BINARY, bytes(range(60))), "Gone": ("DELETE", None)}}


@pytest.mark.parametrize(("body", "message"), [
    ('[K]\n"A"=hex:zz\n\n', "two-digit hex bytes"),
    ('[K]\n"A"=hex:1,2\n\n', "two-digit hex bytes"),
    ('[K]\n"A"=dword:1\n\n', "exactly 8 hex digits"),
    ('[K]\n"A"=dword:000000001\n\n', "exactly 8 hex digits"),
    ('[K]\n"A"="C:\\x"\n\n', "unknown escape"),
    ('[K]\n"A"="open\n\n', "unterminated"),
    ('"A"="x"\n\n', "outside any [key]"),
    ('[K]\n"A"="x"\n"a"="y"\n\n', "appears twice"),
    ('[K]\n"A"=hex:01,\\\n02\n\n', "two spaces"),
    ('[K]\n"A"=hex(2):41,00\n\n', "ending in 00,00"),
])
def test_reader_is_stricter_than_hivex(body: str, message: str) -> None:
    with pytest.raises(RegFormatError, match=re.escape(message)):
        parse_reg(_reg(body))


def test_reader_refuses_wrong_encoding_and_line_ends() -> None:
    text = "Windows Registry Editor Version 5.00\r\n\r\n[K]\r\n\r\n"
    with pytest.raises(RegFormatError, match="byte order mark"):
        parse_reg(text.encode("utf-16-le"))
    with pytest.raises(RegFormatError, match="CRLF"):
        parse_reg(b"\xff\xfe" + text.replace("\r\n", "\n").encode("utf-16-le"))
    with pytest.raises(RegFormatError, match="must start with"):
        parse_reg(encode_reg("REGEDIT4\n\n[K]\n\n"))


@given(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00\r\n")), st.binary(max_size=300))
def test_reg_writer_and_reader_round_trip(text: str, data: bytes) -> None:
    body = f'[K]\n"S"={reg_string(text)}\n"E"={reg_expand_sz(text, "E")}\n"B"={reg_hex(data, "B")}\n\n'
    parsed = parse_reg(_reg(body))
    assert parsed == {"K": {"S": (REG_SZ, text), "E": (REG_EXPAND_SZ, text), "B": (REG_BINARY, data)}}
    assert all(len(line) <= 80 for line in reg_hex(data, "B").split("\n"))


# --- PRF ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "written"), [
    ("Mario Rossi", "Mario Rossi"), ('"Boss"', '""Boss""'), ("'x'", "\"'x'\""), (" pad ", '" pad "'),
    ('Bob "The Builder"', 'Bob "The Builder"'), (995, "995")])
def test_prf_values_survive_the_windows_profile_reader(value: str | int, written: str) -> None:
    assert prf_value(value) == written
    assert unquote(written) == str(value)


def test_prf_refuses_booleans_and_line_breaks() -> None:
    for bad in (True, "a\nb"):
        with pytest.raises(PrfFormatError):
            prf_value(bad)


def test_prf_reader_refuses_an_account_key_without_mapping() -> None:
    text = ("[Internet Account List]\nAccount1=I_Mail\n\n[Account1]\nPOP3Prot=995\n\n"
            "[I_Mail]\nAccountType=POP3\nPOP3Port=PT_LONG,0x0104\n")
    sections = read_sections(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))
    with pytest.raises(PrfFormatError, match="POP3Prot has no mapping"):
        typed_account(sections, "Account1")


# --- the target -----------------------------------------------------------------------------------------


def _render(spec: Path | LoadedSpec, templates: Path | None = None) -> dict[str, dict[str, OutputFile]]:
    loaded = spec if isinstance(spec, LoadedSpec) else load_spec(spec)
    target = OutlookTarget(RenderContext(loaded, templates=templates))
    return {mb.email: {f.kind: f for f in target.render_account(mb)} for mb in load_accounts(loaded)}


def _spec(tmp_path: Path, extra: str = "", base: str = BASE) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(base + extra, encoding="utf-8")
    return path


def _prf(file: OutputFile) -> dict[str, dict[str, str]]:
    return read_sections(file.data)


def test_provider_guide_prf_reg_and_autodiscover() -> None:
    files = _render(EXAMPLES / "provider-pop3.yaml")["mario.rossi@esempio.it"]
    assert sorted(f.path for f in files.values()) == [
        "mario.rossi@esempio.it/outlook/autodiscover.xml", "mario.rossi@esempio.it/outlook/import-prf.reg",
        "mario.rossi@esempio.it/outlook/mario.rossi@esempio.it.prf"]
    prf = _prf(files["prf"])
    assert sorted(prf) == ["Account1", "General", "I_Mail", "Internet Account List"]
    account = typed_account(prf, "Account1")
    assert account == {
        "UniqueService": "No", "AccountName": "mario.rossi@esempio.it", "DisplayName": "Mario Rossi",
        "EmailAddress": "mario.rossi@esempio.it", "POP3Server": "pop3s.aruba.it",
        "POP3UserName": "mario.rossi@esempio.it", "POP3Port": 995, "POP3UseSSL": 1, "POP3UseSPA": 0,
        "LeaveOnServer": 0, "SMTPServer": "smtps.aruba.it", "SMTPPort": 465, "SMTPUseSSL": 1,
        "SMTPSecureConnection": 1, "SMTPUseSPA": 0, "SMTPUseAuth": 1, "SMTPAuthMethod": 0}
    assert prf["General"]["ProfileName"] == "Outlook"
    assert prf["I_Mail"]["AccountType"] == "POP3"
    # Recorded working only without a PST service and without DefaultStore (FORMATS.md §4).
    text = files["prf"].data.decode("utf-16")
    assert "Service List" not in prf and not any("DefaultStore" in keys for keys in prf.values())
    assert "MSUPST" not in text
    assert files["prf"].data.startswith(b"\xff\xfe") and "\n" not in text.replace("\r\n", "")
    reg = files["reg"].data
    assert reg.startswith(b"\xff\xfe" + "Windows Registry Editor Version 5.00\r\n\r\n".encode("utf-16-le"))
    assert parse_reg(reg) == {SETUP_KEY: {
        "ImportPRF": (REG_SZ, "C:\\ProgramData\\mailprofile\\mario.rossi@esempio.it.prf"),
        "First-Run": ("DELETE", None), "FirstRun": ("DELETE", None)}}
    answer = read_autodiscover(files["autodiscover-xml"].data)
    assert answer["DisplayName"] == "Mario Rossi"
    assert [(p["Type"], p["Server"], p["Port"], p["SSL"], p["Encryption"]) for p in answer["Protocol"]] == [
        ("POP3", "pop3s.aruba.it", 995, "on", "SSL"), ("SMTP", "smtps.aruba.it", 465, "on", "SSL"),
        ("POP3", "pop3.esempio.it", 110, "off", "None"), ("SMTP", "smtp.esempio.it", 25, "off", "None")]
    for p in answer["Protocol"]:
        assert (p["SPA"], p["DomainRequired"], p["AuthRequired"], p["LoginName"]) == (
            "off", "off", "on", "mario.rossi@esempio.it")
        assert p.get("UsePOPAuth") == ("on" if p["Type"] == "SMTP" else None)


def test_school_keeps_mail_14_days_and_maps_smtp_starttls() -> None:
    files = _render(EXAMPLES / "school.yaml")
    assert len(files) == 5
    zoe = typed_account(_prf(files["zoe.unal@staff.school.example"]["prf"]), "Account1")
    assert zoe["LeaveOnServer"] == 0x000E0003
    assert "LeaveOnServer=0x000E0003\r\n" in files["zoe.unal@staff.school.example"]["prf"].data.decode("utf-16")
    assert (zoe["POP3UserName"], zoe["DisplayName"]) == ("zunal", "Zoë Ünal")
    assert (zoe["SMTPPort"], zoe["SMTPUseSSL"], zoe["SMTPSecureConnection"]) == (587, 0, 2)
    bob = files["bob@school.example"]
    assert typed_account(_prf(bob["prf"]), "Account1")["DisplayName"] == 'Bob "The Builder" \\ O\'Neil'
    smtp = read_autodiscover(bob["autodiscover-xml"].data)["Protocol"][1]
    assert (smtp["Type"], smtp["SSL"], smtp["Encryption"]) == ("SMTP", "on", "TLS")


def test_imap_prf_uses_the_imap_mapping() -> None:
    [files] = _render(EXAMPLES / "provider-imap.yaml").values()
    prf = _prf(files["prf"])
    assert prf["Internet Account List"] == {"Account1": "IMAP_I_Mail"}
    assert prf["IMAP_I_Mail"]["AccountType"] == "IMAP"
    account = typed_account(prf, "Account1")
    assert (account["IMAPServer"], account["IMAPPort"], account["IMAPUseSSL"]) == ("imaps.aruba.it", 993, 1)
    assert "LeaveOnServer" not in account
    assert [p["Type"] for p in read_autodiscover(files["autodiscover-xml"].data)["Protocol"]] == ["IMAP", "SMTP"]


def test_outlook_settings_reach_the_reg_file(tmp_path: Path) -> None:
    spec = _spec(tmp_path, """\
  outlook:
    prf_dir: 'C:\\ProgramData\\Società "Ünal"\\Posta\\'
    force_pst_path: '%LOCALAPPDATA%\\Microsoft\\Outlook'
    disable_simplified_account_creation: true
    profile_name: Posta
""".replace("%LOCALAPPDATA%", "C:\\Users\\Public"))
    [files] = _render(spec).values()
    assert parse_reg(files["reg"].data) == {
        OUTLOOK_KEY: {"ForcePSTPath": (REG_EXPAND_SZ, "C:\\Users\\Public\\Microsoft\\Outlook")},
        SETUP_KEY: {"ImportPRF": (REG_SZ, 'C:\\ProgramData\\Società "Ünal"\\Posta\\mario.rossi@esempio.it.prf'),
                    "First-Run": ("DELETE", None), "FirstRun": ("DELETE", None),
                    "DisableOffice365SimplifiedAccountCreation": (REG_DWORD, 1)}}
    assert _prf(files["prf"])["General"]["ProfileName"] == "Posta"


def test_own_smtp_credentials_use_auth_method_1(tmp_path: Path) -> None:
    base = BASE.replace("  security: ssl\naccounts:", "  security: ssl\n  same_credentials: false\n"
                        "  username: '%EMAILLOCALPART%'\naccounts:")
    [files] = _render(_spec(tmp_path, base=base)).values()
    account = typed_account(_prf(files["prf"]), "Account1")
    assert (account["SMTPAuthMethod"], account["SMTPUserName"]) == (1, "mario.rossi")
    smtp = read_autodiscover(files["autodiscover-xml"].data)["Protocol"][1]
    assert (smtp["UsePOPAuth"], smtp["LoginName"]) == ("off", "mario.rossi")


def test_rendering_is_deterministic() -> None:
    first = _render(EXAMPLES / "school.yaml")
    second = _render(EXAMPLES / "school.yaml")
    assert {e: {k: f.data for k, f in v.items()} for e, v in first.items()} == \
           {e: {k: f.data for k, f in v.items()} for e, v in second.items()}


def test_shared_autodiscover_json_per_domain() -> None:
    files = OutlookTarget(RenderContext(load_spec(EXAMPLES / "school.yaml"))).render_shared()
    assert {f.path: json.loads(f.data) for f in files} == {
        f"domains/{d}/autodiscover.json": {
            "Protocol": "AutodiscoverV1", "Url": f"https://autodiscover.{d}/autodiscover/autodiscover.xml"}
        for d in ("school.example", "staff.school.example")}
    assert all(f.kind == "autodiscover-json" and f.account is None for f in files)


# --- lint -----------------------------------------------------------------------------------------------


def _lint(path: Path) -> list[str]:
    return [f"{p.severity}: {p}" for p in OutlookTarget(RenderContext(load_spec(path))).lint()]


def test_lint_warns_about_what_outlook_cannot_carry() -> None:
    pop3 = _lint(EXAMPLES / "provider-pop3.yaml")
    assert any("minimum TLS version (tls_min 1.2)" in w for w in pop3)
    assert any("the 2 fallback server(s) appear only in autodiscover.xml" in w for w in pop3)
    assert all(w.startswith("warning: ") for w in pop3)
    school = _lint(EXAMPLES / "school.yaml")
    assert any("SMTPSecureConnection=2" in w for w in school)
    assert any("reported not to work" in w for w in _lint(EXAMPLES / "provider-imap.yaml"))


def test_lint_warns_that_pop3_starttls_becomes_plain_text(tmp_path: Path) -> None:
    spec = _spec(tmp_path, base=BASE.replace("port: 995\n  security: ssl", "port: 110\n  security: starttls"))
    [warning] = _lint(spec)
    assert "writes POP3UseSSL=0 and Outlook would log in without encryption" in warning
    assert "spec.yaml:9:13:" in warning
    [files] = _render(spec).values()
    assert typed_account(_prf(files["prf"]), "Account1")["POP3UseSSL"] == 0
    pop = read_autodiscover(files["autodiscover-xml"].data)["Protocol"][0]
    assert (pop["SSL"], pop["Encryption"]) == ("on", "TLS")


# --- verification bites -----------------------------------------------------------------------------------


def _override(tmp_path: Path, name: str, old: str, new: str) -> Path:
    folder = tmp_path / "templates"
    (folder / "outlook").mkdir(parents=True)
    source = (packaged_templates() / "outlook" / name).read_text(encoding="utf-8")
    assert old in source
    (folder / "outlook" / name).write_text(source.replace(old, new), encoding="utf-8")
    return folder


@pytest.mark.parametrize(("name", "old", "new", "message"), [
    ("account.prf.j2", '{{ prefix }}Port={{ account[prefix ~ "Port"] | prf }}', "{{ prefix }}Port=110",
     "Account1.POP3Port: expected 995, found 110"),
    ("account.prf.j2", "{% for key, prop in mapping %}", "{% for key, prop in mapping if key != 'LeaveOnServer' %}",
     "LeaveOnServer has no mapping"),
    ("account.prf.j2", "[{{ section }}]\n", "[{{ section }}]\nDefaultStore=Service1\n", "DefaultStore"),
    ("import-prf.reg.j2", '"ImportPRF"={{ import_prf | reg_string }}', '"ImportPRF"="{{ import_prf }}"',
     "unknown escape"),
    ("import-prf.reg.j2", '"FirstRun"=-\n', "", "FirstRun: missing"),
    ("autodiscover.xml.j2", "<Port>{{ p.port }}</Port>", "<Port>995</Port>", "Protocol[1].Port: expected 465"),
    ("autodiscover.xml.j2", "<SPA>{{ p.spa }}</SPA>", "", "SPA: missing"),
    ("autodiscover.xml.j2", "{{ display_name | xml }}", "{{ display_name }}", "not a valid autodiscover answer"),
])
def test_a_template_that_writes_the_wrong_value_is_caught(tmp_path: Path, name: str, old: str, new: str,
                                                           message: str) -> None:
    templates = _override(tmp_path, name, old, new)
    spec = EXAMPLES / "provider-pop3.yaml"
    if "display_name" in old:  # unescaped: only a name with & or < breaks the XML
        spec = _spec(tmp_path, base=BASE.replace("name: Mario Rossi", "name: Tom & Jerry <TJ>"))
    with pytest.raises(VerificationError) as info:
        _render(spec, templates)
    assert message in str(info.value)


# --- Hypothesis: arbitrary names, user names and paths survive every Outlook format --------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


def _valid_text(value: str) -> bool:
    try:
        _text(value)
    except ValueError:
        return False
    return True


_BASE_LOADED = load_spec(EXAMPLES / "provider-pop3.yaml")
[_BASE_MAILBOX] = load_accounts(_BASE_LOADED)


@settings(max_examples=60, deadline=None)
@given(name=_TEXT.filter(_valid_text), user=_TEXT.filter(lambda u: bool(u) and _valid_text(u)),
       folder=_TEXT.filter(_valid_text))
@example(name='Bob "The Builder" \\ O\'Neil', user="bob", folder='Società "Ünal" & <Co>')
@example(name='"quoted"', user=" padded ", folder="😀 emoji")
@example(name="שלום עולם &<>", user="مستخدم", folder="\u202eRTL override")
def test_names_users_and_paths_round_trip_through_every_format(name: str, user: str, folder: str) -> None:
    settings_ = OutlookSettings.model_validate({"prf_dir": "C:\\" + folder, "force_pst_path": "D:\\" + folder})
    spec = _BASE_LOADED.spec
    spec = spec.model_copy(update={"targets": spec.targets.model_copy(update={"outlook": settings_})})
    loaded = dataclasses.replace(_BASE_LOADED, spec=spec)
    mailbox: Mailbox = dataclasses.replace(_BASE_MAILBOX, name=name, username=user, smtp_username=user)
    # render_account parses every file back and raises VerificationError on any difference.
    files = {f.kind: f for f in OutlookTarget(RenderContext(loaded)).render_account(mailbox)}
    account = typed_account(_prf(files["prf"]), "Account1")
    assert (account["DisplayName"], account["POP3UserName"]) == (name, user)
    reg = parse_reg(files["reg"].data)
    assert reg[SETUP_KEY]["ImportPRF"] == (REG_SZ, f"C:\\{folder}".rstrip("\\") + "\\mario.rossi@esempio.it.prf")
    assert reg[OUTLOOK_KEY]["ForcePSTPath"] == (REG_EXPAND_SZ, "D:\\" + folder)
    answer = read_autodiscover(files["autodiscover-xml"].data)
    assert answer["DisplayName"] == name
    assert {p["LoginName"] for p in answer["Protocol"]} == {user}


def test_templates_folder_is_complete() -> None:
    names = sorted(p.name for p in (packaged_templates() / "outlook").iterdir())
    assert names == ["account.prf.j2", "autodiscover.json.j2", "autodiscover.xml.j2", "import-prf.reg.j2"]


@pytest.mark.parametrize(("text", "message"), [
    ("[A]\nk=1\n[A]\nj=2\n", "line 3: section [A] appears twice"),
    ("k=1\n[A]\n", "line 1: k comes before any [section]"),
    ("[A]\njust words\n", "line 2: expected key=value, found 'just words'"),
    ("[A]\nk=1\nk=2\n", "line 3: k appears twice in its section"),
    ("[A]\nk=1\n  continued\n", "line 3: starts with blanks"),
    ("[A\nk=1\n", "line 1: a section header must end with ]"),
])
def test_prf_reader_refuses_what_windows_would_read_differently(text: str, message: str) -> None:
    with pytest.raises(PrfFormatError, match=re.escape(message)):
        read_sections(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le"))


def test_prf_reader_reads_sections_keys_and_quoted_values() -> None:
    text = '; comment\n[General]\nCustom=1\n\n[Account1]\nDisplayName=""Boss""\nEmpty=\n'
    assert read_sections(b"\xff\xfe" + text.replace("\n", "\r\n").encode("utf-16-le")) == {
        "General": {"Custom": "1"}, "Account1": {"DisplayName": '"Boss"', "Empty": ""}}


USER_NAMES = """\
provider: {id: esempio.it, display_name: Esempio, domains: [esempio.it]}
incoming: {protocol: pop3, host: pop.esempio.it, port: 995, security: ssl, username: "%EMAILLOCALPART%"}
outgoing: {host: smtp.esempio.it, port: 465, security: ssl}
imap_alternative: {protocol: imap, host: imap.esempio.it, port: 993, security: ssl, username: "%EMAILADDRESS%"}
fallbacks:
  incoming:
    - {protocol: pop3, host: pop3.esempio.it, port: 995, security: ssl}
    - {protocol: pop3, host: pop4.esempio.it, port: 995, security: ssl, username: "u-%EMAILLOCALPART%"}
  outgoing:
    - {host: smtp2.esempio.it, port: 465, security: ssl, same_credentials: false}
    - {host: smtp3.esempio.it, port: 465, security: ssl, same_credentials: false, username: "s-%EMAILLOCALPART%"}
accounts: [{name: Mario, email: mario@esempio.it}]
"""


def test_every_server_logs_in_with_the_same_user_name_in_autoconfig_and_autodiscover(tmp_path: Path) -> None:
    """A server's own `username` is kept; one without it logs in as the primary of its direction does. The
    autoconfig XML ignored the IMAP alternative's and the fallbacks' own user names, and autodiscover gave an
    unset one the default %EMAILADDRESS%: the two files disagreed on three of the six servers."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(USER_NAMES, encoding="utf-8")
    loaded = load_spec(spec)
    (mailbox,) = load_accounts(loaded)
    expected = {"pop.esempio.it": "%EMAILLOCALPART%", "imap.esempio.it": "%EMAILADDRESS%",
                "pop3.esempio.it": "%EMAILLOCALPART%", "pop4.esempio.it": "u-%EMAILLOCALPART%",
                "smtp.esempio.it": "%EMAILLOCALPART%", "smtp2.esempio.it": "%EMAILADDRESS%",
                "smtp3.esempio.it": "s-%EMAILLOCALPART%"}
    (xml,) = ThunderbirdTarget(RenderContext(loaded)).render_shared()
    doc = parse_autoconfig(xml.data)
    assert {s["hostname"]: s["username"] for s in doc["incoming"] + doc["outgoing"]} == expected
    answer = read_autodiscover(_render(loaded)["mario@esempio.it"]["autodiscover-xml"].data)
    assert {p["Server"]: p["LoginName"] for p in answer["Protocol"]} == {
        host: mailbox.expand(user) for host, user in expected.items() if host != "imap.esempio.it"}


def test_prf_dir_with_a_variable_is_warned_and_force_pst_path_may_start_with_one(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "  build: [outlook]\n  outlook:\n    prf_dir: 'C:\\Users\\%USERNAME%\\Posta'\n"
                 "    force_pst_path: '%LOCALAPPDATA%\\Microsoft\\Outlook'\n", BASE.replace("  build: [apple]\n", ""))
    plan = prepare(load_spec(spec))
    assert [(p.position and p.position.line, p.message) for p in plan.warnings if "prf_dir" in p.message] == [
        (20, "prf_dir C:\\Users\\%USERNAME%\\Posta holds a %VARIABLE%: ImportPRF is a plain string (REG_SZ) that "
             "Outlook is not known to expand, so the import would look for that folder literally")]
    [files] = _render(spec).values()
    assert parse_reg(files["reg"].data)[OUTLOOK_KEY] == {
        "ForcePSTPath": (REG_EXPAND_SZ, "%LOCALAPPDATA%\\Microsoft\\Outlook")}


@pytest.mark.parametrize("path", ["Outlook\\PST", "%LOCALAPPDATA%", "%LOCAL APPDATA%\\x", "%\\x"])
def test_force_pst_path_is_still_absolute_or_variable_rooted(path: str) -> None:
    with pytest.raises(ValueError, match="not an absolute Windows path"):
        OutlookSettings.model_validate({"force_pst_path": path})


OUTLOOK_LINT_SPEC = BASE.replace("protocol: pop3", "protocol: imap").replace("port: 995", "port: 143").replace(
    "security: ssl\noutgoing:", "security: starttls\n  authentication: encrypted-password\noutgoing:").replace(
    "port: 465\n  security: ssl", "port: 587\n  security: starttls").replace(
    "  build: [apple]\n", '  build: [outlook]\n  outlook: {prf_dir: "C:\\\\Users\\\\%USERNAME%\\\\prf"}\n') + """\
tls_min: "1.2"
fallbacks:
  outgoing: [{host: smtp2.aruba.it, port: 465, security: ssl}]
"""
OUTLOOK_WARNINGS = {
    "incoming-starttls": "Outlook's PRF has only SSL on/off for IMAP",
    "outgoing-starttls": "SMTP STARTTLS is written as SMTPSecureConnection=2",
    "tls_min": "Outlook has no setting for the minimum TLS version",
    "fallbacks": "a PRF carries one incoming and one outgoing server",
    "imap": "IMAP accounts imported from a PRF",
    "authentication": "Outlook's PRF and autodiscover have no setting for authentication: encrypted-password",
    "prf_dir": "prf_dir C:\\Users\\%USERNAME%\\prf holds a %VARIABLE%",
}


@pytest.mark.parametrize("kinds,expected", [
    (None, set(OUTLOOK_WARNINGS)),
    (["prf"], {"incoming-starttls", "outgoing-starttls", "tls_min", "fallbacks", "imap", "authentication"}),
    (["reg"], {"tls_min", "imap", "prf_dir"}),
    # README's "--kinds autoconfig-xml,autodiscover-xml" web build, and what `serve` answers with.
    (["autoconfig-xml", "autodiscover-xml"], {"tls_min", "authentication"}),
    (["autodiscover-json"], set()),
])
def test_outlook_warnings_follow_kinds(tmp_path: Path, kinds: list[str] | None, expected: set[str]) -> None:
    """A build told about a PRF it does not write (or a .reg's ImportPRF path it does not write) sends the admin
    after a problem that is not in the output; the Thunderbird target already follows --kinds."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(OUTLOOK_LINT_SPEC, encoding="utf-8")
    warnings = [p.message for p in prepare(load_spec(spec), kinds=kinds).warnings if p.severity == "warning"]
    found = {key for key, start in OUTLOOK_WARNINGS.items() if any(m.startswith(start) for m in warnings)}
    assert found == expected
