"""A demo package for first runs: real, signed, and trusted by a demo CA of this install.

The tooling calls the app here (``publisher_add``, audited like any other change); the
app never imports the tooling for the demo.

The demo CA and publisher keys live under ``$DEVICEUPDATE_DATA_DIR/demo`` (mode 0600),
so running it again signs with the same CA; the CA is added to the trusted publishers
once, audited like any other.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from deviceupdate_devtools.builder import (
    Signer,
    build_package,
    build_update,
    make_publisher,
    make_test_ca,
)
from portal.models import TrustedPublisher
from portal.services.audit import Actor
from portal.services.publishers import publisher_add

DEMO_VALID_FROM = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
DEMO_VALID_UNTIL = dt.datetime(2044, 1, 1, tzinfo=dt.UTC)
# What the simulated phones run at first, the version the README's "See it work" approves
# for everyone, and the one its "A staged rollout" then rolls out in waves.
DEMO_FACTORY_VERSION = "4.0.7577.4363"
DEMO_VERSIONS = ("4.0.7577.4387", "4.0.7577.4400")
# Fixed rule Ids, so every demo package updates the same demo rules.
DEMO_UPDATES = (
    ("Polycom", "CX600", uuid.UUID("2de8cbf6-8a1e-4bc0-9d9e-0b2b5a1c1f11")),
    ("Polycom", "CX700", uuid.UUID("5b0b3f8e-3c55-4f55-8f0e-6a3c2d1e9a70")),
    ("Aastra", "6725ip", uuid.UUID("9f1c4c2a-7d0e-4a6b-b9a1-1c2d3e4f5a6b")),
)


@dataclass(frozen=True)
class DemoPackage:
    path: Path
    version: str
    trusted_now: bool


def _load_or_make(directory: Path, name: str, make: object) -> Signer:
    key_file, cert_file = directory / f"{name}.key.pem", directory / f"{name}.cert.pem"
    if key_file.exists() and cert_file.exists():
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        return Signer(certificate, key)  # type: ignore[arg-type]
    signer: Signer = make()  # type: ignore[operator]
    key_file.touch(mode=0o600)
    key_file.write_bytes(
        signer.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(signer.certificate_pem)
    return signer


def demo_package_make(*, directory: Path, version: str, actor: Actor) -> DemoPackage:
    """Write ``UCUpdates-<version>.cab`` for three demo phone models; trust the demo CA."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _load_or_make(
        directory,
        "demo-ca",
        lambda: make_test_ca(
            common_name="Device Update Demo CA",
            not_before=DEMO_VALID_FROM,
            not_after=DEMO_VALID_UNTIL,
        ),
    )
    publisher = _load_or_make(
        directory,
        "demo-publisher",
        lambda: make_publisher(
            ca,
            common_name="Device Update Demo Publisher",
            not_before=DEMO_VALID_FROM,
            not_after=DEMO_VALID_UNTIL,
        ),
    )
    publisher = Signer(publisher.certificate, publisher.key, chain=(ca.certificate,))
    fingerprint = ca.certificate.fingerprint(hashes.SHA256()).hex()
    trusted_now = not TrustedPublisher.objects.filter(fingerprint_sha256=fingerprint).exists()
    if trusted_now:
        publisher_add(pem=ca.certificate_pem.decode("ascii"), actor=actor)
    updates = [
        build_update(
            signer=publisher,
            brand=brand,
            model=model,
            update_id=rule_id,
            version=version,
            images={"CPE.nbt": 256 * 1024},
            description=f"Demo firmware {version} for the {brand} {model}",
            signing_time=dt.datetime.now(dt.UTC),
        )
        for brand, model, rule_id in DEMO_UPDATES
    ]
    path = build_package(updates, path=directory / f"UCUpdates-{version}.cab")
    return DemoPackage(path=path, version=version, trusted_now=trusted_now)
