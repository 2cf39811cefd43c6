"""Sharing in the Registry (docs/security.md): what a caller may do with a dataset or a model
(`servers.common.access` with the grants stored beside them), and the owner's share, unshare
and access-policy use cases. No grpc, no generated code.

Decisions:
- A share or unshare request is recorded in the append-only audit log even when it changes
  nothing (a grant that already existed keeps its first grant_time and granted_by; the event says
  `changed=False`), so the log answers "who asked what, when", not only "what changed".
- Grantee ids are validated before the resource is looked up (so a stranger learns nothing from
  the answer), except "not the owner itself", which needs the owner and so comes after the access
  check. "*" stands for everyone and is reachable only through `public`.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from servers.common import access, errors
from servers.common.access import Access
from servers.registry.domain.ports import AccessRepository
from servers.registry.domain.records import SHARE, UNSHARE, AccessPolicyRecord, Page

MAX_GRANTEE_CHARS = 128
MAX_GRANTEES_PER_REQUEST = 100
MAX_SUBJECT_CHARS = 512


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

    def __init__(self, repo: AccessRepository, *, clock: Callable[[], dt.datetime] = _utcnow):
        self.repo = repo
        self.clock = clock

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
        return await self.policy(kind, resource_id, owner_org)

    async def unshare(self, kind: str, resource_id: str, owner_org: str, grantees: list[str], caller: Caller
                      ) -> AccessPolicyRecord:
        self._check_not_owner(kind, resource_id, owner_org, grantees)
        await self.repo.change(kind, resource_id, UNSHARE, grantees,
                               actor_organization_id=caller.organization_id or "", actor_subject=_subject(caller),
                               when=self.clock())
        return await self.policy(kind, resource_id, owner_org)

    async def policy(self, kind: str, resource_id: str, owner_org: str) -> AccessPolicyRecord:
        grants, history = await self.repo.policy(kind, resource_id)
        return AccessPolicyRecord(kind=kind, resource_id=resource_id, owner_organization_id=owner_org,
                                  grants=grants, history=history)

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
