"""The Ledger's core: checks every request, then asks the chain. Transport-free: the gRPC
servicer (and any other front end) converts to these calls and back."""

from __future__ import annotations

import logging
from typing import Protocol

from servers.common.errors import FailedPrecondition
from servers.ledger.domain.models import (
    ChainInfo,
    DatasetContract,
    DatasetSpec,
    ModelContract,
    ModelResult,
    ModelSpec,
    Transacted,
)
from servers.ledger.domain.validation import (
    check_address,
    check_dataset_spec,
    check_model_result,
    check_model_spec,
)

log = logging.getLogger(__name__)


class ChainPort(Protocol):
    """What the Ledger needs from a chain. Addresses given to it are checksummed and valid.

    Errors: Unavailable (node unreachable or too slow), NotFound (no such contract of that
    kind), FailedPrecondition (the chain refused the transaction)."""

    async def deploy_dataset(self, spec: DatasetSpec) -> Transacted[DatasetContract]: ...

    async def deploy_model(self, spec: ModelSpec) -> Transacted[ModelContract]: ...

    async def get_dataset(self, address: str) -> DatasetContract: ...

    async def get_model(self, address: str) -> ModelContract: ...

    async def verify_model(self, address: str, result: ModelResult) -> Transacted[ModelContract]: ...

    async def chain_info(self) -> ChainInfo: ...


def already_verified(contract: ModelContract) -> FailedPrecondition:
    """The error of a second verify: the training result is write-once."""
    return FailedPrecondition(
        f"model contract {contract.address} is already verified with res_hash {contract.res_hash}; "
        "the training result is write-once",
        reason="MODEL_ALREADY_VERIFIED",
        metadata={
            "address": contract.address,
            "res_hash": contract.res_hash,
            "res_sha256": contract.res_sha256,
        },
    )


class Ledger:
    def __init__(self, chain: ChainPort):
        self._chain = chain

    async def deploy_dataset(self, spec: DatasetSpec) -> Transacted[DatasetContract]:
        check_dataset_spec(spec)
        done = await self._chain.deploy_dataset(spec)
        log.info(
            "deployed Dataset contract %s dataset_id=%s block=%d tx=%s",
            done.contract.address, spec.dataset_id, done.contract.block_number, done.tx_hash,
        )
        return done

    async def deploy_model(self, spec: ModelSpec) -> Transacted[ModelContract]:
        check_model_spec(spec)
        done = await self._chain.deploy_model(spec)
        log.info(
            "deployed Model contract %s model_id=%s dataset_id=%s block=%d tx=%s",
            done.contract.address, spec.model_id, spec.dataset_id, done.contract.block_number, done.tx_hash,
        )
        return done

    async def get_dataset(self, address: str) -> DatasetContract:
        return await self._chain.get_dataset(check_address(address))

    async def get_model(self, address: str) -> ModelContract:
        return await self._chain.get_model(check_address(address))

    async def verify_model(self, address: str, result: ModelResult) -> Transacted[ModelContract]:
        address = check_address(address)
        check_model_result(result)
        # Refuse before spending gas; the contract refuses again if another verify wins the race.
        current = await self._chain.get_model(address)
        if current.verified:
            raise already_verified(current)
        done = await self._chain.verify_model(address, result)
        log.info("verified Model contract %s res_hash=%s tx=%s", address, result.res_hash, done.tx_hash)
        return done

    async def chain_info(self) -> ChainInfo:
        return await self._chain.chain_info()
