"""The standard's own descriptors: every generated ``ansim.v1`` module, imported once.

The suite compares what a target serves against these (GEN-005) and learns from them which services
the standard it was built from defines.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

import ansim.v1
from google.protobuf import descriptor
from google.protobuf.descriptor import FileDescriptor

PACKAGE = "ansim.v1"


@cache
def standard_files() -> tuple[FileDescriptor, ...]:
    """The FileDescriptor of every ``ansim/v1/*.proto`` of this suite's version of the standard."""
    files: list[FileDescriptor] = []
    for info in sorted(pkgutil.iter_modules(ansim.v1.__path__), key=lambda m: m.name):
        if not info.name.endswith("_pb2"):
            continue
        module = importlib.import_module(f"ansim.v1.{info.name}")
        files.append(module.DESCRIPTOR)
    return tuple(files)


@cache
def standard_services() -> dict[str, descriptor.ServiceDescriptor]:
    """Full service name (``ansim.v1.CameraService``) → its descriptor."""
    return {s.full_name: s for f in standard_files() for s in f.services_by_name.values()}


def method_path(service: str, method: str) -> str:
    """``/ansim.v1.CameraService/ListCameras``."""
    return f"/{service}/{method}"
