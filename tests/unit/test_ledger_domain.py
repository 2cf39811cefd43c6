"""Ledger domain logic: request checks, nonce assignment, write-once verify. No sockets."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.ledger.domain.ledger import Ledger
from servers.ledger.domain.records import (
    ChainInfo,
    DatasetContract,
    DatasetSpec,
    ModelContract,
    ModelResult,
    ModelSpec,
    Transacted,
)
from servers.ledger.domain.nonces import NonceManager, StaleNonce
from servers.ledger.domain.validation import (
    check_address,
    check_dataset_spec,
    check_md5,
    check_model_spec,
    check_sha256,
)

MD5 = "0cc175b9c0f1b6a831c399e269772661"
SHA256 = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # the EIP-55 example
DATASET = DatasetSpec("ds-1", "org-1", "(128,128,3)", 1840000, MD5, SHA256)
MODEL = ModelSpec("m-1", "org-1", "dev-1", "ds-1", MD5, SHA256)


# -- hashes -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [MD5, "0" * 32, "f" * 32])
def test_md5_accepts_lowercase_hex(value):
    assert check_md5("md5", value) == value


@pytest.mark.parametrize("value", ["", MD5[:-1], MD5 + "0", MD5.upper(), "g" * 32, " " + MD5[1:], SHA256])
def test_md5_rejects_everything_else(value):
    with pytest.raises(InvalidArgument) as caught:
        check_md5("md5", value)
    assert caught.value.reason == "INVALID_MD5"
    assert caught.value.message.startswith("md5: expected an MD5 digest")
    assert caught.value.metadata == {"field": "md5"}


@pytest.mark.parametrize("value", ["", SHA256[:-1], SHA256.upper(), MD5, SHA256 + "\n"])
def test_sha256_rejects_everything_but_64_lowercase_hex(value):
    with pytest.raises(InvalidArgument) as caught:
        check_sha256("sha256", value)
    assert caught.value.reason == "INVALID_SHA256"


def test_sha256_accepts_lowercase_hex():
    assert check_sha256("sha256", SHA256) == SHA256


# -- addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [CHECKSUMMED, CHECKSUMMED.lower(), "0x" + CHECKSUMMED[2:].upper()])
def test_address_is_returned_checksummed(value):
    assert check_address(value) == CHECKSUMMED


@pytest.mark.parametrize(
    "value,reason",
    [
        ("", "INVALID_ADDRESS"),
        ("0x123", "INVALID_ADDRESS"),
        (CHECKSUMMED[2:], "INVALID_ADDRESS"),
        (CHECKSUMMED + "00", "INVALID_ADDRESS"),
        ("0x" + "g" * 40, "INVALID_ADDRESS"),
        ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "INVALID_ADDRESS_CHECKSUM"),  # last letter flipped
    ],
)
def test_malformed_address_is_invalid_argument(value, reason):
    with pytest.raises(InvalidArgument) as caught:
        check_address(value)
    assert caught.value.reason == reason


# -- specs --------------------------------------------------------------------------------


def test_valid_specs_pass():
    assert check_dataset_spec(DATASET) == DATASET
    assert check_model_spec(MODEL) == MODEL


@pytest.mark.parametrize(
    "change,field,reason",
    [
        ({"dataset_id": ""}, "dataset_id", "MISSING_FIELD"),
        ({"organization_id": "x" * 257}, "organization_id", "FIELD_TOO_LONG"),
        ({"samples_dimension": "é" * 129}, "samples_dimension", "FIELD_TOO_LONG"),  # 258 bytes in UTF-8
        ({"size_bytes": -1}, "size_bytes", "NEGATIVE_SIZE"),
        ({"md5": SHA256}, "md5", "INVALID_MD5"),
        ({"sha256": MD5}, "sha256", "INVALID_SHA256"),
    ],
)
def test_bad_dataset_spec_names_the_field(change, field, reason):
    with pytest.raises(InvalidArgument) as caught:
        check_dataset_spec(dataclasses.replace(DATASET, **change))
    assert (caught.value.metadata["field"], caught.value.reason) == (field, reason)


def test_optional_dataset_fields_may_be_empty():
    spec = dataclasses.replace(DATASET, organization_id="", samples_dimension="", size_bytes=0)
    assert check_dataset_spec(spec) == spec


@pytest.mark.parametrize(
    "change,field",
    [
        ({"model_id": ""}, "model_id"),
        ({"dataset_id": ""}, "dataset_id"),
        ({"train_image_hash": "abc"}, "train_image_hash"),
        ({"train_image_sha256": ""}, "train_image_sha256"),
    ],
)
def test_bad_model_spec_names_the_field(change, field):
    with pytest.raises(InvalidArgument) as caught:
        check_model_spec(dataclasses.replace(MODEL, **change))
    assert caught.value.metadata["field"] == field


# -- nonces -------------------------------------------------------------------------------


class FakeNode:
    """Counts pending transactions; optionally rejects the next send as 'nonce too low'."""

    def __init__(self, pending: int = 5):
        self.pending = pending
        self.sent: list[int] = []
        self.fetches = 0
        self.stale_next = False
        self.fail_next: Exception | None = None

    async def fetch(self) -> int:
        self.fetches += 1
        await asyncio.sleep(0)
        return self.pending

    async def send(self, nonce: int) -> int:
        await asyncio.sleep(0.001)  # let other submitters run: only the lock keeps them out
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        if self.stale_next or nonce < self.pending:
            self.stale_next = False
            self.pending += 1  # someone else used a nonce
            raise StaleNonce("nonce too low")
        assert nonce == self.pending, f"gap: sent {nonce}, node expects {self.pending}"
        self.pending += 1
        self.sent.append(nonce)
        return nonce


async def test_concurrent_submissions_get_consecutive_nonces():
    node = FakeNode(pending=5)
    nonces = NonceManager(node.fetch)

    results = await asyncio.gather(*[nonces.submit(node.send) for _ in range(30)])

    assert sorted(results) == list(range(5, 35))
    assert node.sent == list(range(5, 35))  # reached the node in nonce order
    assert node.fetches == 1  # the counter is local after the first read


async def test_stale_nonce_is_reread_and_retried_once():
    node = FakeNode(pending=3)
    nonces = NonceManager(node.fetch)
    await nonces.submit(node.send)  # nonce 3; the local counter says 4
    node.stale_next = True  # another writer takes nonce 4

    result = await nonces.submit(node.send)

    assert result == 5
    assert await nonces.submit(node.send) == 6


async def test_failed_send_makes_the_next_submission_reread():
    node = FakeNode(pending=0)
    nonces = NonceManager(node.fetch)
    await nonces.submit(node.send)
    node.fail_next = ConnectionError("node went away")

    with pytest.raises(ConnectionError):
        await nonces.submit(node.send)
    fetches = node.fetches
    result = await nonces.submit(node.send)

    assert result == 1
    assert node.fetches == fetches + 1


async def test_invalidate_forces_a_reread():
    node = FakeNode(pending=0)
    nonces = NonceManager(node.fetch)
    await nonces.submit(node.send)
    node.pending = 10  # e.g. the node was replaced by one with more history

    nonces.invalidate()

    assert await nonces.submit(node.send) == 10


# -- the core -----------------------------------------------------------------------------


class FakeChain:
    def __init__(self, model: ModelContract):
        self.model = model
        self.calls: list[str] = []

    async def get_model(self, address: str) -> ModelContract:
        self.calls.append(f"get_model {address}")
        return self.model

    async def verify_model(self, address: str, result: ModelResult) -> Transacted[ModelContract]:
        self.calls.append(f"verify_model {address}")
        self.model = dataclasses.replace(self.model, res_hash=result.res_hash, res_sha256=result.res_sha256,
                                         verified=True)
        return Transacted(self.model, "0x" + "ab" * 32)

    async def deploy_dataset(self, spec: DatasetSpec) -> Transacted[DatasetContract]:
        self.calls.append("deploy_dataset")
        raise AssertionError("not expected")

    async def deploy_model(self, spec: ModelSpec) -> Transacted[ModelContract]:
        raise AssertionError("not expected")

    async def get_dataset(self, address: str) -> DatasetContract:
        raise AssertionError("not expected")

    async def chain_info(self) -> ChainInfo:
        raise AssertionError("not expected")


def _model(**changes) -> ModelContract:
    base = ModelContract(CHECKSUMMED, "m-1", "org-1", "dev-1", "ds-1", MD5, SHA256, "", "", False, 3, 31337)
    return dataclasses.replace(base, **changes)


async def test_verify_records_the_result():
    chain = FakeChain(_model())

    done = await Ledger(chain).verify_model(CHECKSUMMED.lower(), ModelResult(MD5, SHA256))

    assert done.contract.verified and done.contract.res_hash == MD5
    assert chain.calls == [f"get_model {CHECKSUMMED}", f"verify_model {CHECKSUMMED}"]


async def test_second_verify_is_refused_before_any_transaction():
    chain = FakeChain(_model(res_hash=MD5, res_sha256=SHA256, verified=True))

    with pytest.raises(FailedPrecondition) as caught:
        await Ledger(chain).verify_model(CHECKSUMMED, ModelResult("1" * 32, "2" * 64))

    assert caught.value.reason == "MODEL_ALREADY_VERIFIED"
    assert caught.value.message == (
        f"model contract {CHECKSUMMED} is already verified with res_hash {MD5}; "
        "the training result is write-once"
    )
    assert caught.value.metadata == {"address": CHECKSUMMED, "res_hash": MD5, "res_sha256": SHA256}
    assert chain.calls == [f"get_model {CHECKSUMMED}"]


async def test_invalid_requests_never_reach_the_chain():
    chain = FakeChain(_model())
    ledger = Ledger(chain)

    with pytest.raises(InvalidArgument):
        await ledger.verify_model("0x123", ModelResult(MD5, SHA256))
    with pytest.raises(InvalidArgument):
        await ledger.verify_model(CHECKSUMMED, ModelResult(MD5.upper(), SHA256))
    with pytest.raises(InvalidArgument):
        await ledger.deploy_dataset(dataclasses.replace(DATASET, md5="nope"))

    assert chain.calls == []
