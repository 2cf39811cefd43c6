"""Nonce assignment for one signing account under concurrent callers.

One lock covers "take the next nonce, sign, send", so two transactions never get the same
nonce and they reach the node in nonce order; waiting for receipts happens outside the lock,
so concurrent callers still overlap on the slow part. The counter is local (no round trip per
transaction) and is re-read from the node's `pending` count whenever it may be wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class StaleNonce(Exception):
    """The node says the nonce was used already (another writer used the same account, or the
    node was reset). The manager re-reads the count and retries once."""


class NonceManager:
    def __init__(self, fetch_pending: Callable[[], Awaitable[int]]):
        self._fetch_pending = fetch_pending
        self._lock = asyncio.Lock()
        self._next: int | None = None

    def invalidate(self) -> None:
        """Forget the local counter; the next submission re-reads it from the node."""
        self._next = None

    async def exclusive(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run `work()` with no submission in progress; the counter is re-read afterwards."""
        async with self._lock:
            try:
                return await work()
            finally:
                self._next = None

    async def submit(self, send: Callable[[int], Awaitable[T]]) -> T:
        """Run `send(nonce)` with the next nonce, one submission at a time."""
        async with self._lock:
            if self._next is None:
                self._next = await self._fetch_pending()
            nonce = self._next
            try:
                try:
                    result = await send(nonce)
                except StaleNonce:
                    nonce = await self._fetch_pending()
                    result = await send(nonce)
            except BaseException:
                # The node may or may not hold the transaction: re-read instead of guessing.
                self._next = None
                raise
            self._next = nonce + 1
            return result
