"""Drift computed in a process of its own, so that Evidently never contends with serving for the GIL.

A drift computation (Evidently's per-column tests over the window) is a few hundred milliseconds of
Python and pandas. In a thread of the Learner's process it holds the GIL in 5 ms slices against the
event loop that serves predictions: measured (docs/performance.md) with the default policy (window
500, every 100) at one request in flight, -22% ModelInfer throughput and a p99 4x longer, since a
busy learner recomputes drift continuously. Here the worker thread that runs `Monitor.evaluate`
only waits (GIL released) while one child process, started on first use with `spawn` (never fork
a process that runs gRPC's threads), runs `drift.data_drift` and sends the result back.

One child serves every learner of the server, one computation at a time. A child that dies (OOM,
a signal) fails that computation, which the learner logs as any failed drift computation; the next
one starts a new child. The child dies with the Learner (the kernel's parent-death signal), so a
Learner killed with -9 leaves no orphan behind.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime

import pandas as pd

from servers.learner.monitoring import drift

log = logging.getLogger("mlmesh.learner.drift")


def _die_with_parent(parent: int) -> None:
    """The child's initializer: SIGKILL when the Learner ends, however it ends (prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: shut down with the pool only
        return
    if os.getppid() != parent:  # the Learner ended before the signal was armed
        os._exit(1)


def _in_child(reference: pd.DataFrame, current: pd.DataFrame, names: list[str], threshold: float,
              drift_share: float, when: datetime | None) -> tuple[int, drift.DataDrift]:
    return os.getpid(), drift.data_drift(reference, current, names, threshold, drift_share, when)


class DriftProcess:
    """A `drift.data_drift` with the same signature that computes in the child process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self.last_pid: int | None = None  # the child that made the latest computation

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the drift process is shut down")
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_die_with_parent, initargs=(os.getpid(),))
            return self._pool

    def __call__(self, reference: pd.DataFrame, current: pd.DataFrame, names, threshold: float, drift_share: float,
                 when: datetime | None = None) -> drift.DataDrift:
        pool = self._executor()
        try:
            pid, result = pool.submit(_in_child, reference, current, list(names), threshold, drift_share,
                                      when).result()
        except BrokenProcessPool:
            with self._lock:  # the next computation starts a new child
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError("the drift process died during the computation") from None
        self.last_pid = pid
        return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
