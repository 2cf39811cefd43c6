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

The pool, migrations and keyset pagination are `servers.common.postgres`, set up here by `SCHEMA`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path

import asyncpg
from asyncpg.exceptions._base import DataError as ArgumentDataError  # a value asyncpg cannot encode

from servers.common import errors, ids, postgres
from servers.common.postgres import (  # noqa: F401  (re-exported: tests and callers import them from here)
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Migration,
    redact_dsn,
)
from servers.registry.domain.models import DatasetRecord, Page

log = logging.getLogger("mlmesh.registry.db")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATIONS_TABLE = "schema_migrations"
SCHEMA = postgres.Schema(
    owner="Registry",
    migrations_dir=MIGRATIONS_DIR,
    migrations_table=MIGRATIONS_TABLE,
    lock_name="mlmesh.registry.migrations",
    application_name="mlmesh-registry",
    logger=log.name,
    migration_changed=(
        "migration {name} was applied as {applied_name} with a different content (sha256 {applied_checksum}, "
        "file has {checksum}); add a new migration instead of editing an applied one"
    ),
)
# pg_advisory_xact_lock key for migrations: the first 8 bytes of sha256("mlmesh.registry.migrations").
MIGRATION_LOCK_KEY = SCHEMA.lock_key


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in `directory`, by version. Fails on a misnamed file or a duplicate version."""
    return postgres.load_migrations(directory)


async def apply_migrations(conn: asyncpg.Connection, migrations: Iterable[Migration] | None = None) -> list[int]:
    """Applies the pending migrations in one transaction; returns the versions applied now."""
    return await postgres.apply_migrations(conn, SCHEMA, migrations)


class Database(postgres.Postgres):
    """An asyncpg pool on the Registry's database. Make it with `await Database.connect(dsn)`."""

    schema = SCHEMA

    def __init__(self, pool: asyncpg.Pool, dsn: str, *, acquire_timeout: float = 10.0):
        super().__init__(pool, dsn, acquire_timeout=acquire_timeout)
        self.datasets = DatasetRepository(self)
        from servers.registry.adapters.models_db import ModelRepository

        self.models = ModelRepository(self)


async def connect(dsn: str, **options) -> Database:
    """`Database.connect(dsn, **options)`: the pool, with migrations applied."""
    return await Database.connect(dsn, **options)


# -- datasets -----------------------------------------------------------------------------------

_DATASET_COLUMNS = (
    "dataset_id", "display_name", "organization_id", "samples_dimension", "content_type", "filename",
    "size_bytes", "md5", "sha256", "object_key", "contract_address", "contract_tx_hash", "create_time",
)
_SELECT_DATASET = f"SELECT {', '.join(_DATASET_COLUMNS)} FROM datasets"


def _record(row: asyncpg.Record) -> DatasetRecord:
    values = dict(row)
    values["dataset_id"] = str(values["dataset_id"])
    values["create_time"] = values["create_time"].astimezone(dt.UTC)
    return DatasetRecord(**values)


_PAGE_TOKENS = postgres.PageTokens(
    scope_key="org",
    invalid_message=(
        "page_token is not a token this service issued; pass the next_page_token of the previous page "
        "unchanged, or none for the first page"
    ),
    mismatch_message=(
        "page_token belongs to a listing with different filters (organization_id, ...); keep the "
        "filters unchanged while paging"
    ),
)


async def keyset_page(
    db: Database, *, select: str, id_column: str, filters: dict[str, object], page_size: int, page_token: str,
    convert, what: str,
) -> Page:
    """One page, newest first, of `select` (a SELECT ... FROM table) with equality `filters`
    (empty values are ignored), keyset-paginated on (create_time, id_column)."""
    size = postgres.page_size_limit(page_size)
    active = {k: v for k, v in filters.items() if v}
    scope = "&".join(f"{k}={v}" for k, v in sorted(active.items()))
    items, next_token = await postgres.keyset_page(
        db, select=select, id_column=id_column, filters=active, scope=scope, limit=size, page_token=page_token,
        convert=convert, what=what, tokens=_PAGE_TOKENS,
    )
    return Page(items=items, next_page_token=next_token)


class DatasetRepository:
    """Dataset rows. Implements `servers.registry.domain.ports.DatasetRepository`."""

    def __init__(self, db: Database):
        self.db = db

    async def insert(self, record: DatasetRecord) -> None:
        """Stores a new dataset; AlreadyExists if its id (or object key) is taken."""
        dataset_id = ids.parse_uuid(record.dataset_id, "dataset_id")
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
        ident = ids.parse_uuid(dataset_id, "dataset_id")
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
        ident = ids.parse_uuid(dataset_id, "dataset_id")
        async with self.db.connection(f"deleting dataset {ident}") as conn:
            status = await conn.execute("DELETE FROM datasets WHERE dataset_id = $1", ident)
        if status != "DELETE 1":
            raise errors.NotFound(f"dataset {ident} does not exist", reason="DATASET_NOT_FOUND")
