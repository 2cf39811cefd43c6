"""Runs one FedPATE job on Flower's deployment engine, all on 127.0.0.1 (or, with `mode` "real", a
SuperLink over TLS that remote SuperNodes join), and reports to the Federation server. Runs in
.venv-flower; imports nothing of mlmesh (the stdlib, and in real mode `cryptography`, which Flower
itself depends on).

    .venv-flower/bin/python launch_flower.py <job dir>/job.json

1. copies the app (`fedpate/`) into `<job dir>/app` with the job's values as its
   `[tool.flwr.app.config]` (the values of job.json, written by appconfig.py);
2. starts a SuperLink (`--isolation process`) and the SuperExec that runs its ServerApps, then one
   SuperNode per `teachers-per-node` teachers (default: one per teacher) with
   `partition-id`/`num-partitions` in its node config — every one in
   this process's group, so the server's cancel and its restart recovery kill them all (Flower
   detaches a SuperExec it starts itself; here none is started that way);
3. `flwr run <app> local --stream` against the SuperLink named in `$FLWR_HOME/config.toml`;
4. turns the app's `output/events.jsonl` into `MLMESH_EVENT {json}` lines on stdout, the way the
   server reads a launcher (the framework's version, each teacher's data commitment, each round;
   in real mode first `join`: the SuperLink's address and the job's CA certificate, which the
   server gives the job's owner for the client owners' SuperNodes).

Exit 0 once the app wrote its model; otherwise 1 with the reason on stderr.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from importlib import metadata
from pathlib import Path

APP = Path(__file__).resolve().parent / "fedpate"
BIN = Path(sys.executable).parent
EVENT = "MLMESH_EVENT "
HOST = "127.0.0.1"


def say(text: str) -> None:
    """One line of output in one write. The launchers print from several threads (the event tail,
    the relayed `flwr run` output, the frameworks' own loggers); print() writes the text and its
    newline separately, and a flush from another thread between the two merges two lines, which
    loses an event or a log line."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit(**event) -> None:
    say(EVENT + json.dumps(event))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string: JSON's escapes are TOML's


def write_app(config: dict, app_dir: Path) -> None:
    """The app with `config` as its [tool.flwr.app.config] (the template's defaults replaced)."""
    shutil.copytree(APP, app_dir, ignore=shutil.ignore_patterns("__pycache__", "output", "*.pyc"))
    template = (APP / "pyproject.toml").read_text()
    head = template.split("\n[tool.flwr.app.config]\n")[0]
    lines = [f"{key} = {toml_value(value)}" for key, value in sorted(config.items())]
    (app_dir / "pyproject.toml").write_text(head + "\n[tool.flwr.app.config]\n" + "\n".join(lines) + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60.0, host: str = HOST) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} while starting")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout:.0f} s")


def make_tls(directory: Path, names: list[str]) -> dict[str, Path]:
    """A CA for this job and the SuperLink's certificate signed by it, naming `names` (IP addresses
    or DNS names the SuperNodes dial). Real mode's SuperNodes trust the CA (`--root-certificates`).
    Uses `cryptography`, a dependency of Flower itself."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mlmesh federated job CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    alt: list[x509.GeneralName] = []
    for name in dict.fromkeys(n for n in names if n):
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "flower-superlink")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": directory / "ca.pem", "cert": directory / "server.pem", "key": directory / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    paths["key"].chmod(0o600)
    return paths


# The SuperLink's paths a site may reach: Flower's Fleet API, which SuperNodes speak. Flower 1.42
# serves its Control API (submits runs, unauthenticated in the open-source build) and its Runtime
# API on the same port, so in real mode the SuperLink listens on loopback only and an Envoy (the
# "site gate") faces the sites, forwarding these paths and answering 404 to every other.
SITE_PATHS = "/v1/fleet/"


def site_gate_config(bind: str, port: int, upstream_port: int, tls: dict[str, Path]) -> dict:
    """Envoy's static configuration for the site gate: TLS with the job's certificate on
    `bind`:`port`, paths under SITE_PATHS to the SuperLink on 127.0.0.1:`upstream_port` (TLS, the
    job's CA), everything else 404. Paths are normalised first, so `..` cannot step out."""
    def tls_socket(kind: str, context: dict) -> dict:
        return {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": f"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.{kind}",
            "common_tls_context": context}}

    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "sites", "codec_type": "AUTO", "normalize_path": True, "merge_slashes": True,
        "path_with_escaped_slashes_action": "REJECT_REQUEST",
        "route_config": {"virtual_hosts": [{"name": "superlink", "domains": ["*"], "routes": [
            {"match": {"prefix": SITE_PATHS}, "route": {"cluster": "superlink", "timeout": "0s"}},
            {"match": {"prefix": "/"}, "direct_response": {"status": 404, "body": {
                "inline_string": f"only Flower's Fleet API ({SITE_PATHS}) is served to the sites\n"}}}]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    return {"static_resources": {
        "listeners": [{"name": "sites", "address": {"socket_address": {"address": bind, "port_value": port}},
                       "filter_chains": [{
                           "transport_socket": tls_socket("DownstreamTlsContext", {"tls_certificates": [{
                               "certificate_chain": {"filename": str(tls["cert"])},
                               "private_key": {"filename": str(tls["key"])}}]}),
                           "filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": manager}]}]}],
        "clusters": [{"name": "superlink", "type": "STATIC", "connect_timeout": "5s",
                      "load_assignment": {"cluster_name": "superlink", "endpoints": [{"lb_endpoints": [{"endpoint": {
                          "address": {"socket_address": {"address": HOST, "port_value": upstream_port}}}}]}]},
                      "transport_socket": tls_socket("UpstreamTlsContext", {"validation_context": {
                          "trusted_ca": {"filename": str(tls["ca"])}}})}]}}


def watch(procs: list[subprocess.Popen], run: subprocess.Popen) -> None:
    """Ends `flwr run` when a SuperLink, SuperExec or SuperNode dies under it (the run would wait
    for it forever), printing the end of that process's log."""
    while run.poll() is None:
        for proc in procs:
            if proc.poll() is not None:
                name = Path(proc.args[1]).name if len(proc.args) > 1 else str(proc.args[0])
                print(f"{name} exited with status {proc.returncode} during the run; stopping it", file=sys.stderr,
                      flush=True)
                run.terminate()
                return
        time.sleep(0.5)


class Tail(threading.Thread):
    """Follows the app's events file and reports each event as a MLMESH_EVENT line."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path, self.done, self.seen = path, threading.Event(), 0

    def poll(self) -> None:
        if not self.path.exists():
            return
        lines = self.path.read_text().splitlines()
        for line in lines[self.seen:]:
            if not line.endswith("}"):
                break  # still being written
            self.seen += 1
            self.relay(line)

    def relay(self, line: str) -> None:
        """A `log` event (a component in another process has a line for the job's log) is said as
        a line; every other event goes to the Federation server as it is, which checks it."""
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict) and event.get("type") == "log":
            say(str(event.get("text", "")))
        else:
            say(EVENT + line)

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.poll()
        self.poll()


def register(keys: list[str], directory: Path, env: dict[str, str], cwd: Path) -> None:
    """Flower's SuperNode authentication: each site's public key registered with the SuperLink
    (`flwr supernode register`, over its Control API), so that only SuperNodes signing with one of
    them join."""
    deadline = time.monotonic() + 60
    for i, key in enumerate(keys):
        path = directory / f"supernode-{i}.pub"
        path.write_text(key.strip() + "\n")
        while True:
            out = subprocess.run([str(BIN / "flwr"), "supernode", "register", str(path), "--format", "json"],
                                 env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
            try:
                if json.loads(out.stdout).get("success"):
                    break
            except ValueError:
                pass
            if time.monotonic() > deadline:
                said = (out.stdout + out.stderr).strip().splitlines()
                raise RuntimeError(f"the SuperLink refused SuperNode key {i}: {said[-1] if said else out.returncode}")
            time.sleep(1)
    say(f"registered {len(keys)} SuperNode public key(s): only their SuperNodes may join")


class Joined(threading.Thread):
    """Real mode: how many SuperNodes are online at the SuperLink (`flwr supernode list`, Flower's
    own Control API), reported as `supernodes` events when it changes, until all have joined."""

    def __init__(self, env: dict[str, str], cwd: Path, wanted: int, interval: float = 3.0):
        super().__init__(daemon=True)
        self.env, self.cwd, self.wanted, self.interval = env, cwd, wanted, interval
        self.done, self.seen = threading.Event(), -1

    def count(self) -> int | None:
        try:
            out = subprocess.run([str(BIN / "flwr"), "supernode", "list", "--format", "json"], env=self.env,
                                 cwd=self.cwd, capture_output=True, text=True, timeout=60)
            nodes = json.loads(out.stdout)["nodes"]
        except (subprocess.SubprocessError, OSError, ValueError, KeyError, TypeError):
            return None  # not answering yet: asked again at the next tick
        return sum(1 for node in nodes if node.get("status") == "online")

    def run(self) -> None:
        while not self.done.is_set():
            joined = self.count()
            if joined is not None and joined != self.seen:
                self.seen = joined
                emit(type="supernodes", joined=joined)
            if self.seen >= self.wanted:
                return
            self.done.wait(self.interval)


def main(job_file: str) -> int:
    job_file_path = Path(job_file).resolve()
    job_dir = job_file_path.parent
    config = json.loads(job_file_path.read_text())
    output = Path(config["output-dir"])
    output.mkdir(parents=True, exist_ok=True)
    app_dir = job_dir / "app"
    if app_dir.exists():
        shutil.rmtree(app_dir)
    write_app(config, app_dir)
    home = Path(os.environ.get("HOME", str(job_dir / "home")))
    flwr_home = home / ".flwr"
    flwr_home.mkdir(parents=True, exist_ok=True)
    # Flower's processes start each other by name (flower-superexec, flwr-serverapp, flwr-clientapp).
    path = os.pathsep.join([str(BIN), os.environ.get("PATH", "")])
    env = {**os.environ, "PATH": path, "FLWR_HOME": str(flwr_home), "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
           "FLWR_DISABLE_UPDATE_CHECK": "1", "FLWR_TELEMETRY_ENABLED": "0"}
    emit(type="framework", version=f"flwr {metadata.version('flwr')}")
    teachers = int(config["num-teachers"])
    per_node = int(config.get("teachers-per-node", 1))
    if per_node < 1:
        print(f"teachers-per-node must be >= 1, got {per_node}", file=sys.stderr)
        return 1
    nodes = -(-teachers // per_node)  # the app's task.node_count
    real = config.get("mode") == "real"
    bind = str(config.get("listen-host", HOST)) if real else HOST
    # What this launcher's own SuperExec and `flwr run` dial; a wildcard bind is dialled on loopback.
    host = HOST if bind in ("0.0.0.0", "::") else bind
    public = str(config.get("public-host", "")) or host
    link_port = int(config.get("listen-port", 0)) or free_port()
    address = f"[{public}]:{link_port}" if ":" in public else f"{public}:{link_port}"  # what sites dial
    gate_port = link_port  # real mode: the site gate's port; the SuperLink's own is on loopback
    if real:
        envoy = Path(str(config.get("site-gate-envoy", "")))
        if not envoy.is_file():
            print(f"real mode needs Envoy for the site gate, and {envoy} is not a file "
                  "(MLMESH_FEDERATION_FLOWER_REAL_GATE_ENVOY)", file=sys.stderr)
            return 1
        link_port = free_port()
        tls = make_tls(job_dir / "tls", [HOST, host, public, *str(config.get("tls-names", "")).split()])
        link_security = ["--ssl-ca-certfile", str(tls["ca"]), "--ssl-certfile", str(tls["cert"]), "--ssl-keyfile",
                         str(tls["key"])]
        client_security = ["--root-certificates", str(tls["ca"])]
        (job_dir / "site-gate.json").write_text(json.dumps(site_gate_config(bind, gate_port, link_port, tls)))
        (flwr_home / "config.toml").write_text(
            f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "{HOST}:{link_port}"\n'
            f'root-certificates = "{tls["ca"]}"\n')
    else:
        link_security = client_security = ["--insecure"]
        (flwr_home / "config.toml").write_text(
            f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "{HOST}:{link_port}"\ninsecure = true\n')
    procs: list[subprocess.Popen] = []
    logs = job_dir / "flower-logs"
    logs.mkdir(exist_ok=True)

    def start(name: str, argv: list[str]) -> subprocess.Popen:
        out = (logs / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, env=env, cwd=job_dir, stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        return proc

    tail = Tail(output / "events.jsonl")
    joined = Joined(env, job_dir, nodes) if real else None
    lines: deque[str] = deque(maxlen=200)
    started = time.monotonic()
    try:
        keys = [k for k in str(config.get("supernode-public-keys", "")).splitlines() if k.strip()] if real else []
        auth = ["--enable-supernode-auth"] if keys else []
        link = start("superlink", [str(BIN / "flower-superlink"), *link_security, "--host", HOST, "--port",
                                   str(link_port), "--isolation", "process", *auth,
                                   "--disable-runtime-dependency-installation"])
        wait_port(link_port, link, "flower-superlink")
        if real:
            gate = start("site-gate", [str(envoy), "-c", str(job_dir / "site-gate.json"), "--use-dynamic-base-id",
                                       "--concurrency", "1", "--log-level", "warn"])
            wait_port(gate_port, gate, "the site gate (Envoy)", host=host)
        start("superexec-serverapp", [str(BIN / "flower-superexec"), *client_security, "--runtime-api-address",
                                      f"{HOST}:{link_port}", "--parent-pid", str(os.getpid())])
        if keys:
            register(keys, job_dir / "tls", env, job_dir)
        if real:
            # Clients join from their own machines (docs/federation.md, "Real mode"): nothing to start.
            join = {"superlink": address, "root_certificates": str(tls["ca"]), "nodes": nodes}
            (job_dir / "join.json").write_text(json.dumps(join))
            # The Federation server puts the CA certificate (public; the key stays here) in the job's record.
            emit(type="join", superlink=address, nodes=nodes, root_certificates_pem=tls["ca"].read_text())
            assert joined is not None
            joined.start()
            say(f"SuperLink waiting for {nodes} SuperNode(s) over TLS at {address}: flower-supernode "
                f"--superlink {address} --root-certificates <the job's ca.pem> --node-config "
                f"'data-path=\"<your CSV>\" client-id=\"<name>\" num-teachers={per_node}'")
        for i in range(0 if real else nodes):
            node_config = f"partition-id={i} num-partitions={nodes}"
            start(f"supernode-{i}", [str(BIN / "flower-supernode"), "--insecure", "--superlink",
                                     f"{HOST}:{link_port}", "--host", HOST, "--port", str(free_port()),
                                     "--node-config", node_config])
        gated = f" behind the site gate {bind}:{gate_port} (Fleet API only)" if real else ""
        say(f"Flower deployment engine up in {time.monotonic() - started:.1f} s: SuperLink {HOST}:{link_port}{gated}, "
            f"{nodes} SuperNode(s) hosting {teachers} teacher(s)")
        tail.start()
        run = subprocess.Popen([str(BIN / "flwr"), "run", str(app_dir), "local", "--stream"], env=env, cwd=job_dir,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=watch, args=(procs, run), daemon=True).start()
        assert run.stdout is not None
        for line in run.stdout:
            lines.append(line.rstrip())
            say(line.rstrip())
        run.wait()
    finally:
        tail.done.set()
        if joined is not None:
            joined.done.set()
        if tail.is_alive():
            tail.join(5)
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    say(f"Flower run finished in {time.monotonic() - started:.1f} s")
    if not (output / "model.pt").is_file() or not (output / "result.json").is_file():
        said = [line for line in lines if line.strip()]
        # The app's own error (the last "SomethingError: ..." line of a traceback) says it best.
        errors = [line.strip() for line in said if re.match(r"^\s*\w+(Error|Exception): ", line)]
        reason = errors[-1] if errors else "\n".join(said[-15:]) if said else "flwr run printed nothing"
        waited = re.search(r"only (\d+) of (\d+) teachers connected within (\d+) s", reason)
        if real and waited:
            # The app counts nodes (each hosting teachers-per-node teachers): say it as the client owners see it.
            reason = (f"only {waited[1]} of {waited[2]} SuperNode(s) joined the SuperLink at {address} within "
                      f"{waited[3]} s (each hosting {per_node} teacher(s)); the job's flower_join says how to join")
        print(f"the Flower run ended without a model: {reason}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: launch_flower.py <job dir>/job.json", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
