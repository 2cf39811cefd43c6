"""`mlmesh datasets|models share/unshare/access/usages` and `datasets list --owner` with the SDK
client replaced by a recording fake: what the commands send, what they print, --json, and the exit
codes of a refused call."""

from __future__ import annotations

import contextlib
import json

import grpc
import pytest
from google.protobuf import timestamp_pb2
from mlmesh.registry.v1 import access_pb2, dataset_pb2
from typer.testing import CliRunner

from clients import cli, session
from mlmesh.client import errors

TS = timestamp_pb2.Timestamp(seconds=1_780_000_000)


class FakeService:
    """Records every call as (service, method, args, kwargs) and answers like the SDK would."""

    def __init__(self, name: str, calls: list, fail: errors.MlmeshError | None = None):
        self.name, self.calls, self.fail = name, calls, fail

    def _policy(self, resource: str, public: bool = False) -> access_pb2.AccessPolicy:
        return access_pb2.AccessPolicy(
            resource=resource, owner_organization_id="org-a", public=public,
            grants=[access_pb2.Grant(organization_id="org-b", grant_time=TS, granted_by="alice")],
            history=[access_pb2.AccessEvent(action=access_pb2.AccessEvent.ACTION_SHARE, organization_id="org-b",
                                            actor="alice", actor_organization_id="org-a", event_time=TS,
                                            changed=True),
                     access_pb2.AccessEvent(action=access_pb2.AccessEvent.ACTION_UNSHARE, public=True, actor="bob",
                                            actor_organization_id="org-a", event_time=TS, changed=False)])

    def __getattr__(self, method):
        def call(*args, **kwargs):
            self.calls.append((self.name, method, args, kwargs))
            if self.fail is not None:
                raise self.fail
            if method == "usages":
                return iter([access_pb2.DatasetUsage(model_id="m-1", organization_id="org-b", create_time=TS)])
            if method == "list":
                return iter([dataset_pb2.Dataset(dataset_id="d-9", display_name="shared", organization_id="org-b")])
            return self._policy(f"{self.name}/{args[0]}", kwargs.get("public", False))
        return call


@pytest.fixture
def fake(monkeypatch):
    state = {"calls": [], "orgs": [], "fail": None}

    @contextlib.contextmanager
    def _client(org, as_json=False):
        state["orgs"].append(org)
        client = type("FakeClient", (), {})()
        for name in ("datasets", "models"):
            setattr(client, name, FakeService(name, state["calls"], state["fail"]))
        with session.mesh_errors(as_json=as_json):
            yield client

    monkeypatch.setattr(cli, "_client", _client)
    return state


def _run(*args: str):
    return CliRunner().invoke(cli.app, list(args), env={"COLUMNS": "200"})


def test_share_with_two_organizations_as_an_org(fake):
    result = _run("datasets", "share", "d-1", "--with", "org-b", "--with", "org-c", "--org", "org-a")
    assert result.exit_code == 0, result.output
    assert fake["calls"] == [("datasets", "share", ("d-1", ["org-b", "org-c"]), {"public": False})]
    assert fake["orgs"] == ["org-a"]
    assert "datasets/d-1: owner org-a" in result.output and "alice" in result.output
    assert "unshare" in result.output and "everyone" in result.output  # the history table


@pytest.mark.parametrize("args, call", [
    (("datasets", "unshare", "d-1", "--public"), ("datasets", "unshare", ("d-1", []), {"public": True})),
    (("datasets", "access", "d-1"), ("datasets", "access_policy", ("d-1",), {})),
    (("models", "share", "m-1", "--public"), ("models", "share", ("m-1", []), {"public": True})),
    (("models", "unshare", "m-1", "--with", "org-b"), ("models", "unshare", ("m-1", ["org-b"]), {"public": False})),
    (("models", "access", "m-1"), ("models", "access_policy", ("m-1",), {})),
])
def test_commands_send_what_they_say(fake, args, call):
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert fake["calls"] == [call]


def test_usages_table(fake):
    result = _run("datasets", "usages", "d-1")
    assert result.exit_code == 0 and "m-1" in result.output and "org-b" in result.output


def test_share_without_grantees_is_a_usage_error(fake):
    result = _run("datasets", "share", "d-1")
    assert result.exit_code == 2 and fake["calls"] == []


def test_list_owner_filters_while_org_picks_the_token(fake):
    # --owner is the filter (what org-b shared with me); --org only chooses who I am
    result = _run("datasets", "list", "--owner", "org-b", "--org", "org-a")
    assert result.exit_code == 0, result.output
    assert fake["calls"] == [("datasets", "list", (), {"owner": "org-b", "page_size": 100})]
    assert fake["orgs"] == ["org-a"] and "d-9" in result.output


def test_json_output_is_the_messages_json(fake):
    result = _run("datasets", "access", "d-1", "--json")
    assert result.exit_code == 0, result.output
    policy = json.loads(result.stdout)
    assert policy["owner_organization_id"] == "org-a" and policy["grants"][0]["organization_id"] == "org-b"
    listed = json.loads(_run("datasets", "list", "--json").stdout)
    assert [d["dataset_id"] for d in listed] == ["d-9"]


@pytest.mark.parametrize("error, code", [
    (errors.NotFound("dataset d-1 does not exist", reason="DATASET_NOT_FOUND", request_id="rid-1"), 1),
    (errors.Unavailable("failed to connect to all addresses"), 3),
    (errors.DeadlineExceeded("Deadline Exceeded"), 3),
])
def test_a_refused_call_prints_its_status_and_exits_with_the_documented_code(fake, error, code):
    fake["fail"] = error
    result = _run("datasets", "access", "d-1")
    assert result.exit_code == code
    assert error.code.name in result.output and error.message in result.output
    if error.reason:
        assert "DATASET_NOT_FOUND" in result.output and "rid-1" in result.output
    as_json = _run("datasets", "access", "d-1", "--json")
    assert as_json.exit_code == code
    assert json.loads(as_json.stderr)["error"]["code"] == error.code.name
    assert error.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
