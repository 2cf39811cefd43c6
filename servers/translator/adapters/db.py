"""The Translator's PostgreSQL adapter: an asyncpg pool, its own migrations, the translations table.

It follows the Trainer's adapter (servers/trainer/adapters/db.py) but owns its tables: they all
start with `translator_`, and migrations are recorded in `translator_schema_migrations` under
their own advisory lock, so the Translator can share a database with the Registry and the Trainer. The pool,
migrations and keyset pagination are `servers.common.postgres`, set up here by `SCHEMA`.
Errors: an unreachable database is `Unavailable` (DSN shown without its password); an unknown
translation `NotFound`; a bad page token `InvalidArgument`.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from pathlib import Path

import asyncpg

from servers.common import errors, postgres
from servers.translator.domain.translations import Page, Parity, Translation

log = logging.getLogger("mlmesh.translator.db")

SCHEMA = postgres.Schema(
    owner="Translator",
    migrations_dir=Path(__file__).with_name("migrations"),
    migrations_table="translator_schema_migrations",
    lock_name="mlmesh.translator.migrations",
    application_name="mlmesh-translator",
    logger=log.name,
)

_COLUMNS = ("translation_id", "model_id", "framework", "source_sha256", "converter", "opset", "size_bytes", "md5",
            "sha256", "max_abs_diff", "max_rel_diff", "atol", "rtol", "parity_passed", "batch_source", "samples",
            "top1_agreement", "source_accuracy", "onnx_accuracy", "report_json", "object_key", "contract_address",
            "contract_tx_hash", "create_time", "organization_id")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM translator_translations"
_PARITY = ("max_abs_diff", "max_rel_diff", "atol", "rtol", "batch_source", "samples", "top1_agreement",
           "source_accuracy", "onnx_accuracy")


def _row_values(t: Translation) -> list[object]:
    p = t.parity
    return [uuid.UUID(t.translation_id), uuid.UUID(t.model_id), t.framework, t.source_sha256, t.converter, t.opset,
            t.size_bytes, t.md5, t.sha256, p.max_abs_diff, p.max_rel_diff, p.atol, p.rtol, p.passed, p.batch_source,
            p.samples, p.top1_agreement, p.source_accuracy, p.onnx_accuracy, t.report_json, t.object_key,
            t.contract_address, t.contract_tx_hash, t.create_time, t.organization_id]


def _translation(row: asyncpg.Record) -> Translation:
    v = dict(row)
    parity = Parity(passed=v.pop("parity_passed"), **{k: v.pop(k) for k in _PARITY})
    v["translation_id"], v["model_id"] = str(v["translation_id"]), str(v["model_id"])
    v["create_time"] = v["create_time"].astimezone(dt.UTC)
    return Translation(parity=parity, **v)


_PAGE_TOKENS = postgres.model_id_page_tokens()


class Database(postgres.Postgres):
    """The Translator's pool and translation repository (implements `domain.ports.TranslationRepository`)."""

    schema = SCHEMA

    async def insert(self, translation: Translation) -> None:
        placeholders = ", ".join(f"${i}" for i in range(1, len(_COLUMNS) + 1))
        async with self.connection(f"storing translation {translation.translation_id}") as conn:
            await conn.execute(f"INSERT INTO translator_translations ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                               *_row_values(translation))

    async def get(self, translation_id: str) -> Translation:
        async with self.connection(f"reading translation {translation_id}") as conn:
            row = await conn.fetchrow(f"{_SELECT} WHERE translation_id = $1", uuid.UUID(translation_id))
        if row is None:
            raise errors.NotFound(f"translation {translation_id} does not exist", reason="TRANSLATION_NOT_FOUND",
                                  metadata={"translation_id": translation_id})
        return _translation(row)

    async def list(self, *, page_size: int, page_token: str, model_id: str, organization_id: str | None) -> Page:
        """Translations newest first (keyset pagination), optionally of one model, and only those
        `organization_id` owns unless it is None (filtered in SQL, so pages are full); `page_size` is
        the service's, already checked and bounded."""
        if organization_id == "":
            return Page(items=[], next_page_token="")  # no organization owns nothing ("" is no filter below)
        filters = {"organization_id": organization_id or "", "model_id": uuid.UUID(model_id) if model_id else ""}
        items, token = await postgres.keyset_page(
            self, select=_SELECT, id_column="translation_id", filters=filters, scope=model_id, limit=page_size,
            page_token=page_token, convert=_translation, what="listing translations", tokens=_PAGE_TOKENS)
        return Page(items=items, next_page_token=token)
