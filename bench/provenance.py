"""Export + offline verification of a large artifact's attestations against reading and hashing the
artifact once (the baseline), measured in the same run.

The export signs statements built from hashes the Registry already holds (computed while the model
streamed in), so its cost does not grow with the artifact; verification reads the artifact once to
hash it. The export half here is the Registry's statement building and ECDSA signing (the same code
the RPC runs), on a lineage whose model node names this artifact's digest; the verify half is
`mlmesh.client.provenance.verify_file` with the artifact. MLMESH_BENCH_PROVENANCE_MB sets the size
(default 1024)."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from pathlib import Path

from mlmesh.client import provenance
from servers.registry.adapters.signing_key import EcdsaSigner
from servers.registry.domain.attestations import envelope, statements
from servers.registry.domain.lineage import DATASET, MODEL, RECIPE, TRAINING_JOB, Lineage, LineageNode


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
    total = exported + verified
    print(f"provenance: {megabytes} MB artifact; read + SHA-256 once {baseline:.2f} s "
          f"({megabytes / baseline:.0f} MB/s); export {exported * 1000:.1f} ms + verify {verified:.2f} s "
          f"= {total:.2f} s, {total / baseline:.2f}x the baseline (target <= 1.3x)")
    return {"megabytes": megabytes, "baseline_s": baseline, "export_s": exported, "verify_s": verified,
            "ratio": total / baseline}


if __name__ == "__main__":
    main()
