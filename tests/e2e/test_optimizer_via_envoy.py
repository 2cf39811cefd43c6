"""The Optimizer through the front door, with a token: an agent created over REST trains (a few
dozen steps of PPO in the real worker), is watched over native gRPC, and its policy downloads over
REST from the Registry with the hash the ledger holds; :optimize and :evaluate over REST; bad input
is 400 naming the field; another organization's agent is 404 on every route."""

from __future__ import annotations

import hashlib
import uuid

import grpc
import httpx
import pytest
from mlmesh.optimizer.v1 import optimizer_service_pb2 as pb
from mlmesh.optimizer.v1 import optimizer_service_pb2_grpc as opt_grpc

ORG, STRANGER = "smart-energy-ll", "optimizer-stranger"
TINY = {"display_name": "ppo via envoy", "algorithm": "ALGORITHM_PPO", "total_timesteps": 32, "seed": 5,
        "train_days": {"first": 160, "last": 170}, "eval_days": {"first": 171, "last": 172}, "actions_per_day": 4,
        "hyperparameters": {"n_steps": 16, "batch_size": 16}}


@pytest.fixture(scope="module")
def http(stack):
    with httpx.Client(base_url=stack.base_url, timeout=60) as client:
        yield client


def test_an_agent_created_over_rest_trains_and_its_policy_downloads_checked(stack, http):
    r = http.post("/v1/agents", json=TINY, headers=stack.auth(ORG))
    assert r.status_code == 200, r.text
    agent_id = r.json()["agent_id"]
    assert r.json()["state"] == "STATE_QUEUED"

    # Watch over native gRPC through the same front door, until the agent ends.
    with grpc.insecure_channel(stack.envoy) as channel:
        events = list(opt_grpc.OptimizerServiceStub(channel).WatchAgent(
            pb.WatchAgentRequest(agent_id=agent_id), metadata=(("authorization", stack.auth(ORG)["authorization"]),),
            timeout=300))
    assert events[-1].agent.state == pb.Agent.STATE_SUCCEEDED, events[-1]
    assert sum(e.HasField("episode") for e in events) == 32 // 4

    agent = http.get(f"/v1/agents/{agent_id}", headers=stack.auth(ORG)).json()
    assert [p["policy"] for p in agent["evaluation"]["policies"]] == ["agent", "no_shift", "random", "greedy"]
    assert agent_id in [a["agent_id"] for a in http.get("/v1/agents", headers=stack.auth(ORG)).json()["agents"]]
    model = http.get(f"/v1/models/{agent['model_id']}", headers=stack.auth(ORG)).json()
    policy = http.get(f"/v1/models/{agent['model_id']}:download", headers=stack.auth(ORG))
    assert policy.status_code == 200 and hashlib.sha256(policy.content).hexdigest() == model["res_sha256"]
    provenance = http.get(f"/v1/models/{agent['model_id']}/provenance", headers=stack.auth(ORG)).json()
    assert provenance["consistent"] is True, provenance

    plan = http.post(f"/v1/agents/{agent_id}:optimize", json={"day": 172}, headers=stack.auth(ORG))
    assert plan.status_code == 200, plan.text
    plan = plan.json()
    assert plan["day"] == 172 and plan["after"]["power_flow_status"] == "converged" and len(plan["loads"]) == 7
    assert all(abs(s["to_hour"] - s["from_hour"]) == 1 for s in plan.get("shifts", []))

    # :evaluate over REST: the stored policy beside the baselines on other held-out days.
    evaluated = http.post(f"/v1/agents/{agent_id}:evaluate", json={"days": {"first": 180, "last": 181}},
                          headers=stack.auth(ORG))
    assert evaluated.status_code == 200, evaluated.text
    evaluation = evaluated.json()["evaluation"]
    assert evaluation["days"] == {"first": 180, "last": 181} and evaluated.json()["model_id"] == agent["model_id"]
    assert [p["policy"] for p in evaluation["policies"]] == ["agent", "no_shift", "random", "greedy"]
    r = http.post(f"/v1/agents/{agent_id}:evaluate", json={"days": {"first": 165, "last": 166}},
                  headers=stack.auth(ORG))
    assert r.status_code == 400 and "days" in r.text, r.text
    # :optimize on an inline forecast CSV that is not one day: 400 naming the field.
    r = http.post(f"/v1/agents/{agent_id}:optimize", json={"forecast_csv": "load_p_mw:0\n0.1\n"},
                  headers=stack.auth(ORG))
    assert r.status_code == 400 and "forecast_csv" in r.text, r.text

    # Another organization: the agent and its policy do not exist.
    for method, path in (("GET", f"/v1/agents/{agent_id}"), ("POST", f"/v1/agents/{agent_id}:cancel"),
                         ("POST", f"/v1/agents/{agent_id}:optimize"), ("POST", f"/v1/agents/{agent_id}:evaluate"),
                         ("DELETE", f"/v1/agents/{agent_id}"), ("GET", f"/v1/models/{agent['model_id']}")):
        r = http.request(method, path, headers=stack.auth(STRANGER), **({"json": {}} if method == "POST" else {}))
        assert r.status_code == 404, (method, path, r.text)
    assert http.get("/v1/agents", headers=stack.auth(STRANGER)).json().get("agents", []) == []
    assert http.get(f"/v1/agents/{agent_id}").status_code == 401  # no token

    r = http.delete(f"/v1/agents/{agent_id}", headers=stack.auth(ORG))
    assert r.status_code == 200, r.text


def test_bad_input_is_400_naming_the_field_and_unknown_agents_404(stack, http):
    for change, field in (({"algorithm": "ALGORITHM_UNSPECIFIED"}, "agent.algorithm"),
                          ({"hyperparameters": {"warp": 1}}, "agent.hyperparameters.warp"),
                          ({"eval_days": {"first": 165, "last": 175}}, "agent.eval_days")):
        r = http.post("/v1/agents", json={**TINY, **change}, headers=stack.auth(ORG))
        assert r.status_code == 400 and field in r.text, (field, r.text)
    unknown = str(uuid.uuid4())
    r = http.get(f"/v1/agents/{unknown}", headers=stack.auth(ORG))
    assert r.status_code == 404 and unknown in r.text
    r = http.get("/v1/agents/not-a-uuid", headers=stack.auth(ORG))
    assert r.status_code == 400 and "agent_id" in r.text, r.text
