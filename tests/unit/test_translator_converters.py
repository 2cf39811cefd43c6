"""Translator converters round-trip."""

import datetime as dt

from servers.translator.api import converters as conv
from servers.translator.domain.translations import Parity, Translation, object_key


def _translation() -> Translation:
    tid = "7d066d58-06de-47ab-a2f6-c8f413e21947"
    return Translation(
        translation_id=tid, model_id="6d066d58-06de-47ab-a2f6-c8f413e21947", framework="pytorch",
        source_sha256="a" * 64, converter="torch.onnx.export", opset=18, size_bytes=2_669_570, md5="b" * 32,
        sha256="c" * 64,
        parity=Parity(max_abs_diff=3.58e-07, max_rel_diff=3.98e-06, atol=1e-05, rtol=1e-03, passed=True,
                      batch_source="dataset rows 1541..1796", samples=256, top1_agreement=1.0,
                      source_accuracy=0.9889, onnx_accuracy=0.9889),
        report_json='{"schema": "mlmesh.translator.report/v1"}', object_key=object_key(tid),
        contract_address="0x3bF158d8ef192f99D976301542C5ceA184ceBF38", contract_tx_hash="0x" + "1" * 64,
        create_time=dt.datetime(2026, 11, 30, 2, 54, 51, 123000, tzinfo=dt.UTC),
    )


def test_translation_round_trip():
    t = _translation()
    assert conv.translation_from_proto(conv.translation_to_proto(t)) == t


def test_parity_round_trip_keeps_unknown_accuracy():
    p = Parity(max_abs_diff=0.0, max_rel_diff=0.0, atol=1e-5, rtol=1e-3, passed=False)
    assert conv.parity_from_proto(conv.parity_to_proto(p)) == p
    assert conv.parity_to_proto(p).source_accuracy == -1
