"""Missing anchors and start-up reconciliation, shared by the servers that acknowledge anchored
resources.

`read_anchor` reads a resource's ledger contract and turns the Ledger's NOT_FOUND into DATA_LOSS
with the reason ANCHOR_MISSING: the resource exists (its row, often its bytes), its anchor does
not; a client must never be told the resource is gone.

Each server's domain core checks what it acknowledged (rows) against what the chain and the
object store hold and returns a `ReconcileReport`; `start_reconciliation` runs that check in
the background once the server is built (retrying while a peer such as the Ledger is still
starting), logs the outcome, and exports it to Prometheus:

    mlmesh_recovery_inconsistencies{resource="dataset", missing="anchor"}  resources with something missing
    mlmesh_recovery_checked{resource="dataset"}                            resources checked
    mlmesh_recovery_completed                                              1 once a check finished
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from servers.common import errors

log = logging.getLogger(__name__)

T = TypeVar("T")

ANCHOR_MISSING = "ANCHOR_MISSING"


def anchor_missing(kind: str, ident: str, address: str, cause: errors.NotFound) -> errors.DataLoss:
    return errors.DataLoss(
        f"{kind} {ident} exists, but its anchor is missing: {cause.message}. Its record and bytes are "
        "kept, but the chain no longer proves them; restore the chain node's state (or the Ledger's "
        "journal) and retry",
        reason=ANCHOR_MISSING,
        metadata={"contract_address": address, "ledger_reason": cause.reason},
    )


async def read_anchor(read: Callable[[str], Awaitable[T]], kind: str, ident: str, address: str) -> T:
    """`read(address)`, with a missing contract reported as DATA_LOSS ANCHOR_MISSING."""
    try:
        return await read(address)
    except errors.NotFound as exc:
        raise anchor_missing(kind, ident, address, exc) from None


@dataclass(frozen=True)
class Inconsistency:
    kind: str  # "dataset", "model", "translation", ...
    resource_id: str
    missing: str  # "anchor", "bytes", "recipe", "verified result", ...
    detail: str


@dataclass(frozen=True)
class ReconcileReport:
    checked: dict[str, int]
    inconsistencies: list[Inconsistency]

    def counts(self) -> Counter[tuple[str, str]]:
        return Counter((i.kind, i.missing) for i in self.inconsistencies)


async def check_anchor(read: Callable[[str], Awaitable[T]], kind: str, ident: str, address: str
                       ) -> tuple[T | None, list[Inconsistency]]:
    """(the contract, []) or (None, [the anchor is missing])."""
    try:
        return await read(address), []
    except errors.NotFound as exc:
        return None, [Inconsistency(kind, ident, "anchor", f"ledger contract {address}: {exc.message}")]


async def check_bytes(store, kind: str, ident: str, key: str, size: int, what: str = "bytes") -> list[Inconsistency]:
    """[] when the object store holds `size` bytes under `key` (an `ObjectStore`); else what is wrong."""
    if not await store.exists(key):
        return [Inconsistency(kind, ident, what, f"object {key} is missing from object storage")]
    stored = await store.size(key)
    if stored != size:
        return [Inconsistency(kind, ident, what, f"object {key} holds {stored} bytes, {size} were recorded")]
    return []


def log_report(report: ReconcileReport, server: str) -> None:
    """One ERROR line per inconsistency, then a summary."""
    for item in report.inconsistencies:
        log.error("%s recovery: %s %s: %s missing: %s", server, item.kind, item.resource_id, item.missing,
                  item.detail)
    checked = ", ".join(f"{n} {kind}s" for kind, n in report.checked.items())
    log.info("%s recovery: checked %s against the chain and the object store: %d inconsistencies", server,
             checked or "nothing", len(report.inconsistencies))


def start_reconciliation(server, check: Callable[[], Awaitable[ReconcileReport]], *, retry_seconds: float = 2.0,
                         attempts: int = 60) -> asyncio.Task:
    """Run `check` in the background (`server` is a built MeshServer: its metrics registry and
    shutdown hooks are used); the task is cancelled when the server stops."""
    from prometheus_client import Gauge

    registry = server.metrics.registry
    missing = Gauge("mlmesh_recovery_inconsistencies", "Acknowledged resources with something missing, found by "
                    "the check at start (resource, what is missing).", ["resource", "missing"], registry=registry)
    checked = Gauge("mlmesh_recovery_checked", "Resources checked at start.", ["resource"], registry=registry)
    completed = Gauge("mlmesh_recovery_completed", "1 once the check at start has finished.", registry=registry)
    result: dict[str, ReconcileReport] = {}

    async def run() -> None:
        for attempt in range(attempts):
            try:
                report = await check()
                break
            except (errors.Unavailable, OSError) as exc:
                if attempt + 1 == attempts:
                    log.error("%s recovery: gave up after %d attempts: %s", server.name, attempts, exc)
                    return
                log.info("%s recovery: waiting for a dependency (%s)", server.name, exc)
                await asyncio.sleep(retry_seconds)
        log_report(report, server.name)
        for kind, n in report.checked.items():
            checked.labels(kind).set(n)
        for (kind, what), n in report.counts().items():
            missing.labels(kind, what).set(n)
        completed.set(1)
        result["report"] = report

    task = asyncio.get_running_loop().create_task(run(), name=f"{server.name}-recovery")
    task.result_holder = result  # tests read the report here

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    server.on_shutdown(stop)
    return task
