"""The Trainer's PostgreSQL adapter: an asyncpg pool, its own migrations, jobs and log lines.

It follows the Registry's adapter (servers/registry/adapters/db.py) but owns its tables: they
all start with `trainer_`, and migrations are recorded in `trainer_schema_migrations` under
their own advisory lock, so the Trainer and the Registry can share one database. The pool,
migrations and keyset pagination are `servers.common.postgres`, set up here by `SCHEMA`.
Errors: an unreachable database is `Unavailable` (DSN shown without its password); an unknown
job `NotFound`; a bad page token `InvalidArgument`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from pathlib import Path

import asyncpg

from servers.common import errors, postgres
from servers.trainer.domain.jobs import REPRODUCTION, Job, LogLine, Page, Reproduction, job_not_found

log = logging.getLogger("mlmesh.trainer.db")

SCHEMA = postgres.Schema(
    owner="Trainer",
    migrations_dir=Path(__file__).with_name("migrations"),
    migrations_table="trainer_schema_migrations",
    lock_name="mlmesh.trainer.migrations",
    application_name="mlmesh-trainer",
    logger=log.name,
)

_JOB_COLUMNS = ("job_id", "model_id", "dataset_id", "state", "failure_reason", "executor", "time_limit_seconds",
                "memory_limit_bytes", "framework", "create_time", "start_time", "end_time", "organization_id", "purpose",
                "reproduction")
_SELECT_JOB = f"SELECT {', '.join(_JOB_COLUMNS)} FROM trainer_jobs"
_LIVE = "('QUEUED', 'PRE_TRAINING', 'TRAINING', 'POST_TRAINING')"


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None


def _job(row: asyncpg.Record) -> Job:
    v = dict(row)
    v["job_id"], v["model_id"] = str(v["job_id"]), str(v["model_id"])
    for key in ("create_time", "start_time", "end_time"):
        v[key] = _utc(v[key])
    v["reproduction"] = Reproduction.from_json(json.loads(v["reproduction"])) if v["reproduction"] else None
    return Job(**v)


def _reproduction_json(job: Job) -> str | None:
    return json.dumps(job.reproduction.to_json()) if job.reproduction is not None else None


_PAGE_TOKENS = postgres.model_id_page_tokens()


class Database(postgres.Postgres):
    """The Trainer's pool and job repository (implements `domain.ports.JobRepository`)."""

    schema = SCHEMA

    # -- jobs ---------------------------------------------------------------------------------

    async def insert_or_get_live(self, job: Job) -> tuple[Job, bool]:
        """Stores `job` unless its model has a live job of the same purpose (for a reproduction: of
        the same organization); the partial unique indexes decide."""
        values = [getattr(job, c) for c in _JOB_COLUMNS]
        values[0], values[1] = uuid.UUID(job.job_id), uuid.UUID(job.model_id)
        values[-1] = _reproduction_json(job)
        placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        if job.purpose == REPRODUCTION:
            target = f"(model_id, organization_id) WHERE state IN {_LIVE} AND purpose = 'REPRODUCTION'"
            live_sql = (f"{_SELECT_JOB} WHERE model_id = $1 AND organization_id = $2 AND state IN {_LIVE} "
                        "AND purpose = 'REPRODUCTION'")
            live_args = (values[1], job.organization_id)
        else:
            target = f"(model_id) WHERE state IN {_LIVE} AND purpose = 'TRAINING'"
            live_sql = f"{_SELECT_JOB} WHERE model_id = $1 AND state IN {_LIVE} AND purpose = 'TRAINING'"
            live_args = (values[1],)
        for _ in range(3):
            async with self.connection(f"storing a job for model {job.model_id}") as conn:
                row = await conn.fetchrow(
                    f"INSERT INTO trainer_jobs ({', '.join(_JOB_COLUMNS)}) VALUES ({placeholders}) "
                    f"ON CONFLICT {target} DO NOTHING RETURNING job_id", *values)
                if row is not None:
                    return job, True
                live = await conn.fetchrow(live_sql, *live_args)
            if live is not None:
                return _job(live), False
            # The live job ended between the two statements: insert again.
        raise errors.Aborted(f"jobs of model {job.model_id} changed too often; retry", reason="JOB_CHANGED")

    async def get(self, job_id: str) -> Job:
        async with self.connection(f"reading job {job_id}") as conn:
            row = await conn.fetchrow(f"{_SELECT_JOB} WHERE job_id = $1", uuid.UUID(job_id))
        if row is None:
            raise job_not_found(job_id)
        return _job(row)

    async def save(self, job: Job, expected_state: str) -> bool:
        async with self.connection(f"updating job {job.job_id}") as conn:
            status = await conn.execute(
                "UPDATE trainer_jobs SET state = $2, failure_reason = $3, dataset_id = $4, framework = $5, "
                "start_time = $6, end_time = $7, reproduction = $9 WHERE job_id = $1 AND state = $8",
                uuid.UUID(job.job_id), job.state, job.failure_reason, job.dataset_id, job.framework,
                job.start_time, job.end_time, expected_state, _reproduction_json(job))
        return status == "UPDATE 1"

    async def list(self, page_size: int, page_token: str, model_id: str, organization_id: str | None) -> Page:
        """Jobs newest first (keyset pagination), optionally of one model; only `organization_id`'s
        (filtered in SQL, so every page is full) unless it is None: an internal caller sees every job."""
        size = postgres.page_size_limit(page_size)
        if organization_id == "":
            return Page(items=[], next_page_token="")  # no organization owns nothing (and "" is no filter below)
        filters = {"organization_id": organization_id or "", "model_id": uuid.UUID(model_id) if model_id else ""}
        items, token = await postgres.keyset_page(
            self, select=_SELECT_JOB, id_column="job_id", filters=filters, scope=model_id, limit=size,
            page_token=page_token, convert=_job, what="listing jobs", tokens=_PAGE_TOKENS)
        return Page(items=items, next_page_token=token)

    async def jobs_without_organization(self) -> list[Job]:
        async with self.connection("reading jobs without an organization") as conn:
            rows = await conn.fetch(f"{_SELECT_JOB} WHERE organization_id = '' ORDER BY create_time")
        return [_job(r) for r in rows]

    async def set_organization(self, job_id: str, organization_id: str) -> None:
        async with self.connection(f"updating job {job_id}") as conn:
            await conn.execute("UPDATE trainer_jobs SET organization_id = $2 WHERE job_id = $1 AND organization_id = ''",
                               uuid.UUID(job_id), organization_id)

    async def live_jobs(self) -> list[Job]:
        async with self.connection("reading live jobs") as conn:
            rows = await conn.fetch(f"{_SELECT_JOB} WHERE state IN {_LIVE} ORDER BY create_time, job_id")
        return [_job(r) for r in rows]

    async def set_report_pending(self, job_id: str, pending: bool) -> None:
        async with self.connection(f"updating job {job_id}") as conn:
            await conn.execute("UPDATE trainer_jobs SET report_pending = $2 WHERE job_id = $1",
                               uuid.UUID(job_id), pending)

    async def report_pending_jobs(self) -> list[Job]:
        async with self.connection("reading unreported failures") as conn:
            rows = await conn.fetch(f"{_SELECT_JOB} WHERE report_pending ORDER BY create_time")
        return [_job(r) for r in rows]

    # -- logs ---------------------------------------------------------------------------------

    async def append_logs(self, job_id: str, lines: list[LogLine]) -> None:
        ident = uuid.UUID(job_id)
        records = [(ident, ln.sequence, ln.time, ln.stream, ln.text.replace("\x00", "\ufffd")) for ln in lines]
        async with self.connection(f"writing the log of job {job_id}") as conn:
            await conn.copy_records_to_table("trainer_job_logs", records=records,
                                             columns=["job_id", "sequence", "time", "stream", "text"])

    async def logs_after(self, job_id: str, after_sequence: int, limit: int) -> list[LogLine]:
        async with self.connection(f"reading the log of job {job_id}") as conn:
            rows = await conn.fetch(
                "SELECT sequence, time, stream, text FROM trainer_job_logs WHERE job_id = $1 AND sequence > $2 "
                "ORDER BY sequence LIMIT $3", uuid.UUID(job_id), after_sequence, limit)
        return [LogLine(r["sequence"], _utc(r["time"]), r["stream"], r["text"]) for r in rows]

    async def last_log_sequence(self, job_id: str) -> int:
        async with self.connection(f"reading the log of job {job_id}") as conn:
            value = await conn.fetchval("SELECT max(sequence) FROM trainer_job_logs WHERE job_id = $1",
                                        uuid.UUID(job_id))
        return int(value or 0)
