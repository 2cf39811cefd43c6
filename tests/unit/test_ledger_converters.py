"""Ledger converters: every proto <-> domain pair round-trips without losing a field."""

from __future__ import annotations

import dataclasses

import pytest
from mlmesh.ledger.v1 import ledger_service_pb2 as pb

from servers.ledger.api import converters as conv
from servers.ledger.domain.records import (
    ChainInfo,
    DatasetContract,
    DatasetSpec,
    ModelContract,
    ModelResult,
    ModelSpec,
    TranslationContract,
    TranslationSpec,
)

DATASET_SPEC = DatasetSpec(
    dataset_id="5d066d58-06de-47ab-a2f6-c8f413e21947",
    organization_id="org-1",
    samples_dimension="(128,128,3)",
    size_bytes=1_840_000,
    md5="0cc175b9c0f1b6a831c399e269772661",
    sha256="ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb",
)
DATASET_CONTRACT = DatasetContract(
    address="0x5FbDB2315678afecb367f032d93F642f64180aa3",
    **dataclasses.asdict(DATASET_SPEC),
    block_number=7,
    chain_id=31337,
)
MODEL_SPEC = ModelSpec(
    model_id="model-1",
    organization_id="org-1",
    developer_id="dev-1",
    dataset_id="5d066d58-06de-47ab-a2f6-c8f413e21947",
    train_image_hash="92eb5ffee6ae2fec3ad71c777531578f",
    train_image_sha256="3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d",
)
MODEL_CONTRACT = ModelContract(
    address="0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
    **dataclasses.asdict(MODEL_SPEC),
    res_hash="4a8a08f09d37b73795649038408b5f33",
    res_sha256="2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6",
    verified=True,
    block_number=9,
    chain_id=31337,
)
TRANSLATION_SPEC = TranslationSpec(
    translation_id="0b8e5ad4-5f0e-4f43-9a77-51a0f2b8c1de",
    model_id="model-1",
    model_contract=MODEL_CONTRACT.address,
    source_sha256=MODEL_CONTRACT.res_sha256,
    onnx_md5="d41d8cd98f00b204e9800998ecf8427e",
    onnx_sha256="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    converter="torch.onnx (TorchScript exporter) torch 2.13.0",
    opset=17,
    max_abs_diff="3.4e-07",
    max_rel_diff="1.2e-06",
    atol="1e-05",
    rtol="0.001",
    parity_passed=True,
)
TRANSLATION_CONTRACT = TranslationContract(
    address="0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0",
    **dataclasses.asdict(TRANSLATION_SPEC),
    block_number=11,
    chain_id=31337,
)
CHAIN_INFO = ChainInfo(
    chain_id=31337, block_number=42, signer_address="0x9c419c09Af9F6EDaf44011b31B8dD518331C09A0",
    node_version="anvil/v1.7.1",
)


def _no_default_values(value) -> None:
    """Round trips only prove something when every field differs from its proto default."""
    for field in dataclasses.fields(value):
        assert getattr(value, field.name) not in ("", 0, False), field.name


@pytest.mark.parametrize(
    "value,to_proto,from_proto",
    [
        (DATASET_SPEC, conv.dataset_spec_to_proto, conv.dataset_spec_from_proto),
        (DATASET_CONTRACT, conv.dataset_contract_to_proto, conv.dataset_contract_from_proto),
        (MODEL_SPEC, conv.model_spec_to_proto, conv.model_spec_from_proto),
        (MODEL_CONTRACT, conv.model_contract_to_proto, conv.model_contract_from_proto),
        (TRANSLATION_SPEC, conv.translation_spec_to_proto, conv.translation_spec_from_proto),
        (TRANSLATION_CONTRACT, conv.translation_contract_to_proto, conv.translation_contract_from_proto),
        (CHAIN_INFO, conv.chain_info_to_proto, conv.chain_info_from_proto),
    ],
    ids=["dataset_spec", "dataset_contract", "model_spec", "model_contract", "translation_spec",
         "translation_contract", "chain_info"],
)
def test_domain_proto_domain_round_trip(value, to_proto, from_proto):
    _no_default_values(value)

    assert from_proto(to_proto(value)) == value


@pytest.mark.parametrize(
    "msg,from_proto,to_proto",
    [
        (conv.dataset_contract_to_proto(DATASET_CONTRACT), conv.dataset_contract_from_proto,
         conv.dataset_contract_to_proto),
        (
            conv.model_contract_to_proto(MODEL_CONTRACT),
            conv.model_contract_from_proto,
            conv.model_contract_to_proto,
        ),
        (
            conv.translation_spec_to_proto(TRANSLATION_SPEC),
            conv.translation_spec_from_proto,
            conv.translation_spec_to_proto,
        ),
        (
            conv.translation_contract_to_proto(TRANSLATION_CONTRACT),
            conv.translation_contract_from_proto,
            conv.translation_contract_to_proto,
        ),
    ],
    ids=["dataset_contract", "model_contract", "translation_spec", "translation_contract"],
)
def test_proto_domain_proto_round_trip(msg, from_proto, to_proto):
    # Every proto field is set, so a field the converters forget shows up here.
    assert {f.name for f, _ in msg.ListFields()} == {f.name for f in msg.DESCRIPTOR.fields}

    assert to_proto(from_proto(msg)) == msg


def test_verify_request_round_trip():
    result = ModelResult(res_hash=MODEL_CONTRACT.res_hash, res_sha256=MODEL_CONTRACT.res_sha256)

    msg = conv.verify_request_to_proto(MODEL_CONTRACT.address, result)

    assert isinstance(msg, pb.VerifyModelRequest)
    assert conv.verify_request_from_proto(msg) == (MODEL_CONTRACT.address, result)


def test_unverified_model_keeps_empty_result():
    unverified = dataclasses.replace(MODEL_CONTRACT, res_hash="", res_sha256="", verified=False)

    msg = conv.model_contract_to_proto(unverified)

    assert (msg.res_hash, msg.res_sha256, msg.verified) == ("", "", False)
    assert conv.model_contract_from_proto(msg) == unverified


def test_failed_parity_keeps_its_verdict():
    failed = dataclasses.replace(TRANSLATION_CONTRACT, parity_passed=False, max_abs_diff="0.5")

    msg = conv.translation_contract_to_proto(failed)

    assert (msg.parity_passed, msg.max_abs_diff) == (False, "0.5")
    assert conv.translation_contract_from_proto(msg) == failed


def test_access_event_and_entry_round_trip():
    from servers.ledger.domain.records import AccessEntry, AccessEventSpec

    spec = AccessEventSpec(resource_kind="model", resource_id="5d066d58-06de-47ab-a2f6-c8f413e21947",
                           action="UNSHARE", grantee="*", public=True, actor_organization_id="org-1",
                           actor_subject_sha256="ab" * 32, event_time_micros=1_780_000_000_000_001)
    entry = AccessEntry(index=3, spec=spec, block_number=9, contract_address=DATASET_CONTRACT.address,
                        chain_id=31337)

    assert conv.access_event_from_proto(conv.access_event_to_proto(spec)) == spec
    assert conv.access_entry_from_proto(conv.access_entry_to_proto(entry)) == entry
