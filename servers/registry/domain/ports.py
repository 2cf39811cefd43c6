"""What the Registry's domain needs from the outside world. Adapters implement these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import datetime as dt

from servers.registry.domain.records import AccessEventRecord, DatasetRecord, GrantRecord, Page


@dataclass(frozen=True)
class Anchor:
    """A contract deployed on the ledger."""

    contract_address: str
    tx_hash: str


@dataclass(frozen=True)
class DatasetContractFields:
    """A Dataset contract's fields as read from the chain."""

    contract_address: str
    chain_id: int
    dataset_id: str
    organization_id: str
    samples_dimension: str
    size_bytes: int
    md5: str
    sha256: str
    block_number: int


class Ledger(Protocol):
    async def deploy_dataset_contract(
        self, *, dataset_id: str, organization_id: str, samples_dimension: str, size_bytes: int, md5: str,
        sha256: str,
    ) -> Anchor: ...

    async def get_dataset_contract(self, address: str) -> DatasetContractFields: ...


class DatasetRepository(Protocol):
    async def insert(self, record: DatasetRecord) -> None: ...

    async def get(self, dataset_id: str) -> DatasetRecord: ...

    async def find_by_contract(self, address: str) -> DatasetRecord | None:
        """The dataset whose contract is at `address` (any letter case), or None."""
        ...

    async def list(self, page_size: int, page_token: str, organization_id: str, *, visible_to: str | None = None
                   ) -> Page:
        """Newest first; with `visible_to`, only the rows that organization may read (its own, those
        granted to it, public ones). None: every row (a mesh server)."""
        ...


@dataclass(frozen=True)
class ModelContractFields:
    """A Model contract's fields as read from the chain."""

    contract_address: str
    chain_id: int
    model_id: str
    organization_id: str
    developer_id: str
    dataset_id: str
    train_image_hash: str
    train_image_sha256: str
    res_hash: str
    res_sha256: str
    verified: bool
    block_number: int


class ModelLedger(Protocol):
    async def deploy_model_contract(
        self, *, model_id: str, organization_id: str, developer_id: str, dataset_id: str, train_image_hash: str,
        train_image_sha256: str,
    ) -> Anchor: ...

    async def get_model_contract(self, address: str) -> ModelContractFields: ...

    async def verify_model(self, address: str, *, res_hash: str, res_sha256: str) -> Anchor: ...


class Trainer(Protocol):
    async def submit_training_job(self, *, model_id: str, time_limit_seconds: int, memory_limit_bytes: int) -> str:
        """Schedules training; returns the job id."""
        ...


class ModelRepository(Protocol):
    async def insert(self, record) -> None: ...

    async def get(self, model_id: str): ...

    async def find_by_contract(self, address: str):
        """The ModelRecord whose contract is at `address` (any letter case), or None."""
        ...

    async def list(self, page_size: int, page_token: str, organization_id: str, dataset_id: str, *,
                   visible_to: str | None = None) -> Page: ...

    async def update(self, model_id: str, *, from_states: tuple[str, ...], **changes): ...

    async def delete(self, model_id: str) -> None: ...

    async def children(self, model_id: str) -> list:
        """The ModelRecords whose parent is `model_id` (versions saved from it), oldest first."""
        ...


@dataclass(frozen=True)
class AccessLogEntry:
    """An AccessLog entry as the Ledger reads it from the chain (docs/security.md)."""

    index: int
    resource_kind: str
    resource_id: str
    action: str
    grantee: str
    public: bool
    actor_organization_id: str
    actor_subject_sha256: str  # "" for a mesh server
    event_time_micros: int


class AccessLedger(Protocol):
    """The Ledger's AccessLog: append one access event, read a resource's entries."""

    async def record_access(self, entry: AccessLogEntry) -> tuple[str, int]:
        """Appends `entry` (its index is ignored); (tx hash, index on chain)."""
        ...

    async def access_entries(self, resource_kind: str, resource_id: str) -> list[AccessLogEntry]: ...


class AccessRepository(Protocol):
    """Grants of datasets and models ("*": public) and the append-only log of share/unshare requests."""

    async def grantees(self, kind: str, resource_id: str) -> frozenset[str]: ...

    async def change(self, kind: str, resource_id: str, action: str, grantees: list[str], *,
                     actor_organization_id: str, actor_subject: str, when: dt.datetime) -> None:
        """Adds (SHARE) or removes (UNSHARE) the grants and appends one event per grantee, all in one
        transaction; a grant that exists already is kept as it is."""
        ...

    async def policy(self, kind: str, resource_id: str) -> tuple[list[GrantRecord], list[AccessEventRecord]]:
        """The current grants and the whole history, oldest first."""
        ...

    async def unanchored(self, limit: int) -> list[tuple[str, str, AccessEventRecord]]:
        """(kind, resource id, event) of the oldest audit rows without a ledger anchor."""
        ...

    async def set_anchor(self, event_id: int, tx_hash: str, index: int) -> None:
        """Records the event's AccessLog entry (once: an anchored row keeps its anchor)."""
        ...

    async def usages(self, dataset_id: str, page_size: int, page_token: str) -> Page:
        """UsageRecords of the models registered on the dataset, newest first."""
        ...


# -- lineage (domain/lineage.py): what the Registry asks the Trainer, Translator and Ledger ---------


@dataclass(frozen=True)
class TrainingJobInfo:
    """A training job as the Trainer reports it."""

    job_id: str
    model_id: str
    dataset_id: str
    state: str  # "SUCCEEDED", "FAILED", ... (the Trainer's state names without STATE_)
    executor: str
    framework: str
    failure_reason: str
    create_time: dt.datetime | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    purpose: str = "TRAINING"  # or "REPRODUCTION" (TrainerService.ReproduceModel)
    reproduction: ReproductionInfo | None = None  # a SUCCEEDED reproduction's outcome


@dataclass(frozen=True)
class ReproductionInfo:
    """How a reproduction's artifact compared with the original (the Trainer's Reproduction)."""

    outcome: str  # "IDENTICAL" | "DIFFERENT"
    ledger_res_sha256: str
    ledger_res_hash: str
    reproduced_sha256: str
    max_abs_diff: float
    compared_samples: int
    top1_agreement: float
    method: str


@dataclass(frozen=True)
class TranslationInfo:
    """An ONNX translation as the Translator reports it."""

    translation_id: str
    model_id: str
    framework: str
    source_sha256: str
    converter: str
    opset: int
    size_bytes: int
    md5: str
    sha256: str
    parity: dict  # max_abs_diff, max_rel_diff, atol, rtol, passed, samples, top1_agreement, batch_source
    contract_address: str
    contract_tx_hash: str
    create_time: dt.datetime | None


@dataclass(frozen=True)
class TranslationContractFields:
    """A Translation contract's fields as read from the chain."""

    contract_address: str
    chain_id: int
    translation_id: str
    model_id: str
    model_contract: str
    source_sha256: str
    onnx_md5: str
    onnx_sha256: str
    converter: str
    opset: int
    max_abs_diff: str
    parity_passed: bool
    block_number: int


class TrainingJobs(Protocol):
    async def get_training_job(self, job_id: str, *, on_behalf_of: str | None) -> TrainingJobInfo:
        """The job, as `on_behalf_of` may see it (NotFound otherwise; None: the Registry's own call)."""
        ...

    async def list_reproductions(self, model_id: str, *, on_behalf_of: str | None) -> list[TrainingJobInfo]:
        """The model's SUCCEEDED reproductions that `on_behalf_of` may see (its organization's), oldest first."""
        ...


class Translations(Protocol):
    async def list_translations(self, model_id: str, *, on_behalf_of: str | None) -> list[TranslationInfo]:
        """Every translation of the model that `on_behalf_of` may read, oldest first."""
        ...


class LineageLedger(Protocol):
    async def get_dataset_contract(self, address: str) -> DatasetContractFields: ...

    async def get_model_contract(self, address: str) -> ModelContractFields: ...

    async def get_translation_contract(self, address: str) -> TranslationContractFields: ...
