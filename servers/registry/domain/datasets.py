"""The Registry's dataset core (`DatasetCore`): upload (hash while streaming, commit, anchor, record), read, download
(verified against the ledger), provenance, sharing. No grpc, no generated code.

Access (docs/security.md): every read needs READ (the owner, a grantee, anyone if public; a mesh
server calling for itself is `caller_org` None, trusted like the owner) and answers NOT_FOUND
otherwise, exactly as for a dataset that does not exist. Sharing, the access policy and the usages
need OWNER (a reader gets PERMISSION_DENIED)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from servers.common import access, blobs, errors, hashing, ids
from servers.common.access import Access
from servers.common.storage import ObjectStore
from servers.registry.domain.ports import DatasetContractFields, DatasetRepository, Ledger
from servers.registry.domain.recovery import ANCHOR_PRESENT_CHECK, read_anchor
from servers.registry.domain.records import DATASET, AccessPolicyRecord, DatasetRecord, Page
from servers.registry.domain.sharing import Caller, Sharing, validate_grantees

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


class DatasetCore:
    """The dataset use cases of the Registry; the servicer converts and delegates to it."""

    def __init__(
        self,
        store: ObjectStore,
        repo: DatasetRepository,
        ledger: Ledger,
        sharing: Sharing,
        *,
        max_upload_bytes: int,
        read_chunk_bytes: int = 1 << 20,
        clock: Callable[[], dt.datetime] = _utcnow,
    ):
        self.store, self.repo, self.ledger, self.sharing = store, repo, ledger, sharing
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
        pending = await blobs.write_hashed(
            self.store, f"datasets/{dataset_id}", chunks, max_bytes=self.max_upload_bytes, what="dataset upload",
            check=lambda hasher: self._check_expected(meta, hasher),
        )
        return await self._anchor(dataset_id, meta, pending)

    async def upload_described_after(
        self, chunks: AsyncIterator[bytes], describe: Callable[[], Awaitable[UploadMetadata]], *,
        caller_org: str | None = None,
    ) -> DatasetRecord:
        """An upload whose metadata follows its bytes (a multipart form whose file part comes first,
        as the seed's curl command sends it). The bytes are streamed into storage and hashed as they
        pass, but stay pending (invisible); then `describe()` gives the metadata, which is validated as
        `upload` validates it. If it is refused, or `describe` fails, the bytes are discarded."""
        dataset_id = str(uuid.uuid4())
        pending = await blobs.write_hashed(self.store, f"datasets/{dataset_id}", chunks,
                                           max_bytes=self.max_upload_bytes, what="dataset upload")
        try:
            meta = validate_metadata(await describe(), caller_org)
            self._check_expected(meta, pending.stored)
        except BaseException:
            await pending.discard()
            raise
        return await self._anchor(dataset_id, meta, pending)

    async def _anchor(self, dataset_id: str, meta: UploadMetadata, pending: blobs.PendingObject) -> DatasetRecord:
        """Deploys the contract of stored bytes and records the row: then, and only then, the dataset
        is visible. Once the last byte is in, this runs to its end even if the client hangs up."""
        return await blobs.finish(self._anchor_and_record(dataset_id, meta, pending))

    async def _anchor_and_record(self, dataset_id: str, meta: UploadMetadata,
                                 pending: blobs.PendingObject) -> DatasetRecord:
        stored = pending.stored
        try:
            anchor = await self.ledger.deploy_dataset_contract(
                dataset_id=dataset_id,
                organization_id=meta.organization_id,
                samples_dimension=meta.samples_dimension,
                size_bytes=stored.size_bytes,
                md5=stored.md5,
                sha256=stored.sha256,
            )
        except BaseException:
            # No row yet, so only the object needs undoing. A contract already deployed stays on
            # the chain, naming a dataset id nobody can see.
            await pending.discard()
            raise
        record = DatasetRecord(
            dataset_id=dataset_id,
            display_name=meta.display_name,
            organization_id=meta.organization_id,
            samples_dimension=meta.samples_dimension,
            content_type=meta.content_type,
            filename=meta.filename,
            size_bytes=stored.size_bytes,
            md5=stored.md5,
            sha256=stored.sha256,
            object_key=stored.key,
            contract_address=anchor.contract_address,
            contract_tx_hash=anchor.tx_hash,
            create_time=self.clock(),
        )

        async def insert() -> DatasetRecord:
            await self.repo.insert(record)
            return record

        async def inserted() -> DatasetRecord | None:
            try:
                found = await self.repo.get(dataset_id)
            except errors.NotFound:
                return None
            return found if found.object_key == stored.key else None

        record = await blobs.record([pending], insert, recorded=inserted, what=f"dataset {dataset_id}")
        log.info(
            "dataset_id=%s org=%s size=%d sha256=%s contract=%s",
            dataset_id, meta.organization_id, record.size_bytes, record.sha256, record.contract_address,
        )
        return record

    @staticmethod
    def _check_expected(meta: UploadMetadata, hasher: hashing.DualHasher | blobs.Stored) -> None:
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

    # -- read ---------------------------------------------------------------------------------

    async def get(self, dataset_id: str, *, caller_org: str | None) -> DatasetRecord:
        """The dataset, if `caller_org` may read it; NOT_FOUND otherwise (as if it did not exist)."""
        record, _ = await self._with_access(dataset_id, caller_org, Access.READ, "read")
        return record

    async def _with_access(self, dataset_id: str, caller_org: str | None, needed: Access, action: str
                           ) -> tuple[DatasetRecord, Access]:
        ident = ids.parse_id(dataset_id, "dataset_id")
        try:
            record = await self.repo.get(ident)
        except errors.NotFound:
            raise access.not_found(DATASET, ident) from None
        level = await self.sharing.level(DATASET, ident, record.organization_id, caller_org)
        if needed == Access.OWNER:
            access.require_owner(level, DATASET, ident, action)
        else:
            access.require_read(level, DATASET, ident)
        return record, level

    async def by_contract(self, address: str, *, caller_org: str | None
                          ) -> tuple[DatasetRecord, DatasetContractFields] | None:
        """The dataset whose ledger contract is at `address` and that contract's fields as the chain
        holds them; None when no dataset has that contract or `caller_org` may not read it (so a
        stranger learns nothing: the caller answers exactly as for an unknown address)."""
        record = await self.repo.find_by_contract(address)
        if record is None:
            return None
        try:
            await self._with_access(record.dataset_id, caller_org, Access.READ, "read")
        except errors.NotFound:
            return None
        return record, await self._chain_anchor(record)

    async def _chain_anchor(self, record: DatasetRecord) -> DatasetContractFields:
        """The dataset's contract as the chain holds it; DATA_LOSS ANCHOR_MISSING when it is gone."""
        return await read_anchor(self.ledger.get_dataset_contract, "dataset", record.dataset_id,
                                 record.contract_address)

    async def list(self, page_size: int, page_token: str, organization_id: str, *, caller_org: str | None) -> Page:
        """The datasets `caller_org` may see, newest first; `organization_id` narrows to one owner."""
        return await self.repo.list(page_size, page_token, organization_id.strip(), visible_to=caller_org)

    # -- sharing ------------------------------------------------------------------------------

    async def share(self, dataset_id: str, organization_ids: list[str], public: bool, *, caller: Caller
                    ) -> AccessPolicyRecord:
        grantees = validate_grantees(organization_ids, public)
        record, _ = await self._with_access(dataset_id, caller.organization_id, Access.OWNER, "share")
        policy = await self.sharing.share(DATASET, record.dataset_id, record.organization_id, grantees, caller)
        log.info("dataset_id=%s shared with %s by %s/%s", record.dataset_id, ",".join(grantees),
                 caller.organization_id or "-", caller.subject or "-")
        return policy

    async def unshare(self, dataset_id: str, organization_ids: list[str], public: bool, *, caller: Caller
                      ) -> AccessPolicyRecord:
        grantees = validate_grantees(organization_ids, public)
        record, _ = await self._with_access(dataset_id, caller.organization_id, Access.OWNER, "unshare")
        policy = await self.sharing.unshare(DATASET, record.dataset_id, record.organization_id, grantees, caller)
        log.info("dataset_id=%s unshared from %s by %s/%s", record.dataset_id, ",".join(grantees),
                 caller.organization_id or "-", caller.subject or "-")
        return policy

    async def access_policy(self, dataset_id: str, *, caller_org: str | None) -> AccessPolicyRecord:
        record, _ = await self._with_access(dataset_id, caller_org, Access.OWNER, "read the access policy of")
        return await self.sharing.policy(DATASET, record.dataset_id, record.organization_id)

    async def usages(self, dataset_id: str, page_size: int, page_token: str, *, caller_org: str | None) -> Page:
        """Every model registered on the dataset (whoever owns it), newest first. Owner only."""
        record, _ = await self._with_access(dataset_id, caller_org, Access.OWNER, "list the usages of")
        return await self.sharing.usages(record.dataset_id, page_size, page_token)

    # -- download -----------------------------------------------------------------------------

    async def download(self, dataset_id: str, offset: int, *, caller_org: str | None
                       ) -> tuple[DatasetRecord, AsyncIterator[bytes]]:
        """Checks the stored bytes against the ledger, then streams them from `offset`.

        The whole object is hashed before the first byte goes out, so a tampered or
        corrupted dataset fails with DATA_LOSS instead of being served. A full download
        is hashed again while it streams, which catches a change made during the stream.
        """
        record = await self.get(dataset_id, caller_org=caller_org)
        blobs.check_offset(offset, record.size_bytes, "the dataset")
        chain = await self._chain_anchor(record)
        if chain.sha256 != record.sha256 or chain.size_bytes != record.size_bytes:
            raise errors.DataLoss(
                f"dataset {record.dataset_id}: the database records sha256 {record.sha256} ({record.size_bytes} "
                f"bytes) but its ledger contract {record.contract_address} records sha256 {chain.sha256} "
                f"({chain.size_bytes} bytes); refusing to serve it",
                reason="LEDGER_MISMATCH",
            )
        return record, await blobs.open_verified(
            self.store, record.object_key, offset=offset, sha256=chain.sha256, size_bytes=record.size_bytes,
            what=f"dataset {record.dataset_id}", chunk_bytes=self.read_chunk_bytes,
        )

    # -- provenance ---------------------------------------------------------------------------

    async def provenance(self, dataset_id: str, *, caller_org: str | None) -> Provenance:
        record = await self.get(dataset_id, caller_org=caller_org)
        checks: list[Check] = []
        try:
            chain = await self._chain_anchor(record)
        except errors.DataLoss as exc:
            # The anchor, not the dataset, is missing: say so, and compare the bytes with the database.
            chain = None
            checks.append(Check(ANCHOR_PRESENT_CHECK, False, exc.message))
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

        if chain is None:
            compare("stored size_bytes = database size_bytes", stored_size, record.size_bytes)
            compare("stored md5 = database md5", stored_md5, record.md5)
            compare("stored sha256 = database sha256", stored_sha, record.sha256)
            return Provenance(record, None, stored_md5, stored_sha, stored_size, checks)
        checks.append(Check(ANCHOR_PRESENT_CHECK, True))
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
