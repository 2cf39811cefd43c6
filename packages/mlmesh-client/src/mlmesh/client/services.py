"""The services of the mesh as a user sees them: `client.datasets`, `client.models`, `client.jobs`,
`client.translations`, `client.learners`, `client.inference`.

Written once for both clients: each method builds its request(s) and hands the call to the
client's transport, so on `mlmesh.Client` it returns the result (and iterators for lists and
streams) and on `mlmesh.aio.Client` an awaitable (and async iterators). Results are the generated
protobuf messages (`mlmesh.registry.v1.dataset_pb2.Dataset`, ...): one set of types, documented
field by field in the protos, that JSON-serialise with `google.protobuf.json_format`.

Every method that calls an RPC names it with `@rpc(...)`; tests/unit/test_sdk_coverage.py walks
the descriptors of every public service and fails on an RPC no method names.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from google.api import httpbody_pb2
from google.protobuf import struct_pb2

from mlmesh.client._base import Identity, _Service, covered_rpcs, rpc
from mlmesh.client._transport import Destination, Download, Progress, Source, read_chunks, source_name
from mlmesh.client.observations import to_observation
from mlmesh.client.recipes import recipe_archive
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


REGISTRY = "mlmesh.registry.v1.RegistryService"
TRAINER = "mlmesh.trainer.v1.TrainerService"
TRANSLATOR = "mlmesh.translator.v1.TranslatorService"
LEARNER = "mlmesh.learner.v1.LearnerService"
INFERENCE = "inference.GRPCInferenceService"


def _path_source(source: Source) -> Source:
    """Fails early (before any call) on a path that is not a readable file."""
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise FileNotFoundError(f"{source}: no such file")
    return source


def _grant_args(organization_ids: Sequence[str] | str, public: bool) -> dict:
    orgs = [organization_ids] if isinstance(organization_ids, str) else list(organization_ids)
    return {"organization_ids": orgs, "public": public}


class Datasets(_Service):
    """Datasets in the Registry: streamed upload (hashed, anchored on the ledger), list, download
    checked against the recorded SHA-256, provenance, sharing."""

    _stub_class = rgrpc.RegistryServiceStub

    @rpc(f"{REGISTRY}/UploadDataset")
    def upload(self, source: Source, *, display_name: str | None = None, organization_id: str | None = None,
               samples_dimension: str = "", content_type: str = "application/octet-stream",
               filename: str | None = None, expected_sha256: str = "", expected_md5: str = "",
               progress: Progress | None = None, timeout: float | None = None):
        """Uploads a file (a path, a binary file object or bytes) as a new dataset; returns the Dataset.
        `progress(n)` is called with the number of bytes sent, chunk by chunk."""
        source = _path_source(source)
        name = filename or source_name(source, "dataset")
        first = rpb.UploadDatasetRequest(
            organization_id=self._id.organization(organization_id), display_name=display_name or name,
            samples_dimension=samples_dimension, content_type=content_type, filename=name,
            expected_sha256=expected_sha256, expected_md5=expected_md5)

        def requests():
            yield first
            for chunk in read_chunks(source, progress):
                yield rpb.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=chunk))

        return self._t.client_stream(self._stub.UploadDataset, requests(), timeout=self._deadline(timeout, "transfer"))

    @rpc(f"{REGISTRY}/GetDataset")
    def get(self, dataset_id: str, *, timeout: float | None = None):
        """The Dataset's metadata."""
        return self._t.unary(self._stub.GetDataset, rpb.GetDatasetRequest(dataset_id=dataset_id),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{REGISTRY}/ListDatasets")
    def list(self, *, owner: str = "", page_size: int = 100, timeout: float | None = None):
        """Every dataset the caller may see, newest first, fetched page by page as you iterate.
        `owner=ORG`: only ORG's (the caller's own, or what ORG shared with the caller or made public)."""
        return self._t.pages(
            self._stub.ListDatasets,
            lambda token: rpb.ListDatasetsRequest(organization_id=owner, page_size=page_size, page_token=token),
            "datasets", timeout=self._deadline(timeout))

    @rpc(f"{REGISTRY}/DownloadDataset")
    def download(self, dataset_id: str, dest: Destination, *, resume: bool = True, progress: Progress | None = None,
                 timeout: float | None = None):
        """Downloads to a path (via `<path>.part`, resumed if present, renamed once its SHA-256 matches;
        returns the path) or into a binary file object (checked at the end; returns None). A mismatch
        raises `IntegrityError`."""
        return self._t.download(Download(
            head=(self._stub.GetDataset, rpb.GetDatasetRequest(dataset_id=dataset_id)),
            expect=lambda ds: (ds.size_bytes, ds.sha256, f"dataset {dataset_id}"),
            body=lambda offset: (self._stub.DownloadDataset,
                                 rpb.DownloadDatasetRequest(dataset_id=dataset_id, offset=offset))),
            dest, timeout=self._deadline(timeout, "transfer"), resume=resume, progress=progress)

    @rpc(f"{REGISTRY}/GetDatasetProvenance")
    def provenance(self, dataset_id: str, *, timeout: float | None = None):
        """The stored bytes, the database and the ledger compared (`.consistent`, `.checks`)."""
        return self._t.unary(self._stub.GetDatasetProvenance,
                             rpb.GetDatasetProvenanceRequest(dataset_id=dataset_id),
                             timeout=self._deadline(timeout, "slow"), idempotent=True)

    @rpc(f"{REGISTRY}/ShareDataset")
    def share(self, dataset_id: str, organization_ids: Sequence[str] | str = (), *, public: bool = False,
              timeout: float | None = None):
        """Lets these organizations (or everyone: `public=True`) read and use a dataset you own."""
        return self._t.unary(self._stub.ShareDataset, rpb.ShareDatasetRequest(
            dataset_id=dataset_id, **_grant_args(organization_ids, public)), timeout=self._deadline(timeout))

    @rpc(f"{REGISTRY}/UnshareDataset")
    def unshare(self, dataset_id: str, organization_ids: Sequence[str] | str = (), *, public: bool = False,
                timeout: float | None = None):
        """Revokes grants of a dataset you own (from the grantee's next call on)."""
        return self._t.unary(self._stub.UnshareDataset, rpb.UnshareDatasetRequest(
            dataset_id=dataset_id, **_grant_args(organization_ids, public)), timeout=self._deadline(timeout))

    @rpc(f"{REGISTRY}/GetDatasetAccessPolicy")
    def access_policy(self, dataset_id: str, *, timeout: float | None = None):
        """The grants of a dataset you own and the history of every share and unshare."""
        return self._t.unary(self._stub.GetDatasetAccessPolicy,
                             rpb.GetDatasetAccessPolicyRequest(dataset_id=dataset_id),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{REGISTRY}/ListDatasetUsages")
    def usages(self, dataset_id: str, *, page_size: int = 100, timeout: float | None = None):
        """The models registered on a dataset you own, by any organization, newest first."""
        return self._t.pages(
            self._stub.ListDatasetUsages,
            lambda token: rpb.ListDatasetUsagesRequest(dataset_id=dataset_id, page_size=page_size, page_token=token),
            "usages", timeout=self._deadline(timeout))


class Models(_Service):
    """Models in the Registry: registered with a training recipe (or image) against a dataset, trained
    by the Trainer (follow it with `client.jobs.watch(model.training_job_id)`), downloaded checked
    against the hash verified on the ledger."""

    _stub_class = rgrpc.RegistryServiceStub

    @rpc(f"{REGISTRY}/CreateModel")
    def create(self, *, dataset_id: str, display_name: str, recipe: str | os.PathLike | None = None,
               image_reference: str = "", image_digest: str = "", organization_id: str | None = None,
               developer_id: str | None = None, time_limit_seconds: int = 0, memory_limit_bytes: int = 0,
               timeout: float | None = None):
        """Registers a model and schedules its training: from a recipe (a directory holding
        recipe.toml, packed reproducibly, or a .tar.gz/.zip archive) or a container image."""
        archive = recipe_archive(recipe) if recipe is not None else b""
        filename = ""
        if recipe is not None:
            path = Path(recipe)
            filename = f"{path.resolve().name}.tar.gz" if path.is_dir() else path.name
        first = rpb.CreateModelRequest(
            organization_id=self._id.organization(organization_id), developer_id=self._id.developer(developer_id),
            dataset_id=dataset_id, display_name=display_name, recipe_filename=filename,
            image_reference=image_reference, image_digest=image_digest, time_limit_seconds=time_limit_seconds,
            memory_limit_bytes=memory_limit_bytes)

        def requests():
            yield first
            for chunk in read_chunks(archive) if archive else ():
                yield rpb.CreateModelRequest(chunk=httpbody_pb2.HttpBody(data=chunk))

        return self._t.client_stream(self._stub.CreateModel, requests(), timeout=self._deadline(timeout, "transfer"))

    @rpc(f"{REGISTRY}/GetModel")
    def get(self, model_id: str, *, timeout: float | None = None):
        """The Model: its state (TRAINED when its result is verified on the ledger), hashes, lineage."""
        return self._t.unary(self._stub.GetModel, rpb.GetModelRequest(model_id=model_id),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{REGISTRY}/ListModels")
    def list(self, *, owner: str = "", dataset_id: str = "", page_size: int = 100, timeout: float | None = None):
        """Every model the caller may see, newest first (`owner=ORG`: only ORG's; `dataset_id`: only
        the models trained on it)."""
        return self._t.pages(
            self._stub.ListModels,
            lambda token: rpb.ListModelsRequest(organization_id=owner, dataset_id=dataset_id, page_size=page_size,
                                                page_token=token),
            "models", timeout=self._deadline(timeout))

    @rpc(f"{REGISTRY}/DownloadModel")
    def download(self, model_id: str, dest: Destination, *, resume: bool = True, progress: Progress | None = None,
                 timeout: float | None = None):
        """Downloads a trained model, checked against its res_sha256 (see `Datasets.download`)."""
        return self._t.download(Download(
            head=(self._stub.GetModel, rpb.GetModelRequest(model_id=model_id)),
            expect=lambda m: (m.size_bytes, m.res_sha256, f"model {model_id}"),
            body=lambda offset: (self._stub.DownloadModel, rpb.DownloadModelRequest(model_id=model_id, offset=offset))),
            dest, timeout=self._deadline(timeout, "transfer"), resume=resume, progress=progress)

    @rpc(f"{REGISTRY}/DownloadModelRecipe")
    def download_recipe(self, model_id: str, dest: Destination, *, progress: Progress | None = None,
                        timeout: float | None = None):
        """Downloads the recipe archive (or a learned version's learning record) the model was made
        from, checked against its SHA-256, to reproduce it."""

        def expect(m):
            source = m.training_source
            archive = source.online.record if source.WhichOneof("source") == "online" else source.recipe
            return archive.size_bytes, archive.sha256, f"recipe of model {model_id}"

        return self._t.download(Download(
            head=(self._stub.GetModel, rpb.GetModelRequest(model_id=model_id)), expect=expect,
            body=lambda offset: (self._stub.DownloadModelRecipe, rpb.DownloadModelRecipeRequest(model_id=model_id)),
            resumable=False), dest, timeout=self._deadline(timeout, "transfer"), resume=False, progress=progress)

    @rpc(f"{REGISTRY}/GetModelProvenance")
    def provenance(self, model_id: str, *, timeout: float | None = None):
        """The stored model, the database and its ledger contract compared (the seed's metadata)."""
        return self._t.unary(self._stub.GetModelProvenance, rpb.GetModelProvenanceRequest(model_id=model_id),
                             timeout=self._deadline(timeout, "slow"), idempotent=True)

    @rpc(f"{REGISTRY}/ShareModel")
    def share(self, model_id: str, organization_ids: Sequence[str] | str = (), *, public: bool = False,
              timeout: float | None = None):
        """Lets these organizations (or everyone) download, translate, serve or continue a model you own."""
        return self._t.unary(self._stub.ShareModel, rpb.ShareModelRequest(
            model_id=model_id, **_grant_args(organization_ids, public)), timeout=self._deadline(timeout))

    @rpc(f"{REGISTRY}/UnshareModel")
    def unshare(self, model_id: str, organization_ids: Sequence[str] | str = (), *, public: bool = False,
                timeout: float | None = None):
        """Revokes grants of a model you own."""
        return self._t.unary(self._stub.UnshareModel, rpb.UnshareModelRequest(
            model_id=model_id, **_grant_args(organization_ids, public)), timeout=self._deadline(timeout))

    @rpc(f"{REGISTRY}/GetModelAccessPolicy")
    def access_policy(self, model_id: str, *, timeout: float | None = None):
        """The grants of a model you own and their history."""
        return self._t.unary(self._stub.GetModelAccessPolicy, rpb.GetModelAccessPolicyRequest(model_id=model_id),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{REGISTRY}/GetModelLineage")
    def lineage(self, model_id: str, *, timeout: float | None = None):
        """The model's lineage (dataset → recipe/image → job → model → translations, versions), every
        node checked against the ledger now (`.nodes[i].check_status`, `.checks`; `.consistent`)."""
        return self._t.unary(self._stub.GetModelLineage, rpb.GetModelLineageRequest(model_id=model_id),
                             timeout=self._deadline(timeout, "slow"), idempotent=True)

    @rpc(f"{REGISTRY}/ExportModelAttestations")
    def attestations(self, model_id: str, *, timeout: float | None = None):
        """The model's provenance as DSSE envelopes of in-toto Statements with SLSA Provenance v1
        predicates, and one per reproduction the caller ran (mlmesh's reproduction predicate)
        (`.envelopes`: JSON lines), signed by the mesh's key (`.signing_key`). Check them offline with
        `mlmesh.client.provenance.verify_envelopes`."""
        return self._t.unary(self._stub.ExportModelAttestations,
                             rpb.ExportModelAttestationsRequest(model_id=model_id),
                             timeout=self._deadline(timeout, "slow"), idempotent=True)

    @rpc(f"{REGISTRY}/GetSigningKey")
    def signing_key(self, *, timeout: float | None = None):
        """The public key that signs the mesh's attestations (`.public_key_pem`, `.key_id`)."""
        return self._t.unary(self._stub.GetSigningKey, rpb.GetSigningKeyRequest(),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{REGISTRY}/GetModelSignature")
    def model_signature(self, model_id: str, *, timeout: float | None = None):
        """An OpenSSF model_signing signature of the model's artifact (`.bundle`: write it to model.sig),
        made with the mesh's key from the ledger-anchored SHA-256; check it with `model_signing verify key
        --signature model.sig --public_key mesh.pub.pem model.pkl`."""
        return self._t.unary(self._stub.GetModelSignature, rpb.GetModelSignatureRequest(model_id=model_id),
                             timeout=self._deadline(timeout, "slow"), idempotent=True)


class Jobs(_Service):
    """Training jobs (the Trainer): state, logs, cancel."""

    _stub_class = tgrpc.TrainerServiceStub

    @rpc(f"{TRAINER}/GetTrainingJob")
    def get(self, job_id: str, *, timeout: float | None = None):
        return self._t.unary(self._stub.GetTrainingJob, tpb.GetTrainingJobRequest(job_id=job_id),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{TRAINER}/ListTrainingJobs")
    def list(self, *, model_id: str = "", page_size: int = 100, timeout: float | None = None):
        """The caller's training jobs, newest first (`model_id`: only that model's)."""
        return self._t.pages(
            self._stub.ListTrainingJobs,
            lambda token: tpb.ListTrainingJobsRequest(model_id=model_id, page_size=page_size, page_token=token),
            "training_jobs", timeout=self._deadline(timeout))

    @rpc(f"{TRAINER}/CancelTrainingJob")
    def cancel(self, job_id: str, *, timeout: float | None = None):
        return self._t.unary(self._stub.CancelTrainingJob, tpb.CancelTrainingJobRequest(job_id=job_id),
                             timeout=self._deadline(timeout))

    @rpc(f"{TRAINER}/WatchTrainingJob")
    def watch(self, job_id: str, *, after_log_sequence: int = 0, timeout: float | None = None):
        """TrainingJobEvents as they happen (`event.job`: a state change; `event.log`: a log line) until
        the job ends; the first event is the job as it is now."""
        return self._t.server_stream(
            self._stub.WatchTrainingJob,
            tpb.WatchTrainingJobRequest(job_id=job_id, after_log_sequence=after_log_sequence),
            timeout=self._deadline(timeout, "watch"))

    @rpc(f"{TRAINER}/ReproduceModel")
    def reproduce(self, model_id: str, *, time_limit_seconds: int = 0, memory_limit_bytes: int = 0,
                  timeout: float | None = None):
        """Retrains a trained model from its pinned recipe on its registered dataset, for your
        organization: a training job with purpose REPRODUCTION (follow it with `watch`). Once it
        SUCCEEDED, `job.reproduction` says IDENTICAL (same bytes as the ledger's res_sha256) or
        DIFFERENT with the measured `max_abs_diff` of the two models' outputs on the dataset's rows."""
        return self._t.unary(self._stub.ReproduceModel,
                             tpb.ReproduceModelRequest(model_id=model_id, time_limit_seconds=time_limit_seconds,
                                                       memory_limit_bytes=memory_limit_bytes),
                             timeout=self._deadline(timeout))


class Translations(_Service):
    """ONNX translations of trained models (the Translator), with their parity reports."""

    _stub_class = xgrpc.TranslatorServiceStub

    @rpc(f"{TRANSLATOR}/TranslateModel")
    def translate(self, model_id: str, *, opset: int = 0, timeout: float | None = None):
        """Translates a TRAINED model to ONNX and checks parity with onnxruntime (waits for it)."""
        return self._t.unary(self._stub.TranslateModel, xpb.TranslateModelRequest(model_id=model_id, opset=opset),
                             timeout=self._deadline(timeout, "slow"))

    @rpc(f"{TRANSLATOR}/GetTranslation")
    def get(self, translation_id: str, *, timeout: float | None = None):
        return self._t.unary(self._stub.GetTranslation, xpb.GetTranslationRequest(translation_id=translation_id),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{TRANSLATOR}/ListTranslations")
    def list(self, *, model_id: str = "", page_size: int = 100, timeout: float | None = None):
        """Translations of `model_id` (one the caller may read), or all of the caller's own."""
        return self._t.pages(
            self._stub.ListTranslations,
            lambda token: xpb.ListTranslationsRequest(model_id=model_id, page_size=page_size, page_token=token),
            "translations", timeout=self._deadline(timeout))

    @rpc(f"{TRANSLATOR}/DownloadTranslation")
    def download(self, translation_id: str, dest: Destination, *, resume: bool = True,
                 progress: Progress | None = None, timeout: float | None = None):
        """Downloads the .onnx file, checked against its SHA-256 (see `Datasets.download`)."""
        return self._t.download(Download(
            head=(self._stub.GetTranslation, xpb.GetTranslationRequest(translation_id=translation_id)),
            expect=lambda t: (t.size_bytes, t.sha256, f"translation {translation_id}"),
            body=lambda offset: (self._stub.DownloadTranslation,
                                 xpb.DownloadTranslationRequest(translation_id=translation_id, offset=offset))),
            dest, timeout=self._deadline(timeout, "transfer"), resume=resume, progress=progress)


def _struct(params: Mapping[str, Any] | struct_pb2.Struct | None) -> struct_pb2.Struct | None:
    if params is None or isinstance(params, struct_pb2.Struct):
        return params
    s = struct_pb2.Struct()
    s.update(dict(params))
    return s


def _message(cls, value):
    """A message of `cls` from a message or a dict of its fields."""
    if value is None or isinstance(value, cls):
        return value
    return cls(**dict(value))


def _learn_request(learner_id: str, batch: list, flush: bool = False) -> lpb.LearnRequest:
    return lpb.LearnRequest(learner_id=learner_id, observations=[to_observation(o) for o in batch], flush=flush)


def _learn_requests(learner_id: str, observations, batch_size: int, flush: bool):
    """LearnRequests of `batch_size` observations each (the last one flushing when `flush`); items
    that are LearnRequests pass through. Sync or async, like `observations`."""
    if isinstance(observations, AsyncIterable):
        return _alearn_requests(learner_id, observations, batch_size, flush)

    def requests():
        batch: list = []
        for item in observations:
            if isinstance(item, lpb.LearnRequest):
                if batch:
                    yield _learn_request(learner_id, batch)
                    batch = []
                item.learner_id = item.learner_id or learner_id
                yield item
                continue
            batch.append(item)
            if len(batch) >= batch_size:
                yield _learn_request(learner_id, batch)
                batch = []
        if batch or flush:
            yield _learn_request(learner_id, batch, flush)

    return requests()


async def _alearn_requests(learner_id: str, observations: AsyncIterable, batch_size: int, flush: bool):
    batch: list = []
    async for item in observations:
        if isinstance(item, lpb.LearnRequest):
            if batch:
                yield _learn_request(learner_id, batch)
                batch = []
            item.learner_id = item.learner_id or learner_id
            yield item
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            yield _learn_request(learner_id, batch)
            batch = []
    if batch or flush:
        yield _learn_request(learner_id, batch, flush)


def _predict_request(learner_id: str, item) -> lpb.PredictRequest:
    if isinstance(item, lpb.PredictRequest):
        item.learner_id = item.learner_id or learner_id
        return item
    return lpb.PredictRequest(learner_id=learner_id, inputs=[to_observation(item)])


def _predict_requests(learner_id: str, inputs):
    if isinstance(inputs, AsyncIterable):
        async def arequests():
            async for item in inputs:
                yield _predict_request(learner_id, item)

        return arequests()
    return (_predict_request(learner_id, item) for item in inputs)


class Learners(_Service):
    """Online learners (the Learner): a model that keeps learning from streamed observations, predicts
    and explains on demand, saves a new Registry version when it improves, and reports drift."""

    _stub_class = lgrpc.LearnerServiceStub

    @rpc(f"{LEARNER}/CreateLearner")
    def create(self, *, display_name: str, backend: str = "", task: str = "", transformer: str = "",
               backend_params: Mapping[str, Any] | None = None, transformer_params: Mapping[str, Any] | None = None,
               starting_model_id: str = "", reference_dataset_id: str = "", save_policy=None,
               micro_batch_size: int = 0, explainer: str = "", monitoring=None, spec: lpb.LearnerSpec | None = None,
               organization_id: str | None = None, developer_id: str | None = None, timeout: float | None = None):
        """Creates a learner (docs/learner.md lists backends, transformers and their parameters):
        keyword arguments for the LearnerSpec's fields (`save_policy` and `monitoring` as dicts or
        messages), or a whole `spec=`. Returns the Learner, READY to learn."""
        if spec is None:
            spec = lpb.LearnerSpec(
                backend=backend, task=task, transformer=transformer, backend_params=_struct(backend_params),
                transformer_params=_struct(transformer_params), starting_model_id=starting_model_id,
                reference_dataset_id=reference_dataset_id, save_policy=_message(lpb.SavePolicy, save_policy),
                micro_batch_size=micro_batch_size, explainer=explainer,
                monitoring=_message(lpb.MonitoringPolicy, monitoring))
        learner = lpb.Learner(display_name=display_name, organization_id=self._id.organization(organization_id),
                              developer_id=self._id.developer(developer_id), spec=spec)
        return self._t.unary(self._stub.CreateLearner, lpb.CreateLearnerRequest(learner=learner),
                             timeout=self._deadline(timeout, "slow"))

    @rpc(f"{LEARNER}/GetLearner")
    def get(self, learner_id: str, *, timeout: float | None = None):
        """The Learner: version, current model, observations learned, losses."""
        return self._t.unary(self._stub.GetLearner, lpb.GetLearnerRequest(learner_id=learner_id),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{LEARNER}/ListLearners")
    def list(self, *, page_size: int = 100, timeout: float | None = None):
        """The caller's organization's learners."""
        return self._t.pages(
            self._stub.ListLearners,
            lambda token: lpb.ListLearnersRequest(page_size=page_size, page_token=token),
            "learners", timeout=self._deadline(timeout))

    @rpc(f"{LEARNER}/DeleteLearner")
    def delete(self, learner_id: str, *, timeout: float | None = None):
        """Deletes a learner (its saved versions stay in the Registry)."""
        return self._t.unary(self._stub.DeleteLearner, lpb.DeleteLearnerRequest(learner_id=learner_id),
                             timeout=self._deadline(timeout))

    @rpc(f"{LEARNER}/Learn")
    def learn(self, learner_id: str, observations, *, batch_size: int = 96, flush: bool = False,
              timeout: float | None = None):
        """Streams observations (an iterable, or an async iterable on `mlmesh.aio`; see
        `mlmesh.client.observations`) to the learner, `batch_size` per message, and yields one
        LearnResponse per message: counts, running and validation loss, and `saved` when a new
        version was saved. `flush=True` learns a last partial micro-batch at the end."""
        return self._t.bidi(self._stub.Learn, _learn_requests(learner_id, observations, batch_size, flush),
                            timeout=self._deadline(timeout, "transfer"))

    @rpc(f"{LEARNER}/Predict")
    def predict(self, learner_id: str, inputs: Iterable | None = None, *, sensor_id: str = "",
                timeout: float | None = None):
        """Predictions for `inputs` (observations without targets), or, with `sensor_id`, from that
        sensor's latest readings (forecasting learners). Returns a PredictResponse."""
        request = lpb.PredictRequest(learner_id=learner_id, sensor_id=sensor_id,
                                     inputs=[to_observation(x) for x in inputs or ()])
        return self._t.unary(self._stub.Predict, request, timeout=self._deadline(timeout))

    @rpc(f"{LEARNER}/PredictStream")
    def predict_stream(self, learner_id: str, inputs, *, timeout: float | None = None):
        """One PredictResponse per input, over one bidirectional stream: each item is an observation
        (see `mlmesh.client.observations`) or a whole PredictRequest."""
        return self._t.bidi(self._stub.PredictStream, _predict_requests(learner_id, inputs),
                            timeout=self._deadline(timeout, "transfer"))

    @rpc(f"{LEARNER}/Explain")
    def explain(self, learner_id: str, input=None, *, sensor_id: str = "", method: str = "", steps: int = 0,
                target_class: int | None = None, timeout: float | None = None):
        """Feature attributions (Captum) of one prediction: for `input`, or for `sensor_id`'s latest
        readings. Returns an Explanation."""
        request = lpb.ExplainRequest(learner_id=learner_id, sensor_id=sensor_id, method=method, steps=steps)
        if target_class is not None:
            request.target_class = target_class
        if input is not None:
            request.input.CopyFrom(to_observation(input))
        return self._t.unary(self._stub.Explain, request, timeout=self._deadline(timeout, "slow"), idempotent=True)

    @rpc(f"{LEARNER}/GetMonitoring")
    def monitoring(self, learner_id: str, *, refresh: bool = False, timeout: float | None = None):
        """Drift per feature against the reference dataset and the error metrics, with history
        (`refresh=True` computes them now)."""
        return self._t.unary(self._stub.GetMonitoring,
                             lpb.GetMonitoringRequest(learner_id=learner_id, refresh=refresh),
                             timeout=self._deadline(timeout, "slow"), idempotent=True)

    @rpc(f"{LEARNER}/WatchLearnerEvents")
    def watch(self, learner_id: str, *, timeout: float | None = None):
        """LearnerEvents as they happen: drift detected or cleared, versions saved."""
        return self._t.server_stream(self._stub.WatchLearnerEvents,
                                     lpb.WatchLearnerEventsRequest(learner_id=learner_id),
                                     timeout=self._deadline(timeout, "watch"))


class Inference(_Service):
    """The Open Inference Protocol (KServe V2) the Learner serves: a learner is a model named by its
    display name. For KServe's and Triton's own clients, point them at the same target."""

    _stub_class = v2grpc.GRPCInferenceServiceStub

    @rpc(f"{INFERENCE}/ServerLive")
    def server_live(self, *, timeout: float | None = None):
        return self._t.unary(self._stub.ServerLive, v2.ServerLiveRequest(), timeout=self._deadline(timeout),
                             idempotent=True)

    @rpc(f"{INFERENCE}/ServerReady")
    def server_ready(self, *, timeout: float | None = None):
        return self._t.unary(self._stub.ServerReady, v2.ServerReadyRequest(), timeout=self._deadline(timeout),
                             idempotent=True)

    @rpc(f"{INFERENCE}/ServerMetadata")
    def server_metadata(self, *, timeout: float | None = None):
        return self._t.unary(self._stub.ServerMetadata, v2.ServerMetadataRequest(),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{INFERENCE}/ModelReady")
    def model_ready(self, name: str, *, timeout: float | None = None):
        return self._t.unary(self._stub.ModelReady, v2.ModelReadyRequest(name=name), timeout=self._deadline(timeout),
                             idempotent=True)

    @rpc(f"{INFERENCE}/ModelMetadata")
    def model_metadata(self, name: str, *, timeout: float | None = None):
        return self._t.unary(self._stub.ModelMetadata, v2.ModelMetadataRequest(name=name),
                             timeout=self._deadline(timeout), idempotent=True)

    @rpc(f"{INFERENCE}/ModelInfer")
    def infer(self, name: str, rows: Sequence[Sequence[float]] | v2.ModelInferRequest, *,
              input_name: str = "input-0", timeout: float | None = None):
        """ModelInfer on rows of numbers (one FP64 tensor, shape [rows, columns]), or a whole
        ModelInferRequest. Returns the ModelInferResponse."""
        if isinstance(rows, v2.ModelInferRequest):
            request = rows
        else:
            rows = [list(map(float, r)) for r in rows]
            tensor = v2.ModelInferRequest.InferInputTensor(
                name=input_name, datatype="FP64", shape=[len(rows), len(rows[0]) if rows else 0])
            tensor.contents.fp64_contents.extend(v for r in rows for v in r)
            request = v2.ModelInferRequest(model_name=name, inputs=[tensor])
        return self._t.unary(self._stub.ModelInfer, request, timeout=self._deadline(timeout))


SERVICES: dict[str, type[_Service]] = {
    "datasets": Datasets, "models": Models, "jobs": Jobs, "translations": Translations, "learners": Learners,
    "inference": Inference}

# Services whose contracts are still landing join when their stubs are in this build.
def _has_stubs(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package (e.g. mlmesh.federation) is not in this build
        return False


if _has_stubs("mlmesh.federation.v1.federation_service_pb2"):
    from mlmesh.client.federation import Federation

    SERVICES["federation"] = Federation

if _has_stubs("mlmesh.optimizer.v1.optimizer_service_pb2"):
    from mlmesh.client.optimizer import Optimizer

    SERVICES["optimizer"] = Optimizer

__all__ = ["SERVICES", "Identity", "covered_rpcs", "rpc", *(cls.__name__ for cls in SERVICES.values())]
