"""What the Federation core needs from the outside world. Adapters implement these."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from servers.common.processes import LineSink, RunRequest, RunResult
from servers.federation.domain.jobs import Job, LogLine, Page
from servers.federation.domain.records import Framework


@dataclass(frozen=True)
class DatasetInfo:
    dataset_id: str
    sha256: str
    size_bytes: int
    content_type: str
    filename: str = ""


@dataclass(frozen=True)
class ModelIntake:
    """A final model as the Registry stores it: owned by the job's organization, with its lineage."""

    organization_id: str
    developer_id: str
    display_name: str
    dataset_id: str
    framework: str  # the model file's framework as the Registry and the Translator name it ("pytorch")
    input_signature: str  # JSON, as the Trainer's recipes declare it
    provenance: dict[str, str]  # the job, the federated framework and version, parameters, privacy, commitments
    filename: str


class Registry(Protocol):
    """The Registry RPCs the Federation server calls. `on_behalf_of`: the organization whose
    access the Registry applies (docs/security.md)."""

    async def get_dataset(self, dataset_id: str, *, on_behalf_of: str) -> DatasetInfo: ...
    def download_dataset(self, dataset_id: str, *, on_behalf_of: str) -> AsyncIterator[bytes]: ...
    async def register_model(self, intake: ModelIntake, chunks: AsyncIterator[bytes]) -> str:
        """Stores the model (anchored on the ledger); returns its model id."""


class JobRepository(Protocol):
    async def insert(self, job: Job) -> None: ...
    async def get(self, job_id: str) -> Job: ...
    async def save(self, job: Job, expected_state: str) -> bool:
        """Writes `job` if its stored state is still `expected_state`; False otherwise."""
    async def delete(self, job_id: str) -> None: ...
    async def list(self, page_size: int, page_token: str, framework: str, organization_id: str | None) -> Page:
        """Newest first; only `organization_id`'s jobs unless it is None (every job)."""
    async def live_jobs(self) -> list[Job]: ...
    async def append_logs(self, job_id: str, lines: list[LogLine]) -> None: ...
    async def logs_after(self, job_id: str, after_sequence: int, limit: int) -> list[LogLine]: ...


class ProcessRunner(Protocol):
    """Runs a job's process with limits, its lines to `on_line`; cancelling the call kills the
    process group (servers.common.processes.LocalProcessRunner)."""

    async def run(self, request: RunRequest, on_line: LineSink) -> RunResult: ...
    def kill_leftover(self, pid_file: Path) -> bool: ...


@dataclass(frozen=True)
class Launch:
    """How a framework's job starts: the command (in the framework's own virtualenv) and the
    environment it adds to the job's."""

    argv: list[str]
    env: dict[str, str]


class Frameworks(Protocol):
    """The frameworks this server can run, and how to start one's job on its prepared directory."""

    def available(self, framework: Framework) -> str:
        """"" when `framework` can run here, else why not (a sentence)."""
    def launch(self, framework: Framework, job_dir: Path) -> Launch: ...
    async def abort(self, framework: Framework, job_dir: Path) -> None:
        """Stops what a job started outside its process group (a real-mode FLARE job on its FLARE
        server); a no-op for other jobs. Never raises."""
