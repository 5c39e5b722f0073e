"""MDM mode: one generic profile per domain with the console's per-user variables; profile metadata."""

from __future__ import annotations

import plistlib
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from generator.apple_schema import validate_profile
from generator.build import BuildOptions, SignRequest, build, prepare
from generator.errors import BuildError, SpecError
from generator.model import AppleSettings
from generator.spec import load_spec
from generator.targets.apple import _plist_date
from tests.conftest import EXAMPLES
from tests.test_spec_errors import BASE


@pytest.mark.parametrize(("console", "email", "name"), [
    ("intune", "{{mail}}", "{{username}}"), ("jamf", "$EMAIL", "$FULLNAME"),
    ("workspace-one", "{EmailAddress}", "{FirstName} {LastName}")])
def test_generic_profile_per_domain_carries_console_variables(tmp_path: Path, console: str, email: str,
                                                              name: str) -> None:
    plan = prepare(load_spec(EXAMPLES / "provider-pop3.yaml"), mdm=console)
    report = build(plan, BuildOptions(out=tmp_path / "out"))
    assert report.accounts == 0
    path = tmp_path / "out" / "domains" / "esempio.it" / "apple" / f"esempio.it.{console}.mobileconfig"
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == [path.name, "manifest.json"]
    profile = plistlib.loads(path.read_bytes())
    assert validate_profile(profile) == []
    [mail] = profile["PayloadContent"]
    assert mail["EmailAddress"] == email and mail["EmailAccountName"] == name
    assert mail["IncomingMailServerUsername"] == mail["OutgoingMailServerUsername"] == email
    assert mail["IncomingMailServerHostName"] == "pop3s.aruba.it"
    assert profile["PayloadIdentifier"] == f"it.esempio.mail.mdm.{console}.esempio.it"
    assert b"%EMAIL" not in path.read_bytes()


def test_mdm_fills_emaildomain_hosts_with_the_profile_domain(tmp_path: Path) -> None:
    text = BASE.replace("host: pop3s.aruba.it", "host: pop3.%EMAILDOMAIN%").replace(
        "domains: [esempio.it]", "domains: [esempio.it, altro.it]")
    (tmp_path / "spec.yaml").write_text(text)
    build(prepare(load_spec(tmp_path / "spec.yaml"), mdm="intune"), BuildOptions(out=tmp_path / "out"))
    for domain in ("esempio.it", "altro.it"):
        data = (tmp_path / "out" / "domains" / domain / "apple" / f"{domain}.intune.mobileconfig").read_bytes()
        assert plistlib.loads(data)["PayloadContent"][0]["IncomingMailServerHostName"] == f"pop3.{domain}"


def test_jamf_has_no_local_part_variable(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(BASE.replace("  security: ssl\nout", "  security: ssl\n"
                                                     "  username: \"%EMAILLOCALPART%\"\nout"))
    with pytest.raises(SpecError) as info:
        prepare(load_spec(tmp_path / "spec.yaml"), mdm="jamf")
    assert [p.message for p in info.value.problems] == [
        "incoming.username: Jamf Pro has no variable for the part of the address before the @"]


@pytest.mark.parametrize("same", [True, False])
def test_jamf_checks_the_outgoing_user_name_only_when_it_is_used(tmp_path: Path, same: bool) -> None:
    (tmp_path / "spec.yaml").write_text(BASE.replace("  port: 465\n", "  port: 465\n  username: \"%EMAILLOCALPART%\"\n"
                                                     f"  same_credentials: {str(same).lower()}\n"))
    if not same:
        with pytest.raises(SpecError) as info:
            prepare(load_spec(tmp_path / "spec.yaml"), mdm="jamf")
        assert [p.message for p in info.value.problems] == [
            "outgoing.username: Jamf Pro has no variable for the part of the address before the @"]
        return
    build(prepare(load_spec(tmp_path / "spec.yaml"), mdm="jamf"), BuildOptions(out=tmp_path / "out"))
    data = (tmp_path / "out/domains/esempio.it/apple/esempio.it.jamf.mobileconfig").read_bytes()
    assert plistlib.loads(data)["PayloadContent"][0]["OutgoingMailServerUsername"] == "$EMAIL"


def test_mdm_refuses_signing_and_other_targets(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="MDM mode builds generic Apple profiles only"):
        prepare(load_spec(EXAMPLES / "provider-imap.yaml"), ["outlook"], mdm="jamf")


def test_the_specs_signing_identity_is_for_per_account_profiles_only(tmp_path: Path) -> None:
    """A spec that signs its per-account profiles (encrypted key, passphrase in the environment of the
    signing host) builds console profiles too: they are never signed, so the identity is not loaded.
    Signing options on the command line are still refused, naming them."""
    (tmp_path / "spec.yaml").write_text(BASE.replace("  build: [apple]\n", "  build: [apple]\n  apple:\n"
                                                     "    signing: {certificate: certs/signer.pem, "
                                                     "key: certs/signer.key, passphrase_env: NOT_ON_THIS_HOST}\n"))
    build(prepare(load_spec(tmp_path / "spec.yaml"), mdm="intune"), BuildOptions(out=tmp_path / "out"))
    data = (tmp_path / "out/domains/esempio.it/apple/esempio.it.intune.mobileconfig").read_bytes()
    assert plistlib.loads(data)["PayloadContent"][0]["EmailAddress"] == "{{mail}}"  # plain XML, not CMS
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == [
        "esempio.it.intune.mobileconfig", "manifest.json"]
    with pytest.raises(BuildError) as info:
        prepare(load_spec(tmp_path / "spec.yaml"), mdm="intune",
                sign=SignRequest(tmp_path / "cert.pem", tmp_path / "key.pem"))
    assert str(info.value) == ("MDM consoles want unsigned profiles (they re-sign or wrap them): drop --sign-cert, "
                               "--sign-key and --sign-chain")


def test_removal_date_duration_and_device_type(tmp_path: Path) -> None:
    text = BASE.replace("targets:\n  build: [apple]\n", "targets:\n  build: [apple]\n  apple:\n"
                        "    removal_date: 2027-06-30T12:00:00+02:00\n    duration_until_removal: 86400\n"
                        "    target_device_type: 1\n")
    (tmp_path / "spec.yaml").write_text(text)
    build(prepare(load_spec(tmp_path / "spec.yaml")), BuildOptions(out=tmp_path / "out"))
    [path] = (tmp_path / "out").rglob("*.mobileconfig")
    profile = plistlib.loads(path.read_bytes())
    assert profile["RemovalDate"] == datetime(2027, 6, 30, 10, 0, 0)  # UTC
    assert profile["DurationUntilRemoval"] == 86400.0 and type(profile["DurationUntilRemoval"]) is float
    assert profile["TargetDeviceType"] == 1
    assert validate_profile(profile) == []


@pytest.mark.parametrize(("value", "message"), [
    ("2027-06-30T10:00:00.5Z", "'2027-06-30T10:00:00.500000+00:00' has a fraction of a second, which Apple's "
     "<date> cannot carry — write whole seconds, such as 2027-06-30T00:00:00Z"),
    ("2027-06-30T10:00:00+05:30:30.25", "'2027-06-30T10:00:00+05:30:30.250000' has a fraction of a second, "
     "which Apple's <date> cannot carry — write whole seconds, such as 2027-06-30T00:00:00Z"),
    ("0999-12-31T23:59:59Z", "'0999-12-31T23:59:59+00:00' is not a date between the years 1000 and 9999 in UTC "
     "— write a date such as 2027-06-30T00:00:00Z"),
    ("0001-01-01T00:00:00+01:00", "'0001-01-01T00:00:00+01:00' is not a date between the years 1000 and 9999 "
     "in UTC — write a date such as 2027-06-30T00:00:00Z"),
    ("9999-12-31T23:59:59-01:00", "'9999-12-31T23:59:59-01:00' is not a date between the years 1000 and 9999 "
     "in UTC — write a date such as 2027-06-30T00:00:00Z"),
])
def test_removal_date_a_plist_cannot_carry_is_a_spec_error(tmp_path: Path, value: str, message: str) -> None:
    """A plist <date> is whole seconds of a four-digit year: anything else was an internal error or a failed
    proof ('a bug') instead of a line of the spec."""
    text = BASE.replace("targets:\n  build: [apple]\n", "targets:\n  build: [apple]\n  apple:\n"
                        f"    removal_date: \"{value}\"\n")
    (tmp_path / "spec.yaml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "spec.yaml")
    assert [str(p).split(": ", 1)[1] for p in info.value.problems] == [f"targets.apple.removal_date: {message}"]


def test_removal_date_without_zone_is_utc_whatever_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """A datetime without a zone from Python is UTC, as a string without one is: it was read in the local zone
    when the profile was made, so the same spec gave another RemovalDate under TZ=Asia/Tokyo."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        settings = AppleSettings.model_validate({"removal_date": datetime(2027, 6, 30, 12, 0, 0)})
        assert settings.removal_date == datetime(2027, 6, 30, 12, 0, 0, tzinfo=UTC)
        assert _plist_date(settings.removal_date) == "<date>2027-06-30T12:00:00Z</date>"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_bad_removal_date_is_a_spec_error(tmp_path: Path) -> None:
    text = BASE.replace("targets:\n  build: [apple]\n", "targets:\n  build: [apple]\n  apple:\n"
                        "    removal_date: next summer\n    target_device_type: 9\n")
    (tmp_path / "spec.yaml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "spec.yaml")
    assert [str(p).split(": ", 1)[1] for p in info.value.problems] == [
        "targets.apple.removal_date: 'next summer' is not an ISO 8601 date such as 2027-06-30T00:00:00Z",
        "targets.apple.target_device_type: 9 is not allowed — use one of: 0, 1, 2, 3, 4, 5, 6"]


INJECTING = (
    BASE.replace("  display_name: Aruba Mail\n", "  display_name: \"Aruba {{serialnumber}} $PHONE {DeviceUid}\"\n"
                 "  organization: \"Rossi & Figli {EnrollmentUser} $EMAIL_2\"\n")
    .replace("  security: ssl\nout", "  security: ssl\n  username: \"corp\\\\%EMAILADDRESS%$x{{mail}}\"\nout")
    .replace("accounts:\n  - name: Mario Rossi\n    email: mario.rossi@esempio.it\n", "")
    .replace("  build: [apple]\n", "  build: [apple]\n  apple:\n"
             "    consent_text: {default: \"Costs US$ 5 {{ a }} $FULLNAME\"}\n"))


@pytest.mark.parametrize(("console", "expected"), [
    ("intune", [("3:17", "provider.display_name", "{{serialnumber}}"),
                ("11:13", "incoming.username", "{{mail}}"),
                ("19:29", "targets.apple.consent_text.default", "{{ a }}")]),
    ("jamf", [("3:17", "provider.display_name", "$PHONE"),
              ("4:17", "provider.organization", "$EMAIL_2"),
              ("19:29", "targets.apple.consent_text.default", "$FULLNAME")]),
    ("workspace-one", [("3:17", "provider.display_name", "{DeviceUid}"),
                       ("3:17", "provider.display_name", "{serialnumber}"),
                       ("4:17", "provider.organization", "{EnrollmentUser}"),
                       ("11:13", "incoming.username", "{mail}")])])
def test_the_specs_own_text_cannot_carry_the_consoles_variables(tmp_path: Path, console: str,
                                                                 expected: list[tuple[str, str, str]]) -> None:
    """The console replaces its variables anywhere in an uploaded profile: one in an organisation name,
    consent text or a literal user name would reach each device as that user's value, not the spec's text."""
    (tmp_path / "spec.yaml").write_text(INJECTING)
    with pytest.raises(SpecError) as info:
        prepare(load_spec(tmp_path / "spec.yaml"), mdm=console)
    title = {"intune": "Microsoft Intune", "jamf": "Jamf Pro", "workspace-one": "Workspace ONE UEM"}[console]
    assert sorted(str(p) for p in info.value.problems) == sorted(
        f"{tmp_path / 'spec.yaml'}:{at}: {field}: '{token}' is a {title} variable; the console would put a "
        "per-user value in its place — reword it (consoles have no escape for their variables), or build "
        "per-account profiles without --mdm" for at, field, token in expected)


def test_text_that_is_not_the_consoles_syntax_is_carried_as_written(tmp_path: Path) -> None:
    # '{{…}}' means nothing to Jamf, '$' before a lower-case letter or a space is no Jamf variable.
    text = INJECTING.replace(" $PHONE", "").replace(" $EMAIL_2", "").replace(" $FULLNAME", "")
    (tmp_path / "spec.yaml").write_text(text)
    build(prepare(load_spec(tmp_path / "spec.yaml"), mdm="jamf"), BuildOptions(out=tmp_path / "out"))
    profile = plistlib.loads((tmp_path / "out/domains/esempio.it/apple/esempio.it.jamf.mobileconfig").read_bytes())
    assert profile["PayloadOrganization"] == "Rossi & Figli {EnrollmentUser}"
    assert profile["ConsentText"] == {"default": "Costs US$ 5 {{ a }}"}
    assert profile["PayloadContent"][0]["IncomingMailServerUsername"] == "corp\\$EMAIL$x{{mail}}"
