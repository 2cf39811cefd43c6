"""The Registry's view of the Ledger: a gRPC client of mlmesh.ledger.v1.LedgerService."""

from __future__ import annotations

from mlmesh.ledger.v1 import ledger_service_pb2 as ledger_pb
from mlmesh.ledger.v1 import ledger_service_pb2_grpc as ledger_grpc

from servers.common.peer import PeerClient
from servers.common.settings import TlsSettings
from servers.registry.domain.ports import (
    AccessLogEntry,
    Anchor,
    DatasetContractFields,
    ModelContractFields,
    TranslationContractFields,
)


def dataset_fields_from_proto(c: ledger_pb.DatasetContract) -> DatasetContractFields:
    return DatasetContractFields(
        contract_address=c.address,
        chain_id=c.chain_id,
        dataset_id=c.dataset_id,
        organization_id=c.organization_id,
        samples_dimension=c.samples_dimension,
        size_bytes=c.size_bytes,
        md5=c.md5,
        sha256=c.sha256,
        block_number=c.block_number,
    )


def model_fields_from_proto(c: ledger_pb.ModelContract) -> ModelContractFields:
    return ModelContractFields(
        contract_address=c.address,
        chain_id=c.chain_id,
        model_id=c.model_id,
        organization_id=c.organization_id,
        developer_id=c.developer_id,
        dataset_id=c.dataset_id,
        train_image_hash=c.train_image_hash,
        train_image_sha256=c.train_image_sha256,
        res_hash=c.res_hash,
        res_sha256=c.res_sha256,
        verified=c.verified,
        block_number=c.block_number,
    )


def translation_fields_from_proto(c: ledger_pb.TranslationContract) -> TranslationContractFields:
    return TranslationContractFields(
        contract_address=c.address, chain_id=c.chain_id, translation_id=c.translation_id, model_id=c.model_id,
        model_contract=c.model_contract, source_sha256=c.source_sha256, onnx_md5=c.onnx_md5,
        onnx_sha256=c.onnx_sha256, converter=c.converter, opset=c.opset, max_abs_diff=c.max_abs_diff,
        parity_passed=c.parity_passed, block_number=c.block_number,
    )


def access_entry_from_proto(e: ledger_pb.AccessEntry) -> AccessLogEntry:
    return AccessLogEntry(
        index=e.index, resource_kind=e.resource_kind, resource_id=e.resource_id, action=e.action,
        grantee=e.grantee, public=e.public, actor_organization_id=e.actor_organization_id,
        actor_subject_sha256=e.actor_subject_sha256, event_time_micros=e.event_time_micros,
    )


class LedgerClient(PeerClient):
    """Implements the domain's Ledger ports over gRPC."""

    def __init__(self, target: str, *, deploy_timeout: float = 120.0, read_timeout: float = 30.0,
                 tls: TlsSettings | None = None):
        super().__init__(target, "ledger", ledger_grpc.LedgerServiceStub, timeout=read_timeout, tls=tls)
        self.deploy_timeout = deploy_timeout

    async def deploy_dataset_contract(
        self, *, dataset_id: str, organization_id: str, samples_dimension: str, size_bytes: int, md5: str,
        sha256: str,
    ) -> Anchor:
        request = ledger_pb.DeployDatasetContractRequest(
            dataset_id=dataset_id, organization_id=organization_id, samples_dimension=samples_dimension,
            size_bytes=size_bytes, md5=md5, sha256=sha256,
        )
        response = await self.call(self._stub.DeployDatasetContract, request, timeout=self.deploy_timeout)
        return Anchor(contract_address=response.contract.address, tx_hash=response.tx_hash)

    async def get_dataset_contract(self, address: str) -> DatasetContractFields:
        request = ledger_pb.GetDatasetContractRequest(address=address)
        return dataset_fields_from_proto(await self.call(self._stub.GetDatasetContract, request))

    async def deploy_model_contract(
        self, *, model_id: str, organization_id: str, developer_id: str, dataset_id: str, train_image_hash: str,
        train_image_sha256: str,
    ) -> Anchor:
        request = ledger_pb.DeployModelContractRequest(
            model_id=model_id, organization_id=organization_id, developer_id=developer_id, dataset_id=dataset_id,
            train_image_hash=train_image_hash, train_image_sha256=train_image_sha256,
        )
        response = await self.call(self._stub.DeployModelContract, request, timeout=self.deploy_timeout)
        return Anchor(contract_address=response.contract.address, tx_hash=response.tx_hash)

    async def get_model_contract(self, address: str) -> ModelContractFields:
        request = ledger_pb.GetModelContractRequest(address=address)
        return model_fields_from_proto(await self.call(self._stub.GetModelContract, request))

    async def verify_model(self, address: str, *, res_hash: str, res_sha256: str) -> Anchor:
        request = ledger_pb.VerifyModelRequest(address=address, res_hash=res_hash, res_sha256=res_sha256)
        response = await self.call(self._stub.VerifyModel, request, timeout=self.deploy_timeout)
        return Anchor(contract_address=response.contract.address, tx_hash=response.tx_hash)

    async def get_translation_contract(self, address: str) -> TranslationContractFields:
        request = ledger_pb.GetTranslationContractRequest(address=address)
        return translation_fields_from_proto(await self.call(self._stub.GetTranslationContract, request))

    async def record_access(self, entry: AccessLogEntry) -> tuple[str, int]:
        request = ledger_pb.RecordAccessEventRequest(
            resource_kind=entry.resource_kind, resource_id=entry.resource_id, action=entry.action,
            grantee=entry.grantee, public=entry.public, actor_organization_id=entry.actor_organization_id,
            actor_subject_sha256=entry.actor_subject_sha256, event_time_micros=entry.event_time_micros,
        )
        response = await self.call(self._stub.RecordAccessEvent, request, timeout=self.deploy_timeout)
        return response.tx_hash, response.entry.index

    async def access_entries(self, resource_kind: str, resource_id: str) -> list[AccessLogEntry]:
        request = ledger_pb.ListAccessEntriesRequest(resource_kind=resource_kind, resource_id=resource_id)
        response = await self.call(self._stub.ListAccessEntries, request)
        return [access_entry_from_proto(e) for e in response.entries]
