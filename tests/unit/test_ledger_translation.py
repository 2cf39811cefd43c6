"""Translation contracts in the Ledger's core: request checks and the source-model checks that
run before any transaction. No sockets: a fake chain stands in for the node."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest

from servers.common.errors import FailedPrecondition, InvalidArgument, NotFound
from servers.ledger.adapters.artifacts import BUILD_DIR
from servers.ledger.adapters.chain import _TRANSLATION_FIELDS
from servers.ledger.domain.ledger import Ledger
from servers.ledger.domain.records import ModelContract, Transacted, TranslationContract, TranslationSpec
from servers.ledger.domain.validation import check_decimal, check_translation_spec

MD5 = "0cc175b9c0f1b6a831c399e269772661"
SHA256 = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
OTHER_SHA256 = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
MODEL_ADDRESS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
SPEC = TranslationSpec(
    translation_id="tr-1", model_id="m-1", model_contract=MODEL_ADDRESS, source_sha256=SHA256,
    onnx_md5=MD5, onnx_sha256=OTHER_SHA256, converter="skl2onnx 1.19.1", opset=17,
    max_abs_diff="3.4e-07", max_rel_diff="0", atol="1e-05", rtol="0.001", parity_passed=True,
)


def _model(**changes) -> ModelContract:
    base = ModelContract(MODEL_ADDRESS, "m-1", "org-1", "dev-1", "ds-1", MD5, SHA256, MD5, SHA256, True, 3, 31337)
    return dataclasses.replace(base, **changes)


class FakeChain:
    def __init__(self, model: ModelContract | Exception):
        self.model = model
        self.calls: list[str] = []

    async def get_model(self, address: str) -> ModelContract:
        self.calls.append(f"get_model {address}")
        if isinstance(self.model, Exception):
            raise self.model
        return self.model

    async def deploy_translation(self, spec: TranslationSpec) -> Transacted[TranslationContract]:
        self.calls.append(f"deploy_translation {spec.model_contract}")
        contract = TranslationContract("0x" + "12" * 20, **dataclasses.asdict(spec), block_number=5, chain_id=31337)
        return Transacted(contract, "0x" + "ab" * 32)

    async def get_translation(self, address: str) -> TranslationContract:
        self.calls.append(f"get_translation {address}")
        raise NotFound(f"there is no contract at {address}", reason="CONTRACT_NOT_FOUND")


# -- decimal text -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["0", "0.001", "3.4e-07", "1E+3", "12.", ".5", "1e5", "0.0", "0.00001",
     format(Decimal(repr(5e-324)), "f"), format(Decimal(repr(1.7976931348623157e308)), "f")],
)
def test_decimal_text_accepts_finite_numbers(value):
    assert check_decimal("atol", value) == value


@pytest.mark.parametrize(
    "value,reason",
    [("", "MISSING_FIELD"), ("nan", "INVALID_DECIMAL"), ("inf", "INVALID_DECIMAL"),
     ("-1e-05", "INVALID_DECIMAL"), ("1,5", "INVALID_DECIMAL"), ("0x10", "INVALID_DECIMAL"),
     (" 0.1", "INVALID_DECIMAL"), ("1e", "INVALID_DECIMAL"), (".", "INVALID_DECIMAL"),
     ("1" * 401, "INVALID_DECIMAL")],
)
def test_decimal_text_rejects_everything_else(value, reason):
    with pytest.raises(InvalidArgument) as caught:
        check_decimal("atol", value)
    assert (caught.value.reason, caught.value.metadata) == (reason, {"field": "atol"})
    assert caught.value.message.startswith("atol: ")


# -- the spec -----------------------------------------------------------------------------


def test_valid_spec_passes_with_the_model_contract_checksummed():
    assert check_translation_spec(SPEC) == SPEC
    assert check_translation_spec(dataclasses.replace(SPEC, model_contract=MODEL_ADDRESS.lower())) == SPEC


@pytest.mark.parametrize(
    "change,field,reason",
    [
        ({"translation_id": ""}, "translation_id", "MISSING_FIELD"),
        ({"model_id": ""}, "model_id", "MISSING_FIELD"),
        ({"model_contract": ""}, "model_contract", "INVALID_ADDRESS"),
        ({"model_contract": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}, "model_contract",
         "INVALID_ADDRESS_CHECKSUM"),
        ({"source_sha256": MD5}, "source_sha256", "INVALID_SHA256"),
        ({"onnx_md5": SHA256}, "onnx_md5", "INVALID_MD5"),
        ({"onnx_sha256": SHA256.upper()}, "onnx_sha256", "INVALID_SHA256"),
        ({"converter": ""}, "converter", "MISSING_FIELD"),
        ({"converter": "x" * 257}, "converter", "FIELD_TOO_LONG"),
        ({"opset": 0}, "opset", "INVALID_OPSET"),
        ({"opset": -3}, "opset", "INVALID_OPSET"),
        ({"max_abs_diff": "nan"}, "max_abs_diff", "INVALID_DECIMAL"),
        ({"max_rel_diff": ""}, "max_rel_diff", "MISSING_FIELD"),
        ({"atol": "1e-5%"}, "atol", "INVALID_DECIMAL"),
        ({"rtol": "-0.1"}, "rtol", "INVALID_DECIMAL"),
    ],
)
def test_bad_translation_spec_names_the_field(change, field, reason):
    with pytest.raises(InvalidArgument) as caught:
        check_translation_spec(dataclasses.replace(SPEC, **change))
    assert (caught.value.metadata["field"], caught.value.reason) == (field, reason)


def test_adapter_field_order_matches_the_contract_abi_and_the_spec():
    abi = json.loads((BUILD_DIR / "Translation.json").read_text())["abi"]
    constructor = next(e for e in abi if e["type"] == "constructor")
    getter = next(e for e in abi if e.get("name") == "get_translation_params")

    assert [c["name"] for c in constructor["inputs"][0]["components"]] == list(_TRANSLATION_FIELDS)
    assert [c["name"] for c in getter["outputs"][0]["components"]] == list(_TRANSLATION_FIELDS)
    assert [f.name for f in dataclasses.fields(TranslationSpec)] == list(_TRANSLATION_FIELDS)


# -- the core -----------------------------------------------------------------------------


async def test_translation_of_a_verified_model_is_deployed():
    chain = FakeChain(_model())

    done = await Ledger(chain).deploy_translation(dataclasses.replace(SPEC, model_contract=MODEL_ADDRESS.lower()))

    assert done.contract.model_contract == MODEL_ADDRESS
    assert chain.calls == [f"get_model {MODEL_ADDRESS}", f"deploy_translation {MODEL_ADDRESS}"]


@pytest.mark.parametrize(
    "model,spec_change,reason,says",
    [
        (_model(verified=False, res_hash="", res_sha256=""), {}, "MODEL_NOT_VERIFIED", "is not verified"),
        (_model(res_sha256=OTHER_SHA256), {}, "SOURCE_SHA256_MISMATCH",
         f"source_sha256 {SHA256} does not match the model's res_sha256 {OTHER_SHA256}"),
        (_model(), {"model_id": "m-2"}, "MODEL_ID_MISMATCH", "does not match the Model contract's model_id"),
        (NotFound("0x.. holds an mlmesh Dataset contract, not an mlmesh Model contract",
                  reason="NOT_A_MODEL_CONTRACT"), {}, "NOT_A_MODEL_CONTRACT", "not an mlmesh Model contract"),
        (NotFound("there is no contract at 0x..", reason="CONTRACT_NOT_FOUND"), {},
         "MODEL_CONTRACT_NOT_FOUND", "no contract at"),
    ],
    ids=["unverified", "wrong-source", "wrong-model-id", "dataset-contract", "no-contract"],
)
async def test_wrong_source_model_is_refused_before_any_transaction(model, spec_change, reason, says):
    chain = FakeChain(model)

    with pytest.raises(FailedPrecondition) as caught:
        await Ledger(chain).deploy_translation(dataclasses.replace(SPEC, **spec_change))

    assert caught.value.reason == reason
    assert says in caught.value.message
    assert caught.value.message.startswith("model_contract")
    assert caught.value.metadata["field"] == "model_contract"
    assert chain.calls == [f"get_model {MODEL_ADDRESS}"]


async def test_invalid_translation_never_reaches_the_chain():
    chain = FakeChain(_model())

    with pytest.raises(InvalidArgument):
        await Ledger(chain).deploy_translation(dataclasses.replace(SPEC, onnx_md5="nope"))
    with pytest.raises(InvalidArgument):
        await Ledger(chain).get_translation("0x123")

    assert chain.calls == []
