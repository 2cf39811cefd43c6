"""Dataset rows in the Registry's PostgreSQL (migration 0001): insert, get, list (keyset pages,
optionally of one organization), delete. A duplicate id or object key is `AlreadyExists`, a
missing row `NotFound`, a row PostgreSQL refuses `InvalidArgument`."""

from __future__ import annotations

import datetime as dt

import asyncpg
from asyncpg.exceptions._base import DataError as ArgumentDataError  # a value asyncpg cannot encode

from servers.common import errors, ids
from servers.registry.adapters.db import Database, keyset_page
from servers.registry.domain.records import DatasetRecord, Page

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

    async def find_by_contract(self, address: str) -> DatasetRecord | None:
        """The dataset whose contract is at `address` (any letter case), or None."""
        async with self.db.connection("finding a dataset by contract") as conn:
            row = await conn.fetchrow(f"{_SELECT_DATASET} WHERE lower(contract_address) = lower($1)", address)
        return None if row is None else _record(row)

    async def list(self, page_size: int = 0, page_token: str = "", organization_id: str = "", *,
                   visible_to: str | None = None) -> Page:
        """Datasets newest first, optionally of one organization.

        `page_size` 0 means 50; above 1000 it is lowered to 1000; negative is InvalidArgument.
        `page_token` is the previous page's `next_page_token`; it is only valid with the same
        `organization_id`. The last page has an empty `next_page_token`.
        """
        return await keyset_page(
            self.db, select=_SELECT_DATASET, id_column="dataset_id",
            filters={"organization_id": organization_id or ""}, page_size=page_size, page_token=page_token,
            convert=_record, what="listing datasets", visible_to=visible_to, kind="dataset",
        )

    async def delete(self, dataset_id: str) -> None:
        """Removes the dataset's row; NotFound if there is none."""
        ident = ids.parse_uuid(dataset_id, "dataset_id")
        async with self.db.connection(f"deleting dataset {ident}") as conn:
            status = await conn.execute("DELETE FROM datasets WHERE dataset_id = $1", ident)
        if status != "DELETE 1":
            raise errors.NotFound(f"dataset {ident} does not exist", reason="DATASET_NOT_FOUND")
