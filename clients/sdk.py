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
from mlmesh.registry.v1 import dataset_pb2, registry_service_pb2, registry_service_pb2_grpc

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
        path = Path(path)
        part = path.with_name(path.name + ".part")
        expected = self.get(dataset_id)
        offset = part.stat().st_size if resume and part.exists() else 0
        if offset > expected.size_bytes:
            offset = 0
        sha = hashlib.sha256()
        if offset:
            with open(part, "rb") as f:
                while block := f.read(CHUNK_BYTES):
                    sha.update(block)
            if progress:
                progress(offset)
        request = registry_service_pb2.DownloadDatasetRequest(dataset_id=dataset_id, offset=offset)
        with open(part, "ab" if offset else "wb") as out:
            for message in self._stub.DownloadDataset(request, metadata=self._metadata):
                out.write(message.data)
                sha.update(message.data)
                if progress:
                    progress(len(message.data))
            out.flush()
            os.fsync(out.fileno())
        if sha.hexdigest() != expected.sha256:
            part.unlink(missing_ok=True)
            raise IntegrityError(
                f"{path}: downloaded bytes have sha256 {sha.hexdigest()}, the Registry records {expected.sha256}; "
                "the partial file was removed"
            )
        part.replace(path)
        return path

    def provenance(self, dataset_id: str) -> dataset_pb2.DatasetProvenance:
        return self._stub.GetDatasetProvenance(
            registry_service_pb2.GetDatasetProvenanceRequest(dataset_id=dataset_id), metadata=self._metadata
        )
