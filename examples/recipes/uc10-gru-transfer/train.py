"""The seed's UC10 power-consumption forecaster with transfer learning, trained as an mlmesh recipe.

D3.4 section 2.1.3.1: the previous 36 power samples predict the consumption 24 hours later; a GRU
network is first trained for another purpose, its first GRU layer is frozen, and the remaining layers
are retrained on the consumption data (Table 3: Adam, learning rate 0.001, MSE loss, batch 128, 50
epochs); the residuals are tested for normality (Table 4: Shapiro-Wilk, Anderson-Darling,
D'Agostino-Pearson) so that 90% forecasting intervals can be drawn from them (Figure 9); validation
MSE 0.012 in the seed, on min-max scaled data.

Steps:
1. The registered dataset (a CSV with a `power_kw` column, e.g. from examples/make_power_csv.py) is
   cut into windows: inputs are 36 consecutive samples, the target the sample `horizon` (96) steps
   after the window's last one. Windows are split chronologically (train / validation / test by the
   position of their target). Everything is min-max scaled with the minimum and maximum of the series
   up to the last training target; the scale is printed and in the metrics line.
2. Source task: a series the recipe generates itself with a fixed seed (`source` = "building": the
   consumption of a different building - other base load, peak, weekend share, drift and noise, 30
   days; or "generation": a solar generation series), scaled the same way with its own statistics.
   The forecaster is trained on it from scratch.
3. Transfer: the first GRU layer is frozen (requires_grad False) and the second GRU layer and the
   linear head are retrained on the registered dataset; the log checks the frozen weights are
   bit-for-bit unchanged afterwards.
4. Report on the validation split: the model's MSE, the "repeat the last value" baseline (for a
   24-hour horizon this is also the seasonal-naive "value 24 h earlier": the window's last sample is
   exactly 96 steps before the target) and the training-mean baseline; the residuals' Gaussian 90%
   interval (mean +- 1.645 sd) and its coverage on the test split; normality p-values: Shapiro-Wilk
   (scipy.stats.shapiro), Anderson-Darling (scipy.stats.goodness_of_fit with statistic='ad': a Monte
   Carlo p-value with the normal's mean and sd fitted to each simulated sample, i.e. the composite
   test; scipy.stats.anderson(method='interpolate') is printed beside it as a cross-check) and
   D'Agostino-Pearson (scipy.stats.normaltest).

Output: TorchScript (torch.jit.trace) at MLMESH_OUTPUT_PATH: input (batch, 36) float32 scaled values,
output (batch, 1) the scaled forecast. Run by the Trainer, or by hand from this directory:
    MLMESH_DATASET_PATH=/tmp/consumption.csv MLMESH_OUTPUT_PATH=/tmp/m.pt MLMESH_PARAMS='{}' \
        MLMESH_SEED=1 ../../../.venv-ml/bin/python train.py
"""

import csv
import json
import math
import os
import time
import tomllib

import numpy as np
import torch
from scipy import stats
from torch import nn
from torch.nn import functional as F

SAMPLES_PER_DAY = 96


class GRUForecaster(nn.Module):
    """Two stacked GRU layers (kept as separate modules so the first can be frozen) and a linear head."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.gru1 = nn.GRU(1, hidden, batch_first=True)
        self.gru2 = nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (batch, window) -> (batch, 1)
        out, _ = self.gru1(x.unsqueeze(-1))
        out, _ = self.gru2(out)
        return self.head(out[:, -1, :])


# ---------------------------------------------------------------- data


def load_config() -> tuple[dict, dict]:
    with open("recipe.toml", "rb") as f:
        recipe = tomllib.load(f)["recipe"]
    params = dict(recipe.get("parameters", {}))
    params.update(json.loads(os.environ.get("MLMESH_PARAMS") or "{}"))
    return recipe["input"], params


def load_power(path: str) -> np.ndarray:
    """The `power_kw` column (or the last column) of a CSV with a header."""
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        col = header.index("power_kw") if "power_kw" in header else len(header) - 1
        values = np.array([float(row[col]) for row in reader if row], dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{path}: the power column holds non-finite values")
    return values


def source_series(kind: str, days: int, seed: int) -> np.ndarray:
    """The source task's series, generated here (a recipe archive carries its own code).

    "building": consumption of another building - a larger base load, a lower peak, a busier weekend,
    a steeper drift and more noise than examples/make_power_csv.py's default building. "generation":
    a solar series, zero at night, with a cloudiness factor per day.
    """
    rng = np.random.default_rng(seed)
    n = days * SAMPLES_PER_DAY
    t = np.arange(n)
    hour = (t % SAMPLES_PER_DAY) / 4.0
    day = t // SAMPLES_PER_DAY
    if kind == "generation":
        sun = np.clip(np.sin(np.pi * (hour - 6.0) / 13.5), 0.0, None)
        sun[(hour < 6.0) | (hour > 19.5)] = 0.0
        clouds = np.clip(rng.normal(0.8, 0.15, days), 0.3, 1.0)
        power = 55.0 * sun**1.5 * clouds[day] * (1.0 + rng.normal(0.0, 0.06, n))
        return np.where(sun > 0, np.clip(power, 0.0, None), 0.0)
    if kind != "building":
        raise ValueError(f"source must be 'building' or 'generation', got {kind!r}")
    shape = (1.0 / (1.0 + np.exp(-(hour - 8.0) * 1.4)) - 1.0 / (1.0 + np.exp(-(hour - 22.0) * 1.2))
             + 0.35 * np.exp(-0.5 * ((hour - 20.0) / 1.6) ** 2))
    weekend = (day % 7) >= 5
    daily = np.where(weekend, 0.6, 1.0) * np.clip(shape, 0.0, None)
    drift = 0.4 * t / SAMPLES_PER_DAY + 2.5 * np.sin(2 * np.pi * t / (7.3 * SAMPLES_PER_DAY))
    return np.clip(30.0 + 22.0 * daily + drift + rng.normal(0.0, 1.6, n), 0.0, None)


def windows(series: np.ndarray, window: int, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs (n, window), targets (n,) and each target's index in the series."""
    last = np.arange(window - 1, len(series) - horizon)
    x = np.stack([series[i - window + 1 : i + 1] for i in last])
    target_idx = last + horizon
    return x, series[target_idx], target_idx


def split_counts(n: int, train_fraction: float, val_fraction: float) -> tuple[int, int, int]:
    n_train = int(round(n * train_fraction))
    n_val = int(round(n * val_fraction))
    n_test = n - n_train - n_val
    if min(n_train, n_val, n_test) < 2:
        raise ValueError(f"{n} windows are too few for a {train_fraction}/{val_fraction} split")
    return n_train, n_val, n_test


# ---------------------------------------------------------------- training


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, params: dict, rng, label: str,
        x_val: torch.Tensor | None = None, y_val: torch.Tensor | None = None) -> None:
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=float(params["learning_rate"]))
    batch_size = int(params["batch_size"])
    n = len(y)
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.from_numpy(rng.permutation(n))
        total = 0.0
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            optimizer.zero_grad()
            loss = F.mse_loss(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        line = f"{label} epoch {epoch}: loss {total / n:.5f}"
        if x_val is not None and (epoch == epochs or epoch % 5 == 0):
            line += f", val mse {mse(model, x_val, y_val):.5f}"
        print(line, flush=True)


def predict(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    model.eval()
    with torch.inference_mode():
        return model(x).numpy().ravel().astype(np.float64)


def mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(np.mean((predict(model, x) - y.numpy().ravel()) ** 2))


def scaled(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (values - lo) / (hi - lo)


def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32)).reshape(-1, 1)


def main() -> None:
    started = time.monotonic()
    spec, params = load_config()
    seed = int(os.environ.get("MLMESH_SEED", "0"))
    torch.manual_seed(seed)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    rng = np.random.default_rng(seed)
    window, horizon = int(params["window"]), int(params["horizon"])
    if list(spec["shape"]) != [-1, window]:
        raise ValueError(f"recipe.input.shape {spec['shape']} does not match window {window}")

    # ---- the registered dataset: windows, chronological split, min-max scale from the training part
    series = load_power(os.environ["MLMESH_DATASET_PATH"])
    x_all, y_all, target_idx = windows(series, window, horizon)
    n_train, n_val, n_test = split_counts(len(y_all), float(params["train_fraction"]), float(params["val_fraction"]))
    train_end = int(target_idx[n_train - 1]) + 1  # the training part of the series: samples 0..train_end-1
    lo, hi = float(series[:train_end].min()), float(series[:train_end].max())
    xs, ys = scaled(x_all, lo, hi), scaled(y_all, lo, hi)
    parts = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val), "test": slice(n_train + n_val, None)}
    print(f"dataset: {len(series)} samples ({len(series) / SAMPLES_PER_DAY:.1f} days at 15 min); "
          f"{len(y_all)} windows of {window} samples -> the sample {horizon} steps after the last; seed {seed}")
    for name, s in parts.items():
        idx = target_idx[s]
        print(f"  {name}: {len(idx)} windows, targets at samples {idx[0]}..{idx[-1]}")
    print(f"min-max scale (training part, samples 0..{train_end - 1}): min {lo:.3f} kW, max {hi:.3f} kW; "
          f"scaled = (power_kw - {lo:.3f}) / {hi - lo:.3f}")
    x_train, y_train = tensors(xs[parts["train"]], ys[parts["train"]])
    x_val, y_val = tensors(xs[parts["val"]], ys[parts["val"]])
    x_test, y_test = tensors(xs[parts["test"]], ys[parts["test"]])

    # ---- source task: pre-train the whole network on a generated series
    source = str(params["source"])
    src = source_series(source, int(params["source_days"]), int(params["source_seed"]))
    sx, sy, _ = windows(src, window, horizon)
    s_lo, s_hi = float(src.min()), float(src.max())
    sx_t, sy_t = tensors(scaled(sx, s_lo, s_hi), scaled(sy, s_lo, s_hi))
    what = {"building": "the consumption of a different building", "generation": "a solar generation series"}[source]
    print(f"source task: {what} (source={source!r}), generated here with seed {params['source_seed']}: "
          f"{len(src)} samples ({params['source_days']} days), {len(sy)} windows, scaled with its own "
          f"min {s_lo:.3f} / max {s_hi:.3f}")
    model = GRUForecaster(int(params["hidden_size"]))
    t0 = time.monotonic()
    fit(model, sx_t, sy_t, int(params["pretrain_epochs"]), params, rng, "pretrain")
    pretrain_val = mse(model, x_val, y_val)
    print(f"pre-trained in {time.monotonic() - t0:.1f} s; validation MSE on the target dataset before "
          f"fine-tuning: {pretrain_val:.5f}")

    # ---- transfer: freeze the first GRU layer, retrain the rest on the registered dataset
    for p in model.gru1.parameters():
        p.requires_grad = False
    frozen_before = {k: v.detach().clone() for k, v in model.gru1.state_dict().items()}
    n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"transfer: gru1 frozen ({n_frozen} parameters, requires_grad False); retraining gru2 + head "
          f"({n_trainable} parameters): Adam lr {params['learning_rate']}, MSE, batch {params['batch_size']}, "
          f"{params['epochs']} epochs")
    t0 = time.monotonic()
    fit(model, x_train, y_train, int(params["epochs"]), params, rng, "finetune", x_val, y_val)
    unchanged = all(torch.equal(frozen_before[k], v) for k, v in model.gru1.state_dict().items())
    print(f"fine-tuned in {time.monotonic() - t0:.1f} s; frozen layer gru1 unchanged after fine-tuning: "
          f"{unchanged} ({len(frozen_before)} tensors compared bit for bit)")

    # ---- evaluation on the validation split (scaled units, like the seed's 0.012)
    pred_val, pred_test = predict(model, x_val), predict(model, x_test)
    yv, yt = y_val.numpy().ravel().astype(np.float64), y_test.numpy().ravel().astype(np.float64)
    val_mse = float(np.mean((pred_val - yv) ** 2))
    test_mse = float(np.mean((pred_test - yt) ** 2))
    last_val = xs[parts["val"]][:, -1]
    baseline_mse = float(np.mean((last_val - yv) ** 2))
    mean_mse = float(np.mean((float(ys[parts["train"]].mean()) - yv) ** 2))
    print("validation MSE (scaled units):")
    print(f"  GRU with transfer learning:                 {val_mse:.5f}")
    print(f"  repeat the last value (= value 24 h earlier): {baseline_mse:.5f}")
    print(f"  training mean:                              {mean_mse:.5f}")
    print(f"  (pre-trained only, before fine-tuning:      {pretrain_val:.5f})")
    print(f"test MSE: {test_mse:.5f} (repeat the last value: {float(np.mean((xs[parts['test']][:, -1] - yt) ** 2)):.5f})")

    residuals = yv - pred_val
    confidence = float(params["interval_confidence"])
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    bias, sd = float(residuals.mean()), float(residuals.std(ddof=1))
    halfwidth = z * sd
    lower, upper = pred_test + bias - halfwidth, pred_test + bias + halfwidth
    coverage = float(np.mean((yt >= lower) & (yt <= upper)))
    print(f"{confidence:.0%} forecasting interval from the {len(residuals)} validation residuals "
          f"(Gaussian: forecast + mean {bias:+.4f} +- {z:.3f} x sd {sd:.4f}): half-width {halfwidth:.4f} scaled "
          f"= {halfwidth * (hi - lo):.2f} kW; coverage on the test split: {coverage:.3f} ({len(yt)} windows)")

    shapiro_p = float(stats.shapiro(residuals).pvalue)
    ad = stats.goodness_of_fit(stats.norm, residuals, statistic="ad", n_mc_samples=9999,
                               rng=np.random.default_rng(seed))
    anderson_p = float(ad.pvalue)
    ad_interp = stats.anderson(residuals, dist="norm", method="interpolate")
    dagostino_p = float(stats.normaltest(residuals).pvalue)
    print("normality of the validation residuals (p-values; H0: Gaussian, rejected below 0.05):")
    print(f"  Shapiro-Wilk (scipy.stats.shapiro):                      {shapiro_p:.3f}")
    print(f"  Anderson-Darling (scipy.stats.goodness_of_fit, 'ad', Monte Carlo, 9999 samples, mean/sd fitted): "
          f"{anderson_p:.3f} (statistic {ad.statistic:.3f}; tables via anderson(method='interpolate'): "
          f"{float(ad_interp.pvalue):.3f}, limited to the tables' 0.01..0.15 range)")
    print(f"  D'Agostino-Pearson (scipy.stats.normaltest):             {dagostino_p:.3f}")
    gaussian = min(shapiro_p, anderson_p, dagostino_p) >= 0.05
    print(f"  -> {'no test rejects normality at 0.05' if gaussian else 'normality is rejected by at least one test at 0.05'}")

    elapsed = time.monotonic() - started
    metrics = {
        "val_mse": val_mse,
        "baseline_mse": baseline_mse,
        "mean_baseline_mse": mean_mse,
        "pretrained_val_mse": pretrain_val,
        "test_mse": test_mse,
        "interval_confidence": confidence,
        "interval_bias": bias,
        "interval_halfwidth": halfwidth,
        "coverage": coverage,
        "shapiro_p": shapiro_p,
        "anderson_p": anderson_p,
        "anderson_p_method": "scipy.stats.goodness_of_fit(norm, statistic='ad', n_mc_samples=9999)",
        "dagostino_p": dagostino_p,
        "frozen_layer_unchanged": unchanged,
        "source": source,
        "scale": {"min": lo, "max": hi},
        "windows": {"train": n_train, "val": n_val, "test": n_test},
        "seconds": round(elapsed, 1),
    }
    for key, value in metrics.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key} is not finite: {value}")

    model.eval()
    example = x_val[: min(8, len(x_val))]
    traced = torch.jit.trace(model, example)
    probe = x_test[:7]
    if not torch.allclose(traced(probe), model(probe), atol=1e-6):
        raise RuntimeError("the traced model differs from the eager model on another batch size")
    torch.jit.save(traced, os.environ["MLMESH_OUTPUT_PATH"])
    print(f"saved TorchScript (traced; input (batch, {window}) float32 scaled, output (batch, 1)) to "
          f"{os.environ['MLMESH_OUTPUT_PATH']}; {elapsed:.1f} s in all")
    print("metrics: " + json.dumps(metrics))


if __name__ == "__main__":
    main()
