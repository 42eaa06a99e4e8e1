"""Announce the specification version on every rpc (GEN-041): ``ansim-spec-version`` header."""

from __future__ import annotations

from typing import Any

from ansim_sdk.catalogue import spec_version
from reference_server.interceptors.wrapping import AroundInterceptor, Call, Invoke

HEADER = "ansim-spec-version"


class SpecVersionInterceptor(AroundInterceptor):
    def __init__(self) -> None:
        self._metadata = ((HEADER, spec_version()),)

    async def around(self, call: Call, invoke: Invoke) -> Any:
        await call.context.send_initial_metadata(self._metadata)
        return await invoke()
