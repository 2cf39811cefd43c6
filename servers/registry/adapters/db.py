"""The Registry's PostgreSQL adapter: an asyncpg pool, schema migrations, and the dataset repository.

One code path for the embedded PostgreSQL (`servers.devstack.postgres`) and a production one.

Migrations are the files `migrations/NNNN_name.sql`, applied in version order at start. All
pending ones run in one transaction under a transaction-scoped advisory lock, so two Registries
starting at once apply them exactly once (the second waits, then finds nothing to do) and a
failed migration leaves the schema as it was. `schema_migrations` records each version with the
SHA-256 of its file; an applied file that was edited afterwards stops the start-up.

Errors: a database that cannot be reached (refused, down, timed out, restarting, unknown
database, bad credentials) is `Unavailable`, with a message naming the URL without its password;
a duplicate id is `AlreadyExists`; a missing one `NotFound`; bad input `InvalidArgument`.
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
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from asyncpg.exceptions._base import DataError as ArgumentDataError  # a value asyncpg cannot encode

from servers.common import errors
from servers.registry.domain.models import DatasetRecord, Page

log = logging.getLogger("mlmesh.registry.db")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key for migrations: the first 8 bytes of sha256("mlmesh.registry.migrations").
MIGRATION_LOCK_KEY = int.from_bytes(hashlib.sha256(b"mlmesh.registry.migrations").digest()[:8], "big", signed=True)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

# Failures that mean "the database is not there (now)": retrying later may work.
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
    """`dsn` without its password (URL or key=value form), for messages and logs."""
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


def _unavailable(dsn: str, what: str, exc: BaseException) -> errors.Unavailable:
    detail = str(exc) or type(exc).__name__
    return errors.Unavailable(
        f"PostgreSQL at {redact_dsn(dsn)} is unavailable while {what}: {detail}",
        reason="DATABASE_UNAVAILABLE",
        metadata={"database": redact_dsn(dsn)},
    )


# -- migrations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in `directory`, by version. Fails on a misnamed file or a duplicate version."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
        version = int(m.group(1))
        if version in found:
            raise ValueError(f"two migrations have version {version}: {found[version].name} and {path.name}")
        found[version] = Migration(version, path.stem, path.read_text())
    return [found[v] for v in sorted(found)]


async def apply_migrations(conn: asyncpg.Connection, migrations: Iterable[Migration] | None = None) -> list[int]:
    """Applies the pending migrations in one transaction; returns the versions applied now."""
    todo = list(load_migrations() if migrations is None else migrations)
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {r["version"]: r for r in await conn.fetch("SELECT version, name, checksum FROM schema_migrations")}
        for mig in todo:
            row = done.get(mig.version)
            if row is not None:
                if row["checksum"] != mig.checksum:
                    raise errors.FailedPrecondition(
                        f"migration {mig.name} was applied as {row['name']} with a different content "
                        f"(sha256 {row['checksum']}, file has {mig.checksum}); add a new migration instead "
                        "of editing an applied one",
                        reason="MIGRATION_CHANGED",
                    )
                continue
            log.info("applying migration %s", mig.name)
            await conn.execute(mig.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                mig.version, mig.name, mig.checksum,
            )
            applied_now.append(mig.version)
        unknown = sorted(set(done) - {m.version for m in todo})
        if unknown:
            log.warning("the database has migrations this Registry does not know: %s (a newer release ran?)",
                        unknown)
    return applied_now


# -- the pool -----------------------------------------------------------------------------------


class Database:
    """An asyncpg pool on the Registry's database. Make it with `await Database.connect(dsn)`."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, *, acquire_timeout: float = 10.0):
        self.pool = pool
        self.dsn = dsn
        self.acquire_timeout = acquire_timeout
        self.datasets = DatasetRepository(self)
        from servers.registry.adapters.models_db import ModelRepository

        self.models = ModelRepository(self)

    def __repr__(self) -> str:
        return f"Database({redact_dsn(self.dsn)!r})"

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
        command_timeout: float | None = 30.0,
        migrate: bool = True,
        application_name: str = "mlmesh-registry",
    ) -> Database:
        """Opens the pool and (unless `migrate=False`) applies pending migrations.

        Unavailable if the database cannot be reached within `connect_timeout` seconds."""
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                command_timeout=command_timeout,
                server_settings={"application_name": application_name},
            )
        except _UNREACHABLE as exc:
            raise _unavailable(dsn, "connecting", exc) from exc
        db = cls(pool, dsn, acquire_timeout=connect_timeout)
        if migrate:
            try:
                await db.migrate()
            except BaseException:
                await db.close()
                raise
        return db

    async def migrate(self) -> list[int]:
        async with self.connection("applying migrations") as conn:
            applied = await apply_migrations(conn)
        if applied:
            log.info("database %s: applied migrations %s", redact_dsn(self.dsn), applied)
        return applied

    async def ping(self) -> None:
        """Unavailable unless the database answers (for health checks)."""
        async with self.connection("checking health") as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        await self.pool.close()

    @contextlib.asynccontextmanager
    async def connection(self, what: str) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; connection-level failures inside the block become Unavailable."""
        try:
            async with self.pool.acquire(timeout=self.acquire_timeout) as conn:
                yield conn
        except _UNREACHABLE as exc:
            raise _unavailable(self.dsn, what, exc) from exc


async def connect(dsn: str, **options) -> Database:
    """`Database.connect(dsn, **options)`: the pool, with migrations applied."""
    return await Database.connect(dsn, **options)


# -- datasets -----------------------------------------------------------------------------------

_DATASET_COLUMNS = (
    "dataset_id", "display_name", "organization_id", "samples_dimension", "content_type", "filename",
    "size_bytes", "md5", "sha256", "object_key", "contract_address", "contract_tx_hash", "create_time",
)
_SELECT_DATASET = f"SELECT {', '.join(_DATASET_COLUMNS)} FROM datasets"


def _parse_uuid(value: str, field: str = "dataset_id") -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        raise errors.InvalidArgument(
            f"{field} {str(value)[:80]!r} is not a UUID", reason="DATASET_ID_MALFORMED"
        ) from None


def _record(row: asyncpg.Record) -> DatasetRecord:
    values = dict(row)
    values["dataset_id"] = str(values["dataset_id"])
    values["create_time"] = values["create_time"].astimezone(dt.UTC)
    return DatasetRecord(**values)


@dataclass(frozen=True)
class _Cursor:
    """Where a page starts: after the row (create_time, id), under one filter `scope`
    (a listing's filters, canonicalised; a token is only valid under the same filters)."""

    create_time: dt.datetime
    ident: uuid.UUID
    scope: str

    def encode(self) -> str:
        raw = json.dumps(
            {"v": 1, "t": self.create_time.isoformat(), "id": str(self.ident), "org": self.scope},
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str, scope: str) -> _Cursor:
        bad = errors.InvalidArgument(
            "page_token is not a token this service issued; pass the next_page_token of the previous page "
            "unchanged, or none for the first page",
            reason="PAGE_TOKEN_INVALID",
        )
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("v") != 1:
                raise ValueError("unknown token version")
            t, ident, org = data["t"], data["id"], data["org"]
            if not (isinstance(t, str) and isinstance(ident, str) and isinstance(org, str)):
                raise ValueError("wrong types")
            create_time = dt.datetime.fromisoformat(t)
            if create_time.tzinfo is None:
                raise ValueError("naive time")
            cursor = cls(create_time, uuid.UUID(ident), org)
        except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise bad from None
        if cursor.scope != scope:
            raise errors.InvalidArgument(
                "page_token belongs to a listing with different filters (organization_id, ...); keep the "
                "filters unchanged while paging",
                reason="PAGE_TOKEN_MISMATCH",
            )
        return cursor


async def keyset_page(
    db: Database, *, select: str, id_column: str, filters: dict[str, object], page_size: int, page_token: str,
    convert, what: str,
) -> Page:
    """One page, newest first, of `select` (a SELECT ... FROM table) with equality `filters`
    (empty values are ignored), keyset-paginated on (create_time, id_column)."""
    if page_size < 0:
        raise errors.InvalidArgument(f"page_size {page_size} is negative", reason="PAGE_SIZE_NEGATIVE")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    active = {k: v for k, v in filters.items() if v}
    scope = "&".join(f"{k}={v}" for k, v in sorted(active.items()))
    where: list[str] = []
    args: list[object] = []
    for column, value in active.items():
        args.append(value)
        where.append(f"{column} = ${len(args)}")
    if page_token:
        cursor = _Cursor.decode(page_token, scope)
        args += [cursor.create_time, cursor.ident]
        where.append(f"(create_time, {id_column}) < (${len(args) - 1}, ${len(args)})")
    args.append(size + 1)
    sql = (
        f"{select} {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY create_time DESC, {id_column} DESC LIMIT ${len(args)}"
    )
    async with db.connection(what) as conn:
        rows = await conn.fetch(sql, *args)
    items = [convert(r) for r in rows[:size]]
    next_token = ""
    if len(rows) > size:
        last = rows[size - 1]
        next_token = _Cursor(last["create_time"], last[id_column], scope).encode()
    return Page(items=items, next_page_token=next_token)


class DatasetRepository:
    """Dataset rows. Implements `servers.registry.domain.ports.DatasetRepository`."""

    def __init__(self, db: Database):
        self.db = db

    async def insert(self, record: DatasetRecord) -> None:
        """Stores a new dataset; AlreadyExists if its id (or object key) is taken."""
        dataset_id = _parse_uuid(record.dataset_id)
        if record.create_time.tzinfo is None:
            raise errors.InvalidArgument("create_time must be timezone-aware", reason="CREATE_TIME_NAIVE")
        values = [getattr(record, c) for c in _DATASET_COLUMNS]
        values[0] = dataset_id
        placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        sql = f"INSERT INTO datasets ({', '.join(_DATASET_COLUMNS)}) VALUES ({placeholders})"
        try:
            async with self.db.connection(f"storing dataset {dataset_id}") as conn:
                await conn.execute(sql, *values)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "datasets_object_key_key":
                raise errors.AlreadyExists(
                    f"object key {record.object_key} already belongs to another dataset",
                    reason="OBJECT_KEY_TAKEN",
                ) from None
            raise errors.AlreadyExists(
                f"dataset {dataset_id} already exists", reason="DATASET_EXISTS",
                metadata={"dataset_id": str(dataset_id)},
            ) from None
        except (asyncpg.CheckViolationError, asyncpg.NotNullViolationError, asyncpg.DataError,
                ArgumentDataError) as exc:
            raise errors.InvalidArgument(
                f"dataset {dataset_id} cannot be stored: {exc}", reason="DATASET_INVALID"
            ) from None

    async def get(self, dataset_id: str) -> DatasetRecord:
        """The dataset; NotFound if there is none with this id."""
        ident = _parse_uuid(dataset_id)
        async with self.db.connection(f"reading dataset {ident}") as conn:
            row = await conn.fetchrow(f"{_SELECT_DATASET} WHERE dataset_id = $1", ident)
        if row is None:
            raise errors.NotFound(
                f"dataset {ident} does not exist", reason="DATASET_NOT_FOUND", metadata={"dataset_id": str(ident)}
            )
        return _record(row)

    async def list(self, page_size: int = 0, page_token: str = "", organization_id: str = "") -> Page:
        """Datasets newest first, optionally of one organization.

        `page_size` 0 means 50; above 1000 it is lowered to 1000; negative is InvalidArgument.
        `page_token` is the previous page's `next_page_token`; it is only valid with the same
        `organization_id`. The last page has an empty `next_page_token`.
        """
        return await keyset_page(
            self.db, select=_SELECT_DATASET, id_column="dataset_id",
            filters={"organization_id": organization_id or ""}, page_size=page_size, page_token=page_token,
            convert=_record, what="listing datasets",
        )

    async def delete(self, dataset_id: str) -> None:
        """Removes the dataset's row; NotFound if there is none."""
        ident = _parse_uuid(dataset_id)
        async with self.db.connection(f"deleting dataset {ident}") as conn:
            status = await conn.execute("DELETE FROM datasets WHERE dataset_id = $1", ident)
        if status != "DELETE 1":
            raise errors.NotFound(f"dataset {ident} does not exist", reason="DATASET_NOT_FOUND")
