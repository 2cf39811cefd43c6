"""Recipe archives are reproducible: the same directory gives the same bytes (and ledger hash)."""

import hashlib
import os
import tarfile
import time

import pytest

from clients.recipes import pack_recipe


def test_same_directory_same_bytes(tmp_path):
    src = tmp_path / "r"
    (src / "pkg").mkdir(parents=True)
    (src / "recipe.toml").write_text('[recipe]\nname="x"\nentrypoint="train.py"\nframework="sklearn"\n')
    (src / "train.py").write_text("print(1)\n")
    (src / "pkg" / "util.py").write_text("X = 1\n")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "junk.pyc").write_bytes(b"junk")
    first = pack_recipe(src, tmp_path / "a.tar.gz").read_bytes()
    time.sleep(1.1)
    os.utime(src / "train.py")  # a newer mtime must not change the archive
    second = pack_recipe(src, tmp_path / "b.tar.gz").read_bytes()
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        assert tar.getnames() == ["pkg/util.py", "recipe.toml", "train.py"]


def test_directory_without_recipe_toml_is_refused(tmp_path):
    with pytest.raises(ValueError, match="recipe.toml"):
        pack_recipe(tmp_path, tmp_path / "x.tar.gz")
