"""The chain adapter: Dataset, Model and Translation contracts (and the one AccessLog) on any EVM node over JSON-RPC (web3 AsyncWeb3).

One code path for the embedded Anvil and a production Quorum / Besu node. Transactions are
signed locally by the Ledger's key and sent raw; every write waits for its receipt. Failures
become domain errors with a message a person can act on:

    node unreachable / too slow ........ Unavailable  (CHAIN_UNAVAILABLE, RECEIPT_TIMEOUT)
    no code at the address ............. NotFound     (CONTRACT_NOT_FOUND)
    code, but not our kind of contract . NotFound     (NOT_A_DATASET_CONTRACT / NOT_A_MODEL_CONTRACT /
                                                        NOT_A_TRANSLATION_CONTRACT)
    second verify ...................... FailedPrecondition (MODEL_ALREADY_VERIFIED)
    revert / status-0 receipt .......... FailedPrecondition (CONTRACT_REVERTED / TRANSACTION_REVERTED)
    signer cannot pay .................. FailedPrecondition (SIGNER_INSUFFICIENT_FUNDS)
    signer used by another writer ...... Aborted      (NONCE_CONFLICT)
    not durable in time ................ Unavailable  (CONFIRMATION_TIMEOUT, JOURNAL_WRITE_FAILED)

The AccessLog (docs/security.md, "Grants on the ledger?") is one contract per chain and signer,
deployed on the first access event and remembered in <data_dir>/ledger/access-log-<chain id>-<signer>.json
(written atomically and fsynced before the first entry is appended, like the signer key). Its
writes go through the same `_transact` as every other, so the journal covers them too.

When is a write acknowledged (durability)
-----------------------------------------
Only once it cannot be lost by a crash of any process:

* on a production node (Quorum / Besu), which keeps its blocks on disk, after the receipt and
  `confirmation_blocks` more blocks on top of it (0 by default: QBFT/IBFT blocks are final);
* on the embedded Anvil, which writes its state to disk only every second, after the signed
  transaction is appended to the Ledger's journal and fsynced (servers/ledger/adapters/journal.py,
  group commit). When Anvil comes back without some journaled transactions (its transaction
  count for the signer is below the journal's), the Ledger sends them again, in nonce order and
  before any new transaction: same bytes, same hash, same contract addresses. It checks at start,
  after any connection failure, every `journal_check_seconds`, and when a read finds no contract
  at an address the journal created.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys import keys
from eth_typing import URI
from eth_utils import keccak
from hexbytes import HexBytes
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3._utils.caching import generate_cache_key
from web3._utils.http_session_manager import HTTPSessionManager
from web3.exceptions import (
    BadFunctionCallOutput,
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.providers.rpc.utils import ExceptionRetryConfiguration

from servers.common.errors import Aborted, FailedPrecondition, MeshError, NotFound, Unavailable
from servers.ledger.adapters.artifacts import (
    ACCESS_LOG,
    DATASET,
    MODEL,
    TRANSLATION,
    ContractArtifact,
    load_artifact,
)
from servers.ledger.adapters.journal import JournalEntry, TxJournal, journal_path
from servers.ledger.adapters.signer import load_or_create_signer
from servers.ledger.domain.ledger import already_verified
from servers.ledger.domain.records import (
    AccessEntry,
    AccessEventSpec,
    ChainInfo,
    DatasetContract,
    DatasetSpec,
    ModelContract,
    ModelResult,
    ModelSpec,
    Transacted,
    TranslationContract,
    TranslationSpec,
)
from servers.ledger.domain.nonces import NonceManager, StaleNonce
from servers.ledger.settings import LedgerSettings

log = logging.getLogger(__name__)

DATASET_KIND = "mlmesh.Dataset/1"
MODEL_KIND = "mlmesh.Model/1"
TRANSLATION_KIND = "mlmesh.Translation/1"
ACCESS_LOG_KIND = "mlmesh.AccessLog/1"
_KIND_NAMES = {DATASET_KIND: "Dataset", MODEL_KIND: "Model", TRANSLATION_KIND: "Translation",
               ACCESS_LOG_KIND: "AccessLog"}
# anvil_setBalance tops the signer up to this when it holds less than the minimum.
_DEV_BALANCE_WEI = 10**24
_DEV_MIN_BALANCE_WEI = 10**21
_CONNECTION_ERRORS = (aiohttp.ClientError, TimeoutError, ProviderConnectionError, ConnectionError)
# Calls that cannot be decoded: the address holds some other contract.
_FOREIGN_CONTRACT_ERRORS = (ContractLogicError, BadFunctionCallOutput, DecodingError)


# Translation.Params, in the contract's order (the constructor's tuple and the getter's result).
_TRANSLATION_FIELDS = (
    "translation_id",
    "model_id",
    "model_contract",
    "source_sha256",
    "onnx_md5",
    "onnx_sha256",
    "converter",
    "opset",
    "max_abs_diff",
    "max_rel_diff",
    "atol",
    "rtol",
    "parity_passed",
)


def _rpc_message(exc: Web3RPCError) -> str:
    rpc = getattr(exc, "rpc_response", None)
    if isinstance(rpc, dict) and isinstance(rpc.get("error"), dict):
        return str(rpc["error"].get("message", exc))
    return str(getattr(exc, "message", None) or exc)


def _read_address(path: Path) -> str | None:
    try:
        return str(json.loads(path.read_text())["address"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FailedPrecondition(f"{path} does not hold the AccessLog's address ({exc}); restore it from a backup "
                                 "or remove it to start a new log", reason="ACCESS_LOG_FILE_INVALID") from exc


def _write_address(path: Path, address: str, tx_hash: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps({"address": address, "tx_hash": tx_hash}) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LoopSessions(HTTPSessionManager):
    """web3's HTTP session cache without its process-wide lock.

    web3 8.0's `HTTPSessionManager` guards its session cache with one `threading.Lock` shared by
    every provider in the process, taken for every async request by acquiring it in a worker
    thread. A request cancelled while that acquisition waits (a gRPC client that gives up, a
    deadline) leaves the lock to the worker thread for good, and every later request of every
    provider in the process waits forever: the Ledger stops reaching the chain (web3.py issue #3867;
    the fix proposed upstream, #3872, is not in 8.0.0). Its calls all come from one event loop, so
    the cache needs no lock: a session per loop and endpoint, made anew when closed (kept in web3's
    cache, which `disconnect()` closes)."""

    async def async_cache_and_return_session(self, endpoint_uri: URI, session: aiohttp.ClientSession | None = None,
                                             request_timeout: aiohttp.ClientTimeout | None = None
                                             ) -> aiohttp.ClientSession:
        key = generate_cache_key(f"{id(asyncio.get_running_loop())}:{endpoint_uri}")
        cached = self.session_cache.get_cache_entry(key)
        if cached is None or cached.closed:
            # As web3 makes them: no connection reuse (a restarted node is reached anew).
            cached = session or aiohttp.ClientSession(
                raise_for_status=True, connector=aiohttp.TCPConnector(force_close=True, enable_cleanup_closed=True))
            self.session_cache.cache(key, cached)
        return cached


def async_web3(rpc_url: str, timeout_seconds: float) -> AsyncWeb3:
    """An AsyncWeb3 over HTTP that a cancelled request cannot wedge (`LoopSessions`), with a few
    quick retries on connection errors only; sends are retried safely (see `EvmChain._send`)."""
    provider = AsyncHTTPProvider(
        rpc_url,
        request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout_seconds)},
        exception_retry_configuration=ExceptionRetryConfiguration(
            errors=(aiohttp.ClientConnectionError, TimeoutError), retries=3, backoff_factor=0.1
        ),
    )
    provider._request_session_manager = LoopSessions()
    return AsyncWeb3(provider)


class EvmChain:
    """`ChainPort` over JSON-RPC. Create it, use it from one event loop, `await close()` it."""

    def __init__(self, settings: LedgerSettings, *, account: LocalAccount | None = None):
        self._settings = settings
        self._account = account or load_or_create_signer(settings.signer_key_path)
        # Signing with a ready PrivateKey skips re-deriving the public key on every transaction
        # (milliseconds with eth-keys' pure-Python backend, spent inside the nonce lock).
        self._signing_key = keys.PrivateKey(self._account.key)
        self._w3 = async_web3(settings.rpc_url, settings.rpc_timeout_seconds)
        self._dataset: ContractArtifact = load_artifact(DATASET)
        self._model: ContractArtifact = load_artifact(MODEL)
        self._translation: ContractArtifact = load_artifact(TRANSLATION)
        self._access_log: ContractArtifact = load_artifact(ACCESS_LOG)
        self._access_log_address: str | None = None
        self._access_log_lock = asyncio.Lock()
        self._nonces = NonceManager(self._recover_then_pending)
        # Dev-chain durability (module docstring): the journal, opened once the node is known to be
        # Anvil; this process's sent-but-not-yet-journaled transactions by nonce; the watcher task.
        self._journal: TxJournal | None = None
        self._inflight: dict[int, bytes] = {}
        self._watcher: asyncio.Task | None = None
        self._dev_chain = False
        self.replayed = 0  # transactions sent again from the journal (a Prometheus gauge reads it)
        self.adopted = 0  # mined transactions journaled after the fact (see _adopt_locked)
        self._adopted_below = 0  # every nonce below this one is journaled
        self._ready_lock = asyncio.Lock()
        self._chain_id: int | None = None
        self._node_version = ""

    @property
    def signer_address(self) -> str:
        return self._account.address

    @property
    def rpc_url(self) -> str:
        return self._settings.rpc_url

    @property
    def journal(self) -> TxJournal | None:
        return self._journal

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watcher
            self._watcher = None
        with contextlib.suppress(Exception):
            await self._w3.provider.disconnect()

    # -- errors -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _errors(self, action: str) -> AsyncIterator[None]:
        """Turn what web3 and aiohttp raise while doing `action` into domain errors."""
        try:
            yield
        except MeshError:
            raise
        except _CONNECTION_ERRORS as exc:
            self._forget_node()
            raise Unavailable(
                f"chain node {self.rpc_url} did not answer while {action}: {exc or type(exc).__name__}",
                reason="CHAIN_UNAVAILABLE",
            ) from exc
        except StaleNonce as exc:
            raise Aborted(
                f"{action}: the signer {self.signer_address} is also used by another writer (nonce taken "
                "twice in a row); retry, and give the Ledger an account of its own",
                reason="NONCE_CONFLICT",
            ) from exc
        except ContractLogicError as exc:
            raise FailedPrecondition(
                f"{action}: the contract refused: {exc.message or exc}", reason="CONTRACT_REVERTED"
            ) from exc
        except Web3RPCError as exc:
            message = _rpc_message(exc)
            if "insufficient funds" in message.lower():
                raise FailedPrecondition(
                    f"{action}: the Ledger's signer {self.signer_address} cannot pay for gas ({message}); "
                    "fund it on the chain",
                    reason="SIGNER_INSUFFICIENT_FUNDS",
                ) from exc
            raise Unavailable(
                f"chain node {self.rpc_url} failed while {action}: {message}", reason="CHAIN_RPC_ERROR"
            ) from exc

    def _forget_node(self) -> None:
        """After a connection failure the node may have restarted: re-check it and re-read the nonce."""
        self._chain_id = None
        self._nonces.invalidate()

    # -- connection -------------------------------------------------------------------------

    async def _ready(self) -> int:
        """The chain id, after checking the node once (and funding the signer on Anvil)."""
        if self._chain_id is not None:
            return self._chain_id
        async with self._ready_lock:
            if self._chain_id is not None:
                return self._chain_id
            async with self._errors("connecting"):
                chain_id = await self._w3.eth.chain_id
                version = await self._w3.client_version
            expected = self._settings.expected_chain_id
            if expected is not None and chain_id != expected:
                raise FailedPrecondition(
                    f"chain node {self.rpc_url} serves chain id {chain_id}, but the Ledger is configured "
                    f"for {expected} (MLMESH_LEDGER_EXPECTED_CHAIN_ID)",
                    reason="CHAIN_ID_MISMATCH",
                )
            dev_chain = self._dev_chain = version.lower().startswith("anvil")
            if self._settings.fund_signer_on_dev_chain and dev_chain:
                async with self._errors("funding the signer on the dev chain"):
                    await self._fund_on_anvil()
            if self._settings.dev_chain_journal and dev_chain:
                await self._open_journal(chain_id)
            self._chain_id, self._node_version = chain_id, version
            log.info(
                "chain node %s: %s, chain id %d, signer %s",
                self.rpc_url, version, chain_id, self.signer_address,
            )
            return chain_id

    async def _fund_on_anvil(self) -> None:
        balance = await self._w3.eth.get_balance(self.signer_address)
        if balance < _DEV_MIN_BALANCE_WEI:
            await self._w3.manager.coro_request(
                "anvil_setBalance", [self.signer_address, hex(_DEV_BALANCE_WEI)]
            )
            log.info("funded the Ledger signer %s on the dev chain", self.signer_address)

    async def _pending_nonce(self) -> int:
        return await self._w3.eth.get_transaction_count(self.signer_address, "pending")

    # -- durability on the dev chain (module docstring) -----------------------------------------

    async def _open_journal(self, chain_id: int) -> None:
        if self._journal is None:
            directory = self._settings.data_dir / "ledger"
            self._journal = TxJournal(journal_path(directory, chain_id, self.signer_address))
            self._journal_chain_id = chain_id
            log.info("transaction journal %s: %d transactions", self._journal.path, len(self._journal))
        async with self._errors("sending again the journaled transactions the node lost"):
            await self._nonces.exclusive(self._adopt_then_recover_locked)
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="ledger-journal-watch")

    async def _recover_then_pending(self) -> int:
        """The nonce counter is re-read (node restarted, error, ...): first restore what the node lost,
        so a new transaction never takes the nonce of a journaled one."""
        await self._adopt_then_recover_locked()
        return await self._pending_nonce()

    async def recover(self) -> int:
        """Send again what the node lost; the number of transactions sent (0: nothing was lost)."""
        if self._journal is None:
            return 0
        async with self._errors("sending again the journaled transactions the node lost"):
            return await self._nonces.exclusive(self._recover_locked)

    async def _watch(self) -> None:
        """Notice an Anvil that restarted without some journaled transactions, while nobody writes."""
        while True:
            await asyncio.sleep(self._settings.journal_check_seconds)
            journal = self._journal
            if journal is None or len(journal) == 0:
                continue
            try:
                latest = await self._w3.eth.get_transaction_count(self.signer_address, "latest")
                if latest < journal.next_nonce or latest > self._adopted_below:
                    await self._nonces.exclusive(self._adopt_then_recover_locked)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - node down or restarting: the next tick tries again
                log.debug("journal check: %s", exc)

    async def _adopt_then_recover_locked(self) -> int:
        await self._adopt_locked()
        return await self._recover_locked()

    async def _adopt_locked(self) -> int:
        """Under the nonce lock: journal the signer's transactions that the node holds but the journal
        does not, and return how many. They were mined while no Ledger journaled them: a Ledger killed
        between a receipt and its journal append, a receipt wait that failed, a reverted transaction.
        None was acknowledged when it was mined, but a later write may rest on one (a retried
        training result finds its model already verified and is acknowledged), so each must come back
        as the journaled ones do if the node loses its newest blocks. Runs at start, before the
        journal is replayed, and on the watcher's ticks while the node holds them."""
        journal = self._journal
        if journal is None:
            return 0
        latest = await self._w3.eth.get_transaction_count(self.signer_address, "latest")
        missing = {n for n in range(self._adopted_below, latest) if journal.get(n) is None}
        if not missing:
            self._adopted_below = max(self._adopted_below, latest)
            return 0
        lowest = min(missing)
        below = next((journal.get(n) for n in range(lowest - 1, -1, -1) if journal.get(n) is not None), None)
        head = await self._w3.eth.block_number
        signer = self.signer_address.lower()
        adopted = 0
        for number in range(below.block if below else 0, head + 1):
            block = await self._w3.eth.get_block(number, full_transactions=True)
            for tx in block["transactions"]:
                if str(tx["from"]).lower() != signer or tx["nonce"] not in missing:
                    continue
                tx_hash = HexBytes(tx["hash"]).to_0x_hex()
                raw = await self._w3.manager.coro_request("eth_getRawTransactionByHash", [tx_hash])
                receipt = await self._w3.eth.get_transaction_receipt(tx_hash)
                contract = receipt.get("contractAddress")
                await journal.append(JournalEntry(nonce=int(tx["nonce"]), tx_hash=tx_hash,
                                                  raw=HexBytes(raw).to_0x_hex(), block=number,
                                                  contract=str(contract) if contract else None))
                missing.discard(int(tx["nonce"]))
                adopted += 1
            if not missing:
                break
        self._adopted_below = min(missing) if missing else max(self._adopted_below, latest)
        if adopted:
            self.adopted += adopted
            log.warning("journaled %d transactions of signer %s that chain node %s had mined but the journal %s "
                        "lacked (a Ledger stopped between a receipt and its journal append, or a reverted "
                        "transaction)", adopted, self.signer_address, self.rpc_url, journal.path)
        return adopted

    async def _recover_locked(self) -> int:
        """Under the nonce lock: send every journaled (or this process's in-flight) transaction from the
        node's count for the signer up to the journal's end, in nonce order; a nonce neither holds (a
        transaction of a Ledger that crashed before journaling it: never acknowledged) gets an empty
        self-transfer so the nonces after it still apply."""
        journal = self._journal
        if journal is None:
            return 0
        latest = await self._w3.eth.get_transaction_count(self.signer_address, "latest")
        for nonce in [n for n in self._inflight if n < latest]:
            del self._inflight[nonce]
        end = max(journal.next_nonce, max(self._inflight, default=-1) + 1)
        if latest >= journal.next_nonce:
            return 0  # nothing acknowledged is missing (in-flight ones are still being waited for)
        if self._settings.fund_signer_on_dev_chain:
            await self._fund_on_anvil()  # a node restored from an older state may not hold the funding
        last_hash: HexBytes | None = None
        fillers = 0
        for nonce in range(latest, end):
            entry = journal.get(nonce)
            raw = bytes(HexBytes(entry.raw)) if entry is not None else self._inflight.get(nonce)
            if raw is None:
                raw = await self._filler(nonce)
                fillers += 1
            tx_hash = HexBytes(keccak(raw))
            try:
                await self._send(raw, tx_hash)
            except StaleNonce as exc:
                log.error("journaled transaction %s (nonce %d) cannot be sent again: %s; its contract stays "
                          "missing", tx_hash.to_0x_hex(), nonce, exc)
                continue
            last_hash = tx_hash
        if last_hash is not None:
            await self._w3.eth.wait_for_transaction_receipt(
                last_hash, timeout=self._settings.receipt_timeout_seconds,
                poll_latency=self._settings.receipt_poll_seconds,
            )
        sent = end - latest
        self.replayed += sent
        log.warning(
            "chain node %s had lost %d transactions of signer %s (nonces %d..%d, %d not journaled and filled "
            "with empty transfers); sent them again from %s",
            self.rpc_url, sent, self.signer_address, latest, end - 1, fillers, journal.path,
        )
        return sent

    async def _filler(self, nonce: int) -> bytes:
        gas_price = await self._w3.eth.gas_price
        tx = {"to": self.signer_address, "value": 0, "gas": 21000, "gasPrice": 2 * gas_price, "nonce": nonce,
              "chainId": self._journal_chain_id}
        return bytes(Account.sign_transaction(tx, self._signing_key).raw_transaction)

    async def _confirm(self, receipt: dict[str, Any], tx_hash: HexBytes, action: str) -> dict[str, Any]:
        """Wait for `confirmation_blocks` blocks on top of the receipt's; the receipt as it then is."""
        depth = self._settings.confirmation_blocks
        if depth == 0:
            return receipt
        hex_hash = tx_hash.to_0x_hex()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.receipt_timeout_seconds
        while await self._w3.eth.block_number < receipt["blockNumber"] + depth:
            if loop.time() > deadline:
                raise Unavailable(
                    f"{action}: transaction {hex_hash} is in block {receipt['blockNumber']} but has not "
                    f"reached {depth} confirmations after {self._settings.receipt_timeout_seconds:g}s",
                    reason="CONFIRMATION_TIMEOUT", metadata={"tx_hash": hex_hash},
                )
            await asyncio.sleep(self._settings.receipt_poll_seconds)
        try:
            return dict(await self._w3.eth.get_transaction_receipt(tx_hash))
        except TransactionNotFound as exc:
            raise Unavailable(
                f"{action}: transaction {hex_hash} left the chain (reorganised) before {depth} confirmations",
                reason="CONFIRMATION_TIMEOUT", metadata={"tx_hash": hex_hash},
            ) from exc

    # -- writes -----------------------------------------------------------------------------

    async def _send(self, raw: bytes, tx_hash: HexBytes) -> None:
        """Send a signed transaction. A retried send whose first attempt reached the node is fine."""
        try:
            await self._w3.eth.send_raw_transaction(raw)
        except Web3RPCError as exc:
            message = _rpc_message(exc).lower()
            if "already known" in message or "already imported" in message:
                return
            if "nonce too low" in message or "nonce is too low" in message:
                if await self._known(tx_hash):
                    return
                raise StaleNonce(message) from exc
            raise

    async def _known(self, tx_hash: HexBytes) -> bool:
        try:
            await self._w3.eth.get_transaction(tx_hash)
            return True
        except TransactionNotFound:
            return False

    async def _transact(self, call: Any, action: str) -> tuple[dict[str, Any], str]:
        """Build, sign, send `call` (a contract constructor or function) and wait for its receipt. On
        Anvil, a signer left without funds (a node restarted from an older state) is topped up once."""
        try:
            return await self._transact_once(call, action)
        except FailedPrecondition as exc:
            if exc.reason != "SIGNER_INSUFFICIENT_FUNDS" or not (
                    self._dev_chain and self._settings.fund_signer_on_dev_chain):
                raise
        async with self._errors("funding the signer on the dev chain"):
            await self._fund_on_anvil()
        return await self._transact_once(call, action)

    async def _transact_once(self, call: Any, action: str) -> tuple[dict[str, Any], str]:
        chain_id = await self._ready()
        async with self._errors(action):
            tx = dict(await call.build_transaction({"from": self.signer_address, "chainId": chain_id}))
            tx["gas"] = int(tx["gas"] * self._settings.gas_headroom)

        async def sign_and_send(nonce: int) -> tuple[HexBytes, int, bytes]:
            signed = Account.sign_transaction({**tx, "nonce": nonce}, self._signing_key)
            if self._journal is not None:
                self._inflight[nonce] = bytes(signed.raw_transaction)
            await self._send(signed.raw_transaction, signed.hash)
            return signed.hash, nonce, bytes(signed.raw_transaction)

        async with self._errors(action):
            tx_hash, nonce, raw = await self._nonces.submit(sign_and_send)
        hex_hash = tx_hash.to_0x_hex()
        async with self._errors(f"waiting for the receipt of {hex_hash} ({action})"):
            try:
                receipt = await self._w3.eth.wait_for_transaction_receipt(
                    tx_hash,
                    timeout=self._settings.receipt_timeout_seconds,
                    poll_latency=self._settings.receipt_poll_seconds,
                )
            except TimeExhausted as exc:
                self._nonces.invalidate()
                raise Unavailable(
                    f"{action}: transaction {hex_hash} was sent but has no receipt after "
                    f"{self._settings.receipt_timeout_seconds:g}s; it may still be mined",
                    reason="RECEIPT_TIMEOUT",
                    metadata={"tx_hash": hex_hash},
                ) from exc
            receipt = await self._confirm(dict(receipt), tx_hash, action)
        if receipt["status"] != 1:
            raise FailedPrecondition(
                f"{action}: transaction {hex_hash} failed in block {receipt['blockNumber']} "
                f"(status 0, gas used {receipt['gasUsed']} of {tx['gas']})",
                reason="TRANSACTION_REVERTED",
                metadata={"tx_hash": hex_hash},
            )
        if self._journal is not None:
            contract = receipt.get("contractAddress")
            entry = JournalEntry(nonce=nonce, tx_hash=hex_hash, raw=HexBytes(raw).to_0x_hex(),
                                 block=int(receipt["blockNumber"]), contract=str(contract) if contract else None)
            try:
                await self._journal.append(entry)
            except OSError as exc:
                raise Unavailable(
                    f"{action}: transaction {hex_hash} is mined but could not be made durable in the journal "
                    f"{self._journal.path} ({exc}); it is not acknowledged",
                    reason="JOURNAL_WRITE_FAILED", metadata={"tx_hash": hex_hash},
                ) from exc
            if self._inflight.get(nonce) == raw:
                del self._inflight[nonce]
        return dict(receipt), hex_hash

    async def deploy_dataset(self, spec: DatasetSpec) -> Transacted[DatasetContract]:
        factory = self._w3.eth.contract(abi=self._dataset.abi, bytecode=self._dataset.bytecode)
        constructor = factory.constructor(
            spec.dataset_id,
            spec.organization_id,
            spec.samples_dimension,
            spec.size_bytes,
            spec.md5,
            spec.sha256,
        )
        receipt, tx_hash = await self._transact(
            constructor, f"deploying the Dataset contract of dataset {spec.dataset_id}"
        )
        contract = DatasetContract(
            address=receipt["contractAddress"],
            dataset_id=spec.dataset_id,
            organization_id=spec.organization_id,
            samples_dimension=spec.samples_dimension,
            size_bytes=spec.size_bytes,
            md5=spec.md5,
            sha256=spec.sha256,
            block_number=receipt["blockNumber"],
            chain_id=await self._ready(),
        )
        return Transacted(contract, tx_hash)

    async def deploy_model(self, spec: ModelSpec) -> Transacted[ModelContract]:
        factory = self._w3.eth.contract(abi=self._model.abi, bytecode=self._model.bytecode)
        constructor = factory.constructor(
            spec.model_id,
            spec.organization_id,
            spec.developer_id,
            spec.dataset_id,
            spec.train_image_hash,
            spec.train_image_sha256,
        )
        receipt, tx_hash = await self._transact(
            constructor, f"deploying the Model contract of model {spec.model_id}"
        )
        contract = ModelContract(
            address=receipt["contractAddress"],
            model_id=spec.model_id,
            organization_id=spec.organization_id,
            developer_id=spec.developer_id,
            dataset_id=spec.dataset_id,
            train_image_hash=spec.train_image_hash,
            train_image_sha256=spec.train_image_sha256,
            res_hash="",
            res_sha256="",
            verified=False,
            block_number=receipt["blockNumber"],
            chain_id=await self._ready(),
        )
        return Transacted(contract, tx_hash)

    async def verify_model(self, address: str, result: ModelResult) -> Transacted[ModelContract]:
        contract = self._w3.eth.contract(address=address, abi=self._model.abi)
        call = contract.functions.verify(result.res_hash, result.res_sha256)
        try:
            _, tx_hash = await self._transact(call, f"verifying model contract {address}")
        except FailedPrecondition as exc:
            if exc.reason not in ("CONTRACT_REVERTED", "TRANSACTION_REVERTED"):
                raise
            # Lost a race with another verify, or the signer is not the owner: say which.
            current = await self.get_model(address)
            if current.verified:
                raise already_verified(current) from exc
            if "owner" in exc.message:
                raise FailedPrecondition(
                    f"model contract {address} was deployed by another account; the Ledger's signer "
                    f"{self.signer_address} may not verify it (was the signer key replaced?)",
                    reason="SIGNER_NOT_OWNER",
                ) from exc
            raise
        return Transacted(await self.get_model(address), tx_hash)

    async def deploy_translation(self, spec: TranslationSpec) -> Transacted[TranslationContract]:
        factory = self._w3.eth.contract(abi=self._translation.abi, bytecode=self._translation.bytecode)
        # The constructor takes one tuple (Translation.Params), in get_translation_params' order.
        constructor = factory.constructor(
            (
                spec.translation_id,
                spec.model_id,
                spec.model_contract,
                spec.source_sha256,
                spec.onnx_md5,
                spec.onnx_sha256,
                spec.converter,
                spec.opset,
                spec.max_abs_diff,
                spec.max_rel_diff,
                spec.atol,
                spec.rtol,
                spec.parity_passed,
            )
        )
        receipt, tx_hash = await self._transact(
            constructor, f"deploying the Translation contract of translation {spec.translation_id}"
        )
        contract = TranslationContract(
            address=receipt["contractAddress"],
            **{f: getattr(spec, f) for f in _TRANSLATION_FIELDS},
            block_number=receipt["blockNumber"],
            chain_id=await self._ready(),
        )
        return Transacted(contract, tx_hash)

    # -- reads ------------------------------------------------------------------------------

    async def _read(
        self, address: str, artifact: ContractArtifact, kind: str, getter: str
    ) -> tuple[list, int]:
        """(getter's values, deployment block) of the `kind` contract at `address`; a contract the
        journal created but the node lost is sent again first."""
        try:
            return await self._read_once(address, artifact, kind, getter)
        except NotFound as exc:
            journal = self._journal
            if exc.reason != "CONTRACT_NOT_FOUND" or journal is None or not journal.holds_contract(address):
                raise
        await self.recover()
        return await self._read_once(address, artifact, kind, getter)

    async def _read_once(
        self, address: str, artifact: ContractArtifact, kind: str, getter: str
    ) -> tuple[list, int]:
        chain_id = await self._ready()
        contract = self._w3.eth.contract(address=address, abi=artifact.abi)
        name = _KIND_NAMES[kind]
        async with self._errors(f"reading {name} contract {address}"):
            code, found_kind, values, block = await asyncio.gather(
                self._w3.eth.get_code(address),
                contract.functions.KIND().call(),
                getattr(contract.functions, getter)().call(),
                contract.functions.deployed_block().call(),
                return_exceptions=True,
            )
            for outcome in (code, found_kind, values, block):
                if isinstance(outcome, _CONNECTION_ERRORS):
                    raise outcome
            if isinstance(code, BaseException):
                raise code
            if not code:
                raise NotFound(
                    f"there is no contract at {address} on chain {chain_id}",
                    reason="CONTRACT_NOT_FOUND",
                    metadata={"address": address},
                )
            if isinstance(found_kind, _FOREIGN_CONTRACT_ERRORS) or found_kind != kind:
                what = _KIND_NAMES.get(found_kind, "") if isinstance(found_kind, str) else ""
                described = f"an mlmesh {what} contract" if what else "a contract that is not from mlmesh"
                raise NotFound(
                    f"{address} holds {described}, not an mlmesh {name} contract",
                    reason=f"NOT_A_{name.upper()}_CONTRACT",
                    metadata={"address": address},
                )
            for outcome in (found_kind, values, block):
                if isinstance(outcome, BaseException):
                    raise outcome
        return (list(values) if isinstance(values, list | tuple) else [values]), int(block)

    async def get_dataset(self, address: str) -> DatasetContract:
        values, block = await self._read(address, self._dataset, DATASET_KIND, "get_dataset_params")
        dataset_id, organization_id, samples_dimension, size_bytes, md5, sha256 = values
        return DatasetContract(
            address=address,
            dataset_id=dataset_id,
            organization_id=organization_id,
            samples_dimension=samples_dimension,
            size_bytes=int(size_bytes),
            md5=md5,
            sha256=sha256,
            block_number=block,
            chain_id=await self._ready(),
        )

    async def get_model(self, address: str) -> ModelContract:
        values, block = await self._read(address, self._model, MODEL_KIND, "get_model_params")
        (
            model_id,
            organization_id,
            developer_id,
            dataset_id,
            image_md5,
            image_sha256,
            res_md5,
            res_sha256,
            verified,
        ) = values
        return ModelContract(
            address=address,
            model_id=model_id,
            organization_id=organization_id,
            developer_id=developer_id,
            dataset_id=dataset_id,
            train_image_hash=image_md5,
            train_image_sha256=image_sha256,
            res_hash=res_md5,
            res_sha256=res_sha256,
            verified=bool(verified),
            block_number=block,
            chain_id=await self._ready(),
        )

    async def get_translation(self, address: str) -> TranslationContract:
        values, block = await self._read(
            address, self._translation, TRANSLATION_KIND, "get_translation_params"
        )
        (params,) = values if len(values) == 1 and isinstance(values[0], tuple | list) else (values,)
        fields = dict(zip(_TRANSLATION_FIELDS, params, strict=True))
        fields["opset"] = int(fields["opset"])
        fields["parity_passed"] = bool(fields["parity_passed"])
        return TranslationContract(
            address=address, **fields, block_number=block, chain_id=await self._ready()
        )

    # -- the AccessLog (module docstring) ------------------------------------------------------

    def _access_log_file(self, chain_id: int) -> Path:
        return self._settings.data_dir / "ledger" / f"access-log-{chain_id}-{self.signer_address.lower()}.json"

    async def _access_log_at(self, create: bool) -> str | None:
        """The AccessLog's address on this chain; deployed (and remembered) first when `create`,
        else None while there is none."""
        chain_id = await self._ready()
        if self._access_log_address is not None:
            return self._access_log_address
        async with self._access_log_lock:
            if self._access_log_address is not None:
                return self._access_log_address
            path = self._access_log_file(chain_id)
            address = _read_address(path)
            if address is not None:
                try:
                    await self._read(address, self._access_log, ACCESS_LOG_KIND, "count")
                except NotFound as exc:
                    if exc.reason != "CONTRACT_NOT_FOUND":
                        raise
                    # The node lost it and the journal cannot bring it back (a dev chain started
                    # afresh): its entries are gone; a new log starts, and the Registry's anchors
                    # of the old entries show as inconsistent.
                    log.error("the AccessLog %s remembered in %s is not on chain %d; deploying a new one",
                              address, path, chain_id)
                    address = None
            if address is None:
                if not create:
                    return None
                factory = self._w3.eth.contract(abi=self._access_log.abi, bytecode=self._access_log.bytecode)
                receipt, tx_hash = await self._transact(factory.constructor(), "deploying the AccessLog contract")
                address = str(receipt["contractAddress"])
                try:
                    await asyncio.to_thread(_write_address, path, address, tx_hash)
                except OSError as exc:
                    raise Unavailable(f"the AccessLog {address} is deployed but its address cannot be saved in "
                                      f"{path} ({exc})", reason="ACCESS_LOG_NOT_SAVED") from exc
                log.info("deployed the AccessLog contract %s on chain %d (tx %s)", address, chain_id, tx_hash)
            self._access_log_address = address
            return address

    async def record_access(self, spec: AccessEventSpec) -> Transacted[AccessEntry]:
        address = await self._access_log_at(create=True)
        contract = self._w3.eth.contract(address=address, abi=self._access_log.abi)
        subject_hash = bytes.fromhex(spec.actor_subject_sha256) if spec.actor_subject_sha256 else bytes(32)
        call = contract.functions.record(
            spec.resource_kind, spec.resource_id, spec.action, spec.grantee, spec.public,
            spec.actor_organization_id, subject_hash, spec.event_time_micros,
        )
        receipt, tx_hash = await self._transact(
            call, f"recording {spec.action} of {spec.resource_kind} {spec.resource_id} in the AccessLog"
        )
        index = None
        for entry_log in receipt.get("logs", []):
            topics = entry_log.get("topics") or []
            if str(entry_log.get("address", "")).lower() == address.lower() and len(topics) >= 2:
                index = int.from_bytes(bytes(topics[1]), "big")
        if index is None:
            raise Unavailable(f"transaction {tx_hash} appended to the AccessLog but emitted no AccessRecorded event",
                              reason="ACCESS_LOG_NO_EVENT", metadata={"tx_hash": tx_hash})
        entry = AccessEntry(index=index, spec=spec, block_number=int(receipt["blockNumber"]),
                            contract_address=address, chain_id=await self._ready())
        return Transacted(entry, tx_hash)

    async def access_entries(self, resource_kind: str, resource_id: str) -> list[AccessEntry]:
        address = await self._access_log_at(create=False)
        if address is None:
            return []
        chain_id = await self._ready()
        contract = self._w3.eth.contract(address=address, abi=self._access_log.abi)
        async with self._errors(f"reading the AccessLog {address}"):
            indexes = await contract.functions.indexesOf(resource_kind, resource_id).call()
            rows = await asyncio.gather(*(contract.functions.entry(i).call() for i in indexes))
        entries = []
        for index, row in zip(indexes, rows, strict=True):
            kind, rid, action, grantee, public, actor_org, subject_hash, event_time, block = row
            subject = bytes(subject_hash)
            spec = AccessEventSpec(
                resource_kind=kind, resource_id=rid, action=action, grantee=grantee, public=bool(public),
                actor_organization_id=actor_org, actor_subject_sha256=subject.hex() if any(subject) else "",
                event_time_micros=int(event_time),
            )
            entries.append(AccessEntry(index=int(index), spec=spec, block_number=int(block),
                                       contract_address=address, chain_id=chain_id))
        return entries

    async def chain_info(self) -> ChainInfo:
        chain_id = await self._ready()
        async with self._errors("reading the latest block number"):
            block = await self._w3.eth.block_number
        return ChainInfo(
            chain_id=chain_id,
            block_number=int(block),
            signer_address=self.signer_address,
            node_version=self._node_version,
        )
