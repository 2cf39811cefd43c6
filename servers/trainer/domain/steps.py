"""The seed's three steps of a training job (D3.4 Figure 49), over the ports:

1. pre-train: read the model from the Registry, fetch its dataset and recipe, check both
   against their SHA-256, unpack the recipe and validate its `recipe.toml`;
2. train: run the recipe's entrypoint (the core does this with a `ProcessRunner`);
3. post-train: stream the single artifact to the Registry's result intake, 1 MiB at a time.

The local executor runs them inside the Trainer; the Argo executor runs pre-train and post-train
as commands in their own containers (servers/trainer/argo_steps.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import posixpath
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from servers.common import errors
from servers.trainer.domain.jobs import Job
from servers.trainer.domain.ports import DatasetInfo, ModelInfo, Registry
from servers.trainer.domain.recipe import ArchiveLimits, RecipeSpec, archive_kind, load_recipe, unpack_recipe

Note = Callable[[str], Awaitable[None]]
CHUNK_BYTES = 1 << 20


class StepFailed(Exception):
    """A step failed for a reason the user should see as the job's failure_reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Prepared:
    """What pre-train leaves for train: paths inside the job's directory."""

    model: ModelInfo
    dataset: DatasetInfo
    dataset_path: Path
    recipe_root: Path
    spec: RecipeSpec


def dataset_file_name(dataset: DatasetInfo) -> str:
    """`dataset` plus the original file's extension (or one guessed from the content type),
    so recipes that look at the extension (pandas, numpy) keep working."""
    suffix = ""
    if dataset.filename:
        base = posixpath.basename(dataset.filename.replace("\\", "/"))
        for double in (".tar.gz", ".csv.gz"):
            if base.lower().endswith(double):
                suffix = double
                break
        else:
            suffix = Path(base).suffix
    if not suffix and dataset.content_type:
        suffix = mimetypes.guess_extension(dataset.content_type.split(";")[0].strip()) or ""
    if not suffix or len(suffix) > 16 or not all(c.isalnum() or c == "." for c in suffix):
        suffix = ""
    return f"dataset{suffix}"


async def fetch(chunks: AsyncIterator[bytes], dest: Path, *, sha256: str, what: str) -> int:
    """Writes the stream to `dest`, hashing it; DataLoss unless it has SHA-256 `sha256`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(dest, "wb") as out:
        async for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            await asyncio.to_thread(out.write, chunk)
    got = digest.hexdigest()
    if sha256 and got != sha256.lower():
        raise errors.DataLoss(
            f"{what}: the bytes received ({size} bytes) have SHA-256 {got}, but the Registry records {sha256}",
            reason="DOWNLOAD_HASH_MISMATCH",
        )
    return size


async def read_model(registry: Registry, model_id: str, *, grace_seconds: float) -> ModelInfo:
    """GetModel, retried for `grace_seconds` while the Registry says NOT_FOUND or is unavailable:
    the Registry submits the job while it is still registering the model."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_seconds
    delay = 0.1
    while True:
        try:
            return await registry.get_model(model_id)
        except (errors.NotFound, errors.Unavailable):
            if loop.time() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def not_readable(dataset_id: str, org: str | None) -> str:
    """The failure reason of a job whose organization may not read its dataset (any more)."""
    return (f"dataset {dataset_id} does not exist or is not shared with organization {org}: the job cannot "
            "train on it (its owner may have revoked the grant)" if org else f"dataset {dataset_id} does not exist")


async def fetch_dataset_info(registry: Registry, dataset_id: str, org: str | None) -> DatasetInfo:
    """GetDataset on behalf of `org`; StepFailed naming the dataset and the organization when the
    Registry says it does not exist for that organization."""
    try:
        return await registry.get_dataset(dataset_id, on_behalf_of=org)
    except errors.NotFound:
        raise StepFailed(not_readable(dataset_id, org)) from None


async def pre_train(registry: Registry, job: Job, job_dir: Path, note: Note, *,
                    archive_limits: ArchiveLimits, model_grace_seconds: float) -> Prepared:
    model = await read_model(registry, job.model_id, grace_seconds=model_grace_seconds)
    if not model.recipe_sha256:
        if model.image_reference:
            raise StepFailed(
                f"model {model.model_id} is trained from the container image {model.image_reference}; "
                "this Trainer runs recipes locally and needs the argo executor for container images")
        raise StepFailed(f"model {model.model_id} has no training recipe")
    # The job's organization is the model's owner; the Registry applies its access to the dataset
    # (which may be another organization's, shared with it) and to the recipe.
    org = job.organization_id or model.organization_id or None
    dataset = await fetch_dataset_info(registry, model.dataset_id, org)
    dataset_path = job_dir / "input" / dataset_file_name(dataset)
    await note(f"pre-train: fetching dataset {dataset.dataset_id} ({dataset.size_bytes} bytes)")
    try:
        size = await fetch(registry.download_dataset(dataset.dataset_id, on_behalf_of=org), dataset_path,
                           sha256=dataset.sha256, what=f"dataset {dataset.dataset_id}")
    except errors.NotFound:
        raise StepFailed(not_readable(dataset.dataset_id, org)) from None
    await note(f"pre-train: dataset {dataset.dataset_id} verified: {size} bytes, sha256 {dataset.sha256}")
    filename = model.recipe_filename or "recipe.tar.gz"
    archive_kind(filename)
    archive = job_dir / ("recipe.zip" if filename.lower().endswith(".zip") else "recipe.tar.gz")
    size = await fetch(registry.download_recipe(model.model_id, on_behalf_of=org), archive,
                       sha256=model.recipe_sha256, what=f"the recipe of model {model.model_id}")
    await note(f"pre-train: recipe {filename} verified: {size} bytes, sha256 {model.recipe_sha256}")
    root = await asyncio.to_thread(unpack_recipe, archive, filename, job_dir / "recipe", archive_limits)
    spec = await asyncio.to_thread(load_recipe, root)
    await note(f"pre-train: recipe {spec.name!r}: framework {spec.framework}, entrypoint {spec.entrypoint}"
               + (f", requirements {spec.requirements}" if spec.requirements else ""))
    return Prepared(model=model, dataset=dataset, dataset_path=dataset_path, recipe_root=root, spec=spec)


async def file_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """The file's bytes, `chunk_bytes` at a time (never the whole file in memory)."""
    with open(path, "rb") as f:
        while True:
            block = await asyncio.to_thread(f.read, chunk_bytes)
            if not block:
                return
            yield block


async def post_train(registry: Registry, job: Job, spec: RecipeSpec, artifact: Path, note: Note, *,
                     attempts: int = 3, retry_delay: float = 1.0) -> None:
    if not artifact.is_file():
        raise StepFailed(f"the recipe exited successfully but wrote no artifact at MLMESH_OUTPUT_PATH "
                         f"({artifact.name}, expected for framework {spec.framework})")
    size = artifact.stat().st_size
    if size == 0:
        raise StepFailed(f"the recipe wrote an empty artifact ({artifact.name})")
    for attempt in range(1, attempts + 1):
        await note(f"post-train: streaming {artifact.name} ({size} bytes) to the Registry")
        try:
            await registry.submit_result(job.model_id, job.job_id, spec.framework, spec.input.to_json(),
                                         file_chunks(artifact))
            break
        except errors.Unavailable as exc:
            if attempt == attempts:
                raise
            await note(f"post-train: the Registry is unavailable ({exc.message}); retrying")
            await asyncio.sleep(retry_delay * attempt)
    await note("post-train: the Registry stored and verified the result")
