"""FedPATE on Flower in real mode through the real Federation server (port 0, embedded PostgreSQL,
our Registry on a real Ledger, .venv-flower): a MODE_REAL job starts a SuperLink over TLS (the job's
own CA) on the operator's address (127.0.0.1 here); the owner reads how to join from the job
(`flower_join`) and downloads the CA certificate through the RPC (a stranger cannot); two
`flower-supernode` processes are started here the way two client owners would on their machines,
each with its own CSV that the Federation server never sees. The job succeeds and its student is
registered with both nodes' commitments, recomputed here from their files. A job whose SuperNodes
do not all join fails saying how many did; cancel and a kill -9 of the server leave no SuperLink."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shlex
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import grpc
import httpx
import pytest
from mlmesh.federation.v1 import federation_service_pb2 as pb
from mlmesh.federation.v1 import federation_service_pb2_grpc as fed_grpc

from tests.fixtures.federation import blobs_csv, federation_process
from tests.integration.test_federation import (
    job_after_restart,
    FLOWER_PYTHON,
    OWNER,
    STRANGER,
    J,
    as_org,
    gone,
    job_in,
    processes_in,
    refused,
    upload,
)
from tests.integration.test_federation_flare import registered_global_model

IP = shutil.which("ip") or "/usr/sbin/ip"  # iproute2 (the SuperNodes' environment has no sbin on PATH)
JOIN_TIMEOUT = 90  # seconds the jobs here wait for their SuperNodes (the failing test waits it out)


def settings(dsn: str, data_dir: Path, registry_port: int, **extra):
    from servers.federation.settings import FederationSettings

    return FederationSettings(port=0, metrics_port=-1, database_url=dsn, data_dir=data_dir,
                              registry_target=f"127.0.0.1:{registry_port}", flower_python=FLOWER_PYTHON,
                              max_concurrent_jobs=2, flower_real_join_timeout_seconds=JOIN_TIMEOUT, **extra)


@pytest.fixture
async def real_federation(registry, fresh_db_dsn, tmp_path):
    """(Federation stub, Registry stub) with the real FedPATE launcher; SuperLinks on 127.0.0.1 in
    the default port range."""
    from servers.federation.main import build

    if not FLOWER_PYTHON.exists():
        pytest.fail(f"{FLOWER_PYTHON} is missing: run `make flower-venv` (part of `make test`)", pytrace=False)
    registry_stub, registry_server = registry
    server, _core = await build(settings(fresh_db_dsn, tmp_path / "fed", registry_server.port))
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield fed_grpc.FederationServiceStub(channel), registry_stub
    await server.stop(0, drain=0)


def real_job(dataset: str, **spec) -> pb.CreateFederatedJobRequest:
    values = dict(num_teachers=2, num_rounds=1, teacher_epochs=10, student_epochs=30, batch_size=16,
                  learning_rate=0.01, noise=pb.FedPateSpec.NOISE_GAUSSIAN, sigma=0.5, num_queries=100, noise_data=60)
    values.update(spec)
    return pb.CreateFederatedJobRequest(job=J(display_name="fedpate real", mode=J.MODE_REAL,
                                              data=pb.FederatedData(dataset_id=dataset, seed=2),
                                              fedpate=pb.FedPateSpec(**values)))


def site_files(tmp_path: Path) -> dict[str, Path]:
    """The server's public data and two sites' own CSVs: disjoint rows of one set of blobs."""
    lines = blobs_csv(rows=360).decode().splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    files = {}
    for name, part in (("server", rows[:120]), ("site-a", rows[120:240]), ("site-b", rows[240:])):
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_text(header + "".join(part))
    return files


async def joinable(stub, job_id: str, org: str = OWNER, timeout: float = 180.0) -> pb.FederatedJob:
    """The job once its SuperLink listens (`flower_join` set)."""
    deadline = time.monotonic() + timeout
    while True:
        job = await job_in(stub, job_id, (J.STATE_PREPARING, J.STATE_RUNNING), org, timeout=timeout)
        if job.HasField("flower_join"):
            return job
        assert time.monotonic() < deadline, "the job's SuperLink never listened"
        await asyncio.sleep(0.3)


async def download_ca(stub, job_id: str, into: Path, org: str = OWNER) -> Path:
    chunks = [c async for c in stub.DownloadFlowerRootCertificates(
        pb.DownloadFlowerRootCertificatesRequest(job_id=job_id), metadata=as_org(org))]
    assert chunks and all(c.content_type == "application/x-pem-file" for c in chunks)
    into.write_bytes(b"".join(c.data for c in chunks))
    return into


def ssh_key_pair(into: Path) -> tuple[str, Path]:
    """A site's SuperNode key pair (NIST P-384, OpenSSH forms, as ssh-keygen -t ecdsa -b 384 makes):
    (the public key's line, the private key's file)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    into.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    into.chmod(0o600)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode(), into


def start_supernode(join: pb.FlowerJoin, ca: Path, csv: Path, name: str, home: Path,
                    private_key: Path | None = None, wrapper: list[str] | None = None) -> subprocess.Popen:
    """What a client owner runs on its machine: the job's `supernode_command` with its CSV, its name,
    its private key (with SuperNode authentication) and the downloaded CA certificate (plus a local
    port for the SuperNode's ClientAppIo API, which only matters here because the "sites" share this
    machine)."""
    command = join.supernode_command.replace("<your CSV>", str(csv)).replace("<your name>", name)
    if private_key is not None:
        command = command.replace("<your-private-key-file>", str(private_key))
    argv = shlex.split(command)
    assert argv[0] == "flower-supernode" and "ca.pem" in argv
    argv = [str(FLOWER_PYTHON.parent / "flower-supernode"), *(str(ca) if a == "ca.pem" else a for a in argv[1:]),
            "--host", "127.0.0.1", "--port", str(_free_port())]
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": f"{FLOWER_PYTHON.parent}:/usr/bin:/bin", "HOME": str(home), "FLWR_TELEMETRY_ENABLED": "0",
           "FLWR_DISABLE_UPDATE_CHECK": "1", "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1"}
    return subprocess.Popen([*(wrapper or []), *argv], cwd=home, env=env, stdout=(home / "supernode.log").open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def serving(job_dir: Path) -> list:
    """The job's long-lived processes (launcher, SuperLink, SuperExec): not the `flwr supernode list`
    the launcher runs every few seconds to count the joined SuperNodes, which ends on its own."""
    found = []
    for proc in processes_in(job_dir):
        try:
            if not any(Path(arg).name == "flwr" for arg in proc.cmdline()[:2]):
                found.append(proc)
        except Exception:  # ended meanwhile
            continue
    return found


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_real_fedpate_job_trains_on_two_joined_supernodes_and_registers_the_student(
        real_federation, tmp_path) -> None:
    stub, registry = real_federation
    files = site_files(tmp_path)
    dataset = await upload(registry, OWNER, files["server"].read_bytes())
    created = await stub.CreateFederatedJob(real_job(dataset), metadata=as_org(OWNER))
    nodes: list[subprocess.Popen] = []
    try:
        job = await joinable(stub, created.job_id)
        join = job.flower_join
        # The record says how to join: the operator's address, the counts, the CA's fingerprint
        host, port = join.superlink_address.rsplit(":", 1)
        assert host == "127.0.0.1" and 9200 <= int(port) <= 9263
        assert join.supernodes_expected == 2 and join.teachers_per_node == 1 and join.supernodes_joined == 0
        assert "num-teachers=1" in join.supernode_command and join.join_deadline.seconds > job.create_time.seconds
        # Only the owner reads the job and its CA certificate
        for call, request in ((stub.GetFederatedJob, pb.GetFederatedJobRequest(job_id=job.job_id)),):
            err = await refused(call, request, STRANGER)
            assert err.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await download_ca(stub, job.job_id, tmp_path / "stolen.pem", STRANGER)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        ca = await download_ca(stub, job.job_id, tmp_path / "ca.pem")
        assert hashlib.sha256(ca.read_bytes()).hexdigest() == join.root_certificates_sha256
        assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----") and "PRIVATE KEY" not in ca.read_text()
        # The sites' port is the site gate: Flower's Fleet API only. The Control API (which submits
        # runs, unauthenticated in Flower's open-source build) and the Runtime API are not reachable
        # from there, however the path is spelled; the Fleet API is (Flower answers its bad request).
        async with httpx.AsyncClient(base_url=f"https://{join.superlink_address}",
                                     verify=ssl.create_default_context(cafile=str(ca))) as site:
            for path in ("/v1/control/list-runs", "/v1/control/start-run", "/v1/runtime/get-nodes", "/health",
                         "/v1/fleet/../control/start-run", "/v1/fleet/%2e%2e/control/start-run",
                         "/v1/fleet%2F..%2Fcontrol/start-run", "//v1/control/start-run"):
                answer = await site.post(path, content=b"")
                assert answer.status_code in (400, 404), (path, answer.status_code, answer.text)
                assert "Fleet API" in answer.text or answer.status_code == 400, (path, answer.text)
            fleet = await site.post("/v1/fleet/get-run", content=b"not a protobuf")
            assert "Fleet API" not in fleet.text and fleet.status_code not in (404, 503), (fleet.status_code, fleet.text)
        # Execute: two client owners start their SuperNodes, each on its own file
        for site in ("site-a", "site-b"):
            nodes.append(start_supernode(join, ca, files[site], site, tmp_path / site))
        events = [e async for e in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=job.job_id),
                                                          metadata=as_org(OWNER))]
    finally:
        stop(nodes)
    # Assert: SUCCEEDED on the sites' data; the student useful, registered and anchored
    job = events[-1].job
    assert job.state == J.STATE_SUCCEEDED, job.failure_reason
    assert job.mode == J.MODE_REAL and job.framework_version.startswith("flwr 1.42")
    rounds = [e.round for e in events if e.HasField("round")]
    assert [r.round for r in rounds] == [1]
    assert sorted((c.client_id, c.num_examples) for c in rounds[0].clients) == [("site-a", 120), ("site-b", 120)]
    assert rounds[0].accuracy >= 0.8, rounds[0]
    assert job.privacy.formal_guarantee and job.privacy.compositions == 60
    # Each node's commitment, recomputed from its file (the CSV as the app rewrites it: this file)
    expected = sorted((hashlib.sha256(files[s].read_bytes()).hexdigest(), 120) for s in ("site-a", "site-b"))
    assert sorted((c.sha256, c.sample_count) for c in job.client_commitments) == expected
    assert sorted(c.client_id for c in job.client_commitments) == ["site-a", "site-b"]
    assert job.flower_join.supernodes_joined == 2
    _model, record = await registered_global_model(registry, job, dataset, framework="fedpate", version="flwr 1.42")
    request = json.loads(record["request"])
    assert request["mode"] == "real" and request["spec"]["teachers_per_node"] == 1
    assert sorted((c["sha256"], c["sample_count"]) for c in json.loads(record["client_commitments"])) == expected
    # The SuperLink ended with the job
    assert processes_in(tmp_path / "fed" / "federation" / "jobs" / job.job_id) == []


@pytest.fixture
def site_network():
    """A network the sites live on that is not the Federation server's: a network namespace of its
    own (its own interfaces, routes and loopback) joined to this one by a veth pair, as a site's
    machine is joined to the operator's by a network. (host address, namespace name). Needs root
    (CAP_NET_ADMIN), which `make test` has here."""
    tag = f"{os.getpid() % 10000}{int(time.monotonic() * 1000) % 1000}"
    name, host_end, site_end = f"mlmesh-site-{tag}", f"mlh{tag}", f"mls{tag}"
    octet = os.getpid() % 250 + 1
    host_ip, site_ip = f"10.254.{octet}.1", f"10.254.{octet}.2"
    steps = [["ip", "netns", "add", name],
             ["ip", "link", "add", host_end, "type", "veth", "peer", "name", site_end],
             ["ip", "link", "set", site_end, "netns", name],
             ["ip", "addr", "add", f"{host_ip}/30", "dev", host_end], ["ip", "link", "set", host_end, "up"],
             ["ip", "-n", name, "addr", "add", f"{site_ip}/30", "dev", site_end],
             ["ip", "-n", name, "link", "set", site_end, "up"], ["ip", "-n", name, "link", "set", "lo", "up"]]
    try:
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode != 0:
                pytest.fail(f"cannot make the sites' network ({' '.join(step)}: {done.stderr.strip()}); this test "
                            "needs root (CAP_NET_ADMIN)", pytrace=False)
        yield host_ip, name
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


async def test_sites_on_another_network_join_through_the_site_gate(
        registry, fresh_db_dsn, tmp_path, site_network) -> None:
    """The operator's SuperLink on a routed address, the sites in a network namespace of their own
    (two network stacks, as two machines have; one kernel): the sites reach the job only through its
    site gate on that address -- the operator's loopback, where the SuperLink itself listens, is not
    theirs -- and the job succeeds on their data with the TLS certificate naming that address."""
    from servers.federation.main import build

    host_ip, namespace = site_network
    registry_stub, registry_server = registry
    server, _core = await build(settings(fresh_db_dsn, tmp_path / "fed", registry_server.port,
                                         flower_real_host=host_ip, flower_real_port_min=0, flower_real_port_max=0))
    await server.start()
    nodes: list[subprocess.Popen] = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = fed_grpc.FederationServiceStub(channel)
            files = site_files(tmp_path)
            dataset = await upload(registry_stub, OWNER, files["server"].read_bytes())
            created = await stub.CreateFederatedJob(real_job(dataset), metadata=as_org(OWNER))
            job = await joinable(stub, created.job_id)
            host, port = job.flower_join.superlink_address.rsplit(":", 1)
            assert host == host_ip
            ca = await download_ca(stub, job.job_id, tmp_path / "ca.pem")
            for site in ("site-a", "site-b"):
                node = start_supernode(job.flower_join, ca, files[site], site, tmp_path / site,
                                       wrapper=[IP, "netns", "exec", namespace])
                nodes.append(node)
            # The SuperNodes run on the sites' network stack, not on this one
            for node in nodes:
                deadline = time.monotonic() + 10
                while os.readlink(f"/proc/{node.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
                    assert time.monotonic() < deadline and node.poll() is None, "the SuperNode never entered its netns"
                    await asyncio.sleep(0.05)
            # From the sites' network the gate answers on the operator's address; the SuperLink's own
            # ports are on the operator's loopback, which the sites do not have
            probe = ("import socket, sys\n"
                     "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5); s.close(); print('open')")
            reached = subprocess.run([IP, "netns", "exec", namespace, str(FLOWER_PYTHON), "-c", probe, host_ip, port],
                                     capture_output=True, text=True, timeout=30)
            assert reached.stdout.strip() == "open", reached.stderr
            events = [e async for e in stub.WatchFederatedJob(pb.WatchFederatedJobRequest(job_id=job.job_id),
                                                              metadata=as_org(OWNER))]
    finally:
        stop(nodes)
        await server.stop(0, drain=0)
    job = events[-1].job
    assert job.state == J.STATE_SUCCEEDED, job.failure_reason
    assert sorted(c.client_id for c in job.client_commitments) == ["site-a", "site-b"]
    expected = sorted((hashlib.sha256(files[s].read_bytes()).hexdigest(), 120) for s in ("site-a", "site-b"))
    assert sorted((c.sha256, c.sample_count) for c in job.client_commitments) == expected
    assert job.result_model_id


async def test_a_real_job_fails_saying_how_many_supernodes_joined_and_cancel_stops_its_superlink(
        real_federation, tmp_path) -> None:
    """4 teachers, 2 per node, SuperNode authentication with both sites' public keys: 2 SuperNodes
    awaited; site-a joins with its key, an intruder with the CA certificate but an unregistered key
    does not; the job counts 1 and fails after the join timeout naming the count. Meanwhile a second
    real job is cancelled: its SuperLink and SuperExec are gone; a simulated job has no CA
    certificate to download."""
    stub, registry = real_federation
    files = site_files(tmp_path)
    dataset = await upload(registry, OWNER, files["server"].read_bytes())
    keys = {name: ssh_key_pair(tmp_path / f"{name}.key") for name in ("site-a", "site-b", "intruder")}
    waiting = await stub.CreateFederatedJob(real_job(dataset, num_teachers=4, teachers_per_node=2,
                                                     supernode_public_keys=[keys["site-a"][0], keys["site-b"][0]]),
                                            metadata=as_org(OWNER))
    nodes: list[subprocess.Popen] = []
    try:
        job = await joinable(stub, waiting.job_id)
        assert job.flower_join.supernodes_expected == 2 and job.flower_join.teachers_per_node == 2
        assert job.flower_join.supernode_auth and "--auth-supernode-private-key" in job.flower_join.supernode_command
        assert "num-teachers=2" in job.flower_join.supernode_command
        ca = await download_ca(stub, job.job_id, tmp_path / "ca.pem")
        nodes.append(start_supernode(job.flower_join, ca, files["site-a"], "site-a", tmp_path / "site-a",
                                     keys["site-a"][1]))
        nodes.append(start_supernode(job.flower_join, ca, files["site-b"], "intruder", tmp_path / "intruder",
                                     keys["intruder"][1]))
        # The job counts the SuperNodes online at its SuperLink
        deadline = time.monotonic() + 90
        while (await stub.GetFederatedJob(pb.GetFederatedJobRequest(job_id=job.job_id), metadata=as_org(OWNER))
               ).flower_join.supernodes_joined != 1:
            assert time.monotonic() < deadline, "the job never counted the joined SuperNode"
            await asyncio.sleep(1)
        # Cancel: a second real job, once its SuperLink listens
        other = await stub.CreateFederatedJob(real_job(dataset), metadata=as_org(OWNER))
        other = await joinable(stub, other.job_id)
        assert other.flower_join.superlink_address != job.flower_join.superlink_address
        other_dir = tmp_path / "fed" / "federation" / "jobs" / other.job_id
        procs = serving(other_dir)
        assert len(procs) >= 3, procs  # the launcher, its SuperLink and SuperExec
        cancelled = await stub.CancelFederatedJob(pb.CancelFederatedJobRequest(job_id=other.job_id),
                                                  metadata=as_org(OWNER))
        assert cancelled.state == J.STATE_CANCELLED and cancelled.result_model_id == ""
        assert all(gone(p.pid) for p in procs) and processes_in(other_dir) == []
        # Execute: wait out the join timeout of the first
        failed = await job_in(stub, job.job_id, (J.STATE_FAILED,), timeout=JOIN_TIMEOUT + 180)
    finally:
        stop(nodes)
    # Assert
    assert "only 1 of 2 SuperNode(s) joined the SuperLink" in failed.failure_reason, failed.failure_reason
    assert "each hosting 2 teacher(s)" in failed.failure_reason and failed.result_model_id == ""
    # The intruder reached the SuperLink over TLS and was refused activation (its key is not registered)
    assert "Failed to activate SuperNode" in (tmp_path / "intruder" / "supernode.log").read_text()
    assert "SuperNode ID" in (tmp_path / "site-a" / "supernode.log").read_text()
    assert processes_in(tmp_path / "fed" / "federation" / "jobs" / job.job_id) == []
    simulated = real_job(dataset)
    simulated.job.mode = J.MODE_SIMULATION
    sim = await stub.CreateFederatedJob(simulated, metadata=as_org(OWNER))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await download_ca(stub, sim.job_id, tmp_path / "none.pem")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "not a MODE_REAL" in info.value.details()
    await stub.CancelFederatedJob(pb.CancelFederatedJobRequest(job_id=sim.job_id), metadata=as_org(OWNER))


async def test_bad_real_mode_fedpate_input_is_refused_naming_the_field(real_federation) -> None:
    stub, registry = real_federation
    dataset = await upload(registry, OWNER, blobs_csv())
    cases = [
        (real_job(dataset, teachers_per_node=0), grpc.StatusCode.INVALID_ARGUMENT, "fedpate.teachers_per_node"),
        (real_job(dataset, teachers_per_node=3), grpc.StatusCode.INVALID_ARGUMENT, "fedpate.teachers_per_node"),
        (real_job(dataset, num_teachers=5, teachers_per_node=2), grpc.StatusCode.INVALID_ARGUMENT,
         "must divide num_teachers"),
        (real_job(dataset, num_teachers=200), grpc.StatusCode.INVALID_ARGUMENT, "fedpate.num_teachers"),
    ]
    dirichlet = real_job(dataset)
    dirichlet.job.data.partition = pb.FederatedData.PARTITION_DIRICHLET
    dirichlet.job.data.dirichlet_alpha = 0.5
    cases.append((dirichlet, grpc.StatusCode.INVALID_ARGUMENT, "data.partition"))
    negative = real_job(dataset)
    negative.job.fedpate.teachers_per_node = -1
    cases.append((negative, grpc.StatusCode.INVALID_ARGUMENT, "teachers_per_node"))
    key = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQ= site-a"
    other = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAA= site-b"
    for keys, text in (([key], "2 wanted"), ([key, "ssh-rsa AAAAB3Nza"], "[1] is not an OpenSSH NIST EC"),
                       ([key, key], "its own key")):
        cases.append((real_job(dataset, supernode_public_keys=keys), grpc.StatusCode.INVALID_ARGUMENT, text))
    keyed_simulation = real_job(dataset, supernode_public_keys=[key, other])
    keyed_simulation.job.mode = J.MODE_SIMULATION
    cases.append((keyed_simulation, grpc.StatusCode.INVALID_ARGUMENT, "fedpate.supernode_public_keys: only for "
                  "MODE_REAL"))
    for request, code, text in cases:
        err = await refused(stub.CreateFederatedJob, request)
        assert err.code() == code and text in err.details(), (request.job.fedpate, err.details())
    # The seed's body without the field still works, and takes it when given
    seed = pb.CreateFederatedJobRequest(fp=pb.FedPateSeedBody(num_teachers=4, teacher_epochs=1, student_epochs=1,
                                                              batch_size=16, epsilon=1.0, num_queries=40,
                                                              noise_data=20), dataset_id=dataset)
    plain = await stub.CreateFederatedJob(seed, metadata=as_org(OWNER))
    assert plain.fedpate.teachers_per_node == 1 and plain.mode == J.MODE_SIMULATION
    seed.fp.teachers_per_node = 3  # simulation: 4 teachers on 2 SuperNodes (3 + 1)
    three = await stub.CreateFederatedJob(seed, metadata=as_org(OWNER))
    assert three.fedpate.teachers_per_node == 3
    assert three.privacy.parameters["teachers_per_node"] == "3" and "teacher-level" in three.privacy.explanation
    for job in (plain, three):
        await stub.CancelFederatedJob(pb.CancelFederatedJobRequest(job_id=job.job_id), metadata=as_org(OWNER))
    # A stranger's dataset is not found for a real job either
    theirs = await upload(registry, STRANGER, blobs_csv())
    err = await refused(stub.CreateFederatedJob, real_job(theirs))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "data.dataset_id" in err.details()


async def test_a_server_killed_mid_real_job_restarts_with_it_failed_and_no_superlink_left(
        registry, fresh_db_dsn, tmp_path) -> None:
    """kill -9 of the Federation server (its own process) while a real job's SuperLink waits for
    SuperNodes: the launcher and its SuperLink survive the kill; the restarted server kills their
    process group and fails the job with the reason."""
    from servers.federation.main import build

    registry_stub, registry_server = registry
    dataset = await upload(registry_stub, OWNER, site_files(tmp_path)["server"].read_bytes())
    async with federation_process(fresh_db_dsn, tmp_path / "fed", registry_server.port,
                                  flower_python=str(FLOWER_PYTHON)) as (server, port):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = fed_grpc.FederationServiceStub(channel)
            job = await stub.CreateFederatedJob(real_job(dataset), metadata=as_org(OWNER))
            job = await joinable(stub, job.job_id)
        job_dir = tmp_path / "fed" / "federation" / "jobs" / job.job_id
        procs = serving(job_dir)
        assert len(procs) >= 3, procs
        # Execute: kill -9 the Federation server; the launcher and its SuperLink survive it
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        assert all(p.is_running() for p in procs)
    restarted, _core = await build(settings(fresh_db_dsn, tmp_path / "fed", registry_server.port))
    await restarted.start()
    got = await job_after_restart(restarted, job.job_id)
    # Assert: FAILED with the reason; no process of the job left, the SuperLink's port closed
    assert got.state == J.STATE_FAILED and "restarted while the job was running" in got.failure_reason
    assert all(gone(p.pid) for p in procs)
    host, link_port = job.flower_join.superlink_address.rsplit(":", 1)
    from servers.devstack.procs import port_open

    assert not port_open(host, int(link_port))
