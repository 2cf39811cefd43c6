"""`mlmesh datasets|models share/unshare/access/usages` with the Registry client replaced by a
recording fake: what the commands send, and what they print."""

from __future__ import annotations

import contextlib

import pytest
from google.protobuf import timestamp_pb2
from mlmesh.registry.v1 import access_pb2
from typer.testing import CliRunner

from clients import cli

TS = timestamp_pb2.Timestamp(seconds=1_780_000_000)


class FakeRegistry:
    def __init__(self):
        self.calls: list[tuple] = []

    def _policy(self, resource: str, public: bool = False) -> access_pb2.AccessPolicy:
        return access_pb2.AccessPolicy(
            resource=resource, owner_organization_id="org-a", public=public,
            grants=[access_pb2.Grant(organization_id="org-b", grant_time=TS, granted_by="alice")],
            history=[access_pb2.AccessEvent(action=access_pb2.AccessEvent.ACTION_SHARE, organization_id="org-b",
                                            actor="alice", actor_organization_id="org-a", event_time=TS,
                                            changed=True),
                     access_pb2.AccessEvent(action=access_pb2.AccessEvent.ACTION_UNSHARE, public=True, actor="bob",
                                            actor_organization_id="org-a", event_time=TS, changed=False)])

    def __getattr__(self, name):
        def call(ident, **kwargs):
            self.calls.append((name, ident, kwargs))
            if name == "usages":
                return iter([access_pb2.DatasetUsage(model_id="m-1", organization_id="org-b", create_time=TS)])
            return self._policy(f"{'models' if 'model' in name else 'datasets'}/{ident}", kwargs.get("public", False))
        return call


@pytest.fixture
def fake(monkeypatch):
    registry = FakeRegistry()
    orgs: list[str | None] = []

    @contextlib.contextmanager
    def _registry(org):
        orgs.append(org)
        yield registry

    monkeypatch.setattr(cli, "_registry", _registry)
    registry.orgs = orgs
    return registry


def _run(*args: str):
    result = CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200"})
    return result


def test_share_with_two_organizations_as_an_org(fake):
    result = _run("datasets", "share", "d-1", "--with", "org-b", "--with", "org-c", "--org", "org-a")
    assert result.exit_code == 0, result.output
    assert fake.calls == [("share", "d-1", {"organization_ids": ["org-b", "org-c"], "public": False})]
    assert fake.orgs == ["org-a"]
    assert "datasets/d-1: owner org-a" in result.output and "alice" in result.output
    assert "unshare" in result.output and "everyone" in result.output  # the history table


@pytest.mark.parametrize("args, call", [
    (("datasets", "unshare", "d-1", "--public"), ("unshare", "d-1", {"organization_ids": [], "public": True})),
    (("datasets", "access", "d-1"), ("access_policy", "d-1", {})),
    (("models", "share", "m-1", "--public"), ("share_model", "m-1", {"organization_ids": [], "public": True})),
    (("models", "unshare", "m-1", "--with", "org-b"),
     ("unshare_model", "m-1", {"organization_ids": ["org-b"], "public": False})),
    (("models", "access", "m-1"), ("model_access_policy", "m-1", {})),
])
def test_commands_send_what_they_say(fake, args, call):
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert fake.calls == [call]


def test_usages_table(fake):
    result = _run("datasets", "usages", "d-1")
    assert result.exit_code == 0 and "m-1" in result.output and "org-b" in result.output


def test_share_without_grantees_is_a_usage_error(fake):
    result = _run("datasets", "share", "d-1")
    assert result.exit_code == 2 and fake.calls == []
