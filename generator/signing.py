"""Sign Apple configuration profiles: CMS SignedData, DER, the plist as attached content.

What a device needs (docs/signing.md has the sources):
- CMS SignedData with the profile as encapsulated content, DER-encoded; the same as
  `openssl smime -sign -nodetach -binary -outform der -certfile CHAIN`.
- Binary mode: without it the signer canonicalises LF to CRLF and the signed plist is no longer the file we
  rendered and verified.
- The signer certificate *and* its intermediates inside the signature, or the device shows "Not Verified".
- A certificate that is valid now: a profile signed with an expired certificate installs as unsigned.

Signed files are not byte-identical between runs: the signed attributes carry a signingTime (one per
`Signer` reference, taken at most every REFRESH_SECONDS). The content inside is byte-identical (see
`unsigned_content`). Signing without attributes would be
deterministic with RSA, but no source shows that iOS/macOS accept a SignedData without signed attributes,
so we keep the layout every documented recipe produces.

Every refusal is a BuildError saying what is wrong and how to fix it. Messages name files, subjects and
dates, never key material or the passphrase.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import ssl
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes, PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs7

from .csvfile import open_regular
from .errors import BuildError, Position, Problem

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_FIX_PASSPHRASE = (
    "set the environment variable named in the spec (or MAILPROFILE_SIGN_PASSPHRASE) to the key's passphrase"
)


@dataclass(frozen=True)
class SigningMaterial:
    """A signing identity checked by `load_signing_material`: leaf certificate, its key, intermediates."""

    certificate: x509.Certificate
    private_key: SigningKey = field(repr=False)
    intermediates: tuple[x509.Certificate, ...] = ()
    warnings: tuple[Problem, ...] = field(default=(), compare=False)  # what the build shows with its own


def load_signing_material(
    cert_path: str | Path,
    key_path: str | Path,
    chain_path: str | Path | None = None,
    passphrase: bytes | None = None,
    now: datetime | None = None,
    passphrase_env: str | None = None,
) -> SigningMaterial:
    """Load and check a signing identity, or raise BuildError saying what is wrong and how to fix it.

    `cert_path` holds the signer certificate (PEM or DER), optionally with its chain (PEM, in any order).
    `chain_path` holds intermediates (PEM, any number). The signer is the certificate whose public key is the
    key's; every other certificate given is carried as an intermediate. A passphrase given for an unencrypted
    key is ignored.
    `now` (default: current UTC time; a naive value is taken as UTC) is the time the certificate must be
    valid at. `passphrase_env` names the environment variable the passphrase was read from, for messages.
    """
    cert_file = Path(cert_path)
    key_file = Path(key_path)
    given = [(cert, cert_file) for cert in _load_certificates(cert_file, "signing certificate")]
    chain_file = Path(chain_path) if chain_path is not None else None
    if chain_file is not None:
        given += [(cert, chain_file) for cert in _load_certificates(chain_file, "certificate chain")]
    key = _load_private_key(key_file, passphrase, passphrase_env)

    # The signer is the certificate of this key, wherever it sits: CAs and exports write full chains leaf
    # first (ACME), root first (many "bundle + certificate" files) or in no order at all.
    mine = _spki(key.public_key())
    found = [(cert, path) for cert, path in given if _spki(cert.public_key()) == mine]
    if not found:
        first = given[0][0]
        if len(given) == 1:
            raise BuildError(
                f"{key_file}: this private key does not belong to the signing certificate {cert_file} "
                f"({_subject(first)}) — pass the key that was generated with that certificate's request"
            )
        raise BuildError(
            f"{key_file}: this private key belongs to none of the {len(given)} certificates given "
            f"({', '.join(_subject(c) for c, _ in given)}) — pass the signer's certificate with "
            "the key that was generated with its request"
        )
    leaf, leaf_file = found[0]
    others = _dedupe(leaf, [cert for cert, _ in found])
    if others:  # a renewed certificate on the same key, next to the old one: which one signs is not ours to guess
        raise BuildError(
            f"{leaf_file}: several certificates belong to this key ({_subject(leaf)}, {_when_range(leaf)}; "
            + "; ".join(f"{_subject(c)}, {_when_range(c)}" for c in others)
            + ") — give only the certificate to sign with"
        )

    moment = _utc(now)
    _check_validity(leaf, leaf_file, "signing certificate", moment)
    _check_key_usage(leaf, leaf_file)

    intermediates = _dedupe(leaf, [cert for cert, _ in given])
    origin = {cert.public_bytes(serialization.Encoding.DER): path for cert, path in reversed(given)}
    for cert in intermediates:
        _check_validity(cert, origin[cert.public_bytes(serialization.Encoding.DER)], "chain certificate", moment)
    if intermediates:
        _check_issuer_present(leaf, intermediates, chain_file or cert_file)
    warnings = _chain_warnings(leaf, intermediates, chain_file or cert_file)
    return SigningMaterial(certificate=leaf, private_key=key, intermediates=intermediates, warnings=warnings)


def sign_profile(data: bytes, material: SigningMaterial) -> bytes:
    """Return `data` wrapped in CMS SignedData (DER, attached, SHA-256, binary) with the whole chain."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(data).add_signer(
        material.certificate, material.private_key, hashes.SHA256()
    )
    # add_certificate() must come after set_data()/add_signer(): both return a new builder that
    # drops certificates added earlier (seen in cryptography 48 and 50.0.2).
    for cert in material.intermediates:
        builder = builder.add_certificate(cert)
    der = builder.sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])

    embedded = {c.public_bytes(serialization.Encoding.DER) for c in pkcs7.load_der_pkcs7_certificates(der)}
    wanted = [material.certificate, *material.intermediates]
    missing = [c for c in wanted if c.public_bytes(serialization.Encoding.DER) not in embedded]
    if missing:
        raise BuildError(
            "the signature lacks certificates it must carry ("
            + ", ".join(_subject(c) for c in missing)
            + ") — this is a bug in mailprofile or in the installed cryptography version; please report it"
        )
    return der


_OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")  # 1.2.840.113549.1.7.2
_OID_DATA = bytes.fromhex("2a864886f70d010701")  # 1.2.840.113549.1.7.1
_OID_MESSAGE_DIGEST = bytes.fromhex("2a864886f70d010904")  # 1.2.840.113549.1.9.4
REFRESH_SECONDS = 60.0  # a Signer takes a new reference signature (and signing time) at most this often


class Signer:
    """Signs many profiles with one identity, at the cost of a bare signature each.

    cryptography's PKCS7 builder costs about as much again as the RSA signature it makes (it encodes the
    certificates, the algorithm identifiers and the attributes every time). Between two profiles of one
    build only four things change: the content, its SHA-256 in the messageDigest attribute, the signature
    over the attributes, and the DER lengths around them. So the builder signs the first profile (and one
    again every REFRESH_SECONDS, so a long-running service does not repeat an old signing time), that
    SignedData is cut into its fixed parts, and the cut is proven: put back together around the same
    content and signature it must give the builder's bytes exactly. Each later profile is the fixed parts
    around its own content, digest and signature, and its signature is verified with the certificate's public
    key before it is returned. Anything the cut does not recognise falls back to the builder for every
    profile. Every signature of one reference carries that reference's signing time."""

    def __init__(self, material: SigningMaterial) -> None:
        self.material = material
        self._cut: _Cut | None = None
        self._taken = float("-inf")

    def sign(self, data: bytes) -> bytes:
        now = time.monotonic()
        if now - self._taken > REFRESH_SECONDS:
            der = sign_profile(data, self.material)
            self._cut, self._taken = _Cut.of(der, data, self.material), now
            return der
        if self._cut is None:
            return sign_profile(data, self.material)
        return self._cut.sign(data, self.material)


def _der(tag: int, body: bytes) -> bytes:
    """One DER tag-length-value (definite length, shortest form)."""
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + body


def _children(der: bytes, span: tuple[int, int]) -> list[tuple[int, int, int]]:
    """(tag, start, end) of each TLV inside `span`, start..end being the whole TLV."""
    out, pos = [], span[0]
    while pos < span[1]:
        tag, _, nxt = _tlv(der, pos)
        out.append((tag, pos, nxt))
        pos = nxt
    if pos != span[1]:
        raise ValueError("DER children overrun their parent")
    return out


def _algorithm(key: SigningKey) -> tuple[Any, ...]:
    if isinstance(key, rsa.RSAPrivateKey):
        return (padding.PKCS1v15(), hashes.SHA256())
    return (ec.ECDSA(hashes.SHA256()),)


@dataclass(frozen=True)
class _Cut:
    """The fixed parts of one SignedData (see Signer)."""

    info_oid: bytes  # the ContentInfo's contentType (signedData), whole TLV
    head: bytes  # SignedData version + digestAlgorithms
    content_oid: bytes  # eContentType (data), whole TLV
    certificates: bytes  # certificates (and CRLs), whole TLVs, as the builder wrote them
    signer_head: bytes  # SignerInfo version + sid + digestAlgorithm
    attrs_before: bytes  # the signed attributes' body up to the 32 bytes of messageDigest
    attrs_after: bytes  # ... and after them
    signer_tail: bytes  # signatureAlgorithm

    @classmethod
    def of(cls, der: bytes, content: bytes, material: SigningMaterial) -> _Cut | None:
        """The cut of the builder's `der` (which signs `content`), proven to give `der` back; None if this
        SignedData is laid out in a way the cut does not know."""
        try:
            cut, signature = cls._parse(der, content)
        except ValueError:
            return None
        attributes = cut._attributes(content)
        if cut._assemble(content, signature, attributes) != der:
            return None
        # The builder's signature scheme is the one the cut will use (PKCS#1 v1.5 or ECDSA, SHA-256).
        return cut if _verifies(material, signature, attributes) else None

    @classmethod
    def _parse(cls, der: bytes, content: bytes) -> tuple[_Cut, bytes]:
        def one(tag: int, item: tuple[int, int, int]) -> tuple[int, int]:
            if item[0] != tag:
                raise ValueError("unexpected tag")
            return _tlv(der, item[1])[1]

        (info,) = _children(der, (0, len(der)))
        info_oid, explicit = _children(der, one(0x30, info))
        (signed,) = _children(der, one(0xA0, explicit))
        parts = _children(der, one(0x30, signed))
        if len(parts) < 4 or [p[0] for p in parts[:3]] != [0x02, 0x31, 0x30] or parts[-1][0] != 0x31:
            raise ValueError("unexpected SignedData layout")
        content_oid, econtent = _children(der, one(0x30, parts[2]))
        (octets,) = _children(der, one(0xA0, econtent))
        if der[slice(*one(0x04, octets))] != content or der[slice(*one(0x06, content_oid))] != _OID_DATA:
            raise ValueError("not the content")
        (signer,) = _children(der, one(0x31, parts[-1]))
        fields = _children(der, one(0x30, signer))
        if [f[0] for f in fields[3:]] != [0xA0, 0x30, 0x04]:
            raise ValueError("unexpected SignerInfo layout (unsigned attributes?)")
        attrs = one(0xA0, fields[3])
        digest = hashlib.sha256(content).digest()
        where = []
        for attr in _children(der, attrs):
            oid, values = _children(der, one(0x30, attr))
            if der[slice(*one(0x06, oid))] == _OID_MESSAGE_DIGEST:
                (value,) = _children(der, one(0x31, values))
                span = one(0x04, value)
                if der[slice(*span)] != digest:
                    raise ValueError("messageDigest is not the content's")
                where.append(span)
        if len(where) != 1:
            raise ValueError("not one messageDigest")
        (start, end), (a0, a1) = where[0], attrs
        cut = cls(der[info_oid[1]:info_oid[2]], der[parts[0][1]:parts[1][2]], der[content_oid[1]:content_oid[2]],
                  der[parts[3][1]:parts[-2][2]] if len(parts) > 4 else b"", der[fields[0][1]:fields[2][2]],
                  der[a0:start], der[end:a1], der[fields[4][1]:fields[4][2]])
        return cut, der[slice(*one(0x04, fields[5]))]

    def _attributes(self, content: bytes) -> bytes:
        return self.attrs_before + hashlib.sha256(content).digest() + self.attrs_after

    def _assemble(self, content: bytes, signature: bytes, attributes: bytes) -> bytes:
        signer = _der(0x30, self.signer_head + _der(0xA0, attributes) + self.signer_tail + _der(0x04, signature))
        econtent = _der(0x30, self.content_oid + _der(0xA0, _der(0x04, content)))
        signed = _der(0x30, self.head + econtent + self.certificates + _der(0x31, signer))
        return _der(0x30, self.info_oid + _der(0xA0, signed))

    def sign(self, content: bytes, material: SigningMaterial) -> bytes:
        attributes = self._attributes(content)
        signature = material.private_key.sign(_der(0x31, attributes), *_algorithm(material.private_key))
        if not _verifies(material, signature, attributes):  # the file's proof, over this content's digest
            raise BuildError("a signature did not verify with the signing certificate — this is a bug in "
                             "mailprofile or in the installed cryptography version; please report it")
        return self._assemble(content, signature, attributes)


def _verifies(material: SigningMaterial, signature: bytes, attributes: bytes) -> bool:
    """Whether `signature` verifies with the certificate's key over the signed attributes, encoded as the
    SET OF that a signature covers (RFC 5652 §5.4)."""
    try:
        material.certificate.public_key().verify(signature, _der(0x31, attributes),  # type: ignore
                                                 *_algorithm(material.private_key))
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def unsigned_content(der: bytes) -> bytes:
    """Return the content encapsulated in a DER CMS SignedData (what the device installs).

    Does not check the signature (OpenSSL does that in the tests); it proves what was signed. Raises
    ValueError if `der` is not a SignedData with attached id-data content.
    """
    tag, body, rest = _tlv(der, 0)
    if tag != 0x30 or rest != len(der):
        raise ValueError("not a DER CMS ContentInfo (expected one SEQUENCE)")
    tag, oid, pos = _tlv(der, body[0])
    if tag != 0x06 or der[oid[0] : oid[1]] != _OID_SIGNED_DATA:
        raise ValueError("CMS ContentInfo is not SignedData")
    tag, explicit, _ = _tlv(der, pos)
    if tag != 0xA0:
        raise ValueError("SignedData has no [0] content")
    tag, signed, _ = _tlv(der, explicit[0])
    if tag != 0x30:
        raise ValueError("SignedData is not a SEQUENCE")
    pos = signed[0]
    for expected in (0x02, 0x31):  # version, digestAlgorithms
        tag, _, pos = _tlv(der, pos)
        if tag != expected:
            raise ValueError("malformed SignedData header")
    tag, encap, _ = _tlv(der, pos)
    if tag != 0x30:
        raise ValueError("SignedData has no EncapsulatedContentInfo")
    tag, oid, pos = _tlv(der, encap[0])
    if tag != 0x06 or der[oid[0] : oid[1]] != _OID_DATA:
        raise ValueError("encapsulated content is not id-data")
    if pos >= encap[1]:
        raise ValueError("no content inside the SignedData (a detached signature or a certificates-only bundle)")
    tag, explicit, _ = _tlv(der, pos)
    if tag != 0xA0:
        raise ValueError("malformed eContent")
    return _octets(der, explicit[0])


def _octets(der: bytes, pos: int) -> bytes:
    """An OCTET STRING, primitive or (as some BER writers emit) constructed from definite-length parts."""
    tag, (start, end), _ = _tlv(der, pos)
    if tag == 0x04:
        return der[start:end]
    if tag == 0x24:
        parts = []
        while start < end:
            _, _, nxt = _tlv(der, start)
            parts.append(_octets(der, start))
            start = nxt
        return b"".join(parts)
    raise ValueError("eContent is not an OCTET STRING")


def _tlv(der: bytes, pos: int) -> tuple[int, tuple[int, int], int]:
    """Read one tag-length-value at `pos`: (tag, (value start, value end), position after it)."""
    if pos + 2 > len(der):
        raise ValueError("truncated DER")
    tag, first = der[pos], der[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise ValueError("indefinite-length BER is not supported")
    else:
        count = first & 0x7F
        if count > 4 or pos + count > len(der):
            raise ValueError("bad DER length")
        length = int.from_bytes(der[pos : pos + count], "big")
        pos += count
    if pos + length > len(der):
        raise ValueError("truncated DER")
    return tag, (pos, pos + length), pos + length


MAX_PEM_BYTES = 1 << 20  # a certificate chain or key is a few KiB


def _read(path: Path, what: str) -> bytes:
    try:
        with open_regular(path) as handle:
            data = handle.read(MAX_PEM_BYTES + 1)
    except OSError as exc:
        raise BuildError(
            f"{path}: cannot read the {what}: {exc.strerror or exc} — check the path and its permissions"
        ) from None
    if len(data) > MAX_PEM_BYTES:
        raise BuildError(f"{path}: the {what} is larger than {MAX_PEM_BYTES >> 10} KiB — is this the right file?")
    return data


def _load_certificates(path: Path, what: str) -> list[x509.Certificate]:
    data = _read(path, what)
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise BuildError(
            f"{path}: the {what} is not a PEM or DER X.509 certificate — "
            "pass the certificate file (-----BEGIN CERTIFICATE-----), not a key or a PKCS#12 bundle"
        ) from None
    return certs


def _load_private_key(path: Path, passphrase: bytes | None, env: str | None = None) -> SigningKey:
    data = _read(path, "signing key")
    try:
        key = _parse_key(data, None)
    except TypeError:  # encrypted: cryptography says "Password was not given but private key is encrypted"
        if passphrase is None:
            # Name the one variable that was read: an admin who set MAILPROFILE_SIGN_PASSPHRASE while the spec
            # names another was told to set "the variable named in the spec (or MAILPROFILE_SIGN_PASSPHRASE)".
            raise BuildError(
                f"{path}: the signing key is encrypted and no passphrase was given — "
                + (f"set {env} (unset or empty now) to the key's passphrase" if env else _FIX_PASSPHRASE)
            ) from None
        try:
            key = _parse_key(data, passphrase)
        except (ValueError, TypeError):
            raise BuildError(
                f"{path}: the passphrase{f' in {env}' if env else ''} does not decrypt the signing key — check "
                "the passphrase (the variable's value must not end with a newline)"
            ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise BuildError(
            f"{path}: the signing key is not a PEM or DER private key — export the key alone "
            "(-----BEGIN PRIVATE KEY-----); from a .p12 use: openssl pkcs12 -in ID.p12 -nocerts -out KEY.pem"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise BuildError(
            f"{path}: the signing key is a {type(key).__name__.removeprefix('_')}; profiles can be signed "
            "with RSA or ECDSA keys only — use an RSA or EC signing identity"
        )
    return key


def _parse_key(data: bytes, passphrase: bytes | None) -> PrivateKeyTypes:
    if b"-----BEGIN" in data:
        return serialization.load_pem_private_key(data, passphrase)
    return serialization.load_der_private_key(data, passphrase)


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when_range(cert: x509.Certificate) -> str:
    return f"valid {_when(cert.not_valid_before_utc)} to {_when(cert.not_valid_after_utc)}"


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "empty subject"


def _check_validity(cert: x509.Certificate, path: Path, what: str, now: datetime) -> None:
    if now > cert.not_valid_after_utc:
        raise BuildError(
            f"{path}: the {what} ({_subject(cert)}) expired on {_when(cert.not_valid_after_utc)} — renew it; "
            "devices treat a profile signed with an expired certificate as unsigned"
        )
    if now < cert.not_valid_before_utc:
        raise BuildError(
            f"{path}: the {what} ({_subject(cert)}) is not valid before {_when(cert.not_valid_before_utc)} — "
            "wait until then or check this computer's clock"
        )


def _check_key_usage(cert: x509.Certificate, path: Path) -> None:
    # Only KeyUsage is enforced. ExtendedKeyUsage is not: profiles signed with TLS server certificates
    # (serverAuth) and with Apple Developer (codeSigning) certificates are both reported as "Verified".
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.digital_signature:
        raise BuildError(
            f"{path}: the signing certificate ({_subject(cert)}) does not allow digital signatures "
            "(its KeyUsage lacks digitalSignature) — use a certificate issued for signing"
        )


def _dedupe(leaf: x509.Certificate, certs: list[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    """Drop repeats and the leaf itself, keeping the order given (leaf's issuer usually first)."""
    seen = {leaf.public_bytes(serialization.Encoding.DER)}
    out: list[x509.Certificate] = []
    for cert in certs:
        der = cert.public_bytes(serialization.Encoding.DER)
        if der not in seen:
            seen.add(der)
            out.append(cert)
    return tuple(out)


def _issuer_in(cert: x509.Certificate, certs: tuple[x509.Certificate, ...] | list[x509.Certificate]
               ) -> x509.Certificate | None:
    """The certificate among `certs` that issued `cert` (its subject is cert's issuer and its key verifies
    cert's signature), or None."""
    for candidate in certs:
        if candidate.subject == cert.issuer:
            try:
                cert.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            return candidate
    return None


_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


def _trusted_roots() -> list[x509.Certificate] | None:
    """The CA bundle this machine's OpenSSL trusts (SSL_CERT_FILE, else the distribution's), or None if
    there is none to read. Devices have their own stores; Debian's ca-certificates and Apple's share the
    public roots a CA that signs profiles chains to."""
    cafile = ssl.get_default_verify_paths().cafile
    if not cafile:
        return None
    try:
        bundle = Path(cafile).read_bytes()
    except OSError:
        return None
    roots: list[x509.Certificate] = []
    with warnings.catch_warnings():  # a bundle's old roots (a serial of 0) are read, with a deprecation warning
        warnings.simplefilter("ignore")
        for block in _PEM_CERTIFICATE.findall(bundle):  # one by one: a root cryptography refuses is skipped
            with contextlib.suppress(ValueError):
                roots.append(x509.load_pem_x509_certificate(block))
    return roots


def _chain_warnings(leaf: x509.Certificate, chain: tuple[x509.Certificate, ...], path: Path) -> tuple[Problem, ...]:
    """A chain that stops below a root: the signer's issuer is checked in `_check_issuer_present`, but a
    missing certificate further up (the intermediate's own issuer: many CAs issue from a second-level
    intermediate) went unnoticed, and devices show such a profile as "Not Verified". The chain is followed
    from the signer upwards; where it ends on a certificate that is not self-issued, its issuer must be a
    root this machine trusts. A private root (an enterprise CA whose root the MDM installs) is legitimate:
    a warning, not an error."""
    top, seen = leaf, {leaf.public_bytes(serialization.Encoding.DER)}
    while top.subject != top.issuer:
        issuer = _issuer_in(top, chain)
        if issuer is None or issuer.public_bytes(serialization.Encoding.DER) in seen:
            break
        seen.add(issuer.public_bytes(serialization.Encoding.DER))
        top = issuer
    if top.subject == top.issuer:  # the chain reaches a self-issued root
        return ()
    roots = _trusted_roots()
    if roots is None or _issuer_in(top, roots) is not None:
        return ()
    below = "the signing certificate" if top is leaf else f"the chain's last certificate ({_subject(top)})"
    return (Problem(Position(str(path)), f"{below} was issued by {top.issuer.rfc4514_string()}, which is neither "
                    "in the chain nor a root this machine trusts (its CA bundle): devices that do not trust it "
                    "either show the profile as Not Verified",
                    "add the CA's missing intermediate certificate(s) to the chain (--sign-chain, or "
                    "targets.apple.signing.chain); nothing to do for a private root your devices install",
                    "warning"),)


def _check_issuer_present(leaf: x509.Certificate, chain: tuple[x509.Certificate, ...], path: Path) -> None:
    if _issuer_in(leaf, chain) is not None:
        return
    raise BuildError(
        f"{path}: no certificate in the chain issued the signing certificate ({_subject(leaf)}, issued by "
        f"{leaf.issuer.rfc4514_string()}) — pass the intermediate certificates of this certificate's CA"
    )
