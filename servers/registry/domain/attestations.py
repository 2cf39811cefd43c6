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

from servers.registry.domain.lineage import (
    DATASET,
    IMAGE,
    MODEL,
    RECIPE,
    TRAINING_JOB,
    TRANSLATION,
    VERSION,
    Lineage,
    LineageCore,
    LineageNode,
)

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUILD_TYPES = {
    MODEL: "https://mlmesh.dev/buildtypes/training/v1",
    TRANSLATION: "https://mlmesh.dev/buildtypes/onnx-translation/v1",
    VERSION: "https://mlmesh.dev/buildtypes/online-learning/v1",
}
BUILDERS = {MODEL: "trainer", TRANSLATION: "translator", VERSION: "learner"}
# What a third party calls on the anchoring contract to read the hashes back (contracts/*.sol).
ANCHOR_FUNCTIONS = {DATASET: "get_dataset_params()", MODEL: "get_model_params()",
                    VERSION: "get_model_params()", RECIPE: "get_model_params()",
                    TRANSLATION: "get_translation_params()"}


class Signer(Protocol):
    """The mesh's attestation key."""

    key_id: str
    public_key_pem: str
    scheme: str  # "ecdsa-sha2-nistp256"

    def sign(self, data: bytes) -> bytes:
        """The signature of `data` (for ECDSA: DER-encoded, over SHA-256 of `data`)."""
        ...


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

    def __init__(self, lineage: LineageCore, signer: Signer, *, mesh_version: str):
        self.lineage, self.signer, self.mesh_version = lineage, signer, mesh_version

    def signing_key(self) -> tuple[str, str, str]:
        return self.signer.key_id, self.signer.public_key_pem, self.signer.scheme

    async def export(self, model_id: str, *, caller_org: str | None) -> Exported:
        lineage = await self.lineage.lineage(model_id, caller_org=caller_org)
        envelopes = [envelope(statement, self.signer) for statement in statements(lineage, self.mesh_version)]
        return Exported(envelopes, self.signer.key_id, self.signer.public_key_pem, self.signer.scheme)


def statements(lineage: Lineage, mesh_version: str) -> list[dict]:
    """One Statement per visible artifact with a result (trained models, translations, versions)."""
    out = []
    nodes = lineage.nodes

    def parent(node: LineageNode) -> LineageNode | None:
        return nodes[node.parent] if node.parent is not None else None

    for node in nodes:
        if not node.visible or node.kind not in BUILD_TYPES or not node.sha256:
            continue
        deps: list[dict] = []
        external: dict = {}
        internal: dict = {}
        metadata: dict = {}
        builder_version = {"mlmesh": mesh_version}
        up = parent(node)
        if node.kind == MODEL:
            job = up if up is not None and up.kind == TRAINING_JOB else None
            source = parent(job) if job is not None else None
            dataset = parent(source) if source is not None else None
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
                    "buildType": BUILD_TYPES[node.kind],
                    "externalParameters": external,
                    "internalParameters": internal,
                    "resolvedDependencies": deps,
                },
                "runDetails": {
                    "builder": {"id": f"https://mlmesh.dev/builders/{BUILDERS[node.kind]}",
                                "version": {k: v for k, v in builder_version.items() if v}},
                    "metadata": {k: v for k, v in metadata.items() if v},
                    "byproducts": [_byproduct(node, lineage.chain_id)],
                },
            },
        }
        out.append(statement)
    return out
