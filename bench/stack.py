"""A throwaway mesh for benchmarks: `servers.devstack` in a temporary data dir on free ports."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from servers.devstack import procs

REPO = Path(__file__).resolve().parents[1]
PORTS = ("ENVOY_PORT", "ENVOY_ADMIN_PORT", "POSTGRES_PORT", "ANVIL_PORT", "REGISTRY_PORT", "REGISTRY_METRICS_PORT",
         "LEDGER_PORT", "LEDGER_METRICS_PORT", "TRAINER_PORT", "TRAINER_METRICS_PORT", "TRANSLATOR_PORT",
         "TRANSLATOR_METRICS_PORT", "LEARNER_PORT", "LEARNER_METRICS_PORT", "REGISTRY_HTTP_PORT", "LEARNER_HTTP_PORT",
         "FEDERATION_PORT", "FEDERATION_METRICS_PORT")


@dataclass
class BenchStack:
    work: Path
    data_dir: Path
    env: dict[str, str]
    token: str

    @property
    def front(self) -> str:
        return f"127.0.0.1:{self.env['MLMESH_ENVOY_PORT']}"

    def pid(self, name: str) -> int:
        return int((self.data_dir / "run" / f"{name}.pid").read_text())

    def client_credentials(self):
        """gRPC credentials with the mesh's "client" certificate, to dial a server's port directly."""
        from servers.common.tls import MeshCerts, TlsFiles, channel_credentials

        certs = MeshCerts(self.data_dir / "identity" / "mtls")
        return channel_credentials(TlsFiles.read(certs.ca_file, certs.cert_file("client"), certs.key_file("client")))


@contextlib.contextmanager
def bench_stack(base_id: int = 77) -> Iterator[BenchStack]:
    work = Path(tempfile.mkdtemp(prefix="mlmesh-bench-"))
    data_dir = work / "mesh"
    env = {"MLMESH_DATA_DIR": str(data_dir), "MLMESH_ENVOY_BASE_ID": str(base_id)}
    env.update({f"MLMESH_{name}": str(procs.free_port()) for name in PORTS})
    full_env = {**os.environ, **env}
    devstack = [sys.executable, "-m", "servers.devstack"]
    try:
        subprocess.run([*devstack, "up"], cwd=REPO, env=full_env, check=True, capture_output=True)
        from servers.common.identity import ensure_keys, mint_token

        token = mint_token(ensure_keys(data_dir / "identity"), organization_id="bench", ttl_seconds=7200)
        yield BenchStack(work, data_dir, env, token)
    finally:
        subprocess.run([*devstack, "down"], cwd=REPO, env=full_env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
