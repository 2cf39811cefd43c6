"""The servers `make up` starts, in start order, and what each needs from the devstack.

One row per server; its ports come from DevstackSettings (defaults: `servers.common.endpoints`)
and its Envoy routes from `servers.devstack.envoy.routes.MESH_ROUTES`. A new server is a row
here, a row in each of those two tables, and its two port fields in settings.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Server:
    name: str  # servers.<name>.main; env prefix MLMESH_<NAME>_
    title: str  # in the endpoints table `make up` prints
    # Servers it calls: each gets MLMESH_<NAME>_<OTHER>_TARGET=127.0.0.1:<other's port>.
    dials: tuple[str, ...] = ()
    database: bool = True  # gets MLMESH_DATABASE_URL
    chain: bool = False  # gets MLMESH_<NAME>_RPC_URL, the EVM node
    # Runs in the ML environment (.venv-ml) rather than the mesh's.
    ml: bool = False
    # Serves an HTTP front too (servers.common.http) on MLMESH_<NAME>_HTTP_PORT, routed by Envoy's HTTP_ROUTES.
    http: bool = False
    env: tuple[tuple[str, str], ...] = ()
    start_timeout: float = 60.0
    note: str = ""  # after the metrics address in the endpoints table


SERVERS: tuple[Server, ...] = (
    Server("ledger", "Ledger (internal)", database=False, chain=True),
    Server("registry", "Registry", dials=("ledger", "trainer", "translator"), http=True,
           note="HTTP: the seed's multipart forms, /contract/{address}"),
    Server("trainer", "Trainer", dials=("registry",)),
    Server("translator", "Translator", dials=("registry", "ledger")),
    # The Learner keeps its models in its own process: it runs in the ML environment.
    Server("learner", "Learner", dials=("registry",), ml=True, env=(("TF_CPP_MIN_LOG_LEVEL", "3"),),
           start_timeout=180.0, http=True,
           note="also inference.GRPCInferenceService (KServe V2); HTTP: its REST half"),
    # Federated jobs run in the frameworks' own virtualenvs (.venv-flower), as separate processes.
    Server("federation", "Federation", dials=("registry",)),
    # Agents train in the RL environment (.venv-rl), each as a separate worker process.
    Server("optimizer", "Optimizer", dials=("registry",)),
)
