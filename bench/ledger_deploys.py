"""Ledger benchmark: contract deploys per second on the embedded chain.

Starts its own Anvil (tmp data dir, free port) and drives the Ledger's chain adapter
directly (no gRPC), so the figures are the adapter's: build (gas estimate, fees), sign,
send under the nonce lock, wait for the receipt. Measured in the same run:

  baseline  a plain ETH transfer through the same path (the cheapest transaction there is)
  deploy    Dataset contract deploys, acknowledged at the receipt (no durability: what a kill -9
            of Anvil within its one-second dump window loses)
  durable   the same deploys acknowledged only once journaled and fsynced (the default on Anvil:
            servers/ledger/adapters/journal.py), by a second Ledger signer on the same node

each sequentially and with 8 in flight, the two kinds of deploys in alternating rounds so both
see the same node and chain size. It prints transactions per second and every figure as a
ratio to the sequential baseline, and the cost of durability at 8 in flight; only ratios are
meant to be compared across machines. For scale it also times one `anvil_dumpState` at the
end (the alternative design, a full state dump per group commit, grows with the chain).
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
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


async def _measure(url: str, data_dir: Path, n: int, rounds: int = 3) -> dict:
    chain = EvmChain(LedgerSettings(rpc_url=url, data_dir=data_dir / "plain", dev_chain_journal=False))
    durable = EvmChain(LedgerSettings(rpc_url=url, data_dir=data_dir / "durable"))
    try:
        info = await chain.chain_info()
        await durable.chain_info()
        assert durable.journal is not None and chain.journal is None
        sink = "0x000000000000000000000000000000000000dEaD"

        async def transfer():
            await chain._transact(_Transfer(chain, sink), "sending a benchmark transfer")  # noqa: SLF001

        async def deploy():
            await chain.deploy_dataset(_dataset_spec())

        async def deploy_durable():
            await durable.deploy_dataset(_dataset_spec())

        await transfer()  # warm up: connection, signer funding, nonce
        await deploy()
        await deploy_durable()
        figures = {
            "transfer_seq": await _rate(n, 1, transfer),
            f"transfer_c{CONCURRENCY}": await _rate(n, CONCURRENCY, transfer),
        }
        samples: dict[str, list[float]] = {}
        for _ in range(rounds):
            for name, one, c in (("deploy_seq", deploy, 1), ("durable_seq", deploy_durable, 1),
                                 (f"deploy_c{CONCURRENCY}", deploy, CONCURRENCY),
                                 (f"durable_c{CONCURRENCY}", deploy_durable, CONCURRENCY)):
                samples.setdefault(name, []).append(await _rate(n, c, one))
        figures.update({name: statistics.median(values) for name, values in samples.items()})
        fsyncs = durable.journal.fsyncs
        started = time.perf_counter()
        await chain._w3.manager.coro_request("anvil_dumpState", [])  # noqa: SLF001
        dump_ms = (time.perf_counter() - started) * 1000
        contracts = len(durable.journal) + 2 * rounds * n + 1
    finally:
        await chain.close()
        await durable.close()
    baseline = figures["transfer_seq"]
    return {
        "durability_cost_c8": 1 - figures[f"durable_c{CONCURRENCY}"] / figures[f"deploy_c{CONCURRENCY}"],
        "durability_cost_seq": 1 - figures["durable_seq"] / figures["deploy_seq"],
        "journal_fsyncs": fsyncs,
        "journaled": 2 * rounds * n + 1,
        "dump_state_ms": dump_ms,
        "contracts_on_chain": contracts,
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
        "durable_seq": "durable Dataset deploy, sequential",
        f"durable_c{CONCURRENCY}": f"durable Dataset deploy, {CONCURRENCY} in flight",
    }
    for name, label in labels.items():
        rate = result["per_second"][name]
        ratio = result["ratio_to_baseline"][name]
        lines.append(f"  {label:<40} {rate:8.1f}/s   {ratio:5.2f}x baseline")
    speedup = result["deploy_concurrency_speedup"]
    lines.append(f"  {f'Dataset deploy, {CONCURRENCY} in flight vs sequential':<40} {speedup:5.2f}x")
    lines.append(
        f"  cost of durability (journal + fsync): {100 * result['durability_cost_c8']:.1f}% at "
        f"{CONCURRENCY} in flight, {100 * result['durability_cost_seq']:.1f}% sequential "
        f"({result['journaled']} journaled deploys in {result['journal_fsyncs']} fsyncs)"
    )
    lines.append(
        f"  for scale: one anvil_dumpState with {result['contracts_on_chain']} contracts on chain took "
        f"{result['dump_state_ms']:.0f} ms (it grows with the chain; the journal does not)"
    )
    return "\n".join(lines)


def main(n: int = 50) -> None:
    print(report(measure_deploys(n)))


if __name__ == "__main__":
    main()
