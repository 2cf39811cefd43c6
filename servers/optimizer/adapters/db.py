"""The Optimizer's PostgreSQL adapter: an asyncpg pool, its own migrations, agents and their
episodes. Its tables start with `optimizer_` and its migrations are recorded in
`optimizer_schema_migrations` under their own advisory lock, so it shares one database with the
other servers. Pool, migrations and keyset pagination are `servers.common.postgres`."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from pathlib import Path

import asyncpg

from servers.common import postgres
from servers.optimizer.domain.agents import Agent, Episode, GridSource, Page, agent_not_found

log = logging.getLogger("mlmesh.optimizer.db")

SCHEMA = postgres.Schema(
    owner="Optimizer",
    migrations_dir=Path(__file__).with_name("migrations"),
    migrations_table="optimizer_schema_migrations",
    lock_name="mlmesh.optimizer.migrations",
    application_name="mlmesh-optimizer",
    logger=log.name,
)

_COLUMNS = ("agent_id", "organization_id", "display_name", "simbench_code", "grid_dataset_id", "profiles_dataset_id",
            "algorithm", "hyperparameters", "total_timesteps", "seed", "train_first", "train_last", "eval_first",
            "eval_last", "shiftable_loads", "actions_per_day", "reward", "time_limit_seconds", "memory_limit_bytes",
            "state", "failure_reason", "timesteps_done", "episodes_done", "last_episode_return", "evaluation",
            "model_id", "grid_sha256", "profiles_sha256", "create_time", "start_time", "end_time")
_JSON = {"hyperparameters", "evaluation"}
_SELECT = "SELECT " + ", ".join(f"{c}::text AS {c}" if c in _JSON else c for c in _COLUMNS) + " FROM optimizer_agents"
_LIVE = "('QUEUED', 'TRAINING', 'EVALUATING', 'STORING')"
_PAGE_TOKENS = postgres.PageTokens(
    scope_key="o",
    invalid_message=("page_token is not a token this service issued; pass the previous next_page_token unchanged, "
                     "or none for the first page"),
    mismatch_message="page_token belongs to another organization's listing",
)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None


def _agent(row: asyncpg.Record) -> Agent:
    v = dict(row)
    return Agent(
        agent_id=str(v["agent_id"]), organization_id=v["organization_id"], display_name=v["display_name"],
        grid=GridSource(v["simbench_code"], v["grid_dataset_id"], v["profiles_dataset_id"]),
        algorithm=v["algorithm"], hyperparameters=json.loads(v["hyperparameters"]),
        total_timesteps=v["total_timesteps"], seed=v["seed"], train_days=(v["train_first"], v["train_last"]),
        eval_days=(v["eval_first"], v["eval_last"]), shiftable_loads=v["shiftable_loads"],
        actions_per_day=v["actions_per_day"], reward=v["reward"], time_limit_seconds=v["time_limit_seconds"],
        memory_limit_bytes=v["memory_limit_bytes"], state=v["state"], failure_reason=v["failure_reason"],
        timesteps_done=v["timesteps_done"], episodes_done=v["episodes_done"],
        last_episode_return=v["last_episode_return"], evaluation=json.loads(v["evaluation"]),
        model_id=v["model_id"], grid_sha256=v["grid_sha256"], profiles_sha256=v["profiles_sha256"],
        create_time=_utc(v["create_time"]), start_time=_utc(v["start_time"]), end_time=_utc(v["end_time"]))


def _values(a: Agent) -> list:
    return [uuid.UUID(a.agent_id), a.organization_id, a.display_name, a.grid.simbench_code, a.grid.grid_dataset_id,
            a.grid.profiles_dataset_id, a.algorithm, json.dumps(a.hyperparameters), a.total_timesteps, a.seed,
            a.train_days[0], a.train_days[1], a.eval_days[0], a.eval_days[1], a.shiftable_loads, a.actions_per_day,
            a.reward, a.time_limit_seconds, a.memory_limit_bytes, a.state, a.failure_reason, a.timesteps_done,
            a.episodes_done, a.last_episode_return, json.dumps(a.evaluation), a.model_id, a.grid_sha256,
            a.profiles_sha256, a.create_time, a.start_time, a.end_time]


class Database(postgres.Postgres):
    """The Optimizer's pool and agent repository (implements `domain.ports.AgentRepository`)."""

    schema = SCHEMA

    async def insert(self, agent: Agent) -> None:
        placeholders = ", ".join(f"${i}::jsonb" if c in _JSON else f"${i}" for i, c in enumerate(_COLUMNS, 1))
        async with self.connection(f"storing agent {agent.agent_id}") as conn:
            await conn.execute(f"INSERT INTO optimizer_agents ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                               *_values(agent))

    async def get(self, agent_id: str) -> Agent:
        async with self.connection(f"reading agent {agent_id}") as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE agent_id = $1", uuid.UUID(agent_id))
        if row is None:
            raise agent_not_found(agent_id)
        return _agent(row)

    async def save(self, agent: Agent, expected_state: str) -> bool:
        """The columns that change while an agent lives (state, times, results); not its spec."""
        async with self.connection(f"updating agent {agent.agent_id}") as conn:
            status = await conn.execute(
                "UPDATE optimizer_agents SET state = $2, failure_reason = $3, evaluation = $4::jsonb, model_id = $5, "
                "grid_sha256 = $6, profiles_sha256 = $7, start_time = $8, end_time = $9 "
                "WHERE agent_id = $1 AND state = $10",
                uuid.UUID(agent.agent_id), agent.state, agent.failure_reason, json.dumps(agent.evaluation),
                agent.model_id, agent.grid_sha256, agent.profiles_sha256, agent.start_time, agent.end_time,
                expected_state)
        return status == "UPDATE 1"

    async def delete(self, agent_id: str) -> None:
        async with self.connection(f"deleting agent {agent_id}") as conn:
            await conn.execute("DELETE FROM optimizer_agents WHERE agent_id = $1", uuid.UUID(agent_id))

    async def list(self, page_size: int, page_token: str, organization_id: str | None) -> Page:
        size = postgres.page_size_limit(page_size)
        if organization_id == "":
            return Page(items=[], next_page_token="")
        items, token = await postgres.keyset_page(
            self, select=_SELECT, id_column="agent_id", filters={"organization_id": organization_id or ""},
            scope=organization_id or "", limit=size, page_token=page_token, convert=_agent, what="listing agents",
            tokens=_PAGE_TOKENS)
        return Page(items=items, next_page_token=token)

    async def live_agents(self) -> list[Agent]:
        async with self.connection("reading live agents") as conn:
            rows = await conn.fetch(f"{_SELECT} WHERE state IN {_LIVE} ORDER BY create_time, agent_id")
        return [_agent(r) for r in rows]

    async def add_episode(self, agent_id: str, episode: Episode) -> None:
        ident = uuid.UUID(agent_id)
        async with self.connection(f"recording an episode of agent {agent_id}") as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO optimizer_agent_episodes (agent_id, episode, timesteps, episode_return, scr, ssr, "
                "violations) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING", ident, episode.episode,
                episode.timesteps, episode.episode_return, episode.scr, episode.ssr, episode.violations)
            await conn.execute(
                "UPDATE optimizer_agents SET timesteps_done = $2, episodes_done = $3, last_episode_return = $4 "
                "WHERE agent_id = $1", ident, episode.timesteps, episode.episode, episode.episode_return)

    async def episodes_after(self, agent_id: str, after: int, limit: int) -> list[Episode]:
        async with self.connection(f"reading the episodes of agent {agent_id}") as conn:
            rows = await conn.fetch(
                "SELECT episode, timesteps, episode_return, scr, ssr, violations FROM optimizer_agent_episodes "
                "WHERE agent_id = $1 AND episode > $2 ORDER BY episode LIMIT $3", uuid.UUID(agent_id), after, limit)
        return [Episode(r["episode"], r["timesteps"], r["episode_return"], r["scr"], r["ssr"], r["violations"])
                for r in rows]

