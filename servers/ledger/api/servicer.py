"""The gRPC face of the Ledger: convert, delegate to the core, convert back. Domain errors
propagate; the server's interceptor maps them to status codes."""

from __future__ import annotations

import grpc
from mlmesh.ledger.v1 import ledger_service_pb2 as pb
from mlmesh.ledger.v1 import ledger_service_pb2_grpc as pb_grpc

from servers.ledger.api import converters as conv
from servers.ledger.domain.ledger import Ledger


class LedgerServicer(pb_grpc.LedgerServiceServicer):
    def __init__(self, ledger: Ledger):
        self._ledger = ledger

    async def DeployDatasetContract(
        self, request: pb.DeployDatasetContractRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeployDatasetContractResponse:
        done = await self._ledger.deploy_dataset(conv.dataset_spec_from_proto(request))
        return pb.DeployDatasetContractResponse(
            contract=conv.dataset_contract_to_proto(done.contract), tx_hash=done.tx_hash
        )

    async def DeployModelContract(
        self, request: pb.DeployModelContractRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeployModelContractResponse:
        done = await self._ledger.deploy_model(conv.model_spec_from_proto(request))
        return pb.DeployModelContractResponse(
            contract=conv.model_contract_to_proto(done.contract), tx_hash=done.tx_hash
        )

    async def GetDatasetContract(
        self, request: pb.GetDatasetContractRequest, context: grpc.aio.ServicerContext
    ) -> pb.DatasetContract:
        return conv.dataset_contract_to_proto(await self._ledger.get_dataset(request.address))

    async def GetModelContract(
        self, request: pb.GetModelContractRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelContract:
        return conv.model_contract_to_proto(await self._ledger.get_model(request.address))

    async def VerifyModel(
        self, request: pb.VerifyModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.VerifyModelResponse:
        address, result = conv.verify_request_from_proto(request)
        done = await self._ledger.verify_model(address, result)
        return pb.VerifyModelResponse(
            contract=conv.model_contract_to_proto(done.contract), tx_hash=done.tx_hash
        )

    async def DeployTranslationContract(
        self, request: pb.DeployTranslationContractRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeployTranslationContractResponse:
        done = await self._ledger.deploy_translation(conv.translation_spec_from_proto(request))
        return pb.DeployTranslationContractResponse(
            contract=conv.translation_contract_to_proto(done.contract), tx_hash=done.tx_hash
        )

    async def GetTranslationContract(
        self, request: pb.GetTranslationContractRequest, context: grpc.aio.ServicerContext
    ) -> pb.TranslationContract:
        return conv.translation_contract_to_proto(await self._ledger.get_translation(request.address))

    async def GetChainInfo(
        self, request: pb.GetChainInfoRequest, context: grpc.aio.ServicerContext
    ) -> pb.ChainInfo:
        return conv.chain_info_to_proto(await self._ledger.chain_info())

    async def RecordAccessEvent(
        self, request: pb.RecordAccessEventRequest, context: grpc.aio.ServicerContext
    ) -> pb.RecordAccessEventResponse:
        done = await self._ledger.record_access(conv.access_event_from_proto(request))
        return pb.RecordAccessEventResponse(entry=conv.access_entry_to_proto(done.contract), tx_hash=done.tx_hash)

    async def ListAccessEntries(
        self, request: pb.ListAccessEntriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAccessEntriesResponse:
        entries = await self._ledger.access_entries(request.resource_kind, request.resource_id)
        return pb.ListAccessEntriesResponse(entries=[conv.access_entry_to_proto(e) for e in entries])
