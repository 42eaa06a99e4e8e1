"""Resolving the responsible center with the directory, with a verified, expiring cache (spec §16.5).

``Router.resolve`` answers from the cache when a cached answer for the service has not expired and
the new location's whole uncertainty region lies inside its ``service_boundary`` [DIR-019];
otherwise it asks the directory and verifies the signature before use, refetching the keys once for
an unknown key id [DIR-018]. When the directory is unreachable or its answer does not verify, an
expired answer may still be used up to 72 hours past its ``expire_time`` [DIR-020]; without any
usable answer the result is *unresolvable* and the caller handles the emergency itself [FED-014].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import grpc
import grpc.aio
from ansim.v1 import common_pb2, directory_pb2, directory_pb2_grpc
from shapely.geometry.base import BaseGeometry

from ansim_sdk.errors import parse_rpc_error
from reference_server.clock import Clock
from reference_server.domain.directory.geometry import area_geometry, contains_region
from reference_server.domain.directory.signing import AnswerNotVerified, UnknownKey, verify_answer
from reference_server.domain.federation.connections import TokenCache

log = logging.getLogger("ansim.federation.router")

STALE_USE = timedelta(hours=72)
CALL_TIMEOUT_S = 2.0
PAGE_SIZE = 500


@dataclass
class Resolution:
    """What the router found for a location."""

    #: The verified answer (None when unresolvable or outside every area).
    answer: directory_pb2.ResolveCenterAnswer | None = None
    #: The signed response, bytes unchanged, for routing evidence.
    evidence: directory_pb2.ResolveCenterResponse | None = None
    #: The default route of an OUTSIDE_SERVICE_AREA answer.
    default_center: str = ""
    #: How it was obtained: directory | cache | stale | default | unresolvable.
    source: str = "unresolvable"

    @property
    def candidates(self) -> list[str]:
        if self.answer is not None:
            return [c.center for c in self.answer.candidates]
        return [self.default_center] if self.default_center else []


@dataclass
class _Cached:
    response: directory_pb2.ResolveCenterResponse
    answer: directory_pb2.ResolveCenterAnswer
    boundary: BaseGeometry
    expire: datetime
    single: bool = field(default=False)


class DirectoryClient:
    """Calls to the national directory as this center."""

    def __init__(self, channel: grpc.aio.Channel, tokens: TokenCache) -> None:
        self._stub = directory_pb2_grpc.DirectoryServiceStub(channel)
        self._tokens = tokens
        self.keys: list[directory_pb2.DirectoryKey] = []

    async def fetch_keys(self) -> None:
        reply = await self._stub.GetDirectoryKeys(
            directory_pb2.GetDirectoryKeysRequest(), metadata=self._tokens.metadata(), timeout=CALL_TIMEOUT_S
        )
        self.keys = list(reply.keys)

    async def list_since(self, revision: int) -> list[directory_pb2.CenterEntry]:
        found: list[directory_pb2.CenterEntry] = []
        token = ""
        while True:
            reply = await self._stub.ListCenters(
                directory_pb2.ListCentersRequest(
                    page_size=PAGE_SIZE, page_token=token, since_revision=revision
                ),
                metadata=self._tokens.metadata(),
                timeout=CALL_TIMEOUT_S * 5,
            )
            found.extend(reply.centers)
            token = reply.next_page_token
            if not token:
                return found

    async def resolve(
        self, location: common_pb2.Location, service: str
    ) -> directory_pb2.ResolveCenterResponse:
        return await self._stub.ResolveCenter(
            directory_pb2.ResolveCenterRequest(location=location, service=service),
            metadata=self._tokens.metadata(),
            timeout=CALL_TIMEOUT_S,
        )

    async def verify(
        self, response: directory_pb2.ResolveCenterResponse
    ) -> directory_pb2.ResolveCenterAnswer:
        try:
            return verify_answer(response, self.keys)
        except UnknownKey:
            await self.fetch_keys()
            return verify_answer(response, self.keys)


class Router:
    def __init__(self, directory: DirectoryClient | None, clock: Clock) -> None:
        self.directory = directory
        self._clock = clock
        self._cache: dict[str, list[_Cached]] = {}

    def _from_cache(
        self, location: common_pb2.Location, service: str, now: datetime, stale: bool
    ) -> _Cached | None:
        for cached in self._cache.get(service, []):
            limit = cached.expire + (STALE_USE if stale else timedelta(0))
            if now <= limit and cached.single and contains_region(cached.boundary, location):
                return cached
        return None

    def _remember(
        self,
        service: str,
        response: directory_pb2.ResolveCenterResponse,
        answer: directory_pb2.ResolveCenterAnswer,
    ) -> None:
        expire = answer.expire_time.ToDatetime(tzinfo=self._clock.now().tzinfo)
        entry = _Cached(
            response, answer, area_geometry(answer.service_boundary), expire, len(answer.candidates) == 1
        )
        now = self._clock.now()
        kept = [c for c in self._cache.get(service, []) if c.expire + STALE_USE >= now]
        kept = [c for c in kept if c.answer.candidates[0].center != answer.candidates[0].center]
        self._cache[service] = [entry, *kept][:64]

    def invalidate(self, service: str = "sos") -> None:
        self._cache.pop(service, None)

    async def resolve(
        self, location: common_pb2.Location, service: str = "sos", *, bypass_cache: bool = False
    ) -> Resolution:
        now = self._clock.now()
        if not bypass_cache:
            cached = self._from_cache(location, service, now, stale=False)
            if cached is not None:
                return Resolution(cached.answer, cached.response, source="cache")
        if self.directory is not None:
            try:
                response = await self.directory.resolve(location, service)
                answer = await self.directory.verify(response)
                self._remember(service, response, answer)
                return Resolution(answer, response, source="directory")
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    try:
                        default = parse_rpc_error(error).metadata.get("default_center", "")
                    except ValueError:
                        default = ""
                    return Resolution(default_center=default, source="default" if default else "unresolvable")
                log.warning("directory unreachable: %s", error.code().name)
            except (AnswerNotVerified, OSError) as error:
                log.warning("directory answer not usable: %s", error)
        stale = self._from_cache(location, service, now, stale=True)
        if stale is not None:
            return Resolution(stale.answer, stale.response, source="stale")
        return Resolution()
