"""What the Registry acknowledged against what the chain and the object store hold.

A dataset or model the Registry acknowledged has a row, bytes in object storage and a ledger
contract (its anchor). Should the anchor or the bytes go missing (a chain node restored from an
old state without the Ledger's journal, a store restored from a backup, a file deleted by hand),
the resource still exists: the Registry says exactly what is missing instead of pretending the
resource is gone.

* `read_anchor` (servers.common.recovery) turns the Ledger's NOT_FOUND for a recorded contract into DATA_LOSS with the
  reason ANCHOR_MISSING: the anchor, not the resource, is missing.
* `Reconciler.run` (at every start, in the background) checks every dataset and model and logs
  one line per inconsistency; the server exports the counts as a Prometheus gauge, and each
  resource's provenance shows the failed check.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from servers.common.recovery import Inconsistency, ReconcileReport, check_anchor, check_bytes, read_anchor
from servers.registry.domain.records import TRAINED

log = logging.getLogger(__name__)

__all__ = ["ANCHOR_PRESENT_CHECK", "Reconciler", "read_anchor"]

ANCHOR_PRESENT_CHECK = "ledger contract present on chain"


class Reconciler:
    """Checks every dataset and model the Registry holds against the chain and the store (the
    repositories' lists without an organization filter page through every record)."""

    def __init__(self, store, datasets, models, ledger, *, page_size: int = 200):
        self._store = store
        self._datasets = datasets
        self._models = models
        self._ledger = ledger
        self._page_size = page_size

    async def _all(self, list_page: Callable[[str], Awaitable]) -> list:
        records, token = [], ""
        while True:
            page = await list_page(token)
            records.extend(page.items)
            token = page.next_page_token
            if not token:
                return records

    async def run(self) -> ReconcileReport:
        found: list[Inconsistency] = []
        datasets = await self._all(lambda t: self._datasets.list(self._page_size, t, ""))
        for record in datasets:
            found.extend(await self._check_dataset(record))
        models = await self._all(lambda t: self._models.list(self._page_size, t, "", ""))
        for record in models:
            found.extend(await self._check_model(record))
        return ReconcileReport({"dataset": len(datasets), "model": len(models)}, found)

    async def _check_dataset(self, record) -> list[Inconsistency]:
        _, found = await check_anchor(self._ledger.get_dataset_contract, "dataset", record.dataset_id,
                                      record.contract_address)
        return found + await check_bytes(self._store, "dataset", record.dataset_id, record.object_key, record.size_bytes)

    async def _check_model(self, record) -> list[Inconsistency]:
        if not record.contract_address:
            return []
        chain, found = await check_anchor(self._ledger.get_model_contract, "model", record.model_id,
                                          record.contract_address)
        if getattr(record, "recipe_object_key", "") and record.source_kind != "image":
            found += await check_bytes(self._store, "model", record.model_id, record.recipe_object_key,
                                       record.recipe_size_bytes, "recipe")
        if record.state == TRAINED:
            found += await check_bytes(self._store, "model", record.model_id, record.object_key, record.size_bytes)
            if chain is not None and (not chain.verified or chain.res_sha256 != record.res_sha256):
                found.append(Inconsistency(
                    "model", record.model_id, "verified result",
                    f"the model is TRAINED with res_sha256 {record.res_sha256} but its contract "
                    f"{record.contract_address} records {chain.res_sha256 or 'no result'}"))
        return found
