"""Profile signing: refusals with exact messages, and signatures checked by the real OpenSSL."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.build import SignRequest, prepare
from generator.errors import BuildError
from generator.signing import (
    Signer,
    SigningMaterial,
    _Cut,
    load_signing_material,
    sign_profile,
    unsigned_content,
)
from generator.spec import load_spec

from .conftest import EXAMPLES, require_binary

PASSPHRASE = b"s3cret-Passphrase!"
PROFILE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<plist version=\"1.0\">\n<dict>\n\t<key>PayloadDisplayName</key>\n"
    "\t<string>Posta di Niccolò — «Società» 日本</string>\n</dict>\n</plist>\n"
).encode()

# Fixed dates for the refusal tests, so their messages are exact.
T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
REAL_NOW = datetime.now(UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _usage(*, ca: bool, digital_signature: bool = True) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature and not ca,
        content_commitment=False,
        key_encipherment=not digital_signature and not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _cert(
    cn: str,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    start: datetime,
    end: datetime,
    key_usage: x509.KeyUsage | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(key_usage or _usage(ca=ca), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
             passphrase: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


@dataclass(frozen=True)
class PKI:
    dir: Path
    root: Path
    other_root: Path
    chain: Path
    leaf: Path
    leaf_key: Path
    leaf_key_encrypted: Path
    leaf_with_chain: Path
    ec_leaf: Path
    ec_key: Path
    ed_leaf: Path
    ed_key: Path
    wrong_key: Path
    expired: Path
    future: Path
    no_signature_usage: Path
    fixed_key: Path
    intermediate_cert: x509.Certificate
    leaf_cert: x509.Certificate


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    d = tmp_path_factory.mktemp("pki")

    def write(name: str, data: bytes) -> Path:
        (d / name).write_bytes(data)
        return d / name

    def rsa_key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    start, end = REAL_NOW - timedelta(days=1), REAL_NOW + timedelta(days=30)
    root_key, inter_key, leaf_key, other_key = rsa_key(), rsa_key(), rsa_key(), rsa_key()
    root = _cert("Test Root CA", root_key.public_key(), _name("Test Root CA"), root_key,
                 ca=True, start=start, end=end + timedelta(days=365))
    other_root = _cert("Unrelated Root", other_key.public_key(), _name("Unrelated Root"), other_key,
                       ca=True, start=start, end=end)
    inter = _cert("Test Intermediate CA", inter_key.public_key(), root.subject, root_key,
                  ca=True, start=start, end=end + timedelta(days=100))
    leaf = _cert("Profile Signer", leaf_key.public_key(), inter.subject, inter_key,
                 ca=False, start=start, end=end)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_leaf = _cert("EC Profile Signer", ec_key.public_key(), inter.subject, inter_key,
                    ca=False, start=start, end=end)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    ed_leaf = _cert("Ed25519 Signer", ed_key.public_key(), inter.subject, inter_key,
                    ca=False, start=start, end=end)

    # Fixed-date certificates for exact refusal messages, all with leaf_key.
    def fixed(cn: str, start: datetime, end: datetime, usage: x509.KeyUsage | None = None) -> x509.Certificate:
        return _cert(cn, leaf_key.public_key(), inter.subject, inter_key,
                     ca=False, start=start, end=end, key_usage=usage)

    expired = fixed("Expired Signer", datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC))
    future = fixed("Future Signer", datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    no_sig = fixed("Encipherment Only", datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC),
                   _usage(ca=False, digital_signature=False))

    return PKI(
        dir=d,
        root=write("root.pem", _pem(root)),
        other_root=write("other-root.pem", _pem(other_root)),
        chain=write("chain.pem", _pem(inter)),
        leaf=write("leaf.pem", _pem(leaf)),
        leaf_key=write("leaf.key", _key_pem(leaf_key)),
        leaf_key_encrypted=write("leaf-encrypted.key", _key_pem(leaf_key, PASSPHRASE)),
        leaf_with_chain=write("leaf-fullchain.pem", _pem(leaf) + _pem(inter)),
        ec_leaf=write("ec-leaf.pem", _pem(ec_leaf)),
        ec_key=write("ec-leaf.key", _key_pem(ec_key)),
        ed_leaf=write("ed-leaf.pem", _pem(ed_leaf)),
        ed_key=write("ed-leaf.key", _key_pem(ed_key)),
        wrong_key=write("wrong.key", _key_pem(other_key)),
        expired=write("expired.pem", _pem(expired)),
        future=write("future.pem", _pem(future)),
        no_signature_usage=write("no-sig.pem", _pem(no_sig)),
        fixed_key=write("fixed.key", _key_pem(leaf_key)),
        intermediate_cert=inter,
        leaf_cert=leaf,
    )


@pytest.fixture(scope="session")
def material(pki: PKI) -> SigningMaterial:
    return load_signing_material(pki.leaf, pki.leaf_key, pki.chain)


# --- loading -------------------------------------------------------------------------------------------


def test_loads_leaf_key_and_intermediates(pki: PKI, material: SigningMaterial) -> None:
    assert material.certificate == pki.leaf_cert
    assert material.intermediates == (pki.intermediate_cert,)


def test_chain_may_follow_the_leaf_in_the_certificate_file(pki: PKI) -> None:
    m = load_signing_material(pki.leaf_with_chain, pki.leaf_key)
    assert m.certificate == pki.leaf_cert
    assert m.intermediates == (pki.intermediate_cert,)
    # The same intermediate given twice (full-chain file and chain file) is carried once.
    assert load_signing_material(pki.leaf_with_chain, pki.leaf_key, pki.chain).intermediates == m.intermediates


@pytest.mark.openssl
@pytest.mark.parametrize("order", ["root, intermediate, leaf", "intermediate, leaf", "leaf in the chain file"])
def test_the_signer_is_the_certificate_of_the_key_in_any_order(pki: PKI, tmp_path: Path, order: str) -> None:
    """Full chains come leaf first (ACME), root first (CA bundles) or swapped by hand: the signer is the
    certificate of the key, the rest are intermediates, and OpenSSL verifies the result against the root."""
    root, inter, leaf = (p.read_bytes() for p in (pki.root, pki.chain, pki.leaf))
    cert_file, chain_file = tmp_path / "cert.pem", tmp_path / "chain.pem"
    if order == "root, intermediate, leaf":
        cert_file.write_bytes(root + inter + leaf)
        m = load_signing_material(cert_file, pki.leaf_key)
    elif order == "intermediate, leaf":
        cert_file.write_bytes(inter + leaf)
        m = load_signing_material(cert_file, pki.leaf_key)
    else:
        cert_file.write_bytes(inter)
        chain_file.write_bytes(leaf)
        m = load_signing_material(cert_file, pki.leaf_key, chain_file)
    assert m.certificate == pki.leaf_cert
    assert pki.intermediate_cert in m.intermediates and pki.leaf_cert not in m.intermediates
    signed, content = tmp_path / "signed.der", tmp_path / "content"
    signed.write_bytes(sign_profile(PROFILE, m))
    result = _verify(signed, pki.root, content)
    assert result.returncode == 0, result.stderr.decode()
    assert content.read_bytes() == PROFILE


def test_refuses_a_key_that_belongs_to_none_of_the_certificates(pki: PKI, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.chain.read_bytes() + pki.leaf.read_bytes())
    assert _refusal(bundle, pki.wrong_key) == (
        f"{pki.wrong_key}: this private key belongs to none of the 2 certificates given (CN=Test Intermediate CA, "
        "CN=Profile Signer) — pass the signer's certificate with the key that was generated with its request"
    )


def test_refuses_two_certificates_of_the_same_key(pki: PKI, tmp_path: Path) -> None:
    # A renewed certificate on the same key next to the old one: which one signs is the admin's choice.
    both = tmp_path / "both.pem"
    both.write_bytes(pki.leaf.read_bytes() + pki.expired.read_bytes() + pki.chain.read_bytes())
    start, end = (pki.leaf_cert.not_valid_before_utc.strftime("%Y-%m-%d %H:%M:%S UTC"),
                  pki.leaf_cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S UTC"))
    assert _refusal(both, pki.leaf_key) == (
        f"{both}: several certificates belong to this key (CN=Profile Signer, valid {start} to {end}; "
        "CN=Expired Signer, valid 2024-01-01 00:00:00 UTC to 2025-01-01 00:00:00 UTC) — give only the "
        "certificate to sign with"
    )


def test_an_expired_chain_certificate_is_named_with_the_file_it_came_from(pki: PKI, tmp_path: Path) -> None:
    old_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    old = _cert("Old CA", old_key.public_key(), _name("Old CA"), old_key, ca=True,
                start=datetime(2020, 1, 1, tzinfo=UTC), end=datetime(2025, 1, 1, tzinfo=UTC))
    full = tmp_path / "full.pem"
    full.write_bytes(pki.leaf.read_bytes() + _pem(old))
    assert _refusal(full, pki.leaf_key, pki.chain) == (
        f"{full}: the chain certificate (CN=Old CA) expired on 2025-01-01 00:00:00 UTC — renew it; devices "
        "treat a profile signed with an expired certificate as unsigned"
    )


def test_encrypted_key_with_passphrase(pki: PKI) -> None:
    m = load_signing_material(pki.leaf, pki.leaf_key_encrypted, pki.chain, passphrase=PASSPHRASE)
    assert m.certificate == pki.leaf_cert


def test_passphrase_for_an_unencrypted_key_is_ignored(pki: PKI) -> None:
    assert load_signing_material(pki.leaf, pki.leaf_key, passphrase=PASSPHRASE).certificate == pki.leaf_cert


def test_repr_does_not_show_the_key(material: SigningMaterial) -> None:
    assert "private_key" not in repr(material)


# --- refusals, exact messages ----------------------------------------------------------------------------


def _refusal(*args: object, **kwargs: object) -> str:
    with pytest.raises(BuildError) as info:
        load_signing_material(*args, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


def test_refuses_expired_certificate(pki: PKI) -> None:
    assert _refusal(pki.expired, pki.fixed_key, now=T0) == (
        f"{pki.expired}: the signing certificate (CN=Expired Signer) expired on 2025-01-01 00:00:00 UTC — "
        "renew it; devices treat a profile signed with an expired certificate as unsigned"
    )


def test_refuses_not_yet_valid_certificate(pki: PKI) -> None:
    assert _refusal(pki.future, pki.fixed_key, now=T0) == (
        f"{pki.future}: the signing certificate (CN=Future Signer) is not valid before "
        "2026-01-01 00:00:00 UTC — wait until then or check this computer's clock"
    )


def test_now_defaults_to_the_current_time(pki: PKI) -> None:
    assert "expired on 2025-01-01" in _refusal(pki.expired, pki.fixed_key)


def test_naive_now_is_utc(pki: PKI) -> None:
    just_after = datetime(2025, 1, 1, 0, 0, 1)
    assert "expired on" in _refusal(pki.expired, pki.fixed_key, now=just_after)
    assert load_signing_material(pki.expired, pki.fixed_key, now=datetime(2024, 12, 31, 23, 59, 59))


def test_refuses_mismatched_key(pki: PKI) -> None:
    assert _refusal(pki.leaf, pki.wrong_key) == (
        f"{pki.wrong_key}: this private key does not belong to the signing certificate {pki.leaf} "
        "(CN=Profile Signer) — pass the key that was generated with that certificate's request"
    )


def test_refuses_certificate_without_digital_signature_usage(pki: PKI) -> None:
    assert _refusal(pki.no_signature_usage, pki.fixed_key, now=T0) == (
        f"{pki.no_signature_usage}: the signing certificate (CN=Encipherment Only) does not allow digital "
        "signatures (its KeyUsage lacks digitalSignature) — use a certificate issued for signing"
    )


def test_refuses_wrong_passphrase(pki: PKI) -> None:
    assert _refusal(pki.leaf, pki.leaf_key_encrypted, passphrase=b"not the passphrase") == (
        f"{pki.leaf_key_encrypted}: the passphrase does not decrypt the signing key — check the passphrase "
        "(the variable's value must not end with a newline)"
    )


def test_refuses_encrypted_key_without_passphrase(pki: PKI) -> None:
    assert _refusal(pki.leaf, pki.leaf_key_encrypted) == (
        f"{pki.leaf_key_encrypted}: the signing key is encrypted and no passphrase was given — set the "
        "environment variable named in the spec (or MAILPROFILE_SIGN_PASSPHRASE) to the key's passphrase"
    )


def test_refuses_unreadable_files(pki: PKI) -> None:
    missing = pki.dir / "missing.pem"
    expected = f"{missing}: cannot read the {{}}: No such file or directory — check the path and its permissions"
    assert _refusal(missing, pki.leaf_key) == expected.format("signing certificate")
    assert _refusal(pki.leaf, missing) == expected.format("signing key")
    assert _refusal(pki.leaf, pki.leaf_key, missing) == expected.format("certificate chain")


def test_refuses_a_key_where_the_certificate_belongs(pki: PKI) -> None:
    assert _refusal(pki.leaf_key, pki.leaf_key) == (
        f"{pki.leaf_key}: the signing certificate is not a PEM or DER X.509 certificate — pass the "
        "certificate file (-----BEGIN CERTIFICATE-----), not a key or a PKCS#12 bundle"
    )


def test_refuses_a_certificate_where_the_key_belongs(pki: PKI) -> None:
    assert _refusal(pki.leaf, pki.leaf) == (
        f"{pki.leaf}: the signing key is not a PEM or DER private key — export the key alone "
        "(-----BEGIN PRIVATE KEY-----); from a .p12 use: openssl pkcs12 -in ID.p12 -nocerts -out KEY.pem"
    )


def test_refuses_key_types_cms_cannot_sign_with(pki: PKI) -> None:
    assert _refusal(pki.ed_leaf, pki.ed_key) == (
        f"{pki.ed_key}: the signing key is a Ed25519PrivateKey; profiles can be signed with RSA or ECDSA "
        "keys only — use an RSA or EC signing identity"
    )


def test_refuses_a_chain_that_did_not_issue_the_leaf(pki: PKI) -> None:
    assert _refusal(pki.leaf, pki.leaf_key, pki.other_root) == (
        f"{pki.other_root}: no certificate in the chain issued the signing certificate (CN=Profile Signer, "
        "issued by CN=Test Intermediate CA) — pass the intermediate certificates of this certificate's CA"
    )


def test_messages_never_contain_the_passphrase_or_key_material(pki: PKI) -> None:
    key_lines = {
        line
        for path in (pki.leaf_key, pki.leaf_key_encrypted)
        for line in path.read_text().splitlines()
        if line and not line.startswith("-----")
    }
    messages = [
        _refusal(pki.leaf, pki.leaf_key_encrypted, passphrase=b"not the passphrase"),
        _refusal(pki.leaf, pki.leaf_key_encrypted),
        _refusal(pki.leaf, pki.wrong_key, passphrase=PASSPHRASE),
        _refusal(pki.expired, pki.leaf_key_encrypted, passphrase=PASSPHRASE, now=T0),
        _refusal(pki.leaf_key, pki.leaf_key, passphrase=PASSPHRASE),
        _refusal(pki.leaf, pki.leaf, passphrase=PASSPHRASE),
    ]
    for message in messages:
        assert PASSPHRASE.decode() not in message
        assert "not the passphrase" not in message
        assert not any(line in message for line in key_lines)
        assert "PRIVATE KEY-----" not in message.replace("(-----BEGIN PRIVATE KEY-----)", "")


def test_refusals_do_not_chain_the_library_exception(pki: PKI) -> None:
    with pytest.raises(BuildError) as info:
        load_signing_material(pki.leaf, pki.leaf_key_encrypted, passphrase=b"wrong")
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# --- signing and unsigned_content -----------------------------------------------------------------------


def test_signature_carries_leaf_and_intermediates(pki: PKI, material: SigningMaterial) -> None:
    # Guards against add_certificate() being silently dropped (it is, if called before add_signer()).
    certs = pkcs7.load_der_pkcs7_certificates(sign_profile(PROFILE, material))
    assert set(certs) == {pki.leaf_cert, pki.intermediate_cert}


def test_unsigned_content_returns_the_exact_bytes(material: SigningMaterial) -> None:
    der = sign_profile(PROFILE, material)
    assert der[:1] == b"\x30"
    assert unsigned_content(der) == PROFILE


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3000))
def test_unsigned_content_round_trips(material: SigningMaterial, data: bytes) -> None:
    assert unsigned_content(sign_profile(data, material)) == data


def test_unsigned_content_refuses_non_cms(material: SigningMaterial) -> None:
    der = sign_profile(PROFILE, material)
    detached = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(PROFILE)
        .add_signer(material.certificate, material.private_key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.DetachedSignature])
    )
    for bad, message in [
        (b"", "truncated DER"),
        (PROFILE, "not a DER CMS ContentInfo"),
        (der[:-1], "truncated DER"),
        (der + b"\x00", "not a DER CMS ContentInfo"),
        (detached, "no content inside"),
        (pkcs7.serialize_certificates([material.certificate], serialization.Encoding.DER), "no content inside"),
    ]:
        with pytest.raises(ValueError, match=message):
            unsigned_content(bad)


# --- the real OpenSSL ------------------------------------------------------------------------------------


def _openssl(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    exe = require_binary("openssl", "openssl")
    return subprocess.run([exe, *map(str, args)], capture_output=True, check=False)


def _verify(signed: Path, ca: Path, out: Path) -> subprocess.CompletedProcess[bytes]:
    return _openssl("smime", "-verify", "-inform", "der", "-binary", "-CAfile", ca, "-in", signed, "-out", out)


@pytest.mark.openssl
@pytest.mark.parametrize("layout", ["chain file", "full-chain certificate file", "EC key"])
def test_openssl_verifies_with_only_the_root(pki: PKI, tmp_path: Path, layout: str) -> None:
    if layout == "chain file":
        m = load_signing_material(pki.leaf, pki.leaf_key, pki.chain)
    elif layout == "full-chain certificate file":
        m = load_signing_material(pki.leaf_with_chain, pki.leaf_key_encrypted, passphrase=PASSPHRASE)
    else:
        m = load_signing_material(pki.ec_leaf, pki.ec_key, pki.chain)
    signed, content = tmp_path / "signed.mobileconfig", tmp_path / "content.plist"
    signed.write_bytes(sign_profile(PROFILE, m))

    result = _verify(signed, pki.root, content)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Verification successful" in result.stderr
    assert content.read_bytes() == PROFILE  # byte for byte: LF kept, UTF-8 untouched
    assert b"\r\n" not in content.read_bytes()


@pytest.mark.openssl
def test_openssl_lists_leaf_and_intermediate(material: SigningMaterial, tmp_path: Path) -> None:
    signed = tmp_path / "signed.der"
    signed.write_bytes(sign_profile(PROFILE, material))
    result = _openssl("pkcs7", "-inform", "der", "-print_certs", "-noout", "-in", signed)
    assert result.returncode == 0, result.stderr.decode()
    subjects = [line for line in result.stdout.decode().splitlines() if line.startswith("subject=")]
    assert sorted(subjects) == ["subject=CN = Profile Signer", "subject=CN = Test Intermediate CA"]


@pytest.mark.openssl
def test_openssl_rejects_an_unrelated_root(pki: PKI, material: SigningMaterial, tmp_path: Path) -> None:
    # Control: the verification above is not vacuous.
    signed = tmp_path / "signed.der"
    signed.write_bytes(sign_profile(PROFILE, material))
    result = _verify(signed, pki.other_root, tmp_path / "content")
    assert result.returncode != 0
    assert b"Verify error" in result.stderr


@pytest.mark.openssl
def test_openssl_extracts_the_same_content_as_unsigned_content(material: SigningMaterial, tmp_path: Path) -> None:
    signed, content = tmp_path / "signed.der", tmp_path / "content"
    der = sign_profile(PROFILE, material)
    signed.write_bytes(der)
    result = _openssl("cms", "-verify", "-noverify", "-inform", "der", "-binary", "-in", signed, "-out", content)
    assert result.returncode == 0, result.stderr.decode()
    assert content.read_bytes() == unsigned_content(der) == PROFILE


@pytest.mark.openssl
@pytest.mark.parametrize("key", ["RSA", "EC"])
def test_a_signer_assembles_what_the_builder_writes_and_openssl_verifies_it(pki: PKI, tmp_path: Path,
                                                                           key: str) -> None:
    """After its first (builder-made) signature a Signer assembles each SignedData itself: the cut is found
    for both key types, every signature verifies with OpenSSL against the root, carries the chain and the
    exact content."""
    m = (load_signing_material(pki.leaf, pki.leaf_key, pki.chain) if key == "RSA"
         else load_signing_material(pki.ec_leaf, pki.ec_key, pki.chain))
    signer = Signer(m)
    first = signer.sign(PROFILE)
    assert signer._cut is not None  # the fast route is really taken
    others = [PROFILE.replace(b"Example", b"Ex" * n) for n in (1, 40, 400)]  # DER lengths of 1, 2 and 3 bytes
    for n, data in enumerate([PROFILE, *others]):
        der = signer.sign(data)
        assert unsigned_content(der) == data
        assert set(pkcs7.load_der_pkcs7_certificates(der)) == {m.certificate, *m.intermediates}
        signed, content = tmp_path / f"signed{n}.der", tmp_path / f"content{n}"
        signed.write_bytes(der)
        result = _verify(signed, pki.root, content)
        assert result.returncode == 0, result.stderr.decode()
        assert content.read_bytes() == data
    if key == "RSA":  # PKCS#1 v1.5 is deterministic: same content, same signing time -> the builder's bytes
        assert signer.sign(PROFILE) == first


def test_a_cut_is_refused_when_it_does_not_give_the_builders_bytes_back(material: SigningMaterial) -> None:
    der = sign_profile(PROFILE, material)
    assert _Cut.of(der, PROFILE, material) is not None
    assert _Cut.of(der, PROFILE + b" ", material) is None  # not the content it signs
    assert _Cut.of(der + b"\x00", PROFILE, material) is None
    long_form = der[:1] + b"\x84" + len(der[4:]).to_bytes(4, "big") + der[4:]  # valid BER, not what we write
    assert der[1] == 0x82 and _Cut.of(long_form, PROFILE, material) is None


# --- the build, end to end ----------------------------------------------------------------------------------


@pytest.mark.openssl
def test_build_signs_every_profile_and_openssl_verifies_it(pki: PKI, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from generator.cli import main
    from tests.conftest import EXAMPLES

    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(EXAMPLES / "school.yaml"), "--out", str(out), "--only", "apple",
                                       "--sign-cert", str(pki.leaf), "--sign-key", str(pki.leaf_key),
                                       "--sign-chain", str(pki.chain)])
    assert result.exit_code == 0, result.output
    signed = sorted(out.rglob("*.signed.mobileconfig"))
    assert len(signed) == 5
    for path in signed:
        unsigned = path.with_name(path.name.replace(".signed.mobileconfig", ".mobileconfig"))
        content = tmp_path / "content.plist"
        verify = _verify(path, pki.root, content)
        assert verify.returncode == 0, verify.stderr.decode()
        assert content.read_bytes() == unsigned.read_bytes()
    import json

    kinds = [e["kind"] for e in json.loads((out / "manifest.json").read_text())["files"]]
    assert kinds.count("mobileconfig-signed") == 5 and kinds.count("mobileconfig") == 5


def test_build_refuses_an_expired_certificate_and_writes_nothing(pki: PKI, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from generator.cli import main
    from tests.conftest import EXAMPLES

    result = CliRunner().invoke(main, ["build", str(EXAMPLES / "provider-imap.yaml"), "--out", str(tmp_path / "o"),
                                       "--only", "apple", "--sign-cert", str(pki.expired), "--sign-key",
                                       str(pki.fixed_key), "--sign-chain", str(pki.chain)])
    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith(f"error: {pki.expired}: the signing certificate")
    assert "expired" in result.output.splitlines()[0]
    assert not (tmp_path / "o").exists()


def test_a_missing_passphrase_names_the_variable_that_was_read(pki: PKI, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec names its own variable: setting MAILPROFILE_SIGN_PASSPHRASE instead does not count, and the
    message must say which variable to set (it said "the variable named in the spec (or MAILPROFILE_...)")."""
    from generator.build import prepare
    from generator.spec import load_spec
    from tests.test_spec_errors import BASE

    (tmp_path / "spec.yaml").write_text(BASE.replace("  build: [apple]\n", "  build: [apple]\n  apple:\n"
                                                     f"    signing: {{certificate: '{pki.leaf_with_chain}', "
                                                     f"key: '{pki.leaf_key_encrypted}', passphrase_env: SIGN_PW}}\n"))
    monkeypatch.setenv("MAILPROFILE_SIGN_PASSPHRASE", PASSPHRASE.decode())
    monkeypatch.delenv("SIGN_PW", raising=False)
    with pytest.raises(BuildError) as info:
        prepare(load_spec(tmp_path / "spec.yaml"))
    assert str(info.value) == (f"{pki.leaf_key_encrypted}: the signing key is encrypted and no passphrase was "
                               "given — set SIGN_PW (unset or empty now) to the key's passphrase")
    monkeypatch.setenv("SIGN_PW", "not it")
    with pytest.raises(BuildError) as info:
        prepare(load_spec(tmp_path / "spec.yaml"))
    assert str(info.value) == (f"{pki.leaf_key_encrypted}: the passphrase in SIGN_PW does not decrypt the signing "
                               "key — check the passphrase (the variable's value must not end with a newline)")
    monkeypatch.setenv("SIGN_PW", PASSPHRASE.decode())
    assert prepare(load_spec(tmp_path / "spec.yaml")).targets


# --- a chain that stops below a root ----------------------------------------------------------------------------

def _warnings(material: SigningMaterial) -> list[str]:
    return [str(p) for p in material.warnings]


def test_a_chain_ending_below_a_root_this_machine_trusts_is_silent(pki: PKI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.root))  # the machine's CA bundle holds the test root
    assert _warnings(load_signing_material(pki.leaf, pki.leaf_key, pki.chain)) == []
    # A chain that reaches a self-issued root needs no trust store.
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.other_root))
    assert _warnings(load_signing_material(pki.leaf_with_chain, pki.leaf_key, pki.root)) == []


@pytest.mark.openssl
def test_a_missing_intermediate_above_the_given_chain_is_a_warning(pki: PKI, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the signer's own issuer was checked: a chain missing a certificate further up (the CA's second-level
    intermediate, here the root of a private CA) built without a word, and devices show "Not Verified"."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.other_root))  # a CA bundle without the test root
    m = load_signing_material(pki.leaf, pki.leaf_key, pki.chain)
    assert _warnings(m) == [
        f"{pki.chain}:1:1: the chain's last certificate (CN=Test Intermediate CA) was issued by CN=Test Root CA, which "
        "is neither in the chain nor a root this machine trusts (its CA bundle): devices that do not trust it either "
        "show the profile as Not Verified — add the CA's missing intermediate certificate(s) to the chain "
        "(--sign-chain, or targets.apple.signing.chain); nothing to do for a private root your devices install"]
    assert [p.severity for p in m.warnings] == ["warning"]
    # Without the intermediate the signer itself is the top; OpenSSL, trusting only the root as a device would,
    # cannot verify that signature: the warning names a real failure.
    alone = load_signing_material(pki.leaf, pki.leaf_key)
    assert _warnings(alone)[0].startswith(f"{pki.leaf}:1:1: the signing certificate was issued by "
                                          "CN=Test Intermediate CA, which is neither in the chain")
    signed = tmp_path / "signed.der"
    signed.write_bytes(sign_profile(PROFILE, alone))
    result = _verify(signed, pki.root, tmp_path / "content")
    assert result.returncode != 0 and b"unable to get local issuer certificate" in result.stderr, result.stderr


def test_the_chain_warning_reaches_the_build(pki: PKI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.other_root))
    plan = prepare(load_spec(EXAMPLES / "provider-pop3.yaml"), ["apple"],
                   sign=SignRequest(pki.leaf, pki.leaf_key, pki.chain))
    assert [p.message for p in plan.warnings if "Not Verified" in p.message] == [
        "the chain's last certificate (CN=Test Intermediate CA) was issued by CN=Test Root CA, which is neither in "
        "the chain nor a root this machine trusts (its CA bundle): devices that do not trust it either show the "
        "profile as Not Verified"]
