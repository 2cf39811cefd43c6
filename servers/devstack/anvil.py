"""The embedded chain: Anvil (npm `@foundry-rs/anvil`) with its state persisted on disk.

What survives what
------------------
Anvil keeps the whole chain in memory. `start_anvil` runs it with
`--state <data_dir>/anvil/state.json --state-interval 1`: Anvil loads that file at start
(when it exists), rewrites it every second, and writes it once more when it exits on
SIGTERM or SIGINT. So:

* a graceful stop (SIGTERM, `make down`, `procs.stop`) loses nothing: every block,
  transaction, receipt and contract is back after the next `start_anvil`;
* a kill -9 (or a power cut) loses the blocks mined since the last periodic dump, i.e. at
  most about one second of transactions. Nothing acknowledged is lost with them: the Ledger
  acknowledges a write only once its signed transaction is in its fsynced journal, and sends
  the journaled transactions the node lost again (same hash, same contract address) as soon
  as it sees the node's count for its signer fall behind (servers/ledger/adapters/journal.py);
* Anvil rewrites state.json in place (truncate, then write; no rename, no fsync), so a
  kill -9 that lands during a dump leaves a truncated file that Anvil refuses to load.
  `start_anvil` therefore validates the file first. A valid file is copied (atomically) to
  `state.good.json`; a broken one is moved aside to `state.broken-<unix time>.json` and
  `state.good.json` - the state as of the previous successful start - is restored, so the
  chain starts, and the Ledger's journal sends again everything after that previous start.

The production chain (Quorum / Besu) persists every block itself; none of this applies.

The process is the Anvil binary itself, not the npm wrapper `node_modules/.bin/anvil`: the
wrapper forwards SIGTERM and exits at once, without waiting for Anvil's final state dump, so
a caller that waits for it to exit could restart Anvil on a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from servers.devstack import procs

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO_ROOT / "node_modules"
CHAIN_ID = 31337
STATE_INTERVAL_SECONDS = 1

# `@foundry-rs/anvil` installs the binary from a per-platform package (see its const.mjs).
_PLATFORM_PACKAGES = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
}


def anvil_binary() -> Path:
    """The Anvil executable from node_modules (the native binary when it can be found)."""
    package = _PLATFORM_PACKAGES.get((platform.system(), platform.machine()))
    if package is not None:
        native = NODE_MODULES / "@foundry-rs" / package / "bin" / "anvil"
        if native.is_file() and os.access(native, os.X_OK):
            return native
    wrapper = NODE_MODULES / ".bin" / "anvil"
    if wrapper.exists():
        return wrapper
    raise procs.StartError(
        f"anvil is not installed under {NODE_MODULES}; run `make venv` (it runs npm install)"
    )


def state_dir(data_dir: Path) -> Path:
    return data_dir / "anvil"


def _valid_json(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            json.load(f)
        return True
    except (OSError, ValueError):
        return False


def _atomic_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(dst.name + ".tmp")
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout)
        fout.flush()
        os.fsync(fout.fileno())
    tmp.replace(dst)


def prepare_state(directory: Path) -> Path:
    """Checks `<directory>/state.json` before Anvil loads it (see the module docstring)."""
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "state.json"
    good = directory / "state.good.json"
    if not state.exists():
        return state
    if _valid_json(state):
        _atomic_copy(state, good)
        return state
    broken = directory / f"state.broken-{int(time.time())}.json"
    state.replace(broken)
    if good.exists():
        _atomic_copy(good, state)
        log.warning(
            "anvil state %s was truncated (killed during a dump); moved it to %s and restored %s: "
            "blocks mined after the previous start are lost",
            state, broken.name, good.name,
        )
    else:
        log.warning(
            "anvil state %s was unreadable; moved it to %s and starting an empty chain", state, broken.name
        )
    return state


def rpc_ready(url: str, timeout: float = 0.5) -> bool:
    """True when the node at `url` answers eth_chainId."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with contextlib.suppress(OSError, ValueError, urllib.error.URLError):
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return "result" in json.loads(response.read())
    return False


def rpc_url(port: int, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}"


def start_anvil(
    data_dir: Path,
    port: int,
    *,
    pid_dir: Path | None = None,
    host: str = "127.0.0.1",
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> procs.Proc:
    """Start Anvil on `host:port` (chain id 31337) with state under `<data_dir>/anvil/`; return
    once it answers eth_chainId. Its log goes to `<data_dir>/logs/anvil.log` by default."""
    directory = state_dir(data_dir)
    state = prepare_state(directory)
    argv = [
        str(anvil_binary()),
        "--host", host,
        "--port", str(port),
        "--chain-id", str(CHAIN_ID),
        "--state", str(state),
        "--state-interval", str(STATE_INTERVAL_SECONDS),
        "--color", "never",
    ]
    proc = procs.start("anvil", argv, log_path=log_path or data_dir / "logs" / "anvil.log", pid_dir=pid_dir)
    url = rpc_url(port, host)
    try:
        procs.wait_until(
            proc, lambda: rpc_ready(url), timeout=timeout, what=f"answering eth_chainId at {url}"
        )
    except procs.StartError:
        procs.stop(proc)
        raise
    return proc
