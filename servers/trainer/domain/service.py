"""The Trainer's core: submits, runs, cancels and watches training jobs. Any transport can
serve it (the gRPC servicer is a thin layer over it).

Jobs live in the repository (PostgreSQL); this process runs at most `max_concurrent_jobs` at
once. On start it fails the jobs a previous process was running ("the Trainer restarted while
the job was running", reported to the Registry) and resumes the QUEUED ones; a job found in
POST_TRAINING whose model the Registry already holds as TRAINED by this job is SUCCEEDED.

Access (docs/security.md): a job belongs to its model's owner organization, recorded when it is
submitted. Only that organization sees it (get, watch, cancel, list); anyone else is told it does
not exist, exactly as for an unknown id. A caller of None is a mesh server (the Registry
submitting, tests in-process): trusted like the owner. Pre-train fetches the dataset and the
recipe on behalf of the job's organization, so a dataset no longer shared with it fails the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from servers.common import errors, ids
from servers.common.access import Access, access
from servers.common.watchers import Watcher
from servers.trainer.domain import jobs as J
from servers.trainer.domain.jobs import Job, Limits, LogLine
from servers.trainer.domain.ports import Environments, JobRepository, ProcessRunner, Registry, RunRequest, Workflows
from servers.trainer.domain.recipe import ArchiveLimits
from servers.trainer.domain.reproduce import compare_with_original
from servers.trainer.domain.steps import StepFailed, post_train, pre_train, read_model

log = logging.getLogger("mlmesh.trainer")

MAX_LINE_CHARS = 8192
FAILURE_REASON_CHARS = 4000


T = TypeVar("T")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _require_owner(job: Job, caller_org: str | None) -> None:
    """Jobs are never shared: anyone but the owner (or a mesh server) is told the job does not exist."""
    if access(caller_org, job.organization_id) is not Access.OWNER:
        raise J.job_not_found(job.job_id)


@dataclass(frozen=True)
class CoreOptions:
    work_root: Path  # <data_dir>/trainer
    limits: Limits
    executor: str = "local"
    max_concurrent_jobs: int = 1
    archive_limits: ArchiveLimits = ArchiveLimits()
    model_grace_seconds: float = 10.0
    stderr_tail_lines: int = 20
    max_log_lines: int = 200_000
    keep_job_dirs: bool = False
    report_retry_seconds: float = 5.0
    database_outage_seconds: float = 120.0  # how long a running job waits for PostgreSQL to come back
    inherited_env: tuple[tuple[str, str], ...] = ()
    seed: int = 0


class _JobLog:
    """Buffers a job's lines and writes them in batches; a line reaches watchers only once it
    is in the database, so a replay never misses one."""

    def __init__(self, core: TrainerCore, job_id: str, last_sequence: int):
        self.core, self.job_id, self.sequence = core, job_id, last_sequence
        self.pending: list[LogLine] = []
        self.lock = asyncio.Lock()
        self.flusher: asyncio.Task | None = None
        self.dropped = False
        self.unsure = False

    async def write(self, stream: str, text: str) -> None:
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + f"... [{len(text) - MAX_LINE_CHARS} more characters]"
        if self.sequence >= self.core.options.max_log_lines:
            if not self.dropped:
                self.dropped = True
                self._add("trainer", f"the log reached {self.core.options.max_log_lines} lines; later lines "
                                     "are not stored")
            return
        self._add(stream, text)
        if len(self.pending) >= 1000:
            await self.flush()
        elif self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush_soon())

    def _add(self, stream: str, text: str) -> None:
        self.sequence += 1
        self.pending.append(LogLine(self.sequence, utcnow(), stream, text))

    async def _flush_soon(self) -> None:
        await asyncio.sleep(0.05)
        await self.flush(wait=False)

    async def flush(self, *, wait: bool = True) -> None:
        """Stores the pending lines, then tells watchers. While the database is unavailable the
        lines stay pending: `wait` retries through an outage (`_through_outages`), else the next
        flush tries again."""
        async with self.lock:
            if not self.pending:
                return
            try:
                batch = await (self.core._through_outages(f"job {self.job_id}: writing its log", self._store)
                               if wait else self._store())
            except errors.Unavailable:
                if wait:
                    raise
                return
            for line in batch:
                self.core._publish(self.job_id, line)

    async def _store(self) -> list[LogLine]:
        if self.unsure:  # an append whose answer was lost may have committed: not twice
            stored = await self.core.repo.last_log_sequence(self.job_id)
            self.pending = [line for line in self.pending if line.sequence > stored]
            self.unsure = False
        batch = list(self.pending)  # write() may add lines meanwhile, at the end
        try:
            await self.core.repo.append_logs(self.job_id, batch)
        except errors.Unavailable:
            self.unsure = True
            raise
        del self.pending[:len(batch)]
        return batch

    async def close(self) -> None:
        if self.flusher is not None and not self.flusher.done():
            self.flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.flusher
        await self.flush()


async def _unless_unavailable(step) -> None:
    with contextlib.suppress(errors.Unavailable):
        await step


class TrainerCore:
    def __init__(self, repo: JobRepository, registry: Registry, runner: ProcessRunner, envs: Environments,
                 options: CoreOptions, *, workflows: Workflows | None = None,
                 clock: Callable[[], dt.datetime] = utcnow):
        if options.executor == "argo" and workflows is None:
            raise ValueError("the argo executor needs a Workflows adapter")
        self.repo, self.registry, self.runner, self.envs = repo, registry, runner, envs
        self.options, self.workflows, self.clock = options, workflows, clock
        self._slots = asyncio.Semaphore(options.max_concurrent_jobs)
        self._tasks: dict[str, asyncio.Task] = {}
        self._cancel_requested: set[str] = set()
        self._watchers: dict[str, set[Watcher]] = {}
        self._job_locks: dict[str, asyncio.Lock] = {}
        self._closing = False
        self._reporter: asyncio.Task | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Recovers the jobs a previous process left behind, then starts the queued ones."""
        await self._record_missing_organizations()
        for job in await self.repo.live_jobs():
            if job.state == J.QUEUED:
                self._spawn(job)
                continue
            job_dir = self.options.work_root / "jobs" / job.job_id
            self.runner.kill_leftover(job_dir / "recipe.pid")
            if not self.options.keep_job_dirs:
                await asyncio.to_thread(shutil.rmtree, job_dir, True)
            if job.state == J.POST_TRAINING and await self._registry_has_result(job):
                await self._transition(job, J.SUCCEEDED)
                continue
            await self._fail(job, J.RESTART_REASON)
        self._reporter = asyncio.create_task(self._report_pending_loop())

    async def _record_missing_organizations(self) -> None:
        """Jobs stored before jobs had an organization get their model's owner from the Registry.
        One the Registry cannot answer for now keeps "" (visible to internal callers only) and is
        tried again at the next start."""
        for job in await self.repo.jobs_without_organization():
            try:
                model = await self.registry.get_model(job.model_id)
            except errors.MeshError as exc:
                log.warning("job %s: its model's organization is unknown for now: %s", job.job_id, exc.message)
                continue
            if model.organization_id:
                await self.repo.set_organization(job.job_id, model.organization_id)

    async def close(self) -> None:
        """Stops running jobs (FAILED: the Trainer stopped; reported to the Registry); QUEUED jobs
        stay queued and resume at the next start."""
        self._closing = True
        if self._reporter is not None:
            self._reporter.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._reporter is not None:
            await asyncio.gather(self._reporter, return_exceptions=True)

    # -- the API ------------------------------------------------------------------------------

    async def submit(self, model_id: str, time_limit_seconds: int = 0, memory_limit_bytes: int = 0, *,
                     caller_org: str | None = None) -> Job:
        """A new QUEUED job for the model, or the model's live job if it has one (idempotent). The
        job belongs to the model's owner, read from the Registry (the Registry submits after it has
        stored the model; an organization may submit only for its own models)."""
        model_id = ids.parse_id(model_id, "model_id")
        time_limit, memory_limit = self.options.limits.resolve(time_limit_seconds, memory_limit_bytes)
        model = await read_model(self.registry, model_id, grace_seconds=self.options.model_grace_seconds)
        if access(caller_org, model.organization_id) is not Access.OWNER:
            raise errors.NotFound(f"model {model_id} does not exist", reason="MODEL_NOT_FOUND",
                                  metadata={"model_id": model_id})
        job = Job(job_id=str(uuid.uuid4()), model_id=model_id, state=J.QUEUED, executor=self.options.executor,
                  time_limit_seconds=time_limit, memory_limit_bytes=memory_limit, create_time=self.clock(),
                  organization_id=model.organization_id)
        stored, created = await self.repo.insert_or_get_live(job)
        if created:
            log.info("job %s queued for model %s", stored.job_id, model_id)
            self._spawn(stored)
        return stored

    async def reproduce(self, model_id: str, time_limit_seconds: int = 0, memory_limit_bytes: int = 0, *,
                        caller_org: str | None = None) -> Job:
        """A QUEUED reproduction of a trained model for the caller's organization (or its live one:
        idempotent per model and organization). The caller must be able to read the model (a
        stranger is told it does not exist, as by the Registry) and the model's dataset: a grantee
        of a model trained on a dataset it may not read is refused (FAILED_PRECONDITION)."""
        model_id = ids.parse_id(model_id, "model_id")
        time_limit, memory_limit = self.options.limits.resolve(time_limit_seconds, memory_limit_bytes)
        model = await self.registry.get_model(model_id, on_behalf_of=caller_org)
        if model.state != "TRAINED":
            raise errors.FailedPrecondition(
                f"model {model_id} is {model.state}: only a trained model can be reproduced",
                reason="MODEL_NOT_TRAINED", metadata={"model_id": model_id})
        if not model.recipe_sha256:
            raise errors.FailedPrecondition(
                f"model {model_id} was trained from the container image {model.image_reference or '(none)'}: "
                "this Trainer reproduces recipes only", reason="REPRODUCTION_UNSUPPORTED",
                metadata={"model_id": model_id})
        if self.options.executor != "local":
            raise errors.FailedPrecondition(
                "reproductions run on the local executor only; this Trainer uses "
                f"{self.options.executor}", reason="REPRODUCTION_UNSUPPORTED", metadata={"model_id": model_id})
        org = caller_org if caller_org is not None else model.organization_id
        try:
            await self.registry.get_dataset(model.dataset_id, on_behalf_of=org or None)
        except errors.NotFound:
            raise errors.FailedPrecondition(
                f"model {model_id} was trained on dataset {model.dataset_id}, which organization {org} may not "
                "read: reproducing a model needs its dataset (ask the dataset's owner to share it)",
                reason="DATASET_NOT_READABLE", metadata={"model_id": model_id, "dataset_id": model.dataset_id}
            ) from None
        job = Job(job_id=str(uuid.uuid4()), model_id=model_id, state=J.QUEUED, executor=self.options.executor,
                  time_limit_seconds=time_limit, memory_limit_bytes=memory_limit, create_time=self.clock(),
                  dataset_id=model.dataset_id, organization_id=org, purpose=J.REPRODUCTION)
        stored, created = await self.repo.insert_or_get_live(job)
        if created:
            log.info("job %s queued to reproduce model %s for %s", stored.job_id, model_id, org)
            self._spawn(stored)
        return stored

    async def get(self, job_id: str, caller_org: str | None = None) -> Job:
        """The job, if the caller's organization owns it; NotFound otherwise (as for an unknown id)."""
        job = await self.repo.get(ids.parse_id(job_id, "job_id"))
        _require_owner(job, caller_org)
        return job

    async def list(self, page_size: int = 0, page_token: str = "", model_id: str = "", *,
                   caller_org: str | None = None) -> J.Page:
        """The caller's organization's jobs, newest first (every job for an internal caller)."""
        if model_id:
            model_id = ids.parse_id(model_id, "model_id")
        return await self.repo.list(page_size, page_token, model_id, caller_org)

    async def cancel(self, job_id: str, caller_org: str | None = None) -> Job:
        """Cancels a queued or running job: CANCELLED, the model FAILED. FailedPrecondition if it ended."""
        job = await self.get(job_id, caller_org)
        if job.final:
            J.check_transition(job.job_id, job.state, J.CANCELLED)
        self._cancel_requested.add(job.job_id)
        task = self._tasks.get(job.job_id)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return await self.repo.get(job.job_id)
        # Not running in this process (e.g. queued and not yet picked up).
        return await self._end(job, J.CANCELLED, J.CANCEL_REASON)

    async def watch(self, job_id: str, after_sequence: int = 0,
                    caller_org: str | None = None) -> AsyncIterator[Job | LogLine]:
        """The job now, its log lines after `after_sequence`, then live events until it ends."""
        job_id = ids.parse_id(job_id, "job_id")
        if after_sequence < 0:
            raise errors.InvalidArgument("after_log_sequence must not be negative", reason="SEQUENCE_INVALID")
        _require_owner(await self.repo.get(job_id), caller_org)  # before anything of the job is sent
        watcher = Watcher()
        self._watchers.setdefault(job_id, set()).add(watcher)
        try:
            job = await self.repo.get(job_id)
            yield job
            last = after_sequence
            async for line in self._replay(job_id, last):
                last = line.sequence
                yield line
            while not job.final:
                await watcher.wake.wait()
                watcher.wake.clear()
                if watcher.lagged:
                    watcher.lagged = False
                    watcher.drain()
                    fresh = await self.repo.get(job_id)
                    async for line in self._replay(job_id, last):
                        last = line.sequence
                        yield line
                    if fresh != job:
                        job = fresh
                        yield job
                    continue
                for event in watcher.drain():
                    if isinstance(event, LogLine):
                        if event.sequence > last:
                            last = event.sequence
                            yield event
                    elif J.can_transition(job.state, event.state):
                        # Only a move on from what was last sent: a change published between this
                        # watcher's registration and its first read of the job is already in that read.
                        job = event
                        yield job
        finally:
            subs = self._watchers.get(job_id)
            if subs is not None:
                subs.discard(watcher)
                if not subs:
                    self._watchers.pop(job_id, None)

    async def _replay(self, job_id: str, after: int, page: int = 1000) -> AsyncIterator[LogLine]:
        while True:
            lines = await self.repo.logs_after(job_id, after, page)
            for line in lines:
                yield line
            if len(lines) < page:
                return
            after = lines[-1].sequence

    # -- running a job ------------------------------------------------------------------------

    def _spawn(self, job: Job) -> None:
        task = asyncio.create_task(self._run(job), name=f"training-job-{job.job_id}")
        self._tasks[job.job_id] = task
        task.add_done_callback(lambda _t, job_id=job.job_id: self._tasks.pop(job_id, None))

    def _publish(self, job_id: str, event) -> None:
        for watcher in self._watchers.get(job_id, ()):
            watcher.put(event)

    def _lock(self, job_id: str) -> asyncio.Lock:
        return self._job_locks.setdefault(job_id, asyncio.Lock())

    async def _through_outages(self, what: str, step: Callable[[], Awaitable[T]]) -> T:
        """`step()`, tried again while the database is unavailable (PostgreSQL restarting, a failover),
        for up to `database_outage_seconds`; then its Unavailable goes to the caller (and fails the job)."""
        deadline = time.monotonic() + self.options.database_outage_seconds
        delay = 0.2
        while True:
            try:
                return await step()
            except errors.Unavailable as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("%s: the database is unavailable (%s); trying again in %.1f s", what, exc.message, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _transition(self, job: Job, state: str, failure_reason: str = "", **changes) -> Job:
        """Moves the job (checked by the state machine and against the stored state) and tells watchers.
        Through a database outage: an attempt whose answer was lost may have moved it already."""
        attempts = 0

        async def move() -> tuple[Job, Job]:
            nonlocal attempts
            attempts += 1
            current = await self.repo.get(job.job_id)
            if attempts > 1 and current.state == state:
                return current, current
            new = current.moved(state, now=self.clock(), failure_reason=failure_reason[:FAILURE_REASON_CHARS],
                                **changes)
            if not await self.repo.save(new, expected_state=current.state):
                raise errors.Aborted(f"training job {job.job_id} changed while moving it to {state}",
                                     reason="JOB_CHANGED")
            return current, new

        async with self._lock(job.job_id):
            current, new = await self._through_outages(f"job {job.job_id}: moving it to {state}", move)
        log.info("job %s: %s -> %s%s", job.job_id, current.state, state,
                 f" ({failure_reason})" if failure_reason else "")
        self._publish(job.job_id, new)
        if new.final:
            self._job_locks.pop(job.job_id, None)
        return new

    async def _end(self, job: Job, state: str, reason: str) -> Job:
        """FAILED or CANCELLED (if the job has not ended already), then the Registry hears FAILED."""
        try:
            job = await self._transition(job, state, reason)
        except errors.FailedPrecondition:
            return await self.repo.get(job.job_id)  # it ended meanwhile
        await self._report_failed(job)
        return job

    async def _fail(self, job: Job, reason: str) -> Job:
        return await self._end(job, J.FAILED, reason)

    async def _fail_once_stored(self, job: Job, reason: str) -> None:
        """FAILED, retried while PostgreSQL is unavailable (e.g. restarting after a kill -9), and the
        Registry told: found by the chaos suite, a job whose log write hit the outage stayed TRAINING."""
        ended = False
        while True:
            try:
                if not ended:
                    try:
                        job = await self._transition(job, J.FAILED, reason)
                    except errors.FailedPrecondition:
                        return  # it ended meanwhile
                    ended = True
                await self._report_failed(job)
                return
            except errors.Unavailable as exc:
                if self._closing:
                    raise
                log.warning("job %s: FAILED not stored yet (%s); retrying", job.job_id, exc.message)
                await asyncio.sleep(1)

    async def _report_failed(self, job: Job) -> None:
        if job.reproducing:  # the model is trained; a failed reproduction changes nothing in the Registry
            return
        try:
            await self.registry.report_status(job.model_id, job.job_id, "FAILED", job.failure_reason)
            await self.repo.set_report_pending(job.job_id, False)
        except errors.Unavailable as exc:
            log.warning("job %s: the Registry did not hear FAILED yet (%s); retrying later", job.job_id, exc.message)
            await self.repo.set_report_pending(job.job_id, True)
        except errors.MeshError as exc:  # e.g. the model is unknown or already trained: nothing to retry
            log.warning("job %s: the Registry refused the FAILED report: %s", job.job_id, exc.message)
            await self.repo.set_report_pending(job.job_id, False)

    async def _report_pending_loop(self) -> None:
        while True:
            try:
                for job in await self.repo.report_pending_jobs():
                    await self._report_failed(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
                log.exception("retrying failure reports")
            await asyncio.sleep(self.options.report_retry_seconds)

    async def _registry_has_result(self, job: Job) -> bool:
        try:
            model = await self.registry.get_model(job.model_id)
        except errors.MeshError:
            return False
        return not job.reproducing and model.state == "TRAINED" and model.training_job_id in ("", job.job_id)

    async def _run(self, job: Job) -> None:
        job_dir = self.options.work_root / "jobs" / job.job_id
        joblog = _JobLog(self, job.job_id, await self._through_outages(
            f"job {job.job_id}: reading its log", lambda: self.repo.last_log_sequence(job.job_id)))

        async def note(text: str) -> None:
            await joblog.write("trainer", text)

        # The job's directory goes before its terminal state is published, so whoever sees a job
        # end (Watch, Get) never finds its working files, dataset copy included, still on disk.
        async def cleanup() -> None:
            if not self.options.keep_job_dirs:
                await asyncio.to_thread(shutil.rmtree, job_dir, True)

        try:
            async with self._slots:
                if job.job_id in self._cancel_requested:
                    raise asyncio.CancelledError
                if self.options.executor == "argo":
                    await self._run_on_argo(job, note, joblog)
                else:
                    await self._run_locally(job, job_dir, note, joblog, cleanup)
        except asyncio.CancelledError:
            await joblog.close()
            await cleanup()
            if job.job_id in self._cancel_requested:
                await self._end(job, J.CANCELLED, J.CANCEL_REASON)
            else:
                await self._fail(job, "the Trainer stopped while the job was running" if self._closing
                                 else "the job was interrupted")
        # PostgreSQL may be what failed (killed, restarting): the log is then best effort and the
        # job's end is retried until it is stored, so the job never stays TRAINING with the Trainer up.
        except StepFailed as exc:
            await _unless_unavailable(note(f"failed: {exc.reason}"))
            await _unless_unavailable(joblog.close())
            await cleanup()
            await self._fail_once_stored(job, exc.reason)
        except errors.MeshError as exc:
            await _unless_unavailable(note(f"failed: {exc.message}"))
            await _unless_unavailable(joblog.close())
            await cleanup()
            await self._fail_once_stored(job, exc.message)
        except Exception as exc:  # noqa: BLE001 - a bug must still end the job
            log.exception("job %s: internal error", job.job_id)
            await _unless_unavailable(joblog.close())
            await cleanup()
            await self._fail_once_stored(
                job, f"internal error in the Trainer ({type(exc).__name__}); see the Trainer's log")
        else:
            await joblog.close()
        finally:
            self._cancel_requested.discard(job.job_id)
            await cleanup()

    async def _run_locally(self, job: Job, job_dir: Path, note, joblog: _JobLog, cleanup) -> None:
        await joblog.flush()
        job = await self._transition(job, J.PRE_TRAINING)
        if job_dir.exists():
            await asyncio.to_thread(shutil.rmtree, job_dir, True)
        job_dir.mkdir(parents=True)
        prepared = await pre_train(self.registry, job, job_dir, note, archive_limits=self.options.archive_limits,
                                   model_grace_seconds=self.options.model_grace_seconds)
        spec = prepared.spec
        job = replace(job, dataset_id=prepared.dataset.dataset_id)
        requirements = prepared.recipe_root / spec.requirements if spec.requirements else None
        python = await self.envs.python_for(requirements, joblog.write)
        output_dir = job_dir / "output"
        output_dir.mkdir()
        tmp_dir = job_dir / "tmp"
        tmp_dir.mkdir()
        artifact = output_dir / spec.artifact_name
        env = dict(self.options.inherited_env)
        env.update({
            "TMPDIR": str(tmp_dir),
            "PYTHONUNBUFFERED": "1",
            "MLMESH_DATASET_PATH": str(prepared.dataset_path),
            "MLMESH_DATASET_CONTENT_TYPE": prepared.dataset.content_type,
            "MLMESH_OUTPUT_PATH": str(artifact),
            "MLMESH_PARAMS": spec.params_json(),
            "MLMESH_SEED": str(self.options.seed),
            "MLMESH_WORK_DIR": str(prepared.recipe_root),
        })
        await joblog.flush()
        job = await self._transition(job, J.TRAINING, framework=spec.framework,
                                     dataset_id=prepared.dataset.dataset_id)
        if not job.reproducing:
            try:
                await self.registry.report_status(job.model_id, job.job_id, "TRAINING")
            except errors.MeshError as exc:
                await note(f"train: could not tell the Registry that training started: {exc.message}")
        await note(f"train: running {python.name} {spec.entrypoint} (time limit {job.time_limit_seconds} s, "
                   f"memory limit {job.memory_limit_bytes} bytes)")
        result = await self.runner.run(
            RunRequest(argv=[str(python), spec.entrypoint], cwd=prepared.recipe_root, env=env,
                       time_limit_seconds=job.time_limit_seconds, memory_limit_bytes=job.memory_limit_bytes,
                       pid_file=job_dir / "recipe.pid"),
            joblog.write,
        )
        if result.limit_failure:
            raise StepFailed(result.limit_failure)
        if result.exit_code != 0:
            tail = "\n".join(result.stderr_tail[-self.options.stderr_tail_lines:]).strip()
            what = f"the recipe exited with status {result.exit_code}"
            if result.exit_code is not None and result.exit_code < 0:
                what = f"the recipe was killed by signal {-result.exit_code}"
            raise StepFailed(f"{what}: {tail}" if tail else what)
        await note(f"train: the recipe finished in {result.seconds:.1f} s (peak memory {result.peak_rss_bytes} bytes)")
        await joblog.flush()
        job = await self._transition(job, J.POST_TRAINING)
        if job.reproducing:
            outcome = await compare_with_original(self.registry, self.runner, python, job, spec, artifact,
                                                  prepared.dataset_path, job_dir, note, env, joblog.write)
            await joblog.flush()
            await cleanup()
            await self._transition(job, J.SUCCEEDED, reproduction=outcome)
            return
        await post_train(self.registry, job, spec, artifact, note)
        await joblog.flush()
        await cleanup()
        await self._transition(job, J.SUCCEEDED)

    async def _run_on_argo(self, job: Job, note, joblog: _JobLog) -> None:
        """The whole job runs as an Argo workflow; the Trainer follows its steps."""
        assert self.workflows is not None
        model = await read_model(self.registry, job.model_id, grace_seconds=self.options.model_grace_seconds)
        name = await self.workflows.submit(job, model)
        await note(f"submitted Argo workflow {name}")
        path = (J.PRE_TRAINING, J.TRAINING, J.POST_TRAINING, J.SUCCEEDED)
        try:
            async for state, reason in self.workflows.watch(name):
                if state in (J.FAILED, J.CANCELLED):
                    raise StepFailed(reason or f"the Argo workflow {name} failed")
                if state not in path:
                    continue
                current = await self._through_outages(f"job {job.job_id}: reading it",
                                                      lambda: self.repo.get(job.job_id))
                # Walk every step up to `state` (a short step may end between two polls).
                for step in path[:path.index(state) + 1]:
                    if J.can_transition(current.state, step):
                        await joblog.flush()
                        current = await self._transition(current, step, dataset_id=model.dataset_id)
                        if step == J.TRAINING:
                            with contextlib.suppress(errors.MeshError):
                                await self.registry.report_status(job.model_id, job.job_id, "TRAINING")
                if state == J.SUCCEEDED:
                    return
            raise StepFailed(f"lost track of the Argo workflow {name}")
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self.workflows.stop(name)
            raise
