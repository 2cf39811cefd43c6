"""The Registry's sharing rules and converters that need no I/O: grantee validation, the access
levels the Sharing component derives from grants, and the access-policy converter pairs."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest
from mlmesh.registry.v1 import access_pb2

from servers.common import errors
from servers.common.access import Access
from servers.registry.api import converters as conv
from servers.registry.domain.records import (
    SHARE,
    UNSHARE,
    AccessEventRecord,
    AccessPolicyRecord,
    GrantRecord,
    UsageRecord,
)
from servers.registry.domain.sharing import Sharing, validate_grantees

T0 = dt.datetime(2026, 6, 1, 12, 0, 0, 123000, tzinfo=dt.UTC)


def test_grantees_are_deduplicated_in_order_and_public_is_star():
    assert validate_grantees(["b", "a", "b"], public=True) == ["b", "a", "*"]
    assert validate_grantees([], public=True) == ["*"]
    assert validate_grantees(["ü-org" * 10], public=False) == ["ü-org" * 10]  # 50 chars, unicode letters are fine


@pytest.mark.parametrize("ids, public, reason", [
    ([], False, "GRANTEES_MISSING"),
    ([""], False, "GRANTEE_INVALID"),
    (["a" * 129], False, "GRANTEE_INVALID"),
    (["a\x00"], False, "GRANTEE_INVALID"),
    (["a\x1b[31m"], False, "GRANTEE_INVALID"),
    (["a\u202e"], False, "GRANTEE_INVALID"),
    (["*"], True, "GRANTEE_INVALID"),
    (["a "], False, "GRANTEE_INVALID"),
    (["x"] * 101, False, "TOO_MANY_GRANTEES"),
])
def test_bad_grantees(ids, public, reason):
    with pytest.raises(errors.InvalidArgument) as info:
        validate_grantees(ids, public)
    assert info.value.reason == reason


def test_a_grantee_of_exactly_128_characters_is_fine():
    assert validate_grantees(["a" * 128], public=False) == ["a" * 128]


class FakeGrants:
    def __init__(self, grantees: frozenset[str]):
        self._grantees = grantees
        self.reads = 0

    async def grantees(self, kind: str, resource_id: str) -> frozenset[str]:
        self.reads += 1
        return self._grantees


@pytest.mark.parametrize("grantees, caller, level", [
    (frozenset(), "owner", Access.OWNER),
    (frozenset(), None, Access.OWNER),
    (frozenset(), "b", Access.NONE),
    (frozenset({"b"}), "b", Access.READ),
    (frozenset({"b"}), "c", Access.NONE),
    (frozenset({"*"}), "c", Access.READ),
    (frozenset({"b", "*"}), "owner", Access.OWNER),
])
async def test_levels(grantees, caller, level):
    repo = FakeGrants(grantees)
    assert await Sharing(repo).level("dataset", "id", "owner", caller) == level
    assert repo.reads == (0 if caller in (None, "owner") else 1)  # the owner needs no grant lookup


async def test_sharing_with_the_owner_itself_is_refused():
    with pytest.raises(errors.InvalidArgument) as info:
        await Sharing(FakeGrants(frozenset())).share("model", "m", "owner", ["b", "owner"], caller=None)
    assert info.value.reason == "GRANTEE_IS_OWNER"


def _policy(public: bool) -> AccessPolicyRecord:
    grants = [GrantRecord("org-b", "alice", T0), GrantRecord("org-c", "", T0 + dt.timedelta(seconds=5))]
    history = [AccessEventRecord(SHARE, "org-b", "org-a", "alice", T0, True),
               AccessEventRecord(SHARE, "org-b", "org-a", "bob", T0 + dt.timedelta(seconds=1), False),
               AccessEventRecord(UNSHARE, "org-z", "", "", T0 + dt.timedelta(seconds=2), False)]
    if public:
        grants.insert(1, GrantRecord("*", "bob", T0 + dt.timedelta(seconds=3)))
        history.append(AccessEventRecord(SHARE, "*", "org-a", "bob", T0 + dt.timedelta(seconds=3), True))
    return AccessPolicyRecord("dataset", "5d066d58-06de-47ab-a2f6-c8f413e21947", "org-a", grants, history)


def test_access_policy_round_trip():
    record = _policy(public=False)
    proto = conv.access_policy_to_proto(record)
    assert proto.resource == "datasets/5d066d58-06de-47ab-a2f6-c8f413e21947" and not proto.public
    assert conv.access_policy_from_proto(proto) == record


def test_public_access_policy_round_trip_and_wire_form():
    record = _policy(public=True)
    proto = conv.access_policy_to_proto(record)
    assert proto.public and [g.organization_id for g in proto.grants] == ["org-b", "org-c"]  # no "*" grant
    public_event = proto.history[-1]
    assert (public_event.public, public_event.organization_id, public_event.changed) == (True, "", True)
    assert conv.access_policy_from_proto(proto, public_grant=record.grants[1]) == record
    with pytest.raises(ValueError):
        conv.access_policy_from_proto(proto)


def test_model_policy_resource_name_and_unknown_resources():
    record = AccessPolicyRecord("model", "m-1", "org-a", [], [])
    proto = conv.access_policy_to_proto(record)
    assert proto.resource == "models/m-1" and conv.access_policy_from_proto(proto) == record
    with pytest.raises(ValueError):
        conv.access_policy_from_proto(access_pb2.AccessPolicy(resource="translations/x"))


def test_access_event_round_trip_and_unspecified_action():
    event = AccessEventRecord(UNSHARE, "org-b", "org-a", "alice", T0, True)
    assert conv.access_event_from_proto(conv.access_event_to_proto(event)) == event
    with pytest.raises(ValueError):
        conv.access_event_from_proto(access_pb2.AccessEvent())


def test_grant_and_usage_round_trips():
    grant = GrantRecord("org-b", "alice", T0)
    assert conv.grant_from_proto(conv.grant_to_proto(grant)) == grant
    usage = UsageRecord("m-1", "org-b", T0)
    assert conv.usage_from_proto(conv.usage_to_proto(usage)) == usage


def test_anchored_event_round_trips_with_its_check():
    from servers.registry.domain.records import AccessAnchorRecord

    for check, detail in (("CONSISTENT", ""), ("INCONSISTENT", "grantee: database 'x', chain 'y'"),
                          ("UNAVAILABLE", "ledger down")):
        event = AccessEventRecord(SHARE, "*", "org-a", "alice", T0, True,
                                  anchor=AccessAnchorRecord("0x" + "ab" * 32, 7, check, detail))
        assert conv.access_event_from_proto(conv.access_event_to_proto(event)) == event


def test_the_chain_entry_of_an_event_hashes_the_subject_and_names_every_difference():
    from servers.registry.domain.sharing import compare_entry, log_entry

    resource = "5d066d58-06de-47ab-a2f6-c8f413e21947"
    event = AccessEventRecord(SHARE, "*", "org-a", "alice", T0 + dt.timedelta(microseconds=7), True)
    entry = log_entry("dataset", resource, event)
    assert entry.public and entry.grantee == "*"
    assert entry.actor_subject_sha256 == hashlib.sha256(b"alice").hexdigest()
    assert entry.event_time_micros == int(T0.timestamp()) * 1_000_000 + 123_000 + 7
    assert log_entry("model", resource, AccessEventRecord(UNSHARE, "org-b", "", "", T0, False)
                     ).actor_subject_sha256 == ""
    assert compare_entry(entry, entry) == []
    tampered = dataclasses.replace(entry, grantee="org-x", event_time_micros=1)
    assert [d.split(":")[0] for d in compare_entry(entry, tampered)] == ["grantee", "event_time_micros"]
