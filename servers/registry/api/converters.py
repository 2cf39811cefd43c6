"""proto <-> domain for the Registry. Pure functions, in pairs where both ways exist."""

from __future__ import annotations

from mlmesh.registry.v1 import access_pb2
from mlmesh.registry.v1 import dataset_pb2 as pb
from mlmesh.registry.v1 import model_pb2
from mlmesh.registry.v1 import registry_service_pb2 as svc

from servers.common.timestamps import timestamp_from_proto, timestamp_to_proto
from servers.registry.domain.datasets import Provenance, UploadMetadata
from servers.registry.domain.records import (
    SHARE,
    UNSHARE,
    AccessAnchorRecord,
    AccessEventRecord,
    AccessPolicyRecord,
    DatasetRecord,
    GrantRecord,
    ModelRecord,
    UsageRecord,
)
from servers.registry.domain.models import CreateModel, ModelProvenance, ModelVersion, TrainingResult
from servers.registry.domain.ports import DatasetContractFields, ModelContractFields


def dataset_to_proto(r: DatasetRecord) -> pb.Dataset:
    return pb.Dataset(
        dataset_id=r.dataset_id,
        display_name=r.display_name,
        organization_id=r.organization_id,
        samples_dimension=r.samples_dimension,
        content_type=r.content_type,
        filename=r.filename,
        size_bytes=r.size_bytes,
        md5=r.md5,
        sha256=r.sha256,
        contract_address=r.contract_address,
        contract_tx_hash=r.contract_tx_hash,
        create_time=timestamp_to_proto(r.create_time),
    )


def dataset_from_proto(p: pb.Dataset, object_key: str | None = None) -> DatasetRecord:
    """The inverse of dataset_to_proto; the object key is not part of the API."""
    return DatasetRecord(
        dataset_id=p.dataset_id,
        display_name=p.display_name,
        organization_id=p.organization_id,
        samples_dimension=p.samples_dimension,
        content_type=p.content_type,
        filename=p.filename,
        size_bytes=p.size_bytes,
        md5=p.md5,
        sha256=p.sha256,
        object_key=object_key if object_key is not None else f"datasets/{p.dataset_id}",
        contract_address=p.contract_address,
        contract_tx_hash=p.contract_tx_hash,
        create_time=timestamp_from_proto(p.create_time),
    )


def upload_metadata_from_proto(first: svc.UploadDatasetRequest) -> UploadMetadata:
    return UploadMetadata(
        organization_id=first.organization_id,
        display_name=first.display_name,
        samples_dimension=first.samples_dimension,
        content_type=first.content_type or first.chunk.content_type,
        filename=first.filename,
        expected_md5=first.expected_md5,
        expected_sha256=first.expected_sha256,
    )


def upload_metadata_to_proto(m: UploadMetadata) -> svc.UploadDatasetRequest:
    return svc.UploadDatasetRequest(
        organization_id=m.organization_id,
        display_name=m.display_name,
        samples_dimension=m.samples_dimension,
        content_type=m.content_type,
        filename=m.filename,
        expected_md5=m.expected_md5,
        expected_sha256=m.expected_sha256,
    )


def on_chain_to_proto(c: DatasetContractFields) -> pb.OnChainDataset:
    return pb.OnChainDataset(
        contract_address=c.contract_address,
        chain_id=c.chain_id,
        dataset_id=c.dataset_id,
        organization_id=c.organization_id,
        samples_dimension=c.samples_dimension,
        size_bytes=c.size_bytes,
        md5=c.md5,
        sha256=c.sha256,
        block_number=c.block_number,
    )


def on_chain_from_proto(p: pb.OnChainDataset) -> DatasetContractFields:
    return DatasetContractFields(
        contract_address=p.contract_address,
        chain_id=p.chain_id,
        dataset_id=p.dataset_id,
        organization_id=p.organization_id,
        samples_dimension=p.samples_dimension,
        size_bytes=p.size_bytes,
        md5=p.md5,
        sha256=p.sha256,
        block_number=p.block_number,
    )


def provenance_to_proto(p: Provenance) -> pb.DatasetProvenance:
    return pb.DatasetProvenance(
        dataset=dataset_to_proto(p.record),
        on_chain=on_chain_to_proto(p.on_chain) if p.on_chain else None,
        stored_md5=p.stored_md5,
        stored_sha256=p.stored_sha256,
        stored_size_bytes=p.stored_size_bytes,
        checks=[pb.ProvenanceCheck(name=c.name, ok=c.ok, detail=c.detail) for c in p.checks],
        consistent=p.consistent,
    )


def has_metadata(message: svc.UploadDatasetRequest) -> bool:
    """True if a message sets any metadata field (allowed only in the first message)."""
    return any(
        (message.organization_id, message.display_name, message.samples_dimension, message.content_type,
         message.filename, message.expected_md5, message.expected_sha256)
    )


# -- models ---------------------------------------------------------------------------------------

def model_state_to_proto(state: str) -> int:
    return model_pb2.Model.State.Value(f"STATE_{state}")


def model_state_from_proto(value: int) -> str:
    return model_pb2.Model.State.Name(value).removeprefix("STATE_")


def model_to_proto(r: ModelRecord) -> model_pb2.Model:
    if r.source_kind == "recipe":
        source = model_pb2.TrainingSource(recipe=model_pb2.RecipeArchive(
            filename=r.recipe_filename, size_bytes=r.recipe_size_bytes, md5=r.recipe_md5, sha256=r.recipe_sha256))
    elif r.source_kind == "online":
        source = model_pb2.TrainingSource(online=model_pb2.OnlineLearning(
            learner_id=r.learner_id, observations=r.observations, observations_sha256=r.observations_sha256,
            validation_loss=r.validation_loss, record=model_pb2.RecipeArchive(
                filename=r.recipe_filename, size_bytes=r.recipe_size_bytes, md5=r.recipe_md5,
                sha256=r.recipe_sha256)))
    else:
        source = model_pb2.TrainingSource(image=model_pb2.ContainerImage(reference=r.image_reference,
                                                                         digest=r.image_digest))
    return model_pb2.Model(
        model_id=r.model_id, display_name=r.display_name, organization_id=r.organization_id,
        developer_id=r.developer_id, dataset_id=r.dataset_id, training_source=source,
        state=model_state_to_proto(r.state), failure_reason=r.failure_reason, training_job_id=r.training_job_id,
        framework=r.framework, size_bytes=r.size_bytes, res_md5=r.res_md5, res_sha256=r.res_sha256,
        contract_address=r.contract_address, contract_tx_hash=r.contract_tx_hash, verify_tx_hash=r.verify_tx_hash,
        create_time=timestamp_to_proto(r.create_time), update_time=timestamp_to_proto(r.update_time),
        input_signature=r.input_signature, parent_model_id=r.parent_model_id, version=r.version,
    )


def model_version_from_proto(first: svc.CreateModelVersionRequest) -> ModelVersion:
    return ModelVersion(
        organization_id=first.organization_id, developer_id=first.developer_id, display_name=first.display_name,
        dataset_id=first.dataset_id, parent_model_id=first.parent_model_id, version=first.version,
        framework=first.framework, input_signature=first.input_signature, learner_id=first.learner_id,
        observations=first.observations, observations_sha256=first.observations_sha256,
        validation_loss=first.validation_loss, learning_record=first.learning_record)


def create_model_from_proto(first: svc.CreateModelRequest) -> CreateModel:
    return CreateModel(
        organization_id=first.organization_id, developer_id=first.developer_id, dataset_id=first.dataset_id,
        display_name=first.display_name, recipe_filename=first.recipe_filename,
        expected_recipe_sha256=first.expected_recipe_sha256, image_reference=first.image_reference,
        image_digest=first.image_digest, time_limit_seconds=first.time_limit_seconds,
        memory_limit_bytes=first.memory_limit_bytes,
    )


def create_model_to_proto(c: CreateModel) -> svc.CreateModelRequest:
    return svc.CreateModelRequest(
        organization_id=c.organization_id, developer_id=c.developer_id, dataset_id=c.dataset_id,
        display_name=c.display_name, recipe_filename=c.recipe_filename,
        expected_recipe_sha256=c.expected_recipe_sha256, image_reference=c.image_reference,
        image_digest=c.image_digest, time_limit_seconds=c.time_limit_seconds,
        memory_limit_bytes=c.memory_limit_bytes,
    )


def training_result_from_proto(first: svc.SubmitTrainingResultRequest) -> TrainingResult:
    return TrainingResult(model_id=first.model_id, training_job_id=first.training_job_id,
                          framework=first.framework, input_signature=first.input_signature)


def training_result_to_proto(t: TrainingResult) -> svc.SubmitTrainingResultRequest:
    return svc.SubmitTrainingResultRequest(model_id=t.model_id, training_job_id=t.training_job_id,
                                           framework=t.framework, input_signature=t.input_signature)


def on_chain_model_to_proto(c: ModelContractFields) -> model_pb2.OnChainModel:
    return model_pb2.OnChainModel(
        contract_address=c.contract_address, chain_id=c.chain_id, model_id=c.model_id,
        organization_id=c.organization_id, developer_id=c.developer_id, dataset_id=c.dataset_id,
        train_image_hash=c.train_image_hash, train_image_sha256=c.train_image_sha256, res_hash=c.res_hash,
        res_sha256=c.res_sha256, verified=c.verified, block_number=c.block_number,
    )


def on_chain_model_from_proto(p: model_pb2.OnChainModel) -> ModelContractFields:
    return ModelContractFields(
        contract_address=p.contract_address, chain_id=p.chain_id, model_id=p.model_id,
        organization_id=p.organization_id, developer_id=p.developer_id, dataset_id=p.dataset_id,
        train_image_hash=p.train_image_hash, train_image_sha256=p.train_image_sha256, res_hash=p.res_hash,
        res_sha256=p.res_sha256, verified=p.verified, block_number=p.block_number,
    )


def model_provenance_to_proto(p: ModelProvenance) -> model_pb2.ModelProvenance:
    return model_pb2.ModelProvenance(
        model=model_to_proto(p.record), on_chain=on_chain_model_to_proto(p.on_chain) if p.on_chain else None, stored_md5=p.stored_md5,
        stored_sha256=p.stored_sha256,
        checks=[pb.ProvenanceCheck(name=c.name, ok=c.ok, detail=c.detail) for c in p.checks],
        consistent=p.consistent,
    )


def has_model_metadata(message: svc.CreateModelRequest) -> bool:
    """True if a message sets any metadata field (allowed only in the first message)."""
    return any((message.organization_id, message.developer_id, message.dataset_id, message.display_name,
                message.recipe_filename, message.expected_recipe_sha256, message.image_reference,
                message.image_digest, message.time_limit_seconds, message.memory_limit_bytes))


# -- sharing --------------------------------------------------------------------------------------

_PUBLIC = "*"
_ACTIONS = {SHARE: access_pb2.AccessEvent.ACTION_SHARE, UNSHARE: access_pb2.AccessEvent.ACTION_UNSHARE}
_PLURAL = {"dataset": "datasets", "model": "models"}


def grant_to_proto(g: GrantRecord) -> access_pb2.Grant:
    return access_pb2.Grant(organization_id=g.grantee, grant_time=timestamp_to_proto(g.grant_time),
                            granted_by=g.granted_by)


def grant_from_proto(p: access_pb2.Grant) -> GrantRecord:
    return GrantRecord(grantee=p.organization_id, granted_by=p.granted_by, grant_time=timestamp_from_proto(p.grant_time))


def access_event_to_proto(e: AccessEventRecord) -> access_pb2.AccessEvent:
    public = e.grantee == _PUBLIC
    return access_pb2.AccessEvent(
        action=_ACTIONS[e.action], organization_id="" if public else e.grantee, public=public,
        actor=e.actor_subject, event_time=timestamp_to_proto(e.event_time),
        actor_organization_id=e.actor_organization_id, changed=e.changed,
        anchor=access_anchor_to_proto(e.anchor) if e.anchor else None)


_CHECKS = {"CONSISTENT": access_pb2.AccessAnchor.CHECK_CONSISTENT,
           "INCONSISTENT": access_pb2.AccessAnchor.CHECK_INCONSISTENT,
           "UNAVAILABLE": access_pb2.AccessAnchor.CHECK_UNAVAILABLE}


def access_anchor_to_proto(a: AccessAnchorRecord) -> access_pb2.AccessAnchor:
    return access_pb2.AccessAnchor(tx_hash=a.tx_hash, index=a.index,
                                   check=_CHECKS.get(a.check, access_pb2.AccessAnchor.CHECK_UNSPECIFIED),
                                   detail=a.detail)


def access_anchor_from_proto(p: access_pb2.AccessAnchor) -> AccessAnchorRecord:
    check = {v: k for k, v in _CHECKS.items()}.get(p.check, "")
    return AccessAnchorRecord(tx_hash=p.tx_hash, index=p.index, check=check, detail=p.detail)


def access_event_from_proto(p: access_pb2.AccessEvent) -> AccessEventRecord:
    action = {v: k for k, v in _ACTIONS.items()}.get(p.action)
    if action is None:
        raise ValueError(f"access event action {p.action} is not SHARE or UNSHARE")
    return AccessEventRecord(
        action=action, grantee=_PUBLIC if p.public else p.organization_id,
        actor_organization_id=p.actor_organization_id, actor_subject=p.actor,
        event_time=timestamp_from_proto(p.event_time), changed=p.changed,
        anchor=access_anchor_from_proto(p.anchor) if p.HasField("anchor") else None)


def access_policy_to_proto(r: AccessPolicyRecord) -> access_pb2.AccessPolicy:
    return access_pb2.AccessPolicy(
        resource=f"{_PLURAL[r.kind]}/{r.resource_id}", owner_organization_id=r.owner_organization_id,
        public=r.public, grants=[grant_to_proto(g) for g in r.named_grants],
        history=[access_event_to_proto(e) for e in r.history])


def access_policy_from_proto(p: access_pb2.AccessPolicy, public_grant: GrantRecord | None = None
                             ) -> AccessPolicyRecord:
    """The inverse of access_policy_to_proto. The public grant's time and author are not part of the
    API (only `public` is): pass them as `public_grant` to restore them."""
    plural, _, resource_id = p.resource.partition("/")
    kind = {v: k for k, v in _PLURAL.items()}.get(plural)
    if kind is None or not resource_id:
        raise ValueError(f"resource {p.resource!r} is not datasets/<id> or models/<id>")
    grants = [grant_from_proto(g) for g in p.grants]
    if p.public:
        if public_grant is None or public_grant.grantee != _PUBLIC:
            raise ValueError("a public policy needs its public grant (grantee '*') to become a record")
        grants.append(public_grant)
        grants.sort(key=lambda g: (g.grant_time, g.grantee))
    return AccessPolicyRecord(kind=kind, resource_id=resource_id, owner_organization_id=p.owner_organization_id,
                              grants=grants, history=[access_event_from_proto(e) for e in p.history])


def usage_to_proto(u: UsageRecord) -> access_pb2.DatasetUsage:
    return access_pb2.DatasetUsage(model_id=u.model_id, organization_id=u.organization_id,
                                   create_time=timestamp_to_proto(u.create_time))


def usage_from_proto(p: access_pb2.DatasetUsage) -> UsageRecord:
    return UsageRecord(model_id=p.model_id, organization_id=p.organization_id,
                       create_time=timestamp_from_proto(p.create_time))
