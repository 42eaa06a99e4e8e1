"""buf lint and buf breaking, offline.

buf cannot download buf.build/bufbuild/protovalidate without network, so instead of letting buf
compile the module we compile it with protoc (validate.proto comes from the protovalidate wheel,
see tools.protoc) into an image and run buf on that image with proto/buf.yaml as the config.

    python -m tools.buf_checks lint        # STANDARD + COMMENTS (see proto/buf.yaml) on ansim/v1
    python -m tools.buf_checks breaking    # WIRE_JSON against proto/released/<latest version>/

Exit status: 0 clean, 1 violations found, 2 could not run.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tools.protoc import ANSIM_PROTO_DIR, REPO_ROOT, ToolError, build_image

BUF_VERSION = "1.75.0"
RELEASED_DIR = Path("proto/released")
BUF_CONFIG = Path("proto/buf.yaml")


def buf_executable() -> str:
    """The buf binary of this environment (buf-bin), checked against the pinned version."""
    candidate = Path(sys.executable).parent / "buf"
    exe = str(candidate) if candidate.is_file() else shutil.which("buf")
    if exe is None:
        raise ToolError(f"buf not found; install it with: pip install buf-bin=={BUF_VERSION}")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    if version != BUF_VERSION:
        raise ToolError(
            f"buf {version or '(unknown)'} found at {exe}, but the checks are pinned to {BUF_VERSION}"
        )
    return exe


def _version_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Natural sort key for release directory names such as 1.0.0, 1.0.0-rc.1, 1.10.0."""
    parts: list[tuple[int, int | str]] = []
    for token in re.split(r"[.\-+]", name):
        parts.append((1, int(token)) if token.isdigit() else (0, token))
    return tuple(parts)


def released_versions(root: Path) -> list[str]:
    """Release snapshot names under proto/released, oldest first."""
    base = root / RELEASED_DIR
    if not base.is_dir():
        return []
    names = [d.name for d in base.iterdir() if (d / ANSIM_PROTO_DIR).is_dir()]
    return sorted(names, key=_version_key)


def _buf(root: Path, *args: str) -> int:
    cmd = [buf_executable(), *args]
    result = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode not in (0, 100):  # 100 = violations found
        raise ToolError(f"buf failed with exit code {result.returncode}: {' '.join(cmd)}")
    return 0 if result.returncode == 0 else 1


def lint(root: Path, proto_root: Path | None = None) -> int:
    """Run buf lint on the ansim protos under ``proto_root`` (default: root/proto)."""
    proto_root = proto_root or root / "proto"
    with tempfile.TemporaryDirectory(prefix="ansim-buf-") as tmp:
        image = build_image(proto_root, Path(tmp), Path(tmp) / "image.binpb")
        status = _buf(root, "lint", str(image), "--config", str(root / BUF_CONFIG), "--path", ANSIM_PROTO_DIR)
    print("buf lint: clean" if status == 0 else "buf lint: violations found", file=sys.stderr)
    return status


def breaking(root: Path, against: str | None = None) -> int:
    """Run buf breaking (WIRE_JSON) of root/proto against a release snapshot (default: the latest)."""
    versions = released_versions(root)
    if against is None:
        if not versions:
            print(
                f"buf breaking: no release snapshot in {RELEASED_DIR}/ yet, nothing to compare against "
                "(take one with: python -m tools.release_snapshot <version>)"
            )
            return 0
        against = versions[-1]
    elif against not in versions:
        raise ToolError(
            f"no release snapshot {RELEASED_DIR / against}; have: {', '.join(versions) or 'none'}"
        )
    config = str(root / BUF_CONFIG)
    with tempfile.TemporaryDirectory(prefix="ansim-buf-") as tmp:
        work = Path(tmp)
        (work / "current").mkdir()
        (work / "released").mkdir()
        current = build_image(root / "proto", work / "current", work / "current.binpb")
        released = build_image(root / RELEASED_DIR / against, work / "released", work / "released.binpb")
        status = _buf(
            root,
            "breaking",
            str(current),
            "--against",
            str(released),
            "--config",
            config,
            "--against-config",
            config,
            "--path",
            ANSIM_PROTO_DIR,
        )
    verdict = "no breaking changes" if status == 0 else "breaking changes found"
    print(f"buf breaking (WIRE_JSON) against {against}: {verdict}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.buf_checks", description=__doc__.split("\n\n")[0])
    parser.add_argument("check", choices=["lint", "breaking"])
    parser.add_argument(
        "--root", type=Path, default=REPO_ROOT, help="repository root (default: this checkout)"
    )
    parser.add_argument("--against", help="release snapshot to compare with (default: the latest)")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        if args.check == "lint":
            return lint(root)
        return breaking(root, args.against)
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
