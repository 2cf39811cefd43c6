"""The compiled contracts the Ledger deploys: `contracts/build/<Name>.json`, written by
`python -m servers.ledger.compile` and committed with the sources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
CONTRACTS_DIR = REPO_ROOT / "contracts"
BUILD_DIR = CONTRACTS_DIR / "build"

DATASET = "Dataset"
MODEL = "Model"
TRANSLATION = "Translation"
ACCESS_LOG = "AccessLog"
CONTRACT_NAMES = (DATASET, MODEL, TRANSLATION, ACCESS_LOG)


class ArtifactError(RuntimeError):
    """A compiled contract is missing or unreadable (a broken checkout, not a user error)."""


@dataclass(frozen=True)
class ContractArtifact:
    """ABI and bytecode of one compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    compiler_version: str


@cache
def load_artifact(name: str, build_dir: Path = BUILD_DIR) -> ContractArtifact:
    path = build_dir / f"{name}.json"
    try:
        data = json.loads(path.read_text())
        return ContractArtifact(
            name=data["contractName"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
            compiler_version=data["compiler"]["version"],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"cannot load the compiled {name} contract from {path} ({exc}); run `make contracts`"
        ) from exc
