"""Builds the mlmesh-client wheel: stages this package and the generated stubs into one tree
(build/mlmesh-client/src/mlmesh = src/mlmesh + gen/mlmesh) and runs pip's isolated PEP 517 build
with the pinned setuptools. Prints the wheel's path. Run by `make dist`."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def stage(build: Path) -> Path:
    """Copies the package and the stubs into `build` (emptied first); returns the project dir."""
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(HERE / name, build / name)
    shutil.copytree(HERE / "src", build / "src", ignore=IGNORE)
    stubs = REPO / "gen" / "mlmesh"
    for child in sorted(stubs.iterdir()):
        target = build / "src" / "mlmesh" / child.name
        if target.exists():
            raise SystemExit(f"gen/mlmesh/{child.name} clashes with the SDK's src/mlmesh/{child.name}")
        shutil.copytree(child, target, ignore=IGNORE)
    return build


def build_wheel(out: Path, build: Path) -> Path:
    project = stage(build)
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("mlmesh_client-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out),
                    str(project)], check=True)
    version = {}
    exec((HERE / "src" / "mlmesh" / "client" / "_version.py").read_text(), version)
    wheel = out / f"mlmesh_client-{version['__version__']}-py3-none-any.whl"
    if not wheel.exists():
        raise SystemExit(f"no {wheel.name} in {out}; found {sorted(set(out.glob('*.whl')) - before)}")
    return wheel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="where the wheel goes")
    parser.add_argument("--build", type=Path, default=REPO / "build" / "mlmesh-client", help="staging dir")
    args = parser.parse_args()
    print(build_wheel(args.out, args.build))


if __name__ == "__main__":
    main()
