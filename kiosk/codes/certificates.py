"""What the kiosk needs from a DCC signer certificate: its public key, subject, country and
extended key usages, read leniently where the encoding is merely untidy.

``cryptography`` is strict about DER: it refuses certificates that encode a default value
(``BasicConstraints`` with an explicit ``cA FALSE``, as the Finnish signers have) or an empty
``ExtendedKeyUsage`` (which X.509 says must hold at least one purpose; test case ``common/CO15``).
Such a certificate is still unambiguous, and trust in it comes from the operator's signed list, not
from the certificate's own correctness; so when ``cryptography`` refuses the certificate or its
extensions, ``asn1crypto`` (a lenient, well-kept ASN.1 parser) reads the subject public key and the
extended key usages instead. The key itself is always loaded by ``cryptography``. A certificate that
neither can read, or whose usages are ambiguous (the extension twice), is not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_der_public_key
from cryptography.x509.oid import NameOID

from kiosk.errors import CertificateError

_EXTENDED_KEY_USAGE = "2.5.29.37"


@dataclass(frozen=True)
class SignerFacts:
    public_key: Any
    subject: str
    country: str | None
    usages: frozenset[str] | None  # dotted extended key usage OIDs; None: no such extension
    lenient: str | None = None  # why the lenient parser was used, for the log


def read_certificate(der: bytes) -> SignerFacts:
    """The facts of a DER certificate; CertificateError if it cannot be read at all."""
    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        return _lenient(der, f"certificate: {exc}")
    try:
        public_key = certificate.public_key()
        subject = certificate.subject.rfc4514_string()
        countries = certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
    except (ValueError, UnsupportedAlgorithm) as exc:
        return _lenient(der, f"certificate: {exc}")
    country = countries[0].value if countries and isinstance(countries[0].value, str) else None
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        usages: frozenset[str] | None = frozenset(oid.dotted_string for oid in usage)
    except x509.ExtensionNotFound:
        usages = None
    except Exception as exc:  # ValueError, and cryptography's own kinds (x509.DuplicateExtension ...)
        lenient = _lenient(der, f"extensions: {type(exc).__name__}: {exc}")
        return SignerFacts(public_key, subject, country, lenient.usages, lenient.lenient)
    return SignerFacts(public_key, subject, country, usages)


def _lenient(der: bytes, why: str) -> SignerFacts:
    try:
        certificate = asn1_x509.Certificate.load(der, strict=True)
        tbs = certificate["tbs_certificate"]
        public_key = load_der_public_key(tbs["subject_public_key_info"].dump())
        subject = certificate.subject.human_friendly
        country = certificate.subject.native.get("country_name")
        found = [extension for extension in tbs["extensions"] if extension["extn_id"].dotted == _EXTENDED_KEY_USAGE]
        if len(found) > 1:
            raise CertificateError("the extended key usage extension appears more than once")
        usages = frozenset(purpose.dotted for purpose in found[0]["extn_value"].parsed) if found else None
    except CertificateError:
        raise
    except Exception as exc:  # asn1crypto and cryptography raise many kinds on a malformed certificate
        raise CertificateError(f"not a readable X.509 certificate ({why}; lenient reading: {exc})") from None
    return SignerFacts(public_key, subject, country if isinstance(country, str) else None, usages, why)
