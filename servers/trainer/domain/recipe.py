"""The recipe contract (docs/recipes.md): `recipe.toml` parsing and validation, and the safe
unpacking of a recipe archive. No grpc, no generated code.

Every refusal is an `InvalidArgument` whose message names the offending field or archive
member, so a user can fix the recipe from the message alone.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tomllib
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers.common import errors

RECIPE_FILE = "recipe.toml"
FRAMEWORKS = ("pytorch", "sklearn", "tensorflow")
# The single artifact a recipe writes, by framework (MLMESH_OUTPUT_PATH points at it).
ARTIFACT_NAMES = {"pytorch": "model.pt", "sklearn": "model.pkl", "tensorflow": "model.keras"}
DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")

_RECIPE_KEYS = {"name", "entrypoint", "framework", "requirements", "input", "parameters"}
_INPUT_KEYS = {"shape", "dtype", "csv_feature_columns", "scale"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,127}$")


def _bad(message: str, reason: str = "RECIPE_INVALID") -> errors.InvalidArgument:
    return errors.InvalidArgument(f"invalid recipe: {message}", reason=reason)


@dataclass(frozen=True)
class InputSignature:
    """The model's input as the recipe declares it; the Translator reads it."""

    shape: tuple[int, ...]  # -1 = any size
    dtype: str
    csv_feature_columns: tuple[int, int] | None = None
    scale: float | None = None

    def to_json(self) -> str:
        """`{"shape": [null, 1, 8, 8], "dtype": "float32", ...}` (-1 becomes null)."""
        doc: dict[str, Any] = {"shape": [None if d == -1 else d for d in self.shape], "dtype": self.dtype}
        if self.csv_feature_columns is not None:
            doc["csv_feature_columns"] = list(self.csv_feature_columns)
        if self.scale is not None:
            doc["scale"] = self.scale
        return json.dumps(doc, separators=(", ", ": "))

    @classmethod
    def from_json(cls, text: str) -> InputSignature:
        doc = json.loads(text)
        cols = doc.get("csv_feature_columns")
        return cls(
            shape=tuple(-1 if d is None else int(d) for d in doc["shape"]),
            dtype=doc["dtype"],
            csv_feature_columns=tuple(cols) if cols is not None else None,
            scale=doc.get("scale"),
        )


@dataclass(frozen=True)
class RecipeSpec:
    """A validated `recipe.toml`."""

    name: str
    entrypoint: str
    framework: str
    input: InputSignature
    requirements: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def artifact_name(self) -> str:
        return ARTIFACT_NAMES[self.framework]

    def params_json(self, overrides: dict[str, Any] | None = None) -> str:
        return json.dumps({**self.parameters, **(overrides or {})}, sort_keys=True)


def _relative_file(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"recipe.{key} must be a non-empty string (a path inside the recipe)")
    path = value.strip()
    if path.startswith("/") or "\\" in path or ".." in path.split("/"):
        raise _bad(f"recipe.{key} {path!r} must be a relative path inside the recipe, without '..'")
    return posixpath.normpath(path)


def _parse_input(raw: Any) -> InputSignature:
    if raw is None:
        raise _bad("[recipe.input] is missing: declare the model's input shape and dtype for the Translator")
    if not isinstance(raw, dict):
        raise _bad("recipe.input must be a table")
    unknown = sorted(set(raw) - _INPUT_KEYS)
    if unknown:
        raise _bad(f"unknown key recipe.input.{unknown[0]} (known: {', '.join(sorted(_INPUT_KEYS))})")
    shape = raw.get("shape")
    if (not isinstance(shape, list) or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and (d == -1 or d > 0) for d in shape)):
        raise _bad(f"recipe.input.shape must be a non-empty list of positive integers or -1 (any size), "
                   f"got {shape!r}")
    dtype = raw.get("dtype")
    if dtype not in DTYPES:
        raise _bad(f"recipe.input.dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    cols = raw.get("csv_feature_columns")
    if cols is not None:
        if (not isinstance(cols, list) or len(cols) != 2
                or not all(isinstance(c, int) and not isinstance(c, bool) for c in cols)
                or not 0 <= cols[0] < cols[1]):
            raise _bad(f"recipe.input.csv_feature_columns must be [first, end) with 0 <= first < end, got {cols!r}")
        cols = (cols[0], cols[1])
    scale = raw.get("scale")
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
            raise _bad(f"recipe.input.scale must be a positive finite number, got {scale!r}")
        scale = float(scale)
    return InputSignature(tuple(shape), dtype, cols, scale)


def parse_recipe_toml(text: str | bytes) -> RecipeSpec:
    """Parses and validates a `recipe.toml`; InvalidArgument naming the field otherwise."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _bad("recipe.toml is not UTF-8") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(f"recipe.toml is not valid TOML: {exc}", "RECIPE_TOML_INVALID") from None
    if set(doc) - {"recipe"}:
        raise _bad(f"unknown table [{sorted(set(doc) - {'recipe'})[0]}] in recipe.toml (only [recipe] is read)")
    recipe = doc.get("recipe")
    if not isinstance(recipe, dict):
        raise _bad("recipe.toml has no [recipe] table")
    unknown = sorted(set(recipe) - _RECIPE_KEYS)
    if unknown:
        raise _bad(f"unknown key recipe.{unknown[0]} (known: {', '.join(sorted(_RECIPE_KEYS))})")
    name = recipe.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(f"recipe.name must be 1-128 letters, digits, '.', '_', '-' or spaces, got {name!r}")
    entrypoint = _relative_file(recipe.get("entrypoint"), "entrypoint")
    if not entrypoint.endswith(".py"):
        raise _bad(f"recipe.entrypoint {entrypoint!r} must be a Python file (.py)")
    framework = recipe.get("framework")
    if framework not in FRAMEWORKS:
        raise _bad(f"recipe.framework must be one of {', '.join(FRAMEWORKS)}, got {framework!r}",
                   "RECIPE_FRAMEWORK_UNKNOWN")
    requirements = recipe.get("requirements")
    if requirements is not None:
        requirements = _relative_file(requirements, "requirements")
    parameters = recipe.get("parameters", {})
    if not isinstance(parameters, dict):
        raise _bad("recipe.parameters must be a table")
    try:
        json.dumps(parameters)
    except TypeError as exc:
        raise _bad(f"recipe.parameters must hold JSON values (no dates or times): {exc}") from None
    return RecipeSpec(name=name, entrypoint=entrypoint, framework=framework, input=_parse_input(recipe.get("input")),
                      requirements=requirements, parameters=parameters)


def load_recipe(root: Path) -> RecipeSpec:
    """Reads `root/recipe.toml` and checks that the files it names exist under `root`."""
    path = root / RECIPE_FILE
    if not path.is_file():
        raise _bad("the archive has no recipe.toml at its root", "RECIPE_TOML_MISSING")
    spec = parse_recipe_toml(path.read_bytes())
    for key, rel in (("entrypoint", spec.entrypoint), ("requirements", spec.requirements)):
        if rel is not None and not (root / rel).is_file():
            raise _bad(f"recipe.{key} {rel!r} is not a file in the archive", "RECIPE_FILE_MISSING")
    return spec


# -- archives ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveLimits:
    max_bytes: int = 1 << 30  # unpacked size
    max_members: int = 10_000


def archive_kind(filename: str) -> str:
    """"tar" or "zip" from the archive's file name; InvalidArgument for anything else."""
    lower = filename.lower()
    if lower.endswith((".tar.gz", ".tgz")):
        return "tar"
    if lower.endswith(".zip"):
        return "zip"
    raise _bad(f"recipe archive {filename!r} must be a .tar.gz, .tgz or .zip file", "RECIPE_ARCHIVE_TYPE")


def _member_path(name: str) -> str:
    """The member's normalized relative path; InvalidArgument for absolute paths and '..'."""
    if "\x00" in name:
        raise _bad(f"archive member {name!r} has a NUL byte in its name", "RECIPE_ARCHIVE_UNSAFE")
    clean = name.replace("\\", "/")
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean):
        raise _bad(f"archive member {name!r} has an absolute path", "RECIPE_ARCHIVE_UNSAFE")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _bad(f"archive member {name!r} points outside the recipe ('..')", "RECIPE_ARCHIVE_UNSAFE")
    return "/".join(parts)


def _inside(root: Path, rel_dir: str, target: str) -> bool:
    if target.startswith("/"):
        return False
    joined = posixpath.normpath(posixpath.join(rel_dir, target))
    return not (joined == ".." or joined.startswith("../"))


class _Budget:
    def __init__(self, limits: ArchiveLimits):
        self.limits, self.bytes, self.members = limits, 0, 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise _bad(f"the archive has more than {self.limits.max_members} members", "RECIPE_ARCHIVE_TOO_LARGE")

    def add(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_bytes:
            raise _bad(f"the archive unpacks to more than {self.limits.max_bytes} bytes", "RECIPE_ARCHIVE_TOO_LARGE")


def _copy(src, dest: Path, budget: _Budget, mode: int = 0o644) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as out:
        while True:
            block = src.read(1 << 20)
            if not block:
                break
            budget.add(len(block))
            out.write(block)
    os.chmod(dest, (mode & 0o755) | 0o600)


def _safe_dest(root: Path, rel: str) -> Path:
    dest = root / rel
    # A directory symlink made by an earlier member must not carry a later one outside.
    if not dest.parent.resolve().is_relative_to(root.resolve()):
        raise _bad(f"archive member {rel!r} would be written outside the recipe through a link",
                   "RECIPE_ARCHIVE_UNSAFE")
    return dest


def _extract_tar(archive: Path, root: Path, budget: _Budget) -> None:
    try:
        tar = tarfile.open(archive, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _bad(f"the recipe archive is not a readable tar.gz: {exc}", "RECIPE_ARCHIVE_CORRUPT") from None
    with tar:
        try:
            for member in tar:
                budget.member(member.name)
                rel = _member_path(member.name)
                if not rel:
                    continue
                if member.isdir():
                    _safe_dest(root, rel).mkdir(parents=True, exist_ok=True)
                elif member.isreg():
                    src = tar.extractfile(member)
                    assert src is not None
                    _copy(src, _safe_dest(root, rel), budget, member.mode)
                elif member.issym() or member.islnk():
                    target = member.linkname
                    base = posixpath.dirname(rel) if member.issym() else ""
                    if not _inside(root, base, target):
                        raise _bad(f"archive member {member.name!r} links outside the recipe ({target!r})",
                                   "RECIPE_ARCHIVE_UNSAFE")
                    dest = _safe_dest(root, rel)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    if member.issym():
                        os.symlink(target, dest)
                    else:
                        source = _safe_dest(root, _member_path(target))
                        if not source.is_file():
                            raise _bad(f"archive member {member.name!r} is a hard link to a missing file",
                                       "RECIPE_ARCHIVE_UNSAFE")
                        budget.add(source.stat().st_size)
                        shutil.copyfile(source, dest)
                else:
                    raise _bad(f"archive member {member.name!r} is a device, FIFO or other special file",
                               "RECIPE_ARCHIVE_UNSAFE")
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise _bad(f"the recipe archive is corrupt: {exc}", "RECIPE_ARCHIVE_CORRUPT") from None


def _extract_zip(archive: Path, root: Path, budget: _Budget) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise _bad(f"the recipe archive is not a readable zip: {exc}", "RECIPE_ARCHIVE_CORRUPT") from None
    with zf:
        try:
            for info in zf.infolist():
                budget.member(info.filename)
                rel = _member_path(info.filename)
                if not rel:
                    continue
                unix_mode = info.external_attr >> 16
                if stat.S_ISLNK(unix_mode):
                    raise _bad(f"archive member {info.filename!r} is a symbolic link (not allowed in zip recipes)",
                               "RECIPE_ARCHIVE_UNSAFE")
                if info.is_dir():
                    _safe_dest(root, rel).mkdir(parents=True, exist_ok=True)
                    continue
                with zf.open(info) as src:
                    _copy(src, _safe_dest(root, rel), budget, unix_mode or 0o644)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, zlib.error) as exc:
            raise _bad(f"the recipe archive is corrupt: {exc}", "RECIPE_ARCHIVE_CORRUPT") from None


def unpack_recipe(archive: Path, filename: str, dest: Path, limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """Unpacks the recipe archive into `dest` (created, must not exist) and returns the recipe's
    root: `dest` itself, or its single top-level directory when the archive wraps the recipe in
    one (`digits-cnn/recipe.toml`). Refuses absolute paths, '..', links leading outside, special
    files, and archives above `limits`."""
    kind = archive_kind(filename)
    dest.mkdir(parents=True)
    budget = _Budget(limits)
    if kind == "tar":
        _extract_tar(archive, dest, budget)
    else:
        _extract_zip(archive, dest, budget)
    if not (dest / RECIPE_FILE).exists():
        entries = list(dest.iterdir())
        if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() \
                and (entries[0] / RECIPE_FILE).is_file():
            return entries[0]
    return dest
