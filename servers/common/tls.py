"""The mesh's mutual TLS: a private CA, one certificate per component, and gRPC credentials.

Envoy puts the verified token's organization in `x-mlmesh-org`, and the servers believe it. That
is only safe if nobody but Envoy (and the servers themselves) can reach a server's port: so every
server asks each caller for a certificate signed by the mesh CA (`server_credentials`), and every
mesh component dials with its own (`channel_credentials`). A caller without one cannot open a
connection, whatever headers it sends.

The embedded default (`make up`) makes the CA and the certificates with `ensure_mesh_certs`, next
to the JWT signing key, as `identity.ensure_keys` makes that key:

    <data_dir>/identity/mtls/ca.pem                  the CA certificate (its key: ca-key.pem)
    <data_dir>/identity/mtls/<component>.pem         leaf certificate, CN = the component
    <data_dir>/identity/mtls/<component>-key.pem     its private key

Keys are EC P-256. A leaf names its component three ways: the subject CN (what a server reads
from the TLS handshake, `caller.peer_component`), the URI SAN `spiffe://mlmesh/<component>`, and
DNS SANs `localhost` and `mlmesh-<component>` (its Kubernetes Service name) plus the IP SAN
127.0.0.1, so a target of `127.0.0.1:50051`, `localhost:50051` or `mlmesh-registry:50051` verifies.
In production, certificates come from the platform (cert-manager, a SPIFFE issuer) with the same
names; only the three file settings change (`servers.common.settings.TlsSettings`).

This module reads no environment: callers pass the directory and the components.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Every component that holds a certificate. "client" is for tests, benchmarks and tools that
# must dial a server directly; calls with it count as the mesh's own (internal).
COMPONENTS = ("envoy", "registry", "ledger", "trainer", "translator", "learner", "federation", "optimizer",
              "mqtt-bridge", "client")
ENVOY = "envoy"
SPIFFE_TRUST_DOMAIN = "mlmesh"
CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)
_CA_NAME = "mlmesh mesh CA"


@dataclass(frozen=True)
class MeshCerts:
    """Where `ensure_mesh_certs` put the CA and each component's certificate and key."""

    dir: Path

    @property
    def ca_file(self) -> Path:
        return self.dir / CA_FILE

    def cert_file(self, component: str) -> Path:
        return self.dir / f"{component}.pem"

    def key_file(self, component: str) -> Path:
        return self.dir / f"{component}-key.pem"


def spiffe_id(component: str) -> str:
    return f"spiffe://{SPIFFE_TRUST_DOMAIN}/{component}"


def service_name(component: str) -> str:
    """The component's Kubernetes Service name (k8s/base), a DNS SAN of its certificate."""
    return f"mlmesh-{component}"


def _check_component(component: str) -> str:
    if not component or len(component) > 63 or not all(c.isalnum() or c == "-" for c in component) \
            or not component[0].isalnum():
        raise ValueError(f"component name {component!r} must be 1-63 letters, digits and '-'")
    return component


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` with mode 0600, atomically: a temporary file, fsync, rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey | None:
    try:
        if path.stat().st_mode & 0o077:  # a private key must stay private: tighten a loosened file
            os.chmod(path, 0o600)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _fresh(cert: x509.Certificate | None, now: dt.datetime) -> bool:
    return cert is not None and cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > RENEW_BEFORE


def _make_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mlmesh"),
                      x509.NameAttribute(NameOID.COMMON_NAME, _CA_NAME)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _make_leaf(component: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
               now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    sans = x509.SubjectAlternativeName([
        x509.UniformResourceIdentifier(spiffe_id(component)),
        x509.DNSName("localhost"),
        x509.DNSName(service_name(component)),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ])
    not_after = min(now + LEAF_VALIDITY, ca.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mlmesh"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, component)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        # Every component both serves and dials (a server calls its peers): both usages.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .add_extension(sans, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def ensure_mesh_certs(dir: Path, components: Iterable[str] = COMPONENTS, *,
                      now: dt.datetime | None = None) -> MeshCerts:
    """The mesh CA and a certificate for each of `components` under `dir`: made on first call,
    reused after, and renewed when they expire within 30 days (the CA too: then every leaf is
    re-issued). Every file is written 0600 through a temporary file and a rename, so a reader
    never sees half a file. Call it before starting the processes that read the files (`make up`
    does); two concurrent first calls could each write a CA, and one would lose.
    """
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = now or dt.datetime.now(dt.UTC)
    certs = MeshCerts(dir)

    ca, ca_key = _load_cert(certs.ca_file), _load_key(dir / CA_KEY_FILE)
    if not (_fresh(ca, now) and ca_key is not None and ca.public_key() == ca_key.public_key()):
        ca, ca_key = _make_ca(now)
        _write_private(dir / CA_KEY_FILE, _key_pem(ca_key))
        _write_private(certs.ca_file, _cert_pem(ca))

    for component in components:
        _check_component(component)
        cert, key = _load_cert(certs.cert_file(component)), _load_key(certs.key_file(component))
        if _fresh(cert, now) and key is not None and cert.public_key() == key.public_key() and _signed_by(cert, ca):
            continue
        cert, key = _make_leaf(component, ca, ca_key, now)
        _write_private(certs.key_file(component), _key_pem(key))
        _write_private(certs.cert_file(component), _cert_pem(cert))
    return certs


# -- gRPC credentials -------------------------------------------------------------------------

@dataclass(frozen=True)
class TlsFiles:
    """The PEM bytes of one component's identity: the CA it trusts, its certificate and its key."""

    ca: bytes
    cert: bytes
    key: bytes

    @classmethod
    def read(cls, ca_file: Path, cert_file: Path, key_file: Path) -> TlsFiles:
        return cls(ca=Path(ca_file).read_bytes(), cert=Path(cert_file).read_bytes(), key=Path(key_file).read_bytes())


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Serve TLS and require a client certificate signed by the mesh CA."""
    return grpc.ssl_server_credentials([(files.key, files.cert)], root_certificates=files.ca,
                                       require_client_auth=True)


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Dial with this component's certificate; trust only servers signed by the mesh CA."""
    return grpc.ssl_channel_credentials(root_certificates=files.ca, private_key=files.key,
                                        certificate_chain=files.cert)
