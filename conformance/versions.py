"""The versions a report states: suite, specification and JSON-schema set."""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import metadata

from ansim_sdk.catalogue import spec_dir

_SPEC_VERSION = re.compile(r"^Version (?P<v>\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\.", re.MULTILINE)


@cache
def suite_version() -> str:
    """The installed ansim-interop distribution's version (the suite ships with the standard)."""
    try:
        return metadata.version("ansim-interop")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


@cache
def spec_version() -> str:
    """The specification version, as spec/README.md states it ("Version 1.0.0-alpha.1.")."""
    match = _SPEC_VERSION.search((spec_dir() / "README.md").read_text(encoding="utf-8"))
    return match["v"] if match else "unknown"


@cache
def schema_version() -> str:
    """``sha256:<hex>`` over the names and bytes of spec/schemas/*.json, in name order."""
    digest = hashlib.sha256()
    for path in sorted((spec_dir() / "schemas").glob("*.json")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()
