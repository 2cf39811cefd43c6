"""A small Python client for mlmesh (synchronous, grpcio + protobuf only).

    from clients.sdk import Registry
    reg = Registry("127.0.0.1:8080", token="eyJ...")          # through Envoy
    ds = reg.upload_file("readings.csv", organization_id="acme", display_name="meter 7")
    reg.download_file(ds.dataset_id, "copy.csv")             # resumes a partial copy.csv.part
    print(reg.provenance(ds.dataset_id).consistent)

It streams: an upload reads the file in chunks and a download writes chunks as they
arrive, so memory stays flat whatever the size. A download lands in `<path>.part` and
is renamed only after its SHA-256 matches the Registry's record.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
from google.api import httpbody_pb2
from mlmesh.registry.v1 import access_pb2, dataset_pb2, model_pb2, registry_service_pb2, registry_service_pb2_grpc

CHUNK_BYTES = 1 << 20
Progress = Callable[[int], None]


class IntegrityError(Exception):
    """A downloaded file does not hash to what the Registry recorded."""


class Registry:
    """The Registry's public API over native gRPC (direct or through Envoy)."""

    def __init__(self, target: str, *, token: str | None = None, channel: grpc.Channel | None = None):
        self.target = target
        self._channel = channel or grpc.insecure_channel(
            target,
            options=[("grpc.max_receive_message_length", 16 << 20), ("grpc.max_send_message_length", 16 << 20)],
        )
        self._stub = registry_service_pb2_grpc.RegistryServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- datasets ---------------------------------------------------------------------------

    def upload_file(
        self,
        path: str | os.PathLike,
        *,
        organization_id: str,
        display_name: str | None = None,
        samples_dimension: str = "",
        content_type: str = "application/octet-stream",
        expected_sha256: str = "",
        progress: Progress | None = None,
    ) -> dataset_pb2.Dataset:
        path = Path(path)

        def messages() -> Iterator[registry_service_pb2.UploadDatasetRequest]:
            yield registry_service_pb2.UploadDatasetRequest(
                organization_id=organization_id,
                display_name=display_name or path.name,
                samples_dimension=samples_dimension,
                content_type=content_type,
                filename=path.name,
                expected_sha256=expected_sha256,
            )
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    yield registry_service_pb2.UploadDatasetRequest(chunk=httpbody_pb2.HttpBody(data=chunk))
                    if progress:
                        progress(len(chunk))

        return self._stub.UploadDataset(messages(), metadata=self._metadata)

    def get(self, dataset_id: str) -> dataset_pb2.Dataset:
        return self._stub.GetDataset(
            registry_service_pb2.GetDatasetRequest(dataset_id=dataset_id), metadata=self._metadata
        )

    def list(self, *, organization_id: str = "", page_size: int = 0, page_token: str = ""):
        return self._stub.ListDatasets(
            registry_service_pb2.ListDatasetsRequest(
                organization_id=organization_id, page_size=page_size, page_token=page_token
            ),
            metadata=self._metadata,
        )

    def iter_all(self, *, organization_id: str = "", page_size: int = 100) -> Iterator[dataset_pb2.Dataset]:
        token = ""
        while True:
            page = self.list(organization_id=organization_id, page_size=page_size, page_token=token)
            yield from page.datasets
            token = page.next_page_token
            if not token:
                return

    def download_file(
        self, dataset_id: str, path: str | os.PathLike, *, progress: Progress | None = None, resume: bool = True
    ) -> Path:
        """Downloads into `<path>.part` (resuming it if present), checks SHA-256, renames to `path`."""
        expected = self.get(dataset_id)
        return self._download(
            lambda offset: self._stub.DownloadDataset(
                registry_service_pb2.DownloadDatasetRequest(dataset_id=dataset_id, offset=offset),
                metadata=self._metadata),
            Path(path), expected.size_bytes, expected.sha256, progress, resume)

    @staticmethod
    def _download(call, path: Path, size_bytes: int, sha256: str, progress: Progress | None,
                  resume: bool) -> Path:
        part = path.with_name(path.name + ".part")
        offset = part.stat().st_size if resume and part.exists() else 0
        if offset > size_bytes:
            offset = 0
        sha = hashlib.sha256()
        if offset:
            with open(part, "rb") as f:
                while block := f.read(CHUNK_BYTES):
                    sha.update(block)
            if progress:
                progress(offset)
        with open(part, "ab" if offset else "wb") as out:
            for message in call(offset):
                data = message.data  # read once: each read of a bytes field copies it
                out.write(data)
                sha.update(data)
                if progress:
                    progress(len(data))
            out.flush()
            os.fsync(out.fileno())
        if sha.hexdigest() != sha256:
            part.unlink(missing_ok=True)
            raise IntegrityError(
                f"{path}: downloaded bytes have sha256 {sha.hexdigest()}, the Registry records {sha256}; "
                "the partial file was removed"
            )
        part.replace(path)
        return path

    def provenance(self, dataset_id: str) -> dataset_pb2.DatasetProvenance:
        return self._stub.GetDatasetProvenance(
            registry_service_pb2.GetDatasetProvenanceRequest(dataset_id=dataset_id), metadata=self._metadata
        )

    # -- models -----------------------------------------------------------------------------

    def create_model(
        self,
        *,
        organization_id: str,
        developer_id: str,
        dataset_id: str,
        display_name: str,
        recipe: str | os.PathLike | None = None,
        image_reference: str = "",
        image_digest: str = "",
        time_limit_seconds: int = 0,
        memory_limit_bytes: int = 0,
    ) -> model_pb2.Model:
        """Registers a model trained from a recipe archive (a path) or a container image."""

        def messages() -> Iterator[registry_service_pb2.CreateModelRequest]:
            yield registry_service_pb2.CreateModelRequest(
                organization_id=organization_id, developer_id=developer_id, dataset_id=dataset_id,
                display_name=display_name, recipe_filename=Path(recipe).name if recipe else "",
                image_reference=image_reference, image_digest=image_digest,
                time_limit_seconds=time_limit_seconds, memory_limit_bytes=memory_limit_bytes,
            )
            if recipe:
                with open(recipe, "rb") as f:
                    while chunk := f.read(CHUNK_BYTES):
                        yield registry_service_pb2.CreateModelRequest(chunk=httpbody_pb2.HttpBody(data=chunk))

        return self._stub.CreateModel(messages(), metadata=self._metadata)

    def get_model(self, model_id: str) -> model_pb2.Model:
        return self._stub.GetModel(registry_service_pb2.GetModelRequest(model_id=model_id), metadata=self._metadata)

    def iter_models(self, *, organization_id: str = "", dataset_id: str = "", page_size: int = 100
                    ) -> Iterator[model_pb2.Model]:
        token = ""
        while True:
            page = self._stub.ListModels(
                registry_service_pb2.ListModelsRequest(organization_id=organization_id, dataset_id=dataset_id,
                                                       page_size=page_size, page_token=token),
                metadata=self._metadata)
            yield from page.models
            token = page.next_page_token
            if not token:
                return

    def download_model(self, model_id: str, path: str | os.PathLike, *, progress: Progress | None = None,
                       resume: bool = True) -> Path:
        """Downloads a trained model into `<path>.part`, checks SHA-256 (res_sha256), renames to `path`."""
        model = self.get_model(model_id)
        return self._download(
            lambda offset: self._stub.DownloadModel(
                registry_service_pb2.DownloadModelRequest(model_id=model_id, offset=offset), metadata=self._metadata),
            Path(path), model.size_bytes, model.res_sha256, progress, resume)

    def model_provenance(self, model_id: str) -> model_pb2.ModelProvenance:
        return self._stub.GetModelProvenance(registry_service_pb2.GetModelProvenanceRequest(model_id=model_id),
                                             metadata=self._metadata)

    # -- sharing ----------------------------------------------------------------------------

    def share(self, dataset_id: str, *, organization_ids: list[str] | tuple[str, ...] = (), public: bool = False
              ) -> access_pb2.AccessPolicy:
        """Lets `organization_ids` (or everyone, `public`) read the dataset; owner only. Returns the policy."""
        return self._stub.ShareDataset(registry_service_pb2.ShareDatasetRequest(
            dataset_id=dataset_id, organization_ids=list(organization_ids), public=public), metadata=self._metadata)

    def unshare(self, dataset_id: str, *, organization_ids: list[str] | tuple[str, ...] = (), public: bool = False
                ) -> access_pb2.AccessPolicy:
        """Revokes grants of the dataset (from the next call on); owner only."""
        return self._stub.UnshareDataset(registry_service_pb2.UnshareDatasetRequest(
            dataset_id=dataset_id, organization_ids=list(organization_ids), public=public), metadata=self._metadata)

    def access_policy(self, dataset_id: str) -> access_pb2.AccessPolicy:
        """The dataset's grants and the history of its shares and unshares; owner only."""
        return self._stub.GetDatasetAccessPolicy(
            registry_service_pb2.GetDatasetAccessPolicyRequest(dataset_id=dataset_id), metadata=self._metadata)

    def usages(self, dataset_id: str, *, page_size: int = 100) -> Iterator[access_pb2.DatasetUsage]:
        """Every model registered on the dataset, newest first (all pages); owner only."""
        token = ""
        while True:
            page = self._stub.ListDatasetUsages(registry_service_pb2.ListDatasetUsagesRequest(
                dataset_id=dataset_id, page_size=page_size, page_token=token), metadata=self._metadata)
            yield from page.usages
            token = page.next_page_token
            if not token:
                return

    def share_model(self, model_id: str, *, organization_ids: list[str] | tuple[str, ...] = (),
                    public: bool = False) -> access_pb2.AccessPolicy:
        return self._stub.ShareModel(registry_service_pb2.ShareModelRequest(
            model_id=model_id, organization_ids=list(organization_ids), public=public), metadata=self._metadata)

    def unshare_model(self, model_id: str, *, organization_ids: list[str] | tuple[str, ...] = (),
                      public: bool = False) -> access_pb2.AccessPolicy:
        return self._stub.UnshareModel(registry_service_pb2.UnshareModelRequest(
            model_id=model_id, organization_ids=list(organization_ids), public=public), metadata=self._metadata)

    def model_access_policy(self, model_id: str) -> access_pb2.AccessPolicy:
        return self._stub.GetModelAccessPolicy(registry_service_pb2.GetModelAccessPolicyRequest(model_id=model_id),
                                               metadata=self._metadata)


class Trainer:
    """The Trainer's public API over native gRPC: training jobs, their state and logs."""

    def __init__(self, target: str, *, token: str | None = None, channel: grpc.Channel | None = None):
        from mlmesh.trainer.v1 import trainer_service_pb2, trainer_service_pb2_grpc

        self._pb = trainer_service_pb2
        self._channel = channel or grpc.insecure_channel(target)
        self._stub = trainer_service_pb2_grpc.TrainerServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, job_id: str):
        return self._stub.GetTrainingJob(self._pb.GetTrainingJobRequest(job_id=job_id), metadata=self._metadata)

    def list(self, *, model_id: str = "", page_size: int = 50, page_token: str = ""):
        return self._stub.ListTrainingJobs(
            self._pb.ListTrainingJobsRequest(model_id=model_id, page_size=page_size, page_token=page_token),
            metadata=self._metadata)

    def cancel(self, job_id: str):
        return self._stub.CancelTrainingJob(self._pb.CancelTrainingJobRequest(job_id=job_id),
                                            metadata=self._metadata)

    def watch(self, job_id: str, *, after_log_sequence: int = 0):
        """Yields TrainingJobEvent messages (job state changes and log lines) until the job ends."""
        yield from self._stub.WatchTrainingJob(
            self._pb.WatchTrainingJobRequest(job_id=job_id, after_log_sequence=after_log_sequence),
            metadata=self._metadata)


class Translator:
    """The Translator's public API over native gRPC: ONNX translations with parity reports."""

    def __init__(self, target: str, *, token: str | None = None, channel: grpc.Channel | None = None):
        from mlmesh.translator.v1 import translator_service_pb2, translator_service_pb2_grpc

        self._pb = translator_service_pb2
        self._channel = channel or grpc.insecure_channel(
            target, options=[("grpc.max_receive_message_length", 16 << 20)])
        self._stub = translator_service_pb2_grpc.TranslatorServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Translator:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def translate(self, model_id: str, *, opset: int = 0, timeout: float = 900):
        return self._stub.TranslateModel(self._pb.TranslateModelRequest(model_id=model_id, opset=opset),
                                         metadata=self._metadata, timeout=timeout)

    def get(self, translation_id: str):
        return self._stub.GetTranslation(self._pb.GetTranslationRequest(translation_id=translation_id),
                                         metadata=self._metadata)

    def download_file(self, translation_id: str, path: str | os.PathLike, *, progress: Progress | None = None,
                      resume: bool = True) -> Path:
        """Downloads the ONNX file into `<path>.part`, checks its SHA-256, renames to `path`."""
        t = self.get(translation_id)
        return Registry._download(
            lambda offset: self._stub.DownloadTranslation(
                self._pb.DownloadTranslationRequest(translation_id=translation_id, offset=offset),
                metadata=self._metadata),
            Path(path), t.size_bytes, t.sha256, progress, resume)
