"""Sharing in the Registry (docs/security.md): what a caller may do with a dataset or a model
(`servers.common.access` with the grants stored beside them), and the owner's share, unshare
and access-policy use cases. No grpc, no generated code.

Decisions:
- A share or unshare request is recorded in the append-only audit log even when it changes
  nothing (a grant that already existed keeps its first grant_time and granted_by; the event says
  `changed=False`), so the log answers "who asked what, when", not only "what changed".
- Grants on the ledger (docs/security.md): after the share's transaction commits, each audit
  event is appended to the chain's AccessLog through the Ledger and the entry's transaction hash
  and index are recorded on the audit row. A chain write that fails leaves the event with no
  anchor (the share itself succeeded and is not undone); every later share or unshare, and the
  Registry's start, anchor the oldest unanchored events first. One Registry process anchors one
  event at a time (a lock), so an event is appended once; two Registry replicas racing could
  append an event twice, and the row keeps the first anchor (the second entry is an extra, honest
  copy). Reading the access policy compares each anchored row with its chain entry.
- Grantee ids are validated before the resource is looked up (so a stranger learns nothing from
  the answer), except "not the owner itself", which needs the owner and so comes after the access
  check. "*" stands for everyone and is reachable only through `public`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import logging
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from servers.common import access, errors
from servers.common.access import Access
from servers.registry.domain.ports import AccessLedger, AccessLogEntry, AccessRepository
from servers.registry.domain.records import (
    ANCHOR_CONSISTENT,
    ANCHOR_INCONSISTENT,
    ANCHOR_UNAVAILABLE,
    SHARE,
    UNSHARE,
    AccessAnchorRecord,
    AccessEventRecord,
    AccessPolicyRecord,
    Page,
)

log = logging.getLogger(__name__)

MAX_GRANTEE_CHARS = 128
MAX_GRANTEES_PER_REQUEST = 100
MAX_SUBJECT_CHARS = 512
ANCHOR_BATCH = 500
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Caller:
    """Who is calling: an organization and its member's subject (from the verified token), or
    None for both when a mesh server calls for itself."""

    organization_id: str | None
    subject: str | None = None


INTERNAL = Caller(None, None)


def validate_grantees(organization_ids: Iterable[str], public: bool) -> list[str]:
    """The grantees a share or unshare request names, deduplicated in order ("*" for `public`).
    InvalidArgument for an empty request, too many grantees, or a malformed organization id."""
    ids = list(organization_ids)
    if len(ids) > MAX_GRANTEES_PER_REQUEST:
        raise errors.InvalidArgument(
            f"at most {MAX_GRANTEES_PER_REQUEST} organizations per request, not {len(ids)}",
            reason="TOO_MANY_GRANTEES")
    grantees: list[str] = []
    for org in ids:
        _check_organization_id(org)
        if org not in grantees:
            grantees.append(org)
    if public:
        grantees.append(access.PUBLIC)
    if not grantees:
        raise errors.InvalidArgument("name at least one organization (organization_ids) or set public",
                                     reason="GRANTEES_MISSING")
    return grantees


def _check_organization_id(org: str) -> None:
    shown = repr(org[:40])
    if not org:
        raise errors.InvalidArgument("an organization id in organization_ids is empty", reason="GRANTEE_INVALID")
    if len(org) > MAX_GRANTEE_CHARS:
        raise errors.InvalidArgument(f"organization id {shown}... is longer than {MAX_GRANTEE_CHARS} characters",
                                     reason="GRANTEE_INVALID")
    if org == access.PUBLIC:
        raise errors.InvalidArgument('"*" is not an organization: set public to share with everyone',
                                     reason="GRANTEE_INVALID")
    if org != org.strip():
        raise errors.InvalidArgument(f"organization id {shown} starts or ends with white space",
                                     reason="GRANTEE_INVALID")
    # Control characters (NUL, newlines, ESC) and invisible format characters (zero-width,
    # bidirectional overrides) would make one id print as another in the audit log.
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in org):
        raise errors.InvalidArgument(f"organization id {shown} contains control or invisible characters",
                                     reason="GRANTEE_INVALID")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Sharing:
    """Access levels and grants of the Registry's resources, shared by DatasetCore and ModelCore."""

    def __init__(self, repo: AccessRepository, *, ledger: AccessLedger | None = None,
                 clock: Callable[[], dt.datetime] = _utcnow):
        self.repo = repo
        self.ledger = ledger  # None: grants are not anchored (unit tests without a chain)
        self.clock = clock
        self._anchor_lock = asyncio.Lock()
        self._background: asyncio.Task | None = None

    async def level(self, kind: str, resource_id: str, owner_org: str, caller_org: str | None) -> Access:
        """What `caller_org` may do with the resource; reads the grants only when it matters."""
        if caller_org is None or caller_org == owner_org:
            return Access.OWNER
        return access.access(caller_org, owner_org, await self.repo.grantees(kind, resource_id))

    async def share(self, kind: str, resource_id: str, owner_org: str, grantees: list[str], caller: Caller
                    ) -> AccessPolicyRecord:
        self._check_not_owner(kind, resource_id, owner_org, grantees)
        await self.repo.change(kind, resource_id, SHARE, grantees, actor_organization_id=caller.organization_id or "",
                               actor_subject=_subject(caller), when=self.clock())
        await self.anchor_pending()
        return await self.policy(kind, resource_id, owner_org)

    async def unshare(self, kind: str, resource_id: str, owner_org: str, grantees: list[str], caller: Caller
                      ) -> AccessPolicyRecord:
        self._check_not_owner(kind, resource_id, owner_org, grantees)
        await self.repo.change(kind, resource_id, UNSHARE, grantees,
                               actor_organization_id=caller.organization_id or "", actor_subject=_subject(caller),
                               when=self.clock())
        await self.anchor_pending()
        return await self.policy(kind, resource_id, owner_org)

    async def policy(self, kind: str, resource_id: str, owner_org: str) -> AccessPolicyRecord:
        grants, history = await self.repo.policy(kind, resource_id)
        history = await self._checked(kind, resource_id, history)
        return AccessPolicyRecord(kind=kind, resource_id=resource_id, owner_organization_id=owner_org,
                                  grants=grants, history=history)

    # -- the ledger's AccessLog ------------------------------------------------------------------

    async def anchor_pending(self) -> int:
        """Append every audit event without an anchor to the chain, oldest first; how many were
        anchored. Never raises: an event the chain did not take stays unanchored for the next try."""
        if self.ledger is None:
            return 0
        anchored = 0
        async with self._anchor_lock:
            try:
                pending = await self.repo.unanchored(ANCHOR_BATCH)
            except errors.MeshError as exc:
                log.warning("access events: cannot read the unanchored ones: %s", exc.message)
                return 0
            for kind, resource_id, event in pending:
                try:
                    tx_hash, index = await self.ledger.record_access(log_entry(kind, resource_id, event))
                    await self.repo.set_anchor(event.event_id, tx_hash, index)
                except errors.Unavailable as exc:
                    log.warning("access event %d of %s %s not anchored yet (the ledger is unavailable: %s); "
                                "retried at the next share or start", event.event_id, kind, resource_id,
                                exc.message)
                    break
                except errors.MeshError as exc:
                    log.error("access event %d of %s %s not anchored: %s; retried at the next share or start",
                              event.event_id, kind, resource_id, exc.message)
                    continue
                anchored += 1
        return anchored

    def start_anchoring(self, *, retry_seconds: float = 2.0, attempts: int = 60) -> None:
        """In the background: anchor what an earlier run left unanchored, retrying while the ledger
        is down (at most `attempts` times)."""

        async def run() -> None:
            for _ in range(attempts):
                await self.anchor_pending()
                if not await self.repo.unanchored(1):
                    return
                await asyncio.sleep(retry_seconds)

        if self.ledger is not None:
            self._background = asyncio.create_task(run(), name="registry-anchor-access-events")

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
            try:
                await self._background
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - stopping: its outcome no longer matters
                pass
            self._background = None

    async def _checked(self, kind: str, resource_id: str, history: list[AccessEventRecord]
                       ) -> list[AccessEventRecord]:
        """`history` with each anchored event compared with its chain entry."""
        if self.ledger is None or not any(e.anchor for e in history):
            return history
        try:
            on_chain = {e.index: e for e in await self.ledger.access_entries(kind, resource_id)}
        except errors.MeshError as exc:
            return [_with_check(e, ANCHOR_UNAVAILABLE, exc.message) for e in history]
        checked = []
        for event in history:
            if event.anchor is None:
                checked.append(event)
                continue
            entry = on_chain.get(event.anchor.index)
            if entry is None:
                checked.append(_with_check(event, ANCHOR_INCONSISTENT,
                                           f"the AccessLog holds no entry {event.anchor.index} of this {kind}"))
                continue
            differences = compare_entry(log_entry(kind, resource_id, event), entry)
            checked.append(_with_check(event, ANCHOR_INCONSISTENT if differences else ANCHOR_CONSISTENT,
                                       "; ".join(differences)))
        return checked

    async def usages(self, dataset_id: str, page_size: int, page_token: str) -> Page:
        return await self.repo.usages(dataset_id, page_size, page_token)

    @staticmethod
    def _check_not_owner(kind: str, resource_id: str, owner_org: str, grantees: list[str]) -> None:
        if owner_org in grantees:
            raise errors.InvalidArgument(
                f"{owner_org!r} owns {kind} {resource_id}; it needs no grant", reason="GRANTEE_IS_OWNER")


def _subject(caller: Caller) -> str:
    # The subject comes from a verified token, but bound what the audit log stores all the same.
    return (caller.subject or "")[:MAX_SUBJECT_CHARS]


def event_time_micros(when: dt.datetime) -> int:
    return (when - _EPOCH) // dt.timedelta(microseconds=1)


def log_entry(kind: str, resource_id: str, event: AccessEventRecord) -> AccessLogEntry:
    """What the AccessLog holds of an audit event: the subject only as its SHA-256."""
    subject = event.actor_subject
    return AccessLogEntry(
        index=event.anchor.index if event.anchor else -1, resource_kind=kind, resource_id=resource_id,
        action=event.action, grantee=event.grantee, public=event.grantee == access.PUBLIC,
        actor_organization_id=event.actor_organization_id,
        actor_subject_sha256=hashlib.sha256(subject.encode()).hexdigest() if subject else "",
        event_time_micros=event_time_micros(event.event_time),
    )


_COMPARED = ("resource_kind", "resource_id", "action", "grantee", "public", "actor_organization_id",
             "actor_subject_sha256", "event_time_micros")


def compare_entry(expected: AccessLogEntry, on_chain: AccessLogEntry) -> list[str]:
    """'field: database X, chain Y' for every field the audit row and the chain entry disagree on."""
    return [f"{name}: database {getattr(expected, name)!r}, chain {getattr(on_chain, name)!r}"
            for name in _COMPARED if getattr(expected, name) != getattr(on_chain, name)]


def _with_check(event: AccessEventRecord, check: str, detail: str) -> AccessEventRecord:
    if event.anchor is None:
        return event
    anchor = AccessAnchorRecord(tx_hash=event.anchor.tx_hash, index=event.anchor.index, check=check,
                                detail=detail if check != ANCHOR_CONSISTENT else "")
    return dataclasses.replace(event, anchor=anchor)
