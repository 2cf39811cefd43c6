"""Resource ids. Every mlmesh resource id is a UUID; this is the one parser, so every server
answers a bad id the same way: INVALID_ARGUMENT with reason `<FIELD>_MISSING` when it is empty and
`<FIELD>_MALFORMED` when it is not a UUID (e.g. DATASET_ID_MISSING, LEARNER_ID_MALFORMED)."""

from __future__ import annotations

import uuid

from servers.common import errors

EXAMPLE = "5d066d58-06de-47ab-a2f6-c8f413e21947"


def parse_id(value: str, field: str) -> str:
    """The canonical lowercase form of UUID `value`; InvalidArgument naming `field` otherwise."""
    if not value:
        raise errors.InvalidArgument(f"{field} is required", reason=f"{field.upper()}_MISSING")
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise errors.InvalidArgument(f"{field} {str(value)[:80]!r} is not a UUID (e.g. {EXAMPLE})",
                                     reason=f"{field.upper()}_MALFORMED") from None


def parse_uuid(value: str, field: str) -> uuid.UUID:
    """`parse_id` as a `uuid.UUID` (what asyncpg binds to a uuid column)."""
    return uuid.UUID(parse_id(value, field))
