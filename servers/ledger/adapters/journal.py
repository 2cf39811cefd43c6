"""The Ledger's transaction journal: what makes a write on the embedded Anvil durable.

Anvil keeps its chain in memory and writes it to disk only now and then (every second, see
servers/devstack/anvil.py), so a `kill -9` of Anvil loses the newest blocks. Dumping Anvil's
whole state at every acknowledgement would close that window, but a dump holds every block,
transaction and contract: it grows with the chain (measured with 1.7.1: 8 ms at 100 deploys,
113 ms at 1,000, 431 ms at 2,000), so its cost per write grows without bound. This journal
costs the same at any chain size: one line per transaction, appended and fsynced.

After a transaction's receipt, and before the write is acknowledged, the Ledger appends the
signed raw transaction (with its nonce, hash, block and contract address) to this file and
fsyncs it. Concurrent writes share one fsync (group commit). When the node has forgotten
transactions (its nonce for the signer is below the journal's), the chain adapter sends the
journaled raw transactions again, in nonce order: the same signed bytes from the same account
at the same nonce give the same transaction hash and the same contract address, so every
acknowledged contract is back where the Registry recorded it.

File format: one JSON object per line; a torn last line (a crash during an append, never
acknowledged) is cut off when the file is opened. The file name carries the chain id and the
signer address, so a journal is replayed only onto the chain and account it was written for.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JournalEntry:
    nonce: int
    tx_hash: str
    raw: str  # 0x-hex of the signed transaction
    block: int
    contract: str | None = None  # address a deploy created


def journal_path(directory: Path, chain_id: int, signer: str) -> Path:
    return directory / f"journal-{chain_id}-{signer.lower()}.jsonl"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class TxJournal:
    """Append-only, fsynced, group-committed. Use it from one event loop."""

    def __init__(self, path: Path):
        self.path = path
        self._by_nonce: dict[int, JournalEntry] = {}
        self._contracts: set[str] = set()
        self._pending: list[tuple[JournalEntry, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task | None = None
        self._open()
        self.fsyncs = 0  # how many group commits were written (tests and benchmarks read it)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.touch()
            _fsync_dir(self.path.parent)
            return
        data = self.path.read_bytes()
        good = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                entry = JournalEntry(**json.loads(line))
            except (ValueError, TypeError):
                break
            self._remember(entry)
            good += len(line)
        if good < len(data):
            log.warning("transaction journal %s: cut off a torn tail of %d bytes (a write that was never "
                        "acknowledged)", self.path, len(data) - good)
            with open(self.path, "r+b") as f:
                f.truncate(good)
                os.fsync(f.fileno())

    def _remember(self, entry: JournalEntry) -> None:
        self._by_nonce[entry.nonce] = entry
        if entry.contract:
            self._contracts.add(entry.contract.lower())

    @property
    def next_nonce(self) -> int:
        """One past the highest journaled nonce (0 when empty): a node whose count for the signer is
        below it has lost acknowledged transactions."""
        return max(self._by_nonce, default=-1) + 1

    def get(self, nonce: int) -> JournalEntry | None:
        return self._by_nonce.get(nonce)

    def holds_contract(self, address: str) -> bool:
        return address.lower() in self._contracts

    def __len__(self) -> int:
        return len(self._by_nonce)

    async def append(self, entry: JournalEntry) -> None:
        """Return once `entry` is on disk (fsynced); concurrent appends share one fsync."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            lines = b"".join(json.dumps(asdict(e), separators=(",", ":")).encode() + b"\n" for e, _ in batch)
            try:
                await asyncio.to_thread(self._write, lines)
            except OSError as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.fsyncs += 1
            for entry, future in batch:
                self._remember(entry)
                if not future.done():
                    future.set_result(None)

    def _write(self, lines: bytes) -> None:
        with open(self.path, "ab") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())
