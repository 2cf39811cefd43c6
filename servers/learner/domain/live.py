"""One learner in memory: its backend, transformer and monitor, the prequential validation window,
the save policy, and its event subscribers.

Every call into the model (learn, predict, explain, save) runs on the learner's own single worker
thread, so the model is never touched by two threads and the event loop never waits on numpy,
torch or TensorFlow. `lock` orders learning steps and saves: a save snapshots exactly what was
acknowledged before it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import math
import pickle
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from servers.common import errors
from servers.learner.domain.records import CLASSIFICATION_TASK, JournalRow, LearnerRecord, spec_to_json
from servers.learner.ml.base import Backend, Obs, Output, Transformer

log = logging.getLogger("mlmesh.learner")
# A model whose recent predict calls all took less than this answers on the event loop when the
# worker thread is idle (a linear model: ~10 us); slower ones (a GRU: ms) always use the thread.
INLINE_PREDICT_SECONDS = 200e-6
# After a batch that held one request (no concurrency), this many requests skip batching: a lone
# request gains nothing from waiting for a turn of the event loop; the next one batches again.
PROBE_EVERY = 32
T = TypeVar("T")
# Writes Learn messages, (seq, observations, flush) each, to the journal durably in one commit.
Journal = Callable[[list[tuple[int, list[Obs], bool]]], Awaitable[None]]


@dataclass
class LearnStep:
    """What one Learn request message achieved."""

    observations_learned: int
    pending: int
    batch_loss: float
    running_loss: float
    validation_loss: float
    saved: SavedVersion | None = None


@dataclass(frozen=True)
class SavedVersion:
    model_id: str
    version: int
    parent_model_id: str
    validation_loss: float
    res_sha256: str


@dataclass(frozen=True)
class Event:
    learner_id: str
    kind: str  # "drift_detected" | "drift_cleared" | "version_saved"
    time: dt.datetime
    drift: Any = None  # monitoring.DataDrift
    saved: SavedVersion | None = None


@dataclass(frozen=True)
class PredictBatching:
    """Adaptive micro-batching of concurrent predictions (as Triton's dynamic batcher and MLServer's
    adaptive batching): `enabled`; `max_size` requests per model call at most; `max_delay` seconds a
    request may wait for others (0: only those that arrived before the next turn of the event loop,
    which adds no waiting)."""

    enabled: bool = True
    max_size: int = 256
    max_delay: float = 0.0


@dataclass
class Prediction:
    outputs: list[Output]
    model_id: str
    observations_learned: int


@dataclass
class Counters:
    observations_learned: int = 0
    since_save: int = 0
    predictions_served: int = 0
    running_loss: float = math.nan
    batch_loss: float = math.nan
    digest: Any = field(default_factory=hashlib.sha256)


class LiveLearner:
    def __init__(self, record: LearnerRecord, backend: Backend, transformer: Transformer, monitor: Any,
                 executor: ThreadPoolExecutor, *, work_dir: Path, running_loss_alpha: float,
                 batching: PredictBatching | None = None):
        self.record = record
        self.backend, self.transformer, self.monitor = backend, transformer, monitor
        self.executor = executor
        self.work_dir = work_dir
        self.alpha = running_loss_alpha
        self.lock = asyncio.Lock()
        self.spec = record.spec
        self.counters = Counters(observations_learned=record.observations_learned)
        self.journal_seq = record.journal_seq  # the last learn-journal position used (docs/learner.md)
        self.validation: deque[float] = deque(maxlen=self.spec.save_policy.validation_window)
        self._pending_x: list[np.ndarray] = []
        self._pending_y: list[np.ndarray] = []
        self._pending_n = 0
        self._subscribers: set[asyncio.Queue] = set()
        self._monitor_task: asyncio.Task | None = None
        self.batching = batching or PredictBatching()
        self._predict_queue: list[tuple[list[Obs], str, asyncio.Future]] = []
        self._flush_scheduled = False
        self._worker_batch = False  # a batch of predictions is on the worker thread
        self._unbatched_streak = 0  # requests to answer without batching, after a batch of one
        self._in_worker = 0  # calls on (or queued for) the worker thread
        self._predict_seconds = math.inf  # until measured on the worker thread, predictions go there
        self.closed = False

    # -- plumbing --------------------------------------------------------------------------------

    @property
    def learner_id(self) -> str:
        return self.record.learner_id

    @property
    def classification(self) -> bool:
        return self.spec.task == CLASSIFICATION_TASK

    async def run(self, fn: Callable[..., T], *args) -> T:
        if self.closed:
            raise errors.NotFound(f"learner {self.learner_id} was deleted", reason="LEARNER_NOT_FOUND")
        self._in_worker += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        finally:
            self._in_worker -= 1

    def validation_loss(self) -> float:
        return float(np.mean(self.validation)) if self.validation else math.nan

    def pending(self) -> int:
        return self._pending_n + self.transformer.pending()

    def buffered_pairs(self) -> int:
        """Training pairs waiting for a full micro-batch."""
        return self._pending_n

    # -- learning --------------------------------------------------------------------------------

    async def learn(self, observations: list[Obs], flush: bool, on_saved: Callable[[], Any],
                    journal: Journal | None = None) -> LearnStep:
        """Learns one message (`learn_group` of one); InvalidArgument if the transformer refuses it."""
        (step,) = await self.learn_group([(observations, flush)], on_saved, journal)
        if isinstance(step, errors.InvalidArgument):
            raise step
        return step

    async def learn_group(self, messages: list[tuple[list[Obs], bool]], on_saved: Callable[[], Any],
                          journal: Journal | None = None) -> list[LearnStep | errors.InvalidArgument]:
        """Learns messages in order, one result each: its step, or the InvalidArgument the transformer
        refused it with (nothing of that message is kept; the others are learned, as a replay of the
        journal learns them). With `journal`, the group is journaled first, durably and in one commit,
        under the lock: the journal's order is the order learned, and no acknowledgement is ever ahead
        of it."""
        async with self.lock:
            # Each journaled message's position; `self.journal_seq` moves to it only as it is learned,
            # so a save in the middle of the group compacts the journal up to what the saved model holds.
            seqs: list[int | None] = []
            rows = []
            for observations, flush in messages:
                if journal is not None and (observations or flush):
                    rows.append((self.journal_seq + len(rows) + 1, observations, flush))
                    seqs.append(rows[-1][0])
                else:
                    seqs.append(None)
            if rows:
                await journal(rows)
            results: list[LearnStep | errors.InvalidArgument] = []
            for (observations, flush), seq in zip(messages, seqs, strict=True):
                if seq is not None:
                    self.journal_seq = seq
                try:
                    monitor_due = await self.run(self._learn_sync, observations, flush)
                except errors.InvalidArgument as exc:
                    results.append(exc)
                    continue
                if monitor_due:
                    self.schedule_monitoring()
                saved = await on_saved() if self._save_due() else None
                c = self.counters
                results.append(LearnStep(observations_learned=c.observations_learned, pending=self.pending(),
                                         batch_loss=c.batch_loss, running_loss=c.running_loss,
                                         validation_loss=self.validation_loss(), saved=saved))
            return results

    def _learn_sync(self, observations: list[Obs], flush: bool) -> bool:
        X, y = self.transformer.learn_pairs(observations)  # InvalidArgument keeps nothing of the message
        if len(X):
            self._pending_x.append(np.asarray(X, dtype=np.float32))
            self._pending_y.append(np.asarray(y, dtype=np.float32))
            self._pending_n += len(X)
        size = self.spec.micro_batch_size
        due = False
        while self._pending_n >= size or (flush and self._pending_n):
            X_all = np.concatenate(self._pending_x)
            y_all = np.concatenate(self._pending_y)
            take = min(size, len(X_all))
            Xb, yb = X_all[:take], y_all[:take]
            rest_x, rest_y = X_all[take:], y_all[take:]
            self._pending_x, self._pending_y = ([rest_x], [rest_y]) if len(rest_x) else ([], [])
            self._pending_n = len(rest_x)
            due = self._step(Xb, yb) or due
        return due

    def _step(self, X: np.ndarray, y: np.ndarray) -> bool:
        """Test, then train (prequential): the batch's loss is measured before the model learns it."""
        predictions = self.backend.predict(X)
        if self.classification:
            probs = np.clip(np.asarray(predictions, dtype=np.float64), 1e-12, 1.0)
            losses = -np.log(probs[np.arange(len(y)), y.astype(np.int64)])
        else:
            pred = np.asarray(predictions, dtype=np.float64).reshape(-1)
            losses = (pred - y.astype(np.float64)) ** 2
            self.monitor.observe_errors(self.transformer.to_units(pred), self.transformer.to_units(
                y.astype(np.float64)))
        due = self.monitor.observe_inputs(self.transformer.monitor_rows(X))
        self.backend.learn(X, y)
        c = self.counters
        batch_loss = float(np.mean(losses))
        c.batch_loss = batch_loss
        c.running_loss = batch_loss if math.isnan(c.running_loss) else (
            self.alpha * batch_loss + (1 - self.alpha) * c.running_loss)
        self.validation.extend(float(v) for v in losses)
        c.observations_learned += len(X)
        c.since_save += len(X)
        c.digest.update(np.ascontiguousarray(X).tobytes())
        c.digest.update(np.ascontiguousarray(y).tobytes())
        return due

    def pending_pairs(self) -> bytes | None:
        """The training pairs waiting for a micro-batch, pickled, for the journal's 'pending' row at a save
        (the saved model has not learned them); None when there are none."""
        if not self._pending_n:
            return None
        return pickle.dumps((np.concatenate(self._pending_x), np.concatenate(self._pending_y)), protocol=5)

    def replay_sync(self, rows: list[JournalRow]) -> tuple[int, int]:
        """On the worker thread, before the learner serves: learns again what the journal holds after
        the loaded version, exactly as the Learn stream did (a message the transformer refused is
        refused again and skipped). (messages replayed, observations replayed)."""
        messages = observations = 0
        for row in rows:
            if row.kind == "pending":
                X, y = pickle.loads(row.payload)  # noqa: S301 - the Learner's own journal, in its own database
                self._pending_x, self._pending_y, self._pending_n = [X], [y], len(X)
            else:
                batch = pickle.loads(row.payload)  # noqa: S301 - as above
                try:
                    self._learn_sync(batch, row.flush)
                except errors.InvalidArgument:
                    pass
                messages += 1
                observations += len(batch)
            self.journal_seq = max(self.journal_seq, row.seq)
        return messages, observations

    def _save_due(self) -> bool:
        policy = self.spec.save_policy
        if policy.disabled or self.counters.since_save < policy.min_observations:
            return False
        if len(self.validation) < min(policy.validation_window, policy.min_observations):
            return False
        loss = self.validation_loss()
        if not math.isfinite(loss):
            return False
        saved = self.record.saved_validation_loss
        if saved is None:
            return True
        return loss < saved * (1 - policy.min_relative_improvement)

    # -- saving ----------------------------------------------------------------------------------

    def snapshot_sync(self) -> tuple[Path, dict, dict]:
        """Writes the model file and returns it with the transformer's state and the learning record."""
        c = self.counters
        path = self.work_dir / f"save-{uuid.uuid4().hex}-{self.backend.artifact_name}"
        self.backend.save(path)
        record = {
            "kind": "mlmesh.LearningRecord/1",
            "learner_id": self.learner_id, "display_name": self.record.display_name,
            "spec": spec_to_json(self.spec),
            "parent_model_id": self.record.current_model_id or self.spec.starting_model_id,
            "observations": c.since_save, "observations_sha256": c.digest.hexdigest(),
            "observations_learned_total": c.observations_learned,
            "validation_loss": self.validation_loss(), "validation_window": len(self.validation),
            "running_loss": c.running_loss,
            "saved_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        return path, self.transformer.state(), record

    def saved(self, model_id: str, version: int, res_sha256: str, loss: float, when: dt.datetime) -> SavedVersion:
        parent = self.record.current_model_id or self.spec.starting_model_id
        self.record = replace(self.record, current_model_id=model_id, version=version,
                              saved_validation_loss=loss, observations_learned=self.counters.observations_learned,
                              save_time=when, journal_seq=self.journal_seq)
        self.counters.since_save = 0
        self.counters.digest = hashlib.sha256()
        return SavedVersion(model_id=model_id, version=version, parent_model_id=parent, validation_loss=loss,
                            res_sha256=res_sha256)

    # -- predicting and explaining ---------------------------------------------------------------

    async def predict(self, inputs: list[Obs], sensor_id: str) -> Prediction:
        """One prediction request. With batching on (`PredictBatching`), the requests that arrive
        before the batch is flushed are answered together: one call into the model (on the event
        loop for a model that answers in microseconds while its thread is idle, else one hop to the
        thread) and one monitoring update for all of them. A flush happens on the next turn of the
        event loop (no waiting added), after `max_delay` when that is set, at once when `max_size`
        requests are waiting, and after the batch on the thread when one is running there."""
        if self.closed:
            raise errors.NotFound(f"learner {self.learner_id} was deleted", reason="LEARNER_NOT_FOUND")
        loop = asyncio.get_running_loop()
        if not self.batching.enabled:
            return await self._predict_alone(inputs, sensor_id)
        if self._unbatched_streak and not self._predict_queue and not self._worker_batch:
            # The last batch held this request alone: nothing else is coming in, so waiting for a turn
            # of the event loop would only cost. Every PROBE_EVERY-th request looks again.
            self._unbatched_streak -= 1
            return await self._predict_alone(inputs, sensor_id)
        future = loop.create_future()
        queue = self._predict_queue
        queue.append((inputs, sensor_id, future))
        if len(queue) >= self.batching.max_size:
            if not self._worker_batch:
                self._flush_predictions()
        elif not self._flush_scheduled and not self._worker_batch:
            self._flush_scheduled = True
            delay = self.batching.max_delay
            if delay > 0:
                loop.call_later(delay, self._flush_predictions)
            else:
                loop.call_soon(self._flush_predictions)
        return await future

    async def _predict_alone(self, inputs: list[Obs], sensor_id: str) -> Prediction:
        """Batching off: one model call per request (on the event loop when fast and idle)."""
        if not self._in_worker and self._predict_seconds < INLINE_PREDICT_SECONDS:
            [result], due = self._predict_batch_sync([(inputs, sensor_id)])
        else:
            [result], due = await self.run(self._predict_batch_sync, [(inputs, sensor_id)])
        if due:
            self.schedule_monitoring()
        if isinstance(result, BaseException):
            raise result
        return result

    def _flush_predictions(self) -> None:
        """Answers every waiting request with one model call (event loop callback)."""
        self._flush_scheduled = False
        batch = self._predict_queue
        if not batch or self._worker_batch:
            return  # a batch on the thread flushes what waits when it is done
        if len(batch) > self.batching.max_size:
            batch, self._predict_queue = batch[:self.batching.max_size], batch[self.batching.max_size:]
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_predictions)
        else:
            self._predict_queue = []
        requests = [(inputs, sensor_id) for inputs, sensor_id, _ in batch]
        self._unbatched_streak = PROBE_EVERY if len(batch) == 1 else 0
        if self.closed:
            gone = errors.NotFound(f"learner {self.learner_id} was deleted", reason="LEARNER_NOT_FOUND")
            self._deliver(batch, [gone] * len(batch), False)
        elif not self._in_worker and self._predict_seconds < INLINE_PREDICT_SECONDS:
            # Nothing runs on the worker thread and this model answers in microseconds: answering on
            # the event loop saves two thread switches, and nothing else can touch the model meanwhile.
            try:
                results, due = self._predict_batch_sync(requests)
            except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
                results, due = [exc] * len(batch), False
            self._deliver(batch, results, due)
        else:
            self._worker_batch = True
            self._in_worker += 1
            try:
                done = asyncio.get_running_loop().run_in_executor(self.executor, self._predict_batch_sync, requests)
            except RuntimeError as exc:  # the executor was shut down (deleted learner)
                self._in_worker -= 1
                self._worker_batch = False
                self._deliver(batch, [exc] * len(batch), False)
                return
            done.add_done_callback(lambda f: self._worker_done(f, batch))

    def _worker_done(self, done: asyncio.Future, batch: list) -> None:
        self._in_worker -= 1
        self._worker_batch = False
        if done.cancelled():
            results, due = [errors.NotFound(f"learner {self.learner_id} was deleted",
                                            reason="LEARNER_NOT_FOUND")] * len(batch), False
        elif done.exception() is not None:
            results, due = [done.exception()] * len(batch), False
        else:
            results, due = done.result()
        self._deliver(batch, results, due)
        if self._predict_queue and not self._flush_scheduled:
            self._flush_predictions()  # what arrived while the thread was busy: the next batch

    def _deliver(self, batch: list, results: list, due: bool) -> None:
        for (_inputs, _sensor, future), result in zip(batch, results):
            if future.done():  # the caller went away
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        if due:
            self.schedule_monitoring()

    def _predict_batch_sync(self, requests: list[tuple[list[Obs], str]]) -> tuple[list, bool]:
        """One model call for several requests; a request whose inputs are bad gets its own error."""
        results: list = [None] * len(requests)
        prepared: list[tuple[int, np.ndarray, Any, str]] = []
        for i, (inputs, sensor_id) in enumerate(requests):
            try:
                X, ctx = self.transformer.model_inputs(inputs, sensor_id)
            except errors.MeshError as exc:
                results[i] = exc
                continue
            prepared.append((i, X, ctx, sensor_id))
        if not prepared:
            return results, False
        X_all = prepared[0][1] if len(prepared) == 1 else np.concatenate([p[1] for p in prepared])
        started = time.thread_time()
        predictions = self.backend.predict(X_all)
        # Slowest recent model call (decays): decides whether a prediction may run on the event loop.
        # CPU time of this thread, not wall time: a call that waited for the GIL or was preempted on a
        # busy machine is not a slow model, and sending a fast model to the thread for it costs more.
        elapsed = time.thread_time() - started
        self._predict_seconds = elapsed if math.isinf(self._predict_seconds) else max(
            elapsed, 0.9 * self._predict_seconds)
        start = 0
        monitored = []
        model_id, learned = self.record.current_model_id, self.counters.observations_learned
        for i, X, ctx, sensor_id in prepared:
            outputs = self.transformer.outputs(predictions[start:start + len(X)], ctx)
            results[i] = Prediction(outputs, model_id, learned)
            start += len(X)
            self.counters.predictions_served += len(outputs)
            # Forecasts from a sensor's buffer repeat windows the learner already monitored while learning.
            if not sensor_id:
                monitored.append(X)
        due = False
        if monitored:
            rows = monitored[0] if len(monitored) == 1 else np.concatenate(monitored)
            due = self.monitor.observe_inputs(self.transformer.monitor_rows(rows))
        return results, due

    async def explain(self, obs: Obs | None, sensor_id: str, method: str, steps: int, target_class: int | None):
        return await self.run(self._explain_sync, obs, sensor_id, method, steps, target_class)

    def _explain_sync(self, obs: Obs | None, sensor_id: str, method: str, steps: int, target_class: int | None):
        from servers.learner.ml.explain import explain

        module = self.backend.torch_module()
        if module is None:
            raise errors.FailedPrecondition(
                f"the {self.spec.backend} backend has no differentiable model for Captum; explanations need the "
                "pytorch backend", reason="EXPLAINER_UNAVAILABLE")
        X, _ = self.transformer.model_inputs([obs] if obs is not None else [], sensor_id)
        if len(X) != 1:
            raise errors.InvalidArgument("Explain takes exactly one input (or a sensor_id)", reason="ONE_INPUT")
        result = explain(module, X[0], self.transformer.feature_names, method or self.spec.explainer, steps or 50,
                         target_class, self.classification)
        return result, X[0].reshape(-1)

    # -- monitoring and events -------------------------------------------------------------------

    def schedule_monitoring(self) -> None:
        if self._monitor_task is None or self._monitor_task.done():
            self._monitor_task = asyncio.get_running_loop().create_task(self._compute_monitoring())

    async def _compute_monitoring(self) -> None:
        try:
            await asyncio.to_thread(self.monitor.compute)
        except Exception:  # a monitoring failure must never break learning; it is logged
            log.exception("learner_id=%s: drift computation failed", self.learner_id)
            return
        transition = self.monitor.last_transition
        if transition:
            report = self.monitor.report()
            self.emit(Event(self.learner_id, f"drift_{transition}", dt.datetime.now(dt.UTC), drift=report.drift))

    async def refresh_monitoring(self) -> None:
        if self._monitor_task is not None and not self._monitor_task.done():
            await self._monitor_task
        self._monitor_task = asyncio.get_running_loop().create_task(self._compute_monitoring())
        await self._monitor_task

    def emit(self, event: Event) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                queue.get_nowait()  # a slow watcher loses its oldest event, never blocks the learner
            queue.put_nowait(event)

    async def watch(self) -> AsyncIterator[Event]:
        """This learner's events from now on, until the caller stops or the learner is deleted
        (then NotFound). A watcher that falls 256 events behind loses its oldest ones."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=256)
        self._subscribers.add(queue)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    raise errors.NotFound(f"learner {self.learner_id} was deleted", reason="LEARNER_NOT_FOUND")
                yield event
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        self.closed = True
        for queue in list(self._subscribers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)  # ends the watch
        if self._monitor_task is not None:
            self._monitor_task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)


def learning_record_bytes(record: dict) -> bytes:
    return json.dumps(record, sort_keys=True, allow_nan=True).encode()
