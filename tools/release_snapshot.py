"""Freeze the current proto/ansim/v1 as a release snapshot for `buf breaking`.

    python -m tools.release_snapshot 1.0.0

copies proto/ansim/v1/*.proto verbatim to proto/released/1.0.0/ansim/v1/ (the snapshot directory
is itself a proto root, so the files' imports resolve unchanged). `python -m tools.buf_checks
breaking` compares the working protos against the newest snapshot. A snapshot is never
overwritten: releases are immutable.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.buf_checks import RELEASED_DIR
from tools.protoc import ANSIM_PROTO_DIR, REPO_ROOT

VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?$")


def snapshot(root: Path, version: str) -> Path:
    """Copy root/proto/ansim/v1 to root/proto/released/<version>/ansim/v1; return the new directory."""
    if not VERSION_RE.match(version):
        raise ValueError(f"not a semantic version: {version!r} (e.g. 1.0.0 or 1.0.0-rc.1)")
    src = root / "proto" / ANSIM_PROTO_DIR
    files = sorted(src.glob("*.proto"))
    if not files:
        raise ValueError(f"no .proto files in {src}")
    dst_root = root / RELEASED_DIR / version
    if dst_root.exists():
        raise ValueError(f"{dst_root.relative_to(root)} already exists; release snapshots are immutable")
    dst = dst_root / ANSIM_PROTO_DIR
    dst.mkdir(parents=True)
    for f in files:
        shutil.copyfile(f, dst / f.name)
    return dst_root


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.release_snapshot", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("version", help="release version, e.g. 1.0.0")
    parser.add_argument(
        "--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)"
    )
    args = parser.parse_args(argv)
    try:
        dst = snapshot(args.root.resolve(), args.version)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"snapshot written to {dst}; commit it together with the release")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
