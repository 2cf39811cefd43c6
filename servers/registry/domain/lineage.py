"""A model's lineage (`LineageCore`): everything behind a model and everything made from it, as one
tree, each node checked against the ledger when it is asked for. No grpc, no generated code.

    dataset ─ recipe | image ─ training job ─ trained model ─┬─ translation (ONNX, parity)
                                                              └─ version 1 ─┬─ version 2 ...
                                                                             └─ version 2 (dead branch)

Access (docs/security.md, docs/provenance.md): the caller must be able to read the model asked
about (NOT_FOUND otherwise). Every other node is looked up as the caller: the Registry's own
datasets and models through the access model, the training job from the Trainer and the
translations from the Translator on the caller's behalf. An upstream node the caller may not read
(the dataset of a model shared with it, a parent version of another organization, the owner's
training job) stays in the tree as "not visible to you": its kind only, no id, no hash. A
downstream node it may not read (another organization's version, and what hangs under it) is left
out, so a model's owner learns nothing about what others derived from it unless they share it.

Dead branches: a learner continues from its last saved version; if it saved a version it did not
record (a crash in between) it resumes from the parent and saves again. For each learner the live
line is its newest version and that version's ancestors; its other versions are dead branches.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from servers.common import errors
from servers.registry.domain.datasets import Check, DatasetCore
from servers.registry.domain.models import MAX_LEARNING_RECORD_BYTES, ModelCore
from servers.registry.domain.ports import (
    LineageLedger,
    ModelContractFields,
    TrainingJobInfo,
    TrainingJobs,
    TranslationInfo,
    Translations,
)
from servers.registry.domain.records import TRAINED, DatasetRecord, ModelRecord

# Node kinds and check outcomes (the contract's LineageNode.Kind / CheckStatus without prefixes).
DATASET, RECIPE, IMAGE, TRAINING_JOB, MODEL, TRANSLATION, VERSION = (
    "DATASET", "RECIPE", "IMAGE", "TRAINING_JOB", "MODEL", "TRANSLATION", "VERSION")
REPRODUCTION, FEDERATED_JOB, DATA_COMMITMENT, OPTIMIZER_AGENT = (
    "REPRODUCTION", "FEDERATED_JOB", "DATA_COMMITMENT", "OPTIMIZER_AGENT")
VERIFIED, MISMATCH, NOT_ANCHORED, UNAVAILABLE, HIDDEN = (
    "VERIFIED", "MISMATCH", "NOT_ANCHORED", "UNAVAILABLE", "HIDDEN")
MAX_NODES = 2000  # a lineage larger than this is cut (the last node says so)
# How the Federation and the Optimizer name the "learner" of the models they store (their registry clients).
FEDERATED_PREFIX, OPTIMIZER_PREFIX = "federated-job:", "optimizer-agent:"
COMMITMENT_NOTE = ("a federated client's commitment to its private training data (SHA-256 and sample count); "
                   "not a Registry dataset: the data never left the client")


@dataclass
class LineageNode:
    kind: str
    parent: int | None  # index in Lineage.nodes
    visible: bool = True
    resource_id: str = ""
    display_name: str = ""
    organization_id: str = ""
    size_bytes: int = 0
    md5: str = ""
    sha256: str = ""
    contract_address: str = ""
    tx_hash: str = ""
    create_time: dt.datetime | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    dead_branch: bool = False
    version: int = 0
    status: str = VERIFIED
    checks: list[Check] = field(default_factory=list)
    record: ModelRecord | None = None  # models and versions: the row (not sent; the exporter reads it)


@dataclass
class Lineage:
    model_id: str
    nodes: list[LineageNode]
    check_time: dt.datetime
    chain_id: int = 0

    @property
    def consistent(self) -> bool:
        return all(n.status != MISMATCH for n in self.nodes if n.visible)

    def children(self, index: int) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.parent == index]


def _hidden(kind: str, parent: int | None) -> LineageNode:
    return LineageNode(kind=kind, parent=parent, visible=False, status=HIDDEN)


class _Checks:
    """Collects a node's comparisons and settles its status."""

    def __init__(self) -> None:
        self.items: list[Check] = []
        self.unavailable = False

    def compare(self, name: str, ours, theirs) -> None:
        ok = ours == theirs
        self.items.append(Check(name, ok, "" if ok else f"{ours!r} != {theirs!r}"))

    def fail(self, name: str, detail: str) -> None:
        self.items.append(Check(name, False, detail))

    def status(self, anchored: bool = True) -> str:
        failing = [c for c in self.items if not c.ok]
        if not failing:
            return VERIFIED if anchored else NOT_ANCHORED
        # The ledger could not be asked, and nothing else failed: unknown, not a mismatch.
        return UNAVAILABLE if self.unavailable and len(failing) == 1 else MISMATCH


async def _read_chain(read: Callable[[str], Awaitable], address: str, what: str, checks: _Checks):
    """The contract at `address`, or None with a failed check saying why (missing, or ledger down)."""
    if not address:
        checks.fail(f"{what} contract recorded", "no contract address is recorded")
        return None
    try:
        return await read(address)
    except (errors.NotFound, errors.DataLoss, errors.FailedPrecondition) as exc:
        checks.fail(f"{what} contract present on chain", exc.message)
    except (errors.Unavailable, errors.MeshError) as exc:
        checks.unavailable = True
        checks.fail(f"ledger reachable for the {what} contract", exc.message)
    return None


def _time(value: dt.datetime | None) -> str:
    return value.isoformat() if value else ""


class LineageCore:
    """GetModelLineage: walks the Registry's models and datasets, asks the Trainer and the
    Translator on the caller's behalf, and checks each node against the ledger."""

    def __init__(self, models: ModelCore, datasets: DatasetCore, jobs: TrainingJobs, translations: Translations,
                 ledger: LineageLedger, *, clock: Callable[[], dt.datetime] | None = None):
        self.models, self.datasets, self.jobs, self.translations, self.ledger = (
            models, datasets, jobs, translations, ledger)
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    async def lineage(self, model_id: str, *, caller_org: str | None) -> Lineage:
        target = await self.models.get(model_id, caller_org=caller_org)  # NOT_FOUND for a stranger
        # Up: the line of parents to the first model (a trained one, or a learner's first version).
        line = [target]
        hidden_parent = False
        while line[0].parent_model_id and len(line) < MAX_NODES:
            try:
                line.insert(0, await self.models.get(line[0].parent_model_id, caller_org=caller_org))
            except errors.NotFound:
                hidden_parent = True
                break
        root = line[0]
        lineage = Lineage(model_id=target.model_id, nodes=[], check_time=self.clock())
        if hidden_parent:
            top = self._add(lineage, _hidden(VERSION if root.version > 1 else MODEL, None))
        else:
            top = await self._upstream(lineage, root, caller_org)
        await self._downstream(lineage, root, top, caller_org)
        self._mark_dead_branches(lineage)
        chain_ids = {int(n.attributes.get("chain_id", "0")) for n in lineage.nodes} - {0}
        lineage.chain_id = min(chain_ids) if chain_ids else 0
        for n in lineage.nodes:
            n.attributes.pop("chain_id", None)
        return lineage

    @staticmethod
    def _add(lineage: Lineage, node: LineageNode) -> int:
        lineage.nodes.append(node)
        return len(lineage.nodes) - 1

    # -- upstream: dataset, recipe or image, training job ------------------------------------

    async def _upstream(self, lineage: Lineage, root: ModelRecord, caller_org: str | None) -> int | None:
        """Adds the dataset and, for a trained model, its recipe/image and job; returns the index
        the root model hangs under."""
        try:
            dataset = await self.datasets.get(root.dataset_id, caller_org=caller_org)
            parent = self._add(lineage, await self._dataset_node(dataset))
        except errors.NotFound:
            parent = self._add(lineage, _hidden(DATASET, None))
        if root.source_kind == "online":
            if root.learner_id.startswith((FEDERATED_PREFIX, OPTIMIZER_PREFIX)):
                return await self._producer(lineage, root, parent, caller_org)
            return parent  # a learner's first version: its reference dataset, then the version
        chain = await self._model_chain(root)
        parent = self._add(lineage, self._source_node(root, chain, parent))
        return self._add(lineage, await self._job_node(root, chain, parent, caller_org))

    async def _producer(self, lineage: Lineage, root: ModelRecord, parent: int, caller_org: str | None) -> int:
        """The federated job or optimizer agent that produced `root`, read from the record it stored with
        the model (re-hashed against the chain's train_image_sha256 on the way), and that job's other
        inputs under it: each federated client's data commitment, the optimizer's profiles dataset."""
        federated = root.learner_id.startswith(FEDERATED_PREFIX)
        kind = FEDERATED_JOB if federated else OPTIMIZER_AGENT
        producer_id = root.learner_id.split(":", 1)[1]
        checks = _Checks()
        base = dict(kind=kind, parent=parent, resource_id=producer_id, organization_id=root.organization_id,
                    size_bytes=root.recipe_size_bytes, md5=root.recipe_md5, sha256=root.recipe_sha256,
                    contract_address=root.contract_address, tx_hash=root.contract_tx_hash, create_time=root.create_time)
        try:
            _, chunks = await self.models.download_recipe(root.model_id, caller_org=caller_org)
            raw = b""
            async for chunk in chunks:
                raw += chunk
                if len(raw) > MAX_LEARNING_RECORD_BYTES:
                    raise errors.DataLoss("the record is larger than a learning record may be")
            doc = json.loads(raw)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
        except (errors.DataLoss, errors.FailedPrecondition, ValueError) as exc:
            if isinstance(exc, ValueError):
                checks.fail("record readable (a JSON object)", str(exc)[:300])
            else:
                checks.fail("record sha256 = chain train_image_sha256", exc.message)
            return self._add(lineage, LineageNode(**base, display_name=kind.lower().replace("_", " "),
                                                  status=checks.status(), checks=checks.items))
        except errors.MeshError as exc:
            checks.unavailable = True
            checks.fail("ledger reachable for the record's hash", exc.message)
            return self._add(lineage, LineageNode(**base, display_name=kind.lower().replace("_", " "),
                                                  status=checks.status(), checks=checks.items))
        checks.items.append(Check("record sha256 = chain train_image_sha256 (the stored record re-hashed)", True))
        if federated:
            return await self._federated_job(lineage, root, doc, base, checks)
        return await self._optimizer_agent(lineage, root, doc, base, checks, caller_org)

    async def _federated_job(self, lineage: Lineage, root: ModelRecord, doc: dict, base: dict, checks: _Checks) -> int:
        checks.compare("record federated_job_id = the model's job", str(doc.get("federated_job_id", "")),
                       base["resource_id"])
        text = doc.get("client_commitments", "[]")
        try:
            commitments = json.loads(text) if isinstance(text, str) else None
            request = json.loads(doc.get("request", "{}"))
            privacy = json.loads(doc.get("privacy", "null")) or {}
            if not isinstance(commitments, list) or not all(isinstance(c, dict) for c in commitments):
                raise ValueError("client_commitments is not a list of objects")
            samples = sum(int(c.get("sample_count", 0)) for c in commitments)
        except (ValueError, TypeError) as exc:
            checks.fail("record readable", str(exc))
            return self._add(lineage, LineageNode(**base, display_name="federated job", status=checks.status(),
                                                  checks=checks.items))
        checks.compare("sha256 of the commitments = the model's observations_sha256",
                       hashlib.sha256(text.encode()).hexdigest(), root.observations_sha256)
        checks.compare("sum of committed samples = the model's observations", samples, root.observations)
        framework = str(doc.get("framework", ""))
        spec = request.get("spec", {}) if isinstance(request, dict) else {}
        attributes = {"framework": framework, "framework_version": str(doc.get("framework_version", "")),
                      "mode": str(request.get("mode", "")) if isinstance(request, dict) else "",
                      "parameters": json.dumps(spec, sort_keys=True)[:4000], "clients": str(len(commitments))}
        if isinstance(privacy, dict):
            attributes.update({f"privacy.{k}": str(v) for k, v in privacy.items() if v not in ("", None)})
        status = checks.status()
        index = self._add(lineage, LineageNode(
            **base, display_name=f"federated job ({framework})", attributes={k: v for k, v in attributes.items() if v},
            status=status, checks=checks.items))
        for c in commitments:
            # Each commitment is part of the record the chain anchors: it stands or falls with it.
            self._add(lineage, LineageNode(
                kind=DATA_COMMITMENT, parent=index, resource_id=str(c.get("client_id", "")),
                display_name=f"data commitment of {c.get('client_id', '?')}", organization_id=root.organization_id,
                sha256=str(c.get("sha256", "")),
                attributes={"sample_count": str(c.get("sample_count", "")), "role": "input",
                            "federated_job_id": base["resource_id"], "commitment": COMMITMENT_NOTE},
                status=status, checks=[Check("in the job's record, whose sha256 the chain anchors", status == VERIFIED,
                                             "" if status == VERIFIED else "the job's record did not verify")]))
        return index

    async def _optimizer_agent(self, lineage: Lineage, root: ModelRecord, doc: dict, base: dict, checks: _Checks,
                               caller_org: str | None) -> int:
        checks.compare("record agent_id = the model's agent", str(doc.get("agent_id", "")), base["resource_id"])
        grid = doc.get("grid") if isinstance(doc.get("grid"), dict) else {}
        inputs: list[LineageNode] = []
        if grid.get("grid_dataset_id"):
            checks.compare("record grid_dataset_id = the model's dataset_id", grid["grid_dataset_id"], root.dataset_id)
            for role, key in (("grid", "grid"), ("profiles", "profiles")):
                dataset_id, sha = str(grid.get(f"{key}_dataset_id", "")), str(grid.get(f"{key}_sha256", ""))
                try:
                    ds = await self.datasets.get(dataset_id, caller_org=caller_org)
                except (errors.NotFound, errors.InvalidArgument):
                    if role == "profiles":
                        inputs.append(_hidden(DATASET, None))
                    continue
                checks.compare(f"record {key}_sha256 = the {role} dataset's sha256", sha, ds.sha256)
                if role == "profiles" and dataset_id != root.dataset_id:
                    node = await self._dataset_node(ds)
                    node.attributes["role"] = "input: load and PV profiles"
                    inputs.append(node)
        hyper = doc.get("hyperparameters", {})
        attributes = {"algorithm": str(doc.get("algorithm", "")), "library": str(doc.get("library", "")),
                      "hyperparameters": json.dumps(hyper, sort_keys=True, default=str)[:4000],
                      "seed": str(doc.get("seed", "")), "total_timesteps": str(doc.get("total_timesteps", "")),
                      "environment": json.dumps(doc.get("environment", {}), sort_keys=True, default=str)[:4000],
                      "simbench_code": str(grid.get("simbench_code", "")),
                      "evaluation": json.dumps(doc.get("evaluation", {}), sort_keys=True, default=str)[:4000]}
        index = self._add(lineage, LineageNode(
            **base, display_name=f"optimizer agent ({attributes['algorithm']})",
            attributes={k: v for k, v in attributes.items() if v not in ("", "{}")},
            status=checks.status(), checks=checks.items))
        for node in inputs:
            node.parent = index
            self._add(lineage, node)
        return index

    async def _dataset_node(self, ds: DatasetRecord) -> LineageNode:
        checks = _Checks()
        chain = await _read_chain(self.ledger.get_dataset_contract, ds.contract_address, "dataset", checks)
        if chain is not None:
            checks.compare("database dataset_id = chain dataset_id", ds.dataset_id, chain.dataset_id)
            checks.compare("database organization_id = chain organization_id", ds.organization_id,
                           chain.organization_id)
            checks.compare("database size_bytes = chain size_bytes", ds.size_bytes, chain.size_bytes)
            checks.compare("database md5 = chain md5", ds.md5, chain.md5)
            checks.compare("database sha256 = chain sha256", ds.sha256, chain.sha256)
        attributes = {"content_type": ds.content_type, "samples_dimension": ds.samples_dimension}
        if chain is not None:
            attributes.update(chain_id=str(chain.chain_id), block_number=str(chain.block_number))
        return LineageNode(
            kind=DATASET, parent=None, resource_id=ds.dataset_id, display_name=ds.display_name,
            organization_id=ds.organization_id, size_bytes=ds.size_bytes, md5=ds.md5, sha256=ds.sha256,
            contract_address=ds.contract_address, tx_hash=ds.contract_tx_hash, create_time=ds.create_time,
            attributes={k: v for k, v in attributes.items() if v}, status=checks.status(), checks=checks.items)

    async def _model_chain(self, record: ModelRecord) -> tuple[ModelContractFields | None, _Checks]:
        checks = _Checks()
        chain = await _read_chain(self.ledger.get_model_contract, record.contract_address, "model", checks)
        return chain, checks

    def _source_node(self, root: ModelRecord, chain_checks, parent: int) -> LineageNode:
        chain, base = chain_checks
        checks = _Checks()
        checks.items, checks.unavailable = list(base.items), base.unavailable
        if root.source_kind == "image":
            kind, name, sha = IMAGE, root.image_reference, root.train_image_sha256
            attributes = {"digest": root.image_digest or "(unpinned: the reference's text is anchored)"}
        else:
            kind, name, sha = RECIPE, root.recipe_filename, root.recipe_sha256
            attributes = {}
        if chain is not None:
            checks.compare("recipe md5 = chain train_image_hash", root.train_image_hash, chain.train_image_hash)
            checks.compare("recipe sha256 = chain train_image_sha256", root.train_image_sha256,
                           chain.train_image_sha256)
        return LineageNode(
            kind=kind, parent=parent, resource_id=root.model_id, display_name=name,
            organization_id=root.organization_id, size_bytes=root.recipe_size_bytes,
            md5=root.train_image_hash, sha256=sha, contract_address=root.contract_address,
            tx_hash=root.contract_tx_hash, create_time=root.create_time, attributes=attributes,
            status=checks.status(), checks=checks.items)

    async def _job_node(self, root: ModelRecord, chain_checks, parent: int, caller_org: str | None
                        ) -> LineageNode:
        if not root.training_job_id:
            return LineageNode(kind=TRAINING_JOB, parent=parent, display_name="(not scheduled)",
                               status=NOT_ANCHORED, checks=[Check("training job scheduled", False, root.state)])
        chain, _ = chain_checks
        checks = _Checks()
        try:
            job = await self.jobs.get_training_job(root.training_job_id, on_behalf_of=caller_org)
        except errors.NotFound:
            return _hidden(TRAINING_JOB, parent)
        except errors.MeshError as exc:
            return LineageNode(kind=TRAINING_JOB, parent=parent, resource_id=root.training_job_id, status=UNAVAILABLE,
                               checks=[Check("trainer reachable", False, exc.message)])
        checks.compare("job model_id = model", job.model_id, root.model_id)
        checks.compare("job dataset_id = database dataset_id", job.dataset_id, root.dataset_id)
        if chain is not None:
            checks.compare("job dataset_id = chain dataset_id (data_params)", job.dataset_id, chain.dataset_id)
        if root.state == TRAINED:
            checks.compare("job state = SUCCEEDED (the model is TRAINED)", job.state, "SUCCEEDED")
        attributes = {"state": job.state, "executor": job.executor, "framework": job.framework,
                      "start_time": _time(job.start_time), "end_time": _time(job.end_time),
                      "failure_reason": job.failure_reason[:200]}
        return LineageNode(
            kind=TRAINING_JOB, parent=parent, resource_id=job.job_id, display_name=f"training job ({job.executor})",
            organization_id=root.organization_id, create_time=job.create_time,
            attributes={k: v for k, v in attributes.items() if v},
            # Jobs are not anchored on the ledger; the checks tie the job to what is.
            status=checks.status(anchored=False), checks=checks.items)

    # -- the model, its translations and versions --------------------------------------------

    async def _model_node(self, record: ModelRecord, parent: int | None) -> LineageNode:
        chain, checks = await self._model_chain(record)
        if chain is not None:
            checks.compare("database model_id = chain model_id", record.model_id, chain.model_id)
            checks.compare("database organization_id = chain organization_id", record.organization_id,
                           chain.organization_id)
            checks.compare("database dataset_id = chain dataset_id (data_params)", record.dataset_id,
                           chain.dataset_id)
            checks.compare("database train_image_sha256 = chain train_image_sha256", record.train_image_sha256,
                           chain.train_image_sha256)
            if record.state == TRAINED:
                checks.compare("chain result verified", True, chain.verified)
                checks.compare("database res_hash = chain res_hash", record.res_md5, chain.res_hash)
                checks.compare("database res_sha256 = chain res_sha256", record.res_sha256, chain.res_sha256)
        online = record.source_kind == "online"
        attributes = {"state": record.state, "framework": record.framework}
        if online:
            attributes.update(learner_id=record.learner_id, observations=str(record.observations),
                              observations_sha256=record.observations_sha256,
                              validation_loss=repr(record.validation_loss),
                              learning_record_sha256=record.recipe_sha256)
            if chain is not None:
                checks.compare("learning record sha256 = chain train_image_sha256", record.recipe_sha256,
                               chain.train_image_sha256)
        if record.failure_reason:
            attributes["failure_reason"] = record.failure_reason[:200]
        if chain is not None:
            attributes.update(chain_id=str(chain.chain_id), block_number=str(chain.block_number))
        return LineageNode(
            kind=VERSION if online else MODEL, parent=parent, resource_id=record.model_id,
            display_name=record.display_name, organization_id=record.organization_id, size_bytes=record.size_bytes,
            md5=record.res_md5, sha256=record.res_sha256, contract_address=record.contract_address,
            tx_hash=record.verify_tx_hash or record.contract_tx_hash, create_time=record.create_time,
            attributes={k: v for k, v in attributes.items() if v}, version=record.version,
            status=checks.status(anchored=record.state == TRAINED), checks=checks.items, record=record)

    async def _translation_node(self, t: TranslationInfo, model: ModelRecord, parent: int) -> LineageNode:
        checks = _Checks()
        chain = await _read_chain(self.ledger.get_translation_contract, t.contract_address, "translation", checks)
        checks.compare("translation source_sha256 = model res_sha256", t.source_sha256, model.res_sha256)
        if chain is not None:
            checks.compare("translation_id = chain translation_id", t.translation_id, chain.translation_id)
            checks.compare("model_id = chain model_id", t.model_id, chain.model_id)
            checks.compare("model contract = chain model_contract", model.contract_address.lower(),
                           chain.model_contract.lower())
            checks.compare("source_sha256 = chain source_sha256", t.source_sha256, chain.source_sha256)
            checks.compare("onnx md5 = chain onnx_md5", t.md5, chain.onnx_md5)
            checks.compare("onnx sha256 = chain onnx_sha256", t.sha256, chain.onnx_sha256)
            checks.compare("parity passed = chain parity_passed", bool(t.parity.get("passed")), chain.parity_passed)
            try:
                on_chain = float(chain.max_abs_diff)
            except ValueError:
                on_chain = math.nan
            ok = math.isclose(on_chain, float(t.parity.get("max_abs_diff", 0.0)), rel_tol=1e-6, abs_tol=1e-12)
            checks.items.append(Check("parity max_abs_diff = chain max_abs_diff", ok,
                                      "" if ok else f"{t.parity.get('max_abs_diff')!r} != {chain.max_abs_diff!r}"))
        attributes = {"converter": t.converter, "opset": str(t.opset), "framework": t.framework}
        attributes.update({f"parity.{k}": str(v) for k, v in t.parity.items() if v not in ("", None)})
        if chain is not None:
            attributes.update(chain_id=str(chain.chain_id), block_number=str(chain.block_number))
        return LineageNode(
            kind=TRANSLATION, parent=parent, resource_id=t.translation_id, display_name=f"ONNX opset {t.opset}",
            organization_id=model.organization_id, size_bytes=t.size_bytes, md5=t.md5, sha256=t.sha256,
            contract_address=t.contract_address, tx_hash=t.contract_tx_hash, create_time=t.create_time,
            attributes=attributes, status=checks.status(), checks=checks.items)

    async def _downstream(self, lineage: Lineage, model: ModelRecord, parent: int | None,
                          caller_org: str | None) -> None:
        """Adds `model`, its translations and, recursively, the versions saved from it."""
        if len(lineage.nodes) >= MAX_NODES:
            return
        index = self._add(lineage, await self._model_node(model, parent))
        if model.state == TRAINED:
            found = await self._listed(lineage, TRANSLATION, index, "translator",
                                       self.translations.list_translations(model.model_id, on_behalf_of=caller_org))
            for node in await asyncio.gather(*(self._translation_node(t, model, index) for t in found)):
                self._add(lineage, node)
            if model.source_kind == "recipe":
                await self._reproductions(lineage, model, index, caller_org)
        for child in await self.models.repo.children(model.model_id):
            try:
                visible = await self.models.get(child.model_id, caller_org=caller_org)
            except errors.NotFound:
                continue  # another organization's version: left out (module docstring)
            await self._downstream(lineage, visible, index, caller_org)

    async def _listed(self, lineage: Lineage, kind: str, parent: int, server: str, listing: Awaitable[list]) -> list:
        """What a peer lists under a node; none if it says NOT_FOUND; if it cannot be asked, one
        UNAVAILABLE node of `kind` saying so (the call still answers)."""
        try:
            return await listing
        except errors.NotFound:
            return []
        except errors.MeshError as exc:
            self._add(lineage, LineageNode(kind=kind, parent=parent, status=UNAVAILABLE,
                                           checks=[Check(f"{server} reachable", False, exc.message)]))
            return []

    async def _reproductions(self, lineage: Lineage, model: ModelRecord, parent: int, caller_org: str | None) -> None:
        """The model's finished reproductions the caller may see (its own organization's)."""
        found = await self._listed(lineage, REPRODUCTION, parent, "trainer",
                                   self.jobs.list_reproductions(model.model_id, on_behalf_of=caller_org))
        for job in found:
            self._add(lineage, reproduction_node(job, model, parent, caller_org))

    @staticmethod
    def _mark_dead_branches(lineage: Lineage) -> None:
        by_learner: dict[str, list[int]] = {}
        for i, n in enumerate(lineage.nodes):
            if n.kind == VERSION and n.visible and n.record is not None:
                by_learner.setdefault(n.record.learner_id, []).append(i)
        for indexes in by_learner.values():
            newest = max(indexes, key=lambda i: (lineage.nodes[i].version, lineage.nodes[i].record.create_time))
            live = set()
            at: int | None = newest
            while at is not None:
                live.add(at)
                at = lineage.nodes[at].parent
            for i in indexes:
                lineage.nodes[i].dead_branch = i not in live


def reproduction_node(job: TrainingJobInfo, model: ModelRecord, parent: int, caller_org: str | None) -> LineageNode:
    """A reproduction of `model` (docs/provenance.md): the reproduced artifact's digest and the verdict,
    checked against the model it claims to reproduce. Reproductions are not anchored on the ledger."""
    r = job.reproduction
    assert r is not None
    checks = _Checks()
    checks.compare("reproduction model_id = model", job.model_id, model.model_id)
    checks.compare("reproduction dataset_id = model dataset_id", job.dataset_id, model.dataset_id)
    checks.compare("compared with res_sha256 = model res_sha256", r.ledger_res_sha256, model.res_sha256)
    checks.compare("compared with res_hash = model res_hash", r.ledger_res_hash, model.res_md5)
    if r.outcome == "IDENTICAL":
        checks.compare("IDENTICAL: reproduced sha256 = res_sha256", r.reproduced_sha256, r.ledger_res_sha256)
    elif r.outcome == "DIFFERENT":
        ok = r.reproduced_sha256 != r.ledger_res_sha256 and r.compared_samples > 0 and math.isfinite(r.max_abs_diff)
        checks.items.append(Check("DIFFERENT: bytes differ and outputs were compared", ok,
                                  "" if ok else f"reproduced {r.reproduced_sha256}, {r.compared_samples} rows, "
                                                f"max_abs_diff {r.max_abs_diff!r}"))
    else:
        checks.fail("verdict is IDENTICAL or DIFFERENT", r.outcome)
    attributes = {"verdict": r.outcome, "max_abs_diff": repr(r.max_abs_diff), "compared_samples": str(r.compared_samples),
                  "top1_agreement": repr(r.top1_agreement) if r.top1_agreement >= 0 else "", "method": r.method,
                  "original_sha256": r.ledger_res_sha256, "original_md5": r.ledger_res_hash,
                  "dataset_id": job.dataset_id, "executor": job.executor, "framework": job.framework,
                  "start_time": _time(job.start_time), "end_time": _time(job.end_time)}
    return LineageNode(
        kind=REPRODUCTION, parent=parent, resource_id=job.job_id, display_name=f"reproduction ({r.outcome.lower()})",
        organization_id=caller_org or "", sha256=r.reproduced_sha256, create_time=job.create_time,
        attributes={k: v for k, v in attributes.items() if v}, status=checks.status(anchored=False),
        checks=checks.items)
