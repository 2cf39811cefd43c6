"""The Learner's Captum explainer on real, trained models.

The seed's Figures 4-5 (D3.4 2.1.3.1): explaining a UC10-style forecaster (36 past power samples ->
the value a day ahead) attributes the prediction mostly to the most recent samples. Here a small GRU
is trained on the synthetic consumption series of examples/make_power_csv.py and the property is
measured over a dozen inputs spread across the series. Measured when this test was written (torch 2.13
CPU): the last 6 lags carry on average 0.97 of the absolute attribution (their share of positions is
1/6 = 0.17) and lag_1 is the largest attribution for every input; the asserted criterion is a mean
share above 0.6 and lag_1 the largest for at least 3/4 of the inputs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from servers.common.errors import InvalidArgument
from servers.learner.ml.explain import DEEPLIFT, INTEGRATED_GRADIENTS, default_method, explain

ROOT = Path(__file__).resolve().parents[2]
WINDOW, HORIZON = 36, 96
NAMES = [f"lag_{k}" for k in range(WINDOW, 0, -1)]


def _make_power_csv():
    spec = importlib.util.spec_from_file_location("make_power_csv", ROOT / "examples" / "make_power_csv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class GRUForecaster(nn.Module):
    def __init__(self, hidden: int = 16):
        super().__init__()
        self.gru = nn.GRU(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (n, 36) -> (n,)
        out, _ = self.gru(x.unsqueeze(-1))
        return self.head(out[:, -1, :]).squeeze(-1)


def _fit(model: nn.Module, X: np.ndarray, y: np.ndarray, epochs: int, lr: float) -> float:
    torch.manual_seed(0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(Xt), generator=order)
        for start in range(0, len(Xt), 128):
            batch = perm[start:start + 128]
            loss = ((model(Xt[batch]).reshape(-1) - yt[batch]) ** 2).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        return float(((model(Xt).reshape(-1) - yt) ** 2).mean())


@pytest.fixture(scope="module")
def windows():
    series = _make_power_csv().consumption(15, seed=0)  # 15 days at 15 minutes, like the seed's UC10 data
    scaled = ((series - series.min()) / (series.max() - series.min())).astype(np.float32)
    starts = np.arange(len(scaled) - WINDOW - HORIZON + 1)
    X = np.stack([scaled[s:s + WINDOW] for s in starts])
    y = scaled[starts + WINDOW - 1 + HORIZON]
    return X, y


@pytest.fixture(scope="module")
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def gru(windows, threads):
    X, y = windows
    torch.manual_seed(0)
    model = GRUForecaster()
    mse = _fit(model, X, y, epochs=10, lr=0.01)
    assert mse < 0.5 * float(y.var()), (mse, float(y.var()))  # it learned the daily shape
    return model


@pytest.fixture(scope="module")
def mlp(windows, threads):
    X, y = windows
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(WINDOW, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))
    mse = _fit(model, X, y, epochs=10, lr=0.01)
    assert mse < 0.5 * float(y.var()), (mse, float(y.var()))
    return model


def _inputs(X: np.ndarray, count: int = 12) -> list[np.ndarray]:
    return [X[i] for i in np.linspace(0, len(X) - 1, count).astype(int)]


def test_gru_forecaster_attributes_most_to_the_most_recent_lags(gru, windows):
    X, _ = windows
    shares, top = [], []
    for x in _inputs(X):
        result = explain(gru, x, NAMES)
        assert result.method == INTEGRATED_GRADIENTS  # the default for a recurrent model
        magnitude = np.abs(result.attributions)
        shares.append(magnitude[-6:].sum() / magnitude.sum())
        top.append(NAMES[int(magnitude.argmax())])
    assert np.mean(shares) > 0.6, shares  # vs 6/36 = 0.17 if attributions were spread evenly
    assert top.count("lag_1") >= 0.75 * len(top), top


def test_integrated_gradients_converges(gru, windows):
    X, _ = windows
    for x in _inputs(X, 6):
        result = explain(gru, x, NAMES, method=INTEGRATED_GRADIENTS, steps=50)
        gap = abs(result.prediction - result.baseline_prediction)
        assert gap > 0.05
        assert abs(result.convergence_delta) < 1e-3 * gap, (result.convergence_delta, gap)
        # the delta is the real integration error: sum of attributions vs the output difference
        assert result.attributions.sum() - (result.prediction - result.baseline_prediction) == pytest.approx(
            result.convergence_delta, abs=1e-5)
        with torch.no_grad():
            assert result.prediction == pytest.approx(float(gru(torch.from_numpy(x)[None])[0]), abs=1e-6)
            assert result.baseline_prediction == pytest.approx(float(gru(torch.zeros(1, WINDOW))[0]), abs=1e-6)
    coarse = explain(gru, X[500], NAMES, method=INTEGRATED_GRADIENTS, steps=1)
    fine = explain(gru, X[500], NAMES, method=INTEGRATED_GRADIENTS, steps=50)
    assert abs(coarse.convergence_delta) > 10 * abs(fine.convergence_delta)


def test_deeplift_on_a_feed_forward_network_is_complete(mlp, windows):
    X, _ = windows
    assert default_method(mlp) == (DEEPLIFT, "")
    for x in _inputs(X, 6):
        result = explain(mlp, x, NAMES)
        assert result.method == DEEPLIFT and result.note == ""
        # DeepLift's rescale rule on a ReLU network: the attributions sum to the output difference
        assert result.attributions.sum() == pytest.approx(result.prediction - result.baseline_prediction, abs=1e-5)
        assert abs(result.convergence_delta) < 1e-5
    # and it is not integrated gradients under another name
    ig = explain(mlp, X[300], NAMES, method=INTEGRATED_GRADIENTS)
    dl = explain(mlp, X[300], NAMES, method=DEEPLIFT)
    assert not np.allclose(ig.attributions, dl.attributions, atol=1e-6)


def test_deeplift_on_the_gru_falls_back_to_integrated_gradients_with_a_note(gru, windows):
    X, _ = windows
    assert default_method(gru)[0] == INTEGRATED_GRADIENTS
    result = explain(gru, X[100], NAMES, method=DEEPLIFT)
    assert result.method == INTEGRATED_GRADIENTS
    assert "deeplift was requested" in result.note and "GRU" in result.note
    expected = explain(gru, X[100], NAMES, method=INTEGRATED_GRADIENTS)
    np.testing.assert_array_equal(result.attributions, expected.attributions)  # deterministic
    assert expected.note == ""  # asked for and used: nothing to explain


def test_torchscript_module_is_explained_with_integrated_gradients(gru, windows):
    X, _ = windows
    traced = torch.jit.trace(gru.eval(), torch.from_numpy(X[:2]))
    method, note = default_method(traced)
    assert method == INTEGRATED_GRADIENTS and "TorchScript" in note
    result = explain(traced, X[700], NAMES)
    assert result.method == INTEGRATED_GRADIENTS and "TorchScript" in result.note
    eager = explain(gru, X[700], NAMES, method=INTEGRATED_GRADIENTS)
    np.testing.assert_allclose(result.attributions, eager.attributions, atol=1e-5)
    assert "deeplift was requested" in explain(traced, X[700], NAMES, method=DEEPLIFT).note


def test_classifier_explains_the_predicted_or_requested_class(threads):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    model.train()
    x = np.array([0.5, -1.0, 2.0, 0.1], dtype=np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)[None])[0]
    names = ["a", "b", "c", "d"]
    result = explain(model, x, names, classification=True)
    assert result.prediction == pytest.approx(float(logits.max()), abs=1e-6)
    assert model.training  # the caller's mode is restored
    other = int(logits.argmin())
    chosen = explain(model, x, names, method=INTEGRATED_GRADIENTS, target_class=other, classification=True)
    assert chosen.prediction == pytest.approx(float(logits[other]), abs=1e-6)
    # IG on a ReLU network's kinks is approximate (measured 3e-4 here); the delta says by how much
    gap = chosen.prediction - chosen.baseline_prediction
    assert chosen.attributions.sum() == pytest.approx(gap, abs=0.02 * abs(gap))
    assert chosen.attributions.sum() - gap == pytest.approx(chosen.convergence_delta, abs=1e-5)
    with pytest.raises(InvalidArgument, match=r"target_class must be a class index in 0\.\.2, got 3"):
        explain(model, x, names, target_class=3, classification=True)


def test_bad_requests_are_invalid_arguments(mlp, windows):
    X, _ = windows
    with pytest.raises(InvalidArgument, match="integrated_gradients, deeplift.*'shap'"):
        explain(mlp, X[0], NAMES, method="shap")
    for steps in (0, 1001):
        with pytest.raises(InvalidArgument, match=r"steps must be an integer in 1\.\.1000"):
            explain(mlp, X[0], NAMES, method=INTEGRATED_GRADIENTS, steps=steps)
    with pytest.raises(InvalidArgument, match="35 values but the model has 36 features"):
        explain(mlp, X[0][:35], NAMES)
    bad = X[0].copy()
    bad[-1] = np.nan
    with pytest.raises(InvalidArgument, match="'lag_1'"):
        explain(mlp, bad, NAMES)
    with pytest.raises(InvalidArgument, match="classification only"):
        explain(mlp, X[0], NAMES, target_class=0)
