"""Every module of test cases, imported explicitly (no discovery): one line per module.

A service engineer adds ``from conformance.cases import <module>`` below, keeping the list sorted.
"""

# ruff: noqa: I001  -- one import line per case module, so parallel additions never conflict
from __future__ import annotations

from conformance.registry import Registry, registry


def load_cases() -> Registry:
    """Import every case module (registering its cases) and return the suite's registry."""
    from conformance.cases import cameras  # noqa: F401
    from conformance.cases import child_safety  # noqa: F401
    from conformance.cases import clients_agency, clients_app, clients_gateway  # noqa: F401
    from conformance.cases import crosscutting  # noqa: F401
    from conformance.cases import directory  # noqa: F401
    from conformance.cases import dispatch  # noqa: F401
    from conformance.cases import emergency  # noqa: F401
    from conformance.cases import federation  # noqa: F401
    from conformance.cases import federation_home  # noqa: F401
    from conformance.cases import federation_moving  # noqa: F401
    from conformance.cases import generic  # noqa: F401
    from conformance.cases import guardian  # noqa: F401
    from conformance.cases import guardian_replay  # noqa: F401
    from conformance.cases import safe_trip  # noqa: F401
    from conformance.cases import statistics  # noqa: F401
    from conformance.cases import video  # noqa: F401

    return registry
