"""docs/sdk.md cannot rot: every fenced python block in it runs, in order, as one script (state
carries from block to block, as in a notebook) against the stack through Envoy, with the token
from MLMESH_TOKEN as the page says. A block that raises fails the test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "sdk.md"
ORG = "sdk-docs-org"


def blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)


def test_every_block_of_the_page_is_python():
    found = blocks(DOC.read_text())
    assert len(found) >= 10
    assert {lang for lang, _ in found} == {"python"}, "a block this test does not run would rot"


def test_docs_sdk_walkthrough_runs(stack, tmp_path):
    # Prepare: the page's blocks as one script
    script = tmp_path / "walkthrough.py"
    script.write_text("\n\n".join(code for _, code in blocks(DOC.read_text())))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLMESH_")}
    env.update(MLMESH_TARGET=stack.envoy, MLMESH_TOKEN=stack.token(ORG))

    # Execute
    result = subprocess.run([sys.executable, str(script)], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=1200)

    # Assert: it ran to the end, and printed what the page says it prints
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    out = result.stdout
    assert f"as {ORG}" in out
    assert "bytes, database and ledger agree: True" in out
    assert "job STATE_SUCCEEDED" in out and "STATE_TRAINED" in out
    assert "passed" in out.split("opset", 1)[1].splitlines()[0]
    assert "STATE_READY" in out and "window ->" in out
    assert "NOT_FOUND LEARNER_NOT_FOUND request" in out
    assert "True version" in out
