"""Settings of the Ledger server (env prefix `MLMESH_LEDGER_`; `MLMESH_DATA_DIR` is shared)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from servers.common.endpoints import ANVIL_PORT, PORTS
from servers.common.settings import ServerSettings, settings_config


class LedgerSettings(ServerSettings):
    """Where the Ledger's chain is, who signs, and how long it waits for the chain."""

    model_config = settings_config("LEDGER")

    port: int = Field(PORTS["ledger"].grpc, ge=0, le=65535, description="gRPC port of the Ledger (internal only).")
    metrics_port: int = Field(PORTS["ledger"].metrics, ge=-1, le=65535, description="Prometheus port; -1 off.")
    rpc_url: str = Field(
        f"http://127.0.0.1:{ANVIL_PORT}",
        description="JSON-RPC (HTTP) endpoint of the EVM node: the embedded Anvil by default; "
        "a ConsenSys Quorum / Besu node in production.",
    )
    signer_key_file: Path | None = Field(
        None,
        description="File holding the hex private key that signs every Ledger transaction (in production: "
        "a mounted secret). Unset: <data_dir>/ledger/signer.key, generated with mode 0600 on first run. "
        "The key must stay the same across restarts: only the deploying account may verify a model.",
    )
    fund_signer_on_dev_chain: bool = Field(
        True,
        description="When the node is Anvil (web3_clientVersion starts with 'anvil'), top the signer up "
        "with anvil_setBalance so the embedded chain needs no faucet. Ignored on any other node, where "
        "the signer must be funded by the chain's operator.",
    )
    expected_chain_id: int | None = Field(
        None,
        ge=1,
        description="If set, the Ledger refuses to write to a node whose eth_chainId differs (guards "
        "against pointing production at the wrong network). Unset: any chain id is accepted.",
    )
    receipt_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a deploy or verify waits for its transaction receipt before failing with "
        "UNAVAILABLE (the transaction may still be mined later).",
    )
    receipt_poll_seconds: float = Field(
        0.05,
        gt=0,
        description="Interval between receipt polls. Anvil mines on arrival, so a short interval keeps "
        "latency low; raise it for chains with long block times.",
    )
    rpc_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Timeout of a single JSON-RPC request to the node.",
    )
    confirmation_blocks: int = Field(
        0,
        ge=0,
        le=1000,
        description="Blocks mined on top of a transaction's block before a write is acknowledged. 0: the "
        "receipt is enough (Anvil, and Quorum/Besu with immediate finality such as QBFT); raise it on a chain "
        "that can reorganise, so an acknowledged contract cannot vanish in a reorg.",
    )
    dev_chain_journal: bool = Field(
        True,
        description="When the node is Anvil, acknowledge a write only after its signed transaction is in the "
        "Ledger's journal (<data_dir>/ledger/journal-<chain id>-<signer>.jsonl, fsynced, group commit), and "
        "send journaled transactions again when the node has lost them (a kill -9 of Anvil loses its last "
        "second). Ignored on any other node, which keeps its own blocks durable.",
    )
    journal_check_seconds: float = Field(
        0.5,
        gt=0,
        description="How often the Ledger compares the node's transaction count for its signer with the "
        "journal, to notice a restarted Anvil that lost transactions and send them again.",
    )
    gas_headroom: float = Field(
        1.2,
        ge=1.0,
        le=3.0,
        description="Gas limit = estimate x this factor. Unused gas is not charged; the headroom only "
        "guards against nodes whose estimates run short.",
    )

    @property
    def signer_key_path(self) -> Path:
        """The signer key file actually used."""
        if self.signer_key_file is not None:
            return self.signer_key_file
        return self.data_dir / "ledger" / "signer.key"
