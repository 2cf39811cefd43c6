"""The Translator's view of the Ledger: DeployTranslationContract and GetTranslationContract."""

from __future__ import annotations

from mlmesh.ledger.v1 import ledger_service_pb2 as ledger_pb
from mlmesh.ledger.v1 import ledger_service_pb2_grpc as ledger_grpc

from servers.common.peer import PeerClient
from servers.common.settings import TlsSettings
from servers.translator.domain.ports import ContractFields, ContractRequest


def contract_request_to_proto(r: ContractRequest) -> ledger_pb.DeployTranslationContractRequest:
    return ledger_pb.DeployTranslationContractRequest(
        translation_id=r.translation_id, model_id=r.model_id, model_contract=r.model_contract,
        source_sha256=r.source_sha256, onnx_md5=r.onnx_md5, onnx_sha256=r.onnx_sha256, converter=r.converter,
        opset=r.opset, max_abs_diff=r.max_abs_diff, max_rel_diff=r.max_rel_diff, atol=r.atol, rtol=r.rtol,
        parity_passed=r.parity_passed,
    )


def contract_fields_from_proto(c: ledger_pb.TranslationContract) -> ContractFields:
    return ContractFields(address=c.address, translation_id=c.translation_id, model_id=c.model_id,
                          onnx_md5=c.onnx_md5, onnx_sha256=c.onnx_sha256, parity_passed=c.parity_passed)


class LedgerClient(PeerClient):
    """Implements `domain.ports.Ledger` over gRPC."""

    def __init__(self, target: str, *, deploy_timeout: float = 120.0, read_timeout: float = 30.0,
                 tls: TlsSettings | None = None):
        super().__init__(target, "ledger", ledger_grpc.LedgerServiceStub, timeout=read_timeout, tls=tls)
        self.deploy_timeout = deploy_timeout

    async def deploy_translation_contract(self, request: ContractRequest) -> tuple[str, str]:
        response = await self.call(self._stub.DeployTranslationContract, contract_request_to_proto(request),
                                   timeout=self.deploy_timeout)
        return response.contract.address, response.tx_hash

    async def get_translation_contract(self, address: str) -> ContractFields:
        contract = await self.call(self._stub.GetTranslationContract,
                                   ledger_pb.GetTranslationContractRequest(address=address))
        return contract_fields_from_proto(contract)
