"""The mesh's attestation signing key (the `Signer` port of domain/attestations.py): ECDSA P-256.

Production: a PEM private key given by MLMESH_REGISTRY_SIGNING_KEY_FILE (mount it from a secret;
it is only read). Embedded default: `<data_dir>/provenance/signing-key.pem`, made on first start
(mode 0600, written atomically) and kept. Either way the public half is written beside the data as
`<data_dir>/provenance/signing-key.pub.pem`, and served by GetSigningKey (GET /v1/signingKey)."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger("mlmesh.registry.signing")
SCHEME = "ecdsa-sha2-nistp256"


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def key_id_of(public_key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 of the public key's DER SubjectPublicKeyInfo, hex: the envelopes' keyid."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


class EcdsaSigner:
    """Implements `servers.registry.domain.attestations.Signer`."""

    scheme = SCHEME
    key_file: Path | None = None  # where the private key was read from (model_signing's worker reads it too)

    def __init__(self, private_key: ec.EllipticCurvePrivateKey):
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or private_key.curve.name != "secp256r1":
            raise ValueError("the attestation signing key must be an ECDSA P-256 (secp256r1) private key")
        self._key = private_key
        public = private_key.public_key()
        self.key_id = key_id_of(public)
        self.public_key_pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    @classmethod
    def load(cls, key_file: Path | None, data_dir: Path) -> EcdsaSigner:
        """The configured key, or the embedded default under `data_dir` (made if missing); writes the
        public key file."""
        folder = data_dir / "provenance"
        if key_file is not None:
            path = Path(key_file)
            signer = cls(serialization.load_pem_private_key(path.read_bytes(), password=None))
        else:
            path = folder / "signing-key.pem"
            if not path.exists():
                key = ec.generate_private_key(ec.SECP256R1())
                _write_atomic(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()), 0o600)
                log.info("made the embedded attestation signing key %s", path)
            signer = cls(serialization.load_pem_private_key(path.read_bytes(), password=None))
        signer.key_file = path
        public = folder / "signing-key.pub.pem"
        if not public.exists() or public.read_text() != signer.public_key_pem:
            _write_atomic(public, signer.public_key_pem.encode(), 0o644)
        return signer
