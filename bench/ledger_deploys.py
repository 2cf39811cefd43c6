"""Ledger benchmark: contract deploys per second on the embedded chain.

Starts its own Anvil (tmp data dir, free port) and drives the Ledger's chain adapter
directly (no gRPC), so the figures are the adapter's: build (gas estimate, fees), sign,
send under the nonce lock, wait for the receipt. Measured in the same run:

  baseline  a plain ETH transfer through the same path (the cheapest transaction there is)
  deploy    Dataset contract deploys

each sequentially and with 8 in flight. It prints transactions per second and every figure
as a ratio to the sequential baseline; only ratios are meant to be compared across machines.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from web3._utils.async_transactions import async_fill_transaction_defaults

from servers.devstack import procs
from servers.devstack.anvil import rpc_url, start_anvil
from servers.ledger.adapters.chain import EvmChain
from servers.ledger.domain.records import DatasetSpec
from servers.ledger.settings import LedgerSettings

CONCURRENCY = 8


class _Transfer:
    """A 1-wei transfer with the `build_transaction` interface of a contract call, so the
    baseline goes through exactly the adapter path that deploys take."""

    def __init__(self, chain: EvmChain, to: str):
        self._w3 = chain._w3  # noqa: SLF001 - benchmark reaches into the adapter on purpose
        self._to = to

    async def build_transaction(self, tx: dict[str, Any]) -> dict[str, Any]:
        return dict(await async_fill_transaction_defaults(self._w3, {**tx, "to": self._to, "value": 1}))


def _dataset_spec() -> DatasetSpec:
    blob = uuid.uuid4().bytes
    return DatasetSpec(
        dataset_id=str(uuid.uuid4()),
        organization_id=str(uuid.uuid4()),
        samples_dimension="(128,128,3)",
        size_bytes=1_840_000,
        md5=hashlib.md5(blob).hexdigest(),
        sha256=hashlib.sha256(blob).hexdigest(),
    )


async def _rate(n: int, concurrency: int, one) -> float:
    """Operations per second for `n` calls of `one()` with at most `concurrency` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def bounded():
        async with gate:
            await one()

    started = time.perf_counter()
    await asyncio.gather(*[bounded() for _ in range(n)])
    return n / (time.perf_counter() - started)


async def _measure(url: str, data_dir: Path, n: int) -> dict:
    chain = EvmChain(LedgerSettings(rpc_url=url, data_dir=data_dir))
    try:
        info = await chain.chain_info()
        sink = "0x000000000000000000000000000000000000dEaD"

        async def transfer():
            await chain._transact(_Transfer(chain, sink), "sending a benchmark transfer")  # noqa: SLF001

        async def deploy():
            await chain.deploy_dataset(_dataset_spec())

        await transfer()  # warm up: connection, signer funding, nonce
        await deploy()
        figures = {
            "transfer_seq": await _rate(n, 1, transfer),
            f"transfer_c{CONCURRENCY}": await _rate(n, CONCURRENCY, transfer),
            "deploy_seq": await _rate(n, 1, deploy),
            f"deploy_c{CONCURRENCY}": await _rate(n, CONCURRENCY, deploy),
        }
    finally:
        await chain.close()
    baseline = figures["transfer_seq"]
    return {
        "n": n,
        "node": info.node_version,
        "baseline": "transfer_seq",
        "per_second": figures,
        "ratio_to_baseline": {name: value / baseline for name, value in figures.items()},
        "deploy_concurrency_speedup": figures[f"deploy_c{CONCURRENCY}"] / figures["deploy_seq"],
    }


def measure_deploys(n: int = 50) -> dict:
    """Start an Anvil, measure, stop it; the result holds rates per second and ratios."""
    with tempfile.TemporaryDirectory(prefix="mlmesh-bench-ledger-") as tmp:
        port = procs.free_port()
        node = start_anvil(Path(tmp), port)
        try:
            return asyncio.run(_measure(rpc_url(port), Path(tmp), n))
        finally:
            procs.stop(node)


def report(result: dict) -> str:
    lines = [
        f"{result['n']} transactions per figure on {result['node']}; "
        "baseline: plain ETH transfer, sequential"
    ]
    labels = {
        "transfer_seq": "ETH transfer, sequential (baseline)",
        f"transfer_c{CONCURRENCY}": f"ETH transfer, {CONCURRENCY} in flight",
        "deploy_seq": "Dataset deploy, sequential",
        f"deploy_c{CONCURRENCY}": f"Dataset deploy, {CONCURRENCY} in flight",
    }
    for name, label in labels.items():
        rate = result["per_second"][name]
        ratio = result["ratio_to_baseline"][name]
        lines.append(f"  {label:<40} {rate:8.1f}/s   {ratio:5.2f}x baseline")
    speedup = result["deploy_concurrency_speedup"]
    lines.append(f"  {f'Dataset deploy, {CONCURRENCY} in flight vs sequential':<40} {speedup:5.2f}x")
    return "\n".join(lines)


def main(n: int = 50) -> None:
    print(report(measure_deploys(n)))


if __name__ == "__main__":
    main()
