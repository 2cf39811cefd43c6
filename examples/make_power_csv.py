"""Writes a synthetic smart-energy power series as a CSV dataset (nothing is downloaded).

    .venv-ml/bin/python examples/make_power_csv.py --out /tmp/consumption.csv
    python3 examples/make_power_csv.py --kind generation --days 15 --seed 3 --out /tmp/generation.csv

Stands in for the seed's UC10 smart-meter data (D3.4 section 2.1.3.1: about 15 days of consumed power
with a 24-hour seasonality), at 15-minute resolution (96 samples a day). Header ``timestamp,power_kw``;
timestamps are ISO 8601 local times starting at ``--start`` (a Monday by default).

``--kind consumption`` (default): a base load plus a daily load shape (a morning ramp, a working-day
plateau and an evening peak, low at night); weekends keep only part of the daytime load; a slow drift
(a linear trend plus a multi-day oscillation) moves the level; Gaussian noise with a little AR(1)
memory on top. ``--kind generation``: a solar-like bell between sunrise and sunset, exactly zero at
night, scaled by a day-to-day cloudiness factor and a slow drift in peak power, with noise only while
the sun is up (no weekday/weekend difference: the sun keeps no calendar).

Only numpy is needed, so it runs with `.venv-ml/bin/python` or any Python with numpy.
"""

from __future__ import annotations

import argparse
import csv
from datetime import datetime, timedelta

import numpy as np

SAMPLES_PER_DAY = 96  # 15-minute resolution
STEP = timedelta(minutes=15)


def consumption(days: int, seed: int, base_kw: float = 18.0, peak_kw: float = 30.0, weekend_share: float = 0.75,
                drift_kw_per_day: float = 0.25, noise_kw: float = 4.0, start_weekday: int = 0) -> np.ndarray:
    """Consumed power (kW) of one building, ``days * 96`` samples."""
    rng = np.random.default_rng(seed)
    n = days * SAMPLES_PER_DAY
    t = np.arange(n)
    hour = (t % SAMPLES_PER_DAY) / 4.0
    day = t // SAMPLES_PER_DAY
    # daily load shape in 0..1: morning ramp 6-9 h, working-day plateau, evening peak around 19 h
    morning = 1.0 / (1.0 + np.exp(-(hour - 7.5) * 1.8)) - 1.0 / (1.0 + np.exp(-(hour - 21.5) * 1.5))
    evening = 0.45 * np.exp(-0.5 * ((hour - 19.0) / 1.4) ** 2)
    lunch_dip = -0.12 * np.exp(-0.5 * ((hour - 13.5) / 0.8) ** 2)
    shape = np.clip(morning + evening + lunch_dip, 0.0, None)
    weekend = ((day + start_weekday) % 7) >= 5
    daily = np.where(weekend, weekend_share, 1.0) * shape
    # slow drift: a linear trend and a 5-day oscillation of the level
    drift = drift_kw_per_day * t / SAMPLES_PER_DAY + 1.5 * np.sin(2 * np.pi * t / (5 * SAMPLES_PER_DAY))
    noise = np.empty(n)
    white = rng.normal(0.0, noise_kw, n)
    noise[0] = white[0]
    for i in range(1, n):  # AR(1) with a little memory; stationary sd stays close to noise_kw
        noise[i] = 0.3 * noise[i - 1] + white[i] * np.sqrt(1 - 0.3**2)
    return np.clip(base_kw + peak_kw * daily + drift + noise, 0.0, None)


def generation(days: int, seed: int, peak_kw: float = 40.0, drift_per_day: float = 0.01,
               noise_share: float = 0.05) -> np.ndarray:
    """Generated solar power (kW), ``days * 96`` samples; zero between sunset and sunrise."""
    rng = np.random.default_rng(seed)
    n = days * SAMPLES_PER_DAY
    t = np.arange(n)
    hour = (t % SAMPLES_PER_DAY) / 4.0
    day = t // SAMPLES_PER_DAY
    sunrise, sunset = 6.5, 19.5
    sun = np.clip(np.sin(np.pi * (hour - sunrise) / (sunset - sunrise)), 0.0, None)
    sun[(hour < sunrise) | (hour > sunset)] = 0.0
    bell = sun**1.5
    cloudiness = np.clip(rng.normal(0.85, 0.12, days), 0.35, 1.0)  # one factor per day
    drift = 1.0 + drift_per_day * t / SAMPLES_PER_DAY
    noise = 1.0 + rng.normal(0.0, noise_share, n)
    power = peak_kw * bell * cloudiness[day] * drift * noise
    return np.where(bell > 0, np.clip(power, 0.0, None), 0.0)


def power_series(kind: str, days: int, seed: int, start_weekday: int = 0) -> np.ndarray:
    if kind == "consumption":
        return consumption(days, seed, start_weekday=start_weekday)
    if kind == "generation":
        return generation(days, seed)
    raise ValueError(f"kind must be consumption or generation, got {kind!r}")


def write_power_csv(path: str, kind: str = "consumption", days: int = 15, seed: int = 0,
                    start: str = "2024-03-04T00:00:00") -> int:
    first = datetime.fromisoformat(start)
    values = power_series(kind, days, seed, first.weekday())
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["timestamp", "power_kw"])
        for i, value in enumerate(values):
            writer.writerow([(first + i * STEP).isoformat(), f"{value:.3f}"])
    return len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="power.csv", help="the CSV file to write")
    parser.add_argument("--kind", choices=["consumption", "generation"], default="consumption")
    parser.add_argument("--days", type=int, default=15, help="length of the series in days (96 samples a day)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (and, for generation, the clouds)")
    parser.add_argument("--start", default="2024-03-04T00:00:00", help="first timestamp (ISO 8601; default a Monday)")
    args = parser.parse_args()
    if args.days < 1:
        parser.error("--days must be at least 1")
    rows = write_power_csv(args.out, args.kind, args.days, args.seed, args.start)
    print(f"wrote {rows} rows of {args.kind} ({args.days} days at 15-minute resolution) to {args.out}")


if __name__ == "__main__":
    main()
