"""The Learner's core: creates, loads, finds and deletes learners, and saves their versions to the
Registry. No grpc here except through the Registry adapter."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from servers.common import errors
from servers.learner.adapters.registry_client import RegistryClient, VersionToSave
from servers.learner.domain.live import Event, LiveLearner, SavedVersion, learning_record_bytes
from servers.learner.domain.records import (
    FAILED, READY, STARTING_FRAMEWORKS, LearnerRecord, Page, Spec, validate_spec,
)

log = logging.getLogger("mlmesh.learner")
MAX_TEXT = 256


@dataclass(frozen=True)
class CoreOptions:
    work_dir: Path
    max_learners: int
    max_reference_rows: int
    running_loss_alpha: float
    max_download_bytes: int = 8 << 30


class LearnerCore:
    def __init__(self, db, registry: RegistryClient, options: CoreOptions):
        self.db, self.registry, self.options = db, registry, options
        self.live: dict[str, LiveLearner] = {}
        self.failed: dict[str, LearnerRecord] = {}
        self._create_lock = asyncio.Lock()

    # -- start -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Loads every stored learner from its latest saved version (or its starting model)."""
        for record in await self.db.all():
            try:
                self.live[record.learner_id] = await self._load(record)
                if record.state == FAILED:
                    await self.db.set_state(record.learner_id, READY)
                log.info("learner_id=%s name=%s resumed from %s (version %d, %d observations)", record.learner_id,
                         record.display_name, record.current_model_id or record.spec.starting_model_id or "a fresh "
                         "model", record.version, record.observations_learned)
            except Exception as exc:  # one broken learner must not keep the others down
                reason = exc.message if isinstance(exc, errors.MeshError) else f"{type(exc).__name__}: {exc}"
                log.error("learner_id=%s cannot be loaded: %s", record.learner_id, reason)
                await self.db.set_state(record.learner_id, FAILED, reason)
                self.failed[record.learner_id] = replace(record, state=FAILED, failure_reason=reason)

    async def close(self) -> None:
        for live in self.live.values():
            live.close()
        self.live.clear()

    # -- create ----------------------------------------------------------------------------------

    async def create(self, *, display_name: str, organization_id: str, developer_id: str, spec: Spec,
                     caller_org: str | None) -> LearnerRecord:
        org = organization_id.strip() or (caller_org or "")
        if caller_org and org != caller_org:
            raise errors.PermissionDenied(f"your token is for organization {caller_org!r}; it cannot create "
                                          f"learners for {org!r}", reason="ORGANIZATION_MISMATCH")
        missing = [n for n, v in (("display_name", display_name), ("organization_id", org),
                                  ("developer_id", developer_id)) if not v.strip()]
        if missing:
            raise errors.InvalidArgument(f"learner.{', learner.'.join(missing)} required", reason="FIELD_MISSING")
        for name, value in (("display_name", display_name), ("developer_id", developer_id)):
            if len(value) > MAX_TEXT:
                raise errors.InvalidArgument(f"learner.{name} is longer than {MAX_TEXT} characters",
                                             reason="FIELD_TOO_LONG")
        spec = validate_spec(spec)
        async with self._create_lock:
            if len(self.live) >= self.options.max_learners:
                raise errors.ResourceExhausted(
                    f"this Learner holds {len(self.live)} learners, its limit (MLMESH_LEARNER_MAX_LEARNERS); delete "
                    "one or raise the limit", reason="TOO_MANY_LEARNERS")
            if any(live.record.display_name == display_name.strip() for live in self.live.values()):
                raise errors.AlreadyExists(f"a learner named {display_name.strip()!r} exists already",
                                           reason="LEARNER_NAME_TAKEN")
            record = LearnerRecord(
                learner_id=str(uuid.uuid4()), display_name=display_name.strip(), organization_id=org,
                developer_id=developer_id.strip(), spec=spec, state=READY, failure_reason="", current_model_id="",
                version=0, observations_learned=0, saved_validation_loss=None, transformer_state={},
                create_time=dt.datetime.now(dt.UTC), save_time=None)
            live = await self._load(record, creating=True)
            try:
                await self.db.insert(record)
            except BaseException:
                live.close()
                shutil.rmtree(self._dir(record.learner_id), ignore_errors=True)
                raise
            self.live[record.learner_id] = live
        log.info("learner_id=%s name=%s created: %s/%s/%s", record.learner_id, record.display_name, spec.backend,
                 spec.transformer, spec.task)
        return record

    def _dir(self, learner_id: str) -> Path:
        return self.options.work_dir / learner_id

    async def _load(self, record: LearnerRecord, *, creating: bool = False) -> LiveLearner:
        from servers.learner.ml.backends import load_backend, make_backend
        from servers.learner.ml.transformers import make_transformer
        from servers.learner.monitoring import metrics
        from servers.learner.monitoring.drift import Monitor, MonitoringPolicy

        spec = record.spec
        work = self._dir(record.learner_id)
        work.mkdir(parents=True, exist_ok=True)
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"learner-{record.learner_id[:8]}")
        loop = asyncio.get_running_loop()
        try:
            transformer = await loop.run_in_executor(executor, make_transformer, spec.transformer, spec.task,
                                                     spec.transformer_params)
            if record.transformer_state:
                transformer.load_state(record.transformer_state)
            reference_csv = work / "reference.csv"
            if not reference_csv.exists():
                dataset = await self.registry.get_dataset(spec.reference_dataset_id)  # NotFound names it
                await self.registry.download_dataset(dataset, reference_csv, max_bytes=self.options.max_download_bytes)
            reference = await loop.run_in_executor(executor, transformer.reference_rows, reference_csv,
                                                   self.options.max_reference_rows)
            m = spec.monitoring
            monitor = Monitor(record.learner_id, transformer.monitor_columns, reference, MonitoringPolicy(
                window=m.window, every=m.every, drift_share=m.drift_share, stattest_threshold=m.stattest_threshold), sink=metrics.SINK)
            model_id = record.current_model_id or spec.starting_model_id
            if model_id:
                path = await self._fetch_model(model_id, spec, work, check_framework=creating or
                                               not record.current_model_id)
                backend = await loop.run_in_executor(
                    executor, load_backend, spec.backend, path, spec.task, spec.backend_params,
                    transformer.input_shape, transformer.n_classes)
            else:
                backend = await loop.run_in_executor(
                    executor, make_backend, spec.backend, spec.task, spec.backend_params, transformer.input_shape,
                    transformer.n_classes)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            if creating:
                shutil.rmtree(work, ignore_errors=True)
            raise
        return LiveLearner(record, backend, transformer, monitor, executor, work_dir=work,
                           running_loss_alpha=self.options.running_loss_alpha)

    async def _fetch_model(self, model_id: str, spec: Spec, work: Path, *, check_framework: bool) -> Path:
        model = await self.registry.get_model(model_id)
        from mlmesh.registry.v1 import model_pb2

        if model.state != model_pb2.Model.STATE_TRAINED:
            raise errors.FailedPrecondition(f"model {model_id} is not trained yet; a learner starts from a TRAINED "
                                            "model", reason="STARTING_MODEL_NOT_TRAINED")
        wanted = STARTING_FRAMEWORKS[spec.backend]
        if check_framework and model.framework != wanted:
            raise errors.FailedPrecondition(
                f"model {model_id} is a {model.framework or 'untyped'} model; the {spec.backend} backend continues "
                f"{wanted} models only", reason="STARTING_MODEL_FRAMEWORK")
        path = work / f"model-{model_id}"
        if not path.exists():
            await self.registry.download_model(model, path, max_bytes=self.options.max_download_bytes)
        return path

    # -- read / delete ---------------------------------------------------------------------------

    def get_live(self, learner_id: str) -> LiveLearner:
        learner_id = _canonical(learner_id)
        live = self.live.get(learner_id)
        if live is not None:
            return live
        if learner_id in self.failed:
            raise errors.FailedPrecondition(
                f"learner {learner_id} failed to load: {self.failed[learner_id].failure_reason}",
                reason="LEARNER_FAILED")
        raise errors.NotFound(f"learner {learner_id} does not exist", reason="LEARNER_NOT_FOUND",
                              metadata={"learner_id": learner_id})

    def by_name(self, name: str) -> LiveLearner:
        for live in self.live.values():
            if name in (live.record.display_name, live.learner_id):
                return live
        raise errors.NotFound(f"no learner is named {name!r} (model names are learner display names or ids)",
                              reason="MODEL_NOT_FOUND")

    def snapshot(self, learner_id: str) -> tuple[LearnerRecord, LiveLearner | None]:
        learner_id = _canonical(learner_id)
        if learner_id in self.failed:
            return self.failed[learner_id], None
        live = self.get_live(learner_id)
        return live.record, live

    async def list(self, *, page_size: int, page_token: str, organization_id: str) -> Page:
        if page_size < 0:
            raise errors.InvalidArgument("page_size must be >= 0", reason="PAGE_SIZE_INVALID")
        return await self.db.list(page_size=min(page_size or 50, 500), page_token=page_token,
                                  organization_id=organization_id.strip())

    def live_or_none(self, learner_id: str) -> LiveLearner | None:
        return self.live.get(learner_id)

    async def delete(self, learner_id: str) -> None:
        learner_id = _canonical(learner_id)
        await self.db.delete(learner_id)  # NotFound when unknown
        live = self.live.pop(learner_id, None)
        self.failed.pop(learner_id, None)
        if live is not None:
            live.close()
        from servers.learner.monitoring import metrics

        metrics.forget(learner_id)
        shutil.rmtree(self._dir(learner_id), ignore_errors=True)
        log.info("learner_id=%s deleted", learner_id)

    # -- saving ----------------------------------------------------------------------------------

    async def save(self, live: LiveLearner) -> SavedVersion | None:
        """Stores the live model as the next version; called under the learner's lock. A Registry that
        cannot take it now is logged and retried at the next step: learning goes on."""
        record = live.record
        path, transformer_state, learning = await live.run(live.snapshot_sync)
        version = record.version + 1
        loss = float(learning["validation_loss"])
        try:
            model = await self.registry.create_version(VersionToSave(
                organization_id=record.organization_id, developer_id=f"learner:{record.learner_id}",
                display_name=f"{record.display_name} v{version}", dataset_id=record.spec.reference_dataset_id,
                parent_model_id=record.current_model_id or record.spec.starting_model_id, version=version,
                framework=live.backend.framework, input_signature=_json(live.backend.input_signature()),
                learner_id=record.learner_id, observations=learning["observations"],
                observations_sha256=learning["observations_sha256"], validation_loss=loss,
                learning_record=learning_record_bytes(learning)), path)
            when = dt.datetime.now(dt.UTC)
            await self.db.record_save(record.learner_id, current_model_id=model.model_id, version=version,
                                      observations_learned=live.counters.observations_learned,
                                      saved_validation_loss=loss, transformer_state=transformer_state,
                                      save_time=when)
        except errors.MeshError as exc:
            log.warning("learner_id=%s: saving version %d failed, will retry: %s", record.learner_id, version,
                        exc.message)
            path.unlink(missing_ok=True)
            return None
        # Keep the saved file as the one a restart would download (saves a Registry round trip).
        old_current = live.work_dir / f"model-{record.current_model_id}" if record.current_model_id else None
        path.replace(live.work_dir / f"model-{model.model_id}")
        if old_current is not None:
            old_current.unlink(missing_ok=True)
        saved = live.saved(model.model_id, version, model.res_sha256, loss, when)
        from servers.learner.monitoring import metrics

        metrics.version_saved(record.learner_id)
        live.emit(Event(record.learner_id, "version_saved", when, saved=saved))
        log.info("learner_id=%s saved version %d as model %s (validation loss %.5g)", record.learner_id, version,
                 model.model_id, loss)
        return saved


def _canonical(learner_id: str) -> str:
    if not learner_id:
        raise errors.InvalidArgument("learner_id is required", reason="LEARNER_ID_MISSING")
    try:
        return str(uuid.UUID(learner_id))
    except ValueError:
        raise errors.InvalidArgument(f"learner_id {learner_id[:80]!r} is not a UUID",
                                     reason="LEARNER_ID_MALFORMED") from None


def _json(value: Any) -> str:
    return json.dumps(value)
