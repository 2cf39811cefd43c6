"""The `ModelSigner` port: OpenSSF model_signing signatures made by servers/registry/model_signing_worker.py
in its own virtualenv (.venv-provenance, `make provenance-venv`), one short process per signature."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from servers.common import errors

log = logging.getLogger("mlmesh.registry.model_signing")
WORKER = Path(__file__).resolve().parents[1] / "model_signing_worker.py"
MAX_BUNDLE_BYTES = 1 << 20


class ProcessModelSigner:
    """Signs with the attestation key's file (the worker reads it; the key never crosses a pipe)."""

    media_type = "application/vnd.dev.sigstore.bundle.v0.3+json"

    def __init__(self, python: Path, private_key_file: Path, *, timeout_seconds: float = 60.0):
        self.python, self.private_key_file, self.timeout_seconds = Path(python), Path(private_key_file), timeout_seconds

    async def sign(self, name: str, sha256: str) -> str:
        if not self.python.exists():
            raise errors.FailedPrecondition(
                f"model signing needs the model_signing environment at {self.python} (make provenance-venv, "
                "or set MLMESH_REGISTRY_MODEL_SIGNING_PYTHON)", reason="MODEL_SIGNING_UNAVAILABLE")
        request = json.dumps({"name": name, "sha256": sha256, "private_key": str(self.private_key_file)}).encode()
        proc = await asyncio.create_subprocess_exec(
            str(self.python), str(WORKER), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        try:
            out, err = await asyncio.wait_for(proc.communicate(request), self.timeout_seconds)
        except TimeoutError:
            await _stop(proc)
            raise errors.Unavailable(f"model signing took longer than {self.timeout_seconds:.0f} s",
                                     reason="MODEL_SIGNING_TIMEOUT") from None
        except asyncio.CancelledError:  # the call was cancelled: leave no worker behind
            await _stop(proc)
            raise
        if proc.returncode != 0 or not out or len(out) > MAX_BUNDLE_BYTES:
            detail = err.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
            log.error("model signing failed (exit %s): %s", proc.returncode, err.decode(errors="replace")[-2000:])
            raise errors.Unavailable(f"model signing failed: {detail[0][:300]}", reason="MODEL_SIGNING_FAILED")
        return out.decode()


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()
