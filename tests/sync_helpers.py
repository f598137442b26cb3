"""Shared by the event-log and upload tests: realistic events, loopback ports and certificates
(the clock and `wait_for` come from kit.py)."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

from kit import T0, FixedClock, wait_until

from kiosk.events import Event, utc_iso

wait_for = wait_until  # the name the upload tests use
__all__ = ["T0", "FixedClock", "wait_for", "make_event", "routine", "urgent", "closed_port", "self_signed_cert"]


def make_event(n: int, decision: str = "PASS", reasons: tuple[str, ...] = (), **fields: object) -> Event:
    """Event number n: a minute-stamped decision with a 32-hex id and a 64-hex code hash, as the kiosk makes."""
    values: dict[str, object] = dict(
        time=utc_iso(T0 + timedelta(seconds=n)),
        kiosk_id="kiosk-01",
        site_id="site-01",
        decision=decision,
        reasons=reasons,
        temperature_c=36.5 if "fever" not in reasons else 38.2,
        code_colour="green",
        code_hash=f"{n:064x}",
        code_scheme="platform",
        id=f"{n:032x}",
    )
    values.update(fields)
    return Event(**values)  # type: ignore[arg-type]


def routine(n: int) -> Event:
    return make_event(n)


def urgent(n: int, reason: str = "yellow_code") -> Event:
    return make_event(n, "REFUSE", (reason,), code_colour="yellow" if reason == "yellow_code" else "green")


def closed_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, signed by itself, and its key (PEM files)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kiosk test collector")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "collector.pem", folder / "collector.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
