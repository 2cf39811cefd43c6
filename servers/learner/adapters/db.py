"""The Learner's PostgreSQL adapter: its own migrations (tables prefixed learner_, recorded in
learner_schema_migrations under their own advisory lock, so it can share the mesh's database)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import uuid
from pathlib import Path

import asyncpg

from servers.common import errors, postgres
from servers.common.ids import parse_uuid
from servers.learner.domain.records import JournalRow, LearnerRecord, Page, spec_from_json, spec_to_json

log = logging.getLogger("mlmesh.learner.db")

SCHEMA = postgres.Schema(
    owner="Learner",
    migrations_dir=Path(__file__).with_name("migrations"),
    migrations_table="learner_schema_migrations",
    lock_name="mlmesh.learner.migrations",
    application_name="mlmesh-learner",
    logger=log.name,
)
_COLUMNS = tuple(f.name for f in dataclasses.fields(LearnerRecord))
_DB_COLUMNS = tuple("spec_json" if c == "spec" else c for c in _COLUMNS)
_SELECT = f"SELECT {', '.join(_DB_COLUMNS)} FROM learner_learners"
_PAGE_TOKENS = postgres.PageTokens(
    scope_key="o",
    invalid_message=("page_token is not a token this service issued; pass the previous next_page_token unchanged, "
                     "or none for the first page"),
    mismatch_message="page_token belongs to a listing of another organization; keep the filter while paging",
)


def _record(row: asyncpg.Record) -> LearnerRecord:
    v = dict(row)
    v["learner_id"] = str(v["learner_id"])
    v["spec"] = spec_from_json(json.loads(v.pop("spec_json")))
    v["transformer_state"] = json.loads(v["transformer_state"])
    v["create_time"] = v["create_time"].astimezone(dt.UTC)
    v["save_time"] = v["save_time"].astimezone(dt.UTC) if v["save_time"] else None
    return LearnerRecord(**v)


def _uuid(value: str) -> uuid.UUID:
    return parse_uuid(value, "learner_id")


def not_found(learner_id: str) -> errors.NotFound:
    return errors.NotFound(f"learner {learner_id} does not exist", reason="LEARNER_NOT_FOUND",
                           metadata={"learner_id": learner_id})


class Database(postgres.Postgres):
    schema = SCHEMA

    async def insert(self, r: LearnerRecord) -> None:
        values = [getattr(r, c) for c in _COLUMNS]
        values[_COLUMNS.index("learner_id")] = _uuid(r.learner_id)
        values[_COLUMNS.index("spec")] = json.dumps(spec_to_json(r.spec))
        values[_COLUMNS.index("transformer_state")] = json.dumps(r.transformer_state)
        placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
        try:
            async with self.connection(f"storing learner {r.learner_id}") as conn:
                await conn.execute(f"INSERT INTO learner_learners ({', '.join(_DB_COLUMNS)}) VALUES ({placeholders})",
                                   *values)
        except asyncpg.UniqueViolationError:
            raise errors.AlreadyExists(
                f"your organization has a learner named {r.display_name!r} already; names are unique within an "
                "organization (they are its model names in the Open Inference Protocol)",
                reason="LEARNER_NAME_TAKEN") from None

    async def get(self, learner_id: str) -> LearnerRecord:
        ident = _uuid(learner_id)
        async with self.connection(f"reading learner {ident}") as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE learner_id = $1", ident)
        if row is None:
            raise not_found(str(ident))
        return _record(row)

    async def all(self) -> list[LearnerRecord]:
        async with self.connection("reading learners") as conn:
            rows = await conn.fetch(f"{_SELECT} ORDER BY create_time")
        return [_record(r) for r in rows]

    async def list(self, *, page_size: int, page_token: str, organization_id: str) -> Page:
        items, token = await postgres.keyset_page(
            self, select=_SELECT, id_column="learner_id", filters={"organization_id": organization_id},
            scope=organization_id, limit=page_size, page_token=page_token, convert=_record,
            what="listing learners", tokens=_PAGE_TOKENS)
        return Page(items=items, next_page_token=token)

    async def record_save(self, learner_id: str, *, current_model_id: str, version: int, observations_learned: int,
                          saved_validation_loss: float, transformer_state: dict, save_time: dt.datetime,
                          journal_seq: int = 0, pending: bytes | None = None) -> None:
        ident = _uuid(learner_id)
        async with self.connection(f"recording a save of learner {learner_id}") as conn, conn.transaction():
            await conn.execute(
                "UPDATE learner_learners SET current_model_id = $2, version = $3, observations_learned = $4, "
                "saved_validation_loss = $5, transformer_state = $6, save_time = $7, journal_seq = $8 "
                "WHERE learner_id = $1",
                ident, current_model_id, version, observations_learned, saved_validation_loss,
                json.dumps(transformer_state), save_time, journal_seq)
            await conn.execute("DELETE FROM learner_learn_journal WHERE learner_id = $1 AND seq <= $2",
                               ident, journal_seq)
            if pending is not None:
                await conn.execute("INSERT INTO learner_learn_journal (learner_id, seq, kind, flush, payload) "
                                   "VALUES ($1, $2, 'pending', false, $3)", ident, journal_seq, pending)

    async def journal_append(self, learner_id: str, rows: list[tuple[int, bytes, bool]]) -> None:
        ident = _uuid(learner_id)
        async with self.connection(f"journaling Learn messages of learner {learner_id}") as conn, \
                conn.transaction():
            # one commit (one WAL flush) for every message of the group
            await conn.executemany("INSERT INTO learner_learn_journal (learner_id, seq, kind, flush, payload) "
                                   "VALUES ($1, $2, 'observations', $3, $4)",
                                   [(ident, seq, flush, payload) for seq, payload, flush in rows])

    async def journal_since(self, learner_id: str, seq: int) -> list[JournalRow]:
        async with self.connection(f"reading the learn journal of learner {learner_id}") as conn:
            rows = await conn.fetch("SELECT seq, kind, flush, payload FROM learner_learn_journal "
                                    "WHERE learner_id = $1 AND seq >= $2 ORDER BY seq", _uuid(learner_id), seq)
        return [JournalRow(seq=r["seq"], kind=r["kind"], flush=r["flush"], payload=bytes(r["payload"])) for r in rows]

    async def set_state(self, learner_id: str, state: str, failure_reason: str = "") -> None:
        async with self.connection(f"updating learner {learner_id}") as conn:
            await conn.execute("UPDATE learner_learners SET state = $2, failure_reason = $3 WHERE learner_id = $1",
                               _uuid(learner_id), state, failure_reason[:4000])

    async def delete(self, learner_id: str) -> None:
        ident = _uuid(learner_id)
        async with self.connection(f"deleting learner {ident}") as conn:
            status = await conn.execute("DELETE FROM learner_learners WHERE learner_id = $1", ident)
        if status.endswith(" 0"):
            raise not_found(str(ident))


async def connect(dsn: str, **options) -> Database:
    return await Database.connect(dsn, **options)
