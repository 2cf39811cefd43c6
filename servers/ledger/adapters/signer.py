"""The key that signs the Ledger's transactions: read from a file, created on first run."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

log = logging.getLogger(__name__)


class SignerKeyError(RuntimeError):
    """The signer key file cannot be read or does not hold a private key (a deployment error)."""


def _create(path: Path) -> None:
    """Write a fresh key to `path` (mode 0600) unless another process got there first."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(Account.create().key.to_0x_hex() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic and never overwrites: a concurrent first run keeps one key
            log.info("generated a new Ledger signer key at %s", path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def load_or_create_signer(path: Path) -> LocalAccount:
    """The account whose hex private key is in `path`; a new key is generated if the file is missing."""
    if not path.exists():
        try:
            _create(path)
        except OSError as exc:
            raise SignerKeyError(f"cannot create the signer key file {path}: {exc}") from exc
    try:
        text = path.read_text().strip()
        mode = path.stat().st_mode
    except OSError as exc:
        raise SignerKeyError(f"cannot read the signer key file {path}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        # Not fatal: Kubernetes mounts secrets 0644 unless defaultMode says otherwise.
        log.warning(
            "signer key file %s is readable by group/others (mode %o); chmod 600 it", path, mode & 0o777
        )
    try:
        return Account.from_key(text)
    except (ValueError, TypeError) as exc:
        raise SignerKeyError(
            f"{path} does not hold a private key (expected 64 hex characters, optionally 0x-prefixed)"
        ) from exc
