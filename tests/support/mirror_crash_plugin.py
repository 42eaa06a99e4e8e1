"""A fault for crash tests: the center process dies (``os._exit``) the first time it applies a
mirrored event to a home emergency while ``<data dir>/crash-on-mirror-apply`` exists (the file is
removed first, so a restarted center runs normally). It stands in for a power cut, not for any part
of the product: the real apply path runs up to the moment of the crash."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import grpc.aio

from reference_server.context import ServerContext

MARKER = "crash-on-mirror-apply"
EXIT_CODE = 75


def register(ctx: ServerContext, server: grpc.aio.Server) -> Sequence[str]:
    handler = ctx.domain.forwarded
    assert handler is not None, "load after the emergency service"
    marker = ctx.settings.data_dir / MARKER
    apply = handler.apply_mirror

    async def crash_once(*args: Any, **kwargs: Any) -> None:
        if marker.exists():
            marker.unlink()
            os._exit(EXIT_CODE)
        await apply(*args, **kwargs)

    handler.apply_mirror = crash_once  # type: ignore[method-assign]
    return []
