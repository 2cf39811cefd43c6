"""The Open Inference Protocol's REST half (KServe V2 HTTP/REST) on the Learner's HTTP front
(servers.common.http), beside the gRPC half (api/oip.py) and over the same LearnerCore: which model,
whose it is (another organization's learner is no such model: 404) and counting what is served stay
the core's. Tensors use the protocol's own JSON (`{"name", "shape", "datatype", "data": [...]}`, data
flat or nested in row-major order), or Triton's binary tensor extension, which `tritonclient.http`
uses by default: the JSON header is `Inference-Header-Content-Length` bytes long, each input with
`parameters.binary_data_size` bytes following it in order; outputs come back binary when the request
asks (`parameters.binary_data_output`, or `binary_data` on a requested output).

    GET  /v2/health/live | /v2/health/ready | /v2
    GET  /v2/models/{name}[/versions/{version}]            model metadata
    GET  /v2/models/{name}[/versions/{version}]/ready      200 ready, 400 not ready, 404 no such model
    POST /v2/models/{name}[/versions/{version}]/infer
"""

from __future__ import annotations

import json
import math

import numpy as np
from aiohttp import web
from mlmesh.thirdparty.kserve import grpc_predict_v2_pb2 as v2

from servers.common import errors, validation
from servers.common.http import http_caller_org, loads_json
from servers.learner.api.oip import SERVER_NAME, SERVER_VERSION, model_metadata, output_tensor, tensor_observations
from servers.learner.domain.service import LearnerCore

HEADER_LENGTH = "Inference-Header-Content-Length"
_MODEL = "/v2/models/{name}"
_VERSION = "/v2/models/{name}/versions/{version}"
MAX_RANK = 32  # dimensions of a tensor's shape


def _json(body: dict, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body, separators=(",", ":")), status=status, content_type="application/json")


def parse_infer_body(body: bytes, header_length: str | None) -> tuple[dict, bytes]:
    """(the request's JSON, the binary data after it)."""
    split = len(body)
    if header_length is not None:
        if not (header_length.isascii() and header_length.isdigit() and len(header_length) <= 20) \
                or int(header_length) > len(body):
            raise errors.InvalidArgument(f"{HEADER_LENGTH} must be the JSON header's size, at most the body's "
                                         f"{len(body)} bytes", reason="HEADER_LENGTH")
        split = int(header_length)
    request = loads_json(body[:split], "the inference request")
    if not isinstance(request, dict):
        raise errors.InvalidArgument("the inference request must be a JSON object", reason="REQUEST_NOT_JSON")
    return request, body[split:]


def check_tensor_header(request: dict, tensor: dict, max_elements: int) -> None:
    """The gRPC half's field rules on what maps onto ModelInferRequest (id, the input's name and
    datatype, shape in int64), then what JSON adds: a shape of at most MAX_RANK dimensions, none
    negative, holding at most `max_elements` elements (the body's size: every element takes at least
    a byte, in JSON or binary), so no product of dimensions is ever allocated."""
    validation.check_fields({k: request[k] for k in ("id",) if k in request}, v2.ModelInferRequest)
    validation.check_fields({k: tensor[k] for k in ("name", "datatype", "shape") if k in tensor},
                            v2.ModelInferRequest.InferInputTensor, "inputs[0].")
    shape = tensor["shape"]
    if len(shape) > MAX_RANK:
        raise errors.InvalidArgument(f"inputs[0].shape has {len(shape)} dimensions, at most {MAX_RANK}",
                                     reason="SHAPE")
    if any(d < 0 for d in shape):
        raise errors.InvalidArgument(f"inputs[0].shape {shape} has a negative dimension", reason="SHAPE")
    if math.prod(shape) > max_elements:
        raise errors.InvalidArgument(f"inputs[0].shape {shape[:8]} holds more elements than the request's "
                                     f"{max_elements} bytes can carry", reason="SHAPE")


def input_tensor(request: dict, binary: bytes, max_elements: int = 1 << 26) -> tuple[str, list[int], object,
                                                                                     bytes | None]:
    """(datatype, shape, data, raw bytes) of the request's one input tensor."""
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        count = len(inputs) if isinstance(inputs, list) else 0
        raise errors.InvalidArgument(f"the model takes exactly one input tensor, got {count}", reason="INPUT_COUNT")
    tensor = inputs[0]
    datatype, shape = tensor.get("datatype"), tensor.get("shape")
    if not isinstance(datatype, str) or not isinstance(shape, list) or \
            not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise errors.InvalidArgument('an input tensor needs "datatype" (a string) and "shape" (integers)',
                                     reason="TENSOR")
    check_tensor_header(request, tensor, max_elements)
    size = (tensor.get("parameters") or {}).get("binary_data_size") if isinstance(tensor.get("parameters"),
                                                                                 dict) else None
    if size is not None:
        if not isinstance(size, int) or size < 0 or size != len(binary):
            raise errors.InvalidArgument(f"binary_data_size {str(size)[:20]} does not match the {len(binary)} bytes "
                                         "after the JSON header", reason="BINARY_SIZE")
        return datatype, shape, None, binary
    if "data" not in tensor:
        raise errors.InvalidArgument('an input tensor needs "data" (or binary data)', reason="TENSOR")
    data = tensor["data"]
    if datatype == "BYTES":
        data = [str(item).encode("utf-8") for item in np.asarray(data, dtype=object).reshape(-1)]
    return datatype, shape, data, None


def _wants_binary(request: dict, name: str) -> bool:
    params = request.get("parameters") if isinstance(request.get("parameters"), dict) else {}
    if params.get("binary_data_output") is True:
        return True
    for out in request.get("outputs") or ():
        if isinstance(out, dict) and out.get("name") == name and isinstance(out.get("parameters"), dict):
            return out["parameters"].get("binary_data") is True
    return False


class OipRest:
    """Handlers of the REST half; `routes()` for the HTTP front."""

    def __init__(self, core: LearnerCore):
        self.core = core

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v2/health/live", self.live), web.get("/v2/health/ready", self.ready),
            web.get("/v2", self.server_metadata),
            web.get(_MODEL, self.metadata), web.get(_VERSION, self.metadata),
            web.get(_MODEL + "/ready", self.model_ready), web.get(_VERSION + "/ready", self.model_ready),
            web.post(_MODEL + "/infer", self.infer), web.post(_VERSION + "/infer", self.infer),
        ]

    def _live(self, request: web.Request):
        return self.core.model(request.match_info["name"], request.match_info.get("version", ""),
                               http_caller_org(request))

    async def live(self, request: web.Request) -> web.Response:
        return _json({"live": True})

    async def ready(self, request: web.Request) -> web.Response:
        return _json({"ready": True})

    async def server_metadata(self, request: web.Request) -> web.Response:
        return _json({"name": SERVER_NAME, "version": SERVER_VERSION, "extensions": ["binary_tensor_data"]})

    async def metadata(self, request: web.Request) -> web.Response:
        return _json(model_metadata(self._live(request)))

    async def model_ready(self, request: web.Request) -> web.Response:
        name, version = request.match_info["name"], request.match_info.get("version", "")
        ready = self.core.model_ready(name, version, http_caller_org(request))
        if not ready:
            self._live(request)  # NOT_FOUND for no such model (or another organization's); else not ready yet
            return _json({"name": name, "ready": False, "error": f"model {name!r} is not ready"}, status=400)
        return _json({"name": name, "ready": True})

    async def infer(self, request: web.Request) -> web.Response:
        live = self._live(request)
        raw_body = await request.read()
        body, binary = parse_infer_body(raw_body, request.headers.get(HEADER_LENGTH))
        datatype, shape, data, raw = input_tensor(body, binary, max_elements=len(raw_body))
        name, values = output_tensor(live, await self.core.infer(
            live, tensor_observations(live, datatype, shape, values=data, raw=raw)))
        response: dict = {"model_name": live.record.display_name, "model_version": str(live.record.version)}
        if isinstance(body.get("id"), str):
            response["id"] = body["id"]
        out: dict = {"name": name, "datatype": "FP64", "shape": list(values.shape)}
        response["outputs"] = [out]
        if not _wants_binary(body, name):
            out["data"] = values.reshape(-1).tolist()
            return _json(response)
        raw_out = values.astype("<f8").tobytes()
        out["parameters"] = {"binary_data_size": len(raw_out)}
        header = json.dumps(response, separators=(",", ":")).encode()
        return web.Response(body=header + raw_out, content_type="application/octet-stream",
                            headers={HEADER_LENGTH: str(len(header))})
