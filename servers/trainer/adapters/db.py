"""The Trainer's PostgreSQL adapter: an asyncpg pool, its own migrations, jobs and log lines.

It follows the Registry's adapter (servers/registry/adapters/db.py) but owns its tables: they
all start with `trainer_`, and migrations are recorded in `trainer_schema_migrations` under
their own advisory lock, so the Trainer and the Registry can share one database.
Errors: an unreachable database is `Unavailable` (DSN shown without its password); an unknown
job `NotFound`; a bad page token `InvalidArgument`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from servers.common import errors
from servers.trainer.domain.jobs import Job, LogLine, Page

log = logging.getLogger("mlmesh.trainer.db")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATIONS_TABLE = "trainer_schema_migrations"
MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"mlmesh.trainer.migrations").digest()[:8], "big", signed=True)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_UNREACHABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.ClientConfigurationError,
)


def redact_dsn(dsn: str) -> str:
    """`dsn` without its password (the Registry's rule)."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparseable database URL>"
    if parts.scheme in ("postgres", "postgresql"):
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, hosts = netloc.rsplit("@", 1)
            netloc = f"{userinfo.split(':', 1)[0]}@{hosts}"
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k.lower() != "password"])
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    return re.sub(r"(?i)password\s*=\s*('[^']*'|\S+)", "password=***", dsn)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise ValueError(f"two migrations have version {version}")
        found[version] = Migration(version, path.stem, path.read_text())
    return [found[v] for v in sorted(found)]


async def apply_migrations(conn: asyncpg.Connection) -> list[int]:
    """Applies pending migrations in one transaction under the Trainer's advisory lock."""
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version integer PRIMARY KEY, name text NOT NULL, "
            "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"]: r for r in await conn.fetch(f"SELECT version, name, checksum FROM {MIGRATIONS_TABLE}")}
        for mig in load_migrations():
            row = done.get(mig.version)
            if row is not None:
                if row["checksum"] != mig.checksum:
                    raise errors.FailedPrecondition(
                        f"Trainer migration {mig.name} was applied with a different content; add a new migration "
                        "instead of editing an applied one", reason="MIGRATION_CHANGED")
                continue
            log.info("applying Trainer migration %s", mig.name)
            await conn.execute(mig.sql)
            await conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum) VALUES ($1, $2, $3)",
                               mig.version, mig.name, mig.checksum)
            applied.append(mig.version)
    return applied


_JOB_COLUMNS = ("job_id", "model_id", "dataset_id", "state", "failure_reason", "executor", "time_limit_seconds",
                "memory_limit_bytes", "framework", "create_time", "start_time", "end_time")
_SELECT_JOB = f"SELECT {', '.join(_JOB_COLUMNS)} FROM trainer_jobs"
_LIVE = "('QUEUED', 'PRE_TRAINING', 'TRAINING', 'POST_TRAINING')"


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None


def _job(row: asyncpg.Record) -> Job:
    v = dict(row)
    v["job_id"], v["model_id"] = str(v["job_id"]), str(v["model_id"])
    for key in ("create_time", "start_time", "end_time"):
        v[key] = _utc(v[key])
    return Job(**v)


@dataclass(frozen=True)
class _Cursor:
    """Where a page starts: after (create_time, job_id), under one model filter."""

    create_time: dt.datetime
    job_id: uuid.UUID
    model_id: str

    def encode(self) -> str:
        raw = json.dumps({"v": 1, "t": self.create_time.isoformat(), "id": str(self.job_id), "m": self.model_id},
                         separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> _Cursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            if not isinstance(data, dict) or data.get("v") != 1 or not isinstance(data.get("m"), str):
                raise ValueError("bad token")
            t = dt.datetime.fromisoformat(data["t"])
            if t.tzinfo is None:
                raise ValueError("naive time")
            return cls(t, uuid.UUID(data["id"]), data["m"])
        except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise errors.InvalidArgument(
                "page_token is not a token this service issued; pass the previous next_page_token unchanged, "
                "or none for the first page", reason="PAGE_TOKEN_INVALID") from None


class Database:
    """The Trainer's pool and job repository (implements `domain.ports.JobRepository`)."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, acquire_timeout: float = 10.0):
        self.pool, self.dsn, self.acquire_timeout = pool, dsn, acquire_timeout

    def __repr__(self) -> str:
        return f"Database({redact_dsn(self.dsn)!r})"

    @classmethod
    async def connect(cls, dsn: str, *, min_size: int = 1, max_size: int = 10, connect_timeout: float = 10.0,
                      command_timeout: float | None = 30.0) -> Database:
        """Opens the pool and applies pending migrations; Unavailable if the database cannot be reached."""
        try:
            pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=connect_timeout,
                                             command_timeout=command_timeout,
                                             server_settings={"application_name": "mlmesh-trainer"})
        except _UNREACHABLE as exc:
            raise errors.Unavailable(f"PostgreSQL at {redact_dsn(dsn)} is unavailable while connecting: {exc}",
                                     reason="DATABASE_UNAVAILABLE") from exc
        db = cls(pool, dsn, connect_timeout)
        try:
            async with db.connection("applying migrations") as conn:
                await apply_migrations(conn)
        except BaseException:
            await db.close()
            raise
        return db

    async def close(self) -> None:
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def connection(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        try:
            async with self.pool.acquire(timeout=self.acquire_timeout) as conn:
                yield conn
        except _UNREACHABLE as exc:
            raise errors.Unavailable(
                f"PostgreSQL at {redact_dsn(self.dsn)} is unavailable while {what}: {exc or type(exc).__name__}",
                reason="DATABASE_UNAVAILABLE") from exc

    # -- jobs ---------------------------------------------------------------------------------

    async def insert_or_get_live(self, job: Job) -> tuple[Job, bool]:
        """Stores `job` unless its model has a live job (the partial unique index decides)."""
        values = [getattr(job, c) for c in _JOB_COLUMNS]
        values[0], values[1] = uuid.UUID(job.job_id), uuid.UUID(job.model_id)
        placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        for _ in range(3):
            async with self.connection(f"storing a job for model {job.model_id}") as conn:
                row = await conn.fetchrow(
                    f"INSERT INTO trainer_jobs ({', '.join(_JOB_COLUMNS)}) VALUES ({placeholders}) "
                    f"ON CONFLICT (model_id) WHERE state IN {_LIVE} DO NOTHING RETURNING job_id", *values)
                if row is not None:
                    return job, True
                live = await conn.fetchrow(f"{_SELECT_JOB} WHERE model_id = $1 AND state IN {_LIVE}", values[1])
            if live is not None:
                return _job(live), False
            # The live job ended between the two statements: insert again.
        raise errors.Aborted(f"jobs of model {job.model_id} changed too often; retry", reason="JOB_CHANGED")

    async def get(self, job_id: str) -> Job:
        async with self.connection(f"reading job {job_id}") as conn:
            row = await conn.fetchrow(f"{_SELECT_JOB} WHERE job_id = $1", uuid.UUID(job_id))
        if row is None:
            raise errors.NotFound(f"training job {job_id} does not exist", reason="JOB_NOT_FOUND",
                                  metadata={"job_id": job_id})
        return _job(row)

    async def save(self, job: Job, expected_state: str) -> bool:
        async with self.connection(f"updating job {job.job_id}") as conn:
            status = await conn.execute(
                "UPDATE trainer_jobs SET state = $2, failure_reason = $3, dataset_id = $4, framework = $5, "
                "start_time = $6, end_time = $7 WHERE job_id = $1 AND state = $8",
                uuid.UUID(job.job_id), job.state, job.failure_reason, job.dataset_id, job.framework,
                job.start_time, job.end_time, expected_state)
        return status == "UPDATE 1"

    async def list(self, page_size: int, page_token: str, model_id: str) -> Page:
        """Jobs newest first (keyset pagination), optionally of one model."""
        if page_size < 0:
            raise errors.InvalidArgument(f"page_size {page_size} is negative", reason="PAGE_SIZE_NEGATIVE")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        where: list[str] = []
        args: list[object] = []
        if model_id:
            args.append(uuid.UUID(model_id))
            where.append(f"model_id = ${len(args)}")
        if page_token:
            cursor = _Cursor.decode(page_token)
            if cursor.model_id != model_id:
                raise errors.InvalidArgument("page_token belongs to a listing with a different model_id; keep the "
                                             "filter unchanged while paging", reason="PAGE_TOKEN_MISMATCH")
            args += [cursor.create_time, cursor.job_id]
            where.append(f"(create_time, job_id) < (${len(args) - 1}, ${len(args)})")
        args.append(size + 1)
        sql = (f"{_SELECT_JOB} {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"ORDER BY create_time DESC, job_id DESC LIMIT ${len(args)}")
        async with self.connection("listing jobs") as conn:
            rows = await conn.fetch(sql, *args)
        token = ""
        if len(rows) > size:
            last = rows[size - 1]
            token = _Cursor(last["create_time"], last["job_id"], model_id).encode()
        return Page(items=[_job(r) for r in rows[:size]], next_page_token=token)

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


async def connect(dsn: str, **options) -> Database:
    """`Database.connect(dsn, **options)`: the pool, with the Trainer's migrations applied."""
    return await Database.connect(dsn, **options)
