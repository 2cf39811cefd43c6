"""The Registry's records. Plain data: no grpc, no generated code, no SQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetRecord:
    """A committed dataset: its bytes are in object storage under `object_key`,
    its hashes are anchored in the contract at `contract_address`."""

    dataset_id: str  # UUID, lowercase canonical form
    display_name: str
    organization_id: str
    samples_dimension: str
    content_type: str
    filename: str
    size_bytes: int
    md5: str  # lowercase hex
    sha256: str  # lowercase hex
    object_key: str
    contract_address: str
    contract_tx_hash: str
    create_time: dt.datetime  # timezone-aware UTC


@dataclass(frozen=True)
class Page:
    """One page of a listing; `next_page_token` is empty on the last page."""

    items: list
    next_page_token: str


# Model states, as stored and as the API names them (Model.State minus the STATE_ prefix).
PENDING, TRAINING, TRAINED, FAILED = "PENDING", "TRAINING", "TRAINED", "FAILED"
MODEL_STATES = (PENDING, TRAINING, TRAINED, FAILED)


@dataclass(frozen=True)
class ModelRecord:
    """A registered model. `source_kind` is "recipe" (an archive stored under
    `recipe_object_key`), "image" (a container image pinned by `image_digest`) or "online" (a
    version a Learner saved; its learning record is stored under `recipe_object_key`)."""

    model_id: str
    display_name: str
    organization_id: str
    developer_id: str
    dataset_id: str
    source_kind: str
    recipe_filename: str
    recipe_size_bytes: int
    recipe_md5: str
    recipe_sha256: str
    recipe_object_key: str
    image_reference: str
    image_digest: str
    time_limit_seconds: int
    memory_limit_bytes: int
    state: str
    failure_reason: str
    training_job_id: str
    framework: str
    input_signature: str
    size_bytes: int
    res_md5: str
    res_sha256: str
    object_key: str
    contract_address: str
    contract_tx_hash: str
    verify_tx_hash: str
    create_time: dt.datetime
    update_time: dt.datetime
    # Online-learned versions (source_kind "online"; the learning record is the "recipe").
    parent_model_id: str = ""
    version: int = 0
    learner_id: str = ""
    observations: int = 0
    observations_sha256: str = ""
    validation_loss: float = 0.0

    @property
    def train_image_hash(self) -> str:
        """What the Model contract records as train_image_hash: the MD5 of the recipe or learning
        record, the image digest, or for an image given without a digest (unpinned) the MD5 of its
        reference's text, which pins the name, not the bytes."""
        if self.source_kind != "image":
            return self.recipe_md5
        return self.image_digest or hashlib.md5(self.image_reference.encode()).hexdigest()

    @property
    def train_image_sha256(self) -> str:
        if self.source_kind != "image":
            return self.recipe_sha256
        return self.image_digest.removeprefix("sha256:") or hashlib.sha256(self.image_reference.encode()).hexdigest()


# Sharing (docs/security.md). Resource kinds as stored; actions as the audit log records them.
DATASET, MODEL = "dataset", "model"
SHARE, UNSHARE = "SHARE", "UNSHARE"


@dataclass(frozen=True)
class GrantRecord:
    """One grantee's right to read a resource; `grantee` "*" is the public grant."""

    grantee: str
    granted_by: str  # the subject of the owner's member who made it ("" for a mesh server)
    grant_time: dt.datetime


@dataclass(frozen=True)
class AccessEventRecord:
    """One accepted share or unshare request (the audit log is append-only)."""

    action: str  # SHARE or UNSHARE
    grantee: str  # an organization, or "*" for public access
    actor_organization_id: str  # "" for a mesh server
    actor_subject: str  # "" for a mesh server
    event_time: dt.datetime
    changed: bool  # False: the grant already existed (share) or did not (unshare)
    event_id: int = 0  # the audit row's id (not part of the API)
    anchor: AccessAnchorRecord | None = None  # its AccessLog entry; None while not anchored yet


# Outcomes of comparing an audit row with its AccessLog entry on the chain.
ANCHOR_CONSISTENT, ANCHOR_INCONSISTENT, ANCHOR_UNAVAILABLE = "CONSISTENT", "INCONSISTENT", "UNAVAILABLE"


@dataclass(frozen=True)
class AccessAnchorRecord:
    """Where the chain's AccessLog holds an access event, and whether it still agrees."""

    tx_hash: str
    index: int
    check: str = ""  # ANCHOR_*; "" when not compared
    detail: str = ""  # what differs, for ANCHOR_INCONSISTENT


@dataclass(frozen=True)
class AccessPolicyRecord:
    """Who may read a resource besides its owner, and how that came to be."""

    kind: str  # DATASET or MODEL
    resource_id: str
    owner_organization_id: str
    grants: list[GrantRecord]  # oldest first, the public grant included
    history: list[AccessEventRecord]  # oldest first

    @property
    def public(self) -> bool:
        return any(g.grantee == "*" for g in self.grants)

    @property
    def named_grants(self) -> list[GrantRecord]:
        return [g for g in self.grants if g.grantee != "*"]


@dataclass(frozen=True)
class UsageRecord:
    """A model registered on a dataset, as the dataset's owner sees it."""

    model_id: str
    organization_id: str
    create_time: dt.datetime
