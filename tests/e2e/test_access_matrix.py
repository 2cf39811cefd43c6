"""The access matrix of issue 9 (docs/security.md) through the front door, REST and native gRPC.

One test per cell (resource kind, verb, role, transport), on resources set up once for the module:

* OWNER's digits dataset, a logistic-regression model trained on it (its training job), the model's
  ONNX translation and a tabular learner; the dataset and the model are shared with GRANTEE;
* the same set of PUBLISHER's, with the dataset and the model public (its learner is named like
  OWNER's: learner names are per organization).

Roles: `owner`, `grantee` (OWNER's set), `public` (READER, a third organization, on PUBLISHER's set),
`stranger` (OWNER's set), `forger` (the stranger's token plus its own `x-mlmesh-org` header naming
the owner: Envoy strips it, so it must change nothing) and `anonymous` (no token, the forged header).

Expected (docs/security.md): the owner may do everything; a grantee or public reader reads, downloads
and uses datasets and models (and translations of the model) but gets PERMISSION_DENIED on what only
the owner may do, and nothing of jobs and learners, which are never shared; a stranger gets
NOT_FOUND worded exactly as for an id that does not exist, and lists without the resource; no token
is UNAUTHENTICATED. Revocation: after unshare, the grantee's next download is NOT_FOUND.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import httpx
import pytest
from google.api import httpbody_pb2
from google.protobuf import json_format
from mlmesh.learner.v1 import learner_service_pb2 as lpb
from mlmesh.learner.v1 import learner_service_pb2_grpc as lgrpc
from mlmesh.registry.v1 import registry_service_pb2 as rpb
from mlmesh.registry.v1 import registry_service_pb2_grpc as rgrpc
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as v2
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2_grpc as v2grpc
from mlmesh.trainer.v1 import trainer_service_pb2 as tpb
from mlmesh.trainer.v1 import trainer_service_pb2_grpc as tgrpc
from mlmesh.translator.v1 import translator_service_pb2 as xpb
from mlmesh.translator.v1 import translator_service_pb2_grpc as xgrpc

from clients.recipes import pack_recipe
from servers.common.access import Access
from tests.fixtures.trainer import tar_gz

REPO = Path(__file__).resolve().parents[2]
SUFFIX = uuid.uuid4().hex[:6]
OWNER, GRANTEE, READER, STRANGER, PUBLISHER, NOBODY = (
    f"acl-{name}-{SUFFIX}" for name in ("owner", "grantee", "reader", "stranger", "publisher", "nobody"))
LEARNER_NAME = "acl-meter"
ORG_HEADER = "x-mlmesh-org"
TIMEOUT = 120
FEATURES = 64


# -- the resources -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Resources:
    """One organization's set: a dataset, a model trained on it, its job, its translation, a learner."""

    org: str
    dataset: str
    model: str
    job: str
    translation: str
    learner: str

    def ids(self) -> tuple[str, ...]:
        return (self.dataset, self.model, self.job, self.translation, self.learner)


@dataclass(frozen=True)
class Role:
    name: str
    org: str | None  # the token's organization; None: no token
    forged: bool = False  # sends its own x-mlmesh-org naming the owner
    public_set: bool = False  # acts on PUBLISHER's public set instead of OWNER's shared one

    def level(self, kind: str) -> Access | None:
        """What the role may do with a resource of `kind` in its set (None: unauthenticated)."""
        if self.org is None:
            return None
        if self.org in (OWNER, PUBLISHER):
            return Access.OWNER
        if self.org in (GRANTEE, READER) and kind in SHAREABLE:
            return Access.READ
        return Access.NONE


# Datasets and models are shared on purpose; a translation is readable by whoever may read its model.
SHAREABLE = ("dataset", "model", "translation")
ROLES = {r.name: r for r in (
    Role("owner", OWNER), Role("grantee", GRANTEE), Role("public", READER, public_set=True),
    Role("stranger", STRANGER), Role("forger", STRANGER, forged=True), Role("anonymous", None, forged=True),
)}


@dataclass
class Call:
    """How a cell calls: the role's credentials on both transports, and the set it acts on."""

    http: httpx.Client
    channel: grpc.Channel
    role: Role
    res: Resources
    token: str | None

    @property
    def headers(self) -> dict[str, str]:
        h = {ORG_HEADER: self.res.org} if self.role.forged else {}
        if self.token:
            h["authorization"] = f"Bearer {self.token}"
        return h

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return tuple(self.headers.items())

    @property
    def acting_org(self) -> str:
        return self.role.org or self.res.org


@dataclass(frozen=True)
class Outcome:
    code: str  # a gRPC status name, or VISIBLE / HIDDEN for a listing
    message: str = ""


_GRPC_NAMES = {c.value[0]: c.name for c in grpc.StatusCode}
_HTTP_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
               409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}


def rest(r: httpx.Response) -> Outcome:
    if r.status_code == 200:
        return Outcome("OK")
    try:
        body = r.json()
        return Outcome(_GRPC_NAMES[int(body["code"])], body.get("message", ""))
    except (ValueError, KeyError, TypeError):
        return Outcome(_HTTP_NAMES.get(r.status_code, f"HTTP {r.status_code}"), r.text)


def rpc(fn: Callable[[], object]) -> Outcome:
    try:
        fn()
    except grpc.RpcError as err:
        return Outcome(err.code().name, err.details() or "")
    return Outcome("OK")


def _listed(ids: list[str], wanted: str) -> Outcome:
    """VISIBLE: `wanted` is listed; EMPTY: nothing is; HIDDEN: other items are, not `wanted`."""
    return Outcome("VISIBLE" if wanted in ids else "HIDDEN" if ids else "EMPTY", f"listed {ids}")


def rest_listing(r: httpx.Response, key: str, wanted: str, field: str) -> Outcome:
    if r.status_code != 200:
        return rest(r)
    return _listed([x[field] for x in r.json().get(key, [])], wanted)


def rpc_listing(fn: Callable[[], list[str]], wanted: str) -> Outcome:
    try:
        ids = fn()
    except grpc.RpcError as err:
        return Outcome(err.code().name, err.details() or "")
    return _listed(ids, wanted)


def drain(stream) -> None:
    for _ in stream:
        pass


def _stubs(c: Call):
    return (rgrpc.RegistryServiceStub(c.channel), tgrpc.TrainerServiceStub(c.channel),
            xgrpc.TranslatorServiceStub(c.channel), lgrpc.LearnerServiceStub(c.channel),
            v2grpc.GRPCInferenceServiceStub(c.channel))


def reg(c: Call) -> rgrpc.RegistryServiceStub:
    return _stubs(c)[0]


def trainer(c: Call) -> tgrpc.TrainerServiceStub:
    return _stubs(c)[1]


def translator(c: Call) -> xgrpc.TranslatorServiceStub:
    return _stubs(c)[2]


def learners(c: Call) -> lgrpc.LearnerServiceStub:
    return _stubs(c)[3]


def oip(c: Call) -> v2grpc.GRPCInferenceServiceStub:
    return _stubs(c)[4]


# -- verbs ---------------------------------------------------------------------------------------

# A recipe without recipe.toml: registering it is the access check; its job then fails at once.
BROKEN_RECIPE = tar_gz({"train.py": "print('never runs')\n"})


def _model_params(c: Call) -> dict[str, str]:
    return {"organization_id": c.acting_org, "developer_id": "acl-dev", "dataset_id": c.res.dataset,
            "display_name": "acl-probe", "recipe_filename": "probe.tar.gz"}


def rest_train_on(c: Call) -> Outcome:
    return rest(c.http.post("/v1/models", params=_model_params(c), content=BROKEN_RECIPE,
                            headers={**c.headers, "content-type": "application/gzip"}))


def grpc_train_on(c: Call) -> Outcome:
    def gen():
        yield rpb.CreateModelRequest(**_model_params(c), chunk=httpbody_pb2.HttpBody(data=BROKEN_RECIPE))
    return rpc(lambda: reg(c).CreateModel(gen(), metadata=c.metadata, timeout=TIMEOUT))


def _learner(org: str, reference_dataset: str, name: str, starting_model: str = "") -> lpb.Learner:
    """A tabular scikit-learn learner on the digits' 64 pixel columns."""
    learner = lpb.Learner(display_name=name, organization_id=org, developer_id="acl-dev",
                          spec=lpb.LearnerSpec(backend="sklearn", task="regression", transformer="tabular",
                                               reference_dataset_id=reference_dataset,
                                               starting_model_id=starting_model))
    learner.spec.transformer_params.update({"feature_count": FEATURES})
    return learner


def _learner_json(learner: lpb.Learner) -> dict:
    return json_format.MessageToDict(learner, preserving_proto_field_name=True)


def _learner_from_model(c: Call) -> lpb.Learner:
    return _learner(c.acting_org, c.res.dataset, f"acl-from-model-{uuid.uuid4().hex[:8]}", c.res.model)


def rest_start_learner(c: Call) -> Outcome:
    r = c.http.post("/v1/learners", json=_learner_json(_learner_from_model(c)), headers=c.headers)
    if r.status_code == 200:  # a reader's own learner: remove it again
        c.http.delete(f"/v1/learners/{r.json()['learner_id']}", headers=c.headers)
    return rest(r)


def grpc_start_learner(c: Call) -> Outcome:
    def create():
        made = learners(c).CreateLearner(lpb.CreateLearnerRequest(learner=_learner_from_model(c)),
                                         metadata=c.metadata, timeout=TIMEOUT)
        learners(c).DeleteLearner(lpb.DeleteLearnerRequest(learner_id=made.learner_id), metadata=c.metadata,
                                  timeout=TIMEOUT)
    return rpc(create)


ROW = {"inputs": [{"row": {"values": [8.0] * FEATURES}}]}
OBSERVATION = lpb.Observation(row=lpb.FeatureRow(values=[8.0] * FEATURES))
LABELLED = lpb.Observation(row=OBSERVATION.row, target=1.0)


def _infer(c: Call, name: str) -> Outcome:
    tensor = v2.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP64", shape=[1, FEATURES])
    tensor.contents.fp64_contents.extend([8.0] * FEATURES)
    return rpc(lambda: oip(c).ModelInfer(v2.ModelInferRequest(model_name=name, inputs=[tensor]), metadata=c.metadata,
                                         timeout=TIMEOUT))


def _ready(c: Call) -> Outcome:
    try:
        ready = oip(c).ModelReady(v2.ModelReadyRequest(name=c.res.learner), metadata=c.metadata, timeout=TIMEOUT).ready
    except grpc.RpcError as err:
        return Outcome(err.code().name, err.details() or "")
    return Outcome("VISIBLE" if ready else "HIDDEN")


@dataclass(frozen=True)
class Verb:
    kind: str
    name: str
    needs: Access
    rest: Callable[[Call], Outcome] | None = None
    grpc: Callable[[Call], Outcome] | None = None
    listing: bool = False  # VISIBLE when allowed, else HIDDEN (unfiltered) or EMPTY (`filtered`)
    filtered: bool = False  # a listing filtered to the resource's owner, dataset or model
    allowed: str = "OK"  # the outcome when the access check passes
    denied: str | None = None  # listings: what a stranger gets, if not HIDDEN/EMPTY
    skip_roles: tuple[str, ...] = ()

    def expected(self, role: Role) -> str:
        level = role.level(self.kind)
        if level is None:
            return "UNAUTHENTICATED"
        if self.listing:
            if level >= self.needs:
                return "VISIBLE"
            if level is Access.NONE and self.denied:
                return self.denied
            return "EMPTY" if self.filtered else "HIDDEN"
        if level >= self.needs:
            return self.allowed
        return "PERMISSION_DENIED" if level is Access.READ else "NOT_FOUND"


READS, OWNS = Access.READ, Access.OWNER
PAGE = 100


def req(cls, **from_set: str) -> Callable[[Call], object]:
    """A request builder: each field takes the named attribute of the set (`dataset_id="dataset"`)."""
    return lambda c: cls(**{field: getattr(c.res, attr) for field, attr in from_set.items()})


def verb(kind: str, name: str, needs: Access, *, path: str = "", http_method: str = "GET", body: dict | None = None,
         stub: Callable[[Call], object] | None = None, method: str = "", request: Callable[[Call], object] | None = None,
         stream: bool = False, **options) -> Verb:
    """A verb over REST (`http_method` `path`, formatted with the set as `res`) and native gRPC
    (`stub(c).<method>(request(c))`, drained when its reply is a stream), either or both."""
    over_rest = over_grpc = None
    if path:
        def over_rest(c: Call) -> Outcome:
            return rest(c.http.request(http_method, path.format(res=c.res), json=body, headers=c.headers))
    if method:
        def over_grpc(c: Call) -> Outcome:
            def invoke():
                reply = getattr(stub(c), method)(request(c), metadata=c.metadata, timeout=TIMEOUT)
                if stream:
                    drain(reply)
            return rpc(invoke)
    return Verb(kind, name, needs, over_rest, over_grpc, **options)


@dataclass(frozen=True)
class Listing:
    """A List RPC: REST path, gRPC stub and method, request type, the reply's repeated field, the id field."""

    path: str
    stub: Callable[[Call], object]
    method: str
    request: type
    key: str
    field: str


LISTINGS = {
    "dataset": Listing("/v1/datasets", reg, "ListDatasets", rpb.ListDatasetsRequest, "datasets", "dataset_id"),
    "model": Listing("/v1/models", reg, "ListModels", rpb.ListModelsRequest, "models", "model_id"),
    "job": Listing("/v1/trainingJobs", trainer, "ListTrainingJobs", tpb.ListTrainingJobsRequest, "training_jobs",
                   "job_id"),
    "translation": Listing("/v1/translations", translator, "ListTranslations", xpb.ListTranslationsRequest,
                           "translations", "translation_id"),
    "learner": Listing("/v1/learners", learners, "ListLearners", lpb.ListLearnersRequest, "learners", "learner_id"),
}
FILTERS = {"organization_id": "org", "dataset_id": "dataset", "model_id": "model"}


def listing(kind: str, name: str, needs: Access, by: str = "", **options) -> Verb:
    """Is the set's resource of `kind` listed? Unfiltered, or filtered `by` the set's owner, dataset or model."""
    lst = LISTINGS[kind]

    def args(c: Call) -> dict:
        return {"page_size": PAGE, **({by: getattr(c.res, FILTERS[by])} if by else {})}

    def over_rest(c: Call) -> Outcome:
        r = c.http.get(lst.path, params=args(c), headers=c.headers)
        return rest_listing(r, lst.key, getattr(c.res, kind), lst.field)

    def over_grpc(c: Call) -> Outcome:
        def ids() -> list[str]:
            reply = getattr(lst.stub(c), lst.method)(lst.request(**args(c)), metadata=c.metadata, timeout=TIMEOUT)
            return [getattr(x, lst.field) for x in getattr(reply, lst.key)]
        return rpc_listing(ids, getattr(c.res, kind))

    return Verb(kind, name, needs, over_rest, over_grpc, listing=True, filtered=bool(by), **options)


def sharing(kind: str) -> tuple[Verb, ...]:
    """Share, unshare (with NOBODY, an organization no test uses) and the access policy: the owner's alone."""
    title, ident = kind.capitalize(), f"{kind}_id"
    grant = {"organization_ids": [NOBODY]}
    return tuple(
        verb(kind, action, OWNS, path=f"/v1/{kind}s/{{res.{kind}}}:{action}", http_method="POST", body=grant,
             stub=reg, method=f"{action.capitalize()}{title}",
             request=lambda c, cls=getattr(rpb, f"{action.capitalize()}{title}Request"):
                 cls(**{ident: getattr(c.res, kind)}, **grant))
        for action in ("share", "unshare")
    ) + (verb(kind, "access_policy", OWNS, path=f"/v1/{kind}s/{{res.{kind}}}/accessPolicy", stub=reg,
              method=f"Get{title}AccessPolicy",
              request=req(getattr(rpb, f"Get{title}AccessPolicyRequest"), **{ident: kind})),)


VERBS: tuple[Verb, ...] = (
    # -- datasets
    verb("dataset", "get", READS, path="/v1/datasets/{res.dataset}", stub=reg, method="GetDataset",
         request=req(rpb.GetDatasetRequest, dataset_id="dataset")),
    listing("dataset", "list", READS),
    listing("dataset", "list_by_owner", READS, by="organization_id"),
    verb("dataset", "download", READS, path="/v1/datasets/{res.dataset}:download", stub=reg,
         method="DownloadDataset", request=req(rpb.DownloadDatasetRequest, dataset_id="dataset"), stream=True),
    verb("dataset", "download_seed_route", READS, path="/dataset/{res.dataset}"),
    verb("dataset", "provenance", READS, path="/v1/datasets/{res.dataset}/provenance", stub=reg,
         method="GetDatasetProvenance", request=req(rpb.GetDatasetProvenanceRequest, dataset_id="dataset")),
    Verb("dataset", "train_on", READS, rest_train_on, grpc_train_on),
    *sharing("dataset"),
    verb("dataset", "usages", OWNS, path="/v1/datasets/{res.dataset}/usages", stub=reg, method="ListDatasetUsages",
         request=req(rpb.ListDatasetUsagesRequest, dataset_id="dataset")),
    # -- models
    verb("model", "get", READS, path="/v1/models/{res.model}", stub=reg, method="GetModel",
         request=req(rpb.GetModelRequest, model_id="model")),
    listing("model", "list", READS),
    listing("model", "list_by_owner", READS, by="organization_id"),
    listing("model", "list_by_dataset", READS, by="dataset_id"),
    verb("model", "download", READS, path="/v1/models/{res.model}:download", stub=reg, method="DownloadModel",
         request=req(rpb.DownloadModelRequest, model_id="model"), stream=True),
    verb("model", "download_seed_route", READS, path="/model/{res.model}"),
    verb("model", "recipe_download", READS, path="/v1/models/{res.model}/recipe:download", stub=reg,
         method="DownloadModelRecipe", request=req(rpb.DownloadModelRecipeRequest, model_id="model"), stream=True),
    verb("model", "provenance", READS, path="/v1/models/{res.model}/provenance", stub=reg,
         method="GetModelProvenance", request=req(rpb.GetModelProvenanceRequest, model_id="model")),
    verb("model", "metadata_seed_route", READS, path="/model/{res.model}/metadata"),
    verb("model", "translate", READS, path="/v1/models/{res.model}:translate", http_method="POST", body={},
         stub=translator, method="TranslateModel", request=req(xpb.TranslateModelRequest, model_id="model")),
    verb("model", "translate_seed_route", READS, path="/translate/{res.model}", http_method="POST", body={}),
    # A reader passes the access check and is told what the Learner needs: a logistic regression
    # cannot learn online (no partial_fit). tests/integration/test_learner.py starts one from a shared model.
    Verb("model", "start_learner", READS, rest_start_learner, grpc_start_learner, allowed="FAILED_PRECONDITION"),
    *sharing("model"),
    # -- training jobs: their model's owner's alone
    verb("job", "get", OWNS, path="/v1/trainingJobs/{res.job}", stub=trainer, method="GetTrainingJob",
         request=req(tpb.GetTrainingJobRequest, job_id="job")),
    listing("job", "list", OWNS),
    listing("job", "list_by_model", OWNS, by="model_id"),
    verb("job", "watch", OWNS, path="/v1/trainingJobs/{res.job}:watch", stub=trainer, method="WatchTrainingJob",
         request=req(tpb.WatchTrainingJobRequest, job_id="job"), stream=True),
    # The job has succeeded: its owner passes the access check and is told it cannot be cancelled.
    verb("job", "cancel", OWNS, path="/v1/trainingJobs/{res.job}:cancel", http_method="POST", body={}, stub=trainer,
         method="CancelTrainingJob", request=req(tpb.CancelTrainingJobRequest, job_id="job"),
         allowed="FAILED_PRECONDITION"),
    # -- translations: whoever may read the model
    verb("translation", "get", READS, path="/v1/translations/{res.translation}", stub=translator,
         method="GetTranslation", request=req(xpb.GetTranslationRequest, translation_id="translation")),
    listing("translation", "list_by_model", READS, by="model_id", denied="NOT_FOUND"),  # no such model for a stranger
    listing("translation", "list", OWNS),  # without a model: the caller's organization's own
    verb("translation", "download", READS, path="/v1/translations/{res.translation}:download", stub=translator,
         method="DownloadTranslation", request=req(xpb.DownloadTranslationRequest, translation_id="translation"),
         stream=True),
    # -- learners: their organization's alone
    verb("learner", "get", OWNS, path="/v1/learners/{res.learner}", stub=learners, method="GetLearner",
         request=req(lpb.GetLearnerRequest, learner_id="learner")),
    listing("learner", "list", OWNS),
    listing("learner", "list_by_owner", OWNS, by="organization_id"),
    verb("learner", "predict", OWNS, path="/v1/learners/{res.learner}:predict", http_method="POST", body=ROW,
         stub=learners, method="Predict",
         request=lambda c: lpb.PredictRequest(learner_id=c.res.learner, inputs=[OBSERVATION])),
    verb("learner", "monitoring", OWNS, path="/v1/learners/{res.learner}/monitoring", stub=learners,
         method="GetMonitoring", request=req(lpb.GetMonitoringRequest, learner_id="learner")),
    verb("learner", "explain", OWNS, path="/v1/learners/{res.learner}:explain", http_method="POST",
         body={"input": ROW["inputs"][0]}, stub=learners, method="Explain",
         request=lambda c: lpb.ExplainRequest(learner_id=c.res.learner, input=OBSERVATION),
         allowed="FAILED_PRECONDITION"),  # the owner is told scikit-learn has no explainer
    # The owner's cell would delete the module's learner: everyone else's is NOT_FOUND and deletes nothing.
    verb("learner", "delete", OWNS, path="/v1/learners/{res.learner}", http_method="DELETE", stub=learners,
         method="DeleteLearner", request=req(lpb.DeleteLearnerRequest, learner_id="learner"), skip_roles=("owner",)),
    # The owner's event stream stays open until something happens: the others' end at once.
    verb("learner", "events", OWNS, path="/v1/learners/{res.learner}/events", stub=learners,
         method="WatchLearnerEvents", request=req(lpb.WatchLearnerEventsRequest, learner_id="learner"), stream=True,
         skip_roles=("owner",)),
    # The client streams (native gRPC only): learning feeds the owner's learner a few labelled rows.
    verb("learner", "learn", OWNS, stub=learners, method="Learn", stream=True, request=lambda c: iter([
        lpb.LearnRequest(learner_id=c.res.learner, observations=[LABELLED] * 4)])),
    verb("learner", "predict_stream", OWNS, stub=learners, method="PredictStream", stream=True,
         request=lambda c: iter([lpb.PredictRequest(learner_id=c.res.learner, inputs=[OBSERVATION])])),
    # The Open Inference Protocol (native gRPC only): a model named by the learner's id or its name.
    Verb("learner", "oip_infer_by_id", OWNS, grpc=lambda c: _infer(c, c.res.learner)),
    Verb("learner", "oip_infer_by_name", OWNS, grpc=lambda c: _infer(c, LEARNER_NAME)),
    verb("learner", "oip_metadata", OWNS, stub=oip, method="ModelMetadata",
         request=req(v2.ModelMetadataRequest, name="learner")),
    Verb("learner", "oip_ready", OWNS, grpc=_ready, listing=True),
)

CELLS = [
    pytest.param(verb, role, transport, id=f"{verb.kind}-{verb.name}-{role}-{transport}")
    for verb in VERBS for role in ROLES if role not in verb.skip_roles
    for transport in ("rest", "grpc") if getattr(verb, transport) is not None
]


# -- the module's resources ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits_csv(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("acl") / "digits.csv"
    subprocess.run([str(REPO / ".venv-ml/bin/python"), str(REPO / "examples/make_digits_csv.py"), "--out", str(path)],
                   check=True, capture_output=True)
    return path.read_bytes()


def _ok(r: httpx.Response) -> dict:
    assert r.status_code == 200, r.text
    return r.json()


def _upload(http: httpx.Client, auth: dict, org: str, data: bytes, name: str) -> str:
    return _ok(http.post("/v1/datasets:upload", params={"organization_id": org, "display_name": name},
                         content=data, headers={**auth, "content-type": "text/csv"}))["dataset_id"]


def _wait_trained(http: httpx.Client, auth: dict, model_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = _ok(http.get(f"/v1/models/{model_id}", headers=auth))
        if model["state"] in ("STATE_TRAINED", "STATE_FAILED"):
            assert model["state"] == "STATE_TRAINED", model.get("failure_reason")
            return model
        time.sleep(0.5)
    raise AssertionError(f"model {model_id} did not train in {timeout}s")


@pytest.fixture(scope="module")
def world(stack, digits_csv, tmp_path_factory) -> dict[str, Resources]:
    """OWNER's set shared with GRANTEE, PUBLISHER's set public (both in one pass)."""
    recipe = pack_recipe(REPO / "examples/recipes/digits-logreg", tmp_path_factory.mktemp("recipe") / "logreg.tar.gz")
    archive = recipe.read_bytes()
    sets: dict[str, dict] = {}
    with httpx.Client(base_url=stack.base_url, timeout=300) as http:
        for org in (OWNER, PUBLISHER):
            auth = stack.auth(org)
            dataset = _upload(http, auth, org, digits_csv, "acl digits")
            model = _ok(http.post("/v1/models", params={
                "organization_id": org, "developer_id": "acl-dev", "dataset_id": dataset,
                "display_name": "acl logreg", "recipe_filename": "logreg.tar.gz"}, content=archive,
                headers={**auth, "content-type": "application/gzip"}))
            sets[org] = {"dataset": dataset, "model": model["model_id"], "job": model["training_job_id"]}
        for org in (OWNER, PUBLISHER):  # both train meanwhile
            auth, s = stack.auth(org), sets[org]
            _wait_trained(http, auth, s["model"])
            grant = {"organization_ids": [GRANTEE]} if org == OWNER else {"public": True}
            for kind in ("datasets", "models"):
                _ok(http.post(f"/v1/{kind}/{s[kind[:-1]]}:share", json=grant, headers=auth))
            s["translation"] = _ok(http.post(f"/v1/models/{s['model']}:translate", json={},
                                             headers=auth))["translation_id"]
            # Both organizations name their learner alike: names are per organization.
            s["learner"] = _ok(http.post("/v1/learners", json=_learner_json(_learner(org, s["dataset"], LEARNER_NAME)),
                                         headers=auth))["learner_id"]
    yield {org: Resources(org=org, **s) for org, s in sets.items()}
    # The stack is the session's: leave no public resource in other tests' lists, and no learner.
    with httpx.Client(base_url=stack.base_url, timeout=60) as http:
        for org, s in sets.items():
            auth = stack.auth(org)
            http.delete(f"/v1/learners/{s['learner']}", headers=auth)
            if org == PUBLISHER:
                for kind in ("datasets", "models"):
                    _ok(http.post(f"/v1/{kind}/{s[kind[:-1]]}:unshare", json={"public": True}, headers=auth))


@pytest.fixture(scope="module")
def channel(stack):
    with grpc.insecure_channel(stack.envoy) as ch:
        yield ch


@pytest.fixture(scope="module")
def http(stack):
    with httpx.Client(base_url=stack.base_url, timeout=TIMEOUT) as client:
        yield client


def _unknown(res: Resources) -> Resources:
    return replace(res, **{k: str(uuid.uuid4()) for k in ("dataset", "model", "job", "translation", "learner")})


def _normalized(message: str, res: Resources) -> str:
    for i, ident in enumerate(res.ids()):
        message = message.replace(ident, f"<id{i}>")
    return message


@pytest.mark.parametrize(("verb", "role_name", "transport"), CELLS)
def test_access_matrix(stack, world, http, channel, verb: Verb, role_name: str, transport: str):
    # Prepare: the role's credentials and the set it acts on
    role = ROLES[role_name]
    res = world[PUBLISHER if role.public_set else OWNER]
    token = stack.token(role.org) if role.org else None
    call = Call(http, channel, role, res, token)

    # Execute
    outcome = getattr(verb, transport)(call)

    # Assert: as docs/security.md says; a stranger's NOT_FOUND is word for word an unknown id's
    expected = verb.expected(role)
    accepted = ("HIDDEN", "EMPTY") if expected == "HIDDEN" else (expected,)  # unfiltered: maybe nothing at all
    assert outcome.code in accepted, outcome.message
    if outcome.code == "NOT_FOUND" and role.level(verb.kind) is Access.NONE:
        unknown = _unknown(res)
        never = getattr(verb, transport)(replace(call, res=unknown))
        assert never.code == "NOT_FOUND", never.message
        assert _normalized(outcome.message, res) == _normalized(never.message, unknown)


# -- revocation ------------------------------------------------------------------------------------

def test_revoking_a_grant_takes_effect_on_the_next_download(stack, http, channel):
    # Prepare: OWNER shares a fresh dataset with GRANTEE, who downloads it (AIP and seed route, gRPC)
    owner, grantee = stack.auth(OWNER), stack.auth(GRANTEE)
    data = b"t,kw\n" + b"".join(f"{i},{i % 7}.25\n".encode() for i in range(2000))
    dataset = _upload(http, owner, OWNER, data, "acl revoked")
    _ok(http.post(f"/v1/datasets/{dataset}:share", json={"organization_ids": [GRANTEE]}, headers=owner))
    stub = rgrpc.RegistryServiceStub(channel)

    def downloads() -> list[int | str]:
        grpc_outcome = rpc(lambda: drain(stub.DownloadDataset(rpb.DownloadDatasetRequest(dataset_id=dataset),
                                                              metadata=tuple(grantee.items()), timeout=TIMEOUT)))
        return [http.get(f"/v1/datasets/{dataset}:download", headers=grantee).status_code,
                http.get(f"/dataset/{dataset}", headers=grantee).status_code, grpc_outcome.code]

    assert downloads() == [200, 200, "OK"]
    assert http.get(f"/v1/datasets/{dataset}:download", headers=grantee).content == data

    # Execute: the owner revokes
    _ok(http.post(f"/v1/datasets/{dataset}:unshare", json={"organization_ids": [GRANTEE]}, headers=owner))

    # Assert: the grantee's next downloads do not find it; the owner's audit log has both events
    assert downloads() == [404, 404, "NOT_FOUND"]
    policy = _ok(http.get(f"/v1/datasets/{dataset}/accessPolicy", headers=owner))
    assert policy.get("grants", []) == []
    assert sorted((e["action"], e["organization_id"]) for e in policy["history"]) == [
        ("ACTION_SHARE", GRANTEE), ("ACTION_UNSHARE", GRANTEE)]
    # Both events are anchored on the ledger's AccessLog and the chain agrees with the audit rows.
    anchors = [e.get("anchor", {}) for e in policy["history"]]
    assert [(a.get("check"), len(a.get("tx_hash", ""))) for a in anchors] == [("CHECK_CONSISTENT", 66)] * 2
    assert len({a["tx_hash"] for a in anchors}) == 2
