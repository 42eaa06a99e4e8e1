"""The subscribers of a fan-out benchmark, spread over several reader processes.

One Python process reading 1,000 streams spends its event loop on the client side of every message
while the center writes them, on the same two cores; the last stream's arrival then measures the
client as much as the center. Here ``processes`` children (``python -m bench.stream_readers``)
each open their share of the streams on channels of their own and stamp arrivals with
``time.monotonic()`` (CLOCK_MONOTONIC, the same clock in every process of the machine).

Protocol on the child's stdin/stdout, one line each:

* parent → child: the set-up (JSON) once; then ``KEY <hex> <seconds>``: report, per stream, the
  first message containing those bytes since the previous report, waiting at most that long; or
  ``STOP``.
* child → parent: ``OPENED`` once every call is started; ``TIMES <json list>`` per ``KEY``;
  ``FAILED <code: details>`` when a stream ends with an error.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import grpc.aio

#: Reader processes of the fan-out benchmarks (all streams were read in the bench's own process
#: before 2026-12-07).
PROCESSES = 4


@dataclass(frozen=True)
class Setup:
    address: str
    ca: str | None
    method: str
    request_hex: str
    metadata: list[tuple[str, str]]
    streams: int
    channels: int


def _identity(b: bytes) -> bytes:
    return b


class StreamReaders:
    """``streams`` calls of ``method`` (one request, a stream of responses) over ``processes``
    children. Use as an async context manager; :meth:`first_arrivals` per measured event."""

    def __init__(
        self,
        address: str,
        ca: Path | None,
        method: str,
        request: bytes,
        metadata: tuple[tuple[str, str], ...],
        streams: int,
        processes: int,
        channels: int,
    ) -> None:
        self.streams = streams
        shares = [streams // processes + (1 if i < streams % processes else 0) for i in range(processes)]
        self._setups = [
            Setup(
                address,
                str(ca) if ca is not None else None,
                method,
                request.hex(),
                [(k, v) for k, v in metadata],
                share,
                max(1, channels // processes),
            )
            for share in shares
            if share
        ]
        self._children: list[asyncio.subprocess.Process] = []
        self._replies: list[asyncio.Queue[str]] = []
        self._pumps: list[asyncio.Task[None]] = []
        #: "code: details" of every stream that ended with an error
        self.failed: list[str] = []

    async def __aenter__(self) -> StreamReaders:
        from bench.procs import child_env

        for setup in self._setups:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.stream_readers",
                env=child_env(),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert child.stdin is not None
            child.stdin.write((json.dumps(asdict(setup)) + "\n").encode())
            replies: asyncio.Queue[str] = asyncio.Queue()
            self._children.append(child)
            self._replies.append(replies)
            self._pumps.append(asyncio.create_task(self._pump(child, replies)))
        return self

    async def _pump(self, child: asyncio.subprocess.Process, replies: asyncio.Queue[str]) -> None:
        assert child.stdout is not None
        while line := (await child.stdout.readline()).decode():
            if line.startswith("FAILED "):
                self.failed.append(line[7:].strip())
            else:
                replies.put_nowait(line.strip())
        replies.put_nowait("EXITED")

    async def opened(self) -> None:
        """Until every child has started all of its calls."""
        for replies in self._replies:
            line = await replies.get()
            if line != "OPENED":
                raise RuntimeError(f"a stream reader did not start: {line}")

    async def first_arrivals(self, key: bytes, seconds: float) -> list[float]:
        """Per stream (at most one each), the monotonic time its first message containing ``key``
        arrived since the previous call; waits up to ``seconds`` for the missing ones."""
        for child in self._children:
            assert child.stdin is not None
            child.stdin.write(f"KEY {key.hex()} {seconds}\n".encode())
        times: list[float] = []
        for replies in self._replies:
            line = await asyncio.wait_for(replies.get(), seconds + 30)
            if not line.startswith("TIMES "):
                raise RuntimeError(f"a stream reader failed: {line}")
            times += json.loads(line[6:])
        return times

    async def __aexit__(self, *exc: object) -> None:
        for child in self._children:
            if child.stdin is not None and not child.stdin.is_closing():
                child.stdin.write(b"STOP\n")
                child.stdin.close()
        for child in self._children:
            try:
                await asyncio.wait_for(child.wait(), 30)
            except TimeoutError:
                child.kill()
                await child.wait()
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)


# --- the child ------------------------------------------------------------------------------------


async def _child(setup: Setup, ca: bytes | None) -> None:
    loop = asyncio.get_running_loop()
    if ca is not None:
        credentials = grpc.ssl_channel_credentials(ca)
        channels = [grpc.aio.secure_channel(setup.address, credentials) for _ in range(setup.channels)]
    else:
        channels = [grpc.aio.insecure_channel(setup.address) for _ in range(setup.channels)]
    request = bytes.fromhex(setup.request_hex)
    metadata = tuple((k, v) for k, v in setup.metadata)
    received: list[tuple[int, float, bytes]] = []  # (stream, arrival, message) since the last report
    clock = time.monotonic

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    async def read(i: int) -> None:
        call = channels[i % len(channels)].unary_stream(
            setup.method, request_serializer=_identity, response_deserializer=_identity
        )(request, metadata=metadata)
        try:
            async for raw in call:
                received.append((i, clock(), raw))
        except grpc.aio.AioRpcError as error:
            say(f"FAILED {error.code().name}: {error.details()}")

    tasks = [asyncio.create_task(read(i)) for i in range(setup.streams)]
    say("OPENED")
    try:
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
            if not line or line[0] == "STOP":
                return
            key, deadline = bytes.fromhex(line[1]), clock() + float(line[2])
            first: dict[int, float] = {}
            while True:
                for stream, t, raw in received:
                    if key in raw:
                        first.setdefault(stream, t)
                received.clear()
                if len(first) >= setup.streams or clock() > deadline:
                    break
                await asyncio.sleep(0.005)
            say("TIMES " + json.dumps(list(first.values())))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await channel.close(None)


def main() -> None:
    raw = json.loads(sys.stdin.readline())
    raw["metadata"] = [tuple(m) for m in raw["metadata"]]
    setup = Setup(**raw)
    asyncio.run(_child(setup, Path(setup.ca).read_bytes() if setup.ca is not None else None))


if __name__ == "__main__":
    main()
