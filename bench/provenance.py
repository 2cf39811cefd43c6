"""Export + offline verification of a large artifact's attestations against reading and hashing the
artifact once (the baseline), measured in the same run.

The export signs statements built from hashes the Registry already holds (computed while the model
streamed in), so its cost does not grow with the artifact; verification reads the artifact once to
hash it. The export half here is the Registry's statement building and ECDSA signing (the same code
the RPC runs), on a lineage whose model node names this artifact's digest; the verify half is
`mlmesh.client.provenance.verify_file` with the artifact. MLMESH_BENCH_PROVENANCE_MB sets the size
(default 1024).

With .venv-provenance (make provenance-venv) it also times the OpenSSF model_signing signature: made
by the Registry's worker from the digest (a process start, no read of the artifact), and verified by
model_signing's own `model_signing verify key`, which re-hashes the file (its default "files"
serialization: one SHA-256 stream per file), both as separate processes, as a user runs them."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from mlmesh.client import provenance
from servers.registry.adapters.signing_key import EcdsaSigner
from servers.registry.domain.attestations import envelope, statements
from servers.registry.domain.lineage import DATASET, MODEL, RECIPE, TRAINING_JOB, Lineage, LineageNode

REPO = Path(__file__).resolve().parents[1]
PROVENANCE_VENV = REPO / ".venv-provenance" / "bin"


def _write(path: Path, megabytes: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(megabytes):
            f.write(block)


def main() -> dict:
    megabytes = int(os.environ.get("MLMESH_BENCH_PROVENANCE_MB", "1024"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        artifact = work / "model.bin"
        _write(artifact, megabytes)
        t0 = time.perf_counter()
        digest = provenance.sha256_file(artifact)
        baseline = time.perf_counter() - t0

        signer = EcdsaSigner.load(None, work)
        now = dt.datetime.now(dt.UTC)
        lineage = Lineage("m", [LineageNode(DATASET, None, resource_id="d", sha256="a" * 64),
                                LineageNode(RECIPE, 0, resource_id="m", sha256="b" * 64),
                                LineageNode(TRAINING_JOB, 1, resource_id="j"),
                                LineageNode(MODEL, 2, resource_id="m", sha256=digest, md5="c" * 32,
                                            contract_address="0x0")], now, 31337)
        t0 = time.perf_counter()
        lines = [envelope(s, signer) for s in statements(lineage, "bench")]
        out = work / "model.intoto.jsonl"
        out.write_text("\n".join(lines) + "\n")
        exported = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = provenance.verify_file(out, public_key_pem=signer.public_key_pem, artifact=artifact)
        verified = time.perf_counter() - t0
        assert report.ok, report.failed()
        signing = _model_signing(work, artifact, digest, signer)
    total = exported + verified
    print(f"provenance: {megabytes} MB artifact; read + SHA-256 once {baseline:.2f} s "
          f"({megabytes / baseline:.0f} MB/s); export {exported * 1000:.1f} ms + verify {verified:.2f} s "
          f"= {total:.2f} s, {total / baseline:.2f}x the baseline (target <= 1.3x)")
    result = {"megabytes": megabytes, "baseline_s": baseline, "export_s": exported, "verify_s": verified,
              "ratio": total / baseline}
    if signing is None:
        print("provenance: model_signing not measured: .venv-provenance is missing (make provenance-venv)")
    else:
        sign_s, verify_s = signing
        print(f"provenance: model_signing sign (worker process, from the digest) {sign_s:.2f} s + "
              f"`model_signing verify key` {verify_s:.2f} s = {(sign_s + verify_s) / baseline:.2f}x the baseline")
        result.update(model_signing_sign_s=sign_s, model_signing_verify_s=verify_s,
                      model_signing_ratio=(sign_s + verify_s) / baseline)
    return result


def _model_signing(work: Path, artifact: Path, digest: str, signer: EcdsaSigner) -> tuple[float, float] | None:
    """(sign, verify) seconds of the model_signing signature, or None without .venv-provenance."""
    if not (PROVENANCE_VENV / "model_signing").exists():
        return None
    signature, public = work / "model.sig", work / "mesh.pub.pem"
    public.write_text(signer.public_key_pem)
    request = json.dumps({"name": artifact.name, "sha256": digest, "private_key": str(signer.key_file)})
    t0 = time.perf_counter()
    made = subprocess.run([str(PROVENANCE_VENV / "python"), str(REPO / "servers/registry/model_signing_worker.py")],
                          input=request, capture_output=True, text=True, check=True, timeout=300)
    sign_s = time.perf_counter() - t0
    signature.write_text(made.stdout)
    t0 = time.perf_counter()
    subprocess.run([str(PROVENANCE_VENV / "model_signing"), "verify", "key", "--signature", str(signature),
                    "--public_key", str(public), str(artifact)], capture_output=True, check=True, timeout=600)
    return sign_s, time.perf_counter() - t0


if __name__ == "__main__":
    main()
