"""Shared protoc plumbing: pinned generator check, include paths and the buf.validate descriptor set.

buf cannot fetch its dependencies offline and ``buf/validate/validate.proto`` is not shipped as a
``.proto`` file anywhere in the environment. The protovalidate wheel embeds the serialized
FileDescriptorProto in its generated module, so we recover it from there (with ``ast``, without
importing the module) and hand it to protoc through ``--descriptor_set_in``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import (
    descriptor_pb2,
    duration_pb2,
    field_mask_pb2,
    timestamp_pb2,
)

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Generator versions the checked-in generated code was produced with.
PINNED_GENERATORS: dict[str, str] = {"grpcio-tools": "1.85.1", "mypy-protobuf": "5.1.0"}

VALIDATE_PROTO = "buf/validate/validate.proto"
#: Package (proto directory) under ``proto/`` that we own and generate code for.
ANSIM_PROTO_DIR = "ansim/v1"


class ToolError(RuntimeError):
    """A failure the user can act on; printed without a traceback."""


def check_generator_versions() -> None:
    """Fail clearly unless the pinned code generators are installed."""
    problems = []
    for dist, want in PINNED_GENERATORS.items():
        try:
            have = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f"{dist} is not installed (need =={want})")
            continue
        if have != want:
            problems.append(f"{dist}=={have} is installed, but the generated code is pinned to =={want}")
    if problems:
        raise ToolError(
            "code generator version mismatch:\n  "
            + "\n  ".join(problems)
            + "\ninstall the pinned generators with: pip install -e '.[codegen]'"
        )


def _module_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ToolError(f"cannot locate installed module {module}")
    return Path(spec.origin).parent


def wkt_include_dir() -> Path:
    """Directory holding ``google/protobuf/*.proto`` (shipped inside grpcio-tools)."""
    path = _module_dir("grpc_tools") / "_proto"
    if not (path / "google/protobuf/timestamp.proto").is_file():
        raise ToolError(f"well-known type protos not found under {path}")
    return path


def googleapis_include_dir() -> Path:
    """Directory holding ``google/rpc/*.proto``, ``google/type/*.proto`` (googleapis-common-protos)."""
    path = _module_dir("google.rpc.status_pb2").parent.parent
    if not (path / "google/rpc/status.proto").is_file():
        raise ToolError(f"googleapis protos (google/rpc/status.proto) not found under {path}")
    return path


def validate_file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto of buf/validate/validate.proto embedded in the protovalidate wheel."""
    source_path = _module_dir("protovalidate") / "_gen/buf/validate/validate_pb.py"
    tree = ast.parse(source_path.read_text(encoding="utf-8"), filename=str(source_path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "file_desc"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, bytes)
        ):
            fdp = descriptor_pb2.FileDescriptorProto.FromString(node.args[0].value)
            if fdp.name != VALIDATE_PROTO:
                raise ToolError(
                    f"{source_path}: embedded descriptor is {fdp.name!r}, expected {VALIDATE_PROTO}"
                )
            return fdp
    raise ToolError(f"{source_path}: no file_desc(b'...') call with the serialized descriptor")


def validate_descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """validate.proto plus the well-known types it imports, dependencies first."""
    fds = descriptor_pb2.FileDescriptorSet()
    for module in (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2):
        module.DESCRIPTOR.CopyToProto(fds.file.add())
    validate = validate_file_descriptor()
    have = {f.name for f in fds.file}
    missing = [d for d in validate.dependency if d not in have]
    if missing:
        raise ToolError(f"{VALIDATE_PROTO} imports {missing}, which are not in the descriptor set")
    fds.file.append(validate)
    return fds


def ansim_proto_files(proto_root: Path) -> list[str]:
    """The ansim .proto files, as import paths relative to ``proto_root``, sorted."""
    files = sorted(
        p.relative_to(proto_root).as_posix() for p in (proto_root / ANSIM_PROTO_DIR).glob("*.proto")
    )
    if not files:
        raise ToolError(f"no .proto files in {proto_root / ANSIM_PROTO_DIR}")
    return files


def _plugin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"protoc plugin {name} not found (pip install mypy-protobuf==5.1.0)")
    return found


def mypy_plugins() -> list[str]:
    """``--plugin`` arguments for the mypy-protobuf plugins of this interpreter's environment."""
    return [
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
    ]


def run_protoc(
    proto_root: Path,
    workdir: Path,
    args: Sequence[str],
    files: Sequence[str],
    *,
    extra_includes: Sequence[Path] = (),
) -> None:
    """Run grpcio-tools' bundled protoc with the validate descriptor set and the standard include path.

    ``workdir`` is a scratch directory (the validate descriptor set is written there).
    """
    validate_set = workdir / "validate.binpb"
    if not validate_set.exists():
        validate_set.write_bytes(validate_descriptor_set().SerializeToString(deterministic=True))
    includes = [proto_root, *extra_includes, wkt_include_dir(), googleapis_include_dir()]
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--descriptor_set_in={validate_set}",
        *(f"-I{inc}" for inc in includes),
        *args,
        *files,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or result.stderr.strip():
        # protoc prints warnings (e.g. unused imports) on stderr with exit 0; treat them as errors so
        # the contract stays clean.
        raise ToolError(
            f"protoc failed ({result.returncode}):\n{result.stderr.strip()}\ncommand: {' '.join(cmd)}"
        )


def build_image(proto_root: Path, workdir: Path, out: Path, files: Sequence[str] | None = None) -> Path:
    """Write a FileDescriptorSet (imports + source info) of the ansim protos to ``out``; return it."""
    run_protoc(
        proto_root,
        workdir,
        [f"--descriptor_set_out={out}", "--include_imports", "--include_source_info"],
        files if files is not None else ansim_proto_files(proto_root),
    )
    return out
