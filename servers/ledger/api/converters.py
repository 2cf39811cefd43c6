"""proto <-> domain for the Ledger. Pure functions in pairs; each pair has a round-trip test."""

from __future__ import annotations

from mlmesh.ledger.v1 import ledger_service_pb2 as pb

from servers.ledger.domain.records import (
    AccessEntry,
    AccessEventSpec,
    ChainInfo,
    DatasetContract,
    DatasetSpec,
    ModelContract,
    ModelResult,
    ModelSpec,
    TranslationContract,
    TranslationSpec,
)


def dataset_spec_from_proto(msg: pb.DeployDatasetContractRequest) -> DatasetSpec:
    return DatasetSpec(
        dataset_id=msg.dataset_id,
        organization_id=msg.organization_id,
        samples_dimension=msg.samples_dimension,
        size_bytes=msg.size_bytes,
        md5=msg.md5,
        sha256=msg.sha256,
    )


def dataset_spec_to_proto(spec: DatasetSpec) -> pb.DeployDatasetContractRequest:
    return pb.DeployDatasetContractRequest(
        dataset_id=spec.dataset_id,
        organization_id=spec.organization_id,
        samples_dimension=spec.samples_dimension,
        size_bytes=spec.size_bytes,
        md5=spec.md5,
        sha256=spec.sha256,
    )


def dataset_contract_to_proto(contract: DatasetContract) -> pb.DatasetContract:
    return pb.DatasetContract(
        address=contract.address,
        dataset_id=contract.dataset_id,
        organization_id=contract.organization_id,
        samples_dimension=contract.samples_dimension,
        size_bytes=contract.size_bytes,
        md5=contract.md5,
        sha256=contract.sha256,
        block_number=contract.block_number,
        chain_id=contract.chain_id,
    )


def dataset_contract_from_proto(msg: pb.DatasetContract) -> DatasetContract:
    return DatasetContract(
        address=msg.address,
        dataset_id=msg.dataset_id,
        organization_id=msg.organization_id,
        samples_dimension=msg.samples_dimension,
        size_bytes=msg.size_bytes,
        md5=msg.md5,
        sha256=msg.sha256,
        block_number=msg.block_number,
        chain_id=msg.chain_id,
    )


def model_spec_from_proto(msg: pb.DeployModelContractRequest) -> ModelSpec:
    return ModelSpec(
        model_id=msg.model_id,
        organization_id=msg.organization_id,
        developer_id=msg.developer_id,
        dataset_id=msg.dataset_id,
        train_image_hash=msg.train_image_hash,
        train_image_sha256=msg.train_image_sha256,
    )


def model_spec_to_proto(spec: ModelSpec) -> pb.DeployModelContractRequest:
    return pb.DeployModelContractRequest(
        model_id=spec.model_id,
        organization_id=spec.organization_id,
        developer_id=spec.developer_id,
        dataset_id=spec.dataset_id,
        train_image_hash=spec.train_image_hash,
        train_image_sha256=spec.train_image_sha256,
    )


def model_contract_to_proto(contract: ModelContract) -> pb.ModelContract:
    return pb.ModelContract(
        address=contract.address,
        model_id=contract.model_id,
        organization_id=contract.organization_id,
        developer_id=contract.developer_id,
        dataset_id=contract.dataset_id,
        train_image_hash=contract.train_image_hash,
        train_image_sha256=contract.train_image_sha256,
        res_hash=contract.res_hash,
        res_sha256=contract.res_sha256,
        verified=contract.verified,
        block_number=contract.block_number,
        chain_id=contract.chain_id,
    )


def model_contract_from_proto(msg: pb.ModelContract) -> ModelContract:
    return ModelContract(
        address=msg.address,
        model_id=msg.model_id,
        organization_id=msg.organization_id,
        developer_id=msg.developer_id,
        dataset_id=msg.dataset_id,
        train_image_hash=msg.train_image_hash,
        train_image_sha256=msg.train_image_sha256,
        res_hash=msg.res_hash,
        res_sha256=msg.res_sha256,
        verified=msg.verified,
        block_number=msg.block_number,
        chain_id=msg.chain_id,
    )


def verify_request_from_proto(msg: pb.VerifyModelRequest) -> tuple[str, ModelResult]:
    return msg.address, ModelResult(res_hash=msg.res_hash, res_sha256=msg.res_sha256)


def verify_request_to_proto(address: str, result: ModelResult) -> pb.VerifyModelRequest:
    return pb.VerifyModelRequest(address=address, res_hash=result.res_hash, res_sha256=result.res_sha256)


def translation_spec_from_proto(msg: pb.DeployTranslationContractRequest) -> TranslationSpec:
    return TranslationSpec(
        translation_id=msg.translation_id,
        model_id=msg.model_id,
        model_contract=msg.model_contract,
        source_sha256=msg.source_sha256,
        onnx_md5=msg.onnx_md5,
        onnx_sha256=msg.onnx_sha256,
        converter=msg.converter,
        opset=msg.opset,
        max_abs_diff=msg.max_abs_diff,
        max_rel_diff=msg.max_rel_diff,
        atol=msg.atol,
        rtol=msg.rtol,
        parity_passed=msg.parity_passed,
    )


def translation_spec_to_proto(spec: TranslationSpec) -> pb.DeployTranslationContractRequest:
    return pb.DeployTranslationContractRequest(
        translation_id=spec.translation_id,
        model_id=spec.model_id,
        model_contract=spec.model_contract,
        source_sha256=spec.source_sha256,
        onnx_md5=spec.onnx_md5,
        onnx_sha256=spec.onnx_sha256,
        converter=spec.converter,
        opset=spec.opset,
        max_abs_diff=spec.max_abs_diff,
        max_rel_diff=spec.max_rel_diff,
        atol=spec.atol,
        rtol=spec.rtol,
        parity_passed=spec.parity_passed,
    )


def translation_contract_to_proto(contract: TranslationContract) -> pb.TranslationContract:
    return pb.TranslationContract(
        address=contract.address,
        translation_id=contract.translation_id,
        model_id=contract.model_id,
        model_contract=contract.model_contract,
        source_sha256=contract.source_sha256,
        onnx_md5=contract.onnx_md5,
        onnx_sha256=contract.onnx_sha256,
        converter=contract.converter,
        opset=contract.opset,
        max_abs_diff=contract.max_abs_diff,
        max_rel_diff=contract.max_rel_diff,
        atol=contract.atol,
        rtol=contract.rtol,
        parity_passed=contract.parity_passed,
        block_number=contract.block_number,
        chain_id=contract.chain_id,
    )


def translation_contract_from_proto(msg: pb.TranslationContract) -> TranslationContract:
    return TranslationContract(
        address=msg.address,
        translation_id=msg.translation_id,
        model_id=msg.model_id,
        model_contract=msg.model_contract,
        source_sha256=msg.source_sha256,
        onnx_md5=msg.onnx_md5,
        onnx_sha256=msg.onnx_sha256,
        converter=msg.converter,
        opset=msg.opset,
        max_abs_diff=msg.max_abs_diff,
        max_rel_diff=msg.max_rel_diff,
        atol=msg.atol,
        rtol=msg.rtol,
        parity_passed=msg.parity_passed,
        block_number=msg.block_number,
        chain_id=msg.chain_id,
    )


def chain_info_to_proto(info: ChainInfo) -> pb.ChainInfo:
    return pb.ChainInfo(
        chain_id=info.chain_id,
        block_number=info.block_number,
        signer_address=info.signer_address,
        node_version=info.node_version,
    )


def chain_info_from_proto(msg: pb.ChainInfo) -> ChainInfo:
    return ChainInfo(
        chain_id=msg.chain_id,
        block_number=msg.block_number,
        signer_address=msg.signer_address,
        node_version=msg.node_version,
    )


def access_event_from_proto(msg: pb.RecordAccessEventRequest) -> AccessEventSpec:
    return AccessEventSpec(
        resource_kind=msg.resource_kind, resource_id=msg.resource_id, action=msg.action, grantee=msg.grantee,
        public=msg.public, actor_organization_id=msg.actor_organization_id,
        actor_subject_sha256=msg.actor_subject_sha256, event_time_micros=msg.event_time_micros,
    )


def access_event_to_proto(spec: AccessEventSpec) -> pb.RecordAccessEventRequest:
    return pb.RecordAccessEventRequest(
        resource_kind=spec.resource_kind, resource_id=spec.resource_id, action=spec.action, grantee=spec.grantee,
        public=spec.public, actor_organization_id=spec.actor_organization_id,
        actor_subject_sha256=spec.actor_subject_sha256, event_time_micros=spec.event_time_micros,
    )


def access_entry_to_proto(entry: AccessEntry) -> pb.AccessEntry:
    spec = entry.spec
    return pb.AccessEntry(
        index=entry.index, resource_kind=spec.resource_kind, resource_id=spec.resource_id, action=spec.action,
        grantee=spec.grantee, public=spec.public, actor_organization_id=spec.actor_organization_id,
        actor_subject_sha256=spec.actor_subject_sha256, event_time_micros=spec.event_time_micros,
        block_number=entry.block_number, contract_address=entry.contract_address, chain_id=entry.chain_id,
    )


def access_entry_from_proto(msg: pb.AccessEntry) -> AccessEntry:
    spec = AccessEventSpec(
        resource_kind=msg.resource_kind, resource_id=msg.resource_id, action=msg.action, grantee=msg.grantee,
        public=msg.public, actor_organization_id=msg.actor_organization_id,
        actor_subject_sha256=msg.actor_subject_sha256, event_time_micros=msg.event_time_micros,
    )
    return AccessEntry(index=msg.index, spec=spec, block_number=msg.block_number,
                       contract_address=msg.contract_address, chain_id=msg.chain_id)
