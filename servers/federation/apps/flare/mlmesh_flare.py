"""FLARE components of the FedAvg job: the model class FLARE instantiates from JSON arguments, and
the server's persistor that also reports each round. Runs in .venv-flare inside FLARE's own
processes; imports nothing of mlmesh (the data and model code is FedPATE's `fedpate.task`, on
PYTHONPATH, so both frameworks train the same networks on the same shards).

The persistor (`ReportingPersistor`) is FLARE's PyTorch file persistor plus two things:
- it follows every client's task result after FLARE's result filters (what the server really
  receives, after a DP filter if one is set): the client's training loss/accuracy/sample count and,
  once, its data commitment (SHA-256 and sample count of its local CSV); what FLARE's SVT filter
  says it spent on a result is printed to the job's log;
- when FedAvg persists the new global model (every round), it evaluates that model on the server's
  held-out split and appends one `round` event (global and per-client figures) to the events file.

With homomorphic encryption (`encrypted=True`: FLARE's HE filters and aggregator) the server holds
only CKKS ciphertexts and a context without the secret key: it cannot evaluate the global model.
It then says in `log` events (printed by the launcher) what it received and holds (how many layers are ciphertexts, whether its context
could decrypt them), keeps each round's encrypted global model beside the events file
(`he-global-round-<n>.pt`) and leaves the round's global figures to the launcher, which holds the
clients' key (`launch_flare.HeRelay`).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from pathlib import Path

import numpy as np
import torch

from fedpate.task import Net, evaluate, read_table
from nvflare.apis.dxo import MetaKey, from_shareable
from nvflare.apis.event_type import EventType
from nvflare.apis.fl_constant import FLContextKey
from nvflare.app_common.app_event_type import AppEventType
from nvflare.app_common.utils.fl_model_utils import FLModelUtils
from nvflare.app_opt.pt.file_model_persistor import PTFileModelPersistor

COMMITMENT_KEYS = ("data_sha256", "sample_count")
SVT_BUDGET = "svt_privacy_budget"  # what FLARE's SVTPrivacy filter records on each result it releases
SERVER_CONTEXT = "server_context.tenseal"  # FLARE's name for the server's HE context (HEBuilder, HE components)
CLIENT_CONTEXT = "client_context.tenseal"  # the clients' (with the secret key)


def ciphertexts(weights: dict) -> int:
    """How many of `weights`' layers are CKKS ciphertexts (tenseal vectors, or their serialized bytes)."""
    return sum(1 for v in weights.values() if isinstance(v, bytes) or type(v).__name__ == "CKKSVector")


def server_can_decrypt() -> bool:
    """Whether the HE context in this site's startup folder holds the secret key."""
    import tenseal as ts
    from nvflare.fuel.sec.security_content_service import SecurityContentService

    data, _ = SecurityContentService.load_content(SERVER_CONTEXT)
    return bool(data) and ts.context_from(data).is_private()


class FlareNet(Net):
    """fedpate.task.Net with plain (JSON) arguments, so FLARE can build it from a job's config."""

    def __init__(self, kind: str, features: int, classes: int, mean: list[float], std: list[float]):
        super().__init__(kind, features, classes, np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64))


def append_event(path: str | Path, event: dict) -> None:
    with Path(path).open("a") as f:
        f.write(json.dumps(event, sort_keys=True) + "\n")


class ReportingPersistor(PTFileModelPersistor):
    def __init__(self, model: dict, events_path: str, test_path: str, target_column: str, encrypted: bool = False,
                 **kwargs):
        super().__init__(model=model, **kwargs)
        self.events_path, self.test_path, self.target_column = events_path, test_path, target_column
        self.encrypted = encrypted
        self._lock = threading.Lock()
        self._clients: dict[str, dict] = {}
        self._committed: set[str] = set()
        self._round_started = time.monotonic()
        self._test = None

    def handle_event(self, event: str, fl_ctx) -> None:
        super().handle_event(event, fl_ctx)
        if event == AppEventType.ROUND_STARTED:
            with self._lock:
                self._clients.clear()
                self._round_started = time.monotonic()
        elif event == EventType.AFTER_TASK_RESULT_FILTER:
            self._client_result(fl_ctx)

    def _client_result(self, fl_ctx) -> None:
        shareable = fl_ctx.get_prop(FLContextKey.TASK_RESULT)
        peer = fl_ctx.get_peer_context()
        if shareable is None or peer is None:
            return
        site = peer.get_identity_name()
        try:
            result = FLModelUtils.from_shareable(shareable)
        except Exception as exc:  # a failed client's reply carries no model
            self.log_warning(fl_ctx, f"no model in {site}'s result: {exc}")
            return
        dxo = from_shareable(shareable)
        if self.encrypted:
            # What the FLARE server really received from the client (after its HE encryptor).
            self._say(f"{site}'s result reached the FLARE server encrypted: {ciphertexts(dxo.data)} of "
                      f"{len(dxo.data)} layers are CKKS ciphertexts (algorithm "
                      f"{dxo.get_meta_prop(MetaKey.PROCESSED_ALGORITHM)})")
        budget = dxo.get_meta_prop(SVT_BUDGET)
        if isinstance(budget, dict):
            # FLARE's own accounting of the filter, printed into the job's log beside ours.
            self._say(f"{site}: FLARE's SVT filter reports epsilon {float(budget.get('epsilon_total', 0)):.6g}, "
                      f"delta {budget.get('delta')} ({budget.get('accountant')}) for this round's result")
        metrics = dict(result.metrics or {})
        meta = dict(result.meta or {})
        with self._lock:
            self._clients[site] = {"client_id": site, "loss": metrics.get("train_loss"),
                                   "accuracy": metrics.get("train_accuracy"),
                                   "num_examples": int(metrics.get("num_examples", 0))}
            first = site not in self._committed and all(k in meta for k in COMMITMENT_KEYS)
            if first:
                self._committed.add(site)
        if first:
            append_event(self.events_path, {"type": "commitment", "client_id": site,
                                            "sha256": str(meta["data_sha256"]),
                                            "sample_count": int(meta["sample_count"])})

    def save_model(self, ml, fl_ctx) -> None:
        current = fl_ctx.get_prop("current_round")
        round_number = (int(current) + 1) if current is not None else 0
        if self.encrypted:
            self._encrypted_round(ml, round_number)
            return
        super().save_model(ml, fl_ctx)
        # FLARE builds `model` from its {"path", "args"} configuration before handing it over.
        model = copy.deepcopy(self.model) if isinstance(self.model, torch.nn.Module) else FlareNet(**self.model["args"])
        weights = {k: torch.as_tensor(np.asarray(v)) for k, v in ml["weights"].items()}
        model.load_state_dict(weights)
        if self._test is None:
            self._test = read_table(self.test_path, self.target_column)
        loss, accuracy = evaluate(model, self._test.features, self._test.labels)
        with self._lock:
            clients = sorted(self._clients.values(), key=lambda c: c["client_id"])
            seconds = time.monotonic() - self._round_started
        append_event(self.events_path, {"type": "round", "round": round_number, "loss": loss, "accuracy": accuracy,
                                        "seconds": seconds, "clients": clients})

    def _say(self, text: str) -> None:
        """A line for the job's log, through the events file: in real mode this runs in the FLARE
        server's job process, whose output the launcher does not see."""
        append_event(self.events_path, {"type": "log", "text": text})

    def _encrypted_round(self, ml, round_number: int) -> None:
        """The round's event without global figures: the server keeps the encrypted global model
        for the key holder (the launcher), who evaluates it."""
        weights = dict(ml["weights"])
        encrypted = ciphertexts(weights)
        self._say(f"the FLARE server's global model after round {round_number}: {encrypted} of {len(weights)} "
                  f"layers are CKKS ciphertexts; the server's HE context can decrypt them: {server_can_decrypt()}")
        serialized = {k: (v.serialize() if type(v).__name__ == "CKKSVector" else v) for k, v in weights.items()}
        # PTFileModelPersistor's own save checks the weights' shapes against the model's, which a
        # ciphertext (a flat vector) fails: the ciphertexts go to its checkpoint file as they are.
        torch.save({"model": serialized}, self._ckpt_save_path)
        kept = Path(self.events_path).with_name(f"he-global-round-{round_number}.pt")
        torch.save({"model": serialized}, kept)
        with self._lock:
            clients = sorted(self._clients.values(), key=lambda c: c["client_id"])
            seconds = time.monotonic() - self._round_started
        append_event(self.events_path, {"type": "round", "round": round_number, "seconds": seconds, "clients": clients,
                                        "encrypted_model": str(kept)})
