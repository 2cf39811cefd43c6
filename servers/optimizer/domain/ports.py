"""What the Optimizer's core needs from the outside world. Adapters implement these."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from servers.optimizer.domain.agents import Agent, Episode, Page


@dataclass(frozen=True)
class DatasetInfo:
    dataset_id: str
    sha256: str
    size_bytes: int
    content_type: str = ""
    filename: str = ""


@dataclass(frozen=True)
class PolicyIntake:
    """A trained policy as the Registry records it (a model of the agent's organization)."""

    organization_id: str
    developer_id: str
    display_name: str
    dataset_id: str  # the grid dataset, or the environment record uploaded for a SimBench grid
    framework: str
    input_signature: str  # JSON: the observation and action spaces
    agent_id: str
    timesteps: int
    record: dict[str, Any]  # provenance: environment, algorithm, versions, hyperparameters, seed, evaluation


class Registry(Protocol):
    """The Registry RPCs the Optimizer calls. `on_behalf_of`: the organization whose access the
    Registry applies (docs/security.md)."""

    async def get_dataset(self, dataset_id: str, *, on_behalf_of: str) -> DatasetInfo: ...
    def download_dataset(self, dataset_id: str, *, on_behalf_of: str) -> AsyncIterator[bytes]: ...
    async def upload_dataset(self, organization_id: str, display_name: str, filename: str, content_type: str,
                             data: bytes) -> DatasetInfo:
        """A new dataset of `organization_id`, uploaded on its behalf."""
    async def model_artifact(self, model_id: str, *, on_behalf_of: str) -> tuple[str, int]:
        """(SHA-256, size) of a TRAINED model's artifact (FailedPrecondition if it is not TRAINED)."""
    def download_model(self, model_id: str, *, on_behalf_of: str) -> AsyncIterator[bytes]:
        """The model's bytes; the Registry checks them against the ledger before the first byte."""
    async def store_policy(self, intake: PolicyIntake, chunks: AsyncIterator[bytes]) -> str:
        """Stores the policy (internal CreateModelVersion: anchored and verified on the ledger);
        returns the model id."""


class AgentRepository(Protocol):
    async def insert(self, agent: Agent) -> None: ...
    async def get(self, agent_id: str) -> Agent: ...
    async def save(self, agent: Agent, expected_state: str) -> bool:
        """Writes `agent` if its stored state is still `expected_state`; False otherwise."""
    async def delete(self, agent_id: str) -> None: ...
    async def list(self, page_size: int, page_token: str, organization_id: str | None) -> Page:
        """Newest first; only `organization_id`'s agents unless it is None (every agent)."""
    async def live_agents(self) -> list[Agent]: ...
    async def add_episode(self, agent_id: str, episode: Episode) -> None:
        """Records the episode and the agent's progress counters."""
    async def episodes_after(self, agent_id: str, after: int, limit: int) -> list[Episode]: ...


class TrainOutcome(Protocol):
    failure: str  # "" when the worker succeeded
    policy_path: Path | None
    result: dict[str, Any]


class Worker(Protocol):
    """Runs the training worker as a separate process with limits; cancelling the call kills its
    process group."""

    async def train(self, spec: dict[str, Any], work_dir: Path, *, time_limit_seconds: int, memory_limit_bytes: int,
                    on_event: Callable[[dict[str, Any]], Awaitable[None]],
                    pid_file: Path | None = None) -> TrainOutcome: ...

    async def optimize(self, spec: dict[str, Any], policy: Path, day: int, work_dir: Path, *,
                       time_limit_seconds: int, memory_limit_bytes: int,
                       forecast: Path | None = None) -> dict[str, Any]:
        """Plays `day` (or the one-day forecast CSV) with the policy in a worker process; the plan."""

    async def evaluate(self, spec: dict[str, Any], policy: Path, days: tuple[int, int], work_dir: Path, *,
                       time_limit_seconds: int, memory_limit_bytes: int) -> dict[str, Any]:
        """The policy beside the three baselines on `days` in a worker process; the report."""

    def kill_leftover(self, pid_file: Path) -> bool: ...
