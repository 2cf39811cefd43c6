"""The Learner's core: the one data plane both fronts call, LearnerService (api/servicer.py) and
the Open Inference Protocol (api/oip.py), the way MLServer's DataPlane serves its REST and gRPC
fronts. It creates, loads, finds and deletes learners, learns, predicts, explains, reports
monitoring and streams events, and saves versions to the Registry. It owns what both fronts
share: parsing learner ids, checking inputs, the access check, and the Prometheus counts
(a prediction is counted whichever front answered it). Every entry point takes the caller's
organization (None for a mesh server calling for itself).

Access (docs/security.md, servers.common.access): a learner belongs to its organization and is
never shared; anyone else is told it does not exist (NotFound, the answer for an unknown id; the
Open Inference Protocol's ModelReady answers ready=false). The starting model and the reference
dataset are fetched on behalf of the learner's organization, so it may start from a model or
dataset shared with it and no other; its saved versions belong to it. No grpc, no generated code, no
adapter here: the Registry and the learner store are the ports of `domain/ports.py`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import pickle
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

from servers.common import errors
from servers.common.access import Access, access, not_found
from servers.common.ids import parse_id
from servers.learner.domain.live import (
    Event, LearnStep, LiveLearner, Prediction, PredictBatching, SavedVersion, learning_record_bytes,
)
from servers.learner.domain.ports import MODEL_TRAINED, LearnerRepository, ModelInfo, Registry, VersionToSave
from servers.learner.domain.records import (
    FAILED, READY, STARTING_FRAMEWORKS, LearnerRecord, Page, Spec, validate_spec,
)
from servers.learner.ml.base import Obs
from servers.learner.monitoring import metrics

log = logging.getLogger("mlmesh.learner")
MAX_TEXT = 256
# A Learn stream is read this many messages ahead of what it has learned; at most MAX_GROUP of the
# messages that wait are journaled in one commit.
READ_AHEAD = 32
MAX_GROUP = 32
_END = object()


@dataclass(frozen=True)
class CoreOptions:
    work_dir: Path
    max_learners: int
    max_reference_rows: int
    running_loss_alpha: float
    max_download_bytes: int = 8 << 30
    batching: PredictBatching = PredictBatching()
    # Where drift is computed: None in the learner's own worker thread, else a function with
    # `monitoring.drift.data_drift`'s signature (main.py: a child process, monitoring/offload.py).
    compute_drift: Callable[..., Any] | None = None


class LearnMessage(NamedTuple):
    """One Learn message: the learner (required in the first message only), observations, flush."""

    learner_id: str
    observations: list[Obs]
    flush: bool


class PredictMessage(NamedTuple):
    learner_id: str
    inputs: list[Obs]
    sensor_id: str


@dataclass(frozen=True)
class Explained:
    result: Any  # ml.explain.Explanation
    inputs: Any  # the model input explained, flattened (numpy)
    feature_names: list[str]


LearnerView = tuple[LearnerRecord, LiveLearner | None]  # a stored learner, and its live state when loaded


class LearnerCore:
    def __init__(self, db: LearnerRepository, registry: Registry, options: CoreOptions):
        self.db, self.registry, self.options = db, registry, options
        self.live: dict[str, LiveLearner] = {}
        # (organization, display name) -> learner id of the live learners: the OIP's model names,
        # looked up on every inference call (names are unique within an organization and fixed).
        self._names: dict[tuple[str, str], str] = {}
        self.failed: dict[str, LearnerRecord] = {}
        self._create_lock = asyncio.Lock()
        self._prediction_counters: dict[str, Any] = {}

    # -- start -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Loads every stored learner from its latest saved version (or its starting model)."""
        for record in await self.db.all():
            try:
                live = self._add_live(await self._load(record))
                await self._replay(live)
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
                     caller_org: str | None) -> LearnerView:
        org = organization_id.strip() or (caller_org or "")
        if caller_org and org != caller_org:
            raise errors.PermissionDenied(f"your token is for organization {caller_org!r}; it cannot create "
                                          f"learners for {org!r}", reason="ORGANIZATION_MISMATCH")
        missing = [n for n, v in (("display_name", display_name), ("organization_id", org),
                                  ("developer_id", developer_id)) if not v.strip()]
        if missing:
            raise errors.InvalidArgument(f"learner.{', learner.'.join(missing)} required", reason="FIELD_MISSING")
        for name, value in (("display_name", display_name), ("organization_id", org), ("developer_id", developer_id)):
            if len(value) > MAX_TEXT:
                raise errors.InvalidArgument(f"learner.{name} is longer than {MAX_TEXT} characters",
                                             reason="FIELD_TOO_LONG")
        spec = validate_spec(spec)
        async with self._create_lock:
            if len(self.live) >= self.options.max_learners:
                raise errors.ResourceExhausted(
                    f"this Learner holds {len(self.live)} learners, its limit (MLMESH_LEARNER_MAX_LEARNERS); delete "
                    "one or raise the limit", reason="TOO_MANY_LEARNERS")
            # Names are unique within an organization (they are its OIP model names); another
            # organization's names are none of the caller's business, not even that they exist.
            if (org, display_name.strip()) in self._names:
                raise errors.AlreadyExists(f"your organization has a learner named {display_name.strip()!r} "
                                           "already", reason="LEARNER_NAME_TAKEN")
            record = LearnerRecord(
                learner_id=str(uuid.uuid4()), display_name=display_name.strip(), organization_id=org,
                developer_id=developer_id.strip(), spec=spec, state=READY, failure_reason="", current_model_id="",
                version=0, observations_learned=0, saved_validation_loss=None, transformer_state={},
                create_time=dt.datetime.now(dt.UTC), save_time=None)
            live = await self._load(record, creating=True)
            record = live.record  # with the starting model's version, which its own versions continue
            try:
                await self.db.insert(record)
            except BaseException:
                live.close()
                shutil.rmtree(self._dir(record.learner_id), ignore_errors=True)
                raise
            self._add_live(live)
        log.info("learner_id=%s name=%s created: %s/%s/%s", record.learner_id, record.display_name, spec.backend,
                 spec.transformer, spec.task)
        return record, live

    def _dir(self, learner_id: str) -> Path:
        return self.options.work_dir / learner_id

    async def _load(self, record: LearnerRecord, *, creating: bool = False) -> LiveLearner:
        from servers.learner.ml.backends import load_backend, make_backend
        from servers.learner.ml.transformers import make_transformer
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
            org = record.organization_id or None  # the Registry applies the learner's organization's access
            if not reference_csv.exists():
                dataset = await self.registry.get_dataset(spec.reference_dataset_id, on_behalf_of=org)  # NotFound names it
                await self.registry.download_dataset(dataset, reference_csv, max_bytes=self.options.max_download_bytes,
                                                     on_behalf_of=org)
            reference = await loop.run_in_executor(executor, transformer.reference_rows, reference_csv,
                                                   self.options.max_reference_rows)
            m = spec.monitoring
            monitor = Monitor(record.learner_id, transformer.monitor_columns, reference, MonitoringPolicy(
                window=m.window, every=m.every, drift_share=m.drift_share, stattest_threshold=m.stattest_threshold),
                sink=metrics.SINK, compute_drift=self.options.compute_drift)
            model_id = record.current_model_id or spec.starting_model_id
            if model_id:
                path, model = await self._fetch_model(model_id, spec, work, org, check_framework=creating or
                                                      not record.current_model_id)
                if creating:
                    # The first version it saves is the starting model's successor (the Registry's rule).
                    record = replace(record, version=model.version)
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
                           running_loss_alpha=self.options.running_loss_alpha, batching=self.options.batching)

    async def _fetch_model(self, model_id: str, spec: Spec, work: Path, org: str | None, *,
                           check_framework: bool) -> tuple[Path, ModelInfo]:
        model = await self.registry.get_model(model_id, on_behalf_of=org)  # NotFound unless org may read it
        if model.state != MODEL_TRAINED:
            raise errors.FailedPrecondition(f"model {model_id} is not trained yet; a learner starts from a TRAINED "
                                            "model", reason="STARTING_MODEL_NOT_TRAINED")
        wanted = STARTING_FRAMEWORKS[spec.backend]
        if check_framework and model.framework != wanted:
            raise errors.FailedPrecondition(
                f"model {model_id} is a {model.framework or 'untyped'} model; the {spec.backend} backend continues "
                f"{wanted} models only", reason="STARTING_MODEL_FRAMEWORK")
        path = work / f"model-{model_id}"
        if not path.exists():
            await self.registry.download_model(model, path, max_bytes=self.options.max_download_bytes,
                                               on_behalf_of=org)
        return path, model

    # -- read / delete ---------------------------------------------------------------------------

    def learner(self, learner_id: str, caller_org: str | None) -> LiveLearner:
        """The loaded learner `learner_id`, if the caller's organization owns it."""
        learner_id = parse_id(learner_id, "learner_id")
        record = self.live[learner_id].record if learner_id in self.live else self.failed.get(learner_id)
        if record is not None:
            _authorize(record, caller_org)  # before anything else is said about it, even that it failed
        return self._live(learner_id)

    def _live(self, learner_id: str) -> LiveLearner:
        live = self.live.get(learner_id)
        if live is not None:
            return live
        if learner_id in self.failed:
            raise errors.FailedPrecondition(
                f"learner {learner_id} failed to load: {self.failed[learner_id].failure_reason}",
                reason="LEARNER_FAILED")
        raise errors.NotFound(f"learner {learner_id} does not exist", reason="LEARNER_NOT_FOUND",
                              metadata={"learner_id": learner_id})

    def get(self, learner_id: str, caller_org: str | None) -> LearnerView:
        """A learner as stored, with its live state when it is loaded (a learner that failed to load
        is answered too, without live state)."""
        learner_id = parse_id(learner_id, "learner_id")
        failed = self.failed.get(learner_id)
        if failed is not None:
            _authorize(failed, caller_org)
            return failed, None
        live = self.learner(learner_id, caller_org)
        return live.record, live

    async def list(self, *, page_size: int, page_token: str, organization_id: str,
                   caller_org: str | None) -> Page:
        """A page of LearnerViews: the caller's organization's learners (filtered in SQL). Learners are
        never shared, so a filter naming another organization lists nothing. A mesh server (no
        caller organization) lists `organization_id`'s, or every learner when it is empty."""
        if page_size < 0:
            raise errors.InvalidArgument("page_size must be >= 0", reason="PAGE_SIZE_INVALID")
        organization_id = organization_id.strip()
        if len(organization_id) > MAX_TEXT:
            raise errors.InvalidArgument(f"organization_id is longer than {MAX_TEXT} characters",
                                         reason="FIELD_TOO_LONG")
        if caller_org is not None and organization_id not in ("", caller_org):
            return Page(items=[], next_page_token="")
        page = await self.db.list(page_size=min(page_size or 50, 500), page_token=page_token,
                                  organization_id=caller_org if caller_org is not None else organization_id)
        return Page(items=[(r, self.live.get(r.learner_id)) for r in page.items],
                    next_page_token=page.next_page_token)

    async def delete(self, learner_id: str, caller_org: str | None) -> None:
        learner_id = parse_id(learner_id, "learner_id")
        live = self.live.get(learner_id)
        record = live.record if live is not None else self.failed.get(learner_id)
        if record is not None:
            _authorize(record, caller_org)
        elif caller_org is not None:
            raise not_found("learner", learner_id)  # not loaded here: nothing of it is the caller's to delete
        await self.db.delete(learner_id)  # NotFound when unknown
        live = self._drop_live(learner_id)
        self.failed.pop(learner_id, None)
        if live is not None:
            live.close()
        metrics.forget(learner_id)
        self._prediction_counters.pop(learner_id, None)
        shutil.rmtree(self._dir(learner_id), ignore_errors=True)
        log.info("learner_id=%s deleted", learner_id)

    # -- learning --------------------------------------------------------------------------------

    async def learn(self, messages: AsyncIterable[LearnMessage],
                    caller_org: str | None) -> AsyncIterator[tuple[int, LearnStep]]:
        """One Learn stream: (observations received so far, what the step achieved) per message. The
        first message names the learner; when the stream ends, what is still buffered is learned.

        The stream is read ahead (up to READ_AHEAD messages) while earlier messages are journaled and
        learned, and the messages that arrived meanwhile are journaled together in one commit
        (group commit): a client that sends without waiting for each acknowledgement is not held to
        one database commit per message. A message the transformer refuses ends the stream with its
        error; messages after it that were already read are learned (they are in the journal, and a
        replay learns them) but not acknowledged."""
        inbox: asyncio.Queue = asyncio.Queue(maxsize=READ_AHEAD)
        reader = asyncio.create_task(_read_into(messages, inbox))
        live: LiveLearner | None = None
        received = 0
        step: LearnStep | None = None
        try:
            ended = False
            while not ended:
                group: list[LearnMessage] = []
                failure: BaseException | None = None
                item = await inbox.get()
                while True:
                    if item is _END:
                        ended = True
                        break
                    if isinstance(item, BaseException):
                        failure = item
                        break
                    try:
                        live = self._learn_target(live, item, caller_org)
                    except errors.MeshError as exc:
                        failure = exc
                        break
                    group.append(item)
                    if len(group) >= MAX_GROUP or inbox.empty():
                        break
                    item = inbox.get_nowait()
                if group and live is not None:
                    steps = await self._learn_group(live, [(m.observations, m.flush) for m in group])
                    for message, result in zip(group, steps, strict=True):
                        received += len(message.observations)
                        if isinstance(result, errors.InvalidArgument):
                            raise result
                        step = result
                        yield received, step
                if failure is not None:
                    raise failure
        finally:
            reader.cancel()
        if live is not None and step is not None and live.buffered_pairs():
            # The client is done: learn what is still buffered in micro-batches.
            (last,) = await self._learn_group(live, [([], True)])
            if isinstance(last, errors.InvalidArgument):
                raise last
            yield received, last

    def _learn_target(self, live: LiveLearner | None, message: LearnMessage, caller_org: str | None) -> LiveLearner:
        """The learner a Learn message feeds: the first message names it; later ones may repeat it."""
        if live is None:
            if not message.learner_id:
                raise errors.InvalidArgument("the first Learn message must name learner_id",
                                             reason="LEARNER_ID_MISSING")
            return self.learner(message.learner_id, caller_org)
        if message.learner_id and parse_id(message.learner_id, "learner_id") != live.learner_id:
            raise errors.InvalidArgument("one Learn stream feeds one learner; open another stream for "
                                         f"{message.learner_id}", reason="LEARNER_CHANGED")
        return live

    async def _learn_group(self, live: LiveLearner, messages: list[tuple[list[Obs], bool]]):
        before = live.counters.observations_learned
        steps = await live.learn_group(messages, lambda: self.save(live), self._journal(live))
        learned = [s for s in steps if isinstance(s, LearnStep)]
        if learned and learned[-1].observations_learned > before:
            last = learned[-1]
            metrics.learned(live.learner_id, last.observations_learned - before, last.running_loss,
                            last.validation_loss)
        return steps

    def _journal(self, live: LiveLearner):
        """What `LiveLearner.learn_group` calls to make its messages durable before they are learned."""
        async def append(rows: list[tuple[int, list[Obs], bool]]) -> None:
            await self.db.journal_append(live.learner_id, [(seq, pickle.dumps(observations, protocol=5), flush)
                                                           for seq, observations, flush in rows])
        return append

    async def _replay(self, live: LiveLearner) -> None:
        """Learns again what the Learn streams acknowledged after the loaded version (docs/learner.md)."""
        rows = await self.db.journal_since(live.learner_id, live.record.journal_seq)
        if not rows:
            return
        messages, observations = await live.run(live.replay_sync, rows)
        log.info("learner_id=%s replayed %d journaled Learn messages (%d observations) after version %d: "
                 "%d observations learned", live.learner_id, messages, observations, live.record.version,
                 live.counters.observations_learned)

    # -- predicting and explaining ---------------------------------------------------------------

    async def predict(self, learner_id: str, inputs: list[Obs], sensor_id: str,
                      caller_org: str | None) -> Prediction:
        return await self._predict(self.learner(learner_id, caller_org), inputs, sensor_id)

    async def predict_stream(self, messages: AsyncIterable[PredictMessage],
                             caller_org: str | None) -> AsyncIterator[Prediction]:
        """One PredictStream: one Prediction per message, all for the learner the first one names."""
        live: LiveLearner | None = None
        async for message in messages:
            if live is None:
                live = self.learner(message.learner_id, caller_org)
            elif message.learner_id and parse_id(message.learner_id, "learner_id") != live.learner_id:
                raise errors.InvalidArgument("one PredictStream serves one learner", reason="LEARNER_CHANGED")
            yield await self._predict(live, message.inputs, message.sensor_id)

    async def _predict(self, live: LiveLearner, inputs: list[Obs], sensor_id: str) -> Prediction:
        if not inputs and not sensor_id:
            raise errors.InvalidArgument("give inputs, or a sensor_id to forecast from its latest readings",
                                         reason="NO_INPUTS")
        if inputs and sensor_id:
            raise errors.InvalidArgument("give inputs or a sensor_id, not both", reason="INPUTS_AMBIGUOUS")
        return await self._serve(live, inputs, sensor_id)

    async def _serve(self, live: LiveLearner, inputs: list[Obs], sensor_id: str) -> Prediction:
        """Every prediction of either front goes through here, so every one is counted."""
        prediction = await live.predict(inputs, sensor_id)
        counter = self._prediction_counters.get(live.learner_id)
        if counter is None:  # labels() costs microseconds: looked up once per learner
            counter = self._prediction_counters[live.learner_id] = metrics.prediction_counter(live.learner_id)
        counter.inc(len(prediction.outputs))
        return prediction

    async def explain(self, learner_id: str, obs: Obs | None, sensor_id: str, method: str, steps: int,
                      target_class: int | None, caller_org: str | None) -> Explained:
        live = self.learner(learner_id, caller_org)
        if obs is None and not sensor_id:
            raise errors.InvalidArgument("give an input, or a sensor_id to explain its latest forecast",
                                         reason="NO_INPUTS")
        if steps and not 1 <= steps <= 1000:
            raise errors.InvalidArgument(f"steps must be 1..1000, got {steps}", reason="STEPS_INVALID")
        result, x = await live.explain(obs, sensor_id, method, steps, target_class)
        return Explained(result, x, live.transformer.feature_names)

    # -- monitoring and events -------------------------------------------------------------------

    async def monitoring(self, learner_id: str, refresh: bool, caller_org: str | None):
        """The learner's `monitoring.drift.MonitoringReport`; `refresh` computes drift now first."""
        live = self.learner(learner_id, caller_org)
        if refresh:
            await live.refresh_monitoring()
        return live.monitor.report()

    def watch(self, learner_id: str, caller_org: str | None) -> AsyncIterator[Event]:
        """The learner's events (drift detected/cleared, versions saved) until the caller stops or it
        is deleted (then NotFound)."""
        return self.learner(learner_id, caller_org).watch()

    # -- the Open Inference Protocol: learners as models named by display name (or id) ----------

    def model(self, name: str, version: str, caller_org: str | None) -> LiveLearner:
        """The learner serving model `name` (its display name or id) at `version` ("" = its current
        one), looked up among the caller's organization's learners only: another organization's
        learner of the same name, or with that id, is no such model."""
        live = self._by_name(name, caller_org)
        if access(caller_org, live.record.organization_id) is not Access.OWNER:
            raise _no_model(name)
        if version and version != str(live.record.version):
            raise errors.NotFound(f"model {name!r} serves version {live.record.version} only, not {version!r}",
                                  reason="MODEL_VERSION_NOT_FOUND")
        return live

    def model_ready(self, name: str, version: str, caller_org: str | None) -> bool:
        """False, not an error, for an unknown model or another organization's (ModelReady)."""
        try:
            live = self.model(name, version, caller_org)
        except errors.NotFound:
            return False
        return live.record.state == READY

    async def infer(self, live: LiveLearner, inputs: list[Obs]) -> Prediction:
        """ModelInfer on a learner `model` returned: its inputs through the transformer, as Predict's."""
        return await self._serve(live, inputs, "")

    def _by_name(self, name: str, caller_org: str | None) -> LiveLearner:
        """The caller's organization's learner named `name` (or with that id). A mesh server calling
        for itself (caller None) sees every organization's: a name several organizations use is then
        ambiguous, and it must name the learner by its id."""
        if caller_org is not None:  # the OIP's path: a dict lookup by id or by name, checked
            live = self.live.get(name) or self.live.get(self._names.get((caller_org, name), ""))
            if live is not None and live.record.organization_id == caller_org and name in (
                    live.learner_id, live.record.display_name):
                return live
        found = [live for live in self.live.values()
                 if name in (live.record.display_name, live.learner_id)
                 and (caller_org is None or live.record.organization_id == caller_org)]
        by_id = [live for live in found if live.learner_id == name]
        if by_id:
            return by_id[0]
        if len(found) > 1:
            raise errors.FailedPrecondition(
                f"{len(found)} organizations have a learner named {name!r}; without an organization, name the "
                "model by its learner id", reason="MODEL_NAME_AMBIGUOUS")
        if not found:
            raise _no_model(name)
        return found[0]

    def _add_live(self, live: LiveLearner) -> LiveLearner:
        self.live[live.learner_id] = live
        self._names[(live.record.organization_id, live.record.display_name)] = live.learner_id
        return live

    def _drop_live(self, learner_id: str) -> LiveLearner | None:
        live = self.live.pop(learner_id, None)
        if live is not None:
            self._names.pop((live.record.organization_id, live.record.display_name), None)
        return live

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
                                      save_time=when, journal_seq=live.journal_seq, pending=live.pending_pairs())
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
        metrics.version_saved(record.learner_id)
        live.emit(Event(record.learner_id, "version_saved", when, saved=saved))
        log.info("learner_id=%s saved version %d as model %s (validation loss %.5g)", record.learner_id, version,
                 model.model_id, loss)
        return saved


def _authorize(record: LearnerRecord, caller_org: str | None) -> None:
    """The one access check: a learner is its organization's alone (a mesh server, caller None, is
    trusted); anyone else gets the NotFound of an unknown learner, word for word."""
    if access(caller_org, record.organization_id) is not Access.OWNER:
        raise not_found("learner", record.learner_id)


def _no_model(name: str) -> errors.NotFound:
    return errors.NotFound(f"no learner is named {name!r} (model names are learner display names or ids)",
                           reason="MODEL_NOT_FOUND")


def _json(value: Any) -> str:
    return json.dumps(value)


async def _read_into(messages: AsyncIterable[LearnMessage], inbox: asyncio.Queue) -> None:
    """Reads a Learn stream into `inbox`, then _END; a failure of the stream itself (a broken or
    refused message) is put in its place, after the messages before it."""
    try:
        async for message in messages:
            await inbox.put(message)
    except Exception as exc:  # noqa: BLE001 - handed to the stream's consumer, in order
        await inbox.put(exc)
        return
    await inbox.put(_END)
