"""The Ledger's core: checks every request, then asks the chain. Transport-free: the gRPC
servicer (and any other front end) converts to these calls and back."""

from __future__ import annotations

import logging
from typing import Protocol

from servers.common.errors import FailedPrecondition, NotFound
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
from servers.ledger.domain.validation import (
    check_access_event,
    check_access_resource,
    check_address,
    check_dataset_spec,
    check_model_result,
    check_model_spec,
    check_translation_spec,
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

    async def deploy_translation(self, spec: TranslationSpec) -> Transacted[TranslationContract]: ...

    async def get_translation(self, address: str) -> TranslationContract: ...

    async def chain_info(self) -> ChainInfo: ...

    async def record_access(self, spec: AccessEventSpec) -> Transacted[AccessEntry]: ...

    async def access_entries(self, resource_kind: str, resource_id: str) -> list[AccessEntry]: ...


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


def _source_refused(spec: TranslationSpec, message: str, reason: str, **metadata: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"model_contract {spec.model_contract}: {message}",
        reason=reason,
        metadata={"field": "model_contract", "model_contract": spec.model_contract, **metadata},
    )


def check_translation_source(spec: TranslationSpec, model: ModelContract) -> None:
    """Refuse a translation whose source is not the verified model it claims to be."""
    if not model.verified:
        raise _source_refused(
            spec,
            f"the model {model.model_id} is not verified yet (no training result on chain); "
            "verify it before recording a translation of it",
            "MODEL_NOT_VERIFIED",
        )
    if model.res_sha256 != spec.source_sha256:
        raise _source_refused(
            spec,
            f"source_sha256 {spec.source_sha256} does not match the model's res_sha256 {model.res_sha256}; "
            "the translated bytes are not the verified training result",
            "SOURCE_SHA256_MISMATCH",
            source_sha256=spec.source_sha256,
            res_sha256=model.res_sha256,
        )
    if model.model_id != spec.model_id:
        raise _source_refused(
            spec,
            f"model_id {spec.model_id!r} does not match the Model contract's model_id {model.model_id!r}",
            "MODEL_ID_MISMATCH",
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

    async def deploy_translation(self, spec: TranslationSpec) -> Transacted[TranslationContract]:
        spec = check_translation_spec(spec)
        # Refuse before spending gas; the contract's constructor checks the same again.
        try:
            model = await self._chain.get_model(spec.model_contract)
        except NotFound as exc:
            # The address is an argument pointing at the wrong thing, not the resource asked for.
            reason = "MODEL_CONTRACT_NOT_FOUND" if exc.reason == "CONTRACT_NOT_FOUND" else "NOT_A_MODEL_CONTRACT"
            raise FailedPrecondition(
                f"model_contract: {exc.message}; a translation needs a verified mlmesh Model contract",
                reason=reason,
                metadata={"field": "model_contract", "model_contract": spec.model_contract},
            ) from exc
        check_translation_source(spec, model)
        done = await self._chain.deploy_translation(spec)
        log.info(
            "deployed Translation contract %s translation_id=%s model_contract=%s block=%d tx=%s",
            done.contract.address, spec.translation_id, spec.model_contract, done.contract.block_number,
            done.tx_hash,
        )
        return done

    async def get_translation(self, address: str) -> TranslationContract:
        return await self._chain.get_translation(check_address(address))

    async def chain_info(self) -> ChainInfo:
        return await self._chain.chain_info()

    async def record_access(self, spec: AccessEventSpec) -> Transacted[AccessEntry]:
        check_access_event(spec)
        done = await self._chain.record_access(spec)
        log.info(
            "recorded access event %s %s/%s grantee=%s index=%d tx=%s",
            spec.action, spec.resource_kind, spec.resource_id, spec.grantee, done.contract.index, done.tx_hash,
        )
        return done

    async def access_entries(self, resource_kind: str, resource_id: str) -> list[AccessEntry]:
        check_access_resource(resource_kind, resource_id)
        return await self._chain.access_entries(resource_kind, resource_id)
