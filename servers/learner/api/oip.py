"""The Open Inference Protocol (KServe V2, `inference.GRPCInferenceService`) on the Learner: every
ready learner is a model named by its display name (or id), so KServe and Triton clients
(`tritonclient.grpc`) call it unchanged. Inputs go through the learner's transformer, as Predict's
do: a tabular or power-forecast learner takes one FP32/FP64 tensor [n, features] (power-forecast:
[n, window] readings in kW), an image learner one BYTES tensor [n] of encoded images. Tensors to
observations and predictions to tensors here; which model, whose it is and counting what is served
are the core's (domain/service.py), as for LearnerService."""

from __future__ import annotations

import numpy as np
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as v2
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2_grpc as v2_grpc

from servers.common import errors
from servers.common.caller import caller_org
from servers.learner.domain.live import LiveLearner
from servers.learner.domain.service import LearnerCore
from servers.learner.ml.base import Obs

SERVER_NAME = "mlmesh-learner"
SERVER_VERSION = "0.1.0"
_NUMERIC = {"FP32": np.dtype("<f4"), "FP64": np.dtype("<f8"), "INT32": np.dtype("<i4"), "INT64": np.dtype("<i8")}
_CONTENTS = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT32": "int_contents", "INT64": "int64_contents"}


class InferenceServicer(v2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, core: LearnerCore):
        self.core = core

    async def ServerLive(self, request, context):  # noqa: N802
        return v2.ServerLiveResponse(live=True)

    async def ServerReady(self, request, context):  # noqa: N802
        return v2.ServerReadyResponse(ready=True)

    async def ServerMetadata(self, request, context):  # noqa: N802
        return v2.ServerMetadataResponse(name=SERVER_NAME, version=SERVER_VERSION, extensions=[])

    async def ModelReady(self, request, context):  # noqa: N802
        return v2.ModelReadyResponse(ready=self.core.model_ready(request.name, request.version, caller_org(context)))

    async def ModelMetadata(self, request, context):  # noqa: N802
        live = self.core.model(request.name, request.version, caller_org(context))
        meta = model_metadata(live)
        return v2.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[v2.ModelMetadataResponse.TensorMetadata(**t) for t in meta["inputs"]],
            outputs=[v2.ModelMetadataResponse.TensorMetadata(**t) for t in meta["outputs"]])

    async def ModelInfer(self, request: v2.ModelInferRequest, context):  # noqa: N802
        live = self.core.model(request.model_name, request.model_version, caller_org(context))
        if len(request.inputs) != 1:
            raise errors.InvalidArgument(f"model {request.model_name!r} takes exactly one input tensor, got "
                                         f"{len(request.inputs)}", reason="INPUT_COUNT")
        tensor = request.inputs[0]
        raw = request.raw_input_contents[0] if request.raw_input_contents else None
        inputs = _observations(live, tensor, raw)
        name, values = output_tensor(live, await self.core.infer(live, inputs))
        out = v2.ModelInferResponse.InferOutputTensor(name=name, datatype="FP64", shape=list(values.shape))
        response = v2.ModelInferResponse(model_name=live.record.display_name,
                                         model_version=str(live.record.version), id=request.id, outputs=[out])
        if request.raw_input_contents:
            response.raw_output_contents.append(values.astype("<f8").tobytes())
        else:
            response.outputs[0].contents.fp64_contents.extend(values.reshape(-1).tolist())
        return response


def model_metadata(live: LiveLearner) -> dict:
    """A learner's V2 model metadata (name, versions, platform, inputs, outputs) as plain values: the
    gRPC and REST halves of the protocol both answer it."""
    if live.spec.transformer == "image":
        inputs = [{"name": "input-0", "datatype": "BYTES", "shape": [-1]}]
    else:
        inputs = [{"name": "input-0", "datatype": "FP64", "shape": [-1, int(np.prod(list(live.transformer.input_shape)))]}]
    if live.classification:
        output = {"name": "predict_proba", "datatype": "FP64", "shape": [-1, live.transformer.n_classes or -1]}
    else:
        output = {"name": "predict", "datatype": "FP64", "shape": [-1, 1]}
    return {"name": live.record.display_name, "versions": [str(live.record.version)],
            "platform": f"mlmesh-{live.spec.backend}", "inputs": inputs, "outputs": [output]}


def output_tensor(live: LiveLearner, prediction) -> tuple[str, np.ndarray]:
    """The one output tensor of a prediction: (name, FP64 values of shape [rows, classes or 1])."""
    outputs = prediction.outputs
    if live.classification:
        return "predict_proba", np.asarray([o.values for o in outputs], dtype=np.float64)
    return "predict", np.asarray([o.values[0] for o in outputs], dtype=np.float64).reshape(-1, 1)


def _observations(live: LiveLearner, tensor, raw: bytes | None) -> list[Obs]:
    values = None
    if raw is None:
        contents = _CONTENTS.get(tensor.datatype, "bytes_contents")
        values = getattr(tensor.contents, contents)
    return tensor_observations(live, tensor.datatype, list(tensor.shape), values=values, raw=raw)


def tensor_observations(live: LiveLearner, datatype: str, shape: list[int], *, values=None,
                        raw: bytes | None = None) -> list[Obs]:
    """The observations one V2 input tensor holds, whichever half of the protocol carried it: `raw`
    (little-endian bytes; BYTES elements length-prefixed) or `values` (a flat or nested sequence of
    numbers, or of bytes for BYTES)."""
    if live.spec.transformer == "image":
        if datatype != "BYTES":
            raise errors.InvalidArgument(f"an image model takes a BYTES tensor of encoded images, got "
                                         f"{datatype[:16]}", reason="DATATYPE")
        items = _bytes_elements(raw) if raw is not None else list(values or ())
        return [Obs(image=item) for item in items]
    dtype = _NUMERIC.get(datatype)
    if dtype is None:
        raise errors.InvalidArgument(f"input datatype {datatype[:16]!r} is not one of {', '.join(_NUMERIC)}",
                                     reason="DATATYPE")
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise errors.InvalidArgument(f"input shape must be [rows, features], got {shape[:8]}", reason="SHAPE")
    if raw is not None:
        if len(raw) != shape[0] * shape[1] * dtype.itemsize:
            raise errors.InvalidArgument(f"raw input holds {len(raw)} bytes; shape {shape} of {datatype} "
                                         f"needs {shape[0] * shape[1] * dtype.itemsize}", reason="SHAPE")
        array = np.frombuffer(raw, dtype=dtype)
    else:
        try:
            array = np.asarray(values if values is not None else (), dtype=dtype).reshape(-1)
        except (TypeError, ValueError):
            raise errors.InvalidArgument(f"input data must be numbers of datatype {datatype}",
                                         reason="DATA") from None
        if array.size != shape[0] * shape[1]:
            raise errors.InvalidArgument(f"input has {array.size} values; shape {shape} needs "
                                         f"{shape[0] * shape[1]}", reason="SHAPE")
    rows = array.astype(np.float64).reshape(shape)
    if not np.isfinite(rows).all():  # raw bytes too: the field rules refuse NaN in fp64_contents already
        raise errors.InvalidArgument("input data holds NaN or an infinity; send finite numbers", reason="DATA")
    return [Obs(row=row) for row in rows]


def _bytes_elements(raw: bytes) -> list[bytes]:
    """BYTES elements in raw form: each a 4-byte little-endian length, then the bytes."""
    items, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise errors.InvalidArgument("raw BYTES input is truncated", reason="SHAPE")
        size = int.from_bytes(raw[offset:offset + 4], "little")
        offset += 4
        items.append(raw[offset:offset + size])
        offset += size
    return items
