"""Regenerate everything derived from proto/: Python code in gen/python and JSON Schemas in spec/schemas.

    python -m tools.generate            # write gen/python and spec/schemas (stale files are removed)
    python -m tools.generate --check    # regenerate into a temp dir; exit 1 listing every drifted file

Generation always happens in a temporary directory first, so a failed run never leaves a half
written tree behind. The compiled descriptor set (imports and source info included) is also kept at
build/ansim.v1.binpb for other tools (not in --check mode).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools import jsonschema_gen
from tools.protoc import (
    REPO_ROOT,
    VALIDATE_PROTO,
    ToolError,
    ansim_proto_files,
    build_image,
    check_generator_versions,
    mypy_plugins,
    run_protoc,
)

#: Generated Python packages that need an (empty) __init__.py.
PACKAGE_DIRS = ("ansim", "ansim/v1", "buf", "buf/validate")
#: Directory entries never treated as generated output.
IGNORED_NAMES = {"__pycache__", ".mypy_cache", ".pytest_cache"}
IMAGE_PATH = Path("build/ansim.v1.binpb")


@dataclass(frozen=True)
class Target:
    """One generated tree: where it lives in the repo and where it is staged."""

    label: str
    repo_dir: Path
    staged_dir: Path


def generate_into(root: Path, staging: Path) -> tuple[Path, Path, bytes]:
    """Generate Python code and schemas under ``staging``; return (python dir, schema dir, image)."""
    check_generator_versions()
    proto_root = root / "proto"
    work = staging / "work"
    py_out = staging / "python"
    schema_out = staging / "schemas"
    for d in (work, py_out, schema_out):
        d.mkdir(parents=True)
    files = ansim_proto_files(proto_root)
    run_protoc(
        proto_root,
        work,
        [
            f"--python_out={py_out}",
            f"--grpc_python_out={py_out}",
            f"--mypy_out=quiet:{py_out}",
            f"--mypy_grpc_out=quiet:{py_out}",
            *mypy_plugins(),
        ],
        files,
    )
    run_protoc(proto_root, work, [f"--python_out={py_out}", f"--mypy_out=quiet:{py_out}"], [VALIDATE_PROTO])
    for pkg in PACKAGE_DIRS:
        (py_out / pkg).mkdir(parents=True, exist_ok=True)
        (py_out / pkg / "__init__.py").write_text("")
    image = build_image(proto_root, work, work / "image.binpb").read_bytes()
    for name, text in jsonschema_gen.generate_schemas(image).items():
        (schema_out / name).write_text(text, encoding="utf-8")
    return py_out, schema_out, image


def _files(base: Path) -> set[str]:
    if not base.is_dir():
        return set()
    out = set()
    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if any(part in IGNORED_NAMES for part in rel.parts) or path.suffix == ".pyc":
            continue
        if path.is_file():
            out.add(rel.as_posix())
    return out


def diff(target: Target) -> list[str]:
    """Human-readable drift lines (changed/added/removed) between the repo tree and the staged tree."""
    have = _files(target.repo_dir)
    want = _files(target.staged_dir)
    lines = []
    for rel in sorted(have | want):
        shown = f"{target.label}/{rel}"
        if rel not in have:
            lines.append(f"missing (would be added): {shown}")
        elif rel not in want:
            lines.append(f"stale (would be removed): {shown}")
        elif not filecmp.cmp(target.repo_dir / rel, target.staged_dir / rel, shallow=False):
            lines.append(f"changed: {shown}")
    return lines


def sync(target: Target) -> list[str]:
    """Make the repo tree equal to the staged tree; return what was done."""
    changes = diff(target)
    have = _files(target.repo_dir)
    want = _files(target.staged_dir)
    for rel in sorted(have - want):
        (target.repo_dir / rel).unlink()
    for rel in sorted(want):
        dst = target.repo_dir / rel
        if rel in have and filecmp.cmp(dst, target.staged_dir / rel, shallow=False):
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target.staged_dir / rel, dst)
    # Remove directories left empty by stale files (deepest first), keeping the tree root.
    if target.repo_dir.is_dir():
        for d in sorted((p for p in target.repo_dir.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if d.name in IGNORED_NAMES:
                continue
            remaining = [c for c in d.iterdir() if c.name not in IGNORED_NAMES]
            if not remaining:
                shutil.rmtree(d)
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report drift; exit 1 if anything differs")
    parser.add_argument(
        "--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)"
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        with tempfile.TemporaryDirectory(prefix="ansim-generate-") as tmp:
            py_out, schema_out, image = generate_into(root, Path(tmp))
            targets = [
                Target("gen/python", root / "gen/python", py_out),
                Target("spec/schemas", root / "spec/schemas", schema_out),
            ]
            if args.check:
                drift = [line for t in targets for line in diff(t)]
                if drift:
                    print("generated files are out of date with proto/ (run: python -m tools.generate):")
                    for line in drift:
                        print(f"  {line}")
                    return 1
                print("generated code and schemas are up to date")
                return 0
            changes = [line for t in targets for line in sync(t)]
            image_path = root / IMAGE_PATH
            image_path.parent.mkdir(parents=True, exist_ok=True)
            image_path.write_bytes(image)
            for line in changes:
                done = line.replace("missing (would be added)", "added").replace(
                    "stale (would be removed)", "removed"
                )
                print(f"  {done}")
            print(
                f"generated {len(_files(root / 'gen/python'))} Python files and "
                f"{len(_files(root / 'spec/schemas'))} schemas ({len(changes)} changed); image: {IMAGE_PATH}"
            )
            return 0
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
