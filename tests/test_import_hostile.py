"""Hostile inputs: each is refused with a located error before it can cost time or memory, never with a
traceback. (Memory is measured with tracemalloc; no timings are asserted.)"""

from __future__ import annotations

import contextlib
import os
import random
import re
import sqlite3
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.errors import SpecError
from generator.importers import import_sources
from generator.importers.emit import needs_quotes, scalar
from generator.yamlload import load_yaml
from tests.conftest import ROOT

PROFILES = ROOT / "tests" / "fixtures" / "import" / "profiles"
SIGNED = PROFILES / "automx2-imap.signed-der.mobileconfig"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE clientConfig [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
 <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
]>
<clientConfig version="1.1"><emailProvider id="x"><displayName>&d;</displayName></emailProvider></clientConfig>
"""
PLIST_HEAD = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
              b'"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n')


def _refused(tmp_path: Path, name: str, data: bytes) -> list[str]:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SpecError) as caught:
        import_sources([path])
    return [str(p) for p in caught.value.problems]


def _peak(work: Callable[[], object]) -> int:
    tracemalloc.start()
    with contextlib.suppress(SpecError):
        work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_xml_bomb_is_refused_at_its_dtd(tmp_path: Path) -> None:
    assert _refused(tmp_path, "bomb.xml", BILLION_LAUGHS) == [
        f"{tmp_path / 'bomb.xml'}:2:24: the XML has a DTD (<!DOCTYPE ...>), which this importer refuses: DTDs carry "
        "entity definitions (XML bombs) and external references — remove the <!DOCTYPE> line; autoconfig files and "
        "profiles do not need it"]
    assert _peak(lambda: import_sources([tmp_path / "bomb.xml"])) < 2 << 20  # nothing expanded


def test_xml_bomb_inside_a_plist_doctype_is_refused_at_the_first_entity(tmp_path: Path) -> None:
    bomb = BILLION_LAUGHS.replace(b"clientConfig [", b"plist [").split(b"]>")[0] + b"]>\n<plist>&d;</plist>\n"
    assert _refused(tmp_path, "bomb.mobileconfig", bomb) == [
        f"{tmp_path / 'bomb.mobileconfig'}:3:13: the XML declares or uses the entity 'a', which this importer "
        "refuses — remove the entity (write the text itself)"]


def test_xxe_is_refused_and_nothing_is_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = (PLIST_HEAD.replace(b'.dtd">', f'.dtd" [<!ENTITY x SYSTEM "file://{secret}">]>'.encode())
           + b"<plist><dict><key>PayloadType</key><string>&x;</string></dict></plist>\n")
    problems = _refused(tmp_path, "xxe.mobileconfig", xxe)
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / 'xxe.mobileconfig'}:2:")  # col: path length
    assert problems[0].endswith(": the XML declares or uses the entity 'x', which this importer refuses — remove the "
                                "entity (write the text itself)")
    assert "TOP-SECRET" not in problems[0]


def test_external_dtd_in_autoconfig_is_refused(tmp_path: Path) -> None:
    data = b'<?xml version="1.0"?>\n<!DOCTYPE clientConfig SYSTEM "http://127.0.0.1:9/x.dtd">\n<clientConfig/>\n'
    assert _refused(tmp_path, "ext.xml", data)[0].startswith(f"{tmp_path / 'ext.xml'}:2:")


def test_undeclared_entity_under_apples_doctype_is_refused(tmp_path: Path) -> None:
    data = PLIST_HEAD + b"<plist><dict><key>a</key><string>&ext;</string></dict></plist>\n"
    assert _refused(tmp_path, "skip.mobileconfig", data) == [
        f"{tmp_path / 'skip.mobileconfig'}:3:39: the XML declares or uses the entity 'ext', which this importer "
        "refuses — remove the entity (write the text itself)"]


@pytest.mark.parametrize(("name", "head", "limit"), [
    ("big.xml", b'<?xml version="1.0"?>\n<clientConfig>', "1,048,576"),
    ("big.mobileconfig", PLIST_HEAD + b"<plist>", "4,194,304"),
    ("prefs.js", b'user_pref("mail.accountmanager.accounts", "a");\n', "8,388,608"),
    ("big.sqlite", b"SQLite format 3\x00", "67,108,864"),
])
def test_a_100_mb_file_is_refused_before_it_is_read(tmp_path: Path, name: str, head: bytes, limit: str) -> None:
    path = tmp_path / name
    with path.open("wb") as handle:  # sparse: 100 MB on paper, a few bytes on disk
        handle.write(head)
        handle.truncate(100 * 1024 * 1024)
    what = {"big.xml": "the autoconfig file", "big.mobileconfig": "the profile", "prefs.js": "the prefs file",
            "big.sqlite": "the database"}[name]
    with pytest.raises(SpecError) as caught:
        import_sources([path])
    message = str(caught.value.problems[0])
    assert message.startswith(f"{path}:1:1: {what} is 104,857,600 bytes, more than the {limit}")
    assert _peak(lambda: import_sources([path])) < 1 << 20  # refused on its size, not read


@pytest.mark.parametrize("source", ["automx2-imap.signed-der.mobileconfig", "automx2-imap.signed-ber.mobileconfig"])
def test_truncated_cms_is_a_located_error_at_every_cut(tmp_path: Path, source: str) -> None:
    data = (PROFILES / source).read_bytes()
    assert _refused(tmp_path, "cut.mobileconfig", data[: len(data) // 2])[0].startswith(
        f"{tmp_path / 'cut.mobileconfig'}:1:1: not a complete CMS SignedData (")
    for cut in range(40, len(data), 97):  # every kind of truncation: header, certificates, content, signature
        path = tmp_path / f"cut{cut}.mobileconfig"
        path.write_bytes(data[:cut])
        with pytest.raises(SpecError) as caught:
            import_sources([path])
        assert str(caught.value.problems[0]).startswith(f"{path}:"), cut


def test_a_profile_with_thousands_of_payloads_is_refused(tmp_path: Path) -> None:
    payload = (b"<dict><key>PayloadType</key><string>com.apple.wifi.managed</string><key>PayloadVersion</key>"
               b"<integer>1</integer></dict>\n")
    data = (PLIST_HEAD + b"<plist><dict>\n<key>PayloadType</key><string>Configuration</string>\n"
            b"<key>PayloadContent</key>\n<array>\n" + payload * 5000 + b"</array></dict></plist>\n")
    assert len(data) < 1 << 20
    assert _refused(tmp_path, "many.mobileconfig", data) == [
        f"{tmp_path / 'many.mobileconfig'}:6:1: the profile has 5,000 payloads; this importer reads at most 200 — "
        "split the profile, or export only the mail payloads"]


def test_deep_nesting_and_element_floods_are_refused(tmp_path: Path) -> None:
    deep = PLIST_HEAD + b"<plist>" + b"<array>" * 5000 + b"</array>" * 5000 + b"</plist>"
    assert _refused(tmp_path, "deep.mobileconfig", deep)[0].endswith(
        "the XML has elements nested more than 32 deep; real files have a few hundred — check that this is the "
        "right file")
    flood = b"<clientConfig>" + b"<x/>" * 60_000 + b"</clientConfig>"
    assert "the XML has more than 50,000 elements" in _refused(tmp_path, "flood.xml", flood)[0]


def test_huge_integer_literal_is_refused(tmp_path: Path) -> None:
    data = PLIST_HEAD + b"<plist><integer>" + b"9" * 100_000 + b"</integer></plist>"
    assert _refused(tmp_path, "int.mobileconfig", data) == [
        f"{tmp_path / 'int.mobileconfig'}:3:8: <integer> '999999999999999999999999999999' is not an integer — "
        "write a whole number"]


@pytest.mark.parametrize(("name", "data", "message"), [
    ("bad.xml", b"<clientConfig><emailProvider id='x'>\n<domain>x</domain>\n</clientConfig>",
     ":3:3: not well-formed XML: mismatched tag — fix the XML (an unescaped & or <, a missing closing tag, a "
     "truncated file?)"),
    ("port.xml", b"<clientConfig><emailProvider id='x.example'><domain>x.example</domain>\n<incomingServer "
     b"type='imap'><hostname>h</hostname>\n<port>99999</port></incomingServer><outgoingServer type='smtp'>"
     b"<hostname>h</hostname><port>25</port></outgoingServer></emailProvider></clientConfig>",
     ":3:1: <port> '99999' is not a TCP port — write a number from 1 to 65535"),
    ("string-port.mobileconfig", PLIST_HEAD + b"<plist><dict><key>PayloadType</key><string>Configuration</string>"
     b"<key>PayloadContent</key><array><dict><key>PayloadType</key><string>com.apple.mail.managed</string>\n"
     b"<key>EmailAccountType</key><string>EmailTypeIMAP</string><key>EmailAddress</key><string>a@b.example"
     b"</string><key>IncomingMailServerHostName</key><string>h</string>\n<key>IncomingMailServerPortNumber</key>"
     b"<string>993</string></dict></array></dict></plist>",
     ":5:40: IncomingMailServerPortNumber must be an <integer>, got '993' — write it as an <integer> (a port "
     "written as <string> breaks installs)"),
    ("prefs.js", b'user_pref("mail.accountmanager.accounts", "account1");\nuser_pref("x", \\t);\n',
     ":2:16: Thunderbird would reject this pref: expected a name, found '\\t);\\x0a' — fix the line "
     "(Thunderbird drops such prefs silently)"),
    ("encrypted.mobileconfig", PLIST_HEAD + b"<plist><dict><key>EncryptedPayloadContent</key><data>AAAA</data>"
     b"</dict></plist>", ":3:48: the payloads are encrypted to one device (EncryptedPayloadContent) — export the "
     "profile unencrypted from the MDM or Apple Configurator"),
    ("random.bin", b"\x00\x01garbage", ":1:1: not a source mailprofile can import — give a Mozilla autoconfig XML, an "
     "Apple .mobileconfig, an automx2 SQLite database, Thunderbird prefs (prefs.js, user.js, mozilla.cfg, "
     "policies.json) or an Outlook .prf"),
    ("fake.sqlite", b"SQLite format 3\x00" + b"\xff" * 4000, ":1:1: the database cannot be read: file is not a "
     "database — check that the file is complete and is automx2's database"),
])
def test_bad_sources_give_located_errors(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    problems = _refused(tmp_path, name, data)
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path / name}{message}"), problems


def test_a_value_the_model_refuses_across_keys_is_located_in_the_source(tmp_path: Path) -> None:
    # A check across a section's keys (imap_path_prefix on a POP3 server) had no position: "incoming: ...".
    golden = ROOT / "tests" / "golden" / "provider-imap" / "giulia.bianchi@esempio.it" / "apple"
    data = (golden / "giulia.bianchi@esempio.it.mobileconfig").read_bytes().replace(
        b"<string>EmailTypeIMAP</string>",
        b"<string>EmailTypePOP</string><key>IncomingMailServerIMAPPathPrefix</key><string>INBOX</string>")
    assert _refused(tmp_path, "pop.mobileconfig", data) == [
        f"{tmp_path / 'pop.mobileconfig'}:13:4: incoming: imap_path_prefix applies to imap only; remove it for pop3 "
        "— fix the source, or import it and edit the spec by hand"]


def test_other_sqlite_databases_are_named_as_such(tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE notes (id INTEGER)")
    con.close()
    with pytest.raises(SpecError) as caught:
        import_sources([db])
    assert str(caught.value.problems[0]) == (f"{db}:1:1: the database has no table 'provider' (tables: notes) — give "
                                             "automx2's database (automx2 2019 or later)")


def test_cli_exit_2_every_problem_no_traceback_nothing_written(tmp_path: Path) -> None:
    (tmp_path / "bomb.xml").write_bytes(BILLION_LAUGHS)
    out = tmp_path / "spec.yaml"
    result = CliRunner().invoke(main, ["import", str(tmp_path / "bomb.xml"), str(tmp_path / "missing.xml"),
                                       "-o", str(out)])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0].startswith(f"error: {tmp_path / 'bomb.xml'}:2:24: the XML has a DTD")
    assert lines[1] == f"error: {tmp_path / 'missing.xml'}:1:1: cannot read the file: No such file or directory — " \
                       "check the path"
    assert lines[2] == "2 errors: nothing was written"
    assert "Traceback" not in result.output and not out.exists()


@pytest.mark.parametrize("text", ["on", "no", "y", "N", "Off", "0110", "1:30", "2026-01-01", "~", "null", "1e3",
                                  "0x1F", "0o17", "0995", "%EMAILADDRESS%", "a: b", "x #y", "- item", "'q'", " lead",
                                  "yes", "line\u2028break", "tab\there", "&anchor", "*alias", "!tag", "@at", "`tick",
                                  "c1\x80\x9f", "del\x7f", "bom\ufeff", "nonchar\ufffe"])
def test_yaml_scalars_that_yaml_1_1_would_misread_are_quoted(text: str) -> None:
    import yaml

    assert needs_quotes(text)
    assert yaml.safe_load(f"k: {scalar(text)}") == {"k": text}
    assert load_yaml(f"k: {scalar(text)}", "x.yaml").data == {"k": text}  # and the spec loader reads it back


@pytest.mark.parametrize("text", ["Aruba Mail", "pop3.%EMAILDOMAIN%", "Zoë Ünal", "imaps.aruba.it", "D'Amico, Luca"])
def test_ordinary_text_stays_plain(text: str) -> None:
    assert not needs_quotes(text) and scalar(text) == text


def test_mutated_sources_fail_only_with_located_errors(tmp_path: Path) -> None:
    """Seeded mutation fuzzing of every fixture kind (byte flips, cuts, stray markup): an import either works
    or raises SpecError naming the file; never another exception (found: asn1crypto's lazy parsing, unknown
    XML encodings, non-string keys in binary plists)."""
    rng = random.Random(20261130)
    fixtures = ROOT / "tests" / "fixtures" / "import"
    sources = sorted(p for p in fixtures.rglob("*") if p.suffix in (".xml", ".mobileconfig", ".js", ".prf"))
    golden = ROOT / "tests" / "golden" / "provider-pop3" / "mario.rossi@esempio.it"
    sources += [golden / "thunderbird" / "policies.json", golden / "thunderbird" / "mozilla.cfg",
                golden / "outlook" / "autodiscover.xml", golden / "outlook" / "mario.rossi@esempio.it.prf"]
    stray = [b"<", b">", b"&", b'"', b"\x00", b"<dict>", b"</array>", b"<integer>x</integer>", b"=", b"[", b"{"]
    for i in range(200):
        source = sources[i % len(sources)]
        data = bytearray(source.read_bytes())
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            roll = rng.random()
            if roll < 0.4:
                data[at] = rng.randrange(256)
            elif roll < 0.7:
                del data[at:at + rng.randint(1, 40)]
            else:
                data[at:at] = rng.choice(stray)
        path = tmp_path / f"m{i}{source.suffix}"
        path.write_bytes(bytes(data))
        try:
            import_sources([path])
        except SpecError as exc:
            # The file itself, never a pseudo path such as 'x.prf [Account1]': where inside goes to .detail.
            assert all(p.position.file == str(path) if p.position else str(path) in p.message
                       for p in exc.problems), (source.name, [str(p) for p in exc.problems])


def _bplist_of_shared_arrays(levels: int, width: int) -> bytes:
    """A binary plist where array k holds `width` references to array k+1 (the last holds a string): tiny on
    disk, width**levels paths for a naive walk (Apple's format allows shared references)."""
    objects = []
    for level in range(levels):
        objects.append(bytes([0xAF, 0x10, width]) + bytes([level + 1]) * width)  # array, 1-byte refs
    objects.append(b"\x51x")  # the string "x"
    body, offsets = b"bplist00", []
    for obj in objects:
        offsets.append(len(body))
        body += obj
    table = len(body)
    body += bytes(offsets) if max(offsets) < 256 else b"".join(o.to_bytes(2, "big") for o in offsets)
    size = 1 if max(offsets) < 256 else 2
    return body + bytes(6) + bytes([size, 1]) + len(objects).to_bytes(8, "big") + (0).to_bytes(8, "big") \
        + table.to_bytes(8, "big")


def test_binary_plist_with_shared_references_is_walked_once(tmp_path: Path) -> None:
    import plistlib

    data = _bplist_of_shared_arrays(levels=12, width=100)  # 100**12 paths, 1.3 KB
    assert plistlib.loads(data)[0][0][0][0][0][0][0][0][0][0][0][0] == "x"
    assert _refused(tmp_path, "shared.mobileconfig", data) == [
        f"{tmp_path / 'shared.mobileconfig'}:1:1 (the top level): the profile is not a <dict> — give an Apple "
        "configuration profile"]


def _binary_profile(tmp_path: Path, name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    """The automx2 fixture profile, changed, as a binary plist (which carries any character)."""
    import plistlib

    profile = plistlib.loads((PROFILES / "automx2-imap.mobileconfig").read_bytes())
    change(profile)
    path = tmp_path / name
    path.write_bytes(plistlib.dumps(profile, fmt=plistlib.FMT_BINARY))
    return path


def test_characters_yaml_refuses_are_escaped_in_values_and_comments(tmp_path: Path) -> None:
    # U+0080-U+009F, DEL and U+FFFE are valid text in a plist (and in XML 1.0) but stop YAML's reader: written
    # raw into the spec they made import exit 70 ("internal error") at its own proof.
    def change(profile: dict[str, Any]) -> None:
        mail = profile["PayloadContent"][0]
        mail["EmailAccountName"] = "Zo\x80ë\x9f"
        mail["Odd\x81Key\ufffe"] = "x"  # an unknown key: named in a comment
        profile["ConsentText"] = {"en": "line one\nline\x85two\x90"}

    result = import_sources([_binary_profile(tmp_path, "c1.mobileconfig", change)])
    spec = load_yaml(result.text, "spec.yaml").data
    assert spec["accounts"][0]["name"] == "Zo\x80ë\x9f"
    assert spec["targets"]["apple"]["consent_text"] == {"en": "line one\nline\x85two\x90"}
    assert "  # Odd\\u0081Key\\ufffe is not carried by the spec\n" in result.text


def test_keys_from_a_source_cannot_write_yaml_into_the_spec(tmp_path: Path) -> None:
    # ConsentText's keys (languages) were written unquoted: a profile could add any section to the imported
    # spec (here passwords.include, which would put the signing passphrase into every rebuilt profile), and
    # `no` came back as the boolean false for a YAML 1.1 reader.
    injected = "en: hi\npasswords:\n  include: true\n  from_env: MAILPROFILE_SIGN_PASSPHRASE\n#"
    consent = {injected: "a", "no": "b", "1e3": "c", "a: b #c": "d", "default": "e"}

    def change(profile: dict[str, Any]) -> None:
        profile["ConsentText"] = consent
        profile.pop("PayloadDescription", None)
        profile.pop("PayloadDisplayName", None)

    result = import_sources([_binary_profile(tmp_path, "keys.mobileconfig", change)])
    spec = load_yaml(result.text, "spec.yaml").data
    assert "passwords" not in spec
    assert spec["targets"]["apple"]["consent_text"] == consent
    import yaml

    assert yaml.safe_load(result.text)["targets"]["apple"]["consent_text"] == consent  # YAML 1.1 too


@pytest.mark.parametrize(("make", "kind"), [
    (lambda p: os.mkfifo(p), "a named pipe (FIFO)"),
    (None, "a device"),
])
def test_only_regular_files_are_read(tmp_path: Path, make: Callable[[Path], None] | None, kind: str) -> None:
    # A FIFO without a writer made import wait for ever; a pipe (`import <(curl …)`) lost its first 4 KiB to
    # the sniffing and then read as "not well-formed XML"; /dev/null read as "not a source".
    path = tmp_path / "source.xml" if make is not None else Path("/dev/null")
    if make is not None:
        make(path)
    # A subprocess, so that a regression shows as a failure (the timeout) instead of a hung test run.
    result = subprocess.run([sys.executable, "-m", "generator", "import", "--", str(path)], capture_output=True,
                            text=True, timeout=120, cwd=ROOT, stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        f"error: {path}:1:1: not a regular file but {kind} — save the source to a file first (e.g. curl -o "
        "source.xml URL) and import that file")



def test_a_folder_is_refused_by_the_library_too(tmp_path: Path) -> None:
    # The CLI's argument type refuses a folder first; import_sources (the library) says what it is as well.
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(SpecError) as caught:
        import_sources([folder])
    assert [str(p) for p in caught.value.problems] == [
        f"{folder}:1:1: not a regular file but a folder — save the source to a file first (e.g. curl -o source.xml "
        "URL) and import that file"]


_GOLDEN_IMAP = ROOT / "tests" / "golden" / "provider-imap"


@pytest.mark.parametrize("source", ["domains/esempio.it/config-v1.1.xml", "giulia.bianchi@esempio.it/outlook/"
                                    "autodiscover.xml", "giulia.bianchi@esempio.it/apple/giulia.bianchi@esempio.it"
                                    ".mobileconfig"])
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_xml_imports_as_its_utf8_original(tmp_path: Path, source: str, codec: str) -> None:
    # Notepad's "Unicode" is UTF-16: such XML was "not a source mailprofile can import" (the kind was sniffed
    # from UTF-8 bytes only), though the XML parser reads it. With a BOM (utf-16) and without (XML 1.0 F.1).
    original = _GOLDEN_IMAP / source
    text = original.read_text(encoding="utf-8")
    wide = tmp_path / original.name
    wide.write_bytes(re.sub(r'encoding="[Uu][Tt][Ff]-8"', 'encoding="UTF-16"', text, count=1).encode(codec))
    assert wide.read_bytes()[:2] != original.read_bytes()[:2]
    assert import_sources([wide]).text.replace(str(wide), "SOURCE") == \
        import_sources([original]).text.replace(str(original), "SOURCE")


@pytest.mark.parametrize(("data", "message"), [
    ('user_pref("mail.accountmanager.accounts", "account1");\n'.encode("utf-16"),
     "the file is UTF-16 text that is not XML — save it as UTF-8 (Thunderbird reads prefs.js, user.js, mozilla.cfg "
     "and policies.json only as UTF-8)"),
    ("<clientConfig/>".encode("utf-32"), "the file is UTF-32, which no source format uses — save it as UTF-8"),
    ('<?xml version="1.0" encoding="UTF-8"?><clientConfig/>'.encode("utf-16"),
     "not well-formed XML: encoding specified in XML declaration is incorrect — make <?xml … encoding=…?> say how "
     "the file is saved (an editor saved it as UTF-16 while it says UTF-8?), or save it as UTF-8"),
])
def test_other_wide_text_says_how_to_save_it(tmp_path: Path, data: bytes, message: str) -> None:
    problems = _refused(tmp_path, "wide.txt", data)
    assert len(problems) == 1 and problems[0].split(": ", 1)[1] == message, problems


@pytest.mark.parametrize(("key", "value", "message"), [
    ("ConsentText", ["en"], "(ConsentText): ConsentText must be a <dict>, got ['en'] — write it as a <dict>, the "
     "type Apple's profile reference gives it"),
    ("ConsentText", {"en": 1}, "(ConsentText.en): ConsentText.en must be a <string>, got 1 — write the consent "
     "text as a <string>"),
    ("PayloadRemovalDisallowed", "true", "(PayloadRemovalDisallowed): PayloadRemovalDisallowed must be <true/> or "
     "<false/>, got 'true' — write it as <true/> or <false/>, the type Apple's profile reference gives it"),
    ("PayloadScope", "system", "(PayloadScope): PayloadScope must be User or System, got 'system' — write User or "
     "System"),
    ("TargetDeviceType", True, "(TargetDeviceType): TargetDeviceType must be an <integer>, got True — write it as "
     "an <integer>, the type Apple's profile reference gives it"),
    ("RemovalDate", "2030-01-01", "(RemovalDate): RemovalDate must be <date>, got '2030-01-01' — write it as "
     "<date>, the type Apple's profile reference gives it"),
    ("PayloadDisplayName", 7, "(PayloadDisplayName): PayloadDisplayName must be a <string>, got 7 — write it as a "
     "<string>, the type Apple's profile reference gives it"),
])
def test_profile_keys_of_the_wrong_type_are_refused(tmp_path: Path, key: str, value: Any, message: str) -> None:
    # These were left out of the spec without a word (ConsentText as an array, a "true" string) or turned
    # into text (a <date> consent became '2020-01-01 00:00:00').
    def change(profile: dict[str, Any]) -> None:
        profile[key] = value

    path = _binary_profile(tmp_path, "typed.mobileconfig", change)
    with pytest.raises(SpecError) as caught:
        import_sources([path])
    assert [str(p) for p in caught.value.problems] == [f"{path}:1:1 {message}"]


def test_a_sources_control_characters_do_not_reach_the_terminal(tmp_path: Path) -> None:
    # An unknown key named with ESC sequences was echoed raw in its warning: a hostile profile could set the
    # terminal's title, clear the screen or forge lines of output. Every problem is one escaped line.
    def change(profile: dict[str, Any]) -> None:
        profile["PayloadContent"][0]["X\x1b]0;pwned\x07\x1b[2J\nerror: fake"] = "v"

    path = _binary_profile(tmp_path, "esc.mobileconfig", change)
    result = CliRunner().invoke(main, ["import", str(path)])
    assert result.exit_code == 0
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert (f"warning: {path}:1:1 (PayloadContent[0].X\\x1b]0;pwned\\x07\\x1b[2J\\x0aerror: fake): "
            "X\\x1b]0;pwned\\x07\\x1b[2J\\x0aerror: fake is not carried by the spec") in result.output.splitlines()
