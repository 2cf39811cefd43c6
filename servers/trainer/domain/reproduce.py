"""The last step of a reproduction (issue 14): compare the artifact the recipe just wrote with
the one the model's ledger contract verified.

- Same SHA-256 as the contract's `res_sha256`: IDENTICAL. Nothing else is claimed or needed.
- Otherwise: fetch the original from the Registry (on behalf of the job's organization, checked
  against that same `res_sha256`), run both models on the dataset's rows with the Translator's
  worker in the ML environment (`python -m servers.translator.worker --compare`, the code the
  parity check uses), and record the measured maximum absolute output difference: DIFFERENT.

The worker runs as a subprocess of the job (the same runner, limits and ML Python as the recipe);
this module imports no ML framework.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

from servers.common import errors
from servers.trainer.domain import jobs as J
from servers.trainer.domain.jobs import Job, Reproduction
from servers.trainer.domain.ports import ProcessRunner, Registry, RunRequest
from servers.trainer.domain.recipe import RecipeSpec
from servers.trainer.domain.steps import Note, StepFailed, fetch

# Where `servers.translator.worker` is importable from (the repository root or the image's /app).
WORKER_ROOT = Path(__file__).resolve().parents[3]
WORKER_MODULE = "servers.translator.worker"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def reproduction_from_report(report: dict, *, res_hash: str, res_sha256: str, reproduced_sha256: str) -> Reproduction:
    """A DIFFERENT outcome from the worker's --compare report (its `ok` already checked)."""
    batch = report.get("batch") or {}
    top1 = (report.get("differences") or {}).get("top1_agreement")
    if batch.get("source") == "dataset":
        on = f"on {batch.get('description', 'the dataset rows')}"
    else:  # the worker could not read the dataset as the signature's CSV: it says what it ran on
        on = f"on synthetic inputs, not the dataset's rows ({batch.get('description', 'no description')})"
    return Reproduction(
        outcome=J.DIFFERENT, ledger_res_sha256=res_sha256, ledger_res_hash=res_hash,
        reproduced_sha256=reproduced_sha256, max_abs_diff=float(report["max_abs_diff"]),
        compared_samples=int(batch.get("samples") or 0),
        top1_agreement=-1.0 if top1 is None else float(top1),
        method=f"bytes differ; both models run {on}: max |original - reproduced| over every output element",
    )


async def compare_with_original(registry: Registry, runner: ProcessRunner, python: Path, job: Job, spec: RecipeSpec,
                                artifact: Path, dataset_path: Path, job_dir: Path, note: Note,
                                env: dict[str, str], on_line) -> Reproduction:
    if not artifact.is_file() or artifact.stat().st_size == 0:
        raise StepFailed(f"the recipe exited successfully but wrote no artifact at MLMESH_OUTPUT_PATH "
                         f"({artifact.name}): nothing to compare")
    org = job.organization_id or None
    try:
        res_hash, res_sha256 = await registry.get_ledger_result(job.model_id, on_behalf_of=org)
    except errors.NotFound:
        raise StepFailed(f"model {job.model_id} is no longer readable by organization {org}") from None
    if not res_sha256:
        raise StepFailed(f"the ledger records no verified result for model {job.model_id} (or could not be "
                         "read): there is nothing to compare the reproduction with")
    reproduced = await asyncio.to_thread(_sha256, artifact)
    await note(f"compare: reproduced sha256 {reproduced}, ledger res_sha256 {res_sha256}")
    if reproduced == res_sha256:
        await note("compare: IDENTICAL (the bytes are the same)")
        return Reproduction(outcome=J.IDENTICAL, ledger_res_sha256=res_sha256, ledger_res_hash=res_hash,
                            reproduced_sha256=reproduced,
                            method="byte-identical: the reproduced artifact's SHA-256 equals the ledger's res_sha256")
    original = job_dir / "original" / f"original-{artifact.name}"
    size = await fetch(registry.download_model(job.model_id, on_behalf_of=org), original, sha256=res_sha256,
                       what=f"the trained artifact of model {job.model_id}")
    await note(f"compare: the original ({size} bytes) matches the ledger; running both models on the dataset")
    report_path = job_dir / "compare.json"
    argv = [str(python), "-m", WORKER_MODULE, f"--framework={spec.framework}", f"--model={original}",
            f"--compare={artifact}", f"--signature={spec.input.to_json()}", f"--dataset={dataset_path}",
            "--rows=0:", f"--report={report_path}"]
    result = await runner.run(
        RunRequest(argv=argv, cwd=WORKER_ROOT, env={**env, "PYTHONPATH": str(WORKER_ROOT)},
                   time_limit_seconds=job.time_limit_seconds, memory_limit_bytes=job.memory_limit_bytes,
                   pid_file=job_dir / "recipe.pid"),
        on_line)
    if result.limit_failure:
        raise StepFailed(f"comparing the models: {result.limit_failure}")
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        report = {}
    if result.exit_code != 0 or not report.get("ok"):
        message = (report.get("error") or {}).get("message") or "\n".join(result.stderr_tail[-5:]).strip()
        raise StepFailed(f"comparing the models failed: {message or f'exit status {result.exit_code}'}")
    outcome = reproduction_from_report(report, res_hash=res_hash, res_sha256=res_sha256, reproduced_sha256=reproduced)
    await note(f"compare: DIFFERENT bytes, max |original - reproduced| = {outcome.max_abs_diff:.6g} over "
               f"{outcome.compared_samples} rows")
    return outcome
