"""proto <-> domain for the Registry. Pure functions, in pairs where both ways exist."""

from __future__ import annotations

import datetime as dt

from google.protobuf import timestamp_pb2
from mlmesh.registry.v1 import dataset_pb2 as pb
from mlmesh.registry.v1 import registry_service_pb2 as svc

from servers.registry.domain.datasets import Provenance, UploadMetadata
from servers.registry.domain.models import DatasetRecord
from servers.registry.domain.ports import DatasetContractFields


def timestamp_to_proto(value: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value.astimezone(dt.UTC))
    return ts


def timestamp_from_proto(ts: timestamp_pb2.Timestamp) -> dt.datetime:
    return ts.ToDatetime(tzinfo=dt.UTC)


def dataset_to_proto(r: DatasetRecord) -> pb.Dataset:
    return pb.Dataset(
        dataset_id=r.dataset_id,
        display_name=r.display_name,
        organization_id=r.organization_id,
        samples_dimension=r.samples_dimension,
        content_type=r.content_type,
        filename=r.filename,
        size_bytes=r.size_bytes,
        md5=r.md5,
        sha256=r.sha256,
        contract_address=r.contract_address,
        contract_tx_hash=r.contract_tx_hash,
        create_time=timestamp_to_proto(r.create_time),
    )


def dataset_from_proto(p: pb.Dataset, object_key: str | None = None) -> DatasetRecord:
    """The inverse of dataset_to_proto; the object key is not part of the API."""
    return DatasetRecord(
        dataset_id=p.dataset_id,
        display_name=p.display_name,
        organization_id=p.organization_id,
        samples_dimension=p.samples_dimension,
        content_type=p.content_type,
        filename=p.filename,
        size_bytes=p.size_bytes,
        md5=p.md5,
        sha256=p.sha256,
        object_key=object_key if object_key is not None else f"datasets/{p.dataset_id}",
        contract_address=p.contract_address,
        contract_tx_hash=p.contract_tx_hash,
        create_time=timestamp_from_proto(p.create_time),
    )


def upload_metadata_from_proto(first: svc.UploadDatasetRequest) -> UploadMetadata:
    return UploadMetadata(
        organization_id=first.organization_id,
        display_name=first.display_name,
        samples_dimension=first.samples_dimension,
        content_type=first.content_type or first.chunk.content_type,
        filename=first.filename,
        expected_md5=first.expected_md5,
        expected_sha256=first.expected_sha256,
    )


def upload_metadata_to_proto(m: UploadMetadata) -> svc.UploadDatasetRequest:
    return svc.UploadDatasetRequest(
        organization_id=m.organization_id,
        display_name=m.display_name,
        samples_dimension=m.samples_dimension,
        content_type=m.content_type,
        filename=m.filename,
        expected_md5=m.expected_md5,
        expected_sha256=m.expected_sha256,
    )


def on_chain_to_proto(c: DatasetContractFields) -> pb.OnChainDataset:
    return pb.OnChainDataset(
        contract_address=c.contract_address,
        chain_id=c.chain_id,
        dataset_id=c.dataset_id,
        organization_id=c.organization_id,
        samples_dimension=c.samples_dimension,
        size_bytes=c.size_bytes,
        md5=c.md5,
        sha256=c.sha256,
        block_number=c.block_number,
    )


def on_chain_from_proto(p: pb.OnChainDataset) -> DatasetContractFields:
    return DatasetContractFields(
        contract_address=p.contract_address,
        chain_id=p.chain_id,
        dataset_id=p.dataset_id,
        organization_id=p.organization_id,
        samples_dimension=p.samples_dimension,
        size_bytes=p.size_bytes,
        md5=p.md5,
        sha256=p.sha256,
        block_number=p.block_number,
    )


def provenance_to_proto(p: Provenance) -> pb.DatasetProvenance:
    return pb.DatasetProvenance(
        dataset=dataset_to_proto(p.record),
        on_chain=on_chain_to_proto(p.on_chain) if p.on_chain else None,
        stored_md5=p.stored_md5,
        stored_sha256=p.stored_sha256,
        stored_size_bytes=p.stored_size_bytes,
        checks=[pb.ProvenanceCheck(name=c.name, ok=c.ok, detail=c.detail) for c in p.checks],
        consistent=p.consistent,
    )


def has_metadata(message: svc.UploadDatasetRequest) -> bool:
    """True if a message sets any metadata field (allowed only in the first message)."""
    return any(
        (message.organization_id, message.display_name, message.samples_dimension, message.content_type,
         message.filename, message.expected_md5, message.expected_sha256)
    )
