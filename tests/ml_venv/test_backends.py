"""The five online-learning backends with their real libraries on small synthetic streams: they learn,
answer before learning, measure loss without learning, survive save -> load (same predictions, and
the loaded model goes on learning as the original would), and refuse bad params, bad shapes and
starting models they cannot keep learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from servers.common.errors import FailedPrecondition, InvalidArgument
from servers.learner.ml.backends import BACKENDS, backend_class, load_backend, make_backend

torch.set_num_threads(1)

SHAPE = (5,)
W = np.array([1.0, -2.0, 0.5, 0.0, 1.5], dtype=np.float32) / 2
K = 3
BATCHES, BATCH = 30, 32

#: Params per backend (regression, classification): small and quick, the defaults otherwise.
PARAMS = {
    "sklearn": ({"random_state": 0}, {"random_state": 0}),  # partial_fit shuffles each batch
    "river": ({"lr": 0.1}, {}),  # learn_many: one step per micro-batch
    "vowpalwabbit": ({}, {}),
    "pytorch": ({"lr": 0.02, "epochs_per_batch": 3}, {"lr": 0.02, "epochs_per_batch": 3}),
    "tensorflow": ({"lr": 0.02, "epochs_per_batch": 3, "threads": 1}, {"lr": 0.02, "epochs_per_batch": 3}),
}
NAMES = list(PARAMS)


def regression_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, *SHAPE)).astype(np.float32)
    y = (X @ W + 0.3 + 0.05 * rng.normal(size=n)).astype(np.float32)
    return X, y


def classification_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three classes: the largest of the first three features."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, *SHAPE)).astype(np.float32)
    return X, np.argmax(X[:, :K], axis=1).astype(np.float32)


def stream(data, n_batches: int = BATCHES, seed: int = 1):
    X, y = data(n_batches * BATCH, seed)
    for i in range(n_batches):
        yield X[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]


def make(name: str, task: str):
    params = PARAMS[name][0 if task == "regression" else 1]
    return make_backend(name, task, dict(params), SHAPE, K if task == "classification" else None)


@pytest.mark.parametrize("name", NAMES)
def test_fresh_model_answers_zeros_and_uniform_probabilities(name):
    X, _ = regression_data(4, 0)
    assert np.allclose(make(name, "regression").predict(X), 0.0, atol=1e-6)
    p = make(name, "classification").predict(X)
    assert p.shape == (4, K) and p.dtype == np.float32
    assert np.allclose(p, 1.0 / K, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_learns_a_linear_regression(name):
    backend = make(name, "regression")
    X_test, y_test = regression_data(300, 99)
    start = backend.loss(X_test, y_test).mean()
    for X, y in stream(regression_data):
        before = backend.predict(X)
        loss = backend.loss(X, y)
        assert loss.shape == (BATCH,) and loss.dtype == np.float64
        assert np.array_equal(backend.predict(X), before), "loss() must not learn"
        backend.learn(X, y)
    end = backend.loss(X_test, y_test).mean()
    assert end < 0.25 * start, (name, start, end)
    assert backend.predict(X_test).shape == (300,) and backend.predict(X_test).dtype == np.float32


@pytest.mark.parametrize("name", NAMES)
def test_learns_a_three_class_classification(name):
    backend = make(name, "classification")
    X_test, y_test = classification_data(300, 99)
    start = backend.loss(X_test, y_test).mean()
    for X, y in stream(classification_data, n_batches=40):
        backend.learn(X, y)
    p = backend.predict(X_test)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-4)
    accuracy = float(np.mean(p.argmax(axis=1) == y_test))
    assert accuracy > 0.6, (name, accuracy)  # chance is 1/3
    assert backend.loss(X_test, y_test).mean() < start


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("name", NAMES)
def test_save_load_predicts_the_same_and_keeps_learning(name, task, tmp_path):
    data = regression_data if task == "regression" else classification_data
    backend = make(name, task)
    batches = list(stream(data, n_batches=8))
    for X, y in batches[:5]:
        backend.learn(X, y)
    path = tmp_path / backend.artifact_name
    backend.save(path)
    params = PARAMS[name][0 if task == "regression" else 1]
    loaded = load_backend(name, path, task, dict(params), SHAPE, K if task == "classification" else None)
    assert type(loaded) is BACKENDS[name] and loaded.framework == name
    X_test, y_test = data(100, 99)
    np.testing.assert_allclose(loaded.predict(X_test), backend.predict(X_test), atol=1e-5)
    # the loaded model resumes: the same batches move both models the same way (optimizer state kept)
    before = loaded.predict(X_test)
    for X, y in batches[5:]:
        backend.learn(X, y)
        loaded.learn(X, y)
    assert not np.allclose(loaded.predict(X_test), before, atol=1e-6), "the loaded model did not learn"
    # VW's one-against-all keeps the weights and adaptive sums across --save_resume but not all of its
    # normalisation state (--normalized, on by default): the resumed model drifts a little
    atol = 0.03 if (name, task) == ("vowpalwabbit", "classification") else 1e-4
    np.testing.assert_allclose(loaded.predict(X_test), backend.predict(X_test), atol=atol)


BAD_PARAMS = {
    "sklearn": [({"estimator": "SGDRegressor", "alpah": 0.1}, "alpah"), ({"estimator": "Ridge"}, "estimator"),
                ({"alpha": -1.0}, "alpha")],
    "river": [({"modle": "LinearRegression"}, "modle"), ({"model": "Nope"}, "model"),
              ({"model": "HoeffdingTreeRegressor", "lr": 0.1}, "lr")],
    "vowpalwabbit": [({"argz": ""}, "argz"), ({"args": "-l 0.1 -f /tmp/x.vw"}, "-f"),
                     ({"args": "--cache_file=/tmp/c"}, "--cache_file"), ({"args": "--no_such_option"}, "no_such_option")],
    "pytorch": [({"hiden_size": 8}, "hiden_size"), ({"architecture": "transformer"}, "architecture"),
                ({"lr": -1}, "lr"), ({"freeze": ["nope."]}, "freeze")],
    "tensorflow": [({"hiden_size": 8}, "hiden_size"), ({"optimizer": "adagrad"}, "optimizer"),
                   ({"freeze": ["nope"]}, "freeze")],
}


@pytest.mark.parametrize("name", NAMES)
def test_bad_params_name_the_key(name):
    for params, key in BAD_PARAMS[name]:
        with pytest.raises(InvalidArgument) as err:
            make_backend(name, "regression", params, SHAPE, None)
        assert key in err.value.message, (params, err.value.message)


def test_vowpalwabbit_classification_refuses_its_own_reduction_options():
    with pytest.raises(InvalidArgument, match="--oaa"):
        make_backend("vowpalwabbit", "classification", {"args": "--oaa 3"}, SHAPE, K)
    with pytest.raises(InvalidArgument, match="logistic"):
        make_backend("vowpalwabbit", "classification", {"args": "--loss_function squared"}, SHAPE, K)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_input_shape_is_invalid_argument(name):
    backend = make(name, "regression")
    X = np.zeros((3, 4), dtype=np.float32)
    for call in (lambda: backend.predict(X), lambda: backend.learn(X, np.zeros(3, np.float32)),
                 lambda: backend.loss(X, np.zeros(3, np.float32))):
        with pytest.raises(InvalidArgument, match=r"\(3, 4\), expected \(n, 5\)"):
            call()
    with pytest.raises(InvalidArgument, match="class index"):
        make(name, "classification").learn(np.zeros((2, 5), np.float32), np.array([0, 3], np.float32))


def test_unknown_backend_lists_the_known_ones(tmp_path):
    with pytest.raises(InvalidArgument, match="known backends: sklearn, river, vowpalwabbit, pytorch, tensorflow"):
        make_backend("xgboost", "regression", {}, SHAPE, None)
    with pytest.raises(InvalidArgument, match="xgboost"):
        load_backend("xgboost", tmp_path / "m", "regression", {}, SHAPE, None)
    assert backend_class("river") is BACKENDS["river"]


def test_sklearn_refuses_a_starting_model_without_partial_fit(tmp_path):
    import joblib
    from sklearn.linear_model import LogisticRegression

    X, y = classification_data(200, 3)
    path = tmp_path / "model.joblib"
    joblib.dump(LogisticRegression(max_iter=200).fit(X, y.astype(int)), path)
    with pytest.raises(FailedPrecondition) as err:
        load_backend("sklearn", path, "classification", {}, SHAPE, K)
    assert "LogisticRegression" in err.value.message and "partial_fit" in err.value.message
    assert "SGDClassifier" in err.value.message


def test_sklearn_keeps_learning_a_starting_sgd_model(tmp_path):
    import joblib
    from sklearn.linear_model import SGDClassifier

    X, y = classification_data(300, 3)
    path = tmp_path / "model.joblib"
    joblib.dump(SGDClassifier(loss="log_loss", random_state=0).fit(X, y.astype(int)), path)
    backend = load_backend("sklearn", path, "classification", {"eta0": 0.05}, SHAPE, K)
    assert backend.estimator.eta0 == 0.05
    before = backend.predict(X)
    backend.learn(X[:32], y[:32])
    assert not np.allclose(backend.predict(X), before)
    with pytest.raises(FailedPrecondition, match="takes 5 features"):
        load_backend("sklearn", path, "classification", {}, (6,), K)


def test_river_models_without_mini_batch_methods_learn_row_by_row():
    for task, model, data in (("regression", "HoeffdingTreeRegressor", regression_data),
                              ("classification", "HoeffdingTreeClassifier", classification_data)):
        backend = make_backend("river", task, {"model": model}, SHAPE, K if task == "classification" else None)
        X_test, y_test = data(200, 99)
        start = backend.loss(X_test, y_test).mean()
        for X, y in stream(data, n_batches=20):
            backend.learn(X, y)
        assert backend.loss(X_test, y_test).mean() < 0.8 * start, model


class UC10Forecaster(nn.Module):
    """The UC10 recipe's shape of model: two stacked GRU layers (separate modules), a linear head,
    (batch, 36) -> (batch, 1)."""

    def __init__(self, hidden: int = 8):
        super().__init__()
        self.gru1 = nn.GRU(1, hidden, batch_first=True)
        self.gru2 = nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru1(x.unsqueeze(-1))
        out, _ = self.gru2(out)
        return self.head(out[:, -1, :])


def sequences(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scaled windows of 36 samples of a noisy sine; the target is the window's mean."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    level = rng.uniform(0.2, 0.8, size=(n, 1))
    X = (level + 0.2 * np.sin(phase + np.arange(36) / 4) + 0.02 * rng.normal(size=(n, 36))).astype(np.float32)
    return X, X.mean(axis=1).astype(np.float32)


def test_pytorch_keeps_training_a_traced_gru_with_its_first_layer_frozen(tmp_path):
    torch.manual_seed(0)
    traced = torch.jit.trace(UC10Forecaster().eval(), torch.zeros(4, 36))
    path = tmp_path / "uc10.pt"
    torch.jit.save(traced, str(path))
    params = {"freeze": ["gru1."], "lr": 0.01, "epochs_per_batch": 2}
    backend = load_backend("pytorch", path, "regression", params, (36,), None)
    frozen = {n: p.detach().clone() for n, p in backend.model.named_parameters() if n.startswith("gru1.")}
    others = {n: p.detach().clone() for n, p in backend.model.named_parameters() if not n.startswith("gru1.")}
    assert len(frozen) == 4 and others
    X_test, y_test = sequences(200, 9)
    assert backend.predict(X_test).shape == (200,)  # the (n, 1) output squeezed
    start = backend.loss(X_test, y_test).mean()
    X, y = sequences(BATCHES * BATCH, 1)
    for i in range(BATCHES):
        backend.learn(X[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH])
    end = backend.loss(X_test, y_test).mean()
    assert end < 0.5 * start, (start, end)
    params_now = dict(backend.model.named_parameters())
    for n, p in frozen.items():
        assert torch.equal(params_now[n], p), f"{n} changed although frozen"
    assert any(not torch.equal(params_now[n], p) for n, p in others.items())
    # the Captum view gives (n,) in model scale
    view = backend.torch_module()
    assert tuple(view(torch.from_numpy(X_test[:3])).shape) == (3,)
    # saved as TorchScript, loaded again: same predictions, and it is still TorchScript for the Translator
    out = tmp_path / "model.pt"
    backend.save(out)
    again = load_backend("pytorch", out, "regression", params, (36,), None)
    np.testing.assert_allclose(again.predict(X_test), backend.predict(X_test), atol=1e-6)
    assert isinstance(torch.jit.load(str(out)), torch.jit.ScriptModule)
    with pytest.raises(FailedPrecondition, match="does not take the learner's input"):
        load_backend("pytorch", path, "regression", {}, (1, 6, 6), None)


class SoftmaxClassifier(nn.Module):
    """As the Trainer's digits CNN: the saved model returns class probabilities."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, K), nn.Softmax(dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_pytorch_learns_a_scripted_classifier_that_outputs_probabilities(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "clf.pt"
    torch.jit.save(torch.jit.script(SoftmaxClassifier()), str(path))
    backend = load_backend("pytorch", path, "classification", {"lr": 0.02, "epochs_per_batch": 3}, SHAPE, K)
    assert backend._model_outputs == "probabilities"
    X_test, y_test = classification_data(300, 99)
    for X, y in stream(classification_data, n_batches=40):
        backend.learn(X, y)
    p = backend.predict(X_test)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-4)  # not softmax applied twice
    assert float(np.mean(p.argmax(axis=1) == y_test)) > 0.6
    with pytest.raises(FailedPrecondition, match=r"outputs \(2, 3\)"):
        load_backend("pytorch", path, "classification", {}, SHAPE, 4)


def test_pytorch_architectures_learn_on_their_inputs():
    for architecture, shape in (("gru", (36,)), ("cnn", (1, 8, 8))):
        backend = make_backend("pytorch", "regression", {"architecture": architecture, "hidden_size": 8,
                                                          "lr": 0.02, "epochs_per_batch": 2}, shape, None)
        rng = np.random.default_rng(0)
        X = rng.uniform(0, 1, size=(256, *shape)).astype(np.float32)
        y = X.reshape(256, -1).mean(axis=1) * 2
        start = backend.loss(X, y).mean()
        for i in range(0, 256, 32):
            backend.learn(X[i:i + 32], y[i:i + 32])
        assert backend.loss(X, y).mean() < 0.5 * start, architecture
        view = backend.torch_module()
        assert tuple(view(torch.from_numpy(X[:2])).shape) == (2,)


def test_tensorflow_keeps_learning_a_channels_last_keras_classifier(tmp_path):
    import keras

    model = keras.Sequential([
        keras.Input(shape=(8, 8, 1)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(K, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = tmp_path / "start.keras"
    model.save(path)
    backend = load_backend("tensorflow", path, "classification", {"lr": 0.02}, (1, 8, 8), K)
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(64, 1, 8, 8)).astype(np.float32)
    y = np.argmax(X[:, 0, 0, :K], axis=1).astype(np.float32)  # learners give channels first
    start = backend.loss(X, y).mean()
    for _ in range(10):
        backend.learn(X, y)
    assert backend.loss(X, y).mean() < start
    with pytest.raises(FailedPrecondition, match="takes input"):
        load_backend("tensorflow", path, "classification", {}, (1, 6, 6), K)


@pytest.mark.parametrize("estimator", ["SGDRegressor", "PassiveAggressiveRegressor"])
def test_sklearn_linear_regressors_predict_exactly_what_sklearn_predicts(estimator):
    # The backend computes X @ coef_ + intercept_ itself for these (skipping sklearn's per-call
    # validation); it must give sklearn's own answer.
    rng = np.random.default_rng(3)
    backend = make_backend("sklearn", "regression", {"estimator": estimator, "random_state": 0}, (36,), None)
    X = rng.normal(size=(200, 36)).astype(np.float32)
    y = (X @ rng.normal(size=36)).astype(np.float32)
    for i in range(0, 200, 32):
        backend.learn(X[i:i + 32], y[i:i + 32])
    ours = backend.predict(X[:50])
    theirs = backend.estimator.predict(X[:50].astype(np.float64))
    np.testing.assert_allclose(ours, theirs.astype(np.float32), rtol=1e-5, atol=1e-5)
    assert ours.shape == (50,) and ours.dtype == np.float32
