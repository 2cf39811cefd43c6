"""The Registry's HTTP front (servers.common.http): the seed's own clients, verbatim (seed 4.3, 7.1,
7.2.2). Envoy routes multipart `POST /dataset` and `POST /model(/)` here (its gRPC-JSON transcoder
cannot turn a multipart form into the UploadDataset / CreateModel streams), and the seed's read-only
`GET /contract/{address}`. Like the gRPC servicer it converts and delegates to DatasetCore and
ModelCore; the file part streams into the core as it arrives (aiohttp's multipart reader), never
buffered whole.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, MultipartReader, web
from google.protobuf import json_format

from servers.common import errors
from servers.common.http import http_caller_org
from servers.registry.api import converters as conv
from servers.registry.api import forms
from servers.registry.domain.datasets import DatasetCore
from servers.registry.domain.models import ModelCore

CHUNK_BYTES = 1 << 20
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _bad(message: str, reason: str) -> errors.InvalidArgument:
    return errors.InvalidArgument(message, reason=reason)


def _proto_json(message) -> dict:
    """The same JSON the transcoded routes answer (snake_case names, defaults printed)."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


class _Form:
    """A multipart/form-data body read part by part as it arrives."""

    def __init__(self, reader: MultipartReader, file_names: tuple[str, ...], text_names: tuple[str, ...], usage: str):
        self.reader, self.file_names, self.text_names, self.usage = reader, file_names, text_names, usage
        self.texts: dict[str, bytes] = {}
        self.file: BodyPartReader | None = None

    @classmethod
    async def open(cls, request: web.Request, file_names: tuple[str, ...], text_names: tuple[str, ...],
                   usage: str) -> _Form:
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise _bad(f"expected a multipart/form-data body, got content-type {content_type[:80]!r}; {usage}",
                       "NOT_MULTIPART")
        try:
            reader = await request.multipart()
            reader._get_boundary()  # noqa: SLF001 - aiohttp checks the boundary lazily; fail before reading
        except (ValueError, KeyError, AssertionError):
            raise _bad("the multipart body has no valid boundary (content-type: multipart/form-data; "
                       "boundary=...); curl's --form sets it", "MULTIPART_BOUNDARY") from None
        return cls(reader, file_names, text_names, usage)

    async def _next(self) -> BodyPartReader | None:
        try:
            part = await self.reader.next()
        except (ValueError, AssertionError, RuntimeError) as exc:
            raise _bad(f"the multipart body is malformed: {str(exc)[:120]}", "MULTIPART_MALFORMED") from None
        if part is not None and not isinstance(part, BodyPartReader):
            raise _bad("nested multipart parts are not accepted", "MULTIPART_MALFORMED")
        return part

    async def _text(self, part: BodyPartReader, name: str) -> None:
        if name in self.texts:
            raise _bad(f"the form has two {name!r} parts; send one", "MULTIPART_DUPLICATE_PART")
        data = bytearray()
        while chunk := await self._chunk(part):
            data += chunk
            if len(data) > forms.MAX_METADATA_BYTES:
                raise _bad(f"the {name!r} part is larger than {forms.MAX_METADATA_BYTES} bytes",
                           "METADATA_TOO_LARGE")
        self.texts[name] = bytes(data)

    async def _chunk(self, part: BodyPartReader) -> bytes:
        try:
            return await part.read_chunk(CHUNK_BYTES)
        except (ValueError, AssertionError) as exc:
            raise _bad(f"the multipart body is malformed: {str(exc)[:120]}", "MULTIPART_MALFORMED") from None

    async def _accept(self, part: BodyPartReader) -> bool:
        """Reads a text part, or takes the file part; True for the file part."""
        name = part.name or ""
        if part.filename is not None or name in self.file_names:
            if name not in self.file_names:
                raise _bad(f"unexpected file part {name!r}; {self.usage}", "MULTIPART_UNKNOWN_PART")
            if self.file is not None:
                raise _bad(f"the form has two file parts ({self.file.name!r} and {name!r}); send one file; "
                           "nothing was stored", "MULTIPART_TWO_FILES")
            self.file = part
            return True
        if name not in self.text_names:
            raise _bad(f"unexpected form part {name[:64]!r}; {self.usage}", "MULTIPART_UNKNOWN_PART")
        await self._text(part, name)
        return False

    async def until_file(self) -> BodyPartReader | None:
        """Reads text parts until the file part (returned) or the end (None)."""
        while (part := await self._next()) is not None:
            if await self._accept(part):
                return part
        return None

    async def rest(self) -> None:
        """Reads the parts after the file: text parts only (a second file part is refused)."""
        while (part := await self._next()) is not None:
            await self._accept(part)

    async def file_chunks(self, part: BodyPartReader) -> AsyncIterator[bytes]:
        """The file part's bytes as they arrive, then the rest of the form: the core commits nothing
        until the whole form has been read and found well-formed."""
        while chunk := await self._chunk(part):
            yield chunk
        await self.rest()


class RegistryHttp:
    """Handlers of the Registry's HTTP front."""

    def __init__(self, datasets: DatasetCore, models: ModelCore):
        self.datasets, self.models = datasets, models

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/dataset", self.upload_dataset), web.post("/model", self.create_model),
                web.post("/model/", self.create_model), web.get("/contract/{address}", self.contract)]

    async def upload_dataset(self, request: web.Request) -> web.Response:
        caller = http_caller_org(request)
        usage = f"send --form dataset=@FILE --form 'metadata={forms.DATASET_EXAMPLE}'"
        form = await _Form.open(request, ("dataset",), ("metadata",), usage)
        part = await form.until_file()
        if part is None:
            raise _bad(f"the form has no file part; {usage}", "MULTIPART_NO_FILE")
        filename = part.filename or ""
        content_type = part.headers.get("content-type", "")

        def metadata():
            meta = forms.DatasetForm()
            if "metadata" in form.texts:
                meta = forms.parse_metadata(form.texts["metadata"], forms.DatasetForm, forms.DATASET_EXAMPLE)
            return forms.upload_metadata_from_form(meta, filename=filename, content_type=content_type)

        if "metadata" in form.texts:  # metadata first: checked before a byte is stored
            record = await self.datasets.upload(metadata(), form.file_chunks(part), caller_org=caller)
        else:  # the seed's order, file first: stored pending, then checked, discarded if refused
            async def describe():
                return metadata()

            record = await self.datasets.upload_described_after(form.file_chunks(part), describe, caller_org=caller)
        return web.json_response(_proto_json(conv.dataset_to_proto(record)))

    async def create_model(self, request: web.Request) -> web.Response:
        caller = http_caller_org(request)
        usage = (f"send --form 'metadata={forms.MODEL_EXAMPLE}' and --form train_image=<image reference> "
                 "(or --form recipe=@recipe.tar.gz)")
        form = await _Form.open(request, ("recipe",), ("metadata", "train_image"), usage)
        part = await form.until_file()

        def metadata() -> forms.ModelForm:
            if "metadata" not in form.texts:
                raise _bad(f"the form has no metadata part; {usage}", "METADATA_MISSING")
            return forms.parse_metadata(form.texts["metadata"], forms.ModelForm, forms.MODEL_EXAMPLE)

        if part is None:
            image = form.texts.get("train_image", b"").decode("utf-8", "replace").strip()
            if not image:
                raise _bad(f"the form has neither a train_image nor a recipe file; {usage}", "TRAINING_SOURCE_MISSING")
            record = await self.models.create(forms.create_model_from_form(metadata(), train_image=image),
                                              _no_bytes(), caller_org=caller)
        else:
            if "metadata" not in form.texts:
                raise _bad("put the metadata part before the recipe file (--form 'metadata=…' first)",
                           "METADATA_AFTER_RECIPE")
            if "train_image" in form.texts:
                raise _bad("give a recipe file or a train_image, not both", "TRAINING_SOURCE_AMBIGUOUS")
            create = forms.create_model_from_form(metadata(), recipe_filename=part.filename or "")
            record = await self.models.create(create, form.file_chunks(part), caller_org=caller)
        return web.json_response(_proto_json(conv.model_to_proto(record)))

    async def contract(self, request: web.Request) -> web.Response:
        """The seed's read of a dataset's or a model's contract: only for an asset the caller may read;
        any other address (unknown, another kind of contract, a stranger's asset) is NOT_FOUND alike."""
        address = request.match_info["address"]
        if not _ADDRESS.match(address):
            raise _bad(f"a contract address is 0x and 40 hex digits, got {address[:64]!r}", "CONTRACT_ADDRESS_MALFORMED")
        caller = http_caller_org(request)
        dataset = await self.datasets.by_contract(address, caller_org=caller)
        if dataset is not None:
            return web.json_response(forms.dataset_contract_json(dataset[1]))
        model = await self.models.by_contract(address, caller_org=caller)
        if model is not None:
            return web.json_response(forms.model_contract_json(model[1]))
        raise errors.NotFound(f"no dataset or model contract at {address} that you can read",
                              reason="CONTRACT_NOT_FOUND", metadata={"address": address})


async def _no_bytes() -> AsyncIterator[bytes]:
    return
    yield b""  # noqa: RET505 - an empty async generator
