"""Closed-loop load: ``clients`` concurrent callers, each with its own channel, each sending its next
request as soon as the previous answer arrived. Returns throughput and per-call latencies."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import grpc.aio

from bench.core import percentile

Call = Callable[[grpc.aio.Channel, int], Awaitable[object]]


@dataclass(frozen=True)
class LoadResult:
    clients: int
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    first_error: str

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies, 99) * 1000


def secure(address: str, credentials: grpc.ChannelCredentials) -> Callable[[], grpc.aio.Channel]:
    """A factory of TLS channels to ``address`` (one per simulated client)."""
    return lambda: grpc.aio.secure_channel(address, credentials)


async def closed_loop(
    open_channel: Callable[[], grpc.aio.Channel], call: Call, clients: int, requests: int, warmup: int = 20
) -> LoadResult:
    channels = [open_channel() for _ in range(clients)]
    try:
        for ch in channels:
            for i in range(max(1, warmup // clients)):
                with contextlib.suppress(grpc.aio.AioRpcError):  # counted in the timed part
                    await call(ch, -1 - i)
        latencies: list[float] = []
        errors = 0
        first_error = ""
        counter = iter(range(requests))
        clock = time.perf_counter

        async def worker(ch: grpc.aio.Channel) -> None:
            nonlocal errors, first_error
            for i in counter:
                t0 = clock()
                try:
                    await call(ch, i)
                except grpc.aio.AioRpcError as error:
                    errors += 1
                    first_error = first_error or f"{error.code().name}: {error.details()}"
                    continue
                latencies.append(clock() - t0)

        t0 = clock()
        await asyncio.gather(*(worker(ch) for ch in channels))
        seconds = clock() - t0
    finally:
        for ch in channels:
            await ch.close(None)
    return LoadResult(clients, len(latencies), seconds, latencies, errors, first_error)
