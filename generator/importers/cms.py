"""Signed Apple profiles: unwrap the CMS SignedData, name the signer, optionally verify the signature.

A signed .mobileconfig is DER (or, from Apple's own tools, BER with indefinite lengths) CMS SignedData with
the plist as encapsulated content (FORMATS.md §1; SERVICE-AND-DELIVERY.md D.2). asn1crypto parses both
encodings; the input is size-limited before it gets here. Verification checks what it says and no more:
the content digest against the signed messageDigest attribute, and the signature over the signed
attributes against the public key of the certificate named as signer. It does not check the certificate
chain against a trust store or revocation: the report says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from generator.errors import Position
from generator.importers.draft import fail

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha1": hashes.SHA1, "sha256": hashes.SHA256,
                                                  "sha384": hashes.SHA384, "sha512": hashes.SHA512}
_FIX = "export the signed profile again (the file is truncated or damaged), or import the unsigned one"


@dataclass(frozen=True)
class Unwrapped:
    content: bytes
    signer: str  # subject of the signer certificate, or a description when it is not included
    verified: str | None  # what verification established (None: not asked)


def is_cms(data: bytes) -> bool:
    # SEQUENCE with a definite long-form or indefinite length, then the id-signedData OID.
    return data[:1] == b"\x30" and b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02" in data[:32]


def unwrap(data: bytes, file: str, verify: bool) -> Unwrapped:
    where = Position(file)
    try:
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "signed_data":
            raise fail(where, f"the CMS structure is {info['content_type'].native}, not SignedData",
                       "encrypted profiles cannot be imported without the device's key; give the unsigned profile")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].native != "data" or encap["content"].native is None:
            raise fail(where, "the signature holds no profile (a detached signature?)",
                       "give the signed profile itself, with its content")
        content: bytes = encap["content"].native
        certs = [c.chosen for c in (signed["certificates"] or []) if c.name == "certificate"]
        signer_infos = list(signed["signer_infos"])
        if not signer_infos:
            raise fail(where, "the CMS SignedData has no signer", "give a signed or an unsigned profile")
        signer_info = signer_infos[0]
        # asn1crypto parses lazily: a damaged certificate or signer info fails here, not at load().
        cert = _signer_cert(signer_info, certs)
        subject = cert.subject.human_friendly if cert is not None else "a certificate not included in the file"
        verified = _verify(signer_info, cert, content, where) if verify else None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        raise fail(where, f"not a complete CMS SignedData ({type(exc).__name__}: {exc})", _FIX) from None
    return Unwrapped(content, subject, verified)


def _signer_cert(signer_info: cms.SignerInfo, certs: list[Any]) -> Any:
    sid = signer_info["sid"]
    for cert in certs:
        if sid.name == "issuer_and_serial_number":
            if (cert.issuer == sid.chosen["issuer"]
                    and cert.serial_number == sid.chosen["serial_number"].native):
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    return None


def _verify(signer_info: cms.SignerInfo, cert: Any, content: bytes, where: Position) -> str:
    def bad(what: str) -> Exception:
        return fail(where, f"signature verification failed: {what}", "import without --verify-signature to "
                    "read the profile anyway, or get a correctly signed copy")

    if cert is None:
        raise bad("the signer's certificate is not in the file")
    algorithm = signer_info["digest_algorithm"]["algorithm"].native
    if algorithm not in _HASHES:
        raise bad(f"unsupported digest algorithm {algorithm}")
    attrs = signer_info["signed_attrs"]
    if not attrs:
        raise bad("the signature has no signed attributes (not the layout Apple profiles use)")
    digest = next((a["values"][0].native for a in attrs if a["type"].native == "message_digest"), None)
    if digest != hashlib.new(algorithm, content).digest():
        raise bad("the profile does not match the signed digest (it was changed after signing)")
    signed_bytes = b"\x31" + attrs.dump()[1:]  # signed over as a SET OF, not as the [0] IMPLICIT tag
    x509_cert = x509.load_der_x509_certificate(cert.dump())
    key = x509_cert.public_key()
    signature = signer_info["signature"].native
    hash_algorithm = _HASHES[algorithm]()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed_bytes, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed_bytes, ec.ECDSA(hash_algorithm))
        else:
            raise bad(f"unsupported signer key type {type(key).__name__}")
    except InvalidSignature:
        raise bad(f"the signature does not match the certificate of {x509_cert.subject.rfc4514_string()}") \
            from None
    except UnsupportedAlgorithm as exc:
        raise bad(str(exc)) from None
    valid = (f"{x509_cert.not_valid_before_utc:%Y-%m-%d} to {x509_cert.not_valid_after_utc:%Y-%m-%d}")
    return (f"the profile is intact and signed with the key of {x509_cert.subject.rfc4514_string()} "
            f"(certificate valid {valid}); the certificate chain and revocation were NOT checked against any "
            "trust store")
