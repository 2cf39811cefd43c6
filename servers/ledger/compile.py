"""Compile the Ledger's Solidity contracts with the pinned solc (npm `solc`, run by node).

    python -m servers.ledger.compile           write contracts/build/<Name>.json
    python -m servers.ledger.compile --check   recompile and fail if contracts/build/ differs

Input is solc standard JSON (optimizer on, evmVersion "prague"); each artifact holds the ABI,
creation and runtime bytecode, the exact compiler version, the settings and the SHA-256 of
the source, so a reviewer can see what produced the bytes that go on chain. Compiler
warnings fail the build: the contracts stay warning-free.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from servers.ledger.adapters.artifacts import BUILD_DIR, CONTRACT_NAMES, CONTRACTS_DIR, REPO_ROOT

SOLC_MODULE = REPO_ROOT / "node_modules" / "solc"
COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "prague",
}
_OUTPUTS = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]

# Reads standard JSON on stdin, writes {"version", "output"} on stdout. Calling the module
# instead of the solcjs CLI keeps stdout clean (the CLI prints notes before the JSON).
_NODE_DRIVER = """
const solc = require(process.argv[1]);
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const output = JSON.parse(solc.compile(input));
  process.stdout.write(JSON.stringify({ version: solc.version(), output }));
});
"""


class CompileError(RuntimeError):
    """The contracts did not compile; the message says why and what to do."""


def _source_name(name: str) -> str:
    return f"contracts/{name}.sol"


def standard_input(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, Any]:
    sources = {}
    for name in CONTRACT_NAMES:
        path = contracts_dir / f"{name}.sol"
        try:
            sources[_source_name(name)] = {"content": path.read_text()}
        except OSError as exc:
            raise CompileError(f"cannot read {path}: {exc}") from exc
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {**COMPILER_SETTINGS, "outputSelection": {"*": {"*": _OUTPUTS}}},
    }


def run_solc(std_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(compiler version, standard JSON output) from the npm solc package."""
    node = shutil.which("node")
    if node is None:
        raise CompileError("node is not on PATH; install Node.js 18+ (Debian: apt-get install nodejs)")
    if not (SOLC_MODULE / "package.json").is_file():
        raise CompileError(f"the solc npm package is missing at {SOLC_MODULE}; run `make venv` (npm install)")
    proc = subprocess.run(
        [node, "-e", _NODE_DRIVER, str(SOLC_MODULE)],
        input=json.dumps(std_input),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise CompileError(f"solc (node) exited with {proc.returncode}:\n{proc.stderr.strip()}")
    try:
        result = json.loads(proc.stdout)
    except ValueError as exc:
        raise CompileError(f"solc printed something that is not JSON: {proc.stdout[:500]!r}") from exc
    return result["version"], result["output"]


def compile_artifacts(contracts_dir: Path = CONTRACTS_DIR) -> dict[str, str]:
    """File name -> artifact text, for every contract."""
    std_input = standard_input(contracts_dir)
    version, output = run_solc(std_input)
    problems = [e for e in output.get("errors", []) if e.get("severity") in ("error", "warning")]
    if problems:
        text = "\n".join(e.get("formattedMessage") or e.get("message", "") for e in problems)
        raise CompileError(f"solc {version} reported {len(problems)} error(s)/warning(s):\n{text}")
    artifacts = {}
    for name in CONTRACT_NAMES:
        source_name = _source_name(name)
        try:
            compiled = output["contracts"][source_name][name]
        except KeyError as exc:
            raise CompileError(f"solc produced no output for {source_name}:{name}") from exc
        source = std_input["sources"][source_name]["content"]
        artifact = {
            "contractName": name,
            "sourceName": source_name,
            "sourceSha256": hashlib.sha256(source.encode()).hexdigest(),
            "compiler": {"name": "solc", "version": version},
            "settings": COMPILER_SETTINGS,
            "abi": compiled["abi"],
            "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
        }
        artifacts[f"{name}.json"] = json.dumps(artifact, indent=2) + "\n"
    return artifacts


def write(build_dir: Path = BUILD_DIR, contracts_dir: Path = CONTRACTS_DIR) -> list[Path]:
    artifacts = compile_artifacts(contracts_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, text in artifacts.items():
        path = build_dir / file_name
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(text)
        tmp.replace(path)
        written.append(path)
    return written


def stale(build_dir: Path = BUILD_DIR, contracts_dir: Path = CONTRACTS_DIR) -> list[str]:
    """Descriptions of every committed artifact that differs from a fresh compile (empty: up to date)."""
    problems = []
    for file_name, text in compile_artifacts(contracts_dir).items():
        path = build_dir / file_name
        try:
            committed = path.read_text()
        except FileNotFoundError:
            problems.append(f"{path.relative_to(REPO_ROOT)} is missing")
            continue
        if committed != text:
            problems.append(f"{path.relative_to(REPO_ROOT)} differs from a fresh compile of its source")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m servers.ledger.compile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="fail if contracts/build/ is stale")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = stale()
            if problems:
                print("contracts/build/ is stale:", *[f"  {p}" for p in problems], sep="\n", file=sys.stderr)
                print("run `make contracts` and commit contracts/build/", file=sys.stderr)
                return 1
            print("contracts/build/ matches contracts/*.sol")
            return 0
        for path in write():
            print(f"wrote {path.relative_to(REPO_ROOT)}")
        return 0
    except CompileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
