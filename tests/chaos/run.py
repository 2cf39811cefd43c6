"""The chaos run (see the package docstring): `run(seed, kills)` returns a `Result`."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from google.api import httpbody_pb2
from google.protobuf import struct_pb2
from mlmesh.learner.v1 import learner_service_pb2 as lpb
from mlmesh.learner.v1 import learner_service_pb2_grpc as lgrpc
from mlmesh.registry.v1 import registry_service_pb2 as svc
from mlmesh.registry.v1 import registry_service_pb2_grpc as svc_grpc

from clients.recipes import pack_recipe
from clients.sensors import observation, read_rows
from servers.devstack import procs
from servers.devstack.settings import DevstackSettings
from tests.fixtures.mesh import Stack

REPO = Path(__file__).resolve().parents[2]
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
ORG = "smart-energy-ll"
COMPONENTS = ("postgres", "anvil", "ledger", "registry", "trainer", "translator", "learner", "envoy")
_base_ids = itertools.count((os.getpid() % 100_000) * 100 + 90)


@dataclass
class Result:
    seed: int
    kills: Counter = field(default_factory=Counter)
    acknowledged: Counter = field(default_factory=Counter)  # by operation kind
    intact: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)  # operations the client saw fail (not acknowledged)
    unacknowledged_complete: Counter = field(default_factory=Counter)  # by resource kind
    interrupted: Counter = field(default_factory=Counter)  # failure reasons of acknowledged models
    orphans: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.orphans

    def table(self) -> str:
        lines = [f"chaos run, seed {self.seed}: {sum(self.kills.values())} kills",
                 f"  {'component':<12}{'kills':>6}"]
        lines += [f"  {c:<12}{self.kills[c]:>6}" for c in COMPONENTS]
        lines.append(f"  {'operation':<27}{'acknowledged':>13}{'intact':>8}{'failed (not acked)':>20}")
        for kind in sorted(set(self.acknowledged) | set(self.failed)):
            lines.append(f"  {kind:<27}{self.acknowledged[kind]:>13}{self.intact[kind]:>8}{self.failed[kind]:>20}")
        for reason, n in sorted(self.interrupted.items()):
            lines.append(f"  acknowledged model FAILED by a kill ({n}x): {reason[:110]}")
        for kind in sorted(self.unacknowledged_complete):
            lines.append(f"  unacknowledged {kind} found complete and consistent: {self.unacknowledged_complete[kind]}")
        lines.append(f"  orphans found: {len(self.orphans)}")
        lines += [f"    orphan: {o}" for o in self.orphans]
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        lines.append("  result: " + ("GREEN" if self.ok else "RED"))
        return "\n".join(lines)


def start_stack(root: Path) -> Stack:
    env = {"MLMESH_DATA_DIR": str(root), "MLMESH_ENVOY_BASE_ID": str(next(_base_ids))}
    for name in DevstackSettings.model_fields:
        if name.endswith("_port"):
            env[f"MLMESH_{name.upper()}"] = str(procs.free_port())
    stack = Stack(data_dir=root, env=env)
    stack.devstack("up")
    return stack


def _up(stack: Stack, attempts: int = 3) -> None:
    """`devstack up` as an operator would; a component killed again while starting gets another try."""
    for attempt in range(attempts):
        try:
            stack.devstack("up")
            return
        except AssertionError:
            if attempt + 1 == attempts:
                raise
            time.sleep(2)


class Workload:
    """Client threads through Envoy; they record what was acknowledged and what failed."""

    def __init__(self, stack: Stack, result: Result, learner_csv: Path | None, learner_id: str | None,
                 digits: tuple[str, bytes] | None = None):
        self.stack, self.result = stack, result
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.datasets: dict[str, tuple[str, int]] = {}  # acknowledged: id -> (sha256, size)
        self.attempted: dict[str, str] = {}  # display name -> sha256 of every upload tried
        self.learner_id = learner_id
        self.learner_acked = 0  # observations_learned in the learner's last acknowledgement
        self.readings = [observation(r, "meter-c") for r in read_rows(learner_csv, "timestamp", "power_kw")] \
            if learner_csv else []
        self.names = itertools.count()
        self.digits_id, self.recipe = digits if digits else (None, b"")
        self.models: dict[str, str] = {}  # acknowledged registrations: model id -> display name
        self.translations: dict[str, tuple[str, str]] = {}  # acknowledged: translation id -> (model id, sha256)

    def _token(self) -> str:
        return self.stack.token()

    def _request(self, method: str, path: str, *, content_type: str = "", **kwargs) -> httpx.Response | None:
        """One request through Envoy with a fresh token; None when the connection itself failed."""
        headers = {"authorization": f"Bearer {self._token()}"}
        if content_type:
            headers["content-type"] = content_type
        try:
            return httpx.request(method, f"{self.stack.base_url}{path}", headers=headers, **kwargs)
        except httpx.HTTPError:
            return None

    def _record(self, kind: str, ok: bool) -> None:
        with self.lock:
            (self.result.acknowledged if ok else self.result.failed)[kind] += 1

    def upload_grpc(self) -> None:
        while not self.stop.is_set():
            data = os.urandom(random.randint(2_000, 60_000))
            name = f"chaos-grpc-{next(self.names)}"
            sha = hashlib.sha256(data).hexdigest()
            with self.lock:
                self.attempted[name] = sha

            def messages(data=data, name=name):
                yield svc.UploadDatasetRequest(organization_id=ORG, display_name=name)
                for i in range(0, len(data), 16_384):
                    yield svc.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=data[i:i + 16_384]))
            try:
                with grpc.insecure_channel(self.stack.envoy) as channel:
                    ds = svc_grpc.RegistryServiceStub(channel).UploadDataset(
                        messages(), metadata=(("authorization", f"Bearer {self._token()}"),), timeout=30)
            except grpc.RpcError:
                self._record("upload (gRPC)", False)
                time.sleep(0.2)
                continue
            self._acked_upload("upload (gRPC)", ds.dataset_id, ds.sha256, sha, len(data))

    def upload_rest(self) -> None:
        while not self.stop.is_set():
            data = os.urandom(random.randint(2_000, 60_000))
            name = f"chaos-rest-{next(self.names)}"
            sha = hashlib.sha256(data).hexdigest()
            with self.lock:
                self.attempted[name] = sha
            try:
                r = httpx.post(f"{self.stack.base_url}/v1/datasets:upload",
                               params={"organization_id": ORG, "display_name": name}, content=data,
                               headers={"authorization": f"Bearer {self._token()}",
                                        "content-type": "application/octet-stream"}, timeout=30)
            except httpx.HTTPError:
                r = None
            if r is None or r.status_code != 200:
                self._record("upload (REST)", False)
                time.sleep(0.2)
                continue
            body = r.json()
            self._acked_upload("upload (REST)", body["dataset_id"], body["sha256"], sha, len(data))

    def _acked_upload(self, kind: str, dataset_id: str, acked_sha: str, sent_sha: str, size: int) -> None:
        self._record(kind, True)
        with self.lock:
            if acked_sha != sent_sha:
                self.result.problems.append(f"{kind} {dataset_id} acknowledged sha256 {acked_sha}, sent {sent_sha}")
            self.datasets[dataset_id] = (sent_sha, size)

    def download(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                ids = list(self.datasets)
            if not ids:
                time.sleep(0.2)
                continue
            dataset_id = random.choice(ids)
            sha, _ = self.datasets[dataset_id]
            r = self._request("GET", f"/v1/datasets/{dataset_id}:download", timeout=30)
            if r is None or r.status_code != 200:
                self._record("download (during)", False)
                time.sleep(0.2)
                continue
            self._record("download (during)", True)
            if hashlib.sha256(r.content).hexdigest() == sha:
                with self.lock:
                    self.result.intact["download (during)"] += 1
            else:
                with self.lock:
                    self.result.problems.append(f"download of {dataset_id} during the run returned other bytes")

    def train_and_translate(self) -> None:
        """Register a model with the logistic-regression recipe, follow it while it trains, translate it:
        two of these threads keep a training job or a translation in flight most of the time."""
        if not self.digits_id:
            return
        while not self.stop.is_set():
            name = f"chaos-model-{next(self.names)}"
            r = self._request("POST", "/v1/models", content=self.recipe, content_type="application/gzip", timeout=60,
                              params={"organization_id": ORG, "developer_id": "chaos", "dataset_id": self.digits_id,
                                      "display_name": name, "recipe_filename": "digits-logreg.tar.gz"})
            if r is None or r.status_code != 200:
                self._record("model registration", False)
                time.sleep(0.5)
                continue
            self._record("model registration", True)
            model_id = r.json()["model_id"]
            with self.lock:
                self.models[model_id] = name
            state = ""
            while not self.stop.is_set() and state not in ("STATE_TRAINED", "STATE_FAILED"):
                time.sleep(0.5)
                g = self._request("GET", f"/v1/models/{model_id}", timeout=30)
                state = g.json().get("state", "") if g is not None and g.status_code == 200 else state
            if state != "STATE_TRAINED" or self.stop.is_set():
                continue
            t = self._request("POST", f"/v1/models/{model_id}:translate", json={}, timeout=300)
            if t is None or t.status_code != 200:
                self._record("translation", False)
                continue
            self._record("translation", True)
            with self.lock:
                self.translations[t.json()["translation_id"]] = (model_id, t.json()["sha256"])

    def learn(self) -> None:
        if not self.learner_id:
            return
        position = 0
        per_message = 48
        while not self.stop.is_set() and position < len(self.readings):
            start = position

            def requests():
                nonlocal position
                while not self.stop.is_set() and position < len(self.readings):
                    chunk = self.readings[position:position + per_message]
                    position += len(chunk)
                    yield lpb.LearnRequest(learner_id=self.learner_id, observations=chunk)
                    time.sleep(0.05)
            try:
                with grpc.insecure_channel(self.stack.envoy) as channel:
                    stub = lgrpc.LearnerServiceStub(channel)
                    for ack in stub.Learn(requests(), metadata=(("authorization", f"Bearer {self._token()}"),),
                                          timeout=600):
                        self._record("learn message", True)
                        with self.lock:
                            self.learner_acked = max(self.learner_acked, ack.observations_learned)
            except grpc.RpcError:
                self._record("learn message", False)
                # A message without acknowledgement may or may not have been learned: resending it could
                # break the readings' time order, so the next stream starts after it (a gap).
                position = max(position, start + per_message)
                time.sleep(0.5)


def _learner(stack: Stack, tmp: Path, series_days: int = 20) -> tuple[str | None, Path | None]:
    """A power-forecast learner on a generated reference dataset, and a longer series to learn (long
    enough to keep the Learn stream busy until the last kill)."""
    if not ML_PYTHON.exists():
        return None, None
    ref, series = tmp / "reference.csv", tmp / "series.csv"
    for path, days, seed in ((ref, 3, 1), (series, series_days, 2)):
        subprocess.run([str(ML_PYTHON), str(REPO / "examples/make_power_csv.py"), "--out", str(path),
                        "--days", str(days), "--seed", str(seed)], check=True, capture_output=True)
    r = httpx.post(f"{stack.base_url}/v1/datasets:upload", params={"organization_id": ORG,
                   "display_name": "chaos-reference"}, content=ref.read_bytes(),
                   headers={**stack.auth(), "content-type": "text/csv"}, timeout=60)
    r.raise_for_status()
    params = struct_pb2.Struct()
    params.update({"window": 36, "horizon": 96, "interval_seconds": 900, "scale_min": 0, "scale_max": 80})
    with grpc.insecure_channel(stack.envoy) as channel:
        learner = lgrpc.LearnerServiceStub(channel).CreateLearner(lpb.CreateLearnerRequest(learner=lpb.Learner(
            display_name=f"chaos-{os.getpid()}", developer_id="chaos", spec=lpb.LearnerSpec(
                backend="sklearn", task="regression", transformer="power-forecast", transformer_params=params,
                reference_dataset_id=r.json()["dataset_id"],
                save_policy=lpb.SavePolicy(min_observations=200, validation_window=128)))),
            metadata=(("authorization", f"Bearer {stack.token()}"),), timeout=120)
    return learner.learner_id, series


def _digits(stack: Stack, tmp: Path) -> tuple[str, bytes] | None:
    """The digits dataset and the logistic-regression recipe of examples/recipes (a quick sklearn job)."""
    if not ML_PYTHON.exists():
        return None
    csv = tmp / "digits.csv"
    subprocess.run([str(ML_PYTHON), str(REPO / "examples/make_digits_csv.py"), "--out", str(csv)], check=True,
                   capture_output=True)
    r = httpx.post(f"{stack.base_url}/v1/datasets:upload", params={"organization_id": ORG,
                   "display_name": "chaos-digits"}, content=csv.read_bytes(),
                   headers={**stack.auth(), "content-type": "text/csv"}, timeout=60)
    r.raise_for_status()
    archive = pack_recipe(REPO / "examples/recipes/digits-logreg", tmp / "digits-logreg.tar.gz").read_bytes()
    return r.json()["dataset_id"], archive


def _kill(stack: Stack, component: str) -> bool:
    try:
        pid = stack.pid(component)
    except (OSError, ValueError):
        return False
    try:
        os.killpg(pid, signal.SIGKILL) if component == "postgres" else os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def _check(stack: Stack, work: Workload, result: Result) -> None:
    auth = {"authorization": f"Bearer {stack.token()}"}
    for dataset_id, (sha, size) in sorted(work.datasets.items()):
        kind = "dataset (final check)"
        result.acknowledged[kind] += 1
        r = httpx.get(f"{stack.base_url}/v1/datasets/{dataset_id}:download", headers=auth, timeout=60)
        if r.status_code != 200 or hashlib.sha256(r.content).hexdigest() != sha or len(r.content) != size:
            result.problems.append(f"acknowledged dataset {dataset_id}: download {r.status_code} {r.text[:200]}")
            continue
        p = httpx.get(f"{stack.base_url}/v1/datasets/{dataset_id}/provenance", headers=auth, timeout=60)
        if p.status_code != 200 or not p.json().get("consistent"):
            result.problems.append(f"acknowledged dataset {dataset_id}: provenance {p.status_code} {p.text[:300]}")
            continue
        result.intact[kind] += 1
    # Everything visible: acknowledged, or an attempted upload that is complete and consistent.
    token = ""
    while True:
        page = httpx.get(f"{stack.base_url}/v1/datasets", params={"page_size": 100, "page_token": token},
                         headers=auth, timeout=60).json()
        for ds in page.get("datasets", []):
            name = ds.get("display_name", "")
            if ds["dataset_id"] in work.datasets or not name.startswith("chaos-") or \
                    name in ("chaos-reference", "chaos-digits"):
                continue
            p = httpx.get(f"{stack.base_url}/v1/datasets/{ds['dataset_id']}/provenance", headers=auth, timeout=60)
            if work.attempted.get(name) == ds.get("sha256") and p.status_code == 200 and p.json().get("consistent"):
                result.unacknowledged_complete["uploads"] += 1
            else:
                result.orphans.append(f"dataset {ds['dataset_id']} ({name}, sha256 {ds.get('sha256')}, attempted "
                                      f"{work.attempted.get(name)}): provenance {p.status_code} {p.text[:400]}")
        token = page.get("next_page_token", "")
        if not token:
            break
    _check_models(stack, work, result)
    if work.learner_id:
        kind = "learner (final check)"
        result.acknowledged[kind] += 1
        r = httpx.get(f"{stack.base_url}/v1/learners/{work.learner_id}", headers=auth, timeout=60)
        learned = int(r.json().get("observations_learned", 0)) if r.status_code == 200 else -1
        if r.status_code == 200 and r.json().get("state") == "STATE_READY" and learned >= work.learner_acked:
            result.intact[kind] += 1
        else:
            result.problems.append(f"learner {work.learner_id}: {r.status_code}, observations_learned {learned} "
                                   f"< last acknowledged {work.learner_acked}: {r.text[:300]}")


def _get(stack: Stack, path: str, **kwargs) -> httpx.Response:
    return httpx.get(f"{stack.base_url}{path}", headers=stack.auth(), timeout=60, **kwargs)


def _settled(stack: Stack, model_id: str, deadline: float) -> dict:
    """The model once TRAINED or FAILED, or as it is at the deadline (stuck)."""
    while True:
        r = _get(stack, f"/v1/models/{model_id}")
        model = r.json() if r.status_code == 200 else {"state": f"HTTP {r.status_code}: {r.text[:200]}"}
        if model["state"] in ("STATE_TRAINED", "STATE_FAILED") or time.monotonic() > deadline:
            return model
        time.sleep(1)


def _model_consistent(stack: Stack, model: dict) -> str:
    """'' when a TRAINED model downloads with its res_hash and the chain verifies it, else what is wrong."""
    blob = _get(stack, f"/v1/models/{model['model_id']}:download")
    if blob.status_code != 200 or hashlib.md5(blob.content).hexdigest() != model.get("res_md5") or \
            hashlib.sha256(blob.content).hexdigest() != model.get("res_sha256"):
        return f"download {blob.status_code} {blob.text[:200]}"
    p = _get(stack, f"/v1/models/{model['model_id']}/provenance")
    chain = p.json().get("on_chain", {}) if p.status_code == 200 else {}
    if not p.json().get("consistent") or not chain.get("verified") or chain.get("res_hash") != model["res_md5"]:
        return f"provenance {p.status_code} {p.text[:300]}"
    return ""


def _translation_consistent(stack: Stack, translation_id: str, sha: str, verified: set[str]) -> str:
    """'' when the translation downloads with `sha` and its lineage node is VERIFIED on the chain."""
    r = _get(stack, f"/v1/translations/{translation_id}:download")
    if r.status_code != 200 or hashlib.sha256(r.content).hexdigest() != sha:
        return f"download {r.status_code} {r.text[:200]}"
    if translation_id not in verified:
        return "its lineage node is not VERIFIED against its contract"
    return ""


def _check_models(stack: Stack, work: Workload, result: Result) -> None:
    """Acknowledged models end TRAINED and verified (or FAILED with a reason when a kill interrupted
    their job, never stuck); acknowledged translations download checked against their contract;
    whatever unacknowledged model or translation is visible is complete and consistent."""
    if not work.digits_id:
        return
    deadline = time.monotonic() + 240
    visible: dict[str, dict] = {}
    token = ""
    while True:
        page = _get(stack, "/v1/models", params={"page_size": 100, "page_token": token}).json()
        visible.update({m["model_id"]: m for m in page.get("models", [])
                        if m.get("display_name", "").startswith("chaos-model-")})
        token = page.get("next_page_token", "")
        if not token:
            break
    verified: set[str] = set()  # translation ids whose lineage node the chain verifies
    translations: dict[str, str] = {}  # every visible translation of a chaos model: id -> sha256
    for model_id in sorted(set(visible) | set(work.models)):
        acked = model_id in work.models
        kind = "model (final check)"
        if acked:
            result.acknowledged[kind] += 1
        model = _settled(stack, model_id, deadline)
        if model["state"] == "STATE_TRAINED":
            problem = _model_consistent(stack, model)
            lineage = _get(stack, f"/v1/models/{model_id}/lineage").json()
            for node in lineage.get("nodes", []):
                if node.get("kind") == "KIND_TRANSLATION":
                    translations[node["resource_id"]] = node.get("sha256", "")
                    if node.get("check_status") == "CHECK_STATUS_VERIFIED":
                        verified.add(node["resource_id"])
        elif model["state"] == "STATE_FAILED" and model.get("failure_reason"):
            problem = ""
            if acked:
                result.interrupted[model["failure_reason"]] += 1
        else:
            problem = f"stuck in {model['state']} {model.get('failure_reason', '')}"
        if problem and acked:
            result.problems.append(f"acknowledged model {model_id}: {problem}")
        elif problem:
            result.orphans.append(f"model {model_id} (not acknowledged): {problem}")
        elif acked:
            result.intact[kind] += 1
        else:
            result.unacknowledged_complete["model registrations"] += 1
    for translation_id, (model_id, sha) in sorted(work.translations.items()):
        kind = "translation (final check)"
        result.acknowledged[kind] += 1
        problem = _translation_consistent(stack, translation_id, sha, verified)
        if problem:
            result.problems.append(f"acknowledged translation {translation_id} of {model_id}: {problem}")
        else:
            result.intact[kind] += 1
    for translation_id, sha in sorted(translations.items()):
        if translation_id in work.translations:
            continue
        problem = _translation_consistent(stack, translation_id, sha, verified)
        if problem:
            result.orphans.append(f"translation {translation_id} (not acknowledged): {problem}")
        else:
            result.unacknowledged_complete["translations"] += 1


def run(seed: int, kills: int, *, gap: tuple[float, float] = (1.0, 4.0), components=COMPONENTS,
        learner: bool = True, models: bool = True, log=print, order: tuple[str, ...] | None = None) -> Result:
    """`kills` SIGKILLs of components drawn from `components` (or, with `order`, those in a seeded
    shuffle of `order`), each after a seeded pause drawn from `gap` seconds."""
    chooser = random.Random(seed)
    if order is not None:
        victims = list(order)
        chooser.shuffle(victims)
        victims = (victims * (kills // len(victims) + 1))[:kills]
    else:
        victims = [chooser.choice(components) for _ in range(kills)]
    schedule = [(victim, chooser.uniform(*gap)) for victim in victims]
    result = Result(seed=seed)
    with tempfile.TemporaryDirectory(prefix="mlmesh-chaos-") as tmp:
        root = Path(tmp) / "stack"
        root.mkdir()
        stack = start_stack(root)
        try:
            # about 4 Learn messages per second between kills 2.5 s apart: 2 days (192 readings) per kill
            learner_id, series = _learner(stack, Path(tmp), 20 + 10 * kills) if learner else (None, None)
            digits = _digits(stack, Path(tmp)) if models else None
            work = Workload(stack, result, series, learner_id, digits)
            threads = [threading.Thread(target=f, daemon=True)
                       for f in (work.upload_grpc, work.upload_rest, work.download, work.learn,
                                 work.train_and_translate, work.train_and_translate)]
            for t in threads:
                t.start()
            for i, (component, wait) in enumerate(schedule, 1):
                time.sleep(wait)
                if _kill(stack, component):
                    result.kills[component] += 1
                log(f"[chaos] kill {i}/{kills}: SIGKILL {component}; devstack up")
                _up(stack)
            time.sleep(2)
            work.stop.set()
            for t in threads:
                t.join(120)
            _up(stack)
            _check(stack, work, result)
        finally:
            subprocess.run([sys.executable, "-m", "servers.devstack", "down"], cwd=REPO,
                           env={**os.environ, **stack.env}, capture_output=True, timeout=180)
    return result
