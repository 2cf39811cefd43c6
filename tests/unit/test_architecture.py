"""The layer rules hold: the import-linter contracts in .importlinter pass, and cover every server.

`make lint` runs the same contracts; running them here too means a plain `pytest` (and so `make test`)
fails when a domain module imports gRPC, generated code or an adapter, when one server imports another,
or when an import cycle appears.
"""

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".importlinter"


def _contract(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser()
    parser.read(CONFIG)
    return parser[f"importlinter:contract:{name}"]


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def test_import_contracts_are_kept():
    # The virtualenv's own console script, beside the interpreter running the tests (not resolved, so
    # that a .venv/bin/python symlink still points into .venv/bin).
    lint_imports = Path(sys.executable).with_name("lint-imports")
    assert lint_imports.exists(), f"{lint_imports} is missing: install requirements/mesh.txt (make venv)"
    result = subprocess.run(
        [str(lint_imports), "--config", str(CONFIG), "--no-cache", "--no-logo"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0:
        pytest.fail(
            "import-linter contracts in .importlinter are broken (docs/architecture.md explains the layers):\n"
            + result.stdout + result.stderr,
            pytrace=False,
        )


def test_every_server_is_held_to_the_layers():
    """A new servers.<name> with a domain package must be listed in the per-server layers contract."""
    servers = sorted(p.parent.parent.name for p in (ROOT / "servers").glob("*/domain/__init__.py"))
    assert servers, "no servers/<name>/domain packages found"
    containers = _lines(_contract("server-layers")["containers"])
    missing = [name for name in servers if f"servers.{name}" not in containers]
    assert not missing, (
        f"add servers.{', servers.'.join(missing)} to the containers of [importlinter:contract:server-layers] "
        "and to the server line of [importlinter:contract:mesh-packages] in .importlinter"
    )
