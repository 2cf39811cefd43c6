"""Model rows in the Registry's PostgreSQL (migration 0002). State changes are conditional
updates, so two writers cannot both move a model out of the same state."""

from __future__ import annotations

import dataclasses
import datetime as dt

import asyncpg

from servers.common import errors, ids
from servers.registry.adapters.db import Database, keyset_page
from servers.registry.domain.records import ModelRecord, Page

_COLUMNS = tuple(f.name for f in dataclasses.fields(ModelRecord))
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM models"


def _record(row: asyncpg.Record) -> ModelRecord:
    values = dict(row)
    values["model_id"] = str(values["model_id"])
    values["dataset_id"] = str(values["dataset_id"])
    values["parent_model_id"] = str(values["parent_model_id"]) if values["parent_model_id"] else ""
    values["create_time"] = values["create_time"].astimezone(dt.UTC)
    values["update_time"] = values["update_time"].astimezone(dt.UTC)
    return ModelRecord(**values)


def _not_found(ident) -> errors.NotFound:
    return errors.NotFound(f"model {ident} does not exist", reason="MODEL_NOT_FOUND",
                           metadata={"model_id": str(ident)})


class ModelRepository:
    """Implements `servers.registry.domain.ports.ModelRepository`."""

    def __init__(self, db: Database):
        self.db = db

    async def insert(self, record: ModelRecord) -> None:
        values = [getattr(record, c) for c in _COLUMNS]
        values[_COLUMNS.index("model_id")] = ids.parse_uuid(record.model_id, "model_id")
        values[_COLUMNS.index("dataset_id")] = ids.parse_uuid(record.dataset_id, "dataset_id")
        values[_COLUMNS.index("parent_model_id")] = (ids.parse_uuid(record.parent_model_id, "parent_model_id")
                                                     if record.parent_model_id else None)
        placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        try:
            async with self.db.connection(f"storing model {record.model_id}") as conn:
                await conn.execute(f"INSERT INTO models ({', '.join(_COLUMNS)}) VALUES ({placeholders})", *values)
        except asyncpg.UniqueViolationError:
            raise errors.AlreadyExists(f"model {record.model_id} already exists", reason="MODEL_EXISTS") from None
        except asyncpg.ForeignKeyViolationError:
            raise errors.NotFound(f"dataset {record.dataset_id} does not exist", reason="DATASET_NOT_FOUND") from None
        except (asyncpg.CheckViolationError, asyncpg.NotNullViolationError, asyncpg.DataError) as exc:
            raise errors.InvalidArgument(f"model {record.model_id} cannot be stored: {exc}",
                                         reason="MODEL_INVALID") from None

    async def get(self, model_id: str) -> ModelRecord:
        ident = ids.parse_uuid(model_id, "model_id")
        async with self.db.connection(f"reading model {ident}") as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE model_id = $1", ident)
        if row is None:
            raise _not_found(ident)
        return _record(row)

    async def find_by_contract(self, address: str) -> ModelRecord | None:
        """The model whose contract is at `address` (any letter case), or None."""
        async with self.db.connection("finding a model by contract") as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE lower(contract_address) = lower($1)", address)
        return None if row is None else _record(row)

    async def list(self, page_size: int, page_token: str, organization_id: str, dataset_id: str, *,
                   visible_to: str | None = None) -> Page:
        return await keyset_page(
            self.db, select=_SELECT, id_column="model_id",
            filters={"organization_id": organization_id, "dataset_id": ids.parse_uuid(dataset_id, "dataset_id")
                     if dataset_id else ""},
            page_size=page_size, page_token=page_token, convert=_record, what="listing models",
            visible_to=visible_to, kind="model",
        )

    async def children(self, model_id: str) -> list[ModelRecord]:
        """The versions saved with `model_id` as their parent, oldest first."""
        ident = ids.parse_uuid(model_id, "model_id")
        async with self.db.connection(f"reading the versions of model {ident}") as conn:
            rows = await conn.fetch(f"{_SELECT} WHERE parent_model_id = $1 ORDER BY create_time, model_id", ident)
        return [_record(row) for row in rows]

    async def update(self, model_id: str, *, from_states: tuple[str, ...], **changes) -> ModelRecord:
        """Applies `changes` if the model is in one of `from_states`; FailedPrecondition otherwise."""
        ident = ids.parse_uuid(model_id, "model_id")
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown model columns {sorted(unknown)}")
        changes = {**changes, "update_time": dt.datetime.now(dt.UTC)}
        sets = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=3))
        sql = f"UPDATE models SET {sets} WHERE model_id = $1 AND state = ANY($2::text[]) RETURNING {', '.join(_COLUMNS)}"
        async with self.db.connection(f"updating model {ident}") as conn:
            row = await conn.fetchrow(sql, ident, list(from_states), *changes.values())
            if row is None:
                current = await conn.fetchval("SELECT state FROM models WHERE model_id = $1", ident)
        if row is not None:
            return _record(row)
        if current is None:
            raise _not_found(ident)
        raise errors.FailedPrecondition(
            f"model {ident} is {current}; this change needs it to be {' or '.join(from_states)}",
            reason="MODEL_STATE_CONFLICT", metadata={"state": current},
        )

    async def delete(self, model_id: str) -> None:
        ident = ids.parse_uuid(model_id, "model_id")
        async with self.db.connection(f"deleting model {ident}") as conn:
            await conn.execute("DELETE FROM models WHERE model_id = $1", ident)
