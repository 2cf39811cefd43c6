"""The mesh's one access model (docs/security.md), as plain domain logic: no grpc, no tables.

Every resource has an owner organization. A caller is an organization (from the verified token,
via Envoy) or None: a mesh server acting for itself over the authenticated internal network
(mTLS), which is trusted like the owner. What a caller may do with a resource:

  OWNER  the owner organization (or an internal caller): everything — read, change, delete,
         share, unshare, read the access policy and who used it.
  READ   an organization the owner shared it with, or anyone when it is public: read, download,
         use as an input (train on a dataset; translate, serve or continue a model).
  NONE   anyone else: the resource does not exist for them.

Checks answer NOT_FOUND when the caller may not see the resource (never confirming that it
exists) and PERMISSION_DENIED when it may see but not change it.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass

from servers.common import errors

PUBLIC = "*"  # the grantee that stands for every organization


class Access(enum.IntEnum):
    NONE = 0
    READ = 1
    OWNER = 2


@dataclass(frozen=True)
class Shared:
    """Who a resource is shared with: organization ids, and PUBLIC for everyone."""

    grantees: frozenset[str] = frozenset()

    @property
    def public(self) -> bool:
        return PUBLIC in self.grantees


NOT_SHARED = Shared()


def access(caller_org: str | None, owner_org: str, shared: Shared | Collection[str] = NOT_SHARED) -> Access:
    """What `caller_org` may do with a resource owned by `owner_org` and shared as `shared`."""
    if caller_org is None or caller_org == owner_org:
        return Access.OWNER
    grantees = shared.grantees if isinstance(shared, Shared) else shared
    if caller_org in grantees or PUBLIC in grantees:
        return Access.READ
    return Access.NONE


def not_found(kind: str, resource_id: str) -> errors.NotFound:
    """The answer for a resource that does not exist, or that the caller may not see (the same)."""
    return errors.NotFound(f"{kind} {resource_id} does not exist", reason=f"{kind.upper()}_NOT_FOUND",
                           metadata={f"{kind}_id": resource_id})


def require_read(level: Access, kind: str, resource_id: str) -> None:
    if level < Access.READ:
        raise not_found(kind, resource_id)


def require_owner(level: Access, kind: str, resource_id: str, action: str) -> None:
    """NOT_FOUND for a stranger, PERMISSION_DENIED for a reader, nothing for the owner."""
    require_read(level, kind, resource_id)
    if level < Access.OWNER:
        raise errors.PermissionDenied(
            f"{kind} {resource_id} is shared with your organization for reading; only its owner may {action} it",
            reason="NOT_OWNER", metadata={f"{kind}_id": resource_id})
