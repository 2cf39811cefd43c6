"""Proto <-> domain for the Translator: pure function pairs, nothing else."""

from __future__ import annotations

from mlmesh.translator.v1 import translator_service_pb2 as pb

from servers.common.timestamps import timestamp_from_proto, timestamp_to_proto
from servers.translator.domain.translations import Page, Parity, Translation, object_key


def parity_to_proto(p: Parity) -> pb.ParityReport:
    return pb.ParityReport(
        max_abs_diff=p.max_abs_diff, max_rel_diff=p.max_rel_diff, atol=p.atol, rtol=p.rtol, passed=p.passed,
        batch_source=p.batch_source, samples=p.samples, top1_agreement=p.top1_agreement,
        source_accuracy=p.source_accuracy, onnx_accuracy=p.onnx_accuracy)


def parity_from_proto(m: pb.ParityReport) -> Parity:
    return Parity(
        max_abs_diff=m.max_abs_diff, max_rel_diff=m.max_rel_diff, atol=m.atol, rtol=m.rtol, passed=m.passed,
        batch_source=m.batch_source, samples=m.samples, top1_agreement=m.top1_agreement,
        source_accuracy=m.source_accuracy, onnx_accuracy=m.onnx_accuracy)


def translation_to_proto(t: Translation) -> pb.Translation:
    return pb.Translation(
        translation_id=t.translation_id, model_id=t.model_id, framework=t.framework, source_sha256=t.source_sha256,
        converter=t.converter, opset=t.opset, size_bytes=t.size_bytes, md5=t.md5, sha256=t.sha256,
        parity=parity_to_proto(t.parity), report_json=t.report_json, contract_address=t.contract_address,
        contract_tx_hash=t.contract_tx_hash, create_time=timestamp_to_proto(t.create_time))


def translation_from_proto(m: pb.Translation) -> Translation:
    """The inverse of `translation_to_proto` (the object key is not on the wire: it is derived)."""
    return Translation(
        translation_id=m.translation_id, model_id=m.model_id, framework=m.framework, source_sha256=m.source_sha256,
        converter=m.converter, opset=m.opset, size_bytes=m.size_bytes, md5=m.md5, sha256=m.sha256,
        parity=parity_from_proto(m.parity), report_json=m.report_json, object_key=object_key(m.translation_id),
        contract_address=m.contract_address, contract_tx_hash=m.contract_tx_hash,
        create_time=timestamp_from_proto(m.create_time))


def page_to_proto(page: Page) -> pb.ListTranslationsResponse:
    return pb.ListTranslationsResponse(translations=[translation_to_proto(t) for t in page.items],
                                       next_page_token=page.next_page_token)
