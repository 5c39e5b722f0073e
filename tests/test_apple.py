"""Apple target: values, identity, schema validity, escaping round-trips, and proof that verification bites."""

from __future__ import annotations

import plistlib
import shutil
import stat
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.accounts import load_accounts
from generator.apple_schema import validate_profile
from generator.build import build, prepare
from generator.errors import SpecError, VerificationError
from generator.render import packaged_templates
from generator.spec import load_spec
from generator.targets.apple import AppleTarget, parse_plist
from generator.targets.base import UUID_NAMESPACE, RenderContext, stable_uuid
from tests.conftest import EXAMPLES
from tests.test_spec_errors import BASE


def _profile(tmp_path: Path, text: str) -> dict:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text, encoding="utf-8")
    loaded = load_spec(spec)
    [mailbox] = load_accounts(loaded)
    [out] = AppleTarget(RenderContext(loaded)).render_account(mailbox)
    return plistlib.loads(out.data)


def test_provider_guide_profile_carries_the_guide_settings() -> None:
    loaded = load_spec(EXAMPLES / "provider-pop3.yaml")
    [mailbox] = load_accounts(loaded)
    [out] = AppleTarget(RenderContext(loaded)).render_account(mailbox)
    profile = plistlib.loads(out.data)
    [mail] = profile["PayloadContent"]
    assert out.path == "mario.rossi@esempio.it/apple/mario.rossi@esempio.it.mobileconfig"
    assert (mail["EmailAccountType"], mail["IncomingMailServerHostName"], mail["IncomingMailServerPortNumber"],
            mail["IncomingMailServerUseSSL"]) == ("EmailTypePOP", "pop3s.aruba.it", 995, True)
    assert (mail["OutgoingMailServerHostName"], mail["OutgoingMailServerPortNumber"],
            mail["OutgoingMailServerUseSSL"]) == ("smtps.aruba.it", 465, True)
    assert mail["IncomingMailServerUsername"] == mail["OutgoingMailServerUsername"] == "mario.rossi@esempio.it"
    assert mail["IncomingMailServerAuthentication"] == mail["OutgoingMailServerAuthentication"] == "EmailAuthPassword"
    assert mail["OutgoingPasswordSameAsIncomingPassword"] is True
    assert "IncomingPassword" not in mail and "OutgoingPassword" not in mail
    assert (profile["PayloadType"], profile["PayloadVersion"], profile["PayloadScope"]) == ("Configuration", 1, "User")
    assert profile["PayloadIdentifier"] == "it.esempio.mail.mario.rossi@esempio.it"
    assert mail["PayloadIdentifier"] == "it.esempio.mail.mario.rossi@esempio.it.mail"
    assert profile["PayloadOrganization"] == "Esempio S.r.l."


@pytest.mark.parametrize("spec", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_profile_is_valid_against_apples_schema(spec: Path, tmp_path: Path) -> None:
    build(prepare(load_spec(spec), ["apple"]), tmp_path / "out")
    profiles = sorted((tmp_path / "out").rglob("*.mobileconfig"))
    assert profiles
    for path in profiles:
        profile = plistlib.loads(path.read_bytes())
        assert validate_profile(profile) == []
        [mail] = profile["PayloadContent"]
        assert type(mail["IncomingMailServerPortNumber"]) is int
        assert type(mail["OutgoingMailServerPortNumber"]) is int
        assert type(mail["IncomingMailServerUseSSL"]) is bool
        assert mail["PayloadVersion"] == 1 and profile["PayloadVersion"] == 1


def test_schema_validator_catches_what_breaks_installs() -> None:
    loaded = load_spec(EXAMPLES / "provider-imap.yaml")
    [mailbox] = load_accounts(loaded)
    profile = AppleTarget(RenderContext(loaded)).expected_profile(mailbox)
    mail = profile["PayloadContent"][0]
    mail["OutgoingMailServerPortNumber"] = "465"  # mailcow #2296
    mail["IncomingMailServerUseSSL"] = 1
    mail["EmailAccountType"] = "EmailTypePOP3"
    del mail["OutgoingMailServerHostName"]
    profile["PayloadVersion"] = 2
    assert validate_profile(profile) == [
        "profile: PayloadVersion=2 is not one of [1]",
        "PayloadContent[0]: required key OutgoingMailServerHostName is missing",
        "PayloadContent[0]: EmailAccountType='EmailTypePOP3' is not one of ['EmailTypeIMAP', 'EmailTypePOP']",
        "PayloadContent[0]: IncomingMailServerUseSSL must be <boolean>, found int",
        "PayloadContent[0]: OutgoingMailServerPortNumber must be <integer>, found str",
    ]


def test_identity_is_stable_and_distinct_per_account() -> None:
    loaded = load_spec(EXAMPLES / "school.yaml")
    target = AppleTarget(RenderContext(loaded))
    profiles = [target.expected_profile(m) for m in load_accounts(loaded)]
    again = [target.expected_profile(m) for m in load_accounts(load_spec(EXAMPLES / "school.yaml"))]
    uuids = [p["PayloadUUID"] for p in profiles] + [p["PayloadContent"][0]["PayloadUUID"] for p in profiles]
    assert len(set(uuids)) == len(uuids)
    assert [p["PayloadUUID"] for p in profiles] == [p["PayloadUUID"] for p in again]
    # UUIDv5 from provider id + address, upper-case. Pinned: a refactor must never change deployed identities.
    namespace = uuid.uuid5(uuid.NAMESPACE_DNS, "mailprofile.generator")
    derived = uuid.uuid5(namespace, "apple\x1fschool.example\x1fanna.verdi@school.example\x1fprofile")
    assert profiles[0]["PayloadUUID"] == str(derived).upper() == "A0D8AF4B-4353-5384-B29D-C8B32706FB76"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.characters(exclude_categories=["Cs"])), min_size=1, max_size=4))
def test_stable_uuid_is_uuid5(parts: list[str]) -> None:
    """stable_uuid writes UUIDv5 out by hand (for speed); it must give uuid.uuid5's value for any name."""
    expected = str(uuid.uuid5(UUID_NAMESPACE, "\x1f".join(parts))).upper()
    assert stable_uuid(*parts) == expected


@pytest.mark.parametrize(("override", "expected"), [("", True), ("  apple:\n    starttls_uses_ssl: false\n", False)])
def test_starttls_use_ssl_default_and_override(tmp_path: Path, override: str, expected: bool) -> None:
    text = BASE.replace("  port: 465\n  security: ssl\n", "  port: 587\n  security: starttls\n")
    text = text.replace("targets:\n  build: [apple]\n", "targets:\n  build: [apple]\n" + override)
    mail = _profile(tmp_path, text)["PayloadContent"][0]
    assert mail["OutgoingMailServerUseSSL"] is expected
    assert mail["IncomingMailServerUseSSL"] is True


def test_plain_fallback_is_not_in_the_profile_and_is_warned_about() -> None:
    plan = prepare(load_spec(EXAMPLES / "provider-pop3.yaml"), ["apple"])
    assert [w.message for w in plan.warnings if "fallback" in w.message] == [
        "Apple profiles carry one incoming and one outgoing server; the fallback servers are left out of "
        ".mobileconfig files"]


def test_template_override_that_changes_a_value_is_caught(tmp_path: Path) -> None:
    override = tmp_path / "tpl" / "apple"
    override.mkdir(parents=True)
    text = (packaged_templates() / "apple" / "mobileconfig.xml.j2").read_text(encoding="utf-8")
    bad = text.replace("{{ mail.OutgoingMailServerPortNumber|plist_int }}", "<integer>25</integer>")
    assert bad != text
    (override / "mobileconfig.xml.j2").write_text(bad, encoding="utf-8")
    loaded = load_spec(EXAMPLES / "provider-pop3.yaml")
    [mailbox] = load_accounts(loaded)
    with pytest.raises(VerificationError) as info:
        AppleTarget(RenderContext(loaded, templates=tmp_path / "tpl")).render_account(mailbox)
    assert info.value.mismatches == ["PayloadContent[0].OutgoingMailServerPortNumber: expected 465, found 25"]


def test_override_is_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "tpl" / "apple").mkdir(parents=True)
    shutil.copy(packaged_templates() / "apple" / "mobileconfig.xml.j2", tmp_path / "tpl" / "apple")
    with (tmp_path / "tpl" / "apple" / "mobileconfig.xml.j2").open("a") as f:
        f.write("<!-- managed by IT -->\n")
    loaded = load_spec(EXAMPLES / "provider-pop3.yaml")
    [mailbox] = load_accounts(loaded)
    [out] = AppleTarget(RenderContext(loaded, templates=tmp_path / "tpl")).render_account(mailbox)
    assert out.data.endswith(b"<!-- managed by IT -->\n")


def test_entity_declarations_are_refused() -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<plist version=\"1.0\"><string>&b;</string></plist>")
    with pytest.raises(Exception, match=r"EntitiesForbidden|entit"):
        parse_plist(bomb)


# Display names, organisations and user names an admin may really have: quotes, XML specials, accents, emoji,
# right-to-left text. Control characters are refused by the model (tested in test_spec_errors).
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85\ufffe\uffff"),
               min_size=1, max_size=40).filter(lambda s: s.strip() == s and s.strip())
SAMPLES = ['Bob "The Builder" O\'Neil', "A & B <c>", "Zoë Ünal", "田中 太郎 📧", "محمد الأحمد", "\\back\\slash"]


@settings(max_examples=60, deadline=None)
@given(name=st.one_of(st.sampled_from(SAMPLES), TEXT), org=st.one_of(st.sampled_from(SAMPLES), TEXT),
       user=st.one_of(st.sampled_from(SAMPLES), TEXT))
def test_names_survive_render_and_parse(tmp_path_factory: pytest.TempPathFactory, name: str, org: str,
                                        user: str) -> None:
    import json

    tmp = tmp_path_factory.mktemp("h")
    # JSON is valid YAML flow syntax: an exact way to put any string into the spec.
    def q(value: str) -> str:
        return json.dumps(value, ensure_ascii=False)

    text = BASE.replace("  display_name: Aruba Mail\n", f"  display_name: Aruba Mail\n  organization: {q(org)}\n")
    text = text.replace("name: Mario Rossi\n", f"name: {q(name)}\n    username: {q(user)}\n")
    try:
        profile = _profile(tmp, text)
    except SpecError as exc:
        # Refused only with a clear message, e.g. an accidental %PLACEHOLDER% in a user name.
        assert all(p.message and p.position for p in exc.problems)
        return
    mail = profile["PayloadContent"][0]
    assert mail["EmailAccountName"] == name
    assert profile["PayloadOrganization"] == org
    assert mail["IncomingMailServerUsername"] == user


def test_passwords_only_when_asked_and_files_are_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MP_TEST_PASSWORD", 'p@ss "word" <&>')
    text = BASE + "passwords:\n  include: true\n  from_env: MP_TEST_PASSWORD\n"
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    report = build(prepare(load_spec(tmp_path / "spec.yaml")), tmp_path / "out")
    [path] = report.secret_files
    mode = stat.S_IMODE((tmp_path / "out" / path).stat().st_mode)
    assert mode == 0o600
    mail = plistlib.loads((tmp_path / "out" / path).read_bytes())["PayloadContent"][0]
    assert mail["IncomingPassword"] == mail["OutgoingPassword"] == 'p@ss "word" <&>'
    manifest = (tmp_path / "out" / "manifest.json").read_text()
    assert "p@ss" not in manifest


def test_password_from_env_refused_when_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MP_TEST_PASSWORD", raising=False)
    (tmp_path / "spec.yaml").write_text(BASE + "passwords:\n  include: true\n  from_env: MP_TEST_PASSWORD\n")
    with pytest.raises(SpecError) as info:
        build(prepare(load_spec(tmp_path / "spec.yaml")), tmp_path / "out")
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'spec.yaml'}:21:13: environment variable MP_TEST_PASSWORD is not set or empty — "
        "export MP_TEST_PASSWORD=... before the run"]
    assert not (tmp_path / "out").exists()
