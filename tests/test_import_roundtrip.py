"""Round trip: build every example, import each produced format, build again.

The files of the imported format must come out byte-identical, and the re-imported spec may differ from
the original only in the fields that format does not carry: LOSSES lists them, example by example.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.accounts import load_accounts
from generator.build import SignRequest, build, prepare
from generator.errors import SpecError
from generator.importers import import_sources
from generator.model import user_template
from generator.spec import load_spec
from tests.conftest import EXAMPLES
from tests.test_signing import PKI, pki  # noqa: F401  (the test PKI fixture)
from tests.test_spec_errors import BASE

# The formats imported, by their manifest kind, and the target that writes each: an example that leaves the
# target out of targets.build (delivery.yaml builds only apple, guide and message) has nothing to import.
FORMATS = {
    "autoconfig-xml": "thunderbird",
    "mobileconfig": "apple",
    "user.js": "thunderbird",
    "mozilla.cfg": "thunderbird",
    "policies.json": "thunderbird",
    "prf": "outlook",
    "autodiscover-xml": "outlook",
}

# What each format cannot carry, per example: the spec fields (dotted) that come back different. Anything
# not listed must come back exactly, and everything listed must really differ (the list stays honest).
# "accounts"/"accounts_csv" for school: the CSV comes back as inline accounts (the addresses are compared).
INLINE = {"accounts", "accounts_csv"}
# Only config-v1.1.xml lists imap_alternative (after the POP3 primary); no format carries the QR switch (the
# QR code is an output, not a source).
POP3_ANDROID = {"imap_alternative", "targets.thunderbird.android_qr"}
LOSSES: dict[tuple[str, str], set[str]] = {
    # autoconfig XML: no mailboxes (an example account is written), no organisation, no TLS minimum, no Apple
    # profile settings.
    ("provider-imap", "autoconfig-xml"): {"accounts", "provider.organization"},
    # provider-pop3 also loses its plain-text fallbacks: config-v1.1.xml leaves them out unless
    # targets.thunderbird.autoconfig_plain_fallbacks (test_plain_fallbacks_round_trip_when_the_xml_has_them).
    ("provider-pop3", "autoconfig-xml"): {"accounts", "provider.organization", "targets.apple.description",
                                          "targets.apple.identifier_prefix", "fallbacks.incoming",
                                          "fallbacks.outgoing", "targets.thunderbird.android_qr"},
    ("school", "autoconfig-xml"): INLINE | {"provider.organization", "targets.apple.consent_text", "tls_min"},
    # Apple profiles: one server each way (no fallbacks, no IMAP alternative), no short name, no documentation
    # link, no "keep on server", no TLS minimum. The provider id comes back from the PayloadUUID.
    ("provider-imap", "mobileconfig"): {"provider.short_name"},
    ("provider-pop3", "mobileconfig"): {"provider.short_name", "provider.documentation_url", "fallbacks.incoming",
                                        "fallbacks.outgoing"} | POP3_ANDROID,
    ("school", "mobileconfig"): INLINE | {"incoming.keep_on_server", "incoming.keep_days", "tls_min"},
    # delivery builds apple, guide and message: its profile carries no guide or message settings (delivery.*,
    # each mailbox's language and notify address, targets.build) and, as above, no fallbacks, documentation
    # link or "keep on server".
    ("delivery", "mobileconfig"): {"accounts", "delivery", "targets.build", "fallbacks.incoming",
                                   "fallbacks.outgoing", "incoming.keep_on_server", "incoming.keep_days",
                                   "provider.documentation_url"},
    # Thunderbird prefs: no provider id (guessed from the domain), short name, documentation link, fallbacks or
    # Apple settings.
    ("provider-imap", "user.js"): {"provider.id", "provider.short_name"},
    ("provider-pop3", "user.js"): {"provider.id", "provider.short_name", "provider.documentation_url",
                                   "fallbacks.incoming", "fallbacks.outgoing", "targets.apple.description",
                                   "targets.apple.identifier_prefix"} | POP3_ANDROID,
    ("school", "user.js"): INLINE | {"targets.apple.consent_text"},
    # Outlook PRF: no provider at all (id and name become the domain), no fallbacks, no TLS minimum, no Apple
    # settings; STARTTLS on the incoming side would be a guess (no example has it).
    ("provider-imap", "prf"): {"provider.id", "provider.display_name", "provider.short_name",
                               "provider.organization"},
    ("provider-pop3", "prf"): {"provider.id", "provider.display_name", "provider.short_name",
                               "provider.organization", "provider.documentation_url", "fallbacks.incoming",
                               "fallbacks.outgoing", "targets.apple.description", "targets.apple.identifier_prefix"}
    | POP3_ANDROID,
    ("school", "prf"): INLINE | {"provider.display_name", "provider.organization", "targets.apple.consent_text",
                                 "tls_min"},
    # autodiscover.xml: what the PRF lacks, and "keep on server" too; the fallbacks come back with the
    # account's domain in place of %EMAILDOMAIN% (one file is one mailbox).
    ("provider-imap", "autodiscover-xml"): {"provider.id", "provider.display_name", "provider.short_name",
                                            "provider.organization"},
    ("provider-pop3", "autodiscover-xml"): {"provider.id", "provider.display_name", "provider.short_name",
                                            "provider.organization", "provider.documentation_url",
                                            "fallbacks.incoming", "fallbacks.outgoing", "targets.apple.description",
                                            "targets.apple.identifier_prefix"} | POP3_ANDROID,
    ("school", "autodiscover-xml"): INLINE | {"provider.display_name", "provider.organization", "tls_min",
                                              "targets.apple.consent_text", "incoming.keep_on_server",
                                              "incoming.keep_days"},
}
# Mailboxes a format cannot name: autodiscover.xml has no address, only the LoginName, and Zoë's is 'zunal'.
LOST_MAILBOXES = {("school", "autodiscover-xml"): {"zoe.unal@staff.school.example"}}
for _example in ("provider-imap", "provider-pop3", "school"):  # the same prefs as user.js
    LOSSES[(_example, "mozilla.cfg")] = LOSSES[(_example, "policies.json")] = LOSSES[(_example, "user.js")]
# Every format each example builds (an example that leaves a target out has no case for its formats).
CASES = [(spec, kind) for spec in sorted(EXAMPLES.glob("*.yaml")) for kind in FORMATS
         if FORMATS[kind] in load_spec(spec).spec.targets.build]


def _build(spec: Path, out: Path) -> dict[str, bytes]:
    build(prepare(load_spec(spec)), out)
    return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _manifest(out: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    return manifest


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else k))
        return out
    return {prefix: value}


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    a, b = _flat(before), _flat(after)
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}


def _covered(field: str, losses: set[str]) -> bool:
    return any(field == loss or field.startswith(loss + ".") for loss in losses)


def test_every_listed_loss_belongs_to_a_case() -> None:
    assert set(LOSSES) <= {(spec.stem, kind) for spec, kind in CASES}


@pytest.mark.parametrize(("spec", "kind"), CASES, ids=[f"{s.stem}-{k}" for s, k in CASES])
def test_build_import_build_gives_the_same_files(tmp_path: Path, spec: Path, kind: str) -> None:
    first = _build(spec, tmp_path / "a")
    manifest = _manifest(tmp_path / "a")
    sources = sorted(tmp_path / "a" / f["path"] for f in manifest["files"] if f["kind"] == kind)
    assert sources, f"{spec.stem} builds the {FORMATS[kind]} target but wrote no {kind}"
    result = import_sources(sources)
    imported = tmp_path / "b" / "spec.yaml"
    imported.parent.mkdir()
    imported.write_text(result.text, encoding="utf-8")
    second = _build(imported, tmp_path / "b" / "out")
    lost = LOST_MAILBOXES.get((spec.stem, kind), set())
    for path in sources:
        name = str(path.relative_to(tmp_path / "a"))
        if name.split("/")[0] in lost:
            assert name not in second  # the mailbox is not in the imported spec, so neither is its file
            continue
        assert second.get(name) == first[name], f"{name} differs after build -> import -> build"

    original = load_spec(spec).spec.model_dump(mode="json")
    again = load_spec(imported).spec.model_dump(mode="json")
    if kind != "autoconfig-xml":  # formats with mailboxes carry the accounts, CSV or inline
        assert sorted(a["email"] for a in again["accounts"]) == sorted(
            m.email for m in load_accounts(load_spec(spec)) if m.email not in lost)
    changed = _changed(original, again)
    expected = LOSSES.get((spec.stem, kind), set())
    unexpected = {f for f in changed if not _covered(f, expected)}
    assert not unexpected, f"{kind} should carry {sorted(unexpected)}"
    # The list of losses is honest too: each one listed really is lost for this example.
    assert {loss for loss in expected if any(_covered(f, {loss}) for f in changed)} == expected


def test_plain_fallbacks_round_trip_when_the_xml_has_them(tmp_path: Path) -> None:
    """provider-pop3 with autoconfig_plain_fallbacks: its config-v1.1.xml lists POP3, the IMAP alternative and
    the plain-text fallbacks; the import gives all three back (and the switch), so the rebuilt XML is the same."""
    text = (EXAMPLES / "provider-pop3.yaml").read_text(encoding="utf-8")
    assert text.count("  thunderbird:\n") == 1
    (tmp_path / "spec.yaml").write_text(text.replace("  thunderbird:\n", "  thunderbird:\n"
                                                      "    autoconfig_plain_fallbacks: true\n"), encoding="utf-8")
    xml = "domains/esempio.it/config-v1.1.xml"
    first = _build(tmp_path / "spec.yaml", tmp_path / "a")
    assert first[xml].count(b"<socketType>plain</socketType>") == 2  # the fallbacks are in the file
    result = import_sources([tmp_path / "a" / xml])
    (tmp_path / "imported.yaml").write_text(result.text, encoding="utf-8")
    original = load_spec(tmp_path / "spec.yaml").spec
    again = load_spec(tmp_path / "imported.yaml").spec
    assert again.targets.thunderbird.autoconfig_plain_fallbacks is True
    assert again.imap_alternative == original.imap_alternative
    assert again.fallbacks == original.fallbacks
    assert _build(tmp_path / "imported.yaml", tmp_path / "b")[xml] == first[xml]
    assert "# the source lists 2 plain-text fallback server(s): kept in config-v1.1.xml" in result.text


@pytest.mark.parametrize("fallback_user", ["%EMAILLOCALPART%", "%EMAILADDRESS%", "legacy-%EMAILLOCALPART%"])
def test_each_servers_user_name_round_trips_through_the_xml(tmp_path: Path, fallback_user: str) -> None:
    """config-v1.1.xml writes each server's own user name: the import gives back every one of them, whether
    it is the primary's, the default or its own, and the rebuilt XML is the same."""
    text = (EXAMPLES / "provider-imap.yaml").read_text(encoding="utf-8")
    text = text.replace("  authentication: password\n\noutgoing:", "  authentication: password\n"
                        "  username: \"%EMAILLOCALPART%\"\n\noutgoing:")
    text += ("fallbacks:\n  incoming:\n    - {protocol: imap, host: imap2.aruba.it, port: 143, security: starttls, "
             f"username: \"{fallback_user}\"}}\n")
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    xml = "domains/esempio.it/config-v1.1.xml"
    first = _build(tmp_path / "spec.yaml", tmp_path / "a")
    result = import_sources([tmp_path / "a" / xml])
    (tmp_path / "imported.yaml").write_text(result.text, encoding="utf-8")
    again = load_spec(tmp_path / "imported.yaml").spec
    assert again.incoming.username == "%EMAILLOCALPART%"
    assert [user_template(again, s) for s in again.fallbacks.incoming] == [fallback_user]  # as the targets read it
    assert _build(tmp_path / "imported.yaml", tmp_path / "b")[xml] == first[xml]


@pytest.mark.parametrize("kind", ["autoconfig-xml", "autodiscover-xml"])
def test_ipv6_hosts_round_trip(tmp_path: Path, kind: str) -> None:
    """The discovery files carry an IPv6 host without brackets (what Thunderbird reads there); the import
    writes it back in the spec's bracketed form, and the rebuilt file is the same."""
    text = (EXAMPLES / "provider-imap.yaml").read_text(encoding="utf-8")
    # The outgoing server: Thunderbird cannot use an IPv6 incoming host at all (the build refuses it).
    text = text.replace("host: smtps.aruba.it", "host: \"[2001:db8::25]\"")
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    first = _build(tmp_path / "spec.yaml", tmp_path / "a")
    [source] = [f["path"] for f in _manifest(tmp_path / "a")["files"] if f["kind"] == kind]
    assert b"<hostname>2001:db8::25</hostname>" in first[source] or b"<Server>2001:db8::25</Server>" in first[source]
    result = import_sources([tmp_path / "a" / source])
    (tmp_path / "imported.yaml").write_text(result.text, encoding="utf-8")
    assert load_spec(tmp_path / "imported.yaml").spec.outgoing.host == "[2001:db8::25]"
    assert _build(tmp_path / "imported.yaml", tmp_path / "b")[source] == first[source]


def test_signed_profile_round_trip(tmp_path: Path, pki: PKI) -> None:  # noqa: F811
    """build --sign-* -> import the signed profile (verified) -> build gives the same profile."""
    spec = EXAMPLES / "provider-pop3.yaml"
    build(prepare(load_spec(spec), sign=SignRequest(pki.leaf, pki.leaf_key, pki.chain)), tmp_path / "a")
    profile = tmp_path / "a" / "mario.rossi@esempio.it" / "apple" / "mario.rossi@esempio.it.mobileconfig"
    signed = profile.with_name("mario.rossi@esempio.it.signed.mobileconfig")
    result = import_sources([signed], verify=True)
    assert "verified: the profile is intact and signed with the key of CN=Profile Signer" in result.info[0]
    imported = tmp_path / "spec.yaml"
    imported.write_text(result.text, encoding="utf-8")
    again = _build(imported, tmp_path / "b")
    assert again["mario.rossi@esempio.it/apple/mario.rossi@esempio.it.mobileconfig"] == profile.read_bytes()


# Strings an admin may really have, and strings YAML 1.1 would misread if they were written plain.
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85\ufffe\uffff"),
                min_size=1, max_size=30).filter(lambda s: s.strip() == s)
_TRAPS = ["yes", "no", "on", "Off", "y", "N", "~", "null", "0110", "1:30", "1e3", "2026-01-01", "- x", "a: b",
          "x #y", "#z", "&a", "*b", "!c", "@d", "`e", "'f'", '"g"', "[h]", "{i}", "j,k", "? l", "| m", "> n",
          'Bob "The Builder" O\'Neil', "Zoë Ünal", "田中 太郎 📧", "محمد", "\\back\\slash", "100%"]


@settings(max_examples=25, deadline=None)
@given(name=st.one_of(st.sampled_from(_TRAPS), _TEXT), org=st.one_of(st.sampled_from(_TRAPS), _TEXT),
       provider=st.one_of(st.sampled_from(_TRAPS), _TEXT), user=st.one_of(st.sampled_from(_TRAPS), _TEXT))
def test_any_text_survives_build_import_build(tmp_path_factory: pytest.TempPathFactory, name: str, org: str,
                                              provider: str, user: str) -> None:
    tmp = tmp_path_factory.mktemp("h")

    def q(value: str) -> str:  # JSON is valid YAML flow syntax: an exact way to put any string in a spec
        return json.dumps(value, ensure_ascii=False)

    text = BASE.replace("  display_name: Aruba Mail\n", f"  display_name: {q(provider)}\n  organization: {q(org)}\n")
    text = text.replace("name: Mario Rossi\n", f"name: {q(name)}\n    username: {q(user)}\n")
    (tmp / "spec.yaml").write_text(text, encoding="utf-8")
    try:
        first = _build(tmp / "spec.yaml", tmp / "a")
    except SpecError:
        return  # refused by the model with a message (tested elsewhere): nothing to import
    profile = "mario.rossi@esempio.it/apple/mario.rossi@esempio.it.mobileconfig"
    result = import_sources([tmp / "a" / profile])
    (tmp / "imported.yaml").write_text(result.text, encoding="utf-8")
    spec = load_spec(tmp / "imported.yaml").spec  # the text loads with the strict loader (no YAML 1.1 traps)
    assert spec.accounts[0].name == name
    assert spec.provider.organization == (None if org == provider else org)  # the default is not written
    assert spec.provider.display_name == provider
    assert _build(tmp / "imported.yaml", tmp / "b")[profile] == first[profile]


@pytest.mark.parametrize("console", ["intune", "jamf", "workspace-one"])
@pytest.mark.parametrize("spec", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_mdm_profiles_round_trip(tmp_path: Path, spec: Path, console: str) -> None:
    """build --mdm -> import the generic profiles (console variables back to placeholders) -> build --mdm."""
    build(prepare(load_spec(spec), mdm=console), tmp_path / "a")
    sources = sorted((tmp_path / "a").glob(f"domains/*/apple/*.{console}.mobileconfig"))
    assert sources
    result = import_sources(sources)
    imported = tmp_path / "spec.yaml"
    imported.write_text(result.text, encoding="utf-8")
    build(prepare(load_spec(imported), mdm=console), tmp_path / "b")
    for path in sources:
        name = path.relative_to(tmp_path / "a")
        assert (tmp_path / "b" / name).read_bytes() == path.read_bytes(), f"{name} differs"


# Server settings across protocols, ports, TLS modes and methods: build -> import each format -> the same
# values (compared as parsed settings, not bytes). What a format cannot say comes back different, and only
# that: SERVER_LOSSES lists it per case, with whether the import warns (a guess it names) or cannot know (the
# build already warned that the target cannot carry the setting, so the file holds another one).
SERVER_CASES: dict[str, dict[str, Any]] = {
    "imap-starttls-localpart": {
        "incoming": {"protocol": "imap", "host": "imap.example.com", "port": 143, "security": "starttls",
                     "username": "%EMAILLOCALPART%"},
        "outgoing": {"host": "smtp.example.com", "port": 587, "security": "starttls"}},
    "pop3-odd-ports-ntlm-cram": {
        "incoming": {"protocol": "pop3", "host": "pop.example.com", "port": 10995, "security": "ssl",
                     "authentication": "ntlm"},
        "outgoing": {"host": "smtp.example.com", "port": 10465, "security": "ssl",
                     "authentication": "encrypted-password", "same_credentials": False, "username": "smtp-only"}},
    "imap-plain-smtp-open": {
        "incoming": {"protocol": "imap", "host": "mail.example.com", "port": 143, "security": "none",
                     "allow_insecure": True},
        "outgoing": {"host": "mail.example.com", "port": 25, "security": "none", "authentication": "none"}},
    "starttls-on-odd-ports": {
        "incoming": {"protocol": "imap", "host": "mail.example.com", "port": 10143, "security": "starttls"},
        "outgoing": {"host": "mail.example.com", "port": 10587, "security": "starttls"}},
    "per-account-user": {
        "incoming": {"protocol": "pop3", "host": "pop.example.com", "port": 110, "security": "starttls",
                     "authentication": "encrypted-password"},
        "outgoing": {"host": "smtp.example.com", "port": 465, "security": "ssl"},
        "account_username": "zoe-login"},
}
# (case, format) -> {field: (value after the round trip, the import's warning | "build-warned")}
SERVER_LOSSES: dict[tuple[str, str], dict[str, tuple[Any, str]]] = {
    # Outlook has no CRAM-MD5: the PRF and the answer say "password" (check warns at build time).
    ("pop3-odd-ports-ntlm-cram", "prf"): {"outgoing.authentication": ("password", "build-warned")},
    ("pop3-odd-ports-ntlm-cram", "autodiscover-xml"): {"outgoing.authentication": ("password", "build-warned")},
    ("per-account-user", "prf"): {"incoming.authentication": ("password", "build-warned")},
    # A PRF's POP3UseSSL=0 is plain text or STARTTLS: read as starttls (the safer guess), named.
    ("imap-plain-smtp-open", "prf"): {
        "incoming.security": ("starttls", "IMAPUseSSL=0 means plain text or STARTTLS"),
        "incoming.allow_insecure": (False, "IMAPUseSSL=0 means plain text or STARTTLS")},
    # policies.json cannot hold authMethod 1 (none): Thunderbird then uses its default, a password.
    ("imap-plain-smtp-open", "policies.json"): {"outgoing.authentication": ("password", "build-warned"),
                                                "outgoing.allow_insecure": (True, "Thunderbird sends this password "
                                                                            "in plain text: allow_insecure")},
    # Apple's UseSSL=true does not say SSL or STARTTLS: off the usual ports the guess is ssl, named.
    ("starttls-on-odd-ports", "mobileconfig"): {
        "incoming.security": ("ssl", "guessed ssl from port 10143: Apple's IncomingMailServerUseSSL=true"),
        "outgoing.security": ("ssl", "guessed ssl from port 10587: Apple's OutgoingMailServerUseSSL=true")},
    # The per-domain XML has no mailboxes, so no per-account user name (the example account is said).
    ("per-account-user", "autoconfig-xml"): {"incoming.username": ("%EMAILADDRESS%", "the sources list no "
                                                                                      "mailboxes")},
}
# autodiscover.xml names the mailbox only through a LoginName that is its address.
SERVER_UNNAMED = {("imap-starttls-localpart", "autodiscover-xml"), ("per-account-user", "autodiscover-xml")}
_SERVER_FIELDS = ("protocol", "host", "port", "security", "authentication", "username", "allow_insecure",
                  "same_credentials")


def _server_values(spec: Any) -> dict[str, Any]:
    out = {}
    for side in ("incoming", "outgoing"):
        server = getattr(spec, side)
        for name in _SERVER_FIELDS:
            if hasattr(server, name):
                out[f"{side}.{name}"] = getattr(server, name)
    if spec.accounts and spec.accounts[0].username is not None:
        out["incoming.username"] = spec.accounts[0].username
    if spec.outgoing.same_credentials:
        del out["outgoing.username"]  # unused with the same credentials
    return out


@pytest.mark.parametrize("kind", sorted(FORMATS))
@pytest.mark.parametrize("case", sorted(SERVER_CASES))
def test_server_settings_survive_import_in_every_format(tmp_path: Path, case: str, kind: str) -> None:
    setup = SERVER_CASES[case]
    account: dict[str, Any] = {"name": "Zoë \"Z\" <O'Neil> & Co", "email": "zoe@example.com"}
    if "account_username" in setup:
        account["username"] = setup["account_username"]
    spec_data = {"provider": {"id": "example.com", "display_name": "Example & <Mail>", "domains": ["example.com"]},
                 "incoming": setup["incoming"], "outgoing": setup["outgoing"], "accounts": [account]}
    (tmp_path / "spec.yaml").write_text(json.dumps(spec_data, ensure_ascii=False), encoding="utf-8")
    build(prepare(load_spec(tmp_path / "spec.yaml")), tmp_path / "a")
    sources = sorted(tmp_path / "a" / f["path"] for f in _manifest(tmp_path / "a")["files"] if f["kind"] == kind)
    assert sources
    if (case, kind) in SERVER_UNNAMED:
        with pytest.raises(SpecError, match="no source names a mail domain"):
            import_sources(sources)
        return
    result = import_sources(sources)
    (tmp_path / "imported.yaml").write_text(result.text, encoding="utf-8")
    again = load_spec(tmp_path / "imported.yaml").spec
    before, after = _server_values(load_spec(tmp_path / "spec.yaml").spec), _server_values(again)
    losses = SERVER_LOSSES.get((case, kind), {})
    assert {k: after.get(k) for k in before if after.get(k) != before[k]} == {k: v for k, (v, _) in losses.items()}
    warned = " ".join(w.message for w in result.warnings)
    for field, (_, how) in losses.items():  # a guess or a loss the import can see is a warning, never silent
        assert how == "build-warned" or how in warned, f"{field}: no warning '{how}' in {warned}"
    if kind != "autoconfig-xml":
        assert again.accounts[0].name == account["name"]
