"""The Registry's PostgreSQL adapter against a real (embedded) PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import shutil
import tempfile
import uuid
from pathlib import Path

import asyncpg
import pytest

from servers.common import errors
from servers.devstack import procs
from servers.devstack.postgres import start_postgres, stop_postgres
from servers.common.postgres import Migration, redact_dsn
from servers.common.postgres import apply_migrations as apply_common_migrations
from servers.common.postgres import load_migrations as load_common_migrations
from servers.registry.adapters.datasets_db import DatasetRepository
from servers.registry.adapters.db import SCHEMA, Database
from servers.registry.domain.records import DatasetRecord

MIGRATION_LOCK_KEY = SCHEMA.lock_key
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def make_record(n: int = 0, *, org: str = "org-a", at: dt.datetime | None = None, **changes) -> DatasetRecord:
    dataset_id = str(uuid.uuid4())
    record = DatasetRecord(
        dataset_id=dataset_id,
        display_name=f"dataset {n}",
        organization_id=org,
        samples_dimension="(128,128,3)",
        content_type="text/csv",
        filename=f"data-{n}.csv",
        size_bytes=1000 + n,
        md5=f"{n:032x}",
        sha256=f"{n:064x}",
        object_key=f"datasets/{dataset_id}",
        contract_address="0x" + "ab" * 20,
        contract_tx_hash="0x" + "cd" * 32,
        create_time=at or T0 + dt.timedelta(seconds=n),
    )
    return dataclasses.replace(record, **changes)


def load_migrations() -> list[Migration]:
    return load_common_migrations(SCHEMA.migrations_dir)


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration]) -> list[int]:
    return await apply_common_migrations(conn, SCHEMA, migrations)


@pytest.fixture
async def db(fresh_db_dsn):
    database = await Database.connect(fresh_db_dsn)
    yield database
    await database.close()


@pytest.fixture
def datasets(db) -> DatasetRepository:
    return DatasetRepository(db)


async def table_names(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


# -- migrations ---------------------------------------------------------------------------------


def test_migration_files_are_numbered_from_one_without_gaps():
    migrations = load_migrations()

    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "0001_datasets"


async def test_connect_applies_migrations(fresh_db_dsn):
    database = await Database.connect(fresh_db_dsn)
    try:
        rows = await database.pool.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    finally:
        await database.close()

    assert {"datasets", "schema_migrations"} <= await table_names(fresh_db_dsn)
    assert [(r["version"], r["name"], r["checksum"]) for r in rows] == [
        (m.version, m.name, m.checksum) for m in load_migrations()
    ]


async def test_migrations_are_idempotent(db, fresh_db_dsn):
    assert await db.migrate() == []

    again = await Database.connect(fresh_db_dsn)
    try:
        assert await again.migrate() == []
        assert await again.pool.fetchval("SELECT count(*) FROM schema_migrations") == len(load_migrations())
    finally:
        await again.close()


async def test_concurrent_starts_apply_migrations_once(fresh_db_dsn):
    databases = await asyncio.gather(*(Database.connect(fresh_db_dsn) for _ in range(6)))
    try:
        count = await databases[0].pool.fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        await asyncio.gather(*(d.close() for d in databases))

    assert count == len(load_migrations())


async def test_migrations_wait_for_the_advisory_lock(fresh_db_dsn):
    holder = await asyncpg.connect(fresh_db_dsn)
    tx = holder.transaction()
    await tx.start()
    await holder.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
    starting = asyncio.create_task(Database.connect(fresh_db_dsn))
    try:
        await asyncio.sleep(0.5)
        assert not starting.done(), "migrations ran while another process held the migration lock"
        assert "datasets" not in await table_names(fresh_db_dsn)
    finally:
        await tx.rollback()
        await holder.close()
    database = await asyncio.wait_for(starting, 10)
    await database.close()

    assert "datasets" in await table_names(fresh_db_dsn)


async def test_a_failing_migration_changes_nothing(fresh_db_dsn):
    broken = [*load_migrations(), Migration(99, "0099_broken", "CREATE TABLE half_done (x int); SELECT 1/0;")]
    conn = await asyncpg.connect(fresh_db_dsn)
    try:
        with pytest.raises(asyncpg.DivisionByZeroError):
            await apply_migrations(conn, broken)
    finally:
        await conn.close()

    assert await table_names(fresh_db_dsn) == set()


async def test_an_edited_applied_migration_stops_the_start(db):
    edited = [dataclasses.replace(load_migrations()[0], sql="-- edited after it was applied")]

    async with db.connection("test") as conn:
        with pytest.raises(errors.FailedPrecondition, match="0001_datasets"):
            await apply_migrations(conn, edited)


# -- insert / get -------------------------------------------------------------------------------


async def test_insert_then_get_round_trips(datasets):
    record = make_record(7)

    await datasets.insert(record)
    got = await datasets.get(record.dataset_id)

    assert got == record
    assert got.create_time.tzinfo is not None and got.create_time.utcoffset() == dt.timedelta(0)
    assert got.create_time.microsecond == 678901


async def test_get_accepts_any_uuid_spelling(datasets):
    record = make_record()
    await datasets.insert(record)

    got = await datasets.get(record.dataset_id.upper())

    assert got.dataset_id == record.dataset_id


async def test_duplicate_id_is_already_exists(datasets):
    record = make_record()
    await datasets.insert(record)

    with pytest.raises(errors.AlreadyExists) as info:
        await datasets.insert(dataclasses.replace(record, object_key="datasets/other"))

    assert info.value.reason == "DATASET_EXISTS"


async def test_duplicate_object_key_is_already_exists(datasets):
    first = make_record(1)
    await datasets.insert(first)

    with pytest.raises(errors.AlreadyExists) as info:
        await datasets.insert(make_record(2, object_key=first.object_key))

    assert info.value.reason == "OBJECT_KEY_TAKEN"


async def test_get_missing_is_not_found(datasets):
    with pytest.raises(errors.NotFound):
        await datasets.get(str(uuid.uuid4()))


@pytest.mark.parametrize("bad_id", ["", "not-a-uuid", "5d066d58-06de-47ab-a2f6"])
async def test_get_malformed_id_is_invalid_argument(datasets, bad_id):
    with pytest.raises(errors.InvalidArgument):
        await datasets.get(bad_id)


@pytest.mark.parametrize(
    "changes",
    [
        {"dataset_id": "nope"},
        {"md5": "NOT-HEX"},
        {"sha256": "00"},
        {"size_bytes": -1},
        {"create_time": dt.datetime(2026, 1, 1)},  # naive
    ],
)
async def test_invalid_records_are_refused(datasets, changes):
    with pytest.raises(errors.InvalidArgument):
        await datasets.insert(make_record(**changes))

    assert (await datasets.list(0, "", "")).items == []


async def test_delete(datasets):
    record = make_record()
    await datasets.insert(record)

    await datasets.delete(record.dataset_id)

    with pytest.raises(errors.NotFound):
        await datasets.get(record.dataset_id)
    with pytest.raises(errors.NotFound):
        await datasets.delete(record.dataset_id)


# -- list ---------------------------------------------------------------------------------------


def newest_first(records):
    return sorted(records, key=lambda r: (r.create_time, uuid.UUID(r.dataset_id)), reverse=True)


async def list_all(repo, page_size: int, org: str = "") -> tuple[list[DatasetRecord], int]:
    items, token, pages = [], "", 0
    while True:
        page = await repo.list(page_size, token, org)
        pages += 1
        items += page.items
        token = page.next_page_token
        if not token:
            return items, pages


async def test_list_pages_newest_first_including_ties(datasets):
    records = [make_record(n) for n in range(7)]
    same_time = T0 + dt.timedelta(seconds=3)
    records += [make_record(100 + n, at=same_time) for n in range(4)]  # ties broken by id
    for r in records:
        await datasets.insert(r)

    items, pages = await list_all(datasets, page_size=3)

    assert [r.dataset_id for r in items] == [r.dataset_id for r in newest_first(records)]
    assert pages == 4  # 11 items: 3 + 3 + 3 + 2


async def test_a_page_that_ends_exactly_at_the_last_row_has_no_token(datasets):
    for n in range(4):
        await datasets.insert(make_record(n))

    first = await datasets.list(2, "", "")
    second = await datasets.list(2, first.next_page_token, "")

    assert len(first.items) == 2 and first.next_page_token
    assert len(second.items) == 2 and second.next_page_token == ""


async def test_list_empty(datasets):
    page = await datasets.list(10, "", "")

    assert page.items == [] and page.next_page_token == ""


async def test_list_filters_by_organization(datasets):
    mine = [make_record(n, org="org-a") for n in range(5)]
    others = [make_record(50 + n, org="org-b") for n in range(4)]
    for r in mine + others:
        await datasets.insert(r)

    items, _ = await list_all(datasets, page_size=2, org="org-a")

    assert [r.dataset_id for r in items] == [r.dataset_id for r in newest_first(mine)]


async def test_rows_inserted_while_paging_do_not_shift_pages(datasets):
    records = [make_record(n) for n in range(6)]
    for r in records:
        await datasets.insert(r)
    first = await datasets.list(3, "", "")

    await datasets.insert(make_record(99))  # newer than everything: belongs before page 1
    second = await datasets.list(3, first.next_page_token, "")

    expected = newest_first(records)
    assert [r.dataset_id for r in first.items + second.items] == [r.dataset_id for r in expected]


async def test_page_token_is_bound_to_the_filter(datasets):
    for n in range(3):
        await datasets.insert(make_record(n, org="org-a"))
    page = await datasets.list(1, "", "org-a")

    with pytest.raises(errors.InvalidArgument, match="organization_id"):
        await datasets.list(1, page.next_page_token, "org-b")
    with pytest.raises(errors.InvalidArgument):
        await datasets.list(1, page.next_page_token, "")


def b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        "abc",
        base64.urlsafe_b64encode(b"\xff\xfe not json").decode(),
        b64([1, 2, 3]),
        b64({"v": 1, "t": T0.isoformat(), "org": ""}),  # no id
        b64({"v": 2, "t": T0.isoformat(), "id": str(uuid.uuid4()), "org": ""}),  # unknown version
        b64({"v": 1, "t": "yesterday", "id": str(uuid.uuid4()), "org": ""}),
        b64({"v": 1, "t": "2026-01-01T00:00:00", "id": str(uuid.uuid4()), "org": ""}),  # naive
        b64({"v": 1, "t": T0.isoformat(), "id": "not-a-uuid", "org": ""}),
        b64({"v": 1, "t": T0.isoformat(), "id": 5, "org": ""}),
    ],
)
async def test_malformed_page_tokens_are_invalid_argument(datasets, token):
    with pytest.raises(errors.InvalidArgument) as info:
        await datasets.list(10, token, "")

    assert info.value.reason == "PAGE_TOKEN_INVALID"


async def test_page_size_rules(db, datasets):
    conn = await asyncpg.connect(db.dsn)
    try:
        await conn.execute(
            """
            INSERT INTO datasets (dataset_id, display_name, organization_id, content_type, size_bytes, md5,
                                  sha256, object_key, contract_address, contract_tx_hash, create_time)
            SELECT gen_random_uuid(), 'd' || i, 'org-a', 'text/csv', i, repeat('0', 32), repeat('0', 64),
                   'datasets/' || i, '0x', '0x', now() - i * interval '1 second'
            FROM generate_series(1, 1002) AS i
            """
        )
    finally:
        await conn.close()

    default = await datasets.list(0, "", "")
    clamped = await datasets.list(5000, "", "")
    with pytest.raises(errors.InvalidArgument):
        await datasets.list(-1, "", "")

    assert len(default.items) == 50 and default.next_page_token
    assert len(clamped.items) == 1000 and clamped.next_page_token
    rest = await datasets.list(1000, clamped.next_page_token, "")
    assert len(rest.items) == 2 and rest.next_page_token == ""


# -- availability -------------------------------------------------------------------------------


def test_redact_dsn():
    assert redact_dsn("postgresql://mesh:s3cret@db.example:5432/mlmesh?sslmode=require") == (
        "postgresql://mesh@db.example:5432/mlmesh?sslmode=require"
    )
    assert "s3cret" not in redact_dsn("postgres://mesh@h/db?password=s3cret&sslmode=disable")
    assert "s3cret" not in redact_dsn("host=h user=mesh password=s3cret dbname=mlmesh")
    assert redact_dsn("postgresql://postgres@127.0.0.1:5432/mlmesh") == "postgresql://postgres@127.0.0.1:5432/mlmesh"


async def test_unreachable_database_is_unavailable_without_the_password():
    port = procs.free_port()
    dsn = f"postgresql://mesh:s3cret@127.0.0.1:{port}/mlmesh"

    with pytest.raises(errors.Unavailable) as info:
        await Database.connect(dsn, connect_timeout=3)

    message = str(info.value)
    assert f"postgresql://mesh@127.0.0.1:{port}/mlmesh" in message
    assert "s3cret" not in message and "s3cret" not in str(info.value.metadata)


async def test_unknown_database_is_unavailable(pg_dsn):
    from tests.fixtures.postgres import with_database

    with pytest.raises(errors.Unavailable, match="does not exist"):
        await Database.connect(with_database(pg_dsn, "no_such_db"), connect_timeout=3)


async def test_a_restarted_server_loses_nothing_and_the_pool_recovers():
    """Its own embedded PostgreSQL, stopped and started under a live pool (stop_postgres/start_postgres)."""
    data_dir = Path(tempfile.mkdtemp(prefix="mlmesh-test-pg-restart-"))
    port = procs.free_port()
    run_dir = data_dir / "run"
    proc, dsn = await asyncio.to_thread(start_postgres, data_dir, port, pid_dir=run_dir)
    database = None
    try:
        database = await Database.connect(dsn, connect_timeout=3)
        datasets = DatasetRepository(database)
        record = make_record(1)
        await datasets.insert(record)

        assert (run_dir / "postgres.pid").read_text() == str(proc.pid)
        assert await asyncio.to_thread(stop_postgres, data_dir, pid_dir=run_dir)  # as `make down` does
        assert not proc.alive() and not (run_dir / "postgres.pid").exists()
        with pytest.raises(errors.Unavailable, match=f"127.0.0.1:{port}"):
            await datasets.get(record.dataset_id)

        proc, dsn_again = await asyncio.to_thread(start_postgres, data_dir, port)
        assert dsn_again == dsn
        assert await datasets.get(record.dataset_id) == record
    finally:
        if database is not None:
            await database.close()
        await asyncio.to_thread(stop_postgres, proc)
        shutil.rmtree(data_dir, ignore_errors=True)

