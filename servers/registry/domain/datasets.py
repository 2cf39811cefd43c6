"""Datasets: upload (hash while streaming, commit, anchor, record), read, download
(verified against the ledger), provenance. No grpc, no generated code."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from servers.common import errors
from servers.common.storage import ObjectStore
from servers.registry.domain import hashing
from servers.registry.domain.models import DatasetRecord, Page
from servers.registry.domain.ports import DatasetContractFields, DatasetRepository, Ledger

log = logging.getLogger("mlmesh.registry.datasets")

MAX_TEXT = 512
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class UploadMetadata:
    organization_id: str
    display_name: str
    samples_dimension: str = ""
    content_type: str = ""
    filename: str = ""
    expected_md5: str = ""
    expected_sha256: str = ""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Provenance:
    record: DatasetRecord
    on_chain: DatasetContractFields | None
    stored_md5: str
    stored_sha256: str
    stored_size_bytes: int
    checks: list[Check]

    @property
    def consistent(self) -> bool:
        return all(c.ok for c in self.checks)


def parse_dataset_id(value: str) -> str:
    """The canonical form of a dataset UUID, or INVALID_ARGUMENT."""
    if not value:
        raise errors.InvalidArgument("dataset_id is required", reason="DATASET_ID_MISSING")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise errors.InvalidArgument(
            f"dataset_id {value[:80]!r} is not a UUID (e.g. 5d066d58-06de-47ab-a2f6-c8f413e21947)",
            reason="DATASET_ID_MALFORMED",
        ) from None


def validate_metadata(meta: UploadMetadata, caller_org: str | None) -> UploadMetadata:
    """Checks an upload's metadata before a single byte is stored."""
    org = meta.organization_id.strip() or (caller_org or "")
    if not org:
        raise errors.InvalidArgument(
            "organization_id is required in the first message of the upload (REST: ?organization_id=...)",
            reason="METADATA_MISSING", metadata={"field": "organization_id"},
        )
    if caller_org and org != caller_org:
        raise errors.PermissionDenied(
            f"your token is for organization {caller_org!r}; it cannot register datasets for {org!r}",
            reason="ORGANIZATION_MISMATCH",
        )
    if not meta.display_name.strip():
        raise errors.InvalidArgument(
            "display_name is required in the first message of the upload (REST: ?display_name=...)",
            reason="METADATA_MISSING", metadata={"field": "display_name"},
        )
    for field in ("organization_id", "display_name", "samples_dimension", "content_type", "filename"):
        if len(getattr(meta, field)) > MAX_TEXT:
            raise errors.InvalidArgument(f"{field} is longer than {MAX_TEXT} characters", reason="FIELD_TOO_LONG")
    md5 = meta.expected_md5.strip().lower()
    sha = meta.expected_sha256.strip().lower()
    if md5 and not hashing.is_md5(md5):
        raise errors.InvalidArgument("expected_md5 must be 32 hex digits", reason="EXPECTED_HASH_MALFORMED")
    if sha and not hashing.is_sha256(sha):
        raise errors.InvalidArgument("expected_sha256 must be 64 hex digits", reason="EXPECTED_HASH_MALFORMED")
    return UploadMetadata(
        organization_id=org,
        display_name=meta.display_name.strip(),
        samples_dimension=meta.samples_dimension.strip(),
        content_type=meta.content_type.strip() or DEFAULT_CONTENT_TYPE,
        filename=meta.filename.strip(),
        expected_md5=md5,
        expected_sha256=sha,
    )


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class DatasetService:
    """The dataset use cases of the Registry."""

    def __init__(
        self,
        store: ObjectStore,
        repo: DatasetRepository,
        ledger: Ledger,
        *,
        max_upload_bytes: int,
        read_chunk_bytes: int = 1 << 20,
        clock: Callable[[], dt.datetime] = _utcnow,
    ):
        self.store, self.repo, self.ledger = store, repo, ledger
        self.max_upload_bytes = max_upload_bytes
        self.read_chunk_bytes = read_chunk_bytes
        self.clock = clock

    # -- upload -------------------------------------------------------------------------------

    async def upload(
        self, meta: UploadMetadata, chunks: AsyncIterator[bytes], *, caller_org: str | None = None
    ) -> DatasetRecord:
        """Streams `chunks` into storage, hashing as they pass; visible only when fully anchored."""
        meta = validate_metadata(meta, caller_org)
        dataset_id = str(uuid.uuid4())
        key = f"datasets/{dataset_id}"
        hasher = hashing.DualHasher()
        writer = await self.store.open_writer(key)
        committed = False
        try:
            async for block in hashing.blocks(chunks):
                if hasher.size + len(block) > self.max_upload_bytes:
                    raise errors.ResourceExhausted(
                        f"upload exceeds the Registry's limit of {self.max_upload_bytes} bytes",
                        reason="UPLOAD_TOO_LARGE",
                    )
                await asyncio.gather(hasher.update(block), writer.write(block))
            if hasher.size == 0:
                raise errors.InvalidArgument(
                    "empty upload: the stream carried metadata but no bytes", reason="EMPTY_UPLOAD"
                )
            self._check_expected(meta, hasher)
            size = await writer.commit()
            committed = True
            if size != hasher.size:
                raise errors.DataLoss(
                    f"storage recorded {size} bytes but {hasher.size} were streamed", reason="SIZE_MISMATCH"
                )
            anchor = await self.ledger.deploy_dataset_contract(
                dataset_id=dataset_id,
                organization_id=meta.organization_id,
                samples_dimension=meta.samples_dimension,
                size_bytes=hasher.size,
                md5=hasher.md5,
                sha256=hasher.sha256,
            )
            record = DatasetRecord(
                dataset_id=dataset_id,
                display_name=meta.display_name,
                organization_id=meta.organization_id,
                samples_dimension=meta.samples_dimension,
                content_type=meta.content_type,
                filename=meta.filename,
                size_bytes=hasher.size,
                md5=hasher.md5,
                sha256=hasher.sha256,
                object_key=key,
                contract_address=anchor.contract_address,
                contract_tx_hash=anchor.tx_hash,
                create_time=self.clock(),
            )
            await self.repo.insert(record)
        except BaseException:
            # Nothing half-registered: the row is the last step, so only the object needs undoing.
            # A contract already deployed stays on the chain, naming a dataset id nobody can see.
            await asyncio.shield(self._discard(writer, key, committed))
            raise
        log.info(
            "dataset_id=%s org=%s size=%d sha256=%s contract=%s",
            dataset_id, meta.organization_id, record.size_bytes, record.sha256, record.contract_address,
        )
        return record

    @staticmethod
    def _check_expected(meta: UploadMetadata, hasher: hashing.DualHasher) -> None:
        if meta.expected_md5 and meta.expected_md5 != hasher.md5:
            raise errors.InvalidArgument(
                f"the bytes received have MD5 {hasher.md5}, not the expected {meta.expected_md5}; nothing was stored",
                reason="EXPECTED_HASH_MISMATCH", metadata={"algorithm": "md5"},
            )
        if meta.expected_sha256 and meta.expected_sha256 != hasher.sha256:
            raise errors.InvalidArgument(
                f"the bytes received have SHA-256 {hasher.sha256}, not the expected {meta.expected_sha256}; "
                "nothing was stored",
                reason="EXPECTED_HASH_MISMATCH", metadata={"algorithm": "sha256"},
            )

    async def _discard(self, writer, key: str, committed: bool) -> None:
        try:
            if committed:
                await self.store.delete(key)
            else:
                await writer.abort()
        except Exception:  # noqa: BLE001 - an orphan object is invisible; log and go on
            log.exception("could not discard %s after a failed upload", key)

    # -- read ---------------------------------------------------------------------------------

    async def get(self, dataset_id: str) -> DatasetRecord:
        return await self.repo.get(parse_dataset_id(dataset_id))

    async def list(self, page_size: int, page_token: str, organization_id: str) -> Page:
        return await self.repo.list(page_size, page_token, organization_id.strip())

    # -- download -----------------------------------------------------------------------------

    async def download(self, dataset_id: str, offset: int) -> tuple[DatasetRecord, AsyncIterator[bytes]]:
        """Checks the stored bytes against the ledger, then streams them from `offset`.

        The whole object is hashed before the first byte goes out, so a tampered or
        corrupted dataset fails with DATA_LOSS instead of being served. A full download
        is hashed again while it streams, which catches a change made during the stream.
        """
        record = await self.get(dataset_id)
        if offset < 0:
            raise errors.InvalidArgument("offset must be >= 0", reason="OFFSET_NEGATIVE")
        if offset > record.size_bytes:
            raise errors.InvalidArgument(
                f"offset {offset} is past the end of the dataset ({record.size_bytes} bytes)",
                reason="OFFSET_PAST_END",
            )
        chain = await self.ledger.get_dataset_contract(record.contract_address)
        if chain.sha256 != record.sha256 or chain.size_bytes != record.size_bytes:
            raise errors.DataLoss(
                f"dataset {record.dataset_id}: the database records sha256 {record.sha256} ({record.size_bytes} "
                f"bytes) but its ledger contract {record.contract_address} records sha256 {chain.sha256} "
                f"({chain.size_bytes} bytes); refusing to serve it",
                reason="LEDGER_MISMATCH",
            )
        await self._verify_stored(record, chain.sha256)
        return record, self._stream(record, offset, chain.sha256)

    async def _verify_stored(self, record: DatasetRecord, expected_sha256: str) -> None:
        try:
            sha, size = await hashing.sha256_of(self.store.read(record.object_key, 0, self.read_chunk_bytes))
        except errors.NotFound:
            raise errors.DataLoss(
                f"dataset {record.dataset_id}: its bytes are missing from object storage", reason="OBJECT_MISSING"
            ) from None
        if sha != expected_sha256 or size != record.size_bytes:
            log.error("dataset_id=%s stored sha256=%s size=%d, ledger sha256=%s", record.dataset_id, sha, size,
                      expected_sha256)
            raise errors.DataLoss(
                f"dataset {record.dataset_id}: the stored bytes (sha256 {sha}, {size} bytes) do not match the "
                f"ledger (sha256 {expected_sha256}, {record.size_bytes} bytes); refusing to serve them",
                reason="HASH_MISMATCH",
            )

    async def _stream(self, record: DatasetRecord, offset: int, expected_sha256: str) -> AsyncIterator[bytes]:
        check = offset == 0
        sha = hashing.hashlib.sha256() if check else None
        size = 0
        async for chunk in self.store.read(record.object_key, offset, self.read_chunk_bytes):
            if sha is not None:
                await asyncio.to_thread(sha.update, chunk)
            size += len(chunk)
            yield chunk
        if sha is not None and (sha.hexdigest() != expected_sha256 or size != record.size_bytes):
            raise errors.DataLoss(
                f"dataset {record.dataset_id} changed in storage while it was being sent; discard what you "
                "received", reason="HASH_MISMATCH",
            )

    # -- provenance ---------------------------------------------------------------------------

    async def provenance(self, dataset_id: str) -> Provenance:
        record = await self.get(dataset_id)
        chain = await self.ledger.get_dataset_contract(record.contract_address)
        checks: list[Check] = []
        try:
            hasher = await hashing.md5_sha256_of(self.store.read(record.object_key, 0, self.read_chunk_bytes))
            stored_md5, stored_sha, stored_size = hasher.md5, hasher.sha256, hasher.size
            checks.append(Check("stored bytes present", True))
        except errors.NotFound:
            stored_md5, stored_sha, stored_size = "", "", 0
            checks.append(Check("stored bytes present", False, f"object {record.object_key} is missing"))

        def compare(name: str, ours, theirs) -> None:
            ok = ours == theirs
            checks.append(Check(name, ok, "" if ok else f"{ours!r} != {theirs!r}"))

        compare("database dataset_id = chain dataset_id", record.dataset_id, chain.dataset_id)
        compare("database organization_id = chain organization_id", record.organization_id, chain.organization_id)
        compare("database samples_dimension = chain samples_dimension", record.samples_dimension,
                chain.samples_dimension)
        compare("database size_bytes = chain size_bytes", record.size_bytes, chain.size_bytes)
        compare("database md5 = chain md5", record.md5, chain.md5)
        compare("database sha256 = chain sha256", record.sha256, chain.sha256)
        compare("stored size_bytes = chain size_bytes", stored_size, chain.size_bytes)
        compare("stored md5 = chain md5", stored_md5, chain.md5)
        compare("stored sha256 = chain sha256", stored_sha, chain.sha256)
        return Provenance(record, chain, stored_md5, stored_sha, stored_size, checks)
