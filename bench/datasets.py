"""Dataset transfer benchmark: upload and download a large file through the front door.

Starts its own mesh with `servers.devstack` in a tmp data dir (free ports), then, on one
file of MLMESH_BENCH_MB megabytes (default 1024):

  baseline  a raw file copy that computes MD5 + SHA-256 as it goes (what any upload must do)
  grpc      native gRPC through Envoy (the SDK): upload, download
  rest      REST through Envoy (httpx, streamed request and response bodies): upload, download

and prints MB/s, the ratio of each to the baseline measured in the same run, and the peak
RSS of the Registry and of Envoy sampled every 20 ms during each transfer.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

from bench.stack import bench_stack
import mlmesh

CHUNK = 1 << 20


class PeakRss:
    """Samples a process's RSS in a thread; `.peak` in bytes."""

    def __init__(self, pid: int, every: float = 0.02):
        self.proc = psutil.Process(pid)
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(self.every)

    def __enter__(self) -> PeakRss:
        self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def make_file(path: Path, mb: int) -> None:
    block = os.urandom(CHUNK)
    with open(path, "wb") as f:
        for i in range(mb):
            f.write(block[i % 251:] + block[: i % 251])  # distinct blocks, cheap to make


def raw_copy_with_hashes(src: Path, dst: Path) -> float:
    md5, sha = hashlib.md5(), hashlib.sha256()
    t0 = time.perf_counter()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while block := fin.read(CHUNK):
            md5.update(block)
            sha.update(block)
            fout.write(block)
        fout.flush()
        os.fsync(fout.fileno())
    return time.perf_counter() - t0


def _chunks(path: Path):
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            yield block


def run(mb: int | None = None) -> list[dict]:
    mb = mb or int(os.environ.get("MLMESH_BENCH_MB", "1024"))
    rows: list[dict] = []
    with bench_stack() as stack:
        work, token, front = stack.work, stack.token, stack.front
        registry_pid = stack.pid("registry")
        envoy_parent = psutil.Process(stack.pid("envoy"))
        envoy_pid = next(p.pid for p in [envoy_parent, *envoy_parent.children(recursive=True)]
                         if p.name() == "envoy")
        idle = {"registry": psutil.Process(registry_pid).memory_info().rss / 1e6,
                "envoy": psutil.Process(envoy_pid).memory_info().rss / 1e6}
        print(f"idle RSS: Registry {idle['registry']:.0f} MB, Envoy {idle['envoy']:.0f} MB", file=sys.stderr)
        src = work / "data.bin"
        print(f"making a {mb} MB file ...", file=sys.stderr)
        make_file(src, mb)
        size = src.stat().st_size

        def record(name: str, seconds: float, reg: PeakRss | None = None, envoy: PeakRss | None = None):
            rows.append({"case": name, "seconds": seconds, "mb_s": size / seconds / 1e6,
                         "registry_peak_rss_mb": reg.peak / 1e6 if reg else None,
                         "envoy_peak_rss_mb": envoy.peak / 1e6 if envoy else None})

        record("baseline: raw copy + MD5 + SHA-256", raw_copy_with_hashes(src, work / "copy.bin"))
        (work / "copy.bin").unlink()

        with mlmesh.Client(front, token=token) as client:
            with PeakRss(registry_pid) as r, PeakRss(envoy_pid) as e:
                t0 = time.perf_counter()
                ds = client.datasets.upload(src, organization_id="bench", display_name="bench grpc")
                record("gRPC upload via Envoy", time.perf_counter() - t0, r, e)
            with PeakRss(registry_pid) as r, PeakRss(envoy_pid) as e:
                t0 = time.perf_counter()
                client.datasets.download(ds.dataset_id, work / "grpc.bin")
                record("gRPC download via Envoy", time.perf_counter() - t0, r, e)
            (work / "grpc.bin").unlink()

        auth = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"http://{front}", headers=auth, timeout=None) as http:
            with PeakRss(registry_pid) as r, PeakRss(envoy_pid) as e:
                t0 = time.perf_counter()
                resp = http.post("/v1/datasets:upload", params={"organization_id": "bench", "display_name": "rest"},
                                 content=_chunks(src), headers={"content-type": "application/octet-stream"})
                resp.raise_for_status()
                record("REST upload via Envoy", time.perf_counter() - t0, r, e)
            rest_id = resp.json()["dataset_id"]
            with PeakRss(registry_pid) as r, PeakRss(envoy_pid) as e:
                t0 = time.perf_counter()
                sha = hashlib.sha256()
                with http.stream("GET", f"/v1/datasets/{rest_id}:download") as down, \
                        open(work / "rest.bin", "wb") as out:
                    down.raise_for_status()
                    for block in down.iter_bytes(CHUNK):
                        out.write(block)
                        sha.update(block)
                record("REST download via Envoy", time.perf_counter() - t0, r, e)
            assert sha.hexdigest() == resp.json()["sha256"], "REST download does not match"
    return rows


def report(rows: list[dict]) -> str:
    base = rows[0]["mb_s"]
    lines = [f"{'case':38} {'MB/s':>8} {'x baseline':>11} {'Registry peak RSS':>18} {'Envoy peak RSS':>15}"]
    for row in rows:
        reg = f"{row['registry_peak_rss_mb']:.0f} MB" if row["registry_peak_rss_mb"] else "-"
        env = f"{row['envoy_peak_rss_mb']:.0f} MB" if row["envoy_peak_rss_mb"] else "-"
        lines.append(f"{row['case']:38} {row['mb_s']:8.1f} {row['mb_s'] / base:11.2f} {reg:>18} {env:>15}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(run()))
