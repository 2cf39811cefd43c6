"""Registry converters: each pair round-trips."""

import datetime as dt

from servers.registry.api import converters as conv
from servers.registry.domain.datasets import UploadMetadata
from servers.registry.domain.models import DatasetRecord
from servers.registry.domain.ports import DatasetContractFields


def _record() -> DatasetRecord:
    return DatasetRecord(
        dataset_id="5d066d58-06de-47ab-a2f6-c8f413e21947",
        display_name="meter 7",
        organization_id="smart-energy-ll",
        samples_dimension="(1440,3)",
        content_type="text/csv",
        filename="meter-7.csv",
        size_bytes=1840000,
        md5="0cc175b9c0f1b6a831c399e269772661",
        sha256="ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
        object_key="datasets/5d066d58-06de-47ab-a2f6-c8f413e21947",
        contract_address="0x5FbDB2315678afecb367f032d93F642f64180aa3",
        contract_tx_hash="0x" + "ab" * 32,
        create_time=dt.datetime(2026, 11, 30, 2, 3, 4, 567000, tzinfo=dt.UTC),
    )


def test_dataset_round_trip():
    record = _record()
    assert conv.dataset_from_proto(conv.dataset_to_proto(record)) == record


def test_dataset_to_proto_keeps_object_key_private():
    assert "object_key" not in conv.dataset_to_proto(_record()).DESCRIPTOR.fields_by_name


def test_upload_metadata_round_trip():
    meta = UploadMetadata("org", "name", "(8,8)", "text/csv", "a.csv", "0" * 32, "f" * 64)
    assert conv.upload_metadata_from_proto(conv.upload_metadata_to_proto(meta)) == meta


def test_upload_metadata_takes_content_type_from_first_chunk():
    first = conv.upload_metadata_to_proto(UploadMetadata("org", "name"))
    first.chunk.content_type = "text/csv"
    assert conv.upload_metadata_from_proto(first).content_type == "text/csv"


def test_on_chain_round_trip():
    fields = DatasetContractFields("0xabc", 31337, "id", "org", "(8,8)", 12, "0" * 32, "f" * 64, 7)
    assert conv.on_chain_from_proto(conv.on_chain_to_proto(fields)) == fields


def test_has_metadata():
    assert not conv.has_metadata(conv.upload_metadata_to_proto(UploadMetadata("", "")))
    assert conv.has_metadata(conv.upload_metadata_to_proto(UploadMetadata("", "x")))
