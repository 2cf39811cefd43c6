"""What the Translator's core needs from the outside world. Adapters implement these."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from servers.translator.domain.translations import Page, Translation


@dataclass(frozen=True)
class SourceModel:
    """What the Translator reads of a Registry model."""

    model_id: str
    state: str  # PENDING | TRAINING | TRAINED | FAILED | UNSPECIFIED
    framework: str
    input_signature: str
    dataset_id: str
    size_bytes: int
    res_sha256: str
    contract_address: str
    organization_id: str = ""  # the owner


@dataclass(frozen=True)
class SourceDataset:
    dataset_id: str
    sha256: str
    size_bytes: int
    content_type: str
    filename: str = ""


class Registry(Protocol):
    """`on_behalf_of`: the organization whose access the Registry applies (NotFound when it may not
    read the resource; docs/security.md); None is the Translator's own, internal call."""

    async def get_model(self, model_id: str, *, on_behalf_of: str | None = None) -> SourceModel: ...
    async def get_dataset(self, dataset_id: str, *, on_behalf_of: str | None = None) -> SourceDataset: ...
    def download_model(self, model_id: str, *, on_behalf_of: str | None = None) -> AsyncIterator[bytes]: ...
    def download_dataset(self, dataset_id: str, *, on_behalf_of: str | None = None) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class ContractRequest:
    translation_id: str
    model_id: str
    model_contract: str
    source_sha256: str
    onnx_md5: str
    onnx_sha256: str
    converter: str
    opset: int
    max_abs_diff: str
    max_rel_diff: str
    atol: str
    rtol: str
    parity_passed: bool


@dataclass(frozen=True)
class ContractFields:
    address: str
    translation_id: str
    model_id: str
    onnx_md5: str
    onnx_sha256: str
    parity_passed: bool


class Ledger(Protocol):
    async def deploy_translation_contract(self, request: ContractRequest) -> tuple[str, str]:
        """(contract address, transaction hash)."""
        ...

    async def get_translation_contract(self, address: str) -> ContractFields: ...


class TranslationRepository(Protocol):
    async def insert(self, translation: Translation) -> None: ...
    async def get(self, translation_id: str) -> Translation: ...
    async def list(self, *, page_size: int, page_token: str, model_id: str, organization_id: str | None) -> Page:
        """Newest first, optionally of one model; only translations `organization_id` owns unless it is None."""


@dataclass(frozen=True)
class WorkerRequest:
    framework: str
    model_path: Path
    signature: str
    dataset_path: Path
    out_path: Path
    report_path: Path
    rows: str
    opset: int


@dataclass(frozen=True)
class WorkerOutcome:
    """How the worker ended: `returncode` 0 (report written), 2 (refused: `reason`), other (failed)."""

    returncode: int
    reason: str  # the worker's `translator-worker: error: …` line, without the prefix
    stderr_tail: str
    report: dict | None
    timed_out: bool = False


class WorkerRunner(Protocol):
    async def run(self, request: WorkerRequest) -> WorkerOutcome: ...
