"""The Registry's model core (`ModelCore`): register against a dataset (recipe archive or container image), anchor the Model
contract, schedule training, take the Trainer's result (store, verify write-once on the
ledger, then TRAINED), serve it checked against res_hash, share it. No grpc, no generated code.

Access (docs/security.md): reads need READ on the model, NOT_FOUND otherwise; sharing and the
access policy need OWNER. A model belongs to the organization that registers it, which must be
able to read its dataset (a grantee may train on a shared dataset; the model is the grantee's).
A version learned online belongs to its learner's organization, which must be able to read the
parent (a learner of B may continue A's shared model) and the reference dataset."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

from servers.common import access, blobs, errors, hashing, ids
from servers.common.access import Access
from servers.common.storage import ObjectStore
from servers.registry.domain.datasets import MAX_TEXT, Check, DatasetCore
from servers.registry.domain.ports import ModelContractFields, ModelLedger, ModelRepository, Trainer
from servers.registry.domain.recovery import ANCHOR_PRESENT_CHECK, read_anchor
from servers.registry.domain.records import (
    FAILED,
    MODEL,
    PENDING,
    TRAINED,
    TRAINING,
    AccessPolicyRecord,
    ModelRecord,
    Page,
)
from servers.registry.domain.sharing import Caller, validate_grantees

log = logging.getLogger("mlmesh.registry.models")

RECIPE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
FRAMEWORKS = ("pytorch", "sklearn", "tensorflow")
# Frameworks of versions a Learner saves (its backends).
ONLINE_FRAMEWORKS = ("pytorch", "sklearn", "tensorflow", "river", "vowpalwabbit")
MAX_LEARNING_RECORD_BYTES = 1 << 20
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class CreateModel:
    organization_id: str
    developer_id: str
    dataset_id: str
    display_name: str
    recipe_filename: str = ""
    expected_recipe_sha256: str = ""
    image_reference: str = ""
    image_digest: str = ""
    time_limit_seconds: int = 0
    memory_limit_bytes: int = 0


@dataclass(frozen=True)
class TrainingResult:
    model_id: str
    training_job_id: str
    framework: str
    input_signature: str


@dataclass(frozen=True)
class ModelVersion:
    """A model version a Learner learned online (CreateModelVersion's metadata)."""

    organization_id: str
    developer_id: str
    display_name: str
    dataset_id: str
    parent_model_id: str
    version: int
    framework: str
    input_signature: str
    learner_id: str
    observations: int
    observations_sha256: str
    validation_loss: float
    learning_record: bytes


@dataclass(frozen=True)
class ModelProvenance:
    record: ModelRecord
    on_chain: ModelContractFields | None  # None: the contract is missing from the chain (see checks)
    stored_md5: str
    stored_sha256: str
    checks: list[Check]

    @property
    def consistent(self) -> bool:
        return all(c.ok for c in self.checks)


def not_trained_message(model_id: str) -> str:
    """The seed's answer to a download before training finished."""
    return f"Model {model_id} has not been trained yet. Please, try again later."


def validate_create(req: CreateModel, caller_org: str | None) -> CreateModel:
    org = req.organization_id.strip() or (caller_org or "")
    missing = [name for name, value in (("organization_id", org), ("developer_id", req.developer_id),
                                        ("dataset_id", req.dataset_id), ("display_name", req.display_name))
               if not value.strip()]
    if missing:
        raise errors.InvalidArgument(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required in the first message "
            "(REST: query parameters)", reason="METADATA_MISSING", metadata={"fields": ",".join(missing)},
        )
    if caller_org and org != caller_org:
        raise errors.PermissionDenied(
            f"your token is for organization {caller_org!r}; it cannot register models for {org!r}",
            reason="ORGANIZATION_MISMATCH",
        )
    for field in ("developer_id", "display_name", "recipe_filename", "image_reference"):
        if len(getattr(req, field)) > MAX_TEXT:
            raise errors.InvalidArgument(f"{field} is longer than {MAX_TEXT} characters", reason="FIELD_TOO_LONG")
    if req.time_limit_seconds < 0 or req.memory_limit_bytes < 0:
        raise errors.InvalidArgument("time and memory limits must be >= 0 (0: the Trainer's default)",
                                     reason="LIMIT_NEGATIVE")
    image = bool(req.image_reference or req.image_digest)
    if image:
        reference, digest = req.image_reference.strip(), req.image_digest.strip()
        if "@" in reference and not digest:  # a pinned reference, name@sha256:<hex>
            reference, _, digest = reference.partition("@")
        # An unpinned reference (the seed's `train_image=registry/…/image`) is accepted: its contract
        # then anchors the reference's text (ModelRecord.train_image_hash), not the image's bytes.
        if not reference or any(c.isspace() for c in reference) or (digest and not _DIGEST.match(digest)):
            raise errors.InvalidArgument(
                "a container image needs image_reference (no spaces) and, to pin it, image_digest "
                "'sha256:<64 lowercase hex>' (or image_reference 'name@sha256:<hex>')", reason="IMAGE_INVALID",
            )
        req = replace(req, image_reference=reference, image_digest=digest)
        if req.recipe_filename:
            raise errors.InvalidArgument("give a recipe archive or a container image, not both",
                                         reason="TRAINING_SOURCE_AMBIGUOUS")
    else:
        name = req.recipe_filename.strip()
        if not name or not name.lower().endswith(RECIPE_SUFFIXES):
            raise errors.InvalidArgument(
                "recipe_filename is required and must end in .tar.gz, .tgz or .zip (or give image_reference and "
                "image_digest instead)", reason="RECIPE_FILENAME_INVALID",
            )
    sha = req.expected_recipe_sha256.strip().lower()
    if sha and not hashing.is_sha256(sha):
        raise errors.InvalidArgument("expected_recipe_sha256 must be 64 hex digits", reason="EXPECTED_HASH_MALFORMED")
    return replace(req, organization_id=org, developer_id=req.developer_id.strip(),
                   display_name=req.display_name.strip(), recipe_filename=req.recipe_filename.strip(),
                   expected_recipe_sha256=sha)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ModelCore:
    """The model use cases of the Registry; the servicer converts and delegates to it."""

    def __init__(
        self,
        store: ObjectStore,
        repo: ModelRepository,
        ledger: ModelLedger,
        trainer: Trainer,
        datasets: DatasetCore,
        *,
        max_recipe_bytes: int,
        max_model_bytes: int,
        read_chunk_bytes: int = 1 << 20,
        clock: Callable[[], dt.datetime] = _utcnow,
    ):
        self.store, self.repo, self.ledger, self.trainer, self.datasets = store, repo, ledger, trainer, datasets
        self.sharing = datasets.sharing  # one access model for datasets and models
        self.max_recipe_bytes, self.max_model_bytes = max_recipe_bytes, max_model_bytes
        self.read_chunk_bytes = read_chunk_bytes
        self.clock = clock

    # -- create -------------------------------------------------------------------------------

    async def create(self, req: CreateModel, recipe: AsyncIterator[bytes], *, caller_org: str | None = None
                     ) -> ModelRecord:
        req = validate_create(req, caller_org)
        # The model will belong to req.organization_id (the caller's, checked above): it must be able
        # to read the dataset. NOT_FOUND if it is not registered or not visible to that organization.
        dataset = await self.datasets.get(req.dataset_id, caller_org=req.organization_id)
        model_id = str(uuid.uuid4())
        pending: blobs.PendingObject | None = None
        if req.image_reference:
            async for chunk in recipe:
                if chunk:
                    raise errors.InvalidArgument("a model trained from a container image takes no recipe bytes",
                                                 reason="TRAINING_SOURCE_AMBIGUOUS")
        else:
            def check(hasher: hashing.DualHasher) -> None:
                if req.expected_recipe_sha256 and req.expected_recipe_sha256 != hasher.sha256:
                    raise errors.InvalidArgument(
                        f"the recipe received has SHA-256 {hasher.sha256}, not the expected "
                        f"{req.expected_recipe_sha256}; nothing was stored", reason="EXPECTED_HASH_MISMATCH")

            pending = await blobs.write_hashed(self.store, f"recipes/{model_id}", recipe,
                                               max_bytes=self.max_recipe_bytes, what="recipe archive", check=check)
        # Once the recipe is in, the registration runs to its end even if the client hangs up.
        return await blobs.finish(self._anchor_and_schedule(req, dataset, model_id, pending))

    async def _anchor_and_schedule(self, req: CreateModel, dataset, model_id: str,
                                   pending: blobs.PendingObject | None) -> ModelRecord:
        try:
            now = self.clock()
            stored = pending.stored if pending else None
            record = ModelRecord(
                model_id=model_id, display_name=req.display_name, organization_id=req.organization_id,
                developer_id=req.developer_id, dataset_id=dataset.dataset_id,
                source_kind="image" if req.image_reference else "recipe",
                recipe_filename=req.recipe_filename, recipe_size_bytes=stored.size_bytes if stored else 0,
                recipe_md5=stored.md5 if stored else "", recipe_sha256=stored.sha256 if stored else "",
                recipe_object_key=stored.key if stored else "",
                image_reference=req.image_reference, image_digest=req.image_digest,
                time_limit_seconds=req.time_limit_seconds, memory_limit_bytes=req.memory_limit_bytes,
                state=PENDING, failure_reason="", training_job_id="", framework="", input_signature="",
                size_bytes=0, res_md5="", res_sha256="", object_key="", contract_address="", contract_tx_hash="",
                verify_tx_hash="", create_time=now, update_time=now,
            )
            anchor = await self.ledger.deploy_model_contract(
                model_id=model_id, organization_id=record.organization_id, developer_id=record.developer_id,
                dataset_id=record.dataset_id, train_image_hash=record.train_image_hash,
                train_image_sha256=record.train_image_sha256,
            )
            record = replace(record, contract_address=anchor.contract_address, contract_tx_hash=anchor.tx_hash)
        except BaseException:
            if pending:
                await pending.discard()
            raise
        record = await self._insert(record, [pending] if pending else [])
        try:
            job_id = await self.trainer.submit_training_job(
                model_id=model_id, time_limit_seconds=req.time_limit_seconds,
                memory_limit_bytes=req.memory_limit_bytes)
        except BaseException:
            # Not scheduled: take the registration back so the user can simply retry.
            await self.repo.delete(model_id)
            if pending:
                await pending.discard()
            raise
        try:
            record = await self.repo.update(model_id, from_states=(PENDING,), training_job_id=job_id)
        except errors.FailedPrecondition:
            record = await self.repo.get(model_id)  # the Trainer already moved it on
        log.info("model_id=%s dataset_id=%s contract=%s job=%s", model_id, record.dataset_id,
                 record.contract_address, job_id)
        return record

    # -- read ---------------------------------------------------------------------------------

    async def get(self, model_id: str, *, caller_org: str | None) -> ModelRecord:
        """The model, if `caller_org` may read it; NOT_FOUND otherwise (as if it did not exist)."""
        return await self._with_access(model_id, caller_org, Access.READ, "read")

    async def by_contract(self, address: str, *, caller_org: str | None
                          ) -> tuple[ModelRecord, ModelContractFields] | None:
        """The model whose ledger contract is at `address` and the contract's fields as the chain holds
        them; None when no model has that contract or `caller_org` may not read it."""
        record = await self.repo.find_by_contract(address)
        if record is None:
            return None
        try:
            await self._with_access(record.model_id, caller_org, Access.READ, "read")
        except errors.NotFound:
            return None
        return record, await self._chain_anchor(record)

    async def _chain_anchor(self, record: ModelRecord) -> ModelContractFields:
        """The model's contract as the chain holds it; DATA_LOSS ANCHOR_MISSING when it is gone."""
        return await read_anchor(self.ledger.get_model_contract, "model", record.model_id, record.contract_address)

    async def _with_access(self, model_id: str, caller_org: str | None, needed: Access, action: str) -> ModelRecord:
        ident = ids.parse_id(model_id, "model_id")
        try:
            record = await self.repo.get(ident)
        except errors.NotFound:
            raise access.not_found(MODEL, ident) from None
        level = await self.sharing.level(MODEL, ident, record.organization_id, caller_org)
        if needed == Access.OWNER:
            access.require_owner(level, MODEL, ident, action)
        else:
            access.require_read(level, MODEL, ident)
        return record

    async def list(self, page_size: int, page_token: str, organization_id: str, dataset_id: str, *,
                   caller_org: str | None) -> Page:
        """The models `caller_org` may see, newest first, optionally of one organization or dataset."""
        return await self.repo.list(page_size, page_token, organization_id.strip(), dataset_id.strip(),
                                    visible_to=caller_org)

    # -- sharing ------------------------------------------------------------------------------

    async def share(self, model_id: str, organization_ids: list[str], public: bool, *, caller: Caller
                    ) -> AccessPolicyRecord:
        grantees = validate_grantees(organization_ids, public)
        record = await self._with_access(model_id, caller.organization_id, Access.OWNER, "share")
        policy = await self.sharing.share(MODEL, record.model_id, record.organization_id, grantees, caller)
        log.info("model_id=%s shared with %s by %s/%s", record.model_id, ",".join(grantees),
                 caller.organization_id or "-", caller.subject or "-")
        return policy

    async def unshare(self, model_id: str, organization_ids: list[str], public: bool, *, caller: Caller
                      ) -> AccessPolicyRecord:
        grantees = validate_grantees(organization_ids, public)
        record = await self._with_access(model_id, caller.organization_id, Access.OWNER, "unshare")
        policy = await self.sharing.unshare(MODEL, record.model_id, record.organization_id, grantees,
                                                     caller)
        log.info("model_id=%s unshared from %s by %s/%s", record.model_id, ",".join(grantees),
                 caller.organization_id or "-", caller.subject or "-")
        return policy

    async def access_policy(self, model_id: str, *, caller_org: str | None) -> AccessPolicyRecord:
        record = await self._with_access(model_id, caller_org, Access.OWNER, "read the access policy of")
        return await self.sharing.policy(MODEL, record.model_id, record.organization_id)

    # -- download -----------------------------------------------------------------------------

    async def download(self, model_id: str, offset: int, *, caller_org: str | None
                       ) -> tuple[ModelRecord, AsyncIterator[bytes]]:
        record = await self.get(model_id, caller_org=caller_org)
        if record.state != TRAINED:
            raise errors.FailedPrecondition(not_trained_message(record.model_id), reason="MODEL_NOT_TRAINED",
                                            metadata={"state": record.state})
        blobs.check_offset(offset, record.size_bytes, "the model")
        chain = await self._chain_anchor(record)
        if not chain.verified or chain.res_sha256 != record.res_sha256 or chain.res_hash != record.res_md5:
            raise errors.DataLoss(
                f"model {record.model_id}: the database records res_hash {record.res_md5} but its ledger contract "
                f"{record.contract_address} records {chain.res_hash or 'nothing'}; refusing to serve it",
                reason="LEDGER_MISMATCH")
        return record, await blobs.open_verified(
            self.store, record.object_key, offset=offset, sha256=chain.res_sha256, size_bytes=record.size_bytes,
            what=f"model {record.model_id}", chunk_bytes=self.read_chunk_bytes)

    async def download_recipe(self, model_id: str, *, caller_org: str | None
                              ) -> tuple[ModelRecord, AsyncIterator[bytes]]:
        record = await self.get(model_id, caller_org=caller_org)
        if record.source_kind == "image":
            raise errors.FailedPrecondition(
                f"model {record.model_id} is trained from the container image {record.image_reference}@"
                f"{record.image_digest}; it has no recipe archive", reason="NO_RECIPE")
        chain = await self._chain_anchor(record)
        if chain.train_image_sha256 != record.recipe_sha256:
            raise errors.DataLoss(f"model {record.model_id}: the recipe recorded in the database does not match "
                                  "its ledger contract", reason="LEDGER_MISMATCH")
        return record, await blobs.open_verified(
            self.store, record.recipe_object_key, offset=0, sha256=chain.train_image_sha256,
            size_bytes=record.recipe_size_bytes, what=f"the recipe of model {record.model_id}",
            chunk_bytes=self.read_chunk_bytes)

    async def provenance(self, model_id: str, *, caller_org: str | None) -> ModelProvenance:
        record = await self.get(model_id, caller_org=caller_org)
        checks: list[Check] = []

        def compare(name: str, ours, theirs) -> None:
            ok = ours == theirs
            checks.append(Check(name, ok, "" if ok else f"{ours!r} != {theirs!r}"))

        try:
            chain = await self._chain_anchor(record)
        except errors.DataLoss as exc:
            # The anchor, not the model, is missing: say so, and compare the bytes with the database.
            checks.append(Check(ANCHOR_PRESENT_CHECK, False, exc.message))
            stored_md5 = stored_sha = ""
            if record.state == TRAINED:
                try:
                    hasher = await hashing.md5_sha256_of(self.store.read(record.object_key, 0, self.read_chunk_bytes))
                    stored_md5, stored_sha = hasher.md5, hasher.sha256
                    compare("stored model sha256 = database res_sha256", stored_sha, record.res_sha256)
                except errors.NotFound:
                    checks.append(Check("stored model present", False, f"object {record.object_key} is missing"))
            return ModelProvenance(record, None, stored_md5, stored_sha, checks)
        checks.append(Check(ANCHOR_PRESENT_CHECK, True))

        compare("database model_id = chain model_id", record.model_id, chain.model_id)
        compare("database organization_id = chain organization_id", record.organization_id, chain.organization_id)
        compare("database developer_id = chain developer_id", record.developer_id, chain.developer_id)
        compare("database dataset_id = chain dataset_id (data_params)", record.dataset_id, chain.dataset_id)
        compare("database train_image_hash = chain train_image_hash", record.train_image_hash,
                chain.train_image_hash)
        compare("database train_image_sha256 = chain train_image_sha256", record.train_image_sha256,
                chain.train_image_sha256)
        stored_md5 = stored_sha = ""
        if record.state == TRAINED:
            compare("chain result verified", True, chain.verified)
            compare("database res_hash = chain res_hash", record.res_md5, chain.res_hash)
            compare("database res_sha256 = chain res_sha256", record.res_sha256, chain.res_sha256)
            try:
                hasher = await hashing.md5_sha256_of(self.store.read(record.object_key, 0, self.read_chunk_bytes))
                stored_md5, stored_sha = hasher.md5, hasher.sha256
                compare("stored model md5 = chain res_hash", stored_md5, chain.res_hash)
                compare("stored model sha256 = chain res_sha256", stored_sha, chain.res_sha256)
            except errors.NotFound:
                checks.append(Check("stored model present", False, f"object {record.object_key} is missing"))
        else:
            compare(f"chain result not yet verified (model is {record.state})", False, chain.verified)
        return ModelProvenance(record, chain, stored_md5, stored_sha, checks)

    # -- the Trainer's side -------------------------------------------------------------------

    async def report_status(self, model_id: str, job_id: str, state: str, reason: str) -> ModelRecord:
        model_id = ids.parse_id(model_id, "model_id")
        record = await self.repo.get(model_id)
        self._check_job(record, job_id)
        if state == TRAINING:
            return await self.repo.update(model_id, from_states=(PENDING, TRAINING), state=TRAINING,
                                          training_job_id=job_id)
        if state == FAILED:
            if not reason.strip():
                raise errors.InvalidArgument("failure_reason is required with STATE_FAILED",
                                             reason="FAILURE_REASON_MISSING")
            log.info("model_id=%s training failed: %s", model_id, reason[:200])
            return await self.repo.update(model_id, from_states=(PENDING, TRAINING), state=FAILED,
                                          failure_reason=reason[:4000], training_job_id=job_id)
        raise errors.InvalidArgument("state must be STATE_TRAINING or STATE_FAILED (TRAINED comes from "
                                     "SubmitTrainingResult)", reason="STATE_INVALID")

    @staticmethod
    def _check_job(record: ModelRecord, job_id: str) -> None:
        if not job_id:
            raise errors.InvalidArgument("training_job_id is required", reason="JOB_ID_MISSING")
        if record.training_job_id and record.training_job_id != job_id:
            raise errors.FailedPrecondition(
                f"model {record.model_id} is trained by job {record.training_job_id}, not {job_id}",
                reason="JOB_MISMATCH")

    async def submit_result(self, result: TrainingResult, chunks: AsyncIterator[bytes]) -> ModelRecord:
        """Stores the artifact, records its hashes with the ledger's write-once verify, then TRAINED."""
        model_id = ids.parse_id(result.model_id, "model_id")
        record = await self.repo.get(model_id)
        self._check_job(record, result.training_job_id)
        if record.state == TRAINED:
            raise errors.FailedPrecondition(
                f"model {model_id} already has a verified training result (res_hash {record.res_md5}); "
                "a training result is write-once", reason="MODEL_ALREADY_TRAINED")
        if record.state == FAILED:
            raise errors.FailedPrecondition(f"model {model_id} failed training: {record.failure_reason}",
                                            reason="MODEL_FAILED")
        if result.framework not in FRAMEWORKS:
            raise errors.InvalidArgument(f"framework {result.framework!r} is not one of {', '.join(FRAMEWORKS)}",
                                         reason="FRAMEWORK_INVALID")
        _check_signature(result.input_signature)
        key = f"models/{model_id}/{uuid.uuid4().hex}"
        pending = await blobs.write_hashed(self.store, key, chunks, max_bytes=self.max_model_bytes,
                                           what="training result")
        return await blobs.finish(self._verify_and_record(record, result, pending))

    async def _verify_and_record(self, record: ModelRecord, result: TrainingResult,
                                 pending: blobs.PendingObject) -> ModelRecord:
        model_id, stored = record.model_id, pending.stored
        try:
            verify_tx = await self._verify_on_chain(record, stored)
        except BaseException:
            await pending.discard()
            raise

        async def update() -> ModelRecord:
            return await self.repo.update(
                model_id, from_states=(PENDING, TRAINING), state=TRAINED, framework=result.framework,
                input_signature=result.input_signature, size_bytes=stored.size_bytes, res_md5=stored.md5,
                res_sha256=stored.sha256, object_key=stored.key, verify_tx_hash=verify_tx,
                training_job_id=result.training_job_id, failure_reason="")

        async def updated() -> ModelRecord | None:
            found = await self.repo.get(model_id)
            return found if found.state == TRAINED and found.object_key == stored.key else None

        record = await blobs.record([pending], update, recorded=updated, what=f"the result of model {model_id}")
        log.info("model_id=%s TRAINED size=%d res_hash=%s verify_tx=%s", model_id, stored.size_bytes, stored.md5,
                 verify_tx)
        return record

    async def _insert(self, record: ModelRecord, pending: list[blobs.PendingObject]) -> ModelRecord:
        """Inserts the row that makes `record` visible; its objects stay if the insert may have committed."""

        async def insert() -> ModelRecord:
            await self.repo.insert(record)
            return record

        async def inserted() -> ModelRecord | None:
            try:
                found = await self.repo.get(record.model_id)
            except errors.NotFound:
                return None
            return found if found.contract_address == record.contract_address else None

        return await blobs.record(pending, insert, recorded=inserted, what=f"model {record.model_id}")

    async def _verify_on_chain(self, record: ModelRecord, stored: blobs.Stored) -> str:
        try:
            anchor = await self.ledger.verify_model(record.contract_address, res_hash=stored.md5,
                                                    res_sha256=stored.sha256)
            return anchor.tx_hash
        except errors.FailedPrecondition as exc:
            # A retry after a crash between verify and the database update: the chain already holds
            # exactly these hashes, so the result is the same one. Anything else stays refused.
            if exc.reason == "MODEL_ALREADY_VERIFIED" and exc.metadata.get("res_sha256") == stored.sha256:
                return "already-verified"
            raise

    # -- the Learner's side -------------------------------------------------------------------

    async def create_version(self, req: ModelVersion, chunks: AsyncIterator[bytes], *,
                             caller_org: str | None = None) -> ModelRecord:
        """Stores a version learned online: the learning record as its recipe, the artifact as its
        result, both anchored (contract deploy, then write-once verify) before the row is TRAINED."""
        req = _validate_version(req, caller_org)
        # The version belongs to req.organization_id (the learner's): it must be able to read the
        # reference dataset and the parent (its own, shared with it, or public).
        dataset = await self.datasets.get(req.dataset_id, caller_org=req.organization_id)
        if req.parent_model_id:
            parent = await self.get(req.parent_model_id, caller_org=req.organization_id)
            if parent.state != TRAINED:
                raise errors.FailedPrecondition(f"parent model {parent.model_id} is {parent.state}, not TRAINED",
                                                reason="PARENT_NOT_TRAINED")
            if req.version != parent.version + 1:
                raise errors.FailedPrecondition(
                    f"parent model {parent.model_id} is version {parent.version}; its successor must be version "
                    f"{parent.version + 1}, not {req.version}", reason="VERSION_NOT_NEXT")
        elif req.version != 1:
            raise errors.FailedPrecondition(f"a version without a parent must be version 1, not {req.version}",
                                            reason="VERSION_NOT_NEXT")
        model_id = str(uuid.uuid4())

        async def record_bytes() -> AsyncIterator[bytes]:
            yield req.learning_record

        learning = await blobs.write_hashed(self.store, f"recipes/{model_id}", record_bytes(),
                                            max_bytes=MAX_LEARNING_RECORD_BYTES, what="learning record")
        try:
            artifact = await blobs.write_hashed(self.store, f"models/{model_id}/{uuid.uuid4().hex}", chunks,
                                                max_bytes=self.max_model_bytes, what="model version")
        except BaseException:
            await learning.discard()
            raise
        return await blobs.finish(self._anchor_version(req, dataset, model_id, learning, artifact))

    async def _anchor_version(self, req: ModelVersion, dataset, model_id: str, learning: blobs.PendingObject,
                              artifact: blobs.PendingObject) -> ModelRecord:
        try:
            now = self.clock()
            rec, res = learning.stored, artifact.stored
            record = ModelRecord(
                model_id=model_id, display_name=req.display_name, organization_id=req.organization_id,
                developer_id=req.developer_id, dataset_id=dataset.dataset_id, source_kind="online",
                recipe_filename="learning-record.json", recipe_size_bytes=rec.size_bytes, recipe_md5=rec.md5,
                recipe_sha256=rec.sha256, recipe_object_key=rec.key, image_reference="", image_digest="",
                time_limit_seconds=0, memory_limit_bytes=0, state=TRAINED, failure_reason="", training_job_id="",
                framework=req.framework, input_signature=req.input_signature, size_bytes=res.size_bytes,
                res_md5=res.md5, res_sha256=res.sha256, object_key=res.key, contract_address="",
                contract_tx_hash="", verify_tx_hash="", create_time=now, update_time=now,
                parent_model_id=req.parent_model_id, version=req.version, learner_id=req.learner_id,
                observations=req.observations, observations_sha256=req.observations_sha256,
                validation_loss=req.validation_loss,
            )
            anchor = await self.ledger.deploy_model_contract(
                model_id=model_id, organization_id=record.organization_id, developer_id=record.developer_id,
                dataset_id=record.dataset_id, train_image_hash=record.train_image_hash,
                train_image_sha256=record.train_image_sha256)
            record = replace(record, contract_address=anchor.contract_address, contract_tx_hash=anchor.tx_hash)
            verify_tx = await self._verify_on_chain(record, res)
            record = replace(record, verify_tx_hash=verify_tx)
        except BaseException:
            await learning.discard()
            await artifact.discard()
            raise
        record = await self._insert(record, [learning, artifact])
        log.info("model_id=%s version=%d of learner %s parent=%s res_hash=%s", model_id, req.version,
                 req.learner_id, req.parent_model_id or "-", res.md5)
        return record


def _check_signature(signature: str) -> None:
    if signature:
        try:
            json.loads(signature)
        except ValueError:
            raise errors.InvalidArgument("input_signature is not JSON", reason="SIGNATURE_INVALID") from None


def _validate_version(req: ModelVersion, caller_org: str | None) -> ModelVersion:
    org = req.organization_id.strip() or (caller_org or "")
    missing = [name for name, value in (("organization_id", org), ("developer_id", req.developer_id),
                                        ("display_name", req.display_name), ("dataset_id", req.dataset_id),
                                        ("learner_id", req.learner_id), ("framework", req.framework))
               if not value.strip()]
    if not req.learning_record:
        missing.append("learning_record")
    if missing:
        raise errors.InvalidArgument(f"{', '.join(missing)} required in the first message",
                                     reason="METADATA_MISSING", metadata={"fields": ",".join(missing)})
    if caller_org and org != caller_org:
        raise errors.PermissionDenied(f"your token is for organization {caller_org!r}; it cannot store versions "
                                      f"for {org!r}", reason="ORGANIZATION_MISMATCH")
    if req.framework not in ONLINE_FRAMEWORKS:
        raise errors.InvalidArgument(f"framework {req.framework!r} is not one of {', '.join(ONLINE_FRAMEWORKS)}",
                                     reason="FRAMEWORK_INVALID")
    if req.version < 1:
        raise errors.InvalidArgument("version must be at least 1", reason="VERSION_INVALID")
    if req.observations < 0:
        raise errors.InvalidArgument("observations must be >= 0", reason="OBSERVATIONS_INVALID")
    sha = req.observations_sha256.strip().lower()
    if sha and not hashing.is_sha256(sha):
        raise errors.InvalidArgument("observations_sha256 must be 64 hex digits", reason="OBSERVATIONS_HASH_MALFORMED")
    if len(req.learning_record) > MAX_LEARNING_RECORD_BYTES:
        raise errors.InvalidArgument(f"learning_record is larger than {MAX_LEARNING_RECORD_BYTES} bytes",
                                     reason="LEARNING_RECORD_TOO_LARGE")
    try:
        json.loads(req.learning_record)
    except ValueError:
        raise errors.InvalidArgument("learning_record is not JSON", reason="LEARNING_RECORD_INVALID") from None
    _check_signature(req.input_signature)
    for field in ("developer_id", "display_name", "learner_id"):
        if len(getattr(req, field)) > MAX_TEXT:
            raise errors.InvalidArgument(f"{field} is longer than {MAX_TEXT} characters", reason="FIELD_TOO_LONG")
    if req.parent_model_id:
        ids.parse_id(req.parent_model_id, "parent_model_id")
    return replace(req, organization_id=org, developer_id=req.developer_id.strip(),
                   display_name=req.display_name.strip(), observations_sha256=sha,
                   parent_model_id=req.parent_model_id.strip())
