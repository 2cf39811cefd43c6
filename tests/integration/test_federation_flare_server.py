"""NVIDIA FLARE servers for real clients through the real Federation server (port 0, embedded
PostgreSQL, .venv-flare): a project provisioned by FLARE's provisioner (server `localhost`, two
named clients, certificates), its server started on 127.0.0.1, each client's startup kit streamed
to its owner and started as a separate process from the downloaded kit; FLARE's admin API (the
project admin's kit, which stays on the server) sees both clients join over mutual TLS. The seed's
`{"shutdown": true}` stops it; strangers see nothing. Job submission to it is not built yet."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import grpc
import psutil
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as pb_grpc

from tests.integration.test_federation import OWNER, STRANGER, as_org, gone, refused
from tests.integration.test_federation_flare import FLARE_PYTHON, flare_federation  # noqa: F401 (fixture)

S = pb.FlareServer
SYSTEM_INFO = """
import sys
from nvflare.fuel.flare_api.flare_api import new_secure_session
session = new_secure_session("admin@mlmesh.local", sys.argv[1], timeout=60)
print(sorted(c.name for c in session.get_system_info().client_info))
session.close()
"""


def start_client(kit: Path, name: str, home: Path, data: Path | None = None) -> subprocess.Popen:
    """A FLARE client from its downloaded kit, as the kit's sub_start.sh starts it; `data`: its
    local CSV for real-mode jobs (MLMESH_FLARE_DATA)."""
    env = {"PATH": f"{FLARE_PYTHON.parent}:/usr/bin:/bin", "HOME": str(home), "PYTHONUNBUFFERED": "1"}
    if data is not None:
        env["MLMESH_FLARE_DATA"] = str(data)
    return subprocess.Popen(
        [str(FLARE_PYTHON), "-u", "-m", "nvflare.private.fed.app.client.client_train", "-m", str(kit), "-s",
         "fed_client.json", "--set", "secure_train=true", f"uid={name}", "org=mlmesh", "config_folder=config"],
        cwd=kit, env=env, stdout=(home / f"{name}.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True)


def clients_seen(admin_kit: Path, home: Path) -> list[str]:
    out = subprocess.run([str(FLARE_PYTHON), "-c", SYSTEM_INFO, str(admin_kit)], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))


async def test_a_flare_server_is_provisioned_started_joined_from_downloaded_kits_and_shut_down(
        flare_federation, tmp_path) -> None:  # noqa: F811
    stub, _registry = flare_federation
    # Execute: provision and start
    server = await stub.CreateFlareServer(pb.CreateFlareServerRequest(
        flare_server=S(project_name="grid", client_names=["site-1", "site-2"])), metadata=as_org(OWNER))
    # Assert: running on 127.0.0.1, the organization's, its clients named
    assert server.state == S.STATE_RUNNING, server.failure_reason
    assert server.address.startswith("127.0.0.1:") and list(server.client_names) == ["site-1", "site-2"]
    host_pid = int((tmp_path / "fed" / "federation" / "flare-servers" / server.flare_server_id / "server.pid")
                   .read_text().split()[0])
    assert all(c.laddr.ip == "127.0.0.1" for c in psutil.Process(host_pid).net_connections("tcp")
               if c.status == psutil.CONN_LISTEN)
    listed = await stub.ListFlareServers(pb.ListFlareServersRequest(), metadata=as_org(OWNER))
    assert [s.flare_server_id for s in listed.flare_servers] == [server.flare_server_id]
    again = await refused(stub.CreateFlareServer, pb.CreateFlareServerRequest(nvoverser=pb.FlareServerSeedBody(
        start=True)))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION and server.flare_server_id in again.details()
    # Each kit streamed to its owner, unpacked, and its client started from it
    clients = []
    try:
        for name in server.client_names:
            chunks = [c async for c in stub.DownloadFlareStartupKit(pb.DownloadFlareStartupKitRequest(
                flare_server_id=server.flare_server_id, client_name=name), metadata=as_org(OWNER))]
            assert chunks and all(c.content_type == "application/zip" for c in chunks)
            # The archive holds the kit's folder, named after the client
            zipfile.ZipFile(io.BytesIO(b"".join(c.data for c in chunks))).extractall(tmp_path / "kits")
            kit = tmp_path / "kits" / name
            assert {"client.crt", "client.key", "rootCA.pem", "fed_client.json"} <= set(os.listdir(kit / "startup"))
            clients.append(start_client(kit, name, tmp_path))
        admin_kit = next((tmp_path / "fed" / "federation" / "flare-servers" / server.flare_server_id).rglob(
            "admin@mlmesh.local"))
        deadline = time.monotonic() + 120
        while (seen := clients_seen(admin_kit, tmp_path)) != ["site-1", "site-2"]:
            assert time.monotonic() < deadline, f"the clients did not join: {seen}"
            time.sleep(2)
        # Strangers see nothing; unknown clients are named
        for call, request in ((stub.GetFlareServer, pb.GetFlareServerRequest(flare_server_id=server.flare_server_id)),
                              (stub.DeleteFlareServer,
                               pb.DeleteFlareServerRequest(flare_server_id=server.flare_server_id))):
            assert (await refused(call, request, STRANGER)).code() == grpc.StatusCode.NOT_FOUND
        with_kit = pb.DownloadFlareStartupKitRequest(flare_server_id=server.flare_server_id, client_name="site-1")
        err = await refused(lambda r, metadata: _drain(stub.DownloadFlareStartupKit(r, metadata=metadata)), with_kit,
                            STRANGER)
        assert err.code() == grpc.StatusCode.NOT_FOUND
        err = await refused(lambda r, metadata: _drain(stub.DownloadFlareStartupKit(r, metadata=metadata)),
                            pb.DownloadFlareStartupKitRequest(flare_server_id=server.flare_server_id,
                                                              client_name="site-9"))
        assert err.code() == grpc.StatusCode.NOT_FOUND and "client_name" in err.details()
        # The seed's {"shutdown": true}: the server stops, its process group is gone
        stopped = await stub.CreateFlareServer(pb.CreateFlareServerRequest(nvoverser=pb.FlareServerSeedBody(
            shutdown=True)), metadata=as_org(OWNER))
        assert stopped.flare_server_id == server.flare_server_id and stopped.state == S.STATE_STOPPED
        assert gone(host_pid)  # SIGKILL to its group; under load the process may take a moment to die
    finally:
        for proc in clients:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    await stub.DeleteFlareServer(pb.DeleteFlareServerRequest(flare_server_id=server.flare_server_id),
                                 metadata=as_org(OWNER))
    err = await refused(stub.GetFlareServer, pb.GetFlareServerRequest(flare_server_id=server.flare_server_id))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def _drain(stream) -> None:
    async for _chunk in stream:
        pass


async def test_bad_client_names_are_invalid_argument(flare_federation) -> None:  # noqa: F811
    stub, _registry = flare_federation
    for names in (["localhost"], ["Site 1"], ["a", "a"]):
        err = await refused(stub.CreateFlareServer,
                            pb.CreateFlareServerRequest(flare_server=S(client_names=names)))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "flare_server.client_names" in err.details()
    err = await refused(stub.CreateFlareServer, pb.CreateFlareServerRequest(nvoverser=pb.FlareServerSeedBody(
        shutdown=True)))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION  # nothing running to shut down
    err = await refused(stub.CreateFlareServer, pb.CreateFlareServerRequest(nvoverser=pb.FlareServerSeedBody()))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "nvoverser" in err.details()


async def test_a_restart_stops_a_running_flare_server_and_fails_it_with_the_reason(
        registry, fresh_db_dsn, tmp_path) -> None:
    """What a Federation server restarted after a kill -9 finds: a FLARE server recorded RUNNING
    whose process (its own process group, outliving the old server) still runs. Here the old
    server is abandoned without its shutdown, and a new one starts on the same database and work
    dir."""
    from servers.federation.main import build
    from servers.federation.settings import FederationSettings

    _registry_stub, registry_server = registry

    def settings() -> FederationSettings:
        return FederationSettings(port=0, metrics_port=-1, database_url=fresh_db_dsn, data_dir=tmp_path / "fed",
                                  registry_target=f"127.0.0.1:{registry_server.port}", flare_python=FLARE_PYTHON)

    old, _core = await build(settings())
    await old.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{old.port}") as channel:
        server = await pb_grpc.FederationServiceStub(channel).CreateFlareServer(
            pb.CreateFlareServerRequest(nvoverser=pb.FlareServerSeedBody(start=True)), metadata=as_org(OWNER))
    assert server.state == S.STATE_RUNNING, server.failure_reason
    host_pid = int((tmp_path / "fed" / "federation" / "flare-servers" / server.flare_server_id / "server.pid")
                   .read_text().split()[0])
    # Execute: a new Federation server starts beside the abandoned one
    new, _core = await build(settings())
    await new.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{new.port}") as channel:
            got = await pb_grpc.FederationServiceStub(channel).GetFlareServer(
                pb.GetFlareServerRequest(flare_server_id=server.flare_server_id), metadata=as_org(OWNER))
    finally:
        await new.stop(0, drain=0)
        await old.stop(0, drain=0)
    # Assert: FAILED with the reason, and the FLARE server's process is gone
    assert got.state == S.STATE_FAILED and "restarted while this FLARE server was running" in got.failure_reason
    assert gone(host_pid)  # SIGKILL to its group; under load the process may take a moment to die
