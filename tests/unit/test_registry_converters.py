"""Registry converters: each pair round-trips."""

import datetime as dt

from servers.registry.api import converters as conv
from servers.registry.domain.datasets import UploadMetadata
from servers.registry.domain.records import DatasetRecord
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


# -- models -----------------------------------------------------------------------------------

from servers.registry.domain.records import ModelRecord  # noqa: E402
from servers.registry.domain.models import CreateModel, TrainingResult  # noqa: E402
from servers.registry.domain.ports import ModelContractFields  # noqa: E402


def _model(**changes) -> ModelRecord:
    base = dict(
        model_id="6d066d58-06de-47ab-a2f6-c8f413e21947", display_name="cnn", organization_id="org",
        developer_id="dev", dataset_id="5d066d58-06de-47ab-a2f6-c8f413e21947", source_kind="recipe",
        recipe_filename="r.tar.gz", recipe_size_bytes=10, recipe_md5="0" * 32, recipe_sha256="1" * 64,
        recipe_object_key="recipes/x", image_reference="", image_digest="", time_limit_seconds=60,
        memory_limit_bytes=1 << 30, state="TRAINED", failure_reason="", training_job_id="job",
        framework="pytorch", input_signature='{"shape": [null, 64]}', size_bytes=5, res_md5="2" * 32,
        res_sha256="3" * 64, object_key="models/x/y", contract_address="0xabc", contract_tx_hash="0x1",
        verify_tx_hash="0x2", create_time=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
        update_time=dt.datetime(2026, 11, 30, 1, tzinfo=dt.UTC),
    )
    return ModelRecord(**{**base, **changes})


def test_model_to_proto_carries_every_public_field():
    p = conv.model_to_proto(_model())
    assert p.training_source.recipe.sha256 == "1" * 64 and p.res_md5 == "2" * 32
    assert conv.model_state_from_proto(p.state) == "TRAINED"
    assert conv.timestamp_from_proto(p.update_time) == _model().update_time
    image = conv.model_to_proto(_model(source_kind="image", image_reference="r/x:1", image_digest="sha256:" + "a" * 64))
    assert image.training_source.WhichOneof("source") == "image"


def test_model_states_round_trip():
    for state in ("PENDING", "TRAINING", "TRAINED", "FAILED"):
        assert conv.model_state_from_proto(conv.model_state_to_proto(state)) == state


def test_create_model_round_trip():
    c = CreateModel("org", "dev", "ds", "name", "r.tgz", "a" * 64, "", "", 10, 20)
    assert conv.create_model_from_proto(conv.create_model_to_proto(c)) == c


def test_training_result_round_trip():
    t = TrainingResult("m", "j", "sklearn", "{}")
    assert conv.training_result_from_proto(conv.training_result_to_proto(t)) == t


def test_on_chain_model_round_trip():
    f = ModelContractFields("0xabc", 31337, "m", "o", "d", "ds", "0" * 32, "1" * 64, "2" * 32, "3" * 64, True, 9)
    assert conv.on_chain_model_from_proto(conv.on_chain_model_to_proto(f)) == f
