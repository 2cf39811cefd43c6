"""The Learner's explainer (seed 2.1: the KServe explainer; 2.1.3.1: Captum, DeepLIFT on the UC9/UC10
forecasters, Figures 4-5): per-feature attributions of one prediction.

Two Captum methods, both against an all-zero baseline (in model scale):

* ``integrated_gradients`` (``captum.attr.IntegratedGradients``): integrates the gradient along the
  straight path from the baseline to the input (Gauss-Legendre, ``steps`` points). Works on any
  differentiable module, TorchScript included; its convergence delta measures the integration error.
* ``deeplift`` (``captum.attr.DeepLift``, rescale rule): exact decomposition of (prediction - baseline
  prediction) for feed-forward networks whose non-linearities are modules (nn.ReLU, nn.Sigmoid, ...).

The default is deeplift (the seed's choice) except where it cannot be trusted, and then
integrated_gradients (see `default_method`): Captum's DeepLift has no rule for nn.GRU / nn.LSTM / nn.RNN
and silently degrades to input x gradient there, and it works by hooking submodules, which a
TorchScript module does not allow. A request for deeplift on such a module is answered with
integrated_gradients and a `note` saying why, rather than failing.

Everything is deterministic: no sampling, the module is evaluated in eval mode (its previous mode is
restored afterwards), and the same input and weights give the same attributions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from servers.common.errors import FailedPrecondition, InvalidArgument

INTEGRATED_GRADIENTS = "integrated_gradients"
DEEPLIFT = "deeplift"
METHODS = (INTEGRATED_GRADIENTS, DEEPLIFT)
MAX_STEPS = 1000
_IG_BATCH_VALUES = 1 << 22


@dataclass
class ExplanationResult:
    method: str  # the method used
    attributions: np.ndarray  # float64, flattened in feature order
    convergence_delta: float  # sum(attributions) - (prediction - baseline_prediction)
    prediction: float  # the explained output (model scale; a class probability or logit)
    baseline_prediction: float  # the same output at the all-zero baseline
    note: str = ""  # why the method differs from the request or the default, when it does


def _is_torchscript(module) -> bool:
    import torch

    if isinstance(module, torch.jit.ScriptModule):
        return True
    return any(isinstance(m, torch.jit.ScriptModule) for m in module.modules())


def _recurrent_layers(module) -> list[str]:
    from torch import nn

    return sorted({type(m).__name__ for m in module.modules() if isinstance(m, nn.RNNBase)})


def default_method(module) -> tuple[str, str]:
    """The method to use when a request names none, and why (empty when deeplift fits)."""
    if _is_torchscript(module):
        return INTEGRATED_GRADIENTS, (
            "integrated_gradients: the model is TorchScript, whose submodules Captum's DeepLift cannot hook")
    recurrent = _recurrent_layers(module)
    if recurrent:
        return INTEGRATED_GRADIENTS, (
            f"integrated_gradients: the model has recurrent layers ({', '.join(recurrent)}), on which "
            "Captum's DeepLift degrades to input x gradient")
    return DEEPLIFT, ""


def _choose(module, method: str) -> tuple[str, str]:
    if method == "":
        return default_method(module)
    if method not in METHODS:
        raise InvalidArgument(f"method must be one of {', '.join(METHODS)} (or empty for the learner's "
                              f"default), got {method!r}")
    if method == DEEPLIFT:
        fallback, why = default_method(module)
        if fallback != DEEPLIFT:
            return fallback, f"deeplift was requested; used {why}"
    return method, ""


def _output_target(out, classification: bool, target_class: int | None) -> int | None:
    """Captum's `target` for the module's output of one input: None for (1,), a column otherwise."""
    if classification:
        if out.ndim != 2 or out.shape[1] < 2:
            raise FailedPrecondition(f"a classifier's module must return (n, n_classes) scores, it returned "
                                     f"shape {tuple(out.shape)}")
        k = out.shape[1]
        if target_class is None:
            return int(out[0].argmax())
        if isinstance(target_class, bool) or not isinstance(target_class, (int, np.integer)) or \
                not 0 <= target_class < k:
            raise InvalidArgument(f"target_class must be a class index in 0..{k - 1}, got {target_class!r}")
        return int(target_class)
    if target_class is not None:
        raise InvalidArgument("target_class applies to classification only; leave it unset for regression")
    if out.ndim == 1:
        return None
    if out.ndim == 2 and out.shape[1] == 1:
        return 0
    raise FailedPrecondition(f"a regression module must return (n,) or (n, 1), it returned shape {tuple(out.shape)}")


def _select(out, target: int | None) -> float:
    return float(out[0] if target is None else out[0, target])


def explain(module, x: np.ndarray, feature_names: list[str], method: str = "", steps: int = 50,
            target_class: int | None = None, classification: bool = False) -> ExplanationResult:
    """Attributes the module's output for one input `x` (shape input_shape, model scale) to its
    features. `module` maps (n, *input_shape) float32 to (n,) or (n, k). Raises InvalidArgument for a
    bad method, steps, target_class or input."""
    import torch
    from captum.attr import DeepLift, IntegratedGradients

    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= MAX_STEPS:
        raise InvalidArgument(f"steps must be an integer in 1..{MAX_STEPS}, got {steps!r}")
    chosen, note = _choose(module, method)
    x = np.asarray(x, dtype=np.float32)
    if x.size != len(feature_names):
        raise InvalidArgument(f"the input has {x.size} values but the model has {len(feature_names)} features")
    if not np.all(np.isfinite(x)):
        bad = int(np.flatnonzero(~np.isfinite(x.reshape(-1)))[0])
        raise InvalidArgument(f"feature {feature_names[bad]!r} of the input is not a finite number")

    inputs = torch.from_numpy(x.copy()).unsqueeze(0)
    baseline = torch.zeros_like(inputs)
    inputs.requires_grad_()  # Captum would set it itself, with a warning each call
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.cat([inputs.detach(), baseline]))
        target = _output_target(out[:1], classification, target_class)
        prediction, baseline_prediction = _select(out[:1], target), _select(out[1:], target)
        if chosen == INTEGRATED_GRADIENTS:
            # the path's points are evaluated in batches of at most ~4M input values (bounded memory)
            batch = max(1, min(int(steps), _IG_BATCH_VALUES // x.size))
            attr, delta = IntegratedGradients(module).attribute(
                inputs, baselines=baseline, target=target, n_steps=int(steps), internal_batch_size=batch,
                return_convergence_delta=True)
        else:
            attr, delta = DeepLift(module).attribute(
                inputs, baselines=baseline, target=target, return_convergence_delta=True)
    finally:
        module.train(was_training)
    attributions = attr.detach().reshape(-1).double().numpy()
    return ExplanationResult(method=chosen, attributions=attributions,
                             convergence_delta=float(delta.reshape(-1)[0]), prediction=prediction,
                             baseline_prediction=baseline_prediction, note=note)
