"""Container health check (the images' HEALTHCHECK, Kubernetes exec probes, the podman tests).

    python3 /app/images/healthcheck.py grpc 127.0.0.1:50051    gRPC health (grpc.health.v1) is SERVING
    python3 /app/images/healthcheck.py http http://127.0.0.1:9901/ready   an HTTP 200 (Envoy's admin /ready)
    python3 /app/images/healthcheck.py tcp 127.0.0.1:5432      something accepts connections

gRPC dials with the process's mesh certificate when MLMESH_TLS_CA_FILE/_CERT_FILE/_KEY_FILE are set,
as the server in the same container does (the servers serve only mutual TLS then); a kubelet's
built-in gRPC probe cannot present a client certificate, hence an exec probe. Exit 0 healthy, 1 not,
with one line on stderr saying why. Only the standard library and grpcio (in every mesh image).
Without arguments it reads them from MLMESH_HEALTHCHECK (e.g. "grpc 127.0.0.1:50053"): the images'
HEALTHCHECK takes no per-container arguments, so each container says what to check in its env.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3.0


def check_grpc(target: str) -> str | None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    files = [os.environ.get(f"MLMESH_TLS_{name}_FILE") for name in ("CA", "CERT", "KEY")]
    if all(files):
        ca, cert, key = (open(path, "rb").read() for path in files)  # noqa: SIM115 (tiny files, process exits)
        channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(ca, key, cert))
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            return f"{target}: {exc.code().name} {exc.details()}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return f"{target}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
    return None


def check_http(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as reply:  # noqa: S310 (a fixed local URL)
            return None if reply.status == 200 else f"{url}: HTTP {reply.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"


def check_tcp(target: str) -> str | None:
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=TIMEOUT_SECONDS).close()
    except OSError as exc:
        return f"{target}: {exc}"
    return None


CHECKS = {"grpc": check_grpc, "http": check_http, "tcp": check_tcp}


def main(argv: list[str]) -> int:
    if not argv:
        argv = os.environ.get("MLMESH_HEALTHCHECK", "").split()
    if len(argv) != 2 or argv[0] not in CHECKS:
        print(f"usage: healthcheck.py {{{'|'.join(CHECKS)}}} TARGET", file=sys.stderr)
        return 2
    problem = CHECKS[argv[0]](argv[1])
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
