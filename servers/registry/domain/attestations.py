"""A model's provenance as signed in-toto attestations (ExportModelAttestations). No grpc, no
generated code, no crypto library: the signature comes from the `Signer` port.

One in-toto Statement v1 (https://in-toto.io/Statement/v1) per artifact of the model's lineage that
the caller may read — the trained model, each ONNX translation, each version a learner saved —
whose subject is the artifact by SHA-256 (and MD5, the seed's hash), and whose predicate is SLSA
Provenance v1 (https://slsa.dev/provenance/v1):

* buildDefinition: a buildType per kind of build (training, translation, online learning), the
  external parameters (the recipe or image, limits, opset, the learner), and the inputs as
  resolvedDependencies (the dataset, the recipe archive, the source model, the learning record),
  each by digest and with its ledger contract in `annotations`;
* runDetails: the builder (Trainer, Translator or Learner, with the mesh's version), the job id and
  its start and end, and the ledger anchor as a byproduct (`eip155:<chain id>:<contract address>`,
  the transactions, and which contract function returns the anchored hashes).

Each Statement is wrapped in a DSSE envelope (https://github.com/secure-systems-lab/dsse):
signature over PAE("application/vnd.in-toto+json", statement bytes) with the mesh's key.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Protocol

from servers.common import errors
from servers.registry.domain.lineage import (
    DATASET,
    IMAGE,
    DATA_COMMITMENT,
    FEDERATED_JOB,
    MODEL,
    OPTIMIZER_AGENT,
    RECIPE,
    REPRODUCTION,
    TRAINING_JOB,
    TRANSLATION,
    VERSION,
    Lineage,
    LineageCore,
    LineageNode,
)
from servers.registry.domain.records import TRAINED

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
# Ours (docs/provenance.md, "The reproduction's attestation"): a model was retrained from its pinned
# recipe and dataset, and this is how the result compared with the original.
REPRODUCTION_PREDICATE = "https://mlmesh.dev/attestations/reproduction/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPES = {
    MODEL: "https://mlmesh.dev/buildtypes/training/v1",
    TRANSLATION: "https://mlmesh.dev/buildtypes/onnx-translation/v1",
    VERSION: "https://mlmesh.dev/buildtypes/online-learning/v1",
}
BUILDERS = {MODEL: "trainer", TRANSLATION: "translator", VERSION: "learner"}
# Models stored by the Federation and the Optimizer are versions whose parent node is their job.
PRODUCED = {FEDERATED_JOB: ("https://mlmesh.dev/buildtypes/federated-learning/v1", "federation"),
            OPTIMIZER_AGENT: ("https://mlmesh.dev/buildtypes/reinforcement-learning/v1", "optimizer")}
# What a third party calls on the anchoring contract to read the hashes back (contracts/*.sol).
ANCHOR_FUNCTIONS = {DATASET: "get_dataset_params()", MODEL: "get_model_params()",
                    VERSION: "get_model_params()", RECIPE: "get_model_params()",
                    TRANSLATION: "get_translation_params()",
                    # their records are anchored as the produced model's train_image_sha256
                    FEDERATED_JOB: "get_model_params()", OPTIMIZER_AGENT: "get_model_params()"}


class Signer(Protocol):
    """The mesh's attestation key."""

    key_id: str
    public_key_pem: str
    scheme: str  # "ecdsa-sha2-nistp256"

    def sign(self, data: bytes) -> bytes:
        """The signature of `data` (for ECDSA: DER-encoded, over SHA-256 of `data`)."""
        ...


class ModelSigner(Protocol):
    """OpenSSF model_signing signatures (adapters/model_signer.py: model_signing in its own process)."""

    media_type: str

    async def sign(self, name: str, sha256: str) -> str:
        """The signature file (a Sigstore bundle, JSON) of a one-file model with this SHA-256."""
        ...


@dataclass(frozen=True)
class SignedModel:
    model_id: str
    sha256: str
    bundle: str
    media_type: str


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def envelope(statement: dict, signer: Signer) -> str:
    """The Statement in a signed DSSE envelope, as one line of JSON."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    signature = signer.sign(pae(PAYLOAD_TYPE, payload))
    return json.dumps({
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": signer.key_id, "sig": base64.b64encode(signature).decode()}],
    }, separators=(",", ":"))


def _digest(node: LineageNode) -> dict[str, str]:
    return {k: v for k, v in (("sha256", node.sha256), ("md5", node.md5)) if v}


def _anchor(node: LineageNode, chain_id: int) -> dict:
    """Where the ledger anchors `node`: chain, contract, transaction, and the function to call."""
    anchor = {"chainId": chain_id, "contractAddress": node.contract_address, "transaction": node.tx_hash,
              "function": ANCHOR_FUNCTIONS.get(node.kind, "")}
    if chain_id and node.contract_address:
        anchor["uri"] = f"eip155:{chain_id}:{node.contract_address}"
    return anchor


def _dependency(node: LineageNode, chain_id: int, role: str) -> dict:
    uris = {DATASET: "datasets", MODEL: "models", VERSION: "models", TRANSLATION: "translations"}
    if node.kind in (RECIPE, IMAGE):
        uri = (f"oci://{node.display_name}" if node.kind == IMAGE
               else f"mlmesh://models/{node.resource_id}/recipe")
    else:
        uri = f"mlmesh://{uris[node.kind]}/{node.resource_id}"
    dep = {"uri": uri, "digest": _digest(node), "name": node.display_name,
           "annotations": {"role": role, "ledger": _anchor(node, chain_id), "checkStatus": node.status}}
    if not dep["digest"]:  # an unpinned image: nothing but its reference to name it by
        dep.pop("digest")
    return dep


def _byproduct(node: LineageNode, chain_id: int) -> dict:
    return {"name": "ledger-anchor", "uri": _anchor(node, chain_id).get("uri", ""),
            "annotations": _anchor(node, chain_id)}


@dataclass(frozen=True)
class Exported:
    envelopes: list[str]
    key_id: str
    public_key_pem: str
    scheme: str


class AttestationCore:
    """ExportModelAttestations: the lineage (as the caller may see it) as signed Statements."""

    def __init__(self, lineage: LineageCore, signer: Signer, *, mesh_version: str,
                 model_signer: ModelSigner | None = None):
        self.lineage, self.signer, self.mesh_version = lineage, signer, mesh_version
        self.model_signer = model_signer

    def signing_key(self) -> tuple[str, str, str]:
        return self.signer.key_id, self.signer.public_key_pem, self.signer.scheme

    async def export(self, model_id: str, *, caller_org: str | None) -> Exported:
        lineage = await self.lineage.lineage(model_id, caller_org=caller_org)
        envelopes = [envelope(statement, self.signer) for statement in statements(lineage, self.mesh_version)]
        return Exported(envelopes, self.signer.key_id, self.signer.public_key_pem, self.signer.scheme)

    async def model_signature(self, model_id: str, *, caller_org: str | None) -> SignedModel:
        """A model_signing signature of the model's artifact, made from the SHA-256 its ledger contract
        anchors (checked now: a database/chain disagreement is refused, never signed)."""
        model = await self.lineage.models.get(model_id, caller_org=caller_org)  # NOT_FOUND for a stranger
        if model.state != TRAINED or not model.res_sha256:
            raise errors.FailedPrecondition(f"model {model.model_id} is {model.state}: only a trained model's "
                                            "artifact can be signed", reason="MODEL_NOT_TRAINED")
        if self.model_signer is None:
            raise errors.FailedPrecondition("this Registry has no model signing configured",
                                            reason="MODEL_SIGNING_UNAVAILABLE")
        chain = await self.lineage.ledger.get_model_contract(model.contract_address)
        if not chain.verified or chain.res_sha256 != model.res_sha256:
            raise errors.FailedPrecondition(
                f"model {model.model_id}'s artifact hash does not match its ledger contract "
                f"(database {model.res_sha256}, chain {chain.res_sha256 or 'not verified'}): not signing it",
                reason="LEDGER_MISMATCH", metadata={"model_id": model.model_id})
        bundle = await self.model_signer.sign(model.display_name or model.model_id, model.res_sha256)
        return SignedModel(model.model_id, model.res_sha256, bundle, self.model_signer.media_type)


def _trained_inputs(lineage: Lineage, model: LineageNode) -> tuple[LineageNode | None, ...]:
    """(training job, recipe or image, dataset) above a trained model, each None if absent."""
    def parent(node: LineageNode | None) -> LineageNode | None:
        return lineage.nodes[node.parent] if node is not None and node.parent is not None else None

    job = parent(model)
    if job is None or job.kind != TRAINING_JOB:
        return None, None, None
    source = parent(job)
    return job, source, parent(source)


def reproduction_statement(lineage: Lineage, node: LineageNode, mesh_version: str) -> dict | None:
    """The Statement of a reproduction: its subject is the original model (the artifact a user holds
    and the ledger anchors), the predicate the verdict, the reproduced artifact's digest, and the
    recipe and dataset the reproduction ran."""
    model = lineage.nodes[node.parent] if node.parent is not None else None
    a = node.attributes
    if model is None or model.kind != MODEL or not a.get("original_sha256"):
        return None
    _job, source, dataset = _trained_inputs(lineage, model)
    original = {k: v for k, v in (("sha256", a["original_sha256"]), ("md5", a.get("original_md5", ""))) if v}
    try:
        top1 = float(a["top1_agreement"]) if "top1_agreement" in a else None
        comparison = {"maxAbsDiff": float(a.get("max_abs_diff", "nan")), "comparedSamples": int(a.get("compared_samples", 0)),
                      "method": a.get("method", "")}
    except ValueError:
        return None
    if top1 is not None:
        comparison["top1Agreement"] = top1
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model.display_name or model.resource_id, "digest": original,
                     "annotations": {"mlmesh.kind": "model", "mlmesh.id": model.resource_id,
                                     "mlmesh.organization": model.organization_id,
                                     "mlmesh.reproduction": node.resource_id}}],
        "predicateType": REPRODUCTION_PREDICATE,
        "predicate": {
            "verdict": a.get("verdict", ""),
            "original": {"modelId": model.resource_id, "digest": original, "ledger": _anchor(model, lineage.chain_id)},
            "reproduced": {"digest": {"sha256": node.sha256}, "jobId": node.resource_id,
                           "startedOn": a.get("start_time", ""), "finishedOn": a.get("end_time", "")},
            "comparison": comparison,
            "recipe": (_dependency(source, lineage.chain_id, "recipe" if source.kind == RECIPE else "image")
                       if source is not None and source.visible else None),
            "datasets": ([_dependency(dataset, lineage.chain_id, "dataset")]
                         if dataset is not None and dataset.visible else []),
            "reproducer": {"id": "https://mlmesh.dev/builders/trainer",
                           "version": {k: v for k, v in (("mlmesh", mesh_version),
                                                         ("executor", a.get("executor", ""))) if v}},
            "requestedBy": node.organization_id,
            "checkStatus": node.status,
        },
    }
    if statement["predicate"]["recipe"] is None:
        del statement["predicate"]["recipe"]
    return statement


def _produced_inputs(lineage: Lineage, producer: LineageNode) -> tuple[list[dict], dict, dict]:
    """(resolvedDependencies, externalParameters, metadata) of a model a federated job or an optimizer
    agent produced: the Registry datasets it used, its record (anchored as the model's recipe hash),
    and each federated client's data commitment — named as a commitment, not as a dataset."""
    nodes, chain_id = lineage.nodes, lineage.chain_id
    deps: list[dict] = []
    above = nodes[producer.parent] if producer.parent is not None else None
    if above is not None and above.visible and above.kind == DATASET:
        deps.append(_dependency(above, chain_id, "dataset"))
    a = producer.attributes
    if producer.kind == FEDERATED_JOB:
        record, uri = "federated job record", f"mlmesh://federatedJobs/{producer.resource_id}"
        external = {"federatedJobId": producer.resource_id, "framework": a.get("framework", ""),
                    "frameworkVersion": a.get("framework_version", ""), "mode": a.get("mode", ""),
                    "parameters": a.get("parameters", ""),
                    "privacy": {k.removeprefix("privacy."): v for k, v in a.items() if k.startswith("privacy.")}}
    else:
        record, uri = "optimizer agent record", f"mlmesh://agents/{producer.resource_id}"
        external = {"agentId": producer.resource_id, "algorithm": a.get("algorithm", ""),
                    "library": a.get("library", ""), "hyperparameters": a.get("hyperparameters", ""),
                    "seed": a.get("seed", ""), "totalTimesteps": a.get("total_timesteps", ""),
                    "environment": a.get("environment", ""), "simbenchCode": a.get("simbench_code", "")}
    deps.append({"uri": uri, "name": record, "digest": _digest(producer),
                 "annotations": {"role": record, "ledger": _anchor(producer, chain_id),
                                 "checkStatus": producer.status}})
    for child in (n for n in nodes if n.parent is not None and nodes[n.parent] is producer):
        if child.kind == DATA_COMMITMENT:
            deps.append({"uri": f"mlmesh://federatedJobs/{producer.resource_id}/commitments/{child.resource_id}",
                         "name": child.display_name, "digest": {"sha256": child.sha256},
                         "annotations": {"role": "data commitment", "clientId": child.resource_id,
                                         "sampleCount": child.attributes.get("sample_count", ""),
                                         "note": child.attributes.get("commitment", ""),
                                         "checkStatus": child.status}})
        elif child.kind == DATASET and child.visible:
            deps.append(_dependency(child, chain_id, child.attributes.get("role", "dataset")))
    metadata = {"invocationId": producer.resource_id,
                "finishedOn": producer.create_time.isoformat() if producer.create_time else ""}
    return deps, {k: v for k, v in external.items() if v}, metadata


def statements(lineage: Lineage, mesh_version: str) -> list[dict]:
    """One Statement per visible artifact with a result (trained models, translations, versions) and
    one per reproduction the caller ran."""
    out = []
    nodes = lineage.nodes

    def parent(node: LineageNode) -> LineageNode | None:
        return nodes[node.parent] if node.parent is not None else None

    for node in nodes:
        if node.visible and node.kind == REPRODUCTION and node.sha256:
            if (statement := reproduction_statement(lineage, node, mesh_version)) is not None:
                out.append(statement)
            continue
        if not node.visible or node.kind not in BUILD_TYPES or not node.sha256:
            continue
        deps: list[dict] = []
        external: dict = {}
        internal: dict = {}
        metadata: dict = {}
        builder_version = {"mlmesh": mesh_version}
        up = parent(node)
        if node.kind == MODEL:
            job, source, dataset = _trained_inputs(lineage, node)
            if dataset is not None and dataset.visible:
                deps.append(_dependency(dataset, lineage.chain_id, "dataset"))
            if source is not None and source.visible:
                deps.append(_dependency(source, lineage.chain_id, "recipe" if source.kind == RECIPE else "image"))
                external["source"] = ({"recipe": {"filename": source.display_name, "digest": _digest(source)}}
                                      if source.kind == RECIPE else
                                      {"image": {"reference": source.display_name, **source.attributes}})
            if job is not None and job.visible:
                metadata = {"invocationId": job.resource_id, "startedOn": job.attributes.get("start_time", ""),
                            "finishedOn": job.attributes.get("end_time", "")}
                builder_version["executor"] = job.attributes.get("executor", "")
                internal["trainingJobState"] = job.attributes.get("state", "")
            external.update(modelId=node.resource_id, framework=node.attributes.get("framework", ""))
        elif node.kind == TRANSLATION:
            if up is not None:
                deps.append(_dependency(up, lineage.chain_id, "source model"))
            external.update(sourceModelId=up.resource_id if up else "", opset=node.attributes.get("opset", ""))
            internal.update({k: v for k, v in node.attributes.items() if k.startswith("parity.")},
                            converter=node.attributes.get("converter", ""))
            metadata = {"invocationId": node.resource_id,
                        "finishedOn": node.create_time.isoformat() if node.create_time else ""}
            builder_version["converter"] = node.attributes.get("converter", "")
        elif up is not None and up.kind in PRODUCED:  # a federated student or an optimizer policy
            build_type, builder = PRODUCED[up.kind]
            deps, external, metadata = _produced_inputs(lineage, up)
            external.update(modelId=node.resource_id, framework=node.attributes.get("framework", ""))
        else:  # VERSION
            if up is not None and up.visible:
                deps.append(_dependency(up, lineage.chain_id, "parent model" if up.kind in (MODEL, VERSION)
                                        else "reference dataset"))
            deps.append({"uri": f"mlmesh://models/{node.resource_id}/recipe", "name": "learning-record.json",
                         "digest": {"sha256": node.attributes.get("learning_record_sha256", "")},
                         "annotations": {"role": "learning record"}})
            external.update(learnerId=node.attributes.get("learner_id", ""), version=node.version,
                            observations=node.attributes.get("observations", ""),
                            observationsSha256=node.attributes.get("observations_sha256", ""))
            metadata = {"invocationId": node.attributes.get("learner_id", ""),
                        "finishedOn": node.create_time.isoformat() if node.create_time else ""}
        if not (up is not None and up.kind in PRODUCED):
            build_type, builder = BUILD_TYPES[node.kind], BUILDERS[node.kind]
        name = node.display_name or node.resource_id
        statement = {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": name, "digest": _digest(node),
                         "annotations": {"mlmesh.kind": node.kind.lower(), "mlmesh.id": node.resource_id,
                                         "mlmesh.organization": node.organization_id,
                                         "mlmesh.deadBranch": node.dead_branch}}],
            "predicateType": SLSA_PROVENANCE,
            "predicate": {
                "buildDefinition": {
                    "buildType": build_type,
                    "externalParameters": external,
                    "internalParameters": internal,
                    "resolvedDependencies": deps,
                },
                "runDetails": {
                    "builder": {"id": f"https://mlmesh.dev/builders/{builder}",
                                "version": {k: v for k, v in builder_version.items() if v}},
                    "metadata": {k: v for k, v in metadata.items() if v},
                    "byproducts": [_byproduct(node, lineage.chain_id)],
                },
            },
        }
        out.append(statement)
    return out
