"""What the Ledger records on chain, as plain values (no transport, no web3 types)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class DatasetSpec:
    """The fields of a Dataset contract to deploy (seed Table 11, plus SHA-256)."""

    dataset_id: str
    organization_id: str
    samples_dimension: str
    size_bytes: int
    md5: str
    sha256: str


@dataclass(frozen=True)
class DatasetContract:
    """A deployed Dataset contract, as read from the chain."""

    address: str
    dataset_id: str
    organization_id: str
    samples_dimension: str
    size_bytes: int
    md5: str
    sha256: str
    block_number: int
    chain_id: int


@dataclass(frozen=True)
class ModelSpec:
    """The fields of a Model contract to deploy (seed Table 13, plus SHA-256)."""

    model_id: str
    organization_id: str
    developer_id: str
    dataset_id: str
    train_image_hash: str
    train_image_sha256: str


@dataclass(frozen=True)
class ModelResult:
    """The training result's hashes that `verify` records (write-once)."""

    res_hash: str
    res_sha256: str


@dataclass(frozen=True)
class ModelContract:
    """A deployed Model contract, as read from the chain. The result fields are empty until verified."""

    address: str
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
    chain_id: int


@dataclass(frozen=True)
class TranslationSpec:
    """The fields of a Translation contract to deploy: a verified model translated to ONNX.

    `source_sha256` must equal the Model contract's res_sha256. The parity figures are decimal
    text (e.g. "3.4e-07"): the chain has no floating point."""

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
class TranslationContract:
    """A deployed Translation contract, as read from the chain. Every field is immutable."""

    address: str
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
    block_number: int
    chain_id: int


@dataclass(frozen=True)
class Transacted(Generic[T]):
    """The outcome of a mined transaction: the contract after it, and the transaction's hash."""

    contract: T
    tx_hash: str


@dataclass(frozen=True)
class ChainInfo:
    """The chain the Ledger writes to and the account that signs."""

    chain_id: int
    block_number: int
    signer_address: str
    node_version: str


@dataclass(frozen=True)
class AccessEventSpec:
    """One share or unshare to append to the chain's AccessLog (docs/security.md)."""

    resource_kind: str  # "dataset" or "model"
    resource_id: str  # the resource's UUID
    action: str  # "SHARE" or "UNSHARE"
    grantee: str  # an organization, or "*" for public access
    public: bool
    actor_organization_id: str
    actor_subject_sha256: str  # hex SHA-256 of the actor's subject; "" for a mesh server
    event_time_micros: int  # Unix microseconds


@dataclass(frozen=True)
class AccessEntry:
    """An AccessLog entry as read from the chain."""

    index: int
    spec: AccessEventSpec
    block_number: int
    contract_address: str
    chain_id: int
