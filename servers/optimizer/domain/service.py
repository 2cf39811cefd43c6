"""The Optimizer's core: creates, runs, cancels, deletes and watches agents. Any transport can
serve it (the gRPC servicer is a thin layer over it).

An agent's job runs in this process and one worker process:
- TRAINING: a registered grid and its profiles are fetched from the Registry on behalf of the
  agent's organization and checked against their SHA-256; then the worker
  (servers/optimizer/worker) trains in `.venv-rl` as a separate process group with the agent's
  time and memory limits, reporting one JSON line per finished episode;
- EVALUATING: the worker evaluates the policy on the held-out days beside the three baselines;
- STORING: the policy goes to the Registry as a model of the agent's organization (the internal
  CreateModelVersion intake: the Registry deploys its contract and verifies the bytes' hash on
  the ledger), with the environment, algorithm, library versions, hyperparameters, seed and
  evaluation as its record.

Access (docs/security.md): an agent belongs to the organization that created it; anyone else is
told it does not exist, exactly as for an unknown id. A caller of None is a mesh component (tests
in-process): trusted like the owner.

On start, agents a previous process was running are FAILED with a reason and their worker's
process group killed; QUEUED ones start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from servers.common import errors, ids
from servers.common import blobs
from servers.common.access import Access, access
from servers.common.watchers import Watcher
from servers.optimizer.domain import agents as A
from servers.optimizer.domain.agents import Agent, AgentSpec, Episode, Limits
from servers.optimizer.domain.ports import AgentRepository, PolicyIntake, Registry, Worker
from servers.optimizer.worker import spec as worker_spec

log = logging.getLogger("mlmesh.optimizer")

MAX_REASON_CHARS = 4000
MAX_NAME_CHARS = 256
MAX_DAY = 100_000
MAX_EVALUATE_DAYS = 100
MAX_FORECAST_BYTES = 4 << 20  # the contract's limit on forecast_csv; a forecast dataset too
# The worker's spec fields under the names the contract gives them.
_FIELD_NAMES = {"n_shiftable": "shiftable_loads", "max_actions": "actions_per_day"}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _invalid(field: str, message: str, reason: str = "AGENT_INVALID") -> errors.InvalidArgument:
    return errors.InvalidArgument(f"agent.{field}: {message}", reason=reason, metadata={"field": f"agent.{field}"})


@dataclass(frozen=True)
class CoreOptions:
    work_root: Path  # <data_dir>/optimizer: agents/<agent_id>/
    limits: Limits
    max_concurrent_jobs: int = 1
    keep_work_dirs: bool = False
    optimize_time_limit_seconds: int = 300
    evaluate_time_limit_seconds: int = 1800
    max_download_bytes: int = 1 << 30  # a grid, profiles or policy larger than this is refused


def _owned(agent: Agent, caller_org: str | None) -> Agent:
    """Agents are never shared: anyone but the owner (or a mesh server) is told it does not exist."""
    if access(caller_org, agent.organization_id) is not Access.OWNER:
        raise A.agent_not_found(agent.agent_id)
    return agent


def validate(spec: AgentSpec) -> AgentSpec:
    """The spec with defaults filled in; InvalidArgument naming the field otherwise. The worker's
    own spec check (hyperparameters per algorithm, day ranges) runs here too, so a bad spec is
    refused before any job starts."""
    name = spec.display_name.strip()
    if not name:
        raise _invalid("display_name", "required")
    if len(name) > MAX_NAME_CHARS:
        raise _invalid("display_name", f"longer than {MAX_NAME_CHARS} characters")
    if spec.algorithm not in A.ALGORITHMS:
        raise _invalid("algorithm", f"{spec.algorithm or 'unset'} is not one of {', '.join(A.ALGORITHMS)}",
                       reason="ALGORITHM_INVALID")
    grid = spec.grid
    if grid.registered:
        if grid.simbench_code:
            raise _invalid("grid", "give a SimBench code or a registered grid, not both")
        ids.parse_id(grid.grid_dataset_id, "agent.grid.registered.grid_dataset_id")
        ids.parse_id(grid.profiles_dataset_id, "agent.grid.registered.profiles_dataset_id")
    else:
        code = grid.simbench_code.strip() or A.DEFAULT_GRID
        if not all(c.isalnum() or c in "-_." for c in code):
            raise _invalid("grid.simbench_code", f"{code!r} is not a SimBench code such as {A.DEFAULT_GRID}")
        grid = A.GridSource(simbench_code=code)
    if not 0 <= spec.seed < 2**32:
        raise _invalid("seed", f"{spec.seed} is outside 0..2**32-1 (NumPy's and PyTorch's seed range)")
    reward = spec.reward or "level"
    if reward not in A.REWARDS:
        raise _invalid("reward", f"{reward!r} is not one of {', '.join(A.REWARDS)}")
    for field_name, (first, last) in (("train_days", spec.train_days), ("eval_days", spec.eval_days)):
        if last > MAX_DAY:
            raise _invalid(field_name, f"last day {last} is beyond {MAX_DAY}")
    spec = replace(spec, display_name=name, grid=grid, reward=reward, shiftable_loads=spec.shiftable_loads or 7,
                   actions_per_day=spec.actions_per_day or 24)
    raw = {"algorithm": spec.algorithm, "total_timesteps": spec.total_timesteps, "seed": spec.seed,
           "train_days": list(spec.train_days), "eval_days": list(spec.eval_days), "n_shiftable": spec.shiftable_loads,
           "max_actions": spec.actions_per_day, "reward": reward,
           "hyperparameters": {k: v for k, v in spec.hyperparameters.items()}}
    try:
        parsed = worker_spec.parse(raw)
    except worker_spec.SpecError as exc:
        field_name = _FIELD_NAMES.get(exc.field, exc.field)
        raise _invalid(field_name, str(exc).partition(": ")[2] or str(exc)) from None
    return replace(spec, hyperparameters=dict(parsed.hyperparameters))


class OptimizerCore:
    def __init__(self, repo: AgentRepository, registry: Registry, worker: Worker, options: CoreOptions, *,
                 clock: Callable[[], dt.datetime] = utcnow):
        self.repo, self.registry, self.worker, self.options, self.clock = repo, registry, worker, options, clock
        self._slots = asyncio.Semaphore(options.max_concurrent_jobs)
        self._tasks: dict[str, asyncio.Task] = {}
        self._cancel_requested: set[str] = set()
        self._watchers: dict[str, set[Watcher]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closing = False

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Fails the agents a previous process was running (killing what its worker left) and
        starts the queued ones."""
        for agent in await self.repo.live_agents():
            if agent.state == A.QUEUED:
                self._spawn(agent)
                continue
            work = self._work_dir(agent.agent_id)
            if self.worker.kill_leftover(work / "worker.pid"):
                log.warning("agent %s: killed the worker a previous Optimizer process left running", agent.agent_id)
            if not self.options.keep_work_dirs:
                await asyncio.to_thread(shutil.rmtree, work, True)
            await self._end(agent, A.FAILED, A.RESTART_REASON)

    async def close(self) -> None:
        """Stops running agents (FAILED: the Optimizer stopped); QUEUED ones resume at the next start."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the API ------------------------------------------------------------------------------

    async def create(self, spec: AgentSpec, *, organization_id: str = "", caller_org: str | None = None) -> Agent:
        org = (caller_org or organization_id).strip()
        if caller_org is not None and organization_id and organization_id != caller_org:
            raise errors.PermissionDenied(f"your token is for organization {caller_org!r}; it cannot create agents "
                                          f"for {organization_id!r}", reason="ORGANIZATION_MISMATCH")
        if not org:
            raise _invalid("organization_id", "required (the caller has no organization)")
        spec = validate(spec)
        time_limit, memory_limit = self.options.limits.resolve(spec.time_limit_seconds, spec.memory_limit_bytes)
        if spec.grid.registered:
            # The Registry decides whether this organization may read them: a stranger's dataset
            # does not exist for the caller (NOT_FOUND, as the Registry words it).
            for dataset_id in (spec.grid.grid_dataset_id, spec.grid.profiles_dataset_id):
                await self.registry.get_dataset(dataset_id, on_behalf_of=org)
        agent = Agent(
            agent_id=str(uuid.uuid4()), organization_id=org, display_name=spec.display_name, grid=spec.grid,
            algorithm=spec.algorithm, hyperparameters=spec.hyperparameters, total_timesteps=spec.total_timesteps,
            seed=spec.seed, train_days=spec.train_days, eval_days=spec.eval_days,
            shiftable_loads=spec.shiftable_loads, actions_per_day=spec.actions_per_day, reward=spec.reward,
            time_limit_seconds=time_limit, memory_limit_bytes=memory_limit, state=A.QUEUED, create_time=self.clock())
        await self.repo.insert(agent)
        log.info("agent %s queued: %s on %s, %d steps", agent.agent_id, agent.algorithm,
                 agent.grid.simbench_code or agent.grid.grid_dataset_id, agent.total_timesteps)
        self._spawn(agent)
        return agent

    async def get(self, agent_id: str, caller_org: str | None = None) -> Agent:
        return _owned(await self.repo.get(ids.parse_id(agent_id, "agent_id")), caller_org)

    async def list(self, page_size: int = 0, page_token: str = "", *, caller_org: str | None = None) -> A.Page:
        """The caller's organization's agents, newest first (every agent for an internal caller)."""
        return await self.repo.list(page_size, page_token, caller_org)

    async def cancel(self, agent_id: str, caller_org: str | None = None) -> Agent:
        agent = await self.get(agent_id, caller_org)
        if agent.final:
            A.check_transition(agent.agent_id, agent.state, A.CANCELLED)
        self._cancel_requested.add(agent.agent_id)
        task = self._tasks.get(agent.agent_id)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return await self.repo.get(agent.agent_id)
        return await self._end(agent, A.CANCELLED, A.CANCEL_REASON)

    async def delete(self, agent_id: str, caller_org: str | None = None) -> None:
        """Deletes an agent that has ended; its policy stays in the Registry."""
        agent = await self.get(agent_id, caller_org)
        if not agent.final:
            raise errors.FailedPrecondition(f"agent {agent.agent_id} is {agent.state}; cancel it before deleting it",
                                            reason="AGENT_RUNNING", metadata={"agent_id": agent.agent_id})
        await self.repo.delete(agent.agent_id)

    async def _trained(self, agent_id: str, caller_org: str | None) -> Agent:
        agent = await self.get(agent_id, caller_org)
        if agent.state != A.SUCCEEDED or not agent.model_id:
            raise errors.FailedPrecondition(f"agent {agent.agent_id} is {agent.state}; only a SUCCEEDED agent has a "
                                            "policy to use", reason="AGENT_NOT_TRAINED",
                                            metadata={"agent_id": agent.agent_id, "state": agent.state})
        return agent

    @contextlib.asynccontextmanager
    async def _policy(self, agent: Agent) -> AsyncIterator[tuple[Path, dict[str, Any]]]:
        """A work dir holding the agent's policy (downloaded from the Registry on behalf of the
        agent's organization: checked against the ledger there and against the model's SHA-256
        here) and, for a registered grid, its files (checked again); with the worker spec."""
        org = agent.organization_id
        work = self.options.work_root / "use" / uuid.uuid4().hex
        work.mkdir(parents=True)
        try:
            sha, size = await self.registry.model_artifact(agent.model_id, on_behalf_of=org)
            await blobs.download_to_file(self.registry.download_model(agent.model_id, on_behalf_of=org),
                                         work / "policy.zip", sha256=sha, size_bytes=size,
                                         max_bytes=self.options.max_download_bytes, what=f"model {agent.model_id}")
            spec = agent.worker_spec()
            if agent.grid.registered:
                await self._fetch(agent, agent.grid.grid_dataset_id, work / "grid.json")
                await self._fetch(agent, agent.grid.profiles_dataset_id, work / "profiles.csv")
                spec.update(grid=str(work / "grid.json"), profiles=str(work / "profiles.csv"))
            yield work, spec
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def optimize(self, agent_id: str, day: int, caller_org: str | None = None, *,
                       forecast: A.Forecast = A.Forecast()) -> A.DayPlan:
        """Plans `day` of the agent's profiles, or a forecast of one day (a CSV inline or a Registry
        dataset the caller may read, checked against its SHA-256), with the agent's stored policy
        played in a worker process."""
        agent = await self._trained(agent_id, caller_org)
        if day < 0:
            raise errors.InvalidArgument(f"day {day} is negative", reason="DAY_INVALID", metadata={"field": "day"})
        if len(forecast.csv) > MAX_FORECAST_BYTES:
            raise errors.InvalidArgument(f"forecast_csv is longer than {MAX_FORECAST_BYTES} bytes (one day of 96 "
                                         "rows needs far less)", reason="FORECAST_INVALID",
                                         metadata={"field": "forecast_csv"})
        if forecast.dataset_id:
            ids.parse_id(forecast.dataset_id, "forecast_dataset_id")
        async with self._policy(agent) as (work, spec):
            source, forecast_sha = f"profiles day {day}", ""
            forecast_path = None
            if forecast:
                forecast_path = work / "forecast.csv"
                if forecast.dataset_id:
                    # The caller's right to the forecast decides, not the agent's organization's.
                    reader = caller_org if caller_org is not None else agent.organization_id
                    forecast_sha = await self._fetch_as(reader, forecast.dataset_id, forecast_path,
                                                        limit=MAX_FORECAST_BYTES)
                    source = f"forecast dataset {forecast.dataset_id}"
                else:
                    await asyncio.to_thread(forecast_path.write_bytes, forecast.csv)
                    forecast_sha = hashlib.sha256(forecast.csv).hexdigest()
                    source = "forecast (inline CSV)"
            try:
                out = await self.worker.optimize(spec, work / "policy.zip", day, work,
                                                 time_limit_seconds=self.options.optimize_time_limit_seconds,
                                                 memory_limit_bytes=agent.memory_limit_bytes, forecast=forecast_path)
            except errors.InvalidArgument as exc:
                if not forecast.dataset_id or exc.metadata.get("field") != "forecast_csv":
                    raise
                raise errors.InvalidArgument(exc.message.replace("forecast_csv:", f"forecast_dataset_id: dataset "
                                                                 f"{forecast.dataset_id}:", 1),
                                             reason=exc.reason, metadata={"field": "forecast_dataset_id"}) from None
            return A.plan_from_worker(out, agent.model_id, source=source, forecast_sha256=forecast_sha)

    async def evaluate(self, agent_id: str, days: tuple[int, int] | None = None,
                       caller_org: str | None = None) -> tuple[dict[str, Any], str]:
        """The agent's stored policy against the three baselines on held-out days (default: its
        evaluation days); returns the evaluation summary and the policy's model id."""
        agent = await self._trained(agent_id, caller_org)
        first, last = days if days is not None else agent.eval_days
        if not 0 <= first < last:
            raise errors.InvalidArgument(f"days [{first}, {last}) is empty or negative", reason="DAYS_INVALID",
                                         metadata={"field": "days"})
        if last - first > MAX_EVALUATE_DAYS:
            raise errors.InvalidArgument(f"days [{first}, {last}) is {last - first} days; at most "
                                         f"{MAX_EVALUATE_DAYS} per call", reason="DAYS_INVALID",
                                         metadata={"field": "days"})
        train_first, train_last = agent.train_days
        if first < train_last and train_first < last:
            raise errors.InvalidArgument(f"days [{first}, {last}) overlap the days the agent trained on "
                                         f"[{train_first}, {train_last}): evaluation days must be held out",
                                         reason="DAYS_NOT_HELD_OUT", metadata={"field": "days"})
        async with self._policy(agent) as (work, spec):
            report = await self.worker.evaluate(spec, work / "policy.zip", (first, last), work,
                                                time_limit_seconds=self.options.evaluate_time_limit_seconds,
                                                memory_limit_bytes=agent.memory_limit_bytes)
        return summary(report), agent.model_id

    async def watch(self, agent_id: str, caller_org: str | None = None) -> AsyncIterator[Agent | Episode]:
        """The agent now, the episodes it finished so far, then live events until it ends."""
        agent_id = ids.parse_id(agent_id, "agent_id")
        _owned(await self.repo.get(agent_id), caller_org)  # before anything of it is sent
        watcher = Watcher()
        self._watchers.setdefault(agent_id, set()).add(watcher)
        try:
            agent = await self.repo.get(agent_id)
            yield agent
            last = 0
            async for episode in self._replay(agent_id, last):
                last = episode.episode
                yield episode
            while not agent.final:
                await watcher.wake.wait()
                watcher.wake.clear()
                if watcher.lagged:
                    watcher.lagged = False
                    watcher.drain()
                    async for episode in self._replay(agent_id, last):
                        last = episode.episode
                        yield episode
                    fresh = await self.repo.get(agent_id)
                    if fresh.state != agent.state:
                        agent = fresh
                        yield agent
                    continue
                for event in watcher.drain():
                    if isinstance(event, Episode):
                        if event.episode > last:
                            last = event.episode
                            yield event
                    elif A.can_transition(agent.state, event.state):
                        agent = event
                        yield agent
        finally:
            subs = self._watchers.get(agent_id)
            if subs is not None:
                subs.discard(watcher)
                if not subs:
                    self._watchers.pop(agent_id, None)

    async def _replay(self, agent_id: str, after: int, page: int = 1000) -> AsyncIterator[Episode]:
        while True:
            episodes = await self.repo.episodes_after(agent_id, after, page)
            for episode in episodes:
                yield episode
            if len(episodes) < page:
                return
            after = episodes[-1].episode

    # -- running an agent's job ---------------------------------------------------------------

    def _work_dir(self, agent_id: str) -> Path:
        return self.options.work_root / "agents" / agent_id

    def _spawn(self, agent: Agent) -> None:
        task = asyncio.create_task(self._run(agent), name=f"optimizer-agent-{agent.agent_id}")
        self._tasks[agent.agent_id] = task
        task.add_done_callback(lambda _t, agent_id=agent.agent_id: self._tasks.pop(agent_id, None))

    def _publish(self, agent_id: str, event) -> None:
        for watcher in self._watchers.get(agent_id, ()):
            watcher.put(event)

    async def _transition(self, agent: Agent, state: str, failure_reason: str = "", **changes) -> Agent:
        """Moves the agent (checked by the state machine and against the stored state) and tells watchers."""
        async with self._locks.setdefault(agent.agent_id, asyncio.Lock()):
            current = await self.repo.get(agent.agent_id)
            new = current.moved(state, now=self.clock(), failure_reason=failure_reason[:MAX_REASON_CHARS], **changes)
            if not await self.repo.save(new, current.state):
                raise errors.Aborted(f"agent {agent.agent_id} changed meanwhile; retry", reason="AGENT_CHANGED")
        self._publish(agent.agent_id, new)
        return new

    async def _end(self, agent: Agent, state: str, reason: str) -> Agent:
        """Ends the agent FAILED or CANCELLED unless it has already ended."""
        current = await self.repo.get(agent.agent_id)
        if current.final:
            return current
        log.info("agent %s %s: %s", agent.agent_id, state, reason)
        return await self._transition(current, state, reason)

    async def _run(self, agent: Agent) -> None:
        work = self._work_dir(agent.agent_id)
        try:
            async with self._slots:
                if (await self.repo.get(agent.agent_id)).final:
                    return  # cancelled while queued
                await self._train(agent, work)
        except asyncio.CancelledError:
            if agent.agent_id in self._cancel_requested:
                await asyncio.shield(self._end(agent, A.CANCELLED, A.CANCEL_REASON))
            else:
                await asyncio.shield(self._end(agent, A.FAILED, "the Optimizer stopped while the agent was training"
                                               if self._closing else "the agent's job was interrupted"))
        except errors.MeshError as exc:
            await self._end(agent, A.FAILED, exc.message)
        except Exception as exc:  # noqa: BLE001 - a bug must still end the agent
            log.exception("agent %s: internal error", agent.agent_id)
            await self._end(agent, A.FAILED, f"internal error in the Optimizer ({type(exc).__name__}); see its log")
        finally:
            self._cancel_requested.discard(agent.agent_id)
            self._locks.pop(agent.agent_id, None)
            if not self.options.keep_work_dirs:
                await asyncio.to_thread(shutil.rmtree, work, True)

    async def _fetch(self, agent: Agent, dataset_id: str, dest: Path) -> str:
        """Downloads a dataset on behalf of the agent's organization; DataLoss unless its bytes have
        the SHA-256 the Registry records. Returns that SHA-256."""
        return await self._fetch_as(agent.organization_id, dataset_id, dest)

    async def _fetch_as(self, org: str, dataset_id: str, dest: Path, limit: int = 0) -> str:
        info = await self.registry.get_dataset(dataset_id, on_behalf_of=org)
        await blobs.download_to_file(self.registry.download_dataset(dataset_id, on_behalf_of=org), dest,
                                     sha256=info.sha256.lower(), size_bytes=info.size_bytes,
                                     max_bytes=limit or self.options.max_download_bytes, what=f"dataset {dataset_id}")
        return info.sha256.lower()

    async def _train(self, agent: Agent, work: Path) -> None:
        if work.exists():
            await asyncio.to_thread(shutil.rmtree, work, True)
        work.mkdir(parents=True)
        agent = await self._transition(agent, A.TRAINING)
        spec = agent.worker_spec()
        if agent.grid.registered:
            grid_sha = await self._fetch(agent, agent.grid.grid_dataset_id, work / "grid.json")
            profiles_sha = await self._fetch(agent, agent.grid.profiles_dataset_id, work / "profiles.csv")
            spec.update(grid=str(work / "grid.json"), profiles=str(work / "profiles.csv"))
            agent = await self._save_progress(agent, grid_sha256=grid_sha, profiles_sha256=profiles_sha)

        async def on_event(event: dict[str, Any]) -> None:
            nonlocal agent
            kind = event.get("event")
            if kind == "episode":
                episode = Episode(episode=int(event["episode"]), timesteps=int(event["timesteps"]),
                                  episode_return=float(event["reward"]), scr=float(event["scr"]),
                                  ssr=float(event["ssr"]), violations=int(event["violations"]))
                await self.repo.add_episode(agent.agent_id, episode)
                self._publish(agent.agent_id, episode)
            elif kind == "state" and event.get("state") == A.EVALUATING:
                agent = await self._transition(agent, A.EVALUATING)
            elif kind == "log":
                log.debug("agent %s worker: %s", agent.agent_id, event.get("text", ""))

        outcome = await self.worker.train(spec, work, time_limit_seconds=agent.time_limit_seconds,
                                          memory_limit_bytes=agent.memory_limit_bytes, on_event=on_event,
                                          pid_file=work / "worker.pid")
        if outcome.failure:
            raise errors.FailedPrecondition(outcome.failure, reason="TRAINING_FAILED")
        if outcome.policy_path is None:
            raise errors.FailedPrecondition("the worker finished without a policy", reason="TRAINING_FAILED")
        agent = await self.repo.get(agent.agent_id)
        if agent.state == A.TRAINING:  # the worker evaluates before it ends; it may not have said so
            agent = await self._transition(agent, A.EVALUATING)
        evaluation = summary(outcome.result.get("evaluation", {}))
        agent = await self._transition(agent, A.STORING, evaluation=evaluation)
        model_id = await self._store(agent, outcome.policy_path, outcome.result)
        await self._transition(agent, A.SUCCEEDED, model_id=model_id)

    async def _save_progress(self, agent: Agent, **changes) -> Agent:
        new = replace(agent, **changes)
        if not await self.repo.save(new, agent.state):
            raise errors.Aborted(f"agent {agent.agent_id} changed meanwhile", reason="AGENT_CHANGED")
        return new

    async def _store(self, agent: Agent, policy: Path, result: dict[str, Any]) -> str:
        """The policy as a Registry model of the agent's organization, with its record."""
        environment = {"id": "mlmesh/GridShift-v0", **result.get("env", {}), "grid": result.get("grid", "")}
        grid: dict[str, Any]
        if agent.grid.registered:
            grid = {"grid_dataset_id": agent.grid.grid_dataset_id, "grid_sha256": agent.grid_sha256,
                    "profiles_dataset_id": agent.grid.profiles_dataset_id, "profiles_sha256": agent.profiles_sha256}
            dataset_id = agent.grid.grid_dataset_id
        else:
            # A SimBench grid ships inside the simbench package: the environment's description is
            # what the model's contract names as its dataset (uploaded for the organization).
            grid = {"simbench_code": agent.grid.simbench_code}
            description = json.dumps({"environment": environment, "grid": grid}, sort_keys=True, indent=1).encode()
            dataset = await self.registry.upload_dataset(
                agent.organization_id, f"GridShift environment of agent {agent.display_name}",
                "gridshift-environment.json", "application/json", description)
            dataset_id = dataset.dataset_id
        record = {
            "agent_id": agent.agent_id, "environment": environment, "grid": grid,
            "algorithm": result.get("algorithm", agent.algorithm), "library": result.get("library", ""),
            "torch": result.get("torch", ""), "python": result.get("python", ""),
            "hyperparameters": result.get("hyperparameters", agent.hyperparameters), "seed": agent.seed,
            "total_timesteps": agent.total_timesteps, "train_days": list(agent.train_days),
            "eval_days": list(agent.eval_days), "reward": agent.reward, "evaluation": agent.evaluation,
            "training_seconds": result.get("seconds", 0.0),
        }
        signature = {"observation": {"shape": [agent.shiftable_loads * 24 + 24 + 24 + 1], "low": 0, "high": 1},
                     "action": ("multidiscrete" if agent.algorithm in A.MULTIDISCRETE_ALGORITHMS else "discrete"),
                     "action_choices": {"load": agent.shiftable_loads, "hour": 24, "amount": [0.01, 0.05, 0.10],
                                        "direction": ["previous", "next"]}}
        intake = PolicyIntake(
            organization_id=agent.organization_id, developer_id=f"optimizer:{agent.agent_id}",
            display_name=agent.display_name, dataset_id=dataset_id, framework="pytorch",
            input_signature=json.dumps(signature), agent_id=agent.agent_id, timesteps=agent.total_timesteps,
            record=record)

        async def chunks() -> AsyncIterator[bytes]:
            with open(policy, "rb") as f:
                while block := await asyncio.to_thread(f.read, 1 << 20):
                    yield block

        return await self.registry.store_policy(intake, chunks())


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The worker's evaluation without its per-day rows: the days and each policy's figures."""
    out: dict[str, Any] = {"days": list(report.get("days", []))}
    for name in ("agent", "no_shift", "random", "greedy"):
        if name in report:
            out[name] = {k: v for k, v in report[name].items() if k != "per_day"}
    return out
