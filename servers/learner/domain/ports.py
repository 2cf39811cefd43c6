"""What the Learner's core needs from the outside world: the Registry (starting models and
reference datasets in, saved versions out) and the store of learner records. Adapters implement
these; the core sees only the plain records below, never a generated message."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from servers.learner.domain.records import JournalRow, LearnerRecord, Page

# ModelInfo.state of a model whose result is stored and verified on the ledger: the only state a
# learner starts from.
MODEL_TRAINED = "TRAINED"


@dataclass(frozen=True)
class ModelInfo:
    """What the Learner reads of a Registry model."""

    model_id: str
    state: str  # PENDING | TRAINING | TRAINED | FAILED | UNSPECIFIED
    framework: str
    res_sha256: str
    size_bytes: int
    version: int = 0  # its place in a line of versions (0: not a version); a learner continues it


@dataclass(frozen=True)
class DatasetInfo:
    """What the Learner reads of a Registry dataset (its reference dataset)."""

    dataset_id: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class VersionToSave:
    """A learner's next version, as the Registry records it (CreateModelVersion)."""

    organization_id: str
    developer_id: str
    display_name: str
    dataset_id: str
    parent_model_id: str
    version: int
    framework: str
    input_signature: str
    learner_id: str
    observations: int
    observations_sha256: str
    validation_loss: float
    learning_record: bytes


@dataclass(frozen=True)
class SavedModel:
    """The Registry model a saved version became."""

    model_id: str
    res_sha256: str


class Registry(Protocol):
    """`on_behalf_of`: the organization whose access the Registry applies (NotFound when it may not
    read the model or dataset; docs/security.md); None is the Learner's own, internal call."""

    async def get_model(self, model_id: str, *, on_behalf_of: str | None = None) -> ModelInfo: ...
    async def get_dataset(self, dataset_id: str, *, on_behalf_of: str | None = None) -> DatasetInfo: ...

    async def download_model(self, model: ModelInfo, path: Path, *, max_bytes: int,
                             on_behalf_of: str | None = None) -> None:
        """Writes the model to `path`, checked against its recorded hash."""
        ...

    async def download_dataset(self, dataset: DatasetInfo, path: Path, *, max_bytes: int,
                               on_behalf_of: str | None = None) -> None: ...

    async def create_version(self, version: VersionToSave, artifact: Path) -> SavedModel:
        """Internal (CreateModelVersion): the version belongs to `version.organization_id`."""
        ...


class LearnerRepository(Protocol):
    async def all(self) -> list[LearnerRecord]: ...
    async def insert(self, record: LearnerRecord) -> None: ...
    async def set_state(self, learner_id: str, state: str, failure_reason: str = "") -> None: ...
    async def list(self, *, page_size: int, page_token: str, organization_id: str) -> Page: ...

    async def delete(self, learner_id: str) -> None:
        """NotFound when the learner does not exist."""
        ...

    async def record_save(self, learner_id: str, *, current_model_id: str, version: int, observations_learned: int,
                          saved_validation_loss: float, transformer_state: dict[str, Any],
                          save_time: dt.datetime, journal_seq: int = 0, pending: bytes | None = None) -> None:
        """Records the version and, in the same transaction, compacts the learn journal: rows up to
        `journal_seq` go, `pending` (if any) is kept as the 'pending' row at `journal_seq`."""
        ...

    async def journal_append(self, learner_id: str, rows: list[tuple[int, bytes, bool]]) -> None:
        """Appends Learn messages, (seq, payload, flush) each, to the learner's journal in one
        transaction: all durable (committed) when it returns, or none."""
        ...

    async def journal_since(self, learner_id: str, seq: int) -> list[JournalRow]:
        """The journal rows at and after `seq`, in order."""
        ...
