"""The Ledger end to end: our real gRPC server, the real chain adapter, a real Anvil."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import signal
import uuid

import grpc
import pytest
from mlmesh.ledger.v1 import ledger_service_pb2 as pb
from web3 import AsyncHTTPProvider, AsyncWeb3

from servers.common.grpc_errors import error_info
from servers.devstack import procs
from servers.devstack.anvil import rpc_ready
from servers.ledger import compile as contracts_compile
from servers.ledger.adapters.artifacts import CONTRACTS_DIR, MODEL, load_artifact
from tests.fixtures.chain import make_ledger_settings, running_ledger, start_anvil_node


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dataset_request(**overrides) -> pb.DeployDatasetContractRequest:
    blob = uuid.uuid4().bytes * 10
    fields = dict(
        dataset_id=str(uuid.uuid4()),
        organization_id=str(uuid.uuid4()),
        samples_dimension="(128,128,3)",
        size_bytes=1_840_000,
        md5=md5(blob),
        sha256=sha256(blob),
    )
    fields.update(overrides)
    return pb.DeployDatasetContractRequest(**fields)


def model_request(**overrides) -> pb.DeployModelContractRequest:
    image = uuid.uuid4().bytes
    fields = dict(
        model_id=str(uuid.uuid4()),
        organization_id=str(uuid.uuid4()),
        developer_id=str(uuid.uuid4()),
        dataset_id=str(uuid.uuid4()),
        train_image_hash=md5(image),
        train_image_sha256=sha256(image),
    )
    fields.update(overrides)
    return pb.DeployModelContractRequest(**fields)


async def expect_error(call, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == code, caught.value.details()
    return caught.value


async def test_dataset_contract_records_every_field(ledger_stub):
    # Prepare
    request = dataset_request()

    # Execute
    deployed = await ledger_stub.DeployDatasetContract(request)
    read = await ledger_stub.GetDatasetContract(
        pb.GetDatasetContractRequest(address=deployed.contract.address)
    )

    # Assert
    assert deployed.tx_hash.startswith("0x") and len(deployed.tx_hash) == 66
    assert read == deployed.contract
    fields = ("dataset_id", "organization_id", "samples_dimension", "size_bytes", "md5", "sha256")
    assert [getattr(read, f) for f in fields] == [getattr(request, f) for f in fields]
    assert read.chain_id == 31337
    assert read.block_number > 0
    assert AsyncWeb3.is_checksum_address(read.address)


async def test_model_contract_records_every_field(ledger_stub):
    request = model_request()

    deployed = await ledger_stub.DeployModelContract(request)
    read = await ledger_stub.GetModelContract(pb.GetModelContractRequest(address=deployed.contract.address))

    assert read == deployed.contract
    assert (read.model_id, read.organization_id, read.developer_id, read.dataset_id, read.train_image_hash,
            read.train_image_sha256) == (
        request.model_id, request.organization_id, request.developer_id, request.dataset_id,
        request.train_image_hash, request.train_image_sha256,
    )
    assert (read.res_hash, read.res_sha256, read.verified) == ("", "", False)
    assert read.block_number > 0


async def test_model_contract_offers_the_seed_operations(ledger_stub, anvil_url):
    """Table 14: get_model_params and get_data_params, callable by any client of the chain."""
    request = model_request()
    deployed = await ledger_stub.DeployModelContract(request)
    w3 = AsyncWeb3(AsyncHTTPProvider(anvil_url))
    contract = w3.eth.contract(address=deployed.contract.address, abi=load_artifact(MODEL).abi)
    try:
        data_params = await contract.functions.get_data_params().call()
        model_params = await contract.functions.get_model_params().call()
    finally:
        await w3.provider.disconnect()

    assert data_params == request.dataset_id
    assert model_params[:6] == [request.model_id, request.organization_id, request.developer_id,
                                request.dataset_id, request.train_image_hash, request.train_image_sha256]


async def test_verify_is_write_once(ledger_stub):
    # Prepare
    deployed = await ledger_stub.DeployModelContract(model_request())
    address = deployed.contract.address
    first, second = md5(b"result-1"), md5(b"result-2")

    # Execute
    verified = await ledger_stub.VerifyModel(
        pb.VerifyModelRequest(address=address, res_hash=first, res_sha256=sha256(b"result-1"))
    )
    err = await expect_error(
        ledger_stub.VerifyModel(
            pb.VerifyModelRequest(address=address, res_hash=second, res_sha256=sha256(b"r2"))
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    after = await ledger_stub.GetModelContract(pb.GetModelContractRequest(address=address))

    # Assert
    assert verified.contract.verified and verified.contract.res_hash == first
    assert verified.contract.res_sha256 == sha256(b"result-1")
    assert verified.tx_hash.startswith("0x")
    assert f"model contract {address} is already verified with res_hash {first}" in err.details()
    assert "write-once" in err.details()
    assert error_info(err).reason == "MODEL_ALREADY_VERIFIED"
    assert (after.res_hash, after.res_sha256, after.verified) == (first, sha256(b"result-1"), True)


async def test_concurrent_verifies_record_exactly_one_result(ledger_stub):
    deployed = await ledger_stub.DeployModelContract(model_request())
    address = deployed.contract.address
    results = [md5(str(i).encode()) for i in range(4)]

    outcomes = await asyncio.gather(
        *[
            ledger_stub.VerifyModel(
                pb.VerifyModelRequest(address=address, res_hash=r, res_sha256=sha256(r.encode()))
            )
            for r in results
        ],
        return_exceptions=True,
    )
    after = await ledger_stub.GetModelContract(pb.GetModelContractRequest(address=address))

    winners = [o for o in outcomes if isinstance(o, pb.VerifyModelResponse)]
    losers = [o for o in outcomes if not isinstance(o, pb.VerifyModelResponse)]
    assert len(winners) == 1
    assert all(isinstance(e, grpc.aio.AioRpcError) and e.code() == grpc.StatusCode.FAILED_PRECONDITION
               for e in losers), losers
    assert after.res_hash == winners[0].contract.res_hash


@pytest.mark.parametrize(
    "address",
    ["", "0x123", "not-an-address", "0x" + "zz" * 20, "12" * 20 + "0x",
     "0x52908400098527886E0F7030069857D2E4169Ee7"],  # the last: mixed case with a wrong EIP-55 checksum
)
async def test_malformed_address_is_invalid_argument(ledger_stub, address):
    err = await expect_error(
        ledger_stub.GetDatasetContract(pb.GetDatasetContractRequest(address=address)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "address" in err.details()


async def test_address_without_contract_is_not_found(ledger_stub):
    nobody = "0x" + uuid.uuid4().hex + "00000000"

    for call in (ledger_stub.GetDatasetContract(pb.GetDatasetContractRequest(address=nobody)),
                 ledger_stub.GetModelContract(pb.GetModelContractRequest(address=nobody)),
                 ledger_stub.VerifyModel(pb.VerifyModelRequest(address=nobody, res_hash=md5(b"x"),
                                                               res_sha256=sha256(b"x")))):
        err = await expect_error(call, grpc.StatusCode.NOT_FOUND)
        assert "no contract at" in err.details()


async def test_contract_of_the_other_kind_is_not_found(ledger_stub):
    dataset = await ledger_stub.DeployDatasetContract(dataset_request())
    model = await ledger_stub.DeployModelContract(model_request())

    err_model = await expect_error(
        ledger_stub.GetModelContract(pb.GetModelContractRequest(address=dataset.contract.address)),
        grpc.StatusCode.NOT_FOUND,
    )
    err_dataset = await expect_error(
        ledger_stub.GetDatasetContract(pb.GetDatasetContractRequest(address=model.contract.address)),
        grpc.StatusCode.NOT_FOUND,
    )

    assert "Dataset contract, not an mlmesh Model contract" in err_model.details()
    assert "Model contract, not an mlmesh Dataset contract" in err_dataset.details()


@pytest.mark.parametrize(
    "field,value",
    [("md5", "0cc175b9c0f1b6a831c399e26977266"),  # 31 characters
     ("md5", "0CC175B9C0F1B6A831C399E269772661"),  # uppercase
     ("md5", ""),
     ("sha256", "ab" * 31),
     ("dataset_id", ""),
     ("size_bytes", -1)],
)
async def test_bad_dataset_request_is_invalid_argument(ledger_stub, field, value):
    info = await ledger_stub.GetChainInfo(pb.GetChainInfoRequest())

    err = await expect_error(
        ledger_stub.DeployDatasetContract(dataset_request(**{field: value})), grpc.StatusCode.INVALID_ARGUMENT
    )

    assert err.details().startswith(field)  # "<field>: ..." (domain) or "<field> is ..." (request validation)
    # Nothing was sent to the chain.
    assert (await ledger_stub.GetChainInfo(pb.GetChainInfoRequest())).block_number == info.block_number


async def test_bad_result_hash_is_invalid_argument(ledger_stub):
    deployed = await ledger_stub.DeployModelContract(model_request())

    err = await expect_error(
        ledger_stub.VerifyModel(pb.VerifyModelRequest(address=deployed.contract.address, res_hash="abc",
                                                      res_sha256=sha256(b"x"))),
        grpc.StatusCode.INVALID_ARGUMENT,
    )

    assert "res_hash" in err.details()
    assert not (await ledger_stub.GetModelContract(
        pb.GetModelContractRequest(address=deployed.contract.address))).verified


async def test_concurrent_deploys_get_distinct_nonces(ledger_stub):
    requests = [dataset_request() for _ in range(20)]

    deployed = await asyncio.gather(*[ledger_stub.DeployDatasetContract(r) for r in requests])

    addresses = {d.contract.address for d in deployed}
    assert len(addresses) == 20
    assert len({d.tx_hash for d in deployed}) == 20
    for request, done in zip(requests, deployed, strict=True):
        read = await ledger_stub.GetDatasetContract(
            pb.GetDatasetContractRequest(address=done.contract.address)
        )
        assert read.dataset_id == request.dataset_id


async def test_chain_info_describes_node_and_signer(ledger_stub, ledger_settings):
    info = await ledger_stub.GetChainInfo(pb.GetChainInfoRequest())

    assert info.chain_id == 31337
    assert info.node_version.startswith("anvil/")
    assert AsyncWeb3.is_checksum_address(info.signer_address)
    assert ledger_settings.signer_key_path.stat().st_mode & 0o777 == 0o600


async def test_unreachable_node_is_unavailable(tmp_path):
    settings = make_ledger_settings(f"http://127.0.0.1:{procs.free_port()}", tmp_path)

    async with running_ledger(settings) as (_server, stub):
        err = await expect_error(stub.DeployDatasetContract(dataset_request()), grpc.StatusCode.UNAVAILABLE)

    assert settings.rpc_url in err.details()


async def test_contracts_survive_an_anvil_restart(tmp_path):
    # Prepare: a node of our own, a dataset and a verified model on it.
    node = start_anvil_node(tmp_path / "chain")
    try:
        settings = make_ledger_settings(node.url, tmp_path / "ledger")
        async with running_ledger(settings) as (_server, stub):
            dataset = (await stub.DeployDatasetContract(dataset_request())).contract
            model = (await stub.DeployModelContract(model_request())).contract
            verified = (await stub.VerifyModel(pb.VerifyModelRequest(
                address=model.address, res_hash=md5(b"r"), res_sha256=sha256(b"r")))).contract

            # Execute: graceful stop (Anvil dumps its state), start on the same state and port.
            node.stop(signal.SIGTERM)
            assert not rpc_ready(node.url)
            node.start()

            # Assert: the same Ledger reads both back, and writes keep working (nonce re-synced).
            read = await stub.GetDatasetContract(pb.GetDatasetContractRequest(address=dataset.address))
            assert read == dataset
            assert await stub.GetModelContract(pb.GetModelContractRequest(address=model.address)) == verified
            await expect_error(
                stub.VerifyModel(pb.VerifyModelRequest(address=model.address, res_hash=md5(b"s"),
                                                       res_sha256=sha256(b"s"))),
                grpc.StatusCode.FAILED_PRECONDITION,
            )
            assert (await stub.DeployDatasetContract(dataset_request())).contract.address
    finally:
        node.stop()


async def test_kill_9_keeps_what_was_dumped_and_a_truncated_state_still_starts(tmp_path):
    node = start_anvil_node(tmp_path / "chain")
    state_dir = tmp_path / "chain" / "anvil"
    try:
        settings = make_ledger_settings(node.url, tmp_path / "ledger")
        async with running_ledger(settings) as (_server, stub):
            early = (await stub.DeployDatasetContract(dataset_request())).contract
            # A clean restart takes the "last good" snapshot that a truncated file falls back to.
            node.stop(signal.SIGTERM)
            node.start()
            later = (await stub.DeployDatasetContract(dataset_request())).contract
            await asyncio.sleep(1.6)  # past one periodic dump (--state-interval 1)

            # kill -9: no final dump; the periodic one holds `later`.
            node.stop(signal.SIGKILL)
            node.start()
            assert await stub.GetDatasetContract(pb.GetDatasetContractRequest(address=later.address)) == later

            # A kill during a dump leaves a truncated file: Anvil still starts, from the snapshot.
            node.stop(signal.SIGKILL)
            state = state_dir / "state.json"
            state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
            node.start()
            assert await stub.GetDatasetContract(pb.GetDatasetContractRequest(address=early.address)) == early
            assert list(state_dir.glob("state.broken-*.json"))
            json.loads(state.read_text())
    finally:
        node.stop()


def test_contract_artifacts_match_the_sources(tmp_path):
    assert contracts_compile.stale() == []

    # The check can fail: an edited source no longer matches the committed artifacts.
    shutil.copytree(CONTRACTS_DIR, tmp_path / "contracts", ignore=shutil.ignore_patterns("build"))
    model_sol = tmp_path / "contracts" / "Model.sol"
    source = model_sol.read_text()
    model_sol.write_text(source.replace('"model already verified"', '"model verified already"'))
    problems = contracts_compile.stale(contracts_dir=tmp_path / "contracts")
    assert problems == ["contracts/build/Model.json differs from a fresh compile of its source"]



async def test_a_request_cancelled_elsewhere_in_the_process_cannot_wedge_the_ledgers_chain_access(
        ledger_stub, anvil_url):
    """web3 8.0 guards its HTTP sessions with one threading.Lock for the whole process, acquired in a
    worker thread for every async request: a request cancelled while it waits leaves the lock to that
    thread for good, and every web3 provider in the process then waits forever (found by the
    clean-clone CI: the suite's Ledger stopped reaching Anvil and every later ledger test hung). The
    Ledger's provider (`async_web3`) does not take that lock."""
    from web3._utils.http_session_manager import HTTPSessionManager

    from servers.ledger.adapters.chain import async_web3

    # Prepare: a plain web3 request is cancelled while it waits for the lock another request holds
    plain = AsyncWeb3(AsyncHTTPProvider(anvil_url))
    lock = HTTPSessionManager._lock
    assert lock.acquire(timeout=10)
    waiting = asyncio.create_task(plain.eth.block_number)
    await asyncio.sleep(0.3)
    waiting.cancel()  # web3's cleanup releases the holder's lock; its worker thread then takes it for nobody
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0.3)
    ours = async_web3(anvil_url, 10)
    try:
        assert lock.locked(), "web3's lock should be left held (the bug this guards against)"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(plain.eth.block_number, 2)  # a plain provider is wedged
        # Execute / Assert: the Ledger's own provider, and the Ledger itself, still reach the chain
        assert await asyncio.wait_for(ours.eth.block_number, 10) >= 0
        deployed = await asyncio.wait_for(ledger_stub.DeployDatasetContract(dataset_request()), 30)
        assert deployed.contract.address
    finally:
        if lock.locked():
            lock.release()  # the stranded worker's hold: let the process's other web3 users go on
        await ours.provider.disconnect()
        await plain.provider.disconnect()
