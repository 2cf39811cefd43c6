"""recipe.toml parsing and its refusals; safe unpacking of recipe archives."""

from __future__ import annotations

import io
import json
import os
import tarfile
import zipfile

import pytest

from servers.common import errors
from servers.trainer.domain.recipe import (
    ArchiveLimits,
    InputSignature,
    load_recipe,
    parse_recipe_toml,
    unpack_recipe,
)

GOOD = """
[recipe]
name = "digits-cnn"
entrypoint = "train.py"
framework = "pytorch"
requirements = "requirements.txt"
[recipe.input]
shape = [-1, 1, 8, 8]
dtype = "float32"
csv_feature_columns = [0, 64]
scale = 0.0625
[recipe.parameters]
epochs = 10
lr = 0.01
"""


def test_a_full_recipe_parses():
    spec = parse_recipe_toml(GOOD)
    assert (spec.name, spec.entrypoint, spec.framework, spec.requirements) == (
        "digits-cnn", "train.py", "pytorch", "requirements.txt")
    assert spec.artifact_name == "model.pt"
    assert json.loads(spec.params_json()) == {"epochs": 10, "lr": 0.01}
    assert json.loads(spec.input.to_json()) == {"shape": [None, 1, 8, 8], "dtype": "float32",
                                                "csv_feature_columns": [0, 64], "scale": 0.0625}


def test_input_signature_round_trips_through_json():
    sig = InputSignature((-1, 4), "float64", (2, 6), 0.5)
    assert InputSignature.from_json(sig.to_json()) == sig
    minimal = InputSignature((-1, 3, 32, 32), "uint8")
    assert InputSignature.from_json(minimal.to_json()) == minimal


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('framework = "pytorch"', 'framework = "caffe"'),
     "recipe.framework must be one of pytorch, sklearn, tensorflow, got 'caffe'"),
    (lambda t: t.replace('framework = "pytorch"\n', ""), "recipe.framework must be one of"),
    (lambda t: t.replace('entrypoint = "train.py"', 'entrypoint = "../train.py"'),
     "recipe.entrypoint '../train.py' must be a relative path"),
    (lambda t: t.replace('entrypoint = "train.py"', 'entrypoint = "/abs/train.py"'),
     "recipe.entrypoint '/abs/train.py' must be a relative path"),
    (lambda t: t.replace('entrypoint = "train.py"', 'entrypoint = "train.sh"'), "must be a Python file"),
    (lambda t: t.replace("shape = [-1, 1, 8, 8]", "shape = [-1, 0, 8]"), "recipe.input.shape must be"),
    (lambda t: t.replace("shape = [-1, 1, 8, 8]", "shape = []"), "recipe.input.shape must be"),
    (lambda t: t.replace('dtype = "float32"', 'dtype = "float128"'), "recipe.input.dtype must be one of"),
    (lambda t: t.replace("csv_feature_columns = [0, 64]", "csv_feature_columns = [64, 0]"),
     "recipe.input.csv_feature_columns must be [first, end)"),
    (lambda t: t.replace("scale = 0.0625", "scale = -1"), "recipe.input.scale must be a positive finite number"),
    (lambda t: t.replace("scale = 0.0625", "scale = nan"), "recipe.input.scale must be a positive finite number"),
    (lambda t: t.replace("scale = 0.0625", "sclae = 0.0625"), "unknown key recipe.input.sclae"),
    (lambda t: t.replace('name = "digits-cnn"', 'name = "digits-cnn"\nentry = "x"'), "unknown key recipe.entry"),
    (lambda t: t.replace("[recipe.input]\n", "[recipe.inputs]\n"), "unknown key recipe.inputs"),
    (lambda t: t.split("[recipe.input]")[0], "[recipe.input] is missing"),
    (lambda t: t + "\nwhen = 1979-05-27\n", "recipe.parameters must hold JSON values"),
    (lambda t: t.replace("[recipe]", "[recipes]"), "unknown table [recipes]"),
    (lambda t: t.replace('name = "digits-cnn"', "name = 7"), "recipe.name must be"),
    (lambda t: t + "\n[[oops", "recipe.toml is not valid TOML"),
])
def test_refusals_name_the_field(edit, message):
    with pytest.raises(errors.InvalidArgument) as info:
        parse_recipe_toml(edit(GOOD))
    assert info.value.message.startswith("invalid recipe: ")
    assert message in info.value.message


def test_load_recipe_checks_the_files_it_names(tmp_path):
    (tmp_path / "recipe.toml").write_text(GOOD)
    with pytest.raises(errors.InvalidArgument, match="recipe.entrypoint 'train.py' is not a file in the archive"):
        load_recipe(tmp_path)
    (tmp_path / "train.py").write_text("")
    with pytest.raises(errors.InvalidArgument, match="recipe.requirements 'requirements.txt' is not a file"):
        load_recipe(tmp_path)
    (tmp_path / "requirements.txt").write_text("")
    assert load_recipe(tmp_path).framework == "pytorch"
    with pytest.raises(errors.InvalidArgument, match="no recipe.toml at its root"):
        load_recipe(tmp_path / "nowhere")


# -- archives -----------------------------------------------------------------------------------


def tar(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for m in members:
            if isinstance(m, tuple):
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                t.addfile(info, io.BytesIO(m[1]))
            else:
                t.addfile(m)
    return buf.getvalue()


def link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def unpack(tmp_path, data: bytes, filename: str = "r.tar.gz", **limits):
    archive = tmp_path / filename
    archive.write_bytes(data)
    return unpack_recipe(archive, filename, tmp_path / "out", ArchiveLimits(**limits) if limits else ArchiveLimits())


def test_a_tar_recipe_unpacks_with_subdirectories_and_inner_links(tmp_path):
    root = unpack(tmp_path, tar([("recipe.toml", b"x"), ("pkg/model.py", b"y"), link("alias.py", "pkg/model.py")]))
    assert root == tmp_path / "out"
    assert (root / "pkg" / "model.py").read_bytes() == b"y" and (root / "alias.py").read_bytes() == b"y"


def test_a_recipe_wrapped_in_one_directory_is_found(tmp_path):
    root = unpack(tmp_path, tar([("digits/recipe.toml", b"x"), ("digits/train.py", b"")]))
    assert root == tmp_path / "out" / "digits"


def test_a_zip_recipe_unpacks(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("recipe.toml", "x")
        z.writestr("src/train.py", "print(1)")
    root = unpack(tmp_path, buf.getvalue(), "r.zip")
    assert (root / "src" / "train.py").read_text() == "print(1)"


@pytest.mark.parametrize("members, message", [
    ([("../evil.py", b"x")], "'../evil.py' points outside the recipe"),
    ([("a/../../evil.py", b"x")], "points outside the recipe"),
    ([("/etc/cron.d/evil", b"x")], "'/etc/cron.d/evil' has an absolute path"),
    ([link("escape", "/etc/passwd")], "'escape' links outside the recipe ('/etc/passwd')"),
    ([link("escape", "../../outside")], "links outside the recipe"),
    ([link("hard", "../outside", tarfile.LNKTYPE)], "links outside the recipe"),
    ([link("dir", ".."), ("dir/evil.py", b"x")], "links outside the recipe"),
    ([tarfile.TarInfo("fifo")], None),
])
def test_unsafe_tar_members_are_refused(tmp_path, members, message):
    if message is None:  # a FIFO
        members[0].type = tarfile.FIFOTYPE
        message = "is a device, FIFO or other special file"
    with pytest.raises(errors.InvalidArgument) as info:
        unpack(tmp_path, tar(members))
    assert message in info.value.message
    assert not (tmp_path / "evil.py").exists() and not (tmp_path.parent / "evil.py").exists()


def test_a_symlinked_directory_cannot_carry_a_later_member_outside(tmp_path):
    (tmp_path / "victim").mkdir()
    data = tar([link("d", "sub"), ("sub/ok", b""), link("sub/up", "..")])
    root = unpack(tmp_path, data)  # inner links are fine
    assert (root / "d" / "ok").exists()


def test_zip_refusals(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("evil-link")
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/passwd")
    with pytest.raises(errors.InvalidArgument, match="is a symbolic link"):
        unpack(tmp_path, buf.getvalue(), "r.zip")


def test_size_and_member_caps(tmp_path):
    big = tar([("recipe.toml", b"x" * 5000)])
    with pytest.raises(errors.InvalidArgument, match="unpacks to more than 1024 bytes"):
        unpack(tmp_path, big, max_bytes=1024)
    many = tar([(f"f{i}", b"") for i in range(20)])
    (tmp_path / "b").mkdir()
    with pytest.raises(errors.InvalidArgument, match="more than 10 members"):
        unpack(tmp_path / "b", many, max_members=10)


def test_corrupt_and_unknown_archives(tmp_path):
    with pytest.raises(errors.InvalidArgument, match="not a readable tar.gz"):
        unpack(tmp_path, b"garbage")
    with pytest.raises(errors.InvalidArgument, match="must be a .tar.gz, .tgz or .zip file"):
        unpack_recipe(tmp_path / "x", "recipe.rar", tmp_path / "out2")
    truncated = tar([("recipe.toml", os.urandom(100_000))])[:5000]
    (tmp_path / "c").mkdir()
    with pytest.raises(errors.InvalidArgument, match="the recipe archive is corrupt"):
        unpack(tmp_path / "c", truncated)
