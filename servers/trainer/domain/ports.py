"""What the Trainer's core needs from the outside world. Adapters implement these."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# The process records are the mesh's shared ones, so one local runner serves the Trainer and the
# Optimizer alike.
from servers.common.processes import LineSink, RunRequest, RunResult
from servers.trainer.domain.jobs import Job, LogLine, Page


@dataclass(frozen=True)
class ModelInfo:
    """What the Trainer reads of a Registry model."""

    model_id: str
    dataset_id: str
    state: str  # PENDING | TRAINING | TRAINED | FAILED
    training_job_id: str = ""
    recipe_filename: str = ""
    recipe_sha256: str = ""
    image_reference: str = ""
    image_digest: str = ""
    organization_id: str = ""  # the owner


@dataclass(frozen=True)
class DatasetInfo:
    dataset_id: str
    sha256: str
    size_bytes: int
    content_type: str
    filename: str = ""


class Registry(Protocol):
    """The Registry RPCs the Trainer calls. `on_behalf_of`: the organization whose access the
    Registry applies (docs/security.md); None is the Trainer's own, internal call."""

    async def get_model(self, model_id: str, *, on_behalf_of: str | None = None) -> ModelInfo: ...
    async def get_ledger_result(self, model_id: str, *, on_behalf_of: str | None = None) -> tuple[str, str]:
        """(res_hash MD5, res_sha256) as the model's ledger contract records them now ("" if unverified)."""
    def download_model(self, model_id: str, *, on_behalf_of: str | None = None) -> AsyncIterator[bytes]: ...
    async def get_dataset(self, dataset_id: str, *, on_behalf_of: str | None = None) -> DatasetInfo: ...
    def download_dataset(self, dataset_id: str, *, on_behalf_of: str | None = None) -> AsyncIterator[bytes]: ...
    def download_recipe(self, model_id: str, *, on_behalf_of: str | None = None) -> AsyncIterator[bytes]: ...
    async def report_status(self, model_id: str, job_id: str, state: str, failure_reason: str = "") -> None: ...
    async def submit_result(self, model_id: str, job_id: str, framework: str, input_signature: str,
                            chunks: AsyncIterator[bytes]) -> None: ...


class JobRepository(Protocol):
    async def insert_or_get_live(self, job: Job) -> tuple[Job, bool]:
        """Stores `job` unless its model has a live job; returns (the live job, created)."""
    async def get(self, job_id: str) -> Job: ...
    async def save(self, job: Job, expected_state: str) -> bool:
        """Writes `job` if its stored state is still `expected_state`; False otherwise."""
    async def list(self, page_size: int, page_token: str, model_id: str, organization_id: str | None) -> Page:
        """Newest first; only `organization_id`'s jobs unless it is None (every job)."""
    async def jobs_without_organization(self) -> list[Job]: ...
    async def set_organization(self, job_id: str, organization_id: str) -> None: ...
    async def live_jobs(self) -> list[Job]: ...
    async def append_logs(self, job_id: str, lines: list[LogLine]) -> None: ...
    async def logs_after(self, job_id: str, after_sequence: int, limit: int) -> list[LogLine]: ...
    async def last_log_sequence(self, job_id: str) -> int: ...
    async def set_report_pending(self, job_id: str, pending: bool) -> None: ...
    async def report_pending_jobs(self) -> list[Job]: ...


class ProcessRunner(Protocol):
    """Runs a recipe's process with limits, streaming its lines to `on_line`. Cancelling the
    call kills the process group."""

    async def run(self, request: RunRequest, on_line: LineSink) -> RunResult: ...

    def kill_leftover(self, pid_file: Path) -> bool:
        """Kills the process group recorded in `pid_file` by a previous Trainer process, if that
        very process still runs; True if it did."""


class Environments(Protocol):
    """The Python a recipe runs with: the ML base one, or one layered on it for the recipe's
    requirements (built once per requirements hash)."""

    async def python_for(self, requirements: Path | None, on_line: LineSink) -> Path: ...


class Workflows(Protocol):
    """A remote workflow engine (Argo) that runs all three steps itself."""

    async def submit(self, job: Job, model: ModelInfo | None = None) -> str: ...
    def watch(self, name: str) -> AsyncIterator[tuple[str, str]]:
        """(job state, failure reason) as the workflow moves, ending with a final state."""
    async def stop(self, name: str) -> None: ...
