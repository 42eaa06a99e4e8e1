"""Prometheus metrics: per-method request counts, latencies and in-flight calls, plus the domain
gauges and histograms that service modules update.

Service code imports the shared objects and updates them, e.g.
``ACTIVE_EMERGENCIES.labels(center=name, mode="LIVE").inc()``,
``STREAM_SUBSCRIBERS.labels(stream="dispatch").inc()``,
``DISPATCH_ACK_DELAY.labels(agency_kind="POLICE_112").observe(seconds)``. Labels never carry
identifiers of people, resources or locations, only enum-like values (and, on per-center gauges,
the center's own name: several centers may share one process and its registry).
"""

from __future__ import annotations

import time
from typing import Any

import grpc
from prometheus_client import Counter, Gauge, Histogram

from reference_server.interceptors.wrapping import AroundInterceptor, Call, Invoke

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter("ansim_grpc_requests", "Finished gRPC calls by method and status code", ["method", "code"])
LATENCY = Histogram(
    "ansim_grpc_request_duration_seconds",
    "Time from call start to status, by method and status code (streams: whole stream)",
    ["method", "code"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge("ansim_grpc_in_flight", "gRPC calls being handled", ["method"])

ACTIVE_EMERGENCIES = Gauge(
    "ansim_active_emergencies", "Emergencies currently active, by center and mode", ["center", "mode"]
)
STREAM_SUBSCRIBERS = Gauge(
    "ansim_stream_subscribers", "Open event-stream subscriptions, by stream", ["stream"]
)
DISPATCH_ACK_DELAY = Histogram(
    "ansim_dispatch_ack_delay_seconds",
    "Time from dispatch to acknowledgement by the situation room, by agency kind",
    ["agency_kind"],
    buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300),
)
DROPPED_SUBSCRIBERS = Counter(
    "ansim_stream_subscribers_dropped", "Subscribers dropped because they could not keep up", ["stream"]
)


def status_code_of(call: Call, error: BaseException | None) -> str:
    """The status code name a call ended with, from its context (set by abort) or the exception."""
    code = call.context.code()
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):
        for candidate in grpc.StatusCode:
            if candidate.value[0] == code:
                return candidate.name
    if error is None:
        return grpc.StatusCode.OK.name
    if isinstance(error, grpc.aio.AbortError):
        return grpc.StatusCode.UNKNOWN.name
    return (
        grpc.StatusCode.CANCELLED.name
        if "Cancelled" in type(error).__name__
        else grpc.StatusCode.UNKNOWN.name
    )


class MetricsInterceptor(AroundInterceptor):
    def __init__(self) -> None:
        # Label children looked up once per method (and code), not on every call.
        self._in_flight: dict[str, Gauge] = {}
        self._finished: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def _gauge(self, method: str) -> Gauge:
        gauge = self._in_flight.get(method)
        if gauge is None:
            gauge = self._in_flight[method] = IN_FLIGHT.labels(method=method)
        return gauge

    def _done(self, method: str, code: str) -> tuple[Counter, Histogram]:
        found = self._finished.get((method, code))
        if found is None:
            found = self._finished[(method, code)] = (
                REQUESTS.labels(method=method, code=code),
                LATENCY.labels(method=method, code=code),
            )
        return found

    async def around(self, call: Call, invoke: Invoke) -> Any:
        gauge = self._gauge(call.method)
        gauge.inc()
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            return await invoke()
        except BaseException as exc:
            error = exc
            raise
        finally:
            gauge.dec()
            code = status_code_of(call, error)
            call.notes["code"] = code
            requests, latency = self._done(call.method, code)
            requests.inc()
            latency.observe(time.perf_counter() - started)
