"""The Translator's file-based steps: downloads to local files checked against the Registry's
SHA-256, and ONNX files (written by the worker) into object storage, hashed while stored.
Checked reads of stored objects come from servers.common.blobs, shared with the Registry.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from servers.common import errors
from servers.common.blobs import _write_and_hash, download_to_file  # noqa: F401  (re-exported)
from servers.common.storage import ObjectStore

log = logging.getLogger("mlmesh.translator.blobs")
BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class Stored:
    key: str
    size_bytes: int
    md5: str
    sha256: str


async def store_file(store: ObjectStore, key: str, path: Path) -> Stored:
    """Copies the local file `path` to `key`, hashing MD5 + SHA-256 as the bytes go; the object
    becomes visible only once it is complete."""
    md5, sha = hashlib.md5(), hashlib.sha256()
    size = 0
    writer = await store.open_writer(key)
    try:
        f = await asyncio.to_thread(open, path, "rb")
        try:
            while True:
                block = await asyncio.to_thread(f.read, BLOCK_BYTES)
                if not block:
                    break
                await asyncio.gather(asyncio.to_thread(md5.update, block), asyncio.to_thread(sha.update, block))
                size += len(block)
                await writer.write(block)
        finally:
            await asyncio.to_thread(f.close)
        committed = await writer.commit()
    except BaseException:
        await asyncio.shield(_abort(writer, key))
        raise
    stored = Stored(key, size, md5.hexdigest(), sha.hexdigest())
    if committed != size:
        await discard(store, key)
        raise errors.DataLoss(f"storage recorded {committed} bytes of {key} but {size} were written",
                              reason="SIZE_MISMATCH")
    return stored


async def _abort(writer, key: str) -> None:
    try:
        await writer.abort()
    except Exception:  # noqa: BLE001
        log.exception("could not abort the upload of %s", key)


async def discard(store: ObjectStore, key: str) -> None:
    """Removes an object no row references (a later step failed); never raises."""
    try:
        await asyncio.shield(store.delete(key))
    except Exception:  # noqa: BLE001 - an unreferenced object is invisible; log and go on
        log.exception("could not remove %s after a failed translation", key)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK_BYTES), b""):
            h.update(block)
    return h.hexdigest()


def remove_tree(path: Path) -> None:
    import shutil

    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
