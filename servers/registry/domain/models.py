"""The Registry's records. Plain data: no grpc, no generated code, no SQL."""

from __future__ import annotations

import datetime as dt
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
