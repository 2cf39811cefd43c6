"""`client.optimizer`: reinforcement-learning agents that shift demand on a simulated grid (the
Optimizer server). The trained policy is a Registry model: download it with
`client.models.download(agent.model_id, path)`, checked against the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from mlmesh.client._base import _Service, rpc
from mlmesh.optimizer.v1 import optimizer_service_pb2 as opb
from mlmesh.optimizer.v1 import optimizer_service_pb2_grpc as ogrpc

OPTIMIZER = "mlmesh.optimizer.v1.OptimizerService"


class Optimizer(_Service):
    """Agents (the Optimizer): train (DQN, PPO, A2C; Double DQN, Dueling DQN, REINFORCE) on `mlmesh/GridShift-v0`, evaluated on held-out
    days beside the no-shift, random and greedy baselines; the policy lands in the Registry."""

    _stub_class = ogrpc.OptimizerServiceStub

    @rpc(f"{OPTIMIZER}/CreateAgent")
    def create(self, agent: Mapping[str, Any] | opb.Agent, *, organization_id: str | None = None,
               timeout: float | None = None):
        """Starts training an agent: an Agent message or its JSON form as a dict, e.g.
        `{"display_name": "ppo", "algorithm": "ALGORITHM_PPO", "total_timesteps": 2000,
        "train_days": {"first": 150, "last": 200}, "eval_days": {"first": 200, "last": 210}}`."""
        if not isinstance(agent, opb.Agent):
            agent = json_format.ParseDict(dict(agent), opb.Agent())
        agent.organization_id = agent.organization_id or self._id.organization(organization_id)
        return self._t.unary(self._stub.CreateAgent, opb.CreateAgentRequest(agent=agent),
                             timeout=self._deadline(timeout, "slow"))

    @rpc(f"{OPTIMIZER}/GetAgent")
    def get(self, agent_id: str, *, timeout: float | None = None):
        """The Agent: state, progress, evaluation, `model_id` of the stored policy."""
        return self._t.unary(self._stub.GetAgent, opb.GetAgentRequest(agent_id=agent_id),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{OPTIMIZER}/ListAgents")
    def list(self, *, page_size: int = 100, timeout: float | None = None):
        """The caller's organization's agents, newest first."""
        return self._t.pages(self._stub.ListAgents,
                             lambda token: opb.ListAgentsRequest(page_size=page_size, page_token=token),
                             "agents", timeout=self._deadline(timeout))

    @rpc(f"{OPTIMIZER}/CancelAgent")
    def cancel(self, agent_id: str, *, timeout: float | None = None):
        return self._t.unary(self._stub.CancelAgent, opb.CancelAgentRequest(agent_id=agent_id),
                             timeout=self._deadline(timeout))

    @rpc(f"{OPTIMIZER}/DeleteAgent")
    def delete(self, agent_id: str, *, timeout: float | None = None):
        """Deletes an agent that has ended (its policy stays in the Registry)."""
        return self._t.unary(self._stub.DeleteAgent, opb.DeleteAgentRequest(agent_id=agent_id),
                             timeout=self._deadline(timeout))

    @rpc(f"{OPTIMIZER}/WatchAgent")
    def watch(self, agent_id: str, *, timeout: float | None = None):
        """AgentEvents until the agent ends: `event.agent` (the agent now, then each state change) and
        `event.episode` (each finished training day: return, SCR, SSR, violations)."""
        return self._t.server_stream(self._stub.WatchAgent, opb.WatchAgentRequest(agent_id=agent_id),
                                     timeout=self._deadline(timeout, "watch"))

    @rpc(f"{OPTIMIZER}/OptimizeDay")
    def optimize(self, agent_id: str, day: int = 0, *, forecast_csv: str | bytes | None = None,
                 forecast_dataset_id: str | None = None, timeout: float | None = None):
        """Plans `day` of the agent's profiles with its trained policy, or a one-day forecast (96 rows in
        the profiles' CSV format, inline or a Registry dataset id): the shifts, SCR/SSR/reward before and
        after beside greedy, the loads' hourly energy and the power flow before and after."""
        request = opb.OptimizeDayRequest(agent_id=agent_id, day=day)
        if forecast_csv is not None:
            request.forecast_csv = forecast_csv.decode() if isinstance(forecast_csv, bytes) else forecast_csv
        elif forecast_dataset_id is not None:
            request.forecast_dataset_id = forecast_dataset_id
        return self._t.unary(self._stub.OptimizeDay, request, timeout=self._deadline(timeout, "slow"))

    @rpc(f"{OPTIMIZER}/EvaluateAgent")
    def evaluate(self, agent_id: str, days: tuple[int, int] | None = None, *, timeout: float | None = None):
        """The trained policy beside the no-shift, random and greedy baselines on held-out days [first, last)
        (default: the agent's evaluation days): mean and spread of return, reward, SCR, SSR, violations."""
        request = opb.EvaluateAgentRequest(agent_id=agent_id)
        if days is not None:
            request.days.first, request.days.last = days
        return self._t.unary(self._stub.EvaluateAgent, request, timeout=self._deadline(timeout, "slow"))
