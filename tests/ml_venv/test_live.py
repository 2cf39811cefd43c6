"""A live learner in-process (real scikit-learn backend, tabular transformer, Evidently monitor):
concurrent predictions are answered together, each with its own result or its own error."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from servers.common.errors import InvalidArgument
from servers.learner.ml.base import Obs

FEATURES = 6  # the make_live fixture's tabular learner


async def test_concurrent_predictions_share_model_calls_and_keep_their_own_errors(make_live):
    live = make_live()
    calls = []
    predict = live.backend.predict
    live.backend.predict = lambda X: calls.append(len(X)) or predict(X)  # counts calls into the real model
    rng = np.random.default_rng(1)
    rows = [rng.normal(size=FEATURES) for _ in range(40)]
    expected = [float(v) for v in predict(np.asarray(rows, dtype=np.float32))]

    async def one(i: int):
        if i % 10 == 3:
            return await live.predict([Obs(row=np.ones(FEATURES + 1))], "")
        return await live.predict([Obs(row=rows[i])], "")

    results = await asyncio.gather(*(one(i) for i in range(40)), return_exceptions=True)
    for i, result in enumerate(results):
        if i % 10 == 3:
            assert isinstance(result, InvalidArgument) and str(FEATURES) in result.message
        else:
            assert result.outputs[0].values[0] == pytest.approx(expected[i], rel=1e-5, abs=1e-5)
    assert sum(calls) == 36 and len(calls) < 36  # batched: fewer model calls than requests
    assert live.counters.predictions_served == 36
    assert live.monitor.window_size == 36
    live.close()


async def test_a_deleted_learner_answers_not_found(make_live):
    live = make_live()
    live.close()
    with pytest.raises(Exception) as info:
        await live.predict([Obs(row=np.zeros(FEATURES))], "")
    assert getattr(info.value, "reason", "") == "LEARNER_NOT_FOUND"


async def test_a_fast_idle_model_answers_on_the_event_loop_and_a_busy_one_on_its_thread(make_live):
    live = make_live()
    threads = []
    predict = live.backend.predict

    def spy(X):
        import threading

        threads.append(threading.current_thread().name)
        return predict(X)

    live.backend.predict = spy
    row = [Obs(row=np.zeros(FEATURES))]
    await live.predict(row, "")  # first call: not measured yet, goes to the worker thread
    await live.predict(row, "")  # measured fast, worker idle: on the event loop
    learning = asyncio.ensure_future(live.learn([Obs(row=np.ones(FEATURES), target=1.0)] * 64, False,
                                                lambda: None))
    await asyncio.sleep(0)  # the learning step is now on the worker thread
    await live.predict(row, "")  # so this prediction waits its turn there
    await learning
    assert threads[0].startswith("ThreadPoolExecutor") and threads[1] == "MainThread"
    assert threads.count("MainThread") == 1  # the prediction during learning did not run on the loop
    live.close()


def _count_model_calls(live):
    """(rows of each call into the real model, the real predict): a spy on the learner's backend."""
    calls: list[int] = []
    predict = live.backend.predict
    live.backend.predict = lambda X: calls.append(len(X)) or predict(X)
    return calls, predict


async def test_batching_off_answers_each_request_with_its_own_model_call(make_live):
    from servers.learner.domain.live import PredictBatching

    live = make_live()
    live.batching = PredictBatching(enabled=False)
    calls, predict = _count_model_calls(live)
    rows = np.random.default_rng(2).normal(size=(20, FEATURES))
    results = await asyncio.gather(*(live.predict([Obs(row=row)], "") for row in rows))
    assert calls == [1] * 20
    assert [r.outputs[0].values[0] for r in results] == pytest.approx([float(v) for v in predict(
        rows.astype(np.float32))], rel=1e-5, abs=1e-5)
    assert live.counters.predictions_served == 20 and live.monitor.window_size == 20
    live.close()


async def test_a_batch_holds_at_most_max_size_requests_and_max_delay_gathers_later_ones(make_live):
    from servers.learner.domain.live import PredictBatching

    live = make_live()
    calls, predict = _count_model_calls(live)
    row = [Obs(row=np.zeros(FEATURES))]
    live.batching = PredictBatching(max_size=4)
    await asyncio.gather(*(live.predict(row, "") for _ in range(10)))
    assert sum(calls) == 10 and max(calls) <= 4 and len(calls) >= 3

    calls.clear()
    live.batching = PredictBatching(max_delay=0.2)
    first = asyncio.ensure_future(live.predict(row, ""))
    await asyncio.sleep(0.02)  # several turns of the loop later, within the delay: still one batch
    second = asyncio.ensure_future(live.predict(row, ""))
    await asyncio.gather(first, second)
    assert calls == [2]
    assert live.counters.predictions_served == 12
    live.close()


async def test_after_a_batch_of_one_lone_requests_skip_the_wait_then_batch_again(make_live):
    from servers.learner.domain import live as live_module

    live = make_live()
    calls, predict = _count_model_calls(live)
    row = [Obs(row=np.zeros(FEATURES))]
    for _ in range(3):
        await live.predict(row, "")  # one at a time: batches of one
    await asyncio.gather(*(live.predict(row, "") for _ in range(live_module.PROBE_EVERY + 8)))
    # The lone-request streak answers PROBE_EVERY requests one by one, then the rest batch again.
    assert calls[:3] == [1, 1, 1] and max(calls) > 1
    assert sum(calls) == 3 + live_module.PROBE_EVERY + 8
    live.close()
