"""Translation contracts end to end: our real Ledger gRPC server, the real chain adapter, a real Anvil."""

from __future__ import annotations

import uuid

import grpc
import pytest
from mlmesh.ledger.v1 import ledger_service_pb2 as pb
from web3 import AsyncHTTPProvider, AsyncWeb3

from servers.common.errors import FailedPrecondition
from servers.common.grpc_errors import error_info
from servers.ledger.adapters.artifacts import TRANSLATION, load_artifact
from servers.ledger.adapters.chain import EvmChain
from servers.ledger.domain.records import TranslationSpec
from tests.integration.test_ledger import dataset_request, expect_error, md5, model_request, sha256

RESULT = b"trained model bytes"


async def verified_model(stub, result: bytes = RESULT) -> pb.ModelContract:
    deployed = await stub.DeployModelContract(model_request())
    done = await stub.VerifyModel(pb.VerifyModelRequest(
        address=deployed.contract.address, res_hash=md5(result), res_sha256=sha256(result)))
    return done.contract


def translation_request(model: pb.ModelContract, **overrides) -> pb.DeployTranslationContractRequest:
    onnx = uuid.uuid4().bytes * 3
    fields = dict(
        translation_id=str(uuid.uuid4()),
        model_id=model.model_id,
        model_contract=model.address,
        source_sha256=model.res_sha256,
        onnx_md5=md5(onnx),
        onnx_sha256=sha256(onnx),
        converter="torch.onnx (TorchScript exporter) torch 2.13.0",
        opset=17,
        max_abs_diff="3.4e-07",
        max_rel_diff="1.2e-06",
        atol="1e-05",
        rtol="0.001",
        parity_passed=True,
    )
    fields.update(overrides)
    return pb.DeployTranslationContractRequest(**fields)


async def block_number(stub) -> int:
    return (await stub.GetChainInfo(pb.GetChainInfoRequest())).block_number


@pytest.fixture(scope="module")
async def model(ledger_stub) -> pb.ModelContract:
    return await verified_model(ledger_stub)


async def test_translation_contract_records_every_field(ledger_stub, model, anvil_url):
    # Prepare
    request = translation_request(model, model_contract=model.address.lower())

    # Execute
    deployed = await ledger_stub.DeployTranslationContract(request)
    read = await ledger_stub.GetTranslationContract(
        pb.GetTranslationContractRequest(address=deployed.contract.address)
    )

    # Assert: every request field comes back from the chain (the address checksummed).
    assert deployed.tx_hash.startswith("0x") and len(deployed.tx_hash) == 66
    assert read == deployed.contract
    for field in request.DESCRIPTOR.fields:
        expected = getattr(request, field.name)
        assert getattr(read, field.name) == (model.address if field.name == "model_contract" else expected)
    assert (read.chain_id, AsyncWeb3.is_checksum_address(read.address)) == (31337, True)
    assert read.block_number > model.block_number
    # Any client of the chain reads the same through the contract's own getter.
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil_url))
    try:
        contract = w3.eth.contract(address=read.address, abi=load_artifact(TRANSLATION).abi)
        params = await contract.functions.get_translation_params().call()
        kind = await contract.functions.KIND().call()
    finally:
        await w3.provider.disconnect()
    assert kind == "mlmesh.Translation/1"
    assert list(params) == [request.translation_id, request.model_id, model.address, request.source_sha256,
                            request.onnx_md5, request.onnx_sha256, request.converter, 17, "3.4e-07",
                            "1.2e-06", "1e-05", "0.001", True]


async def test_failed_parity_is_recorded_too(ledger_stub, model):
    request = translation_request(model, parity_passed=False, max_abs_diff="0.25", opset=13)

    deployed = await ledger_stub.DeployTranslationContract(request)

    read = await ledger_stub.GetTranslationContract(
        pb.GetTranslationContractRequest(address=deployed.contract.address))
    assert (read.parity_passed, read.max_abs_diff, read.opset) == (False, "0.25", 13)


async def test_unverified_model_is_failed_precondition(ledger_stub):
    unverified = (await ledger_stub.DeployModelContract(model_request())).contract
    before = await block_number(ledger_stub)

    err = await expect_error(
        ledger_stub.DeployTranslationContract(translation_request(unverified, source_sha256=sha256(RESULT))),
        grpc.StatusCode.FAILED_PRECONDITION,
    )

    assert error_info(err).reason == "MODEL_NOT_VERIFIED"
    assert "is not verified" in err.details()
    assert await block_number(ledger_stub) == before  # refused before any transaction


async def test_wrong_source_sha256_is_failed_precondition(ledger_stub, model):
    before = await block_number(ledger_stub)

    err = await expect_error(
        ledger_stub.DeployTranslationContract(translation_request(model, source_sha256=sha256(b"other"))),
        grpc.StatusCode.FAILED_PRECONDITION,
    )

    assert error_info(err).reason == "SOURCE_SHA256_MISMATCH"
    assert f"does not match the model's res_sha256 {model.res_sha256}" in err.details()
    assert await block_number(ledger_stub) == before


async def test_other_addresses_as_model_contract_are_failed_precondition(ledger_stub, model):
    dataset = (await ledger_stub.DeployDatasetContract(dataset_request())).contract
    translation = (await ledger_stub.DeployTranslationContract(translation_request(model))).contract
    nobody = "0x" + uuid.uuid4().hex + "00000000"

    for address, reason, says in [
        (dataset.address, "NOT_A_MODEL_CONTRACT", "Dataset contract, not an mlmesh Model contract"),
        (translation.address, "NOT_A_MODEL_CONTRACT", "Translation contract, not an mlmesh Model contract"),
        (nobody, "MODEL_CONTRACT_NOT_FOUND", "no contract at"),
    ]:
        err = await expect_error(
            ledger_stub.DeployTranslationContract(translation_request(model, model_contract=address)),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert error_info(err).reason == reason
        assert err.details().startswith("model_contract: ") and says in err.details()


async def test_the_contract_itself_refuses_a_wrong_source(ledger_stub, model, anvil_url, ledger_settings):
    """The Ledger's pre-checks are a courtesy: the constructor refuses on its own (e.g. a caller
    that bypasses the Ledger, or a model that changed between check and deploy)."""
    dataset = (await ledger_stub.DeployDatasetContract(dataset_request())).contract
    unverified = (await ledger_stub.DeployModelContract(model_request())).contract
    chain = EvmChain(ledger_settings)
    base = dict(translation_id="t", model_id=model.model_id, model_contract=model.address,
                source_sha256=model.res_sha256, onnx_md5=md5(b"o"), onnx_sha256=sha256(b"o"), converter="c",
                opset=17, max_abs_diff="0", max_rel_diff="0", atol="0", rtol="0", parity_passed=True)
    try:
        for change, says in [
            ({"source_sha256": sha256(b"other")}, "source_sha256 does not match the model's res_sha256"),
            ({"model_contract": unverified.address, "model_id": unverified.model_id}, "the model is not verified"),
            ({"model_contract": dataset.address}, "not an mlmesh Model contract"),
            ({"model_id": "someone-else"}, "model_id does not match"),
            ({"model_contract": chain.signer_address}, "model_contract: no contract at this address"),
        ]:
            with pytest.raises(FailedPrecondition) as caught:
                await chain.deploy_translation(TranslationSpec(**{**base, **change}))
            assert caught.value.reason == "CONTRACT_REVERTED"
            assert says in caught.value.message
    finally:
        await chain.close()


@pytest.mark.parametrize(
    "field,value",
    [("model_contract", "0x123"), ("model_contract", ""), ("source_sha256", "ab" * 31),
     ("onnx_md5", "0CC175B9C0F1B6A831C399E269772661"), ("onnx_sha256", ""), ("translation_id", ""),
     ("model_id", ""), ("converter", ""), ("opset", 0), ("max_abs_diff", "nan"), ("max_rel_diff", "1,5"),
     ("atol", "-1e-05"), ("rtol", "")],
)
async def test_malformed_translation_request_is_invalid_argument(ledger_stub, model, field, value):
    before = await block_number(ledger_stub)

    err = await expect_error(
        ledger_stub.DeployTranslationContract(translation_request(model, **{field: value})),
        grpc.StatusCode.INVALID_ARGUMENT,
    )

    assert err.details().startswith(f"{field}:")
    assert error_info(err).metadata["field"] == field
    assert await block_number(ledger_stub) == before


async def test_get_translation_of_other_addresses(ledger_stub, model):
    nobody = "0x" + uuid.uuid4().hex + "00000000"

    malformed = await expect_error(
        ledger_stub.GetTranslationContract(pb.GetTranslationContractRequest(address="0x12")),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    missing = await expect_error(
        ledger_stub.GetTranslationContract(pb.GetTranslationContractRequest(address=nobody)),
        grpc.StatusCode.NOT_FOUND,
    )
    other_kind = await expect_error(
        ledger_stub.GetTranslationContract(pb.GetTranslationContractRequest(address=model.address)),
        grpc.StatusCode.NOT_FOUND,
    )

    assert "address" in malformed.details()
    assert "no contract at" in missing.details()
    assert "Model contract, not an mlmesh Translation contract" in other_kind.details()
    assert error_info(other_kind).reason == "NOT_A_TRANSLATION_CONTRACT"
