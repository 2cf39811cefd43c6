"""`mlmesh demo-learner` (`make demo-learner`): a UC10 consumption forecaster learning online from a
streamed smart meter, through the front door.

1. upload a reference dataset (the meter's first week of 15-minute readings, generated here),
2. create a learner (a PyTorch GRU, power-forecast transformer: 36 readings -> 24 h ahead),
3. stream the next 8 days of meter-7 over one Learn stream and show the running / validation loss
and each version it saves to the Registry, 4. forecast, 5. explain the forecast (Integrated
Gradients: which lags matter), 6. stream a day whose level shifted (+60%) and show the drift and
error figures move.
"""

from __future__ import annotations

import csv
import math
import subprocess
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

import mlmesh
from clients.sensorformat import Row, observation, read_rows
from clients.settings import ClientSettings

REPO = Path(__file__).resolve().parents[1]
ML_PYTHON = REPO / ".venv-ml" / "bin" / "python"
SENSOR = "meter-7"


def _power_csv(path: Path, days: int, seed: int) -> Path:
    subprocess.run([str(ML_PYTHON), str(REPO / "examples" / "make_power_csv.py"), "--out", str(path), "--days",
                    str(days), "--seed", str(seed)], check=True, capture_output=True)
    return path


def _days(path: Path, days: tuple[int, int]) -> list[Row]:
    return list(read_rows(path, "timestamp", "power_kw"))[days[0] * 96:days[1] * 96]


def _write(rows: list[Row], path: Path) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timestamp", "power_kw"])
        writer.writerows((r.time.isoformat(), f"{r.value:.3f}") for r in rows)
    return path


def run_demo_learner(settings: ClientSettings, console: Console, token: str) -> int:
    work = settings.data_dir.resolve() / "demo-learner"
    work.mkdir(parents=True, exist_ok=True)
    auth = {"authorization": f"Bearer {token}"}
    base = f"http://{settings.front_door}"

    def say(text: str) -> None:
        console.rule(f"[bold]{text}")

    say("1. reference dataset: meter-7's first week (kW, every 15 minutes)")
    history = _power_csv(work / "meter-7.csv", 16, 12)
    reference = _write(_days(history, (0, 7)), work / "reference.csv")
    r = httpx.post(f"{base}/v1/datasets:upload", params={"organization_id": settings.org,
                   "display_name": "uc10-reference"}, content=reference.read_bytes(),
                   headers={**auth, "content-type": "text/csv"}, timeout=60)
    r.raise_for_status()
    dataset_id = r.json()["dataset_id"]
    console.print(f"dataset {dataset_id}")

    with mlmesh.Client(settings.front_door, token=token, organization_id=settings.org) as client:
        say("2. a learner: PyTorch GRU, window 36 readings -> the value 24 h (96 steps) ahead")
        learner = client.learners.create(
            display_name=f"uc10-demo-{int(time.time())}", developer_id="demo", backend="pytorch", task="regression",
            transformer="power-forecast", reference_dataset_id=dataset_id, micro_batch_size=32,
            backend_params={"architecture": "gru", "hidden_size": 32, "lr": 0.003, "seed": 0},
            transformer_params={"window": 36, "horizon": 96, "interval_seconds": 900, "scale_min": 0,
                                "scale_max": 80},
            save_policy={"min_observations": 192, "validation_window": 192, "min_relative_improvement": 0.05},
            monitoring={"window": 288, "every": 96})
        console.print(f"learner {learner.learner_id} ({learner.display_name}), features "
                      f"{learner.feature_names[0]}..{learner.feature_names[-1]}")

        say("3. stream the next 8 days of meter-7 over one Learn stream")
        stream = [observation(r, SENSOR) for r in _days(history, (7, 15))]
        table = Table("day", "received", "learned", "running loss", "validation loss", "saved version")
        started = time.monotonic()
        for i, ack in enumerate(client.learners.learn(learner.learner_id, stream, batch_size=96)):
            saved = f"v{ack.saved.version} {ack.saved.model_id[:8]}…" if ack.HasField("saved") else ""
            table.add_row(str(i + 1), str(ack.observations_received), str(ack.observations_learned),
                          f"{ack.running_loss:.5f}", f"{ack.validation_loss:.5f}", saved)
        console.print(table)
        seconds = time.monotonic() - started
        console.print(f"{len(stream)} readings in {seconds:.1f} s ({len(stream) / seconds:.0f} readings/s)")

        say("4. forecast from meter-7's latest readings")
        forecast = client.learners.predict(learner.learner_id, sensor_id=SENSOR)
        p = forecast.predictions[0]
        console.print(f"{p.values[0]:.2f} kW at {p.target_time.ToDatetime().isoformat()}Z "
                      f"(model {forecast.model_id or 'live, not saved yet'})")

        say("5. why: Integrated Gradients over the 36 lags")
        explanation = client.learners.explain(learner.learner_id, sensor_id=SENSOR)
        total = sum(abs(a.attribution) for a in explanation.attributions) or 1.0
        top = sorted(explanation.attributions, key=lambda a: -abs(a.attribution))[:6]
        console.print(f"method {explanation.method}, convergence delta {explanation.convergence_delta:.2e}"
                      + (f" ({explanation.note})" if explanation.note else ""))
        for a in top:
            console.print(f"  {a.name:>7}  {a.value:8.3f}  attribution {a.attribution:+.4f} "
                          f"({100 * abs(a.attribution) / total:.0f}%)")
        recent = sum(abs(a.attribution) for a in explanation.attributions[-6:]) / total
        console.print(f"the 6 most recent lags carry {100 * recent:.0f}% of the attribution")

        before = client.learners.monitoring(learner.learner_id, refresh=True)
        say("6. the meter's level shifts (+60%): one more day")
        # The meter's 16th day, at +60%, right after the streamed days.
        shifted = [observation(r, SENSOR, scale=1.6) for r in _days(history, (15, 16))]
        for _ack in client.learners.learn(learner.learner_id, shifted, batch_size=96):
            pass
        after = client.learners.monitoring(learner.learner_id, refresh=True)
        table = Table("", "dataset drift", "drifted features", "MAE kW", "ME kW", "MAPE %", "over-estimated")
        for label, rep in (("before", before), ("after the shift", after)):
            d, e = rep.drift, rep.errors
            table.add_row(label, str(d.dataset_drift), f"{d.drifted_features}/{d.feature_count} "
                          f"({100 * d.drift_share:.0f}%)", f"{e.mae:.2f}", f"{e.me:+.2f}", f"{e.mape:.1f}",
                          f"{100 * e.over_estimation_share:.0f}%")
        console.print(table)
        if not math.isfinite(after.errors.mae) or after.drift.feature_count == 0:
            console.print("[red]monitoring figures are missing[/red]")
            return 1
        got = client.learners.get(learner.learner_id)
        console.print(f"learner: version {got.version}, model {got.current_model_id}, "
                      f"{got.observations_learned} pairs learned, {got.predictions_served} predictions served")
        console.print("Prometheus: the Learner's metrics port (9105 in `make up`); Grafana dashboard: "
                      "k8s/monitoring/grafana-dashboard-learner.json")
    return 0
