"""Packing a recipe directory into the archive the Registry takes.

The archive is reproducible: members sorted, owner and times zeroed, gzip without a
timestamp. The same directory always gives the same bytes, so the same MD5 and SHA-256 on
the ledger (train_image_hash) — a recipe's hash identifies its content, not when it was packed.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

SKIP = {"__pycache__", ".git", ".ipynb_checkpoints"}


def pack_recipe(directory: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Writes `directory` (which must hold recipe.toml) as a reproducible .tar.gz at `out`."""
    root = Path(directory)
    if not (root / "recipe.toml").is_file():
        raise ValueError(f"{root} has no recipe.toml; see docs/recipes.md")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not SKIP.intersection(p.relative_to(root).parts))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size = path.stat().st_size
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.mtime = 0
            with open(path, "rb") as f:
                tar.addfile(info, f)
    out = Path(out)
    with open(out, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out


def recipe_archive(recipe: str | os.PathLike) -> bytes:
    """The archive bytes of a recipe: a directory is packed (reproducibly), a file read as it is."""
    path = Path(recipe)
    if path.is_dir():
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return pack_recipe(path, Path(tmp) / f"{path.resolve().name}.tar.gz").read_bytes()
    return path.read_bytes()
