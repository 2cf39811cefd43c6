"""The Federation server's core: creates, runs, cancels, deletes and watches federated jobs. Any
transport can serve it (the gRPC servicer is a thin layer over it).

A job runs in three steps, each in this process or in the framework's own processes:
- PREPARING: the dataset is read on behalf of the job's organization and checked against its
  SHA-256; the app's configuration is written (`appconfig.py`, the one mapping of a spec);
- RUNNING: the framework's launcher runs in its own virtualenv as one process group, through the
  `ProcessRunner` port, with the job's time and memory limits. It reports on stdout, one JSON
  object per line after `MLMESH_EVENT `: the framework's version, each client's data commitment,
  each round's metrics. Every other line is the job's log;
- REGISTERING: the final model the launcher wrote goes to the Registry, owned by the job's
  organization, with the job's provenance (privacy figures from our accountant, not the app's).

Access (docs/security.md): a job belongs to the organization that created it; anyone else is told
it does not exist, as for an unknown id. A caller of None is a mesh component (tests in-process):
trusted like the owner.

Real mode (clients on their own machines, each training on its own data; the job's Registry
dataset is the server's data only):
- FLARE: the job runs on a RUNNING FLARE server of its organization (`flare_servers.py`); a real
  job that does not succeed is also aborted on that server (`Frameworks.abort`);
- FedPATE: the job's launcher starts a SuperLink over TLS (the job's own CA) on the address and
  port range the operator configured (`FlowerReal`) and reports it with the CA certificate; the
  job's `flower_join` tells the owner how client owners' SuperNodes join, and the CA certificate
  downloads through `root_certificates`. The ServerApp waits `join_timeout_seconds` for
  num_teachers / teachers_per_node SuperNodes; the SuperLink is in the job's process group.

On start, jobs a previous process was running are FAILED with a reason and their process groups
killed (real FLARE jobs aborted on their server); QUEUED ones start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import re
import shlex
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import dp_accounting
import numpy as np
from dp_accounting import rdp as dp_rdp

from servers.common import errors, ids
from servers.common.access import Access, access
from servers.common.processes import RunRequest
from servers.federation.domain import appconfig, privacy, specs
from servers.federation.domain.flare_servers import FlareServers
from servers.federation.domain.jobs import (
    CANCEL_REASON,
    RESTART_REASON,
    ClientCommitment,
    ClientMetrics,
    FlowerJoin,
    Job,
    Limits,
    LogLine,
    Page,
    RoundMetrics,
    State,
    commitments_to_json,
    job_not_found,
    privacy_to_json,
    request_to_json,
)
from servers.federation.domain.ports import Frameworks, JobRepository, ModelIntake, ProcessRunner, Registry
from servers.federation.domain.records import (
    FRAMEWORK_NAMES,
    FedPateSpec,
    FlareSpec,
    JobRequest,
    Mode,
    Noise,
    TffSpec,
)

log = logging.getLogger("mlmesh.federation")

EVENT_PREFIX = "MLMESH_EVENT "
MAX_LINE_CHARS = 8192
MAX_REASON_CHARS = 4000
MAX_ROUNDS_KEPT = 10_000
MODEL_FILE = "model.pt"
RESULT_FILE = "result.json"
VOTES_FILE = "votes.json"  # FedPATE: the vote histograms the app writes for the data-dependent analysis
MAX_VOTES_BYTES = 256 << 20


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class FlowerReal:
    """Where real-mode FedPATE jobs' SuperLinks listen (operator settings `flower_real_*`)."""

    host: str = "127.0.0.1"  # the address the SuperLink binds
    public_host: str = ""  # what client owners dial (and the certificate names); default `host`
    tls_names: tuple[str, ...] = ()  # more names in the SuperLink's certificate
    port_min: int = 9200  # the SuperLinks' ports (0 and 0: any free port)
    port_max: int = 9263
    join_timeout_seconds: float = 600.0  # how long a job waits for its SuperNodes
    gate_envoy: str = ""  # the Envoy binary of the jobs' site gates (Fleet API only to the sites)

    @property
    def advertised_host(self) -> str:
        return self.public_host or self.host


@dataclass(frozen=True)
class CoreOptions:
    work_root: Path  # <data_dir>/federation: jobs/<job_id>/
    limits: Limits
    executor: str = "local"
    max_concurrent_jobs: int = 1
    max_log_lines: int = 100_000
    stderr_tail_lines: int = 20
    keep_job_dirs: bool = False
    inherited_env: tuple[tuple[str, str], ...] = ()
    max_dataset_bytes: int = 1 << 30
    flower_real: FlowerReal = field(default_factory=FlowerReal)


class _Changes:
    """Wakes a job's watchers whenever something of it was stored."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, job_id: str) -> asyncio.Event:
        return self._events.setdefault(job_id, asyncio.Event())

    def notify(self, job_id: str) -> None:
        event = self._events.pop(job_id, None)
        if event is not None:
            event.set()


class _Log:
    """A running job's log: lines are kept in order, written in batches, and only then announced."""

    def __init__(self, core: FederationCore, job_id: str):
        self.core, self.job_id = core, job_id
        self.sequence = 0
        self.pending: list[LogLine] = []
        self.truncated = False
        self._writer: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    def add(self, stream: str, text: str) -> None:
        limit = self.core.options.max_log_lines
        if self.sequence >= limit:
            if not self.truncated:
                self.truncated = True
                self._append("federation", f"the log reached {limit} lines; later lines are not stored")
            return
        if len(text) > MAX_LINE_CHARS:
            text = f"{text[:MAX_LINE_CHARS]}... [{len(text) - MAX_LINE_CHARS} more characters]"
        self._append(stream, text)

    def _append(self, stream: str, text: str) -> None:
        self.sequence += 1
        self.pending.append(LogLine(self.sequence, self.core.clock(), stream, text))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_soon())

    async def _write_soon(self) -> None:
        await asyncio.sleep(0.1)
        await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            batch, self.pending = self.pending, []
            if batch:
                await self.core.repo.append_logs(self.job_id, batch)
                self.core._changes.notify(self.job_id)

    async def close(self) -> None:
        # Waited for, never cancelled: a writer cancelled inside flush() would lose the batch it took.
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(Exception):
                await self._writer
        await self.flush()


class StepFailed(Exception):
    """A step of a job failed for a reason the job's owner should read."""


class FederationCore:
    def __init__(self, repo: JobRepository, registry: Registry, runner: ProcessRunner, frameworks: Frameworks,
                 options: CoreOptions, *, clock: Callable[[], dt.datetime] = utcnow,
                 flare_servers: FlareServers | None = None):
        self.repo, self.registry, self.runner, self.frameworks = repo, registry, runner, frameworks
        self.flare_servers = flare_servers  # real-mode FLARE jobs run on these
        self.options, self.clock = options, clock
        self._slots = asyncio.Semaphore(options.max_concurrent_jobs)
        self._tasks: dict[str, asyncio.Task] = {}
        self._ending: dict[str, tuple[State, str]] = {}  # why a task is being cancelled
        self._changes = _Changes()
        self._locks: dict[str, asyncio.Lock] = {}
        self._superlink_ports: dict[str, int] = {}  # live real-mode FedPATE jobs' SuperLink ports

    # -- lifecycle ----------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        return self.options.work_root / "jobs" / job_id

    async def start(self) -> None:
        """Fails what a previous process was running (killing its process groups), starts the QUEUED."""
        for job in await self.repo.live_jobs():
            if job.state is State.QUEUED:
                self._spawn(job)
                continue
            job_dir = self.job_dir(job.job_id)
            if self.runner.kill_leftover(job_dir / "job.pid"):
                log.warning("job %s: killed the processes a previous Federation server left running", job.job_id)
            if _real_flare(job.request):
                await self.frameworks.abort(job.framework, job_dir)  # the FLARE job on its server
            if not self.options.keep_job_dirs:
                await asyncio.to_thread(shutil.rmtree, job_dir, True)
            await self._move(job, State.FAILED, RESTART_REASON)

    async def close(self) -> None:
        """Stops the running jobs (FAILED: the server stopped); QUEUED ones start at the next start."""
        for job_id, task in list(self._tasks.items()):
            self._ending.setdefault(job_id, (State.FAILED, "the Federation server stopped while the job was running"))
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- the API ------------------------------------------------------------------------------

    async def create(self, request: JobRequest, *, caller_org: str | None, organization_id: str = "") -> Job:
        """A QUEUED job of the caller's organization, started at once. Everything is checked first:
        the spec, the limits, the framework, the dataset on behalf of the organization."""
        owner = caller_org if caller_org is not None else organization_id
        if not owner:
            raise errors.InvalidArgument("job.organization_id: a job needs an owner organization (a token with an "
                                         "org claim)", reason="ORGANIZATION_MISSING",
                                         metadata={"field": "job.organization_id"})
        request = specs.check_request(request)
        time_limit, memory_limit = self.options.limits.resolve(request.time_limit_seconds,
                                                               request.memory_limit_bytes)
        request = replace(request, time_limit_seconds=time_limit, memory_limit_bytes=memory_limit)
        framework = request.framework
        assert framework is not None
        await self._dataset(request.data.dataset_id, owner)
        why_not = self.frameworks.available(framework)
        if why_not:
            raise errors.FailedPrecondition(f"{framework} jobs cannot run on this Federation server: {why_not}",
                                            reason="FRAMEWORK_UNAVAILABLE", metadata={"framework": str(framework)})
        if _real_flare(request):
            await self._flare_server(request, owner)
        elif isinstance(request.spec, FlareSpec) and request.spec.flare_server_id:
            raise errors.InvalidArgument("flare.flare_server_id: only for MODE_REAL (a simulated job runs its own "
                                         "FLARE simulator)", reason="FLARE_SERVER_ID_INVALID",
                                         metadata={"field": "flare.flare_server_id"})
        elif request.mode is Mode.REAL and isinstance(request.spec, FedPateSpec):
            self._check_site_gate()
        elif request.mode is Mode.REAL and not isinstance(request.spec, FedPateSpec):
            raise errors.FailedPrecondition(f"job.mode: real mode (clients on their own machines) is built for FLARE "
                                            f"and FedPATE jobs only, not {framework} yet; use MODE_SIMULATION",
                                            reason="MODE_UNAVAILABLE", metadata={"field": "job.mode"})
        job = Job(job_id=str(uuid.uuid4()), organization_id=owner, request=request, state=State.QUEUED,
                  executor=self.options.executor, time_limit_seconds=time_limit, memory_limit_bytes=memory_limit,
                  create_time=self.clock(),
                  privacy=self.final_privacy(request))
        await self.repo.insert(job)
        log.info("federated job %s (%s) queued for %s", job.job_id, framework, owner)
        self._spawn(job)
        return job

    async def get(self, job_id: str, caller_org: str | None) -> Job:
        job = await self.repo.get(ids.parse_id(job_id, "job_id"))
        if access(caller_org, job.organization_id) is not Access.OWNER:
            raise job_not_found(job.job_id)
        return job

    async def list(self, page_size: int, page_token: str, framework: str, caller_org: str | None) -> Page:
        """The caller's organization's jobs, newest first; `framework` as ours or the seed's names."""
        name = ""
        if framework:
            known = FRAMEWORK_NAMES.get(framework.strip().lower())
            if known is None:
                raise errors.InvalidArgument(
                    f"framework: must be one of {', '.join(sorted(FRAMEWORK_NAMES))} or empty, got {framework[:40]!r}",
                    reason="FRAMEWORK_INVALID", metadata={"field": "framework"})
            name = str(known)
        return await self.repo.list(page_size, page_token, name, caller_org)

    async def cancel(self, job_id: str, caller_org: str | None) -> Job:
        """Stops every process of a live job (its whole process group): CANCELLED, nothing registered."""
        job = await self.get(job_id, caller_org)
        if job.final:
            job.moved(State.CANCELLED, now=self.clock())  # raises FailedPrecondition naming the state
        await self._stop(job, State.CANCELLED, CANCEL_REASON)
        return await self.repo.get(job.job_id)

    async def delete(self, job_id: str, caller_org: str | None) -> None:
        """Deletes the record (a live job is cancelled first); a registered model stays in the Registry."""
        job = await self.get(job_id, caller_org)
        if not job.final:
            await self._stop(job, State.CANCELLED, CANCEL_REASON)
        await self.repo.delete(job.job_id)
        self._changes.notify(job.job_id)

    async def root_certificates(self, job_id: str, caller_org: str | None) -> bytes:
        """A real-mode FedPATE job's CA certificate (PEM), which client owners' SuperNodes trust
        (owner only, like a FLARE startup kit)."""
        job = await self.get(job_id, caller_org)
        if not _real_fedpate(job.request):
            raise errors.FailedPrecondition(f"federated job {job.job_id} is not a MODE_REAL FedPATE job: it has no "
                                            "SuperLink for remote SuperNodes", reason="NOT_REAL_FEDPATE",
                                            metadata={"job_id": job.job_id})
        if job.flower_join is None:
            what = "has ended" if job.final else "is starting"
            raise errors.FailedPrecondition(f"federated job {job.job_id} {what} ({job.state}) without a SuperLink "
                                            "listening yet; watch it until its flower_join is set",
                                            reason="SUPERLINK_NOT_READY", metadata={"job_id": job.job_id})
        return job.flower_join.root_certificates_pem.encode()

    async def watch(self, job_id: str, after_sequence: int, caller_org: str | None
                    ) -> AsyncIterator[Job | RoundMetrics | LogLine]:
        """The job now, its log after `after_sequence`, then state changes, rounds and lines until it ends."""
        if after_sequence < 0:
            raise errors.InvalidArgument("after_log_sequence: must be >= 0", reason="AFTER_LOG_SEQUENCE_INVALID",
                                         metadata={"field": "after_log_sequence"})
        job = await self.get(job_id, caller_org)
        sent_rounds = len(job.rounds)
        last = after_sequence
        yield job
        while True:
            changed = self._changes.event(job.job_id)
            # The job first, then its log: a job's lines are stored before it moves to a final
            # state, so every line of a final job is read before the watch ends.
            try:
                fresh = await self.repo.get(job.job_id)
            except errors.NotFound:
                return  # deleted while watched
            while lines := await self.repo.logs_after(job.job_id, last, 1000):
                for line in lines:
                    yield line
                last = lines[-1].sequence
            for metrics in fresh.rounds[sent_rounds:]:
                yield metrics
            sent_rounds = len(fresh.rounds)
            if (fresh.state is not job.state or fresh.result_model_id != job.result_model_id
                    or fresh.flower_join != job.flower_join):
                yield fresh
            job = fresh
            if job.final:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=2.0)

    # -- privacy ------------------------------------------------------------------------------

    @staticmethod
    def final_privacy(request: JobRequest) -> privacy.PrivacyReport:
        """What the job's spec makes the framework spend, in full (our accountant, not the app's claim)."""
        spec = request.spec
        if isinstance(spec, FedPateSpec):
            return _fedpate_privacy(spec, spec.noise_data)
        if isinstance(spec, FlareSpec):
            return _flare_privacy(spec, spec.num_rounds)
        if isinstance(spec, TffSpec):
            return _tff_privacy(spec, spec.num_rounds)
        return privacy.no_guarantee(f"{request.framework}", "this framework's jobs are not accounted yet")

    # -- running a job ------------------------------------------------------------------------

    async def _dataset(self, dataset_id: str, owner: str):
        try:
            return await self.registry.get_dataset(dataset_id, on_behalf_of=owner)
        except errors.NotFound:
            raise errors.NotFound(f"data.dataset_id: dataset {dataset_id} does not exist", reason="DATASET_NOT_FOUND",
                                  metadata={"field": "data.dataset_id", "dataset_id": dataset_id}) from None

    async def _flare_server(self, request: JobRequest, owner: str) -> Path:
        """A real-mode FLARE job's server (the owner's, RUNNING, with enough clients): its admin kit."""
        spec = request.spec
        assert isinstance(spec, FlareSpec)
        if self.flare_servers is None:
            raise errors.FailedPrecondition("job.mode: this Federation server runs no FLARE servers",
                                            reason="MODE_UNAVAILABLE", metadata={"field": "job.mode"})
        server, admin_kit = await self.flare_servers.running(spec.flare_server_id, owner)
        if spec.num_clients > len(server.client_names):
            raise errors.InvalidArgument(
                f"flare.num_clients: {spec.num_clients} clients wanted, FLARE server {server.flare_server_id} has "
                f"{len(server.client_names)} ({', '.join(server.client_names)})", reason="NUM_CLIENTS_INVALID",
                metadata={"field": "flare.num_clients"})
        return admin_kit

    def _check_site_gate(self) -> None:
        """Real-mode FedPATE's SuperLink is reached through an Envoy (the site gate) or not at all."""
        gate = self.options.flower_real.gate_envoy
        if not gate or not Path(gate).is_file():
            raise errors.FailedPrecondition(
                f"real mode needs Envoy for the SuperLink's site gate, and {gate or 'none'} is not a file: set "
                "MLMESH_FEDERATION_FLOWER_REAL_GATE_ENVOY", reason="FRAMEWORK_UNAVAILABLE",
                metadata={"framework": "fedpate"})

    def _real_fedpate_config(self, job: Job, config: dict[str, Any]) -> _JoinPlan:
        """Real-mode FedPATE: the launcher's settings (SuperLink address and port, certificate names,
        the wait for SuperNodes) added to `config`; what the job's `flower_join` will say."""
        spec = job.request.spec
        assert isinstance(spec, FedPateSpec)
        real = self.options.flower_real
        self._check_site_gate()
        port = self._superlink_port(job.job_id)
        per_node = spec.teachers_per_node or 1
        config.update({
            "mode": "real", "listen-host": real.host, "listen-port": port, "public-host": real.advertised_host,
            "tls-names": " ".join(dict.fromkeys([real.advertised_host, *real.tls_names])),
            "connect-timeout": float(real.join_timeout_seconds), "site-gate-envoy": real.gate_envoy,
            # The job's dataset is the server's data only: all of it public (queries and the student's test
            # rows); the teachers train on the clients' own files.
            "server-fraction": REAL_SERVER_FRACTION,
        })
        if spec.supernode_public_keys:  # Flower's SuperNode authentication: only these keys join
            config["supernode-public-keys"] = "\n".join(spec.supernode_public_keys)
        return _JoinPlan(address=f"{_host_in_address(real.advertised_host)}:{port}",
                         supernodes_expected=spec.num_teachers // per_node, teachers_per_node=per_node,
                         timeout_seconds=real.join_timeout_seconds, auth=bool(spec.supernode_public_keys))

    def _superlink_port(self, job_id: str) -> int:
        """A free port in the operator's range (or any, for 0-0) on the SuperLink's address, kept for
        the job until it ends."""
        real = self.options.flower_real
        taken = set(self._superlink_ports.values())
        candidates = [0] if real.port_min == real.port_max == 0 else range(real.port_min, real.port_max + 1)
        last_error = "every port is taken by this server's real-mode jobs"
        for candidate in candidates:
            if candidate in taken:
                continue
            with socket.socket(socket.AF_INET6 if ":" in real.host else socket.AF_INET) as probe:
                try:
                    probe.bind((real.host, candidate))
                except OSError as exc:
                    last_error = f"binding port {candidate}: {exc.strerror or exc}"
                    continue
                port = probe.getsockname()[1]
            self._superlink_ports[job_id] = port
            return port
        raise StepFailed(f"no free port for the job's SuperLink on {real.host} in {real.port_min}-{real.port_max} "
                         f"(this server's flower_real_host and flower_real_port_min/max; {last_error}); try again "
                         "when a real-mode job has ended, or ask the operator")

    def _spawn(self, job: Job) -> None:
        task = asyncio.create_task(self._run(job), name=f"federated-job-{job.job_id}")
        self._tasks[job.job_id] = task
        task.add_done_callback(lambda _t, job_id=job.job_id: self._tasks.pop(job_id, None))

    async def _stop(self, job: Job, state: State, reason: str) -> None:
        task = self._tasks.get(job.job_id)
        if task is not None and not task.done():
            self._ending.setdefault(job.job_id, (state, reason))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return
        with contextlib.suppress(errors.FailedPrecondition):
            await self._move(job, state, reason)

    async def _move(self, job: Job, state: State, failure_reason: str = "", **changes: Any) -> Job:
        """Stores `job` in `state` (checked against the stored state) and wakes its watchers."""
        async with self._locks.setdefault(job.job_id, asyncio.Lock()):
            current = await self.repo.get(job.job_id)
            new = current.moved(state, now=self.clock(), failure_reason=failure_reason[:MAX_REASON_CHARS], **changes)
            if not await self.repo.save(new, current.state):
                raise errors.Aborted(f"federated job {job.job_id} changed meanwhile", reason="JOB_CHANGED")
        self._changes.notify(job.job_id)
        log.info("federated job %s: %s%s", job.job_id, state, f" ({failure_reason[:200]})" if failure_reason else "")
        return new

    async def _update(self, job_id: str, **changes: Any) -> Job:
        """Stores changes to a live job's figures (rounds, commitments, version) and wakes its watchers."""
        async with self._locks.setdefault(job_id, asyncio.Lock()):
            current = await self.repo.get(job_id)
            new = replace(current, **changes)
            await self.repo.save(new, current.state)
        self._changes.notify(job_id)
        return new

    async def _run(self, job: Job) -> None:
        joblog = _Log(self, job.job_id)
        job_dir = self.job_dir(job.job_id)
        succeeded = False
        try:
            async with self._slots:
                await self._steps(job, job_dir, joblog)
            succeeded = True
        except asyncio.CancelledError:
            state, reason = self._ending.pop(job.job_id, (State.FAILED, "the job's task was cancelled"))
            await self._end(job, joblog, state, reason)
        except StepFailed as exc:
            await self._end(job, joblog, State.FAILED, str(exc))
        except errors.MeshError as exc:
            await self._end(job, joblog, State.FAILED, exc.message)
        except Exception as exc:
            log.exception("federated job %s failed unexpectedly", job.job_id)
            await self._end(job, joblog, State.FAILED, f"internal error ({type(exc).__name__}); see the server's log")
        finally:
            if not succeeded and _real_flare(job.request):
                await self.frameworks.abort(job.framework, job_dir)  # cancelled or failed: its FLARE job too
            self._ending.pop(job.job_id, None)
            self._locks.pop(job.job_id, None)
            self._superlink_ports.pop(job.job_id, None)
            if not self.options.keep_job_dirs:
                await asyncio.to_thread(shutil.rmtree, job_dir, True)

    async def _end(self, job: Job, joblog: _Log, state: State, reason: str) -> None:
        async def finish() -> None:
            joblog.add("federation", f"job {str(state).lower()}: {reason}")
            with contextlib.suppress(errors.MeshError):
                await joblog.close()
            try:
                await self._move(job, state, reason)
            except (errors.FailedPrecondition, errors.NotFound):
                pass  # it ended meanwhile, or was deleted
            except Exception:
                log.exception("federated job %s: could not record that it ended %s", job.job_id, state)
        # Shielded: the record must say how the job ended even while the server shuts down.
        await asyncio.shield(finish())

    async def _steps(self, job: Job, job_dir: Path, joblog: _Log) -> None:
        note = lambda text: joblog.add("federation", text)  # noqa: E731
        request, owner = job.request, job.organization_id
        job = await self._move(job, State.PREPARING)
        await asyncio.to_thread(shutil.rmtree, job_dir, True)
        for sub in ("data", "output", "home", "tmp"):
            (job_dir / sub).mkdir(parents=True)
        dataset = await self._dataset(request.data.dataset_id, owner)
        if dataset.size_bytes > self.options.max_dataset_bytes:
            raise StepFailed(f"dataset {dataset.dataset_id} has {dataset.size_bytes} bytes, above this server's "
                             f"limit of {self.options.max_dataset_bytes}")
        data_path = job_dir / "data" / "dataset.csv"
        digest = hashlib.sha256()
        size = 0
        with data_path.open("wb") as out:
            async for chunk in self.registry.download_dataset(dataset.dataset_id, on_behalf_of=owner):
                size += len(chunk)
                if size > self.options.max_dataset_bytes:
                    raise StepFailed(f"dataset {dataset.dataset_id} is larger than announced")
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != dataset.sha256:
            raise StepFailed(f"dataset {dataset.dataset_id}: the downloaded bytes do not match its SHA-256 "
                             f"{dataset.sha256}")
        note(f"prepare: dataset {dataset.dataset_id} ({size} bytes, SHA-256 checked)")
        config = appconfig.app_config(request, data_path=data_path, output_dir=job_dir / "output")
        if _real_flare(request):
            # Real mode: the dataset is the server's held-out split; the clients train on their own data.
            config["flare-admin-kit"] = str(await self._flare_server(request, owner))
            note(f"prepare: FLARE server {request.spec.flare_server_id}; clients train on their local data")
        join = None
        if _real_fedpate(request):
            join = self._real_fedpate_config(job, config)
            note(f"prepare: real mode: the job's SuperLink will listen on {config['listen-host']}:"
                 f"{config['listen-port']} (TLS, the job's own CA) for {join.supernodes_expected} SuperNode(s) of "
                 f"{join.teachers_per_node} teacher(s) each, for up to {join.timeout_seconds:.0f} s; the clients "
                 "train on their own data")
        (job_dir / "job.json").write_text(json.dumps(config, indent=1, sort_keys=True))
        launch = self.frameworks.launch(job.framework, job_dir)
        env = dict(self.options.inherited_env)
        env.update(launch.env)
        env.update({"HOME": str(job_dir / "home"), "TMPDIR": str(job_dir / "tmp"), "PYTHONUNBUFFERED": "1",
                    "MLMESH_FEDERATION_JOB": str(job_dir / "job.json")})
        await joblog.flush()
        job = await self._move(job, State.RUNNING)
        note(f"run: {' '.join(launch.argv[:3])} (time limit {job.time_limit_seconds} s, memory limit "
             f"{job.memory_limit_bytes} bytes)")
        events = _Events(self, job, join)

        async def on_line(stream: str, text: str) -> None:
            if stream == "stdout" and text.startswith(EVENT_PREFIX):
                await events.handle(text[len(EVENT_PREFIX):])
            else:
                joblog.add(stream, text)

        result = await self.runner.run(
            RunRequest(argv=launch.argv, cwd=job_dir, env=env, time_limit_seconds=job.time_limit_seconds,
                       memory_limit_bytes=job.memory_limit_bytes, pid_file=job_dir / "job.pid"), on_line)
        if result.limit_failure:
            raise StepFailed(result.limit_failure)
        if result.exit_code != 0:
            tail = "\n".join(result.stderr_tail[-self.options.stderr_tail_lines:]).strip()
            what = (f"the {job.framework} job was killed by signal {-result.exit_code}"
                    if result.exit_code is not None and result.exit_code < 0
                    else f"the {job.framework} job exited with status {result.exit_code}")
            raise StepFailed(f"{what}: {tail}" if tail else what)
        note(f"run: finished in {result.seconds:.1f} s (peak memory {result.peak_rss_bytes} bytes)")
        if isinstance(request.spec, FedPateSpec) and job.privacy is not None:
            report, votes_note = await asyncio.to_thread(
                with_data_dependent, job.privacy, request.spec, job_dir / "output" / VOTES_FILE)
            if votes_note:
                note(f"privacy: {votes_note}")
            await self._update(job.job_id, privacy=report)
        await joblog.flush()
        job = await self._move(job, State.REGISTERING)
        model_id = await self._register(job, job_dir, dataset.dataset_id)
        note(f"register: model {model_id}")
        await joblog.flush()
        await self._move(job, State.SUCCEEDED, result_model_id=model_id)

    async def _register(self, job: Job, job_dir: Path, dataset_id: str) -> str:
        job = await self.repo.get(job.job_id)
        result_path = job_dir / "output" / RESULT_FILE
        if not result_path.is_file():
            raise StepFailed(f"the {job.framework} job ended without writing its result ({RESULT_FILE})")
        try:
            result = json.loads(result_path.read_text())
            input_signature = json.dumps(result["input_signature"], sort_keys=True)
            model_framework = str(result["model_framework"])
            # The model's file name in output/ (a TFF job writes Keras HDF5 as model.h5); a plain name only.
            model_file = str(result.get("model_file", MODEL_FILE))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StepFailed(f"the job's {RESULT_FILE} is malformed: {exc}") from None
        if model_file in ("", ".", "..") or Path(model_file).name != model_file:
            raise StepFailed(f"the job's {RESULT_FILE} names a model file that is not a plain file name")
        model_path = job_dir / "output" / model_file
        if not model_path.is_file():
            raise StepFailed(f"the {job.framework} job ended without writing its model ({model_file})")
        intake = ModelIntake(
            organization_id=job.organization_id, developer_id=job.request.developer_id or f"federation:{job.job_id}",
            display_name=job.request.display_name or f"{job.framework} job {job.job_id[:8]}", dataset_id=dataset_id,
            framework=model_framework, input_signature=input_signature, provenance=provenance(job),
            filename=model_file)

        async def chunks() -> AsyncIterator[bytes]:
            with model_path.open("rb") as f:
                while block := await asyncio.to_thread(f.read, 1 << 20):
                    yield block

        return await self.registry.register_model(intake, chunks())


def provenance(job: Job) -> dict[str, str]:
    """The final model's lineage: the job, the framework and version, every parameter, the privacy
    figures and each client's data commitment (JSON values)."""
    return {
        "federated_job_id": job.job_id,
        "framework": str(job.framework),
        "framework_version": job.framework_version,
        "request": json.dumps(request_to_json(job.request), sort_keys=True),
        "privacy": json.dumps(privacy_to_json(job.privacy), sort_keys=True),
        "client_commitments": json.dumps(commitments_to_json(job.commitments), sort_keys=True),
    }


@dataclass(frozen=True)
class _JoinPlan:
    """What a real-mode FedPATE job's SuperNodes join, as this server configured it."""

    address: str
    supernodes_expected: int
    teachers_per_node: int
    timeout_seconds: float
    auth: bool = False


REAL_SERVER_FRACTION = 0.999999999
MAX_PEM_CHARS = 16_384


def _host_in_address(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def supernode_command(address: str, teachers_per_node: int, auth: bool = False) -> str:
    node_config = f'data-path="<your CSV>" client-id="<your name>" num-teachers={teachers_per_node}'
    key = " --auth-supernode-private-key <your-private-key-file>" if auth else ""
    return (f"flower-supernode --superlink {address} --root-certificates ca.pem{key} "
            f"--node-config {shlex.quote(node_config)}")


class _Events:
    """The launcher's `MLMESH_EVENT` lines: checked, then stored on the job."""

    def __init__(self, core: FederationCore, job: Job, join: _JoinPlan | None = None):
        self.core, self.job, self.join = core, job, join

    async def handle(self, raw: str) -> None:
        try:
            event = json.loads(raw)
            kind = event["type"]
            if kind == "framework":
                await self.core._update(self.job.job_id, framework_version=str(event["version"])[:200])
            elif kind == "commitment":
                commitment = ClientCommitment(client_id=str(event["client_id"])[:200], sha256=str(event["sha256"]),
                                              sample_count=int(event["sample_count"]))
                if len(commitment.sha256) != 64 or commitment.sample_count < 0:
                    raise ValueError("a commitment needs a 64-hex SHA-256 and a sample count >= 0")
                current = await self.core.repo.get(self.job.job_id)
                await self.core._update(self.job.job_id, commitments=(*current.commitments, commitment))
            elif kind == "round":
                await self._round(event)
            elif kind == "join" and self.join is not None:
                await self._joinable(str(event["root_certificates_pem"]))
            elif kind == "supernodes" and self.join is not None:
                joined = int(event["joined"])
                if not 0 <= joined <= 100_000:
                    raise ValueError(f"a SuperNode count must be >= 0, got {joined}")
                current = await self.core.repo.get(self.job.job_id)
                if current.flower_join is not None:
                    await self.core._update(self.job.job_id,
                                            flower_join=replace(current.flower_join, supernodes_joined=joined))
            else:
                raise ValueError(f"unknown event type {kind!r}")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("federated job %s: ignored a malformed event (%s)", self.job.job_id, exc)

    async def _joinable(self, pem: str) -> None:
        """The SuperLink listens: the job says how to join (address and counts from this server's
        own plan; only the CA certificate comes from the launcher, which made it)."""
        if len(pem) > MAX_PEM_CHARS or not pem.startswith("-----BEGIN CERTIFICATE-----"):
            raise ValueError("a join event needs the CA certificate as PEM")
        plan = self.join
        assert plan is not None
        join = FlowerJoin(superlink_address=plan.address, supernodes_expected=plan.supernodes_expected,
                          teachers_per_node=plan.teachers_per_node, root_certificates_pem=pem,
                          join_deadline=self.core.clock() + dt.timedelta(seconds=plan.timeout_seconds),
                          supernode_command=supernode_command(plan.address, plan.teachers_per_node, plan.auth),
                          supernode_auth=plan.auth)
        await self.core._update(self.job.job_id, flower_join=join)

    async def _round(self, event: dict[str, Any]) -> None:
        current = await self.core.repo.get(self.job.job_id)
        if len(current.rounds) >= MAX_ROUNDS_KEPT:
            return
        clients = tuple(ClientMetrics(client_id=str(c["client_id"])[:200], loss=_finite(c.get("loss")),
                                      accuracy=_finite(c.get("accuracy")), num_examples=int(c.get("num_examples", 0)))
                        for c in event.get("clients", ())[:1000])
        spent = _privacy_so_far(current.request, int(event.get("queries", 0)), int(event["round"]))
        metrics = RoundMetrics(round=int(event["round"]), clients=clients, loss=_finite(event.get("loss")),
                               accuracy=_finite(event.get("accuracy")), privacy=spent,
                               seconds=max(0.0, _finite(event.get("seconds"), 0.0)))
        await self.core._update(self.job.job_id, rounds=(*current.rounds, metrics))


def _real_flare(request: JobRequest) -> bool:
    return request.mode is Mode.REAL and isinstance(request.spec, FlareSpec)


def _real_fedpate(request: JobRequest) -> bool:
    return request.mode is Mode.REAL and isinstance(request.spec, FedPateSpec)


def _finite(value: Any, default: float = math.nan) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _confident_gnmax_bound(spec: FedPateSpec, queries: int) -> privacy.PrivacyReport:
    """Confident-GNMax's data-independent bound before knowing which queries pass: each of `queries`
    pays the noisy threshold check (the top count, L2 sensitivity 1, noise sigma_threshold) and is
    counted as answered by GNMax (L2 sensitivity sqrt(2), noise sigma); composed under RDP on PATE's
    orders. Whatever the votes, the run spends no more than this."""
    multiplier = spec.sigma / math.sqrt(2.0)
    epsilon = 0.0
    if queries:
        accountant = dp_rdp.RdpAccountant(list(privacy.PATE_ORDERS))
        accountant.compose(dp_accounting.ComposedDpEvent([
            dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(spec.sigma_threshold), queries),
            dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(multiplier), queries)]))
        epsilon = float(accountant.get_epsilon(spec.delta))
    fmt = lambda v: f"{v:.6g}"  # noqa: E731
    return privacy.PrivacyReport(
        formal_guarantee=True, epsilon=epsilon, delta=spec.delta, mechanism="confident GNMax (PATE)",
        accountant="RDP", compositions=queries,
        parameters={"sigma": fmt(spec.sigma), "noise_multiplier": fmt(multiplier), "l2_sensitivity": fmt(math.sqrt(2)),
                    "threshold": fmt(spec.threshold), "sigma_threshold": fmt(spec.sigma_threshold),
                    "queries": str(queries)},
        explanation=(f"client-level: one teacher's data changes the top vote count by at most 1 and the vote "
                     f"histogram by at most sqrt(2) in L2; each of the {queries} queries pays a noisy threshold check "
                     f"(threshold {fmt(spec.threshold)}, sigma {fmt(spec.sigma_threshold)}) and is counted as answered "
                     f"by GNMax (sigma {fmt(spec.sigma)}) whether or not it passed, composed under RDP "
                     "(data-independent bound)"))


def _fedpate_privacy(spec: FedPateSpec, queries: int) -> privacy.PrivacyReport:
    """Our accountant's figure for `queries` noisy answers. With several teachers per node the same
    figure protects one teacher's data (a training row lies in one teacher's shard), not a whole
    node's: a node moves k votes at once (docs/federation.md, "Privacy")."""
    if spec.threshold > 0:
        report = _confident_gnmax_bound(spec, queries)
    else:
        report = privacy.fedpate(spec.noise.value, epsilon=spec.epsilon, sigma=spec.sigma, queries=queries,
                                 delta=spec.delta)
    per_node = spec.teachers_per_node or 1
    if per_node == 1:
        return report
    explanation = report.explanation.replace("client-level: one teacher's data", "teacher-level (a client's "
                                             f"SuperNode hosts {per_node} teachers; this protects one teacher's "
                                             "shard, not a whole client's data): one teacher's data", 1)
    return replace(report, explanation=explanation,
                   parameters={**report.parameters, "teachers_per_node": str(per_node)})


MAX_VOTES_NESTING = 8
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _nesting(text: str) -> int:
    """The deepest nesting of JSON arrays and objects in `text` (brackets inside strings not counted),
    found without parsing it."""
    depth = deepest = 0
    for char in _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)):
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _read_votes(path: Path, spec: FedPateSpec) -> tuple[list[list[int]], list[bool]]:
    """votes.json's histograms and answered flags, checked against the job's spec; ValueError saying
    what is wrong."""
    size = path.stat().st_size
    if size > MAX_VOTES_BYTES:
        raise ValueError(f"{VOTES_FILE} has {size} bytes, above {MAX_VOTES_BYTES}")
    text = path.read_text()
    depth = _nesting(text)
    if depth > MAX_VOTES_NESTING:
        # Parsed as it is, deep nesting could exhaust the C stack of json's scanner in a process whose
        # recursion limit was raised (a segfault, not an exception): refused before parsing.
        raise ValueError(f"{VOTES_FILE} nests {depth} levels deep; votes are an object of lists of lists")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{VOTES_FILE} is not a JSON object")
    counts, answered = data.get("counts"), data.get("answered")
    if not isinstance(counts, list) or not isinstance(answered, list) or len(counts) != len(answered):
        raise ValueError("counts and answered must be lists of the same length")
    if len(counts) != spec.noise_data:
        raise ValueError(f"{len(counts)} queries, the job asked noise_data {spec.noise_data}")
    if not all(isinstance(a, bool) for a in answered):
        raise ValueError("answered must hold true/false")
    width = len(counts[0]) if counts and isinstance(counts[0], list) else -1
    for row in counts:
        if (not isinstance(row, list) or len(row) != width or width < 1
                or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in row)):
            raise ValueError("counts must be rows of the same length of vote counts >= 0")
        if sum(row) > spec.num_teachers:
            raise ValueError(f"a query has {sum(row)} votes, more than num_teachers {spec.num_teachers}")
    for key, want in (("sigma", spec.sigma), ("threshold", spec.threshold), ("sigma_threshold", spec.sigma_threshold)):
        got = data.get(key, 0.0)
        if not isinstance(got, (int, float)) or not math.isclose(float(got), want, rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError(f"its {key} {got!r} is not the job's {want:g}")
    if spec.threshold <= 0 and not all(answered):
        raise ValueError("without a threshold every query is answered, but some are marked unanswered")
    return counts, answered


def with_data_dependent(report: privacy.PrivacyReport, spec: FedPateSpec,
                        votes_path: Path) -> tuple[privacy.PrivacyReport, str]:
    """`report` (the data-independent guarantee, kept as the headline) with PATE's data-dependent
    (epsilon, delta) of the run's votes beside it in `parameters` and the explanation, and a note
    for the job's log ("" when all went well). Gaussian noise only; a missing or malformed votes.json
    leaves the report as it was, with the note saying why."""
    if spec.noise is not Noise.GAUSSIAN:
        return report, ""
    if not votes_path.is_file():
        return report, f"no {VOTES_FILE}: the data-dependent analysis was not done"
    try:
        counts, answered = _read_votes(votes_path, spec)
        dependent = privacy.fedpate_confident_gnmax(
            np.asarray(counts, dtype=float).reshape(len(counts), -1), answered, sigma=spec.sigma,
            threshold=spec.threshold if spec.threshold > 0 else None,
            sigma_threshold=spec.sigma_threshold if spec.threshold > 0 else None, delta=spec.delta)
    except (OSError, ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        text = f"{VOTES_FILE} is unusable ({str(exc)[:300]}): only the data-independent bound is reported"
        return replace(report, parameters={**report.parameters, "data_dependent_note": text},
                       explanation=f"{report.explanation}. {text}"), text
    fmt = lambda v: f"{v:.6g}"  # noqa: E731
    answered_count = int(sum(answered))
    parameters = {**report.parameters,
                  "data_dependent_epsilon": fmt(dependent.epsilon), "data_dependent_delta": fmt(dependent.delta),
                  "data_dependent_accountant": "RDP, data-dependent (PATE 2018, Theorem 6); not sanitised",
                  "answered": str(answered_count)}
    explanation = (f"{report.explanation}. Data-dependent (PATE 2018): epsilon {fmt(dependent.epsilon)} at delta "
                   f"{fmt(dependent.delta)} from this run's vote histograms ({len(answered)} queries, "
                   f"{answered_count} answered); it depends on the private votes and is not itself sanitised "
                   "(no smooth sensitivity), so it is no guarantee: the guarantee is the data-independent epsilon "
                   f"{fmt(report.epsilon)}")
    return replace(report, parameters=parameters, explanation=explanation), ""


def _flare_privacy(spec: FlareSpec, rounds: int) -> privacy.PrivacyReport:
    if spec.homomorphic_encryption:  # never with a DP filter (specs.check_flare)
        return privacy.no_guarantee(
            "FedAvg with homomorphic encryption (FLARE HE filters, CKKS via tenseal)",
            "homomorphic encryption hides each client's update from the FLARE server, which aggregates only "
            "ciphertexts, but it is not differential privacy: the clients' key decrypts the global model, which is "
            "released without noise, so encryption gives no (epsilon, delta)", compositions=rounds,
            parameters={"privacy_filter": "none", "homomorphic_encryption": "CKKS", "rounds": str(rounds)})
    return privacy.flare_filter(spec.privacy_filter.value, svt_epsilon=spec.svt_epsilon, rounds=rounds)


def _tff_privacy(spec: TffSpec, rounds: int) -> privacy.PrivacyReport:
    """DP-FedAvg: `clients_per_round` of `n_clients` each round, accounted as Poisson sampling at
    that rate (exact Gaussian composition when every client takes part)."""
    return privacy.dp_fedavg(spec.dp_parameter, spec.clients_per_round / spec.n_clients, rounds, delta=spec.delta)


def _privacy_so_far(request: JobRequest, queries: int, rounds: int = 0) -> privacy.PrivacyReport:
    """FedPATE spends privacy only on the noisy queries answered so far (at most the spec's noise_data);
    FLARE with a DP filter on the rounds done so far (at most the spec's num_rounds)."""
    spec = request.spec
    if isinstance(spec, FedPateSpec):
        return _fedpate_privacy(spec, max(0, min(queries, spec.noise_data)))
    if isinstance(spec, FlareSpec):
        return _flare_privacy(spec, max(0, min(rounds, spec.num_rounds)))
    if isinstance(spec, TffSpec):
        return _tff_privacy(spec, max(0, min(rounds, spec.num_rounds)))
    return FederationCore.final_privacy(request)

