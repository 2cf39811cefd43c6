"""The Translator's core: TranslateModel, GetTranslation, ListTranslations, DownloadTranslation.

A translation runs in its own work directory: the source model and its dataset are downloaded
from the Registry and checked against the SHA-256 it records, the conversion worker runs in the
ML environment, and then, in this order, the ONNX file goes to object storage (hashed while it
is written), its Translation contract is deployed on the ledger, and its row is inserted. A step
that fails removes the object, so nothing is half-registered: a row exists only for a translation
whose bytes are stored and whose contract is on the chain. (A contract deployed before a failed
insert stays on the chain, immutable and unreferenced; nothing lists it.)

A parity failure is not a conversion failure: the translation is registered with passed=false,
which is the honest answer, and its figures are on the ledger for anyone to judge.

Access (docs/security.md): a translation belongs to its source model's owner and is visible to
whoever may read that model. TranslateModel reads the model through the Registry on behalf of the
caller, so a stranger is told the model does not exist and an organization the model is shared
with may translate it. Get and Download ask the Registry again at every call (nothing is cached,
so a revoked grant takes effect at once) unless the caller owns the translation; a caller that may
not read the model is told the translation does not exist, exactly as for an unknown id.
ListTranslations with a model_id lists the translations of a model the caller may read; without
one, the translations the caller's organization owns. A caller of None is a mesh server: trusted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from servers.common import blobs, errors, ids
from servers.common.access import Access, access
from servers.common.recovery import Inconsistency, ReconcileReport, check_anchor, check_bytes, read_anchor
from servers.common.storage import ObjectStore
from servers.translator.domain.ports import (
    ContractRequest,
    Ledger,
    Registry,
    TranslationRepository,
    WorkerOutcome,
    WorkerRequest,
    WorkerRunner,
)
from servers.translator.domain.translations import (
    Page,
    Translation,
    converter_text,
    decimal_text,
    object_key,
    parity_from_report,
)

log = logging.getLogger("mlmesh.translator")

REPORT_SCHEMA = "mlmesh.translator.report/v1"
MODEL_SUFFIX = {"pytorch": ".pt", "sklearn": ".pkl", "tensorflow": ".keras"}
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True)
class CoreOptions:
    work_root: Path
    default_opset: int = 18
    max_opset: int = 23
    parity_rows: str = "-256:"
    max_concurrent: int = 1
    max_model_bytes: int = 32 << 30
    max_dataset_bytes: int = 64 << 30
    read_chunk_bytes: int = 1 << 20
    keep_work_dirs: bool = False
    worker_time_limit_seconds: float = 600.0


class TranslatorCore:
    def __init__(self, registry: Registry, ledger: Ledger, repo: TranslationRepository, store: ObjectStore,
                 worker: WorkerRunner, options: CoreOptions):
        self.registry, self.ledger, self.repo, self.store, self.worker = registry, ledger, repo, store, worker
        self.options = options
        self._slots = asyncio.Semaphore(options.max_concurrent)

    # -- TranslateModel ------------------------------------------------------------------------

    async def translate(self, model_id: str, opset: int = 0, caller_org: str | None = None) -> Translation:
        model_id = ids.parse_id(model_id, "model_id")
        if opset < 0 or opset > self.options.max_opset or 0 < opset < 7:
            raise errors.InvalidArgument(
                f"opset {opset} is out of range: 0 (the default, {self.options.default_opset}) or 7.."
                f"{self.options.max_opset}", reason="OPSET_INVALID")
        opset = opset or self.options.default_opset

        model = await self.registry.get_model(model_id, on_behalf_of=caller_org)  # NotFound unless readable
        if model.state != "TRAINED":
            raise errors.FailedPrecondition(
                f"Model {model_id} is {model.state}, not TRAINED: only a trained model can be translated; "
                "try again once its training job has finished", reason="MODEL_NOT_TRAINED",
                metadata={"model_id": model_id, "state": model.state})
        if not model.res_sha256:
            raise errors.FailedPrecondition(f"Model {model_id} is TRAINED but has no result hash",
                                            reason="MODEL_NOT_TRAINED")
        # The parity rows come from the model's dataset, read for the model's owner (who trained on
        # it; a grantee of the model need not be one of the dataset). Only figures leave the worker.
        owner = model.organization_id or None
        dataset = await self.registry.get_dataset(model.dataset_id, on_behalf_of=owner)

        translation_id = str(uuid.uuid4())
        work = self.options.work_root / translation_id
        async with self._slots:
            log.info("translating model %s (%s) as %s", model_id, model.framework, translation_id)
            try:
                await asyncio.to_thread(work.mkdir, parents=True, exist_ok=False)
                return await self._translate_in(work, translation_id, model, dataset, opset, caller_org)
            finally:
                if not self.options.keep_work_dirs:
                    await asyncio.to_thread(shutil.rmtree, work, ignore_errors=True)

    async def _translate_in(self, work: Path, translation_id: str, model, dataset, opset: int,
                            caller_org: str | None) -> Translation:
        model_path = work / f"model{MODEL_SUFFIX.get(model.framework, '.bin')}"
        dataset_path = work / ("dataset" + _dataset_suffix(dataset.filename, dataset.content_type))
        await blobs.download_to_file(
            self.registry.download_model(model.model_id, on_behalf_of=caller_org), model_path, sha256=model.res_sha256,
            size_bytes=model.size_bytes, max_bytes=self.options.max_model_bytes,
            what=f"the trained artifact of model {model.model_id}", limit_setting="MLMESH_TRANSLATOR_MAX_MODEL_BYTES")
        await blobs.download_to_file(
            self.registry.download_dataset(dataset.dataset_id, on_behalf_of=model.organization_id or None),
            dataset_path, sha256=dataset.sha256,
            size_bytes=dataset.size_bytes, max_bytes=self.options.max_dataset_bytes,
            what=f"dataset {dataset.dataset_id}", limit_setting="MLMESH_TRANSLATOR_MAX_DATASET_BYTES")

        onnx_path, report_path = work / "model.onnx", work / "report.json"
        outcome = await self.worker.run(WorkerRequest(
            framework=model.framework, model_path=model_path, signature=model.input_signature or "{}",
            dataset_path=dataset_path, out_path=onnx_path, report_path=report_path,
            rows=self.options.parity_rows, opset=opset))
        report = self._accepted_report(model.model_id, outcome)
        if not await asyncio.to_thread(onnx_path.is_file):
            raise errors.FailedPrecondition(
                f"the conversion worker reported success for model {model.model_id} but wrote no ONNX file",
                reason="WORKER_FAILED")

        parity = parity_from_report(report)
        figures = (parity.max_abs_diff, parity.max_rel_diff, parity.atol, parity.rtol)
        if not all(math.isfinite(v) and v >= 0 for v in figures):
            raise errors.FailedPrecondition(
                f"the parity figures of model {model.model_id} are not finite numbers ({figures}): the source or the "
                "ONNX model produced NaN or infinity on the parity batch, so nothing can be anchored",
                reason="PARITY_NOT_FINITE", metadata={"model_id": model.model_id})
        converter = converter_text(report)
        actual_opset = int(report.get("opset") or opset)
        key = object_key(translation_id)
        pending = await blobs.write_file(self.store, key, onnx_path, what=f"the ONNX file of model {model.model_id}")
        stored = pending.stored
        try:
            reported = (report.get("onnx") or {}).get("sha256")
            if reported and reported != stored.sha256:
                raise errors.DataLoss(
                    f"the ONNX file changed between the worker's report (sha256 {reported}) and storage (sha256 "
                    f"{stored.sha256})", reason="HASH_MISMATCH")
            address, tx_hash = await self._deploy(ContractRequest(
                translation_id=translation_id, model_id=model.model_id, model_contract=model.contract_address,
                source_sha256=model.res_sha256, onnx_md5=stored.md5, onnx_sha256=stored.sha256,
                converter=converter, opset=actual_opset,
                max_abs_diff=decimal_text(parity.max_abs_diff), max_rel_diff=decimal_text(parity.max_rel_diff),
                atol=decimal_text(parity.atol), rtol=decimal_text(parity.rtol), parity_passed=parity.passed))
            translation = Translation(
                translation_id=translation_id, model_id=model.model_id, framework=model.framework,
                source_sha256=model.res_sha256, converter=converter, opset=actual_opset,
                size_bytes=stored.size_bytes, md5=stored.md5, sha256=stored.sha256, parity=parity,
                report_json=json.dumps(_public_report(report), sort_keys=False), object_key=key,
                contract_address=address, contract_tx_hash=tx_hash,
                create_time=dt.datetime.now(dt.UTC), organization_id=model.organization_id)
        except BaseException:
            await pending.discard()
            raise

        async def insert() -> Translation:
            await self.repo.insert(translation)
            return translation

        async def inserted() -> Translation | None:
            try:
                found = await self.repo.get(translation_id)
            except errors.NotFound:
                return None
            return found if found.object_key == key else None

        # a committed row keeps its ONNX file even if the caller hangs up or the commit's answer is lost
        translation = await blobs.finish(blobs.record([pending], insert, recorded=inserted,
                                                      what=f"translation {translation_id}"))
        log.info("translation %s of model %s: parity %s (max_abs_diff %s), contract %s", translation_id,
                 model.model_id, "passed" if parity.passed else "FAILED", parity.max_abs_diff, address)
        return translation

    async def _deploy(self, request: ContractRequest) -> tuple[str, str]:
        """Deploys the Translation contract. The client's request was valid, so a contract the Ledger
        refuses (e.g. the Model contract is not verified, or its res_sha256 differs) is a precondition
        of the source model that does not hold, not a bad argument."""
        try:
            return await self.ledger.deploy_translation_contract(request)
        except (errors.InvalidArgument, errors.NotFound) as exc:
            raise errors.FailedPrecondition(
                f"the ledger refused the Translation contract of model {request.model_id}: {exc.message}",
                reason=exc.reason, metadata=exc.metadata) from None

    @staticmethod
    def _accepted_report(model_id: str, outcome: WorkerOutcome) -> dict:
        """The worker's report if it converted the model; otherwise the domain error to answer with."""
        if outcome.timed_out:
            raise errors.FailedPrecondition(
                f"translating model {model_id} did not finish within the Translator's time limit "
                f"({outcome.reason})", reason="TRANSLATION_TIMEOUT", metadata={"model_id": model_id})
        if outcome.returncode == 2:
            raise errors.FailedPrecondition(
                f"model {model_id} cannot be translated: {outcome.reason or 'the conversion worker refused it'}",
                reason="MODEL_UNCONVERTIBLE", metadata={"model_id": model_id})
        if outcome.returncode != 0:
            detail = outcome.reason or outcome.stderr_tail.strip().splitlines()[-1:] or ["no error message"]
            detail = detail if isinstance(detail, str) else detail[0]
            raise errors.FailedPrecondition(
                f"the conversion worker failed on model {model_id} (exit status {outcome.returncode}): {detail}",
                reason="WORKER_FAILED", metadata={"model_id": model_id})
        report = outcome.report
        if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA or not report.get("ok"):
            raise errors.FailedPrecondition(
                f"the conversion worker ended without a valid {REPORT_SCHEMA} report for model {model_id}",
                reason="WORKER_FAILED", metadata={"model_id": model_id})
        return report

    # -- reads -----------------------------------------------------------------------------------

    async def get(self, translation_id: str, caller_org: str | None = None) -> Translation:
        """The translation, if the caller may read its model; NotFound otherwise (as for an unknown id)."""
        t = await self.repo.get(ids.parse_id(translation_id, "translation_id"))
        if access(caller_org, t.organization_id) is Access.OWNER:
            return t
        try:  # asked at every call: a grant revoked a moment ago counts now
            await self.registry.get_model(t.model_id, on_behalf_of=caller_org)
        except errors.NotFound:
            raise errors.NotFound(f"translation {t.translation_id} does not exist", reason="TRANSLATION_NOT_FOUND",
                                  metadata={"translation_id": t.translation_id}) from None
        return t

    async def list(self, *, page_size: int = 0, page_token: str = "", model_id: str = "",
                   caller_org: str | None = None) -> Page:
        """With `model_id`: the model's translations, if the caller may read the model (the Registry's
        NotFound otherwise). Without: the translations the caller's organization owns (every one for
        a mesh server) — not those of models merely shared with it; list those by model_id."""
        if page_size < 0:
            raise errors.InvalidArgument("page_size must be >= 0", reason="PAGE_SIZE_INVALID")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if model_id:
            model_filter = ids.parse_id(model_id, "model_id")
            if caller_org is not None:
                await self.registry.get_model(model_filter, on_behalf_of=caller_org)  # NotFound unless readable
            return await self.repo.list(page_size=size, page_token=page_token, model_id=model_filter,
                                        organization_id=None)
        return await self.repo.list(page_size=size, page_token=page_token, model_id="", organization_id=caller_org)

    async def download(self, translation_id: str, offset: int = 0,
                       caller_org: str | None = None) -> tuple[Translation, AsyncIterator[bytes]]:
        """Checks the stored bytes against the Translation contract's onnx_sha256, then returns the
        translation and its bytes from `offset`. Every error is raised before the first byte."""
        t = await self.get(translation_id, caller_org)
        what = f"translation {t.translation_id}"
        blobs.check_offset(offset, t.size_bytes, what)
        contract = await read_anchor(self.ledger.get_translation_contract, "translation", t.translation_id,
                                     t.contract_address)
        if contract.onnx_sha256 != t.sha256 or contract.translation_id != t.translation_id:
            raise errors.DataLoss(
                f"{what}: the database (sha256 {t.sha256}) and its contract {t.contract_address} (translation "
                f"{contract.translation_id}, sha256 {contract.onnx_sha256}) disagree; refusing to serve it",
                reason="LEDGER_MISMATCH")
        return t, await blobs.open_verified(self.store, t.object_key, offset=offset, sha256=contract.onnx_sha256,
                                            size_bytes=t.size_bytes, what=what,
                                            chunk_bytes=self.options.read_chunk_bytes)

    # -- recovery --------------------------------------------------------------------------------

    async def reconcile(self) -> ReconcileReport:
        """Every translation against the chain (its Translation contract) and the store (its ONNX
        bytes): what is missing (servers.common.recovery; run at start)."""
        found: list[Inconsistency] = []
        checked, token = 0, ""
        while True:
            page = await self.repo.list(page_size=MAX_PAGE_SIZE, page_token=token, model_id="", organization_id=None)
            for t in page.items:
                checked += 1
                _, missing = await check_anchor(self.ledger.get_translation_contract, "translation",
                                                 t.translation_id, t.contract_address)
                found += missing
                found += await check_bytes(self.store, "translation", t.translation_id, t.object_key, t.size_bytes)
            token = page.next_page_token
            if not token:
                return ReconcileReport({"translation": checked}, found)


def _dataset_suffix(filename: str, content_type: str) -> str:
    """The worker reads a CSV parity batch only from a file it recognises as CSV."""
    lower = (filename or "").lower()
    for suffix in (".csv", ".tsv", ".txt", ".npy", ".npz", ".json"):
        if lower.endswith(suffix):
            return suffix
    if "csv" in (content_type or "").lower():
        return ".csv"
    return ".bin"


def _public_report(report: dict) -> dict:
    """The worker's report without the Translator's local paths (they name a removed work dir)."""
    doc = json.loads(json.dumps(report))
    for part in ("source", "onnx"):
        if isinstance(doc.get(part), dict):
            doc[part].pop("path", None)
    return doc
