"""How the Translator answers when its own machinery fails: the worker crashes, hangs past its
time limit or is missing, or the ledger is down after the ONNX file is stored. Real Registry,
Ledger and PostgreSQL (tests/fixtures/translator.py); the worker is replaced by small scripts
where the failure must be forced. Nothing may be left half-registered, and no client sees
INTERNAL, UNKNOWN or a traceback."""

from __future__ import annotations

import time

import grpc
import pytest
from mlmesh.translator.v1 import translator_service_pb2 as pb

from servers.common.grpc_errors import error_info
from servers.devstack.procs import free_port
from tests.fixtures.translator import create_model, submit_result, upload_dataset


@pytest.fixture
async def trained_model(translator_registry, trained_logreg, translator_digits_csv):
    registry_stub, _ = translator_registry
    dataset_id = await upload_dataset(registry_stub, translator_digits_csv.read_bytes())
    model = await create_model(registry_stub, dataset_id)
    return await submit_result(registry_stub, model, trained_logreg.artifact, trained_logreg.framework,
                               trained_logreg.signature)


def _script(tmp_path, name: str, body: str):
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


async def _refused(stub, model_id: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.TranslateModel(pb.TranslateModelRequest(model_id=model_id))
    assert "Traceback" not in info.value.details()
    return info.value


def _nothing_registered(settings) -> None:
    root = settings.storage.root / "translations"
    assert not root.exists() or list(root.iterdir()) == []
    assert list(settings.work_dir.iterdir()) == []


async def test_crashing_worker_is_failed_precondition(translator_factory, trained_model, tmp_path):
    crash = _script(tmp_path, "crash", 'echo "Traceback (most recent call last):" >&2\n'
                                       'echo "ZeroDivisionError: division by zero" >&2\nexit 1')
    stub, _, settings = await translator_factory(ml_python=crash)

    err = await _refused(stub, trained_model.model_id)

    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "exit status 1" in err.details() and "ZeroDivisionError: division by zero" in err.details()
    assert error_info(err).reason == "WORKER_FAILED"
    assert list((await stub.ListTranslations(pb.ListTranslationsRequest())).translations) == []
    _nothing_registered(settings)


async def test_worker_past_its_time_limit_is_killed(translator_factory, trained_model, tmp_path):
    hang = _script(tmp_path, "hang", "exec sleep 60")
    stub, _, settings = await translator_factory(ml_python=hang, worker_time_limit_seconds=1)

    started = time.monotonic()
    err = await _refused(stub, trained_model.model_id)

    assert time.monotonic() - started < 10
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "stopped after 1 s" in err.details() and error_info(err).reason == "TRANSLATION_TIMEOUT"
    _nothing_registered(settings)


async def test_missing_ml_environment_is_unavailable(translator_factory, trained_model, tmp_path):
    stub, _, settings = await translator_factory(ml_python=tmp_path / "no-such-python")

    err = await _refused(stub, trained_model.model_id)

    assert err.code() == grpc.StatusCode.UNAVAILABLE and "make ml-venv" in err.details()
    _nothing_registered(settings)


async def test_ledger_down_after_conversion_leaves_nothing_behind(translator_factory, trained_model):
    stub, _, settings = await translator_factory(ledger_target=f"127.0.0.1:{free_port()}",
                                                 ledger_deploy_timeout_seconds=5)

    err = await _refused(stub, trained_model.model_id)

    assert err.code() == grpc.StatusCode.UNAVAILABLE and "ledger" in err.details()
    assert list((await stub.ListTranslations(pb.ListTranslationsRequest())).translations) == []
    _nothing_registered(settings)  # the ONNX file was stored, then removed when the deploy failed
