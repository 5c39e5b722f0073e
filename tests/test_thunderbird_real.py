"""The real Thunderbird reads what we generate.

Thunderbird looks for defaults/pref/autoconfig.js, the .cfg, isp/<domain>.xml and distribution/policies.json
in its *install* directory, which a test must not touch. So each test builds a private install: a copy of the
small `thunderbird-bin` launcher (it finds libxul.so and omni.ja beside its own resolved path) plus symlinks
to everything else, with its own defaults/pref, isp/ and distribution/. The .cfg is tests/thunderbird/
harness.js (after our generated mozilla.cfg, when that is what is tested): after final-ui-startup it dumps the
account manager, the SMTP servers and Thunderbird's own autoconfig reading of isp/*.xml to JSON and quits.

Every run is headless, with a private HOME and a fresh profile; the spec's servers are never contacted
(nothing is checked at startup before the harness quits, and the test specs point at 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from generator.accounts import Mailbox, load_accounts
from generator.render import differences
from generator.spec import load_spec
from generator.targets.base import RenderContext
from generator.targets.thunderbird import ThunderbirdTarget
from tests.conftest import EXAMPLES, require, require_binary

pytestmark = pytest.mark.thunderbird

HARNESS = Path(__file__).parent / "thunderbird" / "harness.js"
COMMON_JS = Path(__file__).parent / "thunderbird" / "common.js"  # appended to every harness .cfg
SPECS = [EXAMPLES / "provider-pop3.yaml", EXAMPLES / "provider-imap.yaml", EXAMPLES / "school.yaml"]
TIMEOUT = 60  # seconds per Thunderbird start; a start takes about one second

# Independent of the target's own tables on purpose: these are Thunderbird's numbers (FORMATS.md §2).
SOCKET = {"none": 0, "starttls": 2, "ssl": 3}
AUTH = {"none": 1, "password": 3, "encrypted-password": 4, "gssapi": 5, "ntlm": 6, "oauth2": 10}
XML_AUTH = {"password": 3, "encrypted-password": 4, "gssapi": 5, "ntlm": 6}


def _install_dir() -> Path:
    binary = Path(require_binary("thunderbird", "thunderbird"))
    candidates = [Path("/usr/lib/thunderbird"), binary.resolve().parent]
    found = next((c for c in candidates if (c / "thunderbird-bin").is_file() and (c / "omni.ja").is_file()), None)
    require(found is not None, "Thunderbird install directory (with thunderbird-bin and omni.ja) not found")
    assert found is not None
    return found


def make_install(root: Path, cfg: str, isp: dict[str, bytes] | None = None,
                 policies: bytes | None = None) -> Path:
    source = _install_dir()
    install = root / "install"
    install.mkdir()
    for entry in source.iterdir():
        if entry.name not in ("thunderbird", "thunderbird-bin", "defaults", "isp", "distribution"):
            (install / entry.name).symlink_to(entry)
    shutil.copy2(source / "thunderbird-bin", install / "thunderbird-bin")
    defaults = install / "defaults"
    defaults.mkdir()
    for entry in (source / "defaults").iterdir():
        if entry.name != "pref":
            (defaults / entry.name).symlink_to(entry.resolve() if entry.is_symlink() else entry)
    (defaults / "pref").mkdir()
    for entry in (source / "defaults" / "pref").iterdir():
        shutil.copy2(entry, defaults / "pref" / entry.name)
    # The activation file as the admin would install it, only pointing at the test's .cfg.
    (defaults / "pref" / "autoconfig.js").write_text(
        'pref("general.config.filename", "harness.cfg");\npref("general.config.obscure_value", 0);\n')
    (install / "harness.cfg").write_text(cfg + "\n" + COMMON_JS.read_text(encoding="utf-8"), encoding="utf-8")
    (install / "isp").mkdir()
    for domain, data in (isp or {}).items():
        (install / "isp" / f"{domain}.xml").write_bytes(data)
    if policies is not None:
        (install / "distribution").mkdir()
        (install / "distribution" / "policies.json").write_bytes(policies)
    return install


def run_thunderbird(install: Path, profile: Path, home: Path, domains: list[str] | None = None) -> dict[str, Any]:
    out = home / "dump.json"
    out.unlink(missing_ok=True)
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HARNESS_OUT": str(out),
           "HARNESS_DOMAINS": ",".join(domains or []), "MOZ_HEADLESS": "1", "LANG": "C.UTF-8",
           "XDG_RUNTIME_DIR": str(home), "MOZ_CRASHREPORTER_DISABLE": "1"}
    result = subprocess.run([str(install / "thunderbird-bin"), "--headless", "--profile", str(profile),
                             "--no-remote"], env=env, capture_output=True, timeout=TIMEOUT, check=False)
    assert out.exists(), f"the harness wrote nothing (exit {result.returncode}): {result.stderr[-2000:]!r}"
    dump: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert "error" not in dump, dump
    return dump


def _mozilla_host(host: str) -> str:
    """Thunderbird's hostname prefs and autoconfig hold an IPv6 address without the spec's brackets."""
    return host.removeprefix("[").removesuffix("]")


def expected_accounts(target: ThunderbirdTarget, mailbox: Mailbox) -> dict[str, Any]:
    spec = target.spec
    inc, out, tb = spec.incoming, spec.outgoing, spec.targets.thunderbird
    account: dict[str, Any] = {
        "key": "account1", "type": inc.protocol, "hostname": _mozilla_host(mailbox.host(inc)), "port": inc.port,
        "socketType": SOCKET[inc.security], "authMethod": AUTH[inc.authentication], "username": mailbox.username,
        "name": mailbox.description or mailbox.email,
        "identities": [{"email": mailbox.email, "fullName": mailbox.name,
                        "organization": spec.provider.organization or "", "smtpServerKey": "smtp1"}]}
    account.update(loginAtStartUp=tb.login_at_startup, doBiff=True, biffMinutes=tb.check_interval_minutes)
    if inc.protocol == "imap":
        account["serverDirectory"] = inc.imap_path_prefix or ""
    if inc.protocol == "pop3":
        account.update(leaveMessagesOnServer=inc.keep_on_server, deleteByAgeFromServer=inc.keep_days is not None)
        if inc.keep_days is not None:
            account["numDaysToLeaveOnServer"] = inc.keep_days
    return {
        "accounts": [account, {"key": "account2", "type": "none", "hostname": "Local Folders",
                               "username": "nobody", "name": "Local Folders"}],
        "defaultAccount": "account1",
        "smtp": [{"key": "smtp1", "type": "smtp", "hostname": _mozilla_host(mailbox.host(out)), "port": out.port,
                  "socketType": SOCKET[out.security], "authMethod": AUTH[out.authentication],
                  "username": mailbox.smtp_username}],
        "tlsMin": {"1.2": 3, "1.3": 4}[spec.tls_min],
    }


def observed(dump: dict[str, Any]) -> dict[str, Any]:
    """The part of a dump the spec decides (Local Folders: only what we wrote)."""
    accounts = [dict(a) for a in dump["accounts"]]
    for a in accounts:
        if a["type"] == "none":
            for key in ("port", "socketType", "authMethod", "identities"):
                a.pop(key, None)
        if a.get("deleteByAgeFromServer") is False:
            a.pop("numDaysToLeaveOnServer")  # Thunderbird's default (7), unused while deletion by age is off
    return {"accounts": accounts, "defaultAccount": dump["defaultAccount"], "smtp": dump["smtp"],
            "tlsMin": dump["tlsMin"]}


def _cases() -> list[Any]:
    cases = []
    for spec in SPECS:
        loaded = load_spec(spec)
        for mailbox in load_accounts(loaded):
            cases.append(pytest.param(spec, mailbox.email, id=f"{spec.stem}-{mailbox.email}"))
    return cases


def _render(spec: Path, email: str) -> tuple[ThunderbirdTarget, Mailbox, dict[str, bytes]]:
    loaded = load_spec(spec)
    target = ThunderbirdTarget(RenderContext(loaded))
    mailbox = next(m for m in load_accounts(loaded) if m.email == email)
    return target, mailbox, {f.kind: f.data for f in target.render_account(mailbox)}


def _start_twice(install: Path, tmp_path: Path, user_js: bytes | None = None) -> tuple[dict[str, Any], Path]:
    home, profile = tmp_path / "home", tmp_path / "profile"
    home.mkdir()
    profile.mkdir()
    if user_js is not None:
        (profile / "user.js").write_bytes(user_js)
    first = run_thunderbird(install, profile, home)
    second = run_thunderbird(install, profile, home)
    assert second == first, "a second start changed the accounts (e.g. a duplicate Local Folders)"
    return first, profile


@pytest.mark.parametrize(("spec", "email"), _cases())
def test_user_js_gives_exactly_the_spec_accounts(spec: Path, email: str, tmp_path: Path) -> None:
    target, mailbox, files = _render(spec, email)
    install = make_install(tmp_path, "// harness only\n" + HARNESS.read_text())
    dump, profile = _start_twice(install, tmp_path, files["user.js"])
    assert differences(expected_accounts(target, mailbox), observed(dump)) == []
    assert not dump["tlsMinLocked"]
    prefs_js = (profile / "prefs.js").read_text(encoding="utf-8")
    assert "account3" not in prefs_js and "password" not in prefs_js.lower()


@pytest.mark.parametrize(("spec", "email"), _cases())
def test_mozilla_cfg_gives_exactly_the_spec_accounts(spec: Path, email: str, tmp_path: Path) -> None:
    target, mailbox, files = _render(spec, email)
    cfg = files["mozilla.cfg"].decode("utf-8") + "\n" + HARNESS.read_text()
    install = make_install(tmp_path, cfg)
    dump, _ = _start_twice(install, tmp_path)
    assert differences(expected_accounts(target, mailbox), observed(dump)) == []
    assert dump["tlsMinLocked"] == ("tls_min" in target.spec.targets.thunderbird.enforce)


@pytest.mark.parametrize("spec", [EXAMPLES / "school.yaml", EXAMPLES / "provider-pop3.yaml"],
                         ids=lambda p: p.stem)
def test_policies_json_gives_the_spec_accounts(spec: Path, tmp_path: Path) -> None:
    loaded = load_spec(spec)
    email = load_accounts(loaded)[-1].email
    target, mailbox, files = _render(spec, email)
    install = make_install(tmp_path, "// harness only\n" + HARNESS.read_text(), policies=files["policies.json"])
    dump, _ = _start_twice(install, tmp_path)
    assert differences(expected_accounts(target, mailbox), observed(dump)) == []
    assert dump["tlsMinLocked"]  # SSLVersionMin always locks


def test_autoconfig_xml_read_by_thunderbird(tmp_path: Path) -> None:
    isp: dict[str, bytes] = {}
    expected: dict[str, Any] = {}
    for spec in SPECS:
        loaded = load_spec(spec)
        target = ThunderbirdTarget(RenderContext(loaded))
        s = loaded.spec
        for f in target.render_shared():
            domain = f.path.split("/")[1]
            isp[domain] = f.data

            def server(srv: Any, user: str, incoming: bool) -> dict[str, Any]:
                values: dict[str, Any] = {"hostname": _mozilla_host(srv.host), "port": srv.port,
                                          "socketType": SOCKET[srv.security],
                                          "auth": XML_AUTH[srv.authentication] if incoming or srv.authentication
                                          != "none" else 1, "username": user,
                                          "type": srv.protocol if incoming else "smtp"}
                if incoming and srv.protocol == "pop3":
                    values["leaveMessagesOnServer"] = srv.keep_on_server
                    if srv.keep_days is not None:
                        values["daysToLeaveMessagesOnServer"] = srv.keep_days
                return values

            # Plain-text fallbacks only on request (Thunderbird for Android rejects them); the IMAP alternative
            # right after the primary.
            plain = s.targets.thunderbird.autoconfig_plain_fallbacks
            incoming = [s.incoming, *([s.imap_alternative] if s.imap_alternative else []),
                        *(f for f in s.fallbacks.incoming if plain or f.security != "none")]
            outgoing = [s.outgoing, *(f for f in s.fallbacks.outgoing if plain or f.security != "none")]
            out_user = [s.incoming.username if o.same_credentials else o.username for o in outgoing]
            expected[domain] = {
                "id": s.provider.id, "displayName": s.provider.display_name, "domains": s.provider.domains,
                "incoming": [server(i, i.username, True) for i in incoming],
                "outgoing": [server(o, u, False) for o, u in zip(outgoing, out_user, strict=True)]}
    install = make_install(tmp_path, "// harness only\n" + HARNESS.read_text(), isp=isp)
    home, profile = tmp_path / "home", tmp_path / "profile"
    home.mkdir()
    profile.mkdir()
    dump = run_thunderbird(install, profile, home, domains=sorted(isp))
    got = dump["autoconfig"]
    for domain in expected:
        for srv in got[domain]["incoming"]:
            if srv["type"] != "pop3":  # AccountConfig defaults these for every type; only POP3 uses them
                srv.pop("leaveMessagesOnServer")
                srv.pop("daysToLeaveMessagesOnServer")
            elif "daysToLeaveMessagesOnServer" not in expected[domain]["incoming"][got[domain]["incoming"]
                                                                                   .index(srv)]:
                srv.pop("daysToLeaveMessagesOnServer")
        for srv in got[domain]["outgoing"]:
            srv.pop("leaveMessagesOnServer", None)
            srv.pop("daysToLeaveMessagesOnServer", None)
    assert differences(expected, got) == []


ODD = """\
provider: {id: xn--bcher-kva.example, display_name: "Bücher & Co", organization: "O'Brien <Mail>",
           domains: [bücher.example]}
incoming: {protocol: imap, host: imap.%EMAILDOMAIN%, port: 143, security: starttls, authentication: encrypted-password,
           imap_path_prefix: INBOX., username: "%EMAILLOCALPART%"}
outgoing: {host: "[2001:db8::26]", port: 2525, security: none, allow_insecure: true, authentication: ntlm,
           same_credentials: false, username: "smtp+%EMAILADDRESS%"}
fallbacks:
  incoming: [{protocol: imap, host: "[2001:db8::27]", port: 993, security: ssl}]
tls_min: "1.3"
targets:
  thunderbird: {login_at_startup: false, check_interval_minutes: 7, enforce: [tls_min, outgoing]}
accounts:
  - {name: "Zoë \\ \\"Q\\"", email: zoe@bücher.example, username: zoe-login, description: "Posta di Zoë"}
"""


def test_odd_options_reach_thunderbird_exactly(tmp_path: Path) -> None:
    """Options the examples leave out (IMAP path prefix, STARTTLS, CRAM-MD5/NTLM, own SMTP user, an IPv6 SMTP
    host, an IDN domain, per-account user name and description, check interval, TLS 1.3), through user.js,
    mozilla.cfg and config-v1.1.xml into Thunderbird."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(ODD, encoding="utf-8")
    loaded = load_spec(spec)
    target = ThunderbirdTarget(RenderContext(loaded))
    (mailbox,) = load_accounts(loaded)
    files = {f.kind: f.data for f in target.render_account(mailbox)}
    (xml,) = [f.data for f in target.render_shared()]
    expected = expected_accounts(target, mailbox)
    assert expected["smtp"][0]["hostname"] == "2001:db8::26"
    for kind in ("user.js", "mozilla.cfg"):
        root = tmp_path / kind
        root.mkdir()
        cfg = (files[kind].decode("utf-8") + "\n" if kind == "mozilla.cfg" else "// harness only\n") + \
            HARNESS.read_text()
        install = make_install(root, cfg, isp={"xn--bcher-kva.example": xml})
        home, profile = root / "home", root / "profile"
        home.mkdir()
        profile.mkdir()
        if kind == "user.js":
            (profile / "user.js").write_bytes(files["user.js"])
        dump = run_thunderbird(install, profile, home, domains=["xn--bcher-kva.example"])
        assert differences(expected, observed(dump)) == [], kind
        auto = dump["autoconfig"]["xn--bcher-kva.example"]
        assert [(s["hostname"], s["port"]) for s in auto["incoming"]] == [("imap.%EMAILDOMAIN%", 143),
                                                                       ("2001:db8::27", 993)]
        assert [(s["hostname"], s["socketType"], s["auth"], s["username"]) for s in auto["outgoing"]] == [
            ("2001:db8::26", 0, 6, "smtp+%EMAILADDRESS%")]


def test_thunderbird_cannot_hold_an_ipv6_incoming_host(tmp_path: Path) -> None:
    """Why the spec's IPv6 incoming host is an error for Thunderbird: with or without brackets, Thunderbird
    replaces it with server1.invalid (if a later Thunderbird keeps it, the lint error can go)."""
    for host in ("[2001:db8::25]", "2001:db8::25"):
        root = tmp_path / host.strip("[]").replace(":", "_") / ("b" if host.startswith("[") else "p")
        root.mkdir(parents=True)
        install = make_install(root, "// harness only\n" + HARNESS.read_text())
        home, profile = root / "home", root / "profile"
        home.mkdir()
        profile.mkdir()
        _, _, files = _render(EXAMPLES / "provider-imap.yaml", "giulia.bianchi@esempio.it")
        user_js = re.sub(r'(server1\.hostname", )"[^"]*"', lambda m, host=host: m[1] + json.dumps(host),
                         files["user.js"].decode("utf-8"))
        (profile / "user.js").write_text(user_js, encoding="utf-8")
        dump = run_thunderbird(install, profile, home)
        assert [a["hostname"] for a in dump["accounts"] if a["type"] == "imap"] == ["server1.invalid"]
