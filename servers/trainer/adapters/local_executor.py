"""The local executor: a recipe runs as a process on the Trainer's machine through the mesh's
shared `servers.common.processes.LocalProcessRunner` (its own session, time and memory limits,
lines streamed); this module builds the per-recipe virtualenvs layered on the ML base environment.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import os
import shutil
import uuid
from pathlib import Path

from servers.common.processes import LocalProcessRunner, kill_group, pump
from servers.trainer.domain.ports import LineSink
from servers.trainer.domain.steps import StepFailed

__all__ = ["LocalProcessRunner", "RecipeEnvironments"]

class RecipeEnvironments:
    """Implements `domain.ports.Environments`.

    A recipe without requirements runs with the ML base Python (`base_python`, `.venv-ml`). One
    with requirements runs in `<envs_dir>/<sha256 of the requirements file>`: a virtualenv whose
    site-packages has a `.pth` pointing at the base environment's site-packages (torch and the
    rest are not reinstalled), into which pip installs the requirements. It is built once in a
    temporary directory, renamed into place when pip succeeded, and reused by every recipe
    with the same requirements file.
    """

    def __init__(self, base_python: Path, envs_dir: Path, *, pip_timeout: float = 1800.0):
        self.base_python = base_python
        self.envs_dir = envs_dir
        self.pip_timeout = pip_timeout
        self._locks: dict[str, asyncio.Lock] = {}

    async def python_for(self, requirements: Path | None, on_line: LineSink) -> Path:
        if not self.base_python.exists():
            raise StepFailed(f"the ML base environment is missing: {self.base_python} does not exist "
                             "(run `make ml-venv`)")
        if requirements is None:
            return self.base_python
        digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
        env_dir = self.envs_dir / digest
        python = env_dir / "bin" / "python"
        async with self._locks.setdefault(digest, asyncio.Lock()):
            if (env_dir / ".mlmesh-ready").exists():
                await on_line("trainer", f"environment: reusing {env_dir.name[:12]} for the recipe's requirements")
                return python
            await on_line("trainer", f"environment: building {env_dir.name[:12]} for the recipe's requirements")
            self.envs_dir.mkdir(parents=True, exist_ok=True)
            build = self.envs_dir / f".build-{digest[:12]}-{uuid.uuid4().hex[:8]}"
            try:
                await self._build(build, requirements, on_line)
                shutil.rmtree(env_dir, ignore_errors=True)
                os.rename(build, env_dir)
            finally:
                shutil.rmtree(build, ignore_errors=True)
        return python

    async def _run(self, argv: list[str], on_line: LineSink, what: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        assert proc.stdout is not None
        tail: collections.deque[str] = collections.deque(maxlen=10)

        async def sink(_stream: str, text: str) -> None:
            tail.append(text)
            await on_line("trainer", f"environment: {text}")

        try:
            await asyncio.wait_for(asyncio.gather(pump(proc.stdout, "trainer", sink, None), proc.wait()),
                                   timeout=self.pip_timeout)
        except TimeoutError:
            raise StepFailed(f"{what} took longer than {self.pip_timeout:.0f} s") from None
        finally:
            kill_group(proc.pid)
            if proc.returncode is None:
                await proc.wait()
        if proc.returncode != 0:
            raise StepFailed(f"{what} failed (exit status {proc.returncode}): " + " | ".join(tail))

    async def _build(self, build: Path, requirements: Path, on_line: LineSink) -> None:
        base = str(self.base_python)
        await self._run([base, "-m", "venv", "--without-pip", str(build)], on_line, "creating the recipe's virtualenv")
        probe = await asyncio.create_subprocess_exec(
            base, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib']); "
                        "print(sysconfig.get_paths()['platlib'])",
            stdout=asyncio.subprocess.PIPE)
        out, _ = await probe.communicate()
        base_paths = list(dict.fromkeys(out.decode().split()))
        new_python = build / "bin" / "python"
        probe = await asyncio.create_subprocess_exec(
            str(new_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            stdout=asyncio.subprocess.PIPE)
        out, _ = await probe.communicate()
        site = Path(out.decode().strip())
        site.mkdir(parents=True, exist_ok=True)
        (site / "_mlmesh_base.pth").write_text("".join(f"{p}\n" for p in base_paths))
        await self._run([base, "-m", "pip", "--python", str(new_python), "install", "--disable-pip-version-check",
                         "--no-input", "-r", str(requirements)],
                        on_line, "installing the recipe's requirements")
        (build / ".mlmesh-ready").write_text(str(requirements.name) + "\n")
