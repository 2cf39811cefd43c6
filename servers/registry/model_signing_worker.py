"""Makes an OpenSSF model_signing signature of one model file, from its SHA-256: run by the Registry in
.venv-provenance (the `model-signing` package and its Sigstore dependencies stay out of the mesh's
environment), as a separate process. Standard library and model_signing only: no mlmesh import.

    .venv-provenance/bin/python servers/registry/model_signing_worker.py < request.json > model.sig

stdin: {"name": "model.pkl", "sha256": "<64 hex>", "private_key": "<path of a PEM EC private key>"}
stdout: the signature file (a Sigstore bundle, JSON), exactly what `model_signing sign key` writes for
that file. Errors: one line on stderr, exit 2 (bad request) or 1.

Why from the digest and not from the bytes: the Registry hashed the artifact while it streamed in and
the ledger anchors that SHA-256 (res_sha256); model_signing's manifest of a single file is that
file's SHA-256 under the resource name "." with the "files" serialization, so building the manifest
from the anchored digest signs the same statement `model_signing sign key model.pkl` would, without
reading the file again (a 1 GB model costs nothing here). Verification by model_signing itself
rehashes the user's file and compares (docs/provenance.md; tests/provenance_venv checks it). This uses
model-signing 1.1.1's manifest and key-signer modules (pinned in requirements/provenance.txt).
"""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile

# What `model_signing sign key` records for one file by default (git paths ignored, no symlinks).
SERIALIZATION = {"method": "files", "hash_type": "sha256", "allow_symlinks": False,
                 "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore"]}


def _request() -> tuple[str, bytes, pathlib.Path]:
    try:
        doc = json.load(sys.stdin)
        name, sha256, key = str(doc["name"]), str(doc["sha256"]).lower(), pathlib.Path(doc["private_key"])
        digest = bytes.fromhex(sha256)
    except (ValueError, KeyError, TypeError) as exc:
        raise SystemExit(_fail(2, f"bad request: {type(exc).__name__}: {exc}")) from None
    if len(digest) != 32:
        raise SystemExit(_fail(2, "sha256 must be 64 hex digits"))
    return name or "model", digest, key


def _fail(code: int, message: str) -> int:
    print(message, file=sys.stderr)
    return code


def main() -> int:
    name, digest, key = _request()
    from model_signing import manifest
    from model_signing._hashing import hashing
    from model_signing._signing import sign_ec_key, signing

    item = manifest.FileManifestItem(path=pathlib.PurePosixPath("."), digest=hashing.Digest("sha256", digest))
    model = manifest.Manifest(name, [item], manifest.SerializationType.from_args(SERIALIZATION))
    try:
        signature = sign_ec_key.Signer(key).sign(signing.Payload(model))
    except (OSError, ValueError, TypeError) as exc:
        return _fail(1, f"cannot sign with {key}: {exc}")
    with tempfile.TemporaryDirectory() as tmp:  # the library writes the bundle to a path
        out = pathlib.Path(tmp) / "model.sig"
        signature.write(out)
        sys.stdout.write(out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
