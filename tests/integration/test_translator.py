"""The Translator with real components: embedded PostgreSQL, Anvil and our Ledger, our Registry
(with a stand-in Trainer: the test plays the Trainer through SubmitTrainingResult), and the
conversion worker in `.venv-ml/`. Fixtures: tests/fixtures/translator.py.

Run: .venv/bin/python -m pytest tests/integration/test_translator.py -q -p tests.fixtures.translator
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid

import grpc
import pytest
from mlmesh.ledger.v1 import ledger_service_pb2 as ledger_pb
from mlmesh.translator.v1 import translator_service_pb2 as pb

from servers.common.grpc_errors import error_info
from tests.fixtures.translator import ML_PYTHON, REPO, create_model, ml_env, submit_result, upload_dataset


async def _download(stub, translation_id: str, offset: int = 0) -> bytes:
    request = pb.DownloadTranslationRequest(translation_id=translation_id, offset=offset)
    return b"".join([m.data async for m in stub.DownloadTranslation(request)])


async def _trained(registry_stub, csv_path, trained):
    dataset_id = await upload_dataset(registry_stub, csv_path.read_bytes())
    model = await create_model(registry_stub, dataset_id)
    return await submit_result(registry_stub, model, trained.artifact, trained.framework, trained.signature)


def _objects(settings) -> list[str]:
    root = settings.storage.root / "translations"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


async def test_translates_a_trained_model_and_anchors_it_on_the_ledger(
        translator_server, translator_registry, ledger_stub, trained_logreg, translator_digits_csv, tmp_path):
    stub, _, settings = translator_server
    registry_stub, _ = translator_registry
    model = await _trained(registry_stub, translator_digits_csv, trained_logreg)

    t = await stub.TranslateModel(pb.TranslateModelRequest(model_id=model.model_id))

    assert (t.model_id, t.framework, t.source_sha256) == (model.model_id, "sklearn", model.res_sha256)
    assert t.opset == 18 and t.converter.startswith("skl2onnx.convert_sklearn")
    p = t.parity
    assert p.passed and p.max_abs_diff <= p.atol and (p.atol, p.rtol) == (1e-5, 1e-3)
    assert p.samples == 256 and p.batch_source.startswith("dataset rows 1541..1796")
    assert p.top1_agreement >= 0.99
    assert 0.9 < p.source_accuracy <= 1 and abs(p.onnx_accuracy - p.source_accuracy) <= 0.01
    report = json.loads(t.report_json)
    assert report["schema"] == "mlmesh.translator.report/v1" and report["passed"]
    assert "path" not in report["onnx"]  # no paths of the removed work dir

    # The ONNX bytes: their hash is the one on the chain, with the source model's and the parity figures.
    onnx = await _download(stub, t.translation_id)
    assert len(onnx) == t.size_bytes
    assert hashlib.sha256(onnx).hexdigest() == t.sha256 and hashlib.md5(onnx).hexdigest() == t.md5
    chain = await ledger_stub.GetTranslationContract(ledger_pb.GetTranslationContractRequest(
        address=t.contract_address))
    assert chain.onnx_sha256 == hashlib.sha256(onnx).hexdigest() and chain.onnx_md5 == t.md5
    assert (chain.translation_id, chain.model_id) == (t.translation_id, model.model_id)
    assert (chain.model_contract, chain.source_sha256) == (model.contract_address, model.res_sha256)
    assert chain.parity_passed and chain.opset == 18 and chain.converter == t.converter
    assert float(chain.max_abs_diff) == p.max_abs_diff and float(chain.atol) == 1e-5
    assert await _download(stub, t.translation_id, offset=1000) == onnx[1000:]  # resume
    assert await _download(stub, t.translation_id, offset=len(onnx)) == b""

    # The downloaded file runs in onnxruntime on its own and keeps the source model's accuracy.
    path = tmp_path / "downloaded.onnx"
    path.write_bytes(onnx)
    check = tmp_path / "check.json"
    proc = subprocess.run(
        [ML_PYTHON, "-m", "servers.translator.worker", "--onnx-check", "--model", path, "--signature",
         model.input_signature, "--dataset", translator_digits_csv, "--rows=-256:", "--report", check],
        cwd=REPO, env=ml_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(check.read_text())["accuracy"]["onnx"] == pytest.approx(p.onnx_accuracy, abs=1e-9)

    # Get and List see the same translation; the work dir is gone.
    assert await stub.GetTranslation(pb.GetTranslationRequest(translation_id=t.translation_id)) == t
    listed = await stub.ListTranslations(pb.ListTranslationsRequest(model_id=model.model_id))
    assert [x.translation_id for x in listed.translations] == [t.translation_id] and not listed.next_page_token
    assert list(settings.work_dir.iterdir()) == []


async def test_second_translation_pages_newest_first(
        translator_server, translator_registry, trained_logreg, translator_digits_csv):
    stub, _, _ = translator_server
    registry_stub, _ = translator_registry
    model = await _trained(registry_stub, translator_digits_csv, trained_logreg)
    first = await stub.TranslateModel(pb.TranslateModelRequest(model_id=model.model_id))
    second = await stub.TranslateModel(pb.TranslateModelRequest(model_id=model.model_id, opset=17))

    assert second.opset == 17 and second.sha256 != first.sha256
    page1 = await stub.ListTranslations(pb.ListTranslationsRequest(page_size=1))
    page2 = await stub.ListTranslations(pb.ListTranslationsRequest(page_size=1, page_token=page1.next_page_token))
    assert [x.translation_id for x in page1.translations] == [second.translation_id]
    assert [x.translation_id for x in page2.translations] == [first.translation_id] and not page2.next_page_token
    other = await stub.ListTranslations(pb.ListTranslationsRequest(model_id=str(uuid.uuid4())))
    assert list(other.translations) == []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ListTranslations(pb.ListTranslationsRequest(model_id=str(uuid.uuid4()),
                                                               page_token=page1.next_page_token))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_untrained_model_is_refused(translator_server, translator_registry, translator_digits_csv):
    stub, _, settings = translator_server
    registry_stub, _ = translator_registry
    dataset_id = await upload_dataset(registry_stub, translator_digits_csv.read_bytes())
    model = await create_model(registry_stub, dataset_id)

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.TranslateModel(pb.TranslateModelRequest(model_id=model.model_id))

    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"Model {model.model_id} is PENDING, not TRAINED" in info.value.details()
    assert error_info(info.value).reason == "MODEL_NOT_TRAINED"
    assert list((await stub.ListTranslations(pb.ListTranslationsRequest())).translations) == []
    assert _objects(settings) == []


async def test_corrupt_model_artifact_is_refused_with_the_workers_reason(
        translator_server, translator_registry, trained_logreg, translator_digits_csv):
    stub, _, settings = translator_server
    registry_stub, _ = translator_registry
    dataset_id = await upload_dataset(registry_stub, translator_digits_csv.read_bytes())
    model = await create_model(registry_stub, dataset_id)
    garbage = os.urandom(4096)
    await submit_result(registry_stub, model, garbage, "sklearn", trained_logreg.signature)

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.TranslateModel(pb.TranslateModelRequest(model_id=model.model_id))

    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"model {model.model_id} cannot be translated: " in info.value.details()
    assert "not a pickled scikit-learn model" in info.value.details()
    assert "Traceback" not in info.value.details()
    assert error_info(info.value).reason == "MODEL_UNCONVERTIBLE"
    # nothing stored, nothing registered, nothing left in the work dir
    assert list((await stub.ListTranslations(pb.ListTranslationsRequest())).translations) == []
    assert _objects(settings) == []
    assert list(settings.work_dir.iterdir()) == []


async def test_artifact_of_another_framework_is_refused(translator_server, translator_registry, trained_logreg,
                                                        translator_digits_csv):
    stub, _, settings = translator_server
    registry_stub, _ = translator_registry
    dataset_id = await upload_dataset(registry_stub, translator_digits_csv.read_bytes())
    model = await create_model(registry_stub, dataset_id)
    # The Registry accepts only known frameworks; a scikit-learn pickle declared as PyTorch gets through it.
    await submit_result(registry_stub, model, trained_logreg.artifact, "pytorch", trained_logreg.signature)

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.TranslateModel(pb.TranslateModelRequest(model_id=model.model_id))

    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "TorchScript" in info.value.details(), info.value.details()
    assert _objects(settings) == []


async def test_tampered_onnx_fails_download_with_data_loss(
        translator_server, translator_registry, trained_logreg, translator_digits_csv):
    stub, _, settings = translator_server
    registry_stub, _ = translator_registry
    model = await _trained(registry_stub, translator_digits_csv, trained_logreg)
    t = await stub.TranslateModel(pb.TranslateModelRequest(model_id=model.model_id))
    path = settings.storage.root / "translations" / t.translation_id
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))

    for offset in (0, 100):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _download(stub, t.translation_id, offset)
        assert info.value.code() == grpc.StatusCode.DATA_LOSS
        assert "do not match the ledger" in info.value.details()
    path.unlink()
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _download(stub, t.translation_id)
    assert info.value.code() == grpc.StatusCode.DATA_LOSS


async def test_unknown_and_malformed_ids(translator_server):
    stub, _, _ = translator_server
    missing = str(uuid.uuid4())
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    cases = [
        (stub.GetTranslation(pb.GetTranslationRequest(translation_id=missing)), grpc.StatusCode.NOT_FOUND,
         "TRANSLATION_NOT_FOUND"),
        (stub.GetTranslation(pb.GetTranslationRequest(translation_id="nope")), invalid, "TRANSLATION_ID_MALFORMED"),
        (stub.GetTranslation(pb.GetTranslationRequest()), invalid, "TRANSLATION_ID_MISSING"),
        (stub.TranslateModel(pb.TranslateModelRequest(model_id=missing)), grpc.StatusCode.NOT_FOUND,
         "MODEL_NOT_FOUND"),
        (stub.TranslateModel(pb.TranslateModelRequest(model_id="../etc")), invalid, "MODEL_ID_MALFORMED"),
        (stub.TranslateModel(pb.TranslateModelRequest()), invalid, "MODEL_ID_MISSING"),
        (stub.TranslateModel(pb.TranslateModelRequest(model_id=missing, opset=3)), invalid, "OPSET_INVALID"),
        (stub.ListTranslations(pb.ListTranslationsRequest(page_token="garbage")), invalid, "PAGE_TOKEN_INVALID"),
        (stub.ListTranslations(pb.ListTranslationsRequest(model_id="x")), invalid, "MODEL_ID_MALFORMED"),
        # refused by the contract's field rules (servers.common.validation) before the servicer
        (stub.ListTranslations(pb.ListTranslationsRequest(page_size=-1)), invalid, "FIELD_TOO_SMALL"),
    ]
    for call, code, reason in cases:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call
        assert (info.value.code(), error_info(info.value).reason) == (code, reason), info.value.details()
    for translation_id, code in ((missing, grpc.StatusCode.NOT_FOUND), ("nope", invalid)):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await _download(stub, translation_id)
        assert info.value.code() == code
