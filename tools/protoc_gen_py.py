"""buf plugin: Python messages, typing stubs and gRPC stubs from one pinned generator.

grpcio-tools ships protoc as a library, not as `protoc-gen-*` plugins that buf can
call. This plugin reads buf's CodeGeneratorRequest, hands the already-parsed files to
the bundled protoc through a descriptor set, and returns what protoc wrote. It runs
in `.venv-gen/` (requirements/gen.txt), which pins the generator version: see
docs/codegen.md for why that version.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def main() -> int:
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    response = plugin_pb2.CodeGeneratorResponse()
    response.supported_features = plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        descriptor_set = descriptor_pb2.FileDescriptorSet(file=request.proto_file)
        (root / "in.pb").write_bytes(descriptor_set.SerializeToString())
        out = root / "out"
        out.mkdir()
        args = [
            "protoc",
            f"--descriptor_set_in={root / 'in.pb'}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *request.file_to_generate,
        ]
        if protoc.main(args) != 0:
            response.error = "grpc_tools.protoc failed; see the messages above"
        else:
            for path in sorted(p for p in out.rglob("*") if p.is_file()):
                generated = response.file.add()
                generated.name = path.relative_to(out).as_posix()
                generated.content = path.read_text()
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
