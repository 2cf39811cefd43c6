"""The Registry's view of the Translator: reads a model's translations for its lineage, on behalf
of the user asking (the Translator decides what that organization may read)."""

from __future__ import annotations

import datetime as dt

from mlmesh.translator.v1 import translator_service_pb2 as tr_pb
from mlmesh.translator.v1 import translator_service_pb2_grpc as tr_grpc

from servers.common.peer import PeerClient
from servers.common.settings import TlsSettings
from servers.registry.domain.ports import TranslationInfo

PAGE_SIZE = 100
MAX_TRANSLATIONS = 1000  # per model; a lineage lists at most this many


def translation_from_proto(t: tr_pb.Translation) -> TranslationInfo:
    p = t.parity
    return TranslationInfo(
        translation_id=t.translation_id, model_id=t.model_id, framework=t.framework, source_sha256=t.source_sha256,
        converter=t.converter, opset=t.opset, size_bytes=t.size_bytes, md5=t.md5, sha256=t.sha256,
        parity={"max_abs_diff": p.max_abs_diff, "max_rel_diff": p.max_rel_diff, "atol": p.atol, "rtol": p.rtol,
                "passed": p.passed, "samples": p.samples, "top1_agreement": p.top1_agreement,
                "batch_source": p.batch_source},
        contract_address=t.contract_address, contract_tx_hash=t.contract_tx_hash,
        create_time=t.create_time.ToDatetime(tzinfo=dt.UTC) if t.HasField("create_time") else None,
    )


class TranslatorClient(PeerClient):
    """Implements the domain's Translations port."""

    def __init__(self, target: str, *, timeout: float = 30.0, tls: TlsSettings | None = None):
        super().__init__(target, "translator", tr_grpc.TranslatorServiceStub, timeout=timeout, tls=tls)

    async def list_translations(self, model_id: str, *, on_behalf_of: str | None) -> list[TranslationInfo]:
        found: list[TranslationInfo] = []
        token = ""
        while len(found) < MAX_TRANSLATIONS:
            request = tr_pb.ListTranslationsRequest(model_id=model_id, page_size=PAGE_SIZE, page_token=token)
            page = await self.call(self._stub.ListTranslations, request, on_behalf_of=on_behalf_of)
            found.extend(translation_from_proto(t) for t in page.translations)
            token = page.next_page_token
            if not token:
                break
        return sorted(found, key=lambda t: (t.create_time or dt.datetime.min.replace(tzinfo=dt.UTC),
                                            t.translation_id))
