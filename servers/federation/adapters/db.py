"""The Federation server's PostgreSQL adapter: its own migrations (tables `federation_*`,
recorded in `federation_schema_migrations` under their own advisory lock), jobs and log lines.
The job's spec, rounds, privacy report and client commitments are jsonb in the domain's JSON
form (servers/federation/domain/jobs.py)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from pathlib import Path

import asyncpg

from servers.common import postgres
from servers.federation.domain import jobs as J
from servers.federation.domain.jobs import Job, LogLine, Page, State, job_not_found

log = logging.getLogger("mlmesh.federation.db")

SCHEMA = postgres.Schema(
    owner="Federation",
    migrations_dir=Path(__file__).with_name("migrations"),
    migrations_table="federation_schema_migrations",
    lock_name="mlmesh.federation.migrations",
    application_name="mlmesh-federation",
    logger=log.name,
)

_COLUMNS = ("job_id", "organization_id", "framework", "request", "state", "failure_reason", "framework_version",
            "executor", "time_limit_seconds", "memory_limit_bytes", "rounds", "privacy", "client_commitments",
            "result_model_id", "create_time", "start_time", "end_time", "flower_join")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM federation_jobs"
_LIVE = "(" + ", ".join(f"'{s}'" for s in sorted(J.LIVE)) + ")"
_PAGE_TOKENS = postgres.PageTokens(
    scope_key="f",
    invalid_message=("page_token is not a token this service issued; pass the previous next_page_token unchanged, "
                     "or none for the first page"),
    mismatch_message="page_token belongs to a listing of another framework; keep the filter unchanged while paging",
)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None


def _job(row: asyncpg.Record) -> Job:
    return Job(
        job_id=str(row["job_id"]), organization_id=row["organization_id"],
        request=J.request_from_json(json.loads(row["request"])), state=State(row["state"]),
        executor=row["executor"], time_limit_seconds=row["time_limit_seconds"],
        memory_limit_bytes=row["memory_limit_bytes"], create_time=_utc(row["create_time"]),
        failure_reason=row["failure_reason"], framework_version=row["framework_version"],
        rounds=J.rounds_from_json(json.loads(row["rounds"])),
        privacy=J.privacy_from_json(json.loads(row["privacy"]) if row["privacy"] is not None else None),
        commitments=J.commitments_from_json(json.loads(row["client_commitments"])),
        result_model_id=row["result_model_id"], start_time=_utc(row["start_time"]), end_time=_utc(row["end_time"]),
        flower_join=J.flower_join_from_json(json.loads(row["flower_join"]) if row["flower_join"] is not None else None))


def _values(job: Job) -> list[object]:
    privacy = J.privacy_to_json(job.privacy)
    return [uuid.UUID(job.job_id), job.organization_id, str(job.framework), json.dumps(J.request_to_json(job.request)),
            str(job.state), job.failure_reason, job.framework_version, job.executor, job.time_limit_seconds,
            job.memory_limit_bytes, json.dumps(J.rounds_to_json(job.rounds)),
            None if privacy is None else json.dumps(privacy), json.dumps(J.commitments_to_json(job.commitments)),
            job.result_model_id, job.create_time, job.start_time, job.end_time,
            None if job.flower_join is None else json.dumps(J.flower_join_to_json(job.flower_join))]


class Database(postgres.Postgres):
    """The Federation server's pool and job repository (implements `domain.ports.JobRepository`)."""

    schema = SCHEMA

    async def insert(self, job: Job) -> None:
        placeholders = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1))
        async with self.connection(f"storing federated job {job.job_id}") as conn:
            await conn.execute(f"INSERT INTO federation_jobs ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                               *_values(job))

    async def get(self, job_id: str) -> Job:
        async with self.connection(f"reading federated job {job_id}") as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE job_id = $1", uuid.UUID(job_id))
        if row is None:
            raise job_not_found(job_id)
        return _job(row)

    async def save(self, job: Job, expected_state: str) -> bool:
        changed = [(c, v) for c, v in zip(_COLUMNS, _values(job), strict=True) if c not in ("job_id", "create_time")]
        sets = ", ".join(f"{c} = ${i}" for i, (c, _v) in enumerate(changed, start=3))
        async with self.connection(f"updating federated job {job.job_id}") as conn:
            status = await conn.execute(f"UPDATE federation_jobs SET {sets} WHERE job_id = $1 AND state = $2",
                                        uuid.UUID(job.job_id), str(expected_state), *(v for _c, v in changed))
        return status == "UPDATE 1"

    async def delete(self, job_id: str) -> None:
        async with self.connection(f"deleting federated job {job_id}") as conn:
            await conn.execute("DELETE FROM federation_jobs WHERE job_id = $1", uuid.UUID(job_id))

    async def list(self, page_size: int, page_token: str, framework: str, organization_id: str | None) -> Page:
        """Newest first (keyset pagination), filtered in SQL so every page is full."""
        size = postgres.page_size_limit(page_size)
        if organization_id == "":
            return Page(items=[], next_page_token="")
        items, token = await postgres.keyset_page(
            self, select=_SELECT, id_column="job_id",
            filters={"organization_id": organization_id or "", "framework": framework}, scope=framework, limit=size,
            page_token=page_token, convert=_job, what="listing federated jobs", tokens=_PAGE_TOKENS)
        return Page(items=items, next_page_token=token)

    async def live_jobs(self) -> list[Job]:
        async with self.connection("reading live federated jobs") as conn:
            rows = await conn.fetch(f"{_SELECT} WHERE state IN {_LIVE} ORDER BY create_time, job_id")
        return [_job(r) for r in rows]

    async def append_logs(self, job_id: str, lines: list[LogLine]) -> None:
        ident = uuid.UUID(job_id)
        records = [(ident, ln.sequence, ln.time, ln.stream, ln.text.replace("\x00", "\ufffd")) for ln in lines]
        async with self.connection(f"writing the log of federated job {job_id}") as conn:
            # ON CONFLICT-free: sequences are this process's own; a deleted job's lines are dropped.
            exists = await conn.fetchval("SELECT 1 FROM federation_jobs WHERE job_id = $1", ident)
            if exists:
                await conn.copy_records_to_table("federation_job_logs", records=records,
                                                 columns=["job_id", "sequence", "time", "stream", "text"])

    async def logs_after(self, job_id: str, after_sequence: int, limit: int) -> list[LogLine]:
        async with self.connection(f"reading the log of federated job {job_id}") as conn:
            rows = await conn.fetch(
                "SELECT sequence, time, stream, text FROM federation_job_logs WHERE job_id = $1 AND sequence > $2 "
                "ORDER BY sequence LIMIT $3", uuid.UUID(job_id), after_sequence, limit)
        return [LogLine(r["sequence"], _utc(r["time"]), r["stream"], r["text"]) for r in rows]
